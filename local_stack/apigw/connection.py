"""One WebSocket connection as API Gateway sees it: a sans-I/O state machine.

Bytes from the socket and the time go in; complete messages, bytes to send and,
once, the ``$disconnect`` details come out. It enforces the documented limits
(API Gateway quotas for WebSocket APIs: 32 KB frames, 128 KB messages, the idle
timeout and the maximum connection duration) and answers ``@connections`` posts
to a connection that is not open with :class:`ConnectionGone` (410).
"""
from __future__ import annotations

import codecs
import enum
from typing import Any, Dict, List, Optional

import attrs
from websockets.frames import CloseCode, Frame, Opcode
from websockets.protocol import Protocol, Side
from websockets.protocol import State as WsState

from ..settings import MAX_FRAME_BYTES, MAX_MESSAGE_BYTES
from .events import HandshakeRequest


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
    1007: "Invalid frame payload data",
    1009: "Message too big",
}

IDLE_REASON = "Going away"


class _GatewayProtocol(Protocol):
    """websockets' protocol, with UTF-8 checked as text frames arrive, and
    API Gateway's close reasons for 1007 and 1009."""

    _utf8 = None  # the incremental decoder of the text message being received

    def recv_frame(self, frame: Frame) -> None:
        # RFC 6455 section 8.1: a text message that is not valid UTF-8 makes the
        # endpoint _Fail the WebSocket Connection_ with 1007 (section 7.4.1: "data
        # within a message that was not consistent with the type of the message").
        # Checked here, in the parser, frame by frame: the parser then fails the
        # connection before it reads any later frame (section 7.1.7), a close
        # frame included, and fails fast on the first bad fragment.
        # websockets turns the UnicodeDecodeError into that failure. Before this,
        # the text was decoded after parsing and the error escaped: the gateway
        # dropped the TCP connection (1006).
        if frame.opcode is Opcode.TEXT:
            self._utf8 = codecs.getincrementaldecoder("utf-8")()
        elif frame.opcode is Opcode.BINARY:
            self._utf8 = None
        if frame.opcode in (Opcode.TEXT, Opcode.CONT) and self._utf8 is not None:
            self._utf8.decode(frame.data, final=frame.fin)
        super().recv_frame(frame)

    def fail(self, code: int, reason: str = "") -> None:
        if code in (CloseCode.INVALID_DATA, CloseCode.MESSAGE_TOO_BIG):
            reason = _DEFAULT_REASONS[code]
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
                # Text was checked as UTF-8 by the parser (_GatewayProtocol).
                messages.append(Message(payload.decode("utf-8") if opcode is Opcode.TEXT else payload))
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
