"""Sans-I/O core of the reference client (docs/protocol.md).

:class:`ClientProtocol` holds the client's state and turns inputs (a socket
opened, a message, a close, a refusal, the clock) into actions (open a
socket, send, close, print, exit). The I/O layer (:mod:`broadcast_client.cli`)
performs the actions and feeds back what happens; tests do the same without
sockets. Sockets are named by keys the protocol hands out (``c1``, ``c2``...).
"""
from __future__ import annotations

import enum
import json
import random
from typing import Any, Callable, Dict, List, Optional
from urllib.parse import urlencode

import attrs

# -- actions -------------------------------------------------------------------


@attrs.frozen
class Open:
    """Open a WebSocket to ``url`` (after ``delay`` seconds) under ``key``."""

    key: str
    url: str
    delay: float = 0.0


@attrs.frozen
class Send:
    key: str
    text: str


@attrs.frozen
class Close:
    key: str
    code: int = 1000


@attrs.frozen
class Print:
    text: str


@attrs.frozen
class Exit:
    code: int
    reason: str


Action = "Open | Send | Close | Print | Exit"


#: First messages of a connection; they carry the sequence number reached so far.
_WELCOMES = ("sessionCreated", "sessionJoined", "connectionRefreshComplete")


class Role(enum.Enum):
    SPEAKER = "speaker"
    LISTENER = "listener"


class Purpose(enum.Enum):
    START = "start"  # createSession / joinSession
    REFRESH = "refresh"  # refreshConnection, replacing the current socket
    RECONNECT = "reconnect"  # refreshConnection after an unexpected drop


def backoff(attempt: int, *, base: float = 0.5, cap: float = 30.0,
            rng: Callable[[], float] = random.random) -> float:
    """Delay before reconnect ``attempt`` (1, 2...): capped exponential with jitter."""
    ceiling = min(cap, base * 2 ** (attempt - 1))
    return ceiling / 2 + rng() * ceiling / 2


