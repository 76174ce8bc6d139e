"""Sans-I/O emulation of API Gateway's WebSocket behaviour.

Nothing here touches a socket or a clock: callers pass the time in and take
bytes and decisions out, so every rule is unit-testable. The references are
the API Gateway developer guide's WebSocket chapters ("Working with WebSocket
APIs", "Controlling access with a Lambda REQUEST authorizer", "Use @connections
commands", and the WebSocket quotas table); each rule cites the part it
mirrors.
"""
from __future__ import annotations

import base64
import enum
import fnmatch
import json
import os
import re
import time
import uuid
from typing import Any, Dict, List, Optional, Sequence, Tuple

import attrs
from websockets.frames import CloseCode, Opcode
from websockets.protocol import Protocol, Side
from websockets.protocol import State as WsState

from .settings import MAX_FRAME_BYTES, MAX_MESSAGE_BYTES

ROUTE_CONNECT = "$connect"
ROUTE_DEFAULT = "$default"
ROUTE_DISCONNECT = "$disconnect"

# --------------------------------------------------------------------------
# Identifiers and timestamps
# --------------------------------------------------------------------------

_CONNECTION_ID = re.compile(r"^[A-Za-z0-9]{15}=$")


def new_connection_id() -> str:
    """A connection id shaped like API Gateway's (``L0SM9cOFvHcCIhw=``).

    API Gateway's ids are the standard base64 of 11 bytes. We keep only those
    without ``+`` or ``/`` so ids stay safe in URL paths without escaping.
    """
    while True:
        candidate = base64.b64encode(os.urandom(11)).decode("ascii")
        if _CONNECTION_ID.match(candidate):
            return candidate


def is_connection_id(value: str) -> bool:
    return bool(_CONNECTION_ID.match(value))


def new_request_id() -> str:
    """API Gateway's ``extendedRequestId``/``messageId`` look like this."""
    return base64.b64encode(os.urandom(12)).decode("ascii").replace("+", "A").replace("/", "B")[:16] + "="


def request_time(epoch_ms: int) -> str:
    """``requestTime`` in API Gateway's CLF format: ``09/Feb/2019:11:50:27 +0000``."""
    return time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(epoch_ms / 1000))


def iso8601(epoch_seconds: float) -> str:
    """Timestamps in ``@connections`` GET responses."""
    whole = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(epoch_seconds))
    return f"{whole}.{int(epoch_seconds * 1000) % 1000:03d}Z"


# --------------------------------------------------------------------------
# Incoming handshake request
# --------------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class HandshakeRequest:
    """What API Gateway knows about a client's upgrade request."""

    #: Header (name, value) pairs in the order and case the client sent them.
    headers: Tuple[Tuple[str, str], ...] = ()
    #: Query string (name, value) pairs in order, already percent-decoded.
    query: Tuple[Tuple[str, str], ...] = ()
    source_ip: str = "127.0.0.1"
    host: str = "localhost"
    port: int = 443
    scheme: str = "https"

    def header(self, name: str) -> Optional[str]:
        wanted = name.lower()
        for key, value in self.headers:
            if key.lower() == wanted:
                return value
        return None

    @property
    def user_agent(self) -> str:
        return self.header("User-Agent") or ""

    def event_headers(self) -> Tuple[Dict[str, str], Dict[str, List[str]]]:
        """``headers`` and ``multiValueHeaders`` as API Gateway builds them.

        API Gateway adds the forwarding headers of its edge
        (``X-Forwarded-For``/``-Port``/``-Proto``, ``X-Amzn-Trace-Id``).
        """
        pairs = list(self.headers)
        present = {k.lower() for k, _ in pairs}
        extra = [
            ("X-Amzn-Trace-Id", f"Root=1-{int(time.time()):08x}-{uuid.uuid4().hex[:24]}"),
            ("X-Forwarded-For", self.source_ip),
            ("X-Forwarded-Port", str(self.port)),
            ("X-Forwarded-Proto", self.scheme),
        ]
        pairs.extend((k, v) for k, v in extra if k.lower() not in present)
        single: Dict[str, str] = {}
        multi: Dict[str, List[str]] = {}
        for key, value in pairs:
            single[key] = value
            multi.setdefault(key, []).append(value)
        return single, multi

    def event_query(self) -> Dict[str, Any]:
        """``queryStringParameters`` (last value wins) and the multi-value map.

        Both keys are absent when the request has no query string, as in
        API Gateway's events (handlers must not assume they exist).
        """
        if not self.query:
            return {}
        single: Dict[str, str] = {}
        multi: Dict[str, List[str]] = {}
        for key, value in self.query:
            single[key] = value
            multi.setdefault(key, []).append(value)
        return {"queryStringParameters": single, "multiValueQueryStringParameters": multi}


