"""Capacity model and simulation of the broadcast stack (`make capacity`,
`make capacity-simulate`; docs/scaling.md).

- ``units``: DynamoDB's item-size and request-unit rules (pure).
- ``meter``: counts what the real handlers call (the tests' call counter) and what
  each call costs in request units, from the items as they are before and after.
- ``measure``: runs the real handlers in-process against moto, one event at a
  time, and records each event's calls, units, CPU and message sizes.
- ``profile``, ``aws``: the traffic profile; AWS prices, quotas and latencies, with
  their sources.
- ``model``: the arithmetic from measured events and a profile to rates, capacity,
  cost and quota headroom (pure).
- ``report``: the printed tables.
- ``simulate``: the real sweep and fan-out against a moto server with many sessions.
"""
