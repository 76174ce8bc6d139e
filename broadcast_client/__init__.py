"""Reference client of the broadcast WebSocket protocol (docs/protocol.md).

:mod:`broadcast_client.protocol` is the sans-I/O core (what to send, how to
react), returning :mod:`~broadcast_client.actions`; its pure helpers are
:mod:`~broadcast_client.ordering` (duplicates, gaps, audio order),
:mod:`~broadcast_client.commands`, :mod:`~broadcast_client.audio` and
:mod:`~broadcast_client.display`. :mod:`broadcast_client.cli` runs it over
``websockets``.
"""