# --------------------------------------------------------------------------
# Events
# --------------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class ApiContext:
    """The fixed part of every event's ``requestContext``."""

    api_id: str
    stage: str
    domain_name: str
    region: str = "us-east-1"
    account_id: str = "123456789012"

    @property
    def connect_method_arn(self) -> str:
        # "methodArn": "arn:aws:execute-api:{region}:{account}:{apiId}/{stage}/$connect"
        return (
            f"arn:aws:execute-api:{self.region}:{self.account_id}:"
            f"{self.api_id}/{self.stage}/{ROUTE_CONNECT}"
        )


def _request_context(
    api: ApiContext,
    *,
    route_key: str,
    event_type: str,
    connection_id: str,
    connected_at: int,
    now_ms: int,
    source_ip: str,
    user_agent: Optional[str],
) -> Dict[str, Any]:
    request_id = new_request_id()
    identity: Dict[str, Any] = {"sourceIp": source_ip}
    if user_agent is not None:
        identity["userAgent"] = user_agent
    return {
        "routeKey": route_key,
        "eventType": event_type,
        "extendedRequestId": request_id,
        "requestTime": request_time(now_ms),
        "messageDirection": "IN",
        "stage": api.stage,
        "connectedAt": connected_at,
        "requestTimeEpoch": now_ms,
        "identity": identity,
        "requestId": request_id,
        "domainName": api.domain_name,
        "connectionId": connection_id,
        "apiId": api.api_id,
    }


def authorizer_event(
    api: ApiContext, request: HandshakeRequest, *, connection_id: str, now_ms: int
) -> Dict[str, Any]:
    """The REQUEST authorizer's input for ``$connect``."""
    headers, multi_headers = request.event_headers()
    context = _request_context(
        api,
        route_key=ROUTE_CONNECT,
        event_type="CONNECT",
        connection_id=connection_id,
        connected_at=now_ms,
        now_ms=now_ms,
        source_ip=request.source_ip,
        user_agent=request.user_agent,
    )
    return {
        "type": "REQUEST",
        "methodArn": api.connect_method_arn,
        "headers": headers,
        "multiValueHeaders": multi_headers,
        **request.event_query(),
        "stageVariables": {},
        "requestContext": context,
    }


def connect_event(
    api: ApiContext,
    request: HandshakeRequest,
    *,
    connection_id: str,
    connected_at: int,
    now_ms: int,
    authorizer: Optional[Dict[str, Any]],
) -> Dict[str, Any]:
    headers, multi_headers = request.event_headers()
    context = _request_context(
        api,
        route_key=ROUTE_CONNECT,
        event_type="CONNECT",
        connection_id=connection_id,
        connected_at=connected_at,
        now_ms=now_ms,
        source_ip=request.source_ip,
        user_agent=request.user_agent,
    )
    if authorizer is not None:
        context["authorizer"] = dict(authorizer)
    return {
        "headers": headers,
        "multiValueHeaders": multi_headers,
        **request.event_query(),
        "requestContext": context,
        "isBase64Encoded": False,
    }


