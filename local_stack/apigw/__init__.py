"""Sans-I/O emulation of API Gateway's WebSocket behaviour.

Nothing here touches a socket or a clock: callers pass the time in and take
bytes and decisions out, so every rule is unit-testable. The references are
the API Gateway developer guide's WebSocket chapters ("Working with WebSocket
APIs", "Controlling access with a Lambda REQUEST authorizer", "Use @connections
commands", and the WebSocket quotas table); each rule cites the part it
mirrors. Three modules, one job each:

- :mod:`.events`: ids, timestamps, the handshake request and the events built
  for the authorizer, ``$connect``, messages and ``$disconnect``;
- :mod:`.decisions`: route selection, the authorizer's policy, the
  ``$connect`` response: accept or refuse, and with which status;
- :mod:`.connection`: one connection's state machine (frames, limits,
  timeouts, the close handshake, ``$disconnect`` exactly once).

The names below are the ones :mod:`local_stack.gateway` (and its tests) use as
``apigw.X``; everything else is imported from its module.
"""
from .connection import Connection, ConnectionGone, Disconnect, Message, State
from .decisions import (
    INTERNAL_ERROR,
    UNAUTHORIZED,
    Refusal,
    evaluate_authorizer,
    evaluate_connect_response,
    select_route,
)
from .events import (
    ROUTE_CONNECT,
    ROUTE_DISCONNECT,
    ApiContext,
    HandshakeRequest,
    authorizer_event,
    connect_event,
    disconnect_event,
    iso8601,
    is_connection_id,
    message_event,
    new_connection_id,
    new_request_id,
)

__all__ = [
    "ApiContext", "Connection", "ConnectionGone", "Disconnect", "HandshakeRequest",
    "INTERNAL_ERROR", "Message", "ROUTE_CONNECT", "ROUTE_DISCONNECT", "Refusal", "State",
    "UNAUTHORIZED", "authorizer_event", "connect_event", "disconnect_event",
    "evaluate_authorizer", "evaluate_connect_response", "is_connection_id", "iso8601",
    "message_event", "new_connection_id", "new_request_id", "select_route",
]
