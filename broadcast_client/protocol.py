"""Sans-I/O core of the reference client (docs/protocol.md).

:class:`ClientProtocol` holds the client's state and turns inputs (a socket
opened, a message, a close, a refusal, a typed command, the clock) into
:mod:`~broadcast_client.actions` (open a socket, send, close, print, exit, read
or write audio). The I/O layer (:mod:`broadcast_client.cli`) performs the
actions and feeds back what happens; tests do the same without sockets.

Its helpers, each pure: :mod:`~broadcast_client.ordering` (order, duplicates,
gaps, audio order), :mod:`~broadcast_client.commands` (what a typed line means),
:mod:`~broadcast_client.audio` (tones, chunks), :mod:`~broadcast_client.display`
(readable output) and :mod:`~broadcast_client.token_hints` (why a token may
have been refused).
"""
from __future__ import annotations

import enum
import json
import random
import time as _time
from typing import Any, Callable, Dict, List, Optional, Tuple
from urllib.parse import urlencode

import attrs

from . import commands
from .actions import Close, Exit, FetchToken, Open, Print, ReadAudio, Send
from .audio import AUDIO_CHUNK_BYTES, AUDIO_FORMAT, decode_audio_data, send_audio_bodies, tone_pcm16
from .commands import LISTENER_HELP, SPEAKER_HELP
from .display import describe, describe_gap, describe_nothing_listening, describe_refusal, redact
from .ordering import AUDIO_HOLD, AudioOrder, BroadcastSequences, Release, ReorderBuffer
from .token_hints import token_hints

#: How long Ctrl-C waits for ``sessionEnded`` after ``endSession`` before closing.
END_SESSION_TIMEOUT = 5.0

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