def message_event(
    api: ApiContext,
    *,
    connection_id: str,
    connected_at: int,
    now_ms: int,
    source_ip: str,
    route_key: str,
    body: "str | bytes",
    authorizer: Optional[Dict[str, Any]],
) -> Dict[str, Any]:
    """A ``MESSAGE`` event; binary frames arrive base64-encoded."""
    context = _request_context(
        api,
        route_key=route_key,
        event_type="MESSAGE",
        connection_id=connection_id,
        connected_at=connected_at,
        now_ms=now_ms,
        source_ip=source_ip,
        user_agent=None,
    )
    context["messageId"] = new_request_id()
    if authorizer is not None:
        context["authorizer"] = dict(authorizer)
    if isinstance(body, bytes):
        return {
            "requestContext": context,
            "body": base64.b64encode(body).decode("ascii"),
            "isBase64Encoded": True,
        }
    return {"requestContext": context, "body": body, "isBase64Encoded": False}


def disconnect_event(
    api: ApiContext,
    request: HandshakeRequest,
    *,
    connection_id: str,
    connected_at: int,
    now_ms: int,
    status_code: int,
    reason: str,
    authorizer: Optional[Dict[str, Any]],
) -> Dict[str, Any]:
    # API Gateway's $disconnect carries only a few headers of the original
    # request (Host and its own forwarding headers), not the client's.
    headers, multi_headers = HandshakeRequest(
        headers=(("Host", api.domain_name),),
        source_ip=request.source_ip,
        port=request.port,
        scheme=request.scheme,
    ).event_headers()
    context = _request_context(
        api,
        route_key=ROUTE_DISCONNECT,
        event_type="DISCONNECT",
        connection_id=connection_id,
        connected_at=connected_at,
        now_ms=now_ms,
        source_ip=request.source_ip,
        user_agent=request.user_agent,
    )
    context["disconnectStatusCode"] = status_code
    context["disconnectReason"] = reason
    if authorizer is not None:
        context["authorizer"] = dict(authorizer)
    return {
        "headers": headers,
        "multiValueHeaders": multi_headers,
        "requestContext": context,
        "isBase64Encoded": False,
    }


def select_route(body: "str | bytes", routes: Sequence[str]) -> Optional[str]:
    """Route selection on ``$request.body.action``.

    A JSON object whose ``action`` names a custom route goes there; anything
    else (non-JSON, binary, no match) goes to ``$default`` if it exists, else
    nowhere (API Gateway then answers the client with an error message).
    Chalice only ever defines ``$default``.
    """
    if isinstance(body, str):
        try:
            parsed = json.loads(body)
        except ValueError:
            parsed = None
        if isinstance(parsed, dict):
            action = parsed.get("action")
            if isinstance(action, str) and action in routes and not action.startswith("$"):
                return action
    return ROUTE_DEFAULT if ROUTE_DEFAULT in routes else None


# --------------------------------------------------------------------------
# Authorizer results
# --------------------------------------------------------------------------


@attrs.frozen
class Refusal:
    """A refused handshake: HTTP status and body sent instead of 101."""

    status: int
    body: str = ""

    @classmethod
    def message(cls, status: int, message: str) -> "Refusal":
        return cls(status, json.dumps({"message": message}))


UNAUTHORIZED = Refusal.message(401, "Unauthorized")
FORBIDDEN = Refusal.message(403, "Forbidden")
INTERNAL_ERROR = Refusal.message(500, "Internal server error")


@attrs.frozen
class Allowed:
    """An Allow decision; ``authorizer`` becomes ``requestContext.authorizer``."""

    authorizer: Dict[str, Any]


class AuthorizerConfigurationError(Exception):
    """The authorizer's output is not a valid policy response (API Gateway: 500)."""


def _as_list(value: Any) -> List[Any]:
    return value if isinstance(value, list) else [value]


def _matches(pattern: str, value: str) -> bool:
    # IAM wildcards: '*' any run of characters, '?' one character.
    # fnmatch's '[...]' classes do not exist in IAM, so escape them.
    escaped = pattern.replace("[", "[[]")
    return fnmatch.fnmatchcase(value, escaped)


def _stringify(value: Any, key: str) -> str:
    # "You can't set a JSON object or array as a valid value of any key in
    # the context map"; the values reach the integration as strings.
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float, str)):
        return str(value)
    raise AuthorizerConfigurationError(f"context[{key!r}] must be a string, number or boolean")