@attrs.define(kw_only=True)
class ClientProtocol:
    """A speaker or a listener, across refreshes and reconnects."""

    url: str  # ws://127.0.0.1:8000/dev
    role: Role
    token: Optional[str] = None  # speaker
    source_language: str = "en"  # speaker
    quality_tier: Optional[str] = None  # speaker
    session_id: Optional[str] = None  # listener (given), speaker (learned)
    target_language: Optional[str] = None  # listener
    heartbeat_interval: float = 30.0
    max_reconnects: int = 8
    rng: Callable[[], float] = random.random

    current: Optional[str] = None  # the socket that carries the session
    _purposes: Dict[str, Purpose] = attrs.field(factory=dict)
    _open: set = attrs.field(factory=set)
    _counter: int = 0
    _next_heartbeat: Optional[float] = None
    _reconnects: int = 0
    _last_sequence: Optional[int] = None
    _ended: bool = False
    _stopping: bool = False
    done: Optional[Exit] = None

    # -- URLs ------------------------------------------------------------------

    def _url(self, params: Dict[str, Any]) -> str:
        return f"{self.url}?{urlencode({k: v for k, v in params.items() if v is not None})}"

    def start_url(self) -> str:
        if self.role is Role.SPEAKER:
            return self._url({"action": "createSession", "sourceLanguage": self.source_language,
                              "qualityTier": self.quality_tier, "token": self.token})
        return self.join_url()

    def join_url(self) -> str:
        return self._url({"action": "joinSession", "sessionId": self.session_id,
                          "targetLanguage": self.target_language})

    def refresh_url(self, reconnect_query: Optional[Dict[str, Any]] = None) -> str:
        """The refreshConnection URL; the server's ``reconnectQuery`` wins when given."""
        if isinstance(reconnect_query, dict) and reconnect_query.get("action"):
            params = {k: v for k, v in reconnect_query.items() if k != "token"}
            if self.role is Role.SPEAKER:
                params["token"] = self.token
            return self._url(params)
        if self.role is Role.SPEAKER:
            return self._url({"action": "refreshConnection", "sessionId": self.session_id,
                              "role": "speaker", "token": self.token})
        return self._url({"action": "refreshConnection", "sessionId": self.session_id,
                          "role": "listener", "targetLanguage": self.target_language})

    def _open_socket(self, url: str, purpose: Purpose, delay: float = 0.0) -> Open:
        self._counter += 1
        key = f"c{self._counter}"
        self._purposes[key] = purpose
        return Open(key, url, delay)

    def _exit(self, code: int, reason: str) -> List[Any]:
        self.done = Exit(code, reason)
        actions: List[Any] = [Close(key) for key in sorted(self._open)]
        return actions + [self.done]

    # -- inputs ----------------------------------------------------------------

    def start(self) -> List[Any]:
        """The first action: open the socket that creates or joins the session."""
        if self.role is Role.SPEAKER and not self.token:
            return self._exit(2, "a speaker needs a token (--token or BROADCAST_TOKEN)")
        if self.role is Role.LISTENER and not (self.session_id and self.target_language):
            return self._exit(2, "a listener needs a session id and a language")
        return [self._open_socket(self.start_url(), Purpose.START)]

    def opened(self, key: str, now: float) -> List[Any]:
        """The socket ``key`` completed its handshake."""
        self._open.add(key)
        purpose = self._purposes.get(key)
        if purpose in (Purpose.START, Purpose.RECONNECT):
            self.current = key
            self._next_heartbeat = now + self.heartbeat_interval
        return []

    def refused(self, key: str, status: int, body: str, now: float) -> List[Any]:
        """The handshake of ``key`` was refused with an HTTP ``status``."""
        purpose = self._purposes.pop(key, None)
        detail = _describe_refusal(status, body)
        if purpose is Purpose.REFRESH:
            return [Print(f"! refresh refused ({detail}); keeping the current connection")]
        if purpose is Purpose.RECONNECT:
            if status == 404:
                code = 1 if self.role is Role.SPEAKER else 0
                return self._exit(code, f"the session has ended ({detail})")
            if status >= 500 or status == 429:
                return self._reconnect(f"reconnect refused ({detail})")
            return self._exit(1, f"reconnect refused: {detail}")
        return self._exit(1, f"connection refused: {detail}")

    def failed(self, key: str, error: str, now: float) -> List[Any]:
        """The socket ``key`` could not be opened (network error)."""
        purpose = self._purposes.pop(key, None)
        if purpose is Purpose.REFRESH:
            return [Print(f"! refresh failed ({error}); keeping the current connection")]
        if purpose is Purpose.RECONNECT:
            return self._reconnect(f"reconnect failed ({error})")
        return self._exit(1, f"cannot connect: {error}")

    def received(self, key: str, text: str, now: float) -> List[Any]:
        """A message arrived on ``key``."""
        try:
            message = json.loads(text)
        except ValueError:
            return [Print(f"< {text}")]
        if not isinstance(message, dict):
            return [Print(f"< {text}")]
        kind = message.get("type")
        sequence = message.get("sequenceNumber")
        if isinstance(sequence, int) and kind not in _WELCOMES:
            # During a refresh both sockets carry the broadcast: drop duplicates.
            if self._last_sequence is not None and sequence <= self._last_sequence:
                return []
            self._last_sequence = sequence
        actions: List[Any] = [Print(f"< {text}")]
        if kind in _WELCOMES:
            self._reconnects = 0
        if kind == "sessionCreated":
            self.session_id = message.get("sessionId")
            actions.append(Print(f"session id: {self.session_id}"))
        elif kind == "connectionRefreshRequired" and key == self.current:
            if self.session_id and not any(p is Purpose.REFRESH for p in self._purposes.values()):
                actions.append(Print("refreshing the connection"))
                actions.append(self._open_socket(self.refresh_url(message.get("reconnectQuery")),
                                                 Purpose.REFRESH))
        elif kind == "connectionRefreshComplete" and self._purposes.get(key) is Purpose.REFRESH:
            old, self.current = self.current, key
            self._purposes[key] = Purpose.START
            self._next_heartbeat = now + self.heartbeat_interval
            if old is not None and old in self._open:
                actions.append(Close(old))
        elif kind == "sessionEnded":
            self._ended = True
            actions.extend(self._exit(0, f"session ended ({message.get('reason', 'unknown')})"))
        return actions

    def closed(self, key: str, code: Optional[int], now: float) -> List[Any]:
        """The socket ``key`` closed (by either side)."""
        self._open.discard(key)
        self._purposes.pop(key, None)
        if key != self.current or self.done is not None:
            return []
        self.current = None
        if self._stopping:
            return self._exit(0, "stopped")
        if self._ended:
            return self._exit(0, "session ended")
        # docs/protocol.md: reconnect with refreshConnection unless the session
        # ended. A speaker's session survives only SPEAKER_RECONNECT_GRACE_SECONDS
        # (0 by default): the server then answers 404 and we stop.
        return self._reconnect(f"connection lost (close code {code})")

    def _reconnect(self, why: str) -> List[Any]:
        self._reconnects += 1
        if self._reconnects > self.max_reconnects:
            return self._exit(1, f"{why}; giving up after {self.max_reconnects} attempts")
        delay = backoff(self._reconnects, rng=self.rng)
        return [Print(f"! {why}; reconnecting in {delay:.1f} s"),
                self._open_socket(self.refresh_url(), Purpose.RECONNECT, delay)]

    def tick(self, now: float) -> List[Any]:
        """Call at least every :meth:`next_wakeup`: sends heartbeats when due."""
        if self.current is None or self._next_heartbeat is None or self.done is not None:
            return []
        if now < self._next_heartbeat:
            return []
        self._next_heartbeat = now + self.heartbeat_interval
        return [Send(self.current, json.dumps({"action": "heartbeat"}))]

    def next_wakeup(self) -> Optional[float]:
        return self._next_heartbeat

    def stop(self) -> List[Any]:
        """The user asked to stop (Ctrl-C): a speaker ends its session first."""
        self._stopping = True
        if self.current is None:
            return self._exit(0, "stopped")
        actions: List[Any] = []
        if self.role is Role.SPEAKER and self.session_id:
            actions.append(Send(self.current, json.dumps(
                {"action": "endSession", "sessionId": self.session_id})))
        return actions + self._exit(0, "stopped")


def _describe_refusal(status: int, body: str) -> str:
    try:
        parsed = json.loads(body)
    except ValueError:
        parsed = None
    if isinstance(parsed, dict) and parsed.get("code"):
        return f"{status} {parsed['code']}: {parsed.get('message', '')}".strip()
    if isinstance(parsed, dict) and parsed.get("message"):
        return f"{status} {parsed['message']}"
    return f"HTTP {status}"
