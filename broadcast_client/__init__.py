"""Reference client of the broadcast WebSocket protocol (docs/protocol.md).

:mod:`broadcast_client.protocol` is the sans-I/O core (what to send, how to
react); :mod:`broadcast_client.cli` runs it over ``websockets``.
"""