def evaluate_authorizer(result: Any, method_arn: str) -> "Allowed | Refusal":
    """Turn a REQUEST authorizer's output into API Gateway's decision.

    - The output must carry ``principalId`` and a ``policyDocument``;
      otherwise 500 (``AuthorizerConfigurationException``).
    - An explicit ``Deny`` matching ``methodArn`` wins; otherwise an ``Allow``
      matching it allows; no match is an implicit deny: 403.
    - Only a *raised* ``Unauthorized`` means 401, and the caller sees that
      exception. A *returned* ``"Unauthorized"`` string is output like any
      other: not a policy response, so 500.
    """
    try:
        if not isinstance(result, dict):
            raise AuthorizerConfigurationError("authorizer output must be an object")
        principal = result.get("principalId")
        if principal is None or isinstance(principal, (dict, list)):
            raise AuthorizerConfigurationError("principalId is required")
        document = result.get("policyDocument")
        if not isinstance(document, dict) or "Statement" not in document:
            raise AuthorizerConfigurationError("policyDocument.Statement is required")
        allowed = denied = False
        for statement in _as_list(document["Statement"]):
            if not isinstance(statement, dict):
                raise AuthorizerConfigurationError("each Statement must be an object")
            effect = statement.get("Effect")
            if effect not in ("Allow", "Deny"):
                raise AuthorizerConfigurationError(f"invalid Effect {effect!r}")
            actions = [str(a) for a in _as_list(statement.get("Action", []))]
            resources = [str(r) for r in _as_list(statement.get("Resource", []))]
            if not any(_matches(a, "execute-api:Invoke") for a in actions):
                continue
            if not any(_matches(r, method_arn) for r in resources):
                continue
            if effect == "Deny":
                denied = True
            else:
                allowed = True
        context = result.get("context") or {}
        if not isinstance(context, dict):
            raise AuthorizerConfigurationError("context must be an object")
        authorizer = {key: _stringify(value, key) for key, value in context.items()}
    except AuthorizerConfigurationError:
        return INTERNAL_ERROR
    if denied or not allowed:
        return FORBIDDEN
    authorizer["principalId"] = str(principal)
    return Allowed(authorizer)


def is_unauthorized_error(exc: BaseException) -> bool:
    """Lambda authorizers signal 401 by failing with exactly ``Unauthorized``."""
    return str(exc) == "Unauthorized"


def evaluate_connect_response(result: Any) -> Optional[Refusal]:
    """``None`` if ``$connect`` accepted the connection, else the refusal.

    A Lambda proxy response with a non-2xx ``statusCode`` refuses the
    handshake with that status. (API Gateway drops the body; we keep it in
    the refusal because it helps, as the design allows.) No ``statusCode``
    means 200.
    """
    if result is None:
        return None
    if not isinstance(result, dict):
        return None
    raw = result.get("statusCode", 200)
    try:
        status = int(raw)
    except (TypeError, ValueError):
        return INTERNAL_ERROR
    if 200 <= status < 300:
        return None
    if not 100 <= status <= 599:
        return INTERNAL_ERROR
    body = result.get("body")
    if body is None:
        body = ""
    elif not isinstance(body, str):
        body = json.dumps(body)
    elif result.get("isBase64Encoded"):
        body = base64.b64decode(body).decode("utf-8", "replace")
    return Refusal(status, body)


# --------------------------------------------------------------------------
# Connection state machine
# --------------------------------------------------------------------------


class State(enum.Enum):
    """Lifecycle of one connection as API Gateway sees it."""

    CONNECTING = "CONNECTING"  # handshake received, $connect not done: posts get 410
    OPEN = "OPEN"
    CLOSING = "CLOSING"  # a close frame was sent or received
    CLOSED = "CLOSED"


class ConnectionGone(Exception):
    """The connection is not OPEN; ``@connections`` answers 410 GoneException."""


@attrs.frozen
class Message:
    """A complete client message: ``str`` for text, ``bytes`` for binary."""

    data: "str | bytes"


@attrs.frozen
class Disconnect:
    """Why a connection ended, as reported in ``$disconnect``."""

    status_code: int
    reason: str


_DEFAULT_REASONS = {
    1000: "Connection Closed Normally",
    1001: "Going away",
    1005: "Client-side close frame status not set",
    1006: "Connection was closed abnormally",
    1009: "Message too big",
}