#: Reply types that answer an action (besides an ``error`` naming the action).
_ANSWERS = {"getSessionStatus": "sessionStatus", "changeLanguage": "languageChanged",
            "endSession": "sessionEnded"}



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
    output: str = attrs.field(default="json", validator=attrs.validators.in_(("json", "text")))
    audio_out: bool = False  # listener: emit WriteAudio for received audio
    chunk_bytes: int = AUDIO_CHUNK_BYTES  # speaker: raw bytes per sendAudio chunk
    #: listener: how long audio waits for a missing chunk, the first one for earlier ones
    #: (``listen --audio-hold``)
    audio_hold: float = AUDIO_HOLD
    answer_timeout: float = 5.0  # how long a command waits for the previous one's answer
    #: speaker: get a fresh token (FetchToken) before every refresh and reconnect,
    #: and before the first socket when no token was given (``--token-command``)
    fresh_tokens: bool = False
    #: how long a refresh socket may stay open without connectionRefreshComplete
    refresh_timeout: float = 15.0
    #: how long a replaced socket is still read after connectionRefreshComplete
    #: (messages on their way to it still arrive; the browser client waits 1 s too)
    drain: float = 1.0

    current: Optional[str] = None  # the socket that carries the session
    broadcast_state: Optional[dict] = None  # as last reported by the server
    _purposes: Dict[str, Purpose] = attrs.field(factory=dict)
    _open: set = attrs.field(factory=set)
    _counter: int = 0
    _next_heartbeat: Optional[float] = None
    _reconnects: int = 0
    _sequences: BroadcastSequences = attrs.field(factory=BroadcastSequences)
    _audio: Optional[AudioOrder] = None
    _audio_sent: int = 0  # speaker: the last sendAudio sequenceNumber
    _awaiting: Optional[Tuple[str, float]] = None  # (action, give up at) of the command in flight
    _backlog: List[str] = attrs.field(factory=list)  # commands typed meanwhile
    _ended: bool = False
    _stopping: bool = False
    _pending: Dict[str, Tuple[Optional[Dict[str, Any]], float]] = attrs.field(factory=dict)  # FetchToken
    _refresh_query: Optional[Dict[str, Any]] = None  # the last reconnectQuery, for retries
    # The current socket's connectionId (from its welcome): a listener refresh names
    # it as previousConnectionId to take over its place (docs/protocol.md).
    connection_id: Optional[str] = None
    _refresh_deadlines: Dict[str, float] = attrs.field(factory=dict)  # open refresh sockets
    # Sockets opened for a refresh: their welcome keeps the buffers' place, even when
    # the old socket closed first and they carry on as a reconnect would.
    _refresh_keys: set = attrs.field(factory=set)
    _retiring: Dict[str, float] = attrs.field(factory=dict)  # replaced sockets: close at
    done: Optional[Exit] = None

    def __attrs_post_init__(self) -> None:
        self._audio = AudioOrder(hold=self.audio_hold)

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
                          "role": "listener", "targetLanguage": self.target_language,
                          "previousConnectionId": self.connection_id})

    def _open_socket(self, purpose: Purpose, delay: float = 0.0,
                     reconnect_query: Optional[Dict[str, Any]] = None) -> "Open | FetchToken":
        """Open a socket for ``purpose``; a speaker with :attr:`fresh_tokens` first
        asks for a token (:class:`FetchToken`), and the socket opens once it arrives."""
        self._counter += 1
        key = f"c{self._counter}"
        self._purposes[key] = purpose
        if purpose is Purpose.REFRESH:
            self._refresh_keys.add(key)
        if self.role is Role.SPEAKER and self.fresh_tokens and (purpose is not Purpose.START
                                                                  or not self.token):
            self._pending[key] = (reconnect_query, delay)
            return FetchToken(key, delay)
        return Open(key, self._socket_url(key, reconnect_query), delay)

    def _socket_url(self, key: str, reconnect_query: Optional[Dict[str, Any]]) -> str:
        if self._purposes.get(key) is Purpose.START:
            return self.start_url()
        return self.refresh_url(reconnect_query)

    def _pending_refresh(self) -> Optional[str]:
        """The socket of the refresh under way, if any."""
        return next((k for k, p in self._purposes.items() if p is Purpose.REFRESH), None)

    def _exit(self, code: int, reason: str) -> List[Any]:
        actions = self._flush()
        self.done = Exit(code, reason)
        actions += [Close(key) for key in sorted(self._open)]
        return actions + [self.done]

    def _flush(self) -> List[Any]:
        """What still waits for a missing message or chunk, in order: nothing else
        will come (the browser page drops it; a transcript should keep it)."""
        actions: List[Any] = []
        for language, result in self._sequences.flush():
            # Audio among them is flushed right below: its arrival time does not matter.
            actions += self._release(language, result, 0.0)
        return actions + self._audio.flush()

    def sequence(self, language: Optional[str]) -> ReorderBuffer:
        """The reorder buffer of one target language."""
        return self._sequences.of(language)

    # -- inputs ----------------------------------------------------------------

    def start(self) -> List[Any]:
        """The first action: open the socket that creates or joins the session."""
        if self.role is Role.SPEAKER and not (self.token or self.fresh_tokens):
            return self._exit(2, "a speaker needs a token (--token, BROADCAST_TOKEN or --token-command)")
        if self.role is Role.LISTENER and not (self.session_id and self.target_language):
            return self._exit(2, "a listener needs a session id and a language")
        return [self._open_socket(Purpose.START)]

    def token_ready(self, key: str, token: str, now: float) -> List[Any]:
        """The token asked for by :class:`FetchToken` ``key``: open that socket with it."""
        pending = self._pending.pop(key, None)
        if pending is None or key not in self._purposes or self.done is not None:
            return []  # given up meanwhile
        self.token = token
        return [Open(key, self._socket_url(key, pending[0]))]

    def token_failed(self, key: str, error: str, now: float) -> List[Any]:
        """The token command of :class:`FetchToken` ``key`` failed."""
        if self._pending.pop(key, None) is None or self.done is not None:
            return []
        return self.failed(key, f"token command failed: {error}", now)

    def opened(self, key: str, now: float) -> List[Any]:
        """The socket ``key`` completed its handshake."""
        self._open.add(key)
        purpose = self._purposes.get(key)
        if purpose is Purpose.RECONNECT and self.current is not None and self.current != key:
            # Another socket carries the session already (a refresh took over):
            # a second current one would stay open, unheard, for good.
            self._purposes.pop(key, None)
            return [Print("! another connection already carries the session; closing the extra one"),
                    Close(key)]
        if purpose in (Purpose.START, Purpose.RECONNECT):
            self.current = key
            self._next_heartbeat = now + self.heartbeat_interval
        elif purpose is Purpose.REFRESH:
            self._refresh_deadlines[key] = now + self.refresh_timeout
        return []

    def refused(self, key: str, status: int, body: str, now: float) -> List[Any]:
        """The handshake of ``key`` was refused with an HTTP ``status``."""
        purpose = self._purposes.pop(key, None)
        self._refresh_keys.discard(key)
        detail = describe_refusal(status, body)
        if status == 401 and self.role is Role.SPEAKER:
            # API Gateway says only "Unauthorized"; the token itself may say why.
            detail += f"; {token_hints(self.token, now)}"
        if purpose is None or self.done is not None:
            return []  # a socket given up on meanwhile
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

    def failed(self, key: str, error: str, now: float, *, nothing_listening: bool = False) -> List[Any]:
        """The socket ``key`` could not be opened (network error); ``nothing_listening``:
        the connection was refused, no server listens at the URL's address."""
        purpose = self._purposes.pop(key, None)
        self._refresh_keys.discard(key)
        error = redact(error)  # a malformed URL is quoted whole, token included
        if purpose is None or self.done is not None:
            return []  # a socket given up on meanwhile
        if purpose is Purpose.REFRESH:
            return [Print(f"! refresh failed ({error}); keeping the current connection")]
        if purpose is Purpose.RECONNECT:
            return self._reconnect(f"reconnect failed ({error})")
        if nothing_listening:
            return self._exit(1, f"cannot connect: {describe_nothing_listening(self.url)}")
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
        sequence = _sequence_of(message)
        if (self.role is Role.LISTENER and sequence is not None and kind not in _WELCOMES
                and kind != "languageChanged"):
            # Published: shown in sequenceNumber order, once, whichever socket of a
            # refresh overlap brought it (docs/protocol.md, Ordering and duplicates).
            language = message.get("targetLanguage") or self.target_language
            result = self._sequences.arrived(language, sequence, (text, message), now)
            if result.late:
                return [Print(f"! message #{sequence} in {language} came after it was given up; "
                              f"dropped (it would put older state over newer)")]
            return self._release(language, result, now)
        actions: List[Any] = []
        if kind == "sessionEnded":
            actions += self._flush()  # what was published before the end, first
        actions += self._show(text, message, now)
        if kind in _WELCOMES:
            if key == self.current or self._purposes.get(key) is Purpose.REFRESH:
                self.connection_id = message.get("connectionId") or self.connection_id
            self._reconnects = 0
            if sequence is not None and self.role is Role.LISTENER:
                language = message.get("targetLanguage") or self.target_language
                reconnected = self._purposes.get(key) is Purpose.RECONNECT and key not in self._refresh_keys
                actions += self._release(language, self._sequences.welcomed(
                    language, sequence, now, reconnected=reconnected), now)
        if kind == "sessionCreated":
            self.session_id = message.get("sessionId")
            actions.append(Print(f"session id: {self.session_id}"))
        elif kind == "languageChanged" and isinstance(message.get("targetLanguage"), str):
            self.target_language = message["targetLanguage"]
            if sequence is not None:  # docs: restart duplicate detection there
                actions += self._release(self.target_language, self._sequences.restart(
                    self.target_language, sequence, now), now)
        elif kind == "connectionRefreshRequired" and key == self.current:
            if self.session_id and self._pending_refresh() is None:
                query = message.get("reconnectQuery")
                self._refresh_query = query if isinstance(query, dict) else None
                actions.append(Print("refreshing the connection"))
                actions.append(self._open_socket(Purpose.REFRESH, reconnect_query=self._refresh_query))
        elif kind == "connectionRefreshComplete" and self._purposes.get(key) is Purpose.REFRESH:
            old, self.current = self.current, key
            self._purposes[key] = Purpose.START
            self._refresh_deadlines.pop(key, None)
            self._next_heartbeat = now + self.heartbeat_interval
            if old is not None and old in self._open:
                # Messages already on their way to the old socket still arrive:
                # read it a moment longer (docs/protocol.md, Long sessions).
                self._retiring[old] = now + self.drain
                actions += self._close_retired(now)
        elif kind == "sessionEnded":
            self._ended = True
            actions.extend(self._exit(0, f"session ended ({message.get('reason', 'unknown')})"))
        if self._awaiting is not None and self.done is None and _answers(message, self._awaiting[0]):
            self._awaiting = None
            actions.extend(self._run_backlog(now))
        return actions

    def _show(self, text: str, message: dict, now: float) -> List[Any]:
        """Print a message (in order, for a numbered one) and apply what it carries."""
        actions: List[Any] = [Print(f"< {text}" if self.output == "json" else f"< {describe(message)}")]
        if isinstance(message.get("broadcastState"), dict):
            self.broadcast_state = message["broadcastState"]
        if message.get("type") == "audio" and self.audio_out:
            actions += self._received_audio(message, now)
        return actions

    def _release(self, language: Optional[str], result: Release, now: float) -> List[Any]:
        """What a reorder buffer let out: notes for the numbers given up on, then the
        messages in order."""
        actions: List[Any] = [Print(describe_gap(language, gap, gap_timeout=self._sequences.gap_timeout,
                                                 window=self._sequences.window))
                              for gap in result.gaps]
        for text, message in result.deliver:
            actions += self._show(text, message, now)
        return actions

    def _close_retired(self, now: float) -> List[Any]:
        """Close the replaced sockets whose drain time is over."""
        due = sorted(key for key, at in self._retiring.items() if now >= at)
        for key in due:
            del self._retiring[key]
        return [Close(key) for key in due if key in self._open]

    def _received_audio(self, message: dict, now: float) -> List[Any]:
        data = decode_audio_data(message)
        if data is None:
            return [Print("! an audio message without valid base64 audioData; not written")]
        number = message.get("speakerSequenceNumber")
        if not isinstance(number, int) or isinstance(number, bool):
            number = None
        return self._audio.push(number, data, now)

    def closed(self, key: str, code: Optional[int], now: float) -> List[Any]:
        """The socket ``key`` closed (by either side)."""
        self._open.discard(key)
        self._purposes.pop(key, None)
        self._refresh_deadlines.pop(key, None)
        self._refresh_keys.discard(key)
        self._retiring.pop(key, None)
        if key != self.current or self.done is not None:
            return []
        self.current = None
        if self._stopping:
            return self._exit(0, "stopped")
        if self._ended:
            return self._exit(0, "session ended")
        refresh = self._pending_refresh()
        if refresh is not None:
            # The old socket went before the refresh completed: the refresh socket
            # takes over instead of a reconnect, which would leave two sockets open.
            if refresh in self._open:
                self.current = refresh
                self._purposes[refresh] = Purpose.START
                self._refresh_deadlines.pop(refresh, None)
                self._next_heartbeat = now + self.heartbeat_interval
                return [Print(f"! the old connection closed (close code {code}) before the refresh "
                              f"completed; going on with the new one")]
            self._purposes[refresh] = Purpose.RECONNECT  # becomes current once open
            return [Print(f"! the old connection closed (close code {code}) before the refresh "
                          f"completed; waiting for the new one")]
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
                self._open_socket(Purpose.RECONNECT, delay)]

    def tick(self, now: float) -> List[Any]:
        """Call at least every :meth:`next_wakeup`: sends heartbeats, gives up on
        missing messages and audio chunks when due (releasing what waited behind
        them), closes replaced sockets after their drain."""
        if self.done is not None:
            return []
        actions: List[Any] = []
        for language, result in self._sequences.expire(now):
            actions += self._release(language, result, now)
        deadline = self._audio.deadline()
        if deadline is not None and now >= deadline:
            actions += self._audio.expire(now)
        actions += self._close_retired(now)
        if self._awaiting is not None and now >= self._awaiting[1]:
            if self._stopping:
                return actions + self._exit(0, f"stopped (no sessionEnded within {END_SESSION_TIMEOUT:g} s)")
            actions.append(Print(f"! no answer to {self._awaiting[0]} after {self.answer_timeout:g} s; going on"))
            self._awaiting = None
            actions.extend(self._run_backlog(now))
        for key, deadline in list(self._refresh_deadlines.items()):
            if now >= deadline and self._purposes.get(key) is Purpose.REFRESH:
                # The refresh socket opened but its connectionRefreshComplete never
                # came: give it up and try again while the old socket lasts.
                del self._refresh_deadlines[key]
                del self._purposes[key]
                actions += [Print(f"! no connectionRefreshComplete {self.refresh_timeout:g} s after the "
                                  f"refresh connection opened; closing it and trying again"),
                            Close(key),
                            self._open_socket(Purpose.REFRESH, delay=backoff(1, rng=self.rng),
                                              reconnect_query=self._refresh_query)]
        if self.current is None or self._next_heartbeat is None:
            return actions
        if now < self._next_heartbeat:
            return actions
        self._next_heartbeat = now + self.heartbeat_interval
        return actions + [Send(self.current, json.dumps({"action": "heartbeat"}))]

    def next_wakeup(self) -> Optional[float]:
        answer = self._awaiting[1] if self._awaiting is not None else None
        times = [t for t in (self._next_heartbeat, self._sequences.deadline(), self._audio.deadline(),
                             answer, *self._refresh_deadlines.values(), *self._retiring.values())
                 if t is not None]
        return min(times, default=None)

    def stop(self, now: Optional[float] = None) -> List[Any]:
        """The user asked to stop (Ctrl-C).

        A speaker ends its session first: it sends ``endSession`` and waits (at
        most :data:`END_SESSION_TIMEOUT` seconds) for ``sessionEnded`` before
        closing, or the ``$disconnect`` of its close could overtake the
        ``endSession`` (with a reconnect grace, listeners would then be told the
        speaker dropped). A second stop closes at once."""
        if self.done is not None:
            return []
        if self._stopping or self.current is None:
            self._stopping = True
            return self._exit(0, "stopped")
        self._stopping = True
        if self.role is Role.SPEAKER and self.session_id:
            now = _time.time() if now is None else now
            self._awaiting = ("endSession", now + END_SESSION_TIMEOUT)
            return [Print("ending the session (Ctrl-C again to quit at once)"),
                    Send(self.current, json.dumps({"action": "endSession", "sessionId": self.session_id}))]
        return self._exit(0, "stopped")

    # -- commands (typed while running) ------------------------------------------

    def help(self) -> List[Any]:
        text = SPEAKER_HELP if self.role is Role.SPEAKER else LISTENER_HELP
        return [Print(line) for line in text.splitlines()]

    def command(self, line: str, now: float) -> List[Any]:
        """One line typed by the user (see :data:`SPEAKER_HELP`, :data:`LISTENER_HELP`).

        The server handles one connection's messages concurrently (API Gateway does
        not order them), so a command that gets an answer is sent only once the
        previous one was answered (or after :attr:`answer_timeout`): commands piped
        in take effect in the order given. Audio gets no answer: what follows it
        may still overtake it."""
        if self.done is not None:
            return []
        if self._awaiting is not None:
            self._backlog.append(line)
            return []
        return self._execute(line, now)

    def _run_backlog(self, now: float) -> List[Any]:
        actions: List[Any] = []
        while self._backlog and self._awaiting is None and self.done is None:
            actions.extend(self._execute(self._backlog.pop(0), now))
        return actions

    def _execute(self, line: str, now: float) -> List[Any]:
        command = commands.parse_command(line, speaker=self.role is Role.SPEAKER)
        if command is None:
            return []
        if isinstance(command, commands.Problem):
            return [Print(f"! {command.text}")]
        if isinstance(command, commands.Help):
            return self.help()
        if isinstance(command, commands.Leave):
            return self.stop()
        if isinstance(command, commands.Tone):
            return self.audio(tone_pcm16(command.seconds), now, audio_format=AUDIO_FORMAT,
                              what=f"a {command.seconds:g} s tone")
        if self.current is None:
            return [Print("! not connected yet; try again in a moment")]
        if isinstance(command, ReadAudio):
            return [command]
        # A request: the next command waits for its answer.
        self._awaiting = (command.body["action"], now + self.answer_timeout)
        return [Send(self.current, json.dumps(command.body))]

    def audio(self, data: bytes, now: float, *, audio_format: Optional[str] = AUDIO_FORMAT,
              what: str = "audio") -> List[Any]:
        """Send ``data`` as ``sendAudio`` chunks of :attr:`chunk_bytes`, numbered on
        from the last chunk sent (the listener's ``speakerSequenceNumber``)."""
        if self.role is not Role.SPEAKER:
            return [Print("! only the speaker sends audio")]
        if self.current is None:
            return [Print("! not connected yet; try again in a moment")]
        if not data:
            return [Print(f"! {what} is empty; nothing sent")]
        first = self._audio_sent + 1
        bodies = send_audio_bodies(data, chunk_bytes=self.chunk_bytes, first_number=first,
                                   audio_format=audio_format)
        self._audio_sent += len(bodies)
        actions: List[Any] = [Send(self.current, json.dumps(body)) for body in bodies]
        actions.append(Print(f"sent {what}: {len(data)} bytes in {len(bodies)} chunk(s) "
                             f"#{first}..#{self._audio_sent}"))
        state = self.broadcast_state or {}
        if state.get("isPaused") or state.get("isMuted"):
            actions.append(Print("! the broadcast is paused or muted: the server drops audio until "
                                 "resume/unmute"))
        return actions

    def audio_unreadable(self, path: str, reason: str) -> List[Any]:
        """The I/O layer could not read the file of an ``audio`` command."""
        return [Print(f"! cannot read {path}: {reason}")]


def _sequence_of(message: dict) -> Optional[int]:
    """A message's ``sequenceNumber`` when it is one (a non-negative integer)."""
    number = message.get("sequenceNumber")
    if isinstance(number, int) and not isinstance(number, bool) and number >= 0:
        return number
    return None


def _answers(message: dict, action: str) -> bool:
    """Whether ``message`` is the server's answer to a client's ``action``."""
    kind = message.get("type")
    if kind == "error":
        return message.get("action") == action
    if kind == "controlAck":
        return message.get("action") == action
    return _ANSWERS.get(action) == kind