IDLE_REASON = "Going away"


class _GatewayProtocol(Protocol):
    """websockets' protocol, with API Gateway's close reason for 1009."""

    def fail(self, code: int, reason: str = "") -> None:
        if code == CloseCode.MESSAGE_TOO_BIG:
            reason = _DEFAULT_REASONS[1009]
        super().fail(code, reason)

MAX_DURATION_REASON = "Going away"


@attrs.define(kw_only=True)
class Connection:
    """One client connection: limits, activity and the close handshake.

    Drive it with :meth:`accept` once ``$connect`` succeeded, then
    :meth:`receive_data` / :meth:`receive_eof` with bytes from the socket and
    :meth:`check_timeouts` at :meth:`deadline`. After every call, write
    :meth:`data_to_send` to the socket (an empty ``bytes`` means: close the
    socket) and, when :meth:`take_disconnect` returns a value, fire
    ``$disconnect`` with it: it returns one exactly once per accepted
    connection.
    """

    connection_id: str
    request: HandshakeRequest
    connected_at: float  # epoch seconds
    idle_timeout: float
    max_duration: float
    max_frame_bytes: int = MAX_FRAME_BYTES
    max_message_bytes: int = MAX_MESSAGE_BYTES
    authorizer: Optional[Dict[str, Any]] = None

    state: State = State.CONNECTING
    last_active_at: float = attrs.field(default=None)
    _ws: Optional[Protocol] = attrs.field(default=None, init=False)
    _fragments: List[bytes] = attrs.field(factory=list, init=False)
    _fragment_opcode: Optional[Opcode] = attrs.field(default=None, init=False)
    _server_close: Optional[Disconnect] = attrs.field(default=None, init=False)
    _disconnect: Optional[Disconnect] = attrs.field(default=None, init=False)
    _disconnect_taken: bool = attrs.field(default=False, init=False)

    def __attrs_post_init__(self) -> None:
        if self.last_active_at is None:
            self.last_active_at = self.connected_at

    @property
    def connected_at_ms(self) -> int:
        return int(self.connected_at * 1000)

    # -- handshake ----------------------------------------------------------

    def accept(self, authorizer: Optional[Dict[str, Any]] = None) -> None:
        """``$connect`` succeeded: the socket is upgraded and frames may flow."""
        if self.state is not State.CONNECTING:
            raise RuntimeError(f"cannot accept a connection in state {self.state.name}")
        self.authorizer = authorizer
        # API Gateway: 32 KB per frame, 128 KB per message; beyond either,
        # the connection is closed with 1009. websockets checks the frame
        # header's length before reading the payload.
        self._ws = _GatewayProtocol(
            Side.SERVER,
            max_size=(self.max_message_bytes, self.max_frame_bytes),
        )
        self.state = State.OPEN

    def refuse(self) -> None:
        """``$connect`` refused the handshake: no ``$disconnect`` will fire."""
        self.state = State.CLOSED
        self._disconnect_taken = True

    # -- inputs -------------------------------------------------------------

    def receive_data(self, data: bytes, now: float) -> List[Message]:
        """Feed bytes from the client; return the complete messages in them."""
        if self._ws is None:
            return []
        self._ws.receive_data(data)
        return self._process(now)

    def receive_eof(self, now: float) -> List[Message]:
        """The client's TCP stream ended (or the socket was lost)."""
        if self._ws is None:
            # Never accepted: $connect did not succeed, so no $disconnect.
            self.refuse()
            return []
        self._ws.receive_eof()
        return self._process(now)

    def close(self, code: int, reason: str = "") -> None:
        """Start a server-side close (DELETE @connections, timeouts)."""
        if self._ws is None or self.state is not State.OPEN:
            return
        self._server_close = Disconnect(code, reason or _DEFAULT_REASONS.get(code, ""))
        self._ws.send_close(code, reason)
        self.state = State.CLOSING

    def abort(self) -> None:
        """Drop the socket: the peer never completed the close handshake, or the
        gateway is shutting down.

        A connection still in ``$connect`` was never accepted, so it is refused
        instead: ``$disconnect`` fires only for connections whose ``$connect``
        succeeded, and one that never completed ``$connect`` must not get one.
        """
        if self.state is State.CLOSED:
            return
        if self.state is State.CONNECTING:
            self.refuse()
            return
        if self._ws is not None and self._ws.state is not WsState.CLOSED:
            self._ws.fail(CloseCode.ABNORMAL_CLOSURE)
        self._finish()

    def send(self, data: "str | bytes") -> None:
        """``POST @connections/{id}``: send one message to the client."""
        if self.state is not State.OPEN or self._ws is None:
            raise ConnectionGone(self.connection_id)
        if isinstance(data, str):
            self._ws.send_text(data.encode("utf-8"))
        else:
            self._ws.send_binary(data)

    # -- timeouts -----------------------------------------------------------

    def deadline(self) -> float:
        """When :meth:`check_timeouts` must next be called (epoch seconds)."""
        return min(
            self.last_active_at + self.idle_timeout,
            self.connected_at + self.max_duration,
        )

    def check_timeouts(self, now: float) -> Optional[str]:
        """Close with 1001 if idle or too old; return which limit, if any."""
        if self.state is not State.OPEN:
            return None
        if now >= self.connected_at + self.max_duration:
            self.close(CloseCode.GOING_AWAY, MAX_DURATION_REASON)
            return "max_duration"
        if now >= self.last_active_at + self.idle_timeout:
            self.close(CloseCode.GOING_AWAY, IDLE_REASON)
            return "idle"
        return None

    # -- outputs ------------------------------------------------------------

    def data_to_send(self) -> List[bytes]:
        if self._ws is None:
            return []
        return self._ws.data_to_send()

    def take_disconnect(self) -> Optional[Disconnect]:
        """The ``$disconnect`` details, once, after the connection closed."""
        if self._disconnect is None or self._disconnect_taken:
            return None
        self._disconnect_taken = True
        return self._disconnect

    # -- internals ----------------------------------------------------------

    def _process(self, now: float) -> List[Message]:
        assert self._ws is not None
        messages: List[Message] = []
        for frame in self._ws.events_received():
            if frame.opcode in (Opcode.TEXT, Opcode.BINARY):
                self._fragment_opcode = frame.opcode
                self._fragments = [bytes(frame.data)]
            elif frame.opcode is Opcode.CONT:
                self._fragments.append(bytes(frame.data))
            else:
                # Control frames do not reset the idle timer (API Gateway
                # counts messages; clients keep alive with messages).
                continue
            if frame.fin:
                payload = b"".join(self._fragments)
                opcode, self._fragments, self._fragment_opcode = self._fragment_opcode, [], None
                self.last_active_at = now
                if opcode is Opcode.TEXT:
                    messages.append(Message(payload.decode("utf-8")))
                else:
                    messages.append(Message(payload))
        if self._ws.state is WsState.CLOSING and self.state is State.OPEN:
            self.state = State.CLOSING
        if self._ws.state is WsState.CLOSED:
            self._finish()
        return messages

    def _finish(self) -> None:
        if self.state is State.CLOSED:
            return
        self.state = State.CLOSED
        self._disconnect = self._disconnect_details()

    def _disconnect_details(self) -> Disconnect:
        ws = self._ws
        if self._server_close is not None:
            return self._server_close
        if ws is not None and ws.close_rcvd is not None and ws.close_sent is not None:
            if ws.close_rcvd_then_sent is False:
                # We initiated (protocol failure such as 1009).
                sent = ws.close_sent
                return Disconnect(sent.code, sent.reason or _DEFAULT_REASONS.get(sent.code, ""))
            rcvd = ws.close_rcvd
            return Disconnect(rcvd.code, rcvd.reason or _DEFAULT_REASONS.get(rcvd.code, ""))
        if ws is not None and ws.close_sent is not None and ws.close_sent.code != CloseCode.ABNORMAL_CLOSURE:
            sent = ws.close_sent
            return Disconnect(sent.code, sent.reason or _DEFAULT_REASONS.get(sent.code, ""))
        return Disconnect(1006, _DEFAULT_REASONS[1006])
