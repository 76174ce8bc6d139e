"""Sans-I/O core of the reference client (docs/protocol.md).

:class:`ClientProtocol` holds the client's state and turns inputs (a socket
opened, a message, a close, a refusal, the clock) into actions (open a
socket, send, close, print, exit). The I/O layer (:mod:`broadcast_client.cli`)
performs the actions and feeds back what happens; tests do the same without
sockets. Sockets are named by keys the protocol hands out (``c1``, ``c2``...).

Commands typed while the client runs (``pause``, ``volume 0.5``, ``audio FILE``...)
are inputs too (:meth:`ClientProtocol.command`); reading an audio file and writing
received audio are actions (:class:`ReadAudio`, :class:`WriteAudio`) the I/O layer
performs. Received messages are de-duplicated by ``sequenceNumber`` per target
language (:class:`SequenceFilter`) and printed as JSON or as readable text
(:func:`describe`).
"""
from __future__ import annotations

import base64
import binascii
import enum
import json
import math
import random
import re
import shlex
import struct
import time as _time
from typing import Any, Callable, Dict, List, Optional, Tuple
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
class FetchToken:
    """Get a fresh speaker token (``speak --token-command``) after ``delay`` seconds,
    then hand it to :meth:`ClientProtocol.token_ready` for the socket ``key`` (or
    report :meth:`ClientProtocol.token_failed`)."""

    key: str
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


@attrs.frozen
class ReadAudio:
    """Read the file at ``path`` and hand its bytes to :meth:`ClientProtocol.audio`
    with ``format`` (or report :meth:`ClientProtocol.audio_unreadable`)."""

    path: str
    format: Optional[str] = None


@attrs.frozen
class WriteAudio:
    """Append ``data`` to the received-audio output (``listen --audio-out``)."""

    data: bytes


Action = "Open | FetchToken | Send | Close | Print | Exit | ReadAudio | WriteAudio"

#: Raw bytes per sendAudio chunk: 21,848 base64 characters, so a chunk and its
#: envelope fit one 32 KB frame (docs/protocol.md, Limits) far below the
#: server's 129,024-character chunk limit.
AUDIO_CHUNK_BYTES = 16 * 1024
#: The largest ``audioData`` the server accepts (docs/protocol.md, Audio in).
MAX_AUDIO_BASE64_CHARS = 129_024
AUDIO_FORMAT = "pcm16/16000"
MAX_TONE_SECONDS = 60.0
#: How long Ctrl-C waits for ``sessionEnded`` after ``endSession`` before closing.
END_SESSION_TIMEOUT = 5.0

_TOKEN_VALUE = re.compile(r"(?i)(token(?:=|%3D))[^&\s'\"]+")


def redact(text: str) -> str:
    """``text`` with every ``token=`` value (a speaker's JWT in a URL) hidden."""
    return _TOKEN_VALUE.sub(r"\1***", text)


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


# -- sequence numbers --------------------------------------------------------------


#: How far past the oldest missing number a filter keeps waiting for it.
SEQUENCE_WINDOW = 1000


@attrs.frozen
class Gap:
    """Numbers a :class:`SequenceFilter` stopped waiting for: ``count`` of them
    between ``first`` and ``last`` (both missing)."""

    count: int
    first: int
    last: int


@attrs.define
class SequenceFilter:
    """The ``sequenceNumber`` values of one target language seen so far.

    docs/protocol.md (Broadcast): numbers are strictly increasing per session and
    target language; drop a message whose number you have seen (a refresh overlap
    delivers everything twice); a jump means messages were lost. Publishes run
    concurrently, so messages may also arrive out of order: every number above
    ``floor`` is remembered, not only the highest. A number more than ``window``
    below the highest seen is given up on (:meth:`expire`), so one lost message
    does not make the filter remember every later number.
    """

    floor: Optional[int] = None  # every number up to here counts as seen
    window: int = SEQUENCE_WINDOW
    _above: set = attrs.field(factory=set)
    _top: Optional[int] = None  # the highest number in _above (when not empty)

    def reset(self, baseline: int) -> None:
        """Start at ``baseline``, the last number published before we arrived
        (``sessionJoined``, ``languageChanged``); numbers above it seen already stay seen."""
        self.floor = baseline
        self._above = {n for n in self._above if n > baseline}
        self._compact()

    def advance(self, baseline: int) -> List[int]:
        """Count everything up to ``baseline`` as seen (after a reconnect); returns
        the numbers that never arrived, lost while we were away."""
        if self.floor is None:
            self.reset(baseline)
            return []
        missed = [n for n in range(self.floor + 1, baseline + 1) if n not in self._above]
        if baseline > self.floor:
            self.reset(baseline)
        return missed

    def accept(self, number: int) -> bool:
        """True the first time ``number`` is seen, False for a duplicate."""
        if (self.floor is not None and number <= self.floor) or number in self._above:
            return False
        self._above.add(number)
        if self._top is None or number > self._top or len(self._above) == 1:
            self._top = number
        self._compact()
        return True

    def expire(self) -> Optional[Gap]:
        """Stop waiting for numbers more than :attr:`window` below the highest
        seen: they count as seen from now on. Returns what was given up, if anything."""
        if not self._above:
            return None
        top = self._top
        if self.floor is None:
            low = min(self._above)
            if top - low <= self.window:
                return None
            self.floor = low - 1
        if top - self.floor <= self.window:
            return None
        new_floor = top - self.window
        first = self.floor + 1  # missing: _compact() leaves no seen number at floor + 1
        last = new_floor
        while last in self._above:
            last -= 1
        kept = {n for n in self._above if n > new_floor}
        count = (new_floor - self.floor) - (len(self._above) - len(kept))
        self._above, self.floor = kept, new_floor
        self._compact()
        return Gap(count, first, last)

    def missing(self) -> List[int]:
        """Numbers below the highest seen that have not arrived (yet)."""
        if not self._above:
            return []
        low = self.floor + 1 if self.floor is not None else min(self._above)
        return [n for n in range(low, max(self._above)) if n not in self._above]

    @property
    def remembered(self) -> int:
        """How many numbers above :attr:`floor` are held (the filter's memory)."""
        return len(self._above)

    @property
    def highest(self) -> Optional[int]:
        return max(self._above, default=self.floor)

    def _compact(self) -> None:
        if self.floor is None:
            return
        while self.floor + 1 in self._above:
            self.floor += 1
            self._above.discard(self.floor)


# -- audio -----------------------------------------------------------------------


@attrs.define
class AudioReorderBuffer:
    """Puts received audio back in the speaker's order before it is written.

    API Gateway hands one connection's messages to the server concurrently and a
    publish fans out concurrently, so chunks can arrive out of order. They are
    ordered by ``speakerSequenceNumber``: a chunk is written when it is the next
    one, or when chunks have waited ``hold`` seconds for a missing one (which is
    then skipped, and dropped if it turns up later). Chunks without a number are
    written as they come.
    """

    hold: float = 0.5
    _next: Optional[int] = None
    _pending: Dict[int, Tuple[float, bytes]] = attrs.field(factory=dict)

    def push(self, number: Optional[int], data: bytes, now: float) -> List[Any]:
        if number is None:
            return [WriteAudio(data)]
        if (self._next is not None and number < self._next) or number in self._pending:
            return [Print(f"! speaker's audio chunk {number} came too late or twice; not written")]
        self._pending[number] = (now, data)
        return self.release(now)

    def release(self, now: float, *, flush: bool = False) -> List[Any]:
        """Write what is due: the next chunk in order, everything once ``hold`` expired."""
        actions: List[Any] = []
        while self._pending:
            number = min(self._pending)
            waited = now - min(arrived for arrived, _ in self._pending.values())
            if not (flush or number == self._next or waited >= self.hold):
                break
            _, data = self._pending.pop(number)
            self._next = number + 1
            actions.append(WriteAudio(data))
        return actions

    def deadline(self) -> Optional[float]:
        """When :meth:`release` must run next, or None when nothing waits."""
        if not self._pending:
            return None
        return min(arrived for arrived, _ in self._pending.values()) + self.hold


def tone_pcm16(seconds: float, *, frequency: float = 440.0, rate: int = 16000,
               amplitude: float = 0.25) -> bytes:
    """A sine test tone as 16-bit little-endian mono PCM (``pcm16/16000``)."""
    count = int(round(seconds * rate))
    peak = amplitude * 32767
    return struct.pack(f"<{count}h", *(int(peak * math.sin(2 * math.pi * frequency * i / rate))
                                       for i in range(count)))


def audio_chunks(data: bytes, size: int = AUDIO_CHUNK_BYTES) -> List[bytes]:
    """``data`` cut into chunks of at most ``size`` raw bytes."""
    if size <= 0 or len(base64.b64encode(b"\0" * size)) > MAX_AUDIO_BASE64_CHARS:
        raise ValueError(f"chunk size must be 1..{MAX_AUDIO_BASE64_CHARS // 4 * 3} bytes, got {size}")
    return [data[i:i + size] for i in range(0, len(data), size)]


def guess_audio_format(path: str) -> Optional[str]:
    """The ``format`` to announce for a file, from its extension (None: unknown)."""
    suffix = path.rsplit(".", 1)[-1].lower() if "." in path else ""
    if suffix in ("pcm", "raw"):
        return AUDIO_FORMAT
    if suffix in ("wav", "mp3", "ogg", "opus", "flac", "webm", "m4a"):
        return suffix
    return None


# -- readable output ---------------------------------------------------------------


def _state(state: Any) -> str:
    if not isinstance(state, dict):
        return "state unknown"
    words = ["paused" if state.get("isPaused") else "playing"]
    if state.get("isMuted"):
        words.append("muted")
    words.append(f"volume {state.get('volume')}")
    return ", ".join(words)


def _clock(epoch_seconds: Any) -> str:
    if not isinstance(epoch_seconds, (int, float)):
        return "?"
    return _time.strftime("%H:%M:%S", _time.localtime(epoch_seconds))


def _duration(seconds: Any) -> str:
    if not isinstance(seconds, (int, float)):
        return "?"
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m{secs:02d}s" if hours else f"{minutes}m{secs:02d}s"


def audio_size(message: dict) -> Optional[int]:
    """Decoded size of an audio message's ``audioData`` (None if it is not base64)."""
    try:
        return len(base64.b64decode(message.get("audioData") or "", validate=True))
    except (binascii.Error, ValueError, TypeError):
        return None


def describe(message: dict) -> str:
    """One readable line for a server message (the ``< `` prefix is the caller's)."""
    kind = message.get("type")
    seq = message.get("sequenceNumber")
    numbered = f" #{seq}" if isinstance(seq, int) else ""
    if kind == "sessionCreated":
        return (f"sessionCreated: session {message.get('sessionId')} in {message.get('sourceLanguage')} "
                f"({message.get('qualityTier')}), expires at {_clock(message.get('expiresAt'))}")
    if kind == "sessionJoined":
        return (f"sessionJoined: {message.get('sessionId')} in {message.get('targetLanguage')} "
                f"(spoken in {message.get('sourceLanguage')}); broadcast {_state(message.get('broadcastState'))}; "
                f"last message #{seq}")
    if kind == "connectionRefreshComplete":
        language = f" in {message['targetLanguage']}" if message.get("targetLanguage") else ""
        return f"connectionRefreshComplete: now on {message.get('connectionId')} as {message.get('role')}{language}"
    if kind == "controlAck":
        return f"controlAck: {message.get('action')} done; broadcast {_state(message.get('broadcastState'))}"
    if kind in ("broadcastPaused", "broadcastResumed", "broadcastMuted", "broadcastUnmuted"):
        return f"{kind}{numbered}: broadcast {_state(message.get('broadcastState'))}"
    if kind == "volumeChanged":
        return f"volumeChanged{numbered}: volume {message.get('volumeLevel')}"
    if kind == "sessionStatus":
        count = message.get("listenerCount")
        text = (f"sessionStatus: {message.get('sessionId')} {message.get('status')}, "
                f"{count} listener{'' if count == 1 else 's'}")
        distribution = message.get("languageDistribution")
        if isinstance(distribution, dict):
            text += " (" + (", ".join(f"{k} {v}" for k, v in sorted(distribution.items())) or "none") + ")"
        text += (f", on air {_duration(message.get('sessionDuration'))}, "
                 f"broadcast {_state(message.get('broadcastState'))}")
        if message.get("expiresAt") is not None:
            text += f", expires at {_clock(message.get('expiresAt'))}"
        return text
    if kind == "languageChanged":
        return (f"languageChanged: now {message.get('targetLanguage')} (was {message.get('previousLanguage')}), "
                f"last message #{seq}")
    if kind == "audio":
        size = audio_size(message)
        details = [f"speaker chunk {message['speakerSequenceNumber']}"] if "speakerSequenceNumber" in message else []
        if message.get("format"):
            details.append(str(message["format"]))
        extra = f" ({', '.join(details)})" if details else ""
        return f"audio chunk{numbered}, {'?' if size is None else size} bytes{extra}"
    if kind == "error":
        action = f" ({message['action']})" if message.get("action") else ""
        return f"error {message.get('code')}{action}: {message.get('message')}"
    if kind == "sessionEnded":
        return f"sessionEnded: {message.get('sessionId')} ({message.get('reason')})"
    if kind == "connectionClosed":
        return f"connectionClosed: {message.get('reason')}"
    if kind == "connectionRefreshRequired":
        return f"connectionRefreshRequired: refresh by {_clock((message.get('refreshBy') or 0) / 1000)}"
    if kind == "connectionWarning":
        return f"connectionWarning: {message.get('remainingMinutes')} minutes left on this connection"
    if kind == "speakerDisconnected":
        return f"speakerDisconnected: waiting {message.get('graceSeconds')} s for the speaker"
    if kind == "heartbeatAck":
        return "heartbeatAck"
    skip = {"type", "timestamp", "sessionId", "sequenceNumber", "targetLanguage"}
    fields = ", ".join(f"{k}={json.dumps(v, ensure_ascii=False)}" for k, v in message.items() if k not in skip)
    language = f" ({message['targetLanguage']})" if message.get("targetLanguage") else ""
    return f"{kind}{numbered}{language}" + (f": {fields}" if fields else "")


# -- commands ----------------------------------------------------------------------

SPEAKER_HELP = """\
commands (type while speaking):
  pause | resume       pause or resume the broadcast; listeners are told
  mute | unmute        mute or unmute it; the server drops audio while paused or muted
  volume LEVEL         set the volume, a number from 0.0 to 1.0
  status               session status: listeners per language, broadcast state
  audio FILE [FORMAT]  send a file's bytes as sendAudio chunks of 16 KB
  tone [SECONDS]       send a 440 Hz test tone, pcm16/16000 (default 1 s, at most 60)
  end                  end the session for everyone and exit
  help                 this list"""

LISTENER_HELP = """\
commands (type while listening):
  status               session status: listener count, broadcast state
  language CODE        listen in another language from now on (e.g. language de)
  leave | quit         leave the session and exit
  help                 this list"""

_CONTROL_COMMANDS = {"pause": "pauseBroadcast", "resume": "resumeBroadcast",
                     "mute": "muteBroadcast", "unmute": "unmuteBroadcast"}
#: Reply types that answer an action (besides an ``error`` naming the action).
_ANSWERS = {"getSessionStatus": "sessionStatus", "changeLanguage": "languageChanged",
            "endSession": "sessionEnded"}


# -- the client --------------------------------------------------------------------


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
    audio_hold: float = 0.5  # listener: how long audio waits for a missing chunk
    answer_timeout: float = 5.0  # how long a command waits for the previous one's answer
    #: speaker: get a fresh token (FetchToken) before every refresh and reconnect,
    #: and before the first socket when no token was given (``--token-command``)
    fresh_tokens: bool = False
    #: how long a refresh socket may stay open without connectionRefreshComplete
    refresh_timeout: float = 15.0

    current: Optional[str] = None  # the socket that carries the session
    broadcast_state: Optional[dict] = None  # as last reported by the server
    _purposes: Dict[str, Purpose] = attrs.field(factory=dict)
    _open: set = attrs.field(factory=set)
    _counter: int = 0
    _next_heartbeat: Optional[float] = None
    _reconnects: int = 0
    _sequences: Dict[Optional[str], SequenceFilter] = attrs.field(factory=dict)
    _audio: Optional[AudioReorderBuffer] = None
    _audio_sent: int = 0  # speaker: the last sendAudio sequenceNumber
    _awaiting: Optional[Tuple[str, float]] = None  # (action, give up at) of the command in flight
    _backlog: List[str] = attrs.field(factory=list)  # commands typed meanwhile
    _ended: bool = False
    _stopping: bool = False
    _pending: Dict[str, Tuple[Optional[Dict[str, Any]], float]] = attrs.field(factory=dict)  # FetchToken
    _refresh_query: Optional[Dict[str, Any]] = None  # the last reconnectQuery, for retries
    _refresh_deadlines: Dict[str, float] = attrs.field(factory=dict)  # open refresh sockets
    done: Optional[Exit] = None

    def __attrs_post_init__(self) -> None:
        self._audio = AudioReorderBuffer(hold=self.audio_hold)

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

    def _open_socket(self, purpose: Purpose, delay: float = 0.0,
                     reconnect_query: Optional[Dict[str, Any]] = None) -> "Open | FetchToken":
        """Open a socket for ``purpose``; a speaker with :attr:`fresh_tokens` first
        asks for a token (:class:`FetchToken`), and the socket opens once it arrives."""
        self._counter += 1
        key = f"c{self._counter}"
        self._purposes[key] = purpose
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
        self.done = Exit(code, reason)
        actions: List[Any] = self._audio.release(0.0, flush=True)
        actions += [Close(key) for key in sorted(self._open)]
        return actions + [self.done]

    def sequence(self, language: Optional[str]) -> SequenceFilter:
        """The duplicate filter of one target language."""
        return self._sequences.setdefault(language, SequenceFilter())

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
        detail = _describe_refusal(status, body)
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

    def failed(self, key: str, error: str, now: float) -> List[Any]:
        """The socket ``key`` could not be opened (network error)."""
        purpose = self._purposes.pop(key, None)
        error = redact(error)  # a malformed URL is quoted whole, token included
        if purpose is None or self.done is not None:
            return []  # a socket given up on meanwhile
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
        if not isinstance(sequence, int) or isinstance(sequence, bool):
            sequence = None
        actions: List[Any] = []
        if sequence is not None and kind not in _WELCOMES and kind != "languageChanged":
            # During a refresh both sockets carry the broadcast: drop duplicates.
            language = message.get("targetLanguage") or self.target_language
            sequences = self.sequence(language)
            if not sequences.accept(sequence):
                return []
            gap = sequences.expire()
            if gap is not None:
                actions.append(Print(
                    f"! {gap.count} message(s) missed (#{gap.first}..#{gap.last}): not arrived "
                    f"{sequences.window} messages later; no longer waiting for them"))
        actions.append(Print(f"< {text}" if self.output == "json" else f"< {describe(message)}"))
        if isinstance(message.get("broadcastState"), dict):
            self.broadcast_state = message["broadcastState"]
        if kind in _WELCOMES:
            self._reconnects = 0
            if sequence is not None and self.role is Role.LISTENER:
                actions.extend(self._baseline(key, message.get("targetLanguage"), sequence))
        if kind == "sessionCreated":
            self.session_id = message.get("sessionId")
            actions.append(Print(f"session id: {self.session_id}"))
        elif kind == "languageChanged" and isinstance(message.get("targetLanguage"), str):
            self.target_language = message["targetLanguage"]
            if sequence is not None:  # docs: restart duplicate detection there
                self.sequence(self.target_language).reset(sequence)
        elif kind == "audio" and self.audio_out:
            actions.extend(self._received_audio(message, now))
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
                actions.append(Close(old))
        elif kind == "sessionEnded":
            self._ended = True
            actions.extend(self._exit(0, f"session ended ({message.get('reason', 'unknown')})"))
        if self._awaiting is not None and self.done is None and _answers(message, self._awaiting[0]):
            self._awaiting = None
            actions.extend(self._run_backlog(now))
        return actions

    def _baseline(self, key: str, language: Optional[str], number: int) -> List[Any]:
        """A welcome's ``sequenceNumber``: the last number published before it."""
        sequences = self.sequence(language or self.target_language)
        purpose = self._purposes.get(key)
        if purpose is Purpose.RECONNECT:
            missed = sequences.advance(number)
            if missed:
                return [Print(f"! {len(missed)} message(s) missed while reconnecting "
                              f"(#{missed[0]}..#{missed[-1]})")]
        elif sequences.floor is None:
            # A refresh overlap keeps the old floor: the old socket may still
            # deliver numbers below this baseline.
            sequences.reset(number)
        return []

    def _received_audio(self, message: dict, now: float) -> List[Any]:
        try:
            data = base64.b64decode(message.get("audioData") or "", validate=True)
        except (binascii.Error, ValueError, TypeError):
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
        """Call at least every :meth:`next_wakeup`: sends heartbeats and writes
        held audio when due."""
        if self.done is not None:
            return []
        actions: List[Any] = []
        deadline = self._audio.deadline()
        if deadline is not None and now >= deadline:
            actions.extend(self._audio.release(now))
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
        times = [t for t in (self._next_heartbeat, self._audio.deadline(), answer,
                             *self._refresh_deadlines.values()) if t is not None]
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
        try:
            words = shlex.split(line)
        except ValueError as exc:
            return [Print(f"! {exc}")]
        if not words:
            return []
        name, args = words[0].lower(), words[1:]
        if name in ("help", "?"):
            return self.help()
        if self.role is Role.SPEAKER:
            return self._speaker_command(name, args, now)
        return self._listener_command(name, args, now)

    def _send(self, body: Dict[str, Any], now: float) -> List[Any]:
        """Send a command's message; the next command waits for its answer."""
        if self.current is None:
            return [Print("! not connected yet; try again in a moment")]
        self._awaiting = (body["action"], now + self.answer_timeout)
        return [Send(self.current, json.dumps(body))]

    def _speaker_command(self, name: str, args: List[str], now: float) -> List[Any]:
        if name in _CONTROL_COMMANDS and not args:
            return self._send({"action": _CONTROL_COMMANDS[name]}, now)
        if name == "volume" and len(args) == 1:
            try:
                level = float(args[0])
            except ValueError:
                return [Print(f"! volume takes a number from 0.0 to 1.0, not {args[0]!r}")]
            if not math.isfinite(level):
                return [Print(f"! volume takes a number from 0.0 to 1.0, not {args[0]!r}")]
            # Out-of-range numbers go to the server, which refuses them (INVALID_PARAMETER).
            return self._send({"action": "setVolume", "volumeLevel": level}, now)
        if name == "status" and not args:
            return self._send({"action": "getSessionStatus"}, now)
        if name == "audio" and len(args) in (1, 2):
            if self.current is None:
                return [Print("! not connected yet; try again in a moment")]
            return [ReadAudio(args[0], args[1] if len(args) == 2 else guess_audio_format(args[0]))]
        if name == "tone" and len(args) <= 1:
            try:
                seconds = float(args[0]) if args else 1.0
            except ValueError:
                seconds = -1.0
            if not 0 < seconds <= MAX_TONE_SECONDS:
                return [Print(f"! tone takes a duration in seconds, more than 0 and at most "
                              f"{MAX_TONE_SECONDS:g}")]
            return self.audio(tone_pcm16(seconds), now, audio_format=AUDIO_FORMAT,
                              what=f"a {seconds:g} s tone")
        if name == "end" and not args:
            return self._send({"action": "endSession"}, now)
        return [Print(f"! unknown command {' '.join([name] + args)!r}; type help")]

    def _listener_command(self, name: str, args: List[str], now: float) -> List[Any]:
        if name == "status" and not args:
            return self._send({"action": "getSessionStatus"}, now)
        if name == "language" and len(args) == 1:
            return self._send({"action": "changeLanguage", "targetLanguage": args[0]}, now)
        if name in ("leave", "quit") and not args:
            return self.stop()
        return [Print(f"! unknown command {' '.join([name] + args)!r}; type help")]

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
        actions: List[Any] = []
        first = self._audio_sent + 1
        chunks = audio_chunks(data, self.chunk_bytes)
        for chunk in chunks:
            self._audio_sent += 1
            body: Dict[str, Any] = {"action": "sendAudio",
                                    "audioData": base64.b64encode(chunk).decode("ascii"),
                                    "sequenceNumber": self._audio_sent}
            if audio_format:
                body["format"] = audio_format
            actions.append(Send(self.current, json.dumps(body)))
        actions.append(Print(f"sent {what}: {len(data)} bytes in {len(chunks)} chunk(s) "
                             f"#{first}..#{self._audio_sent}"))
        state = self.broadcast_state or {}
        if state.get("isPaused") or state.get("isMuted"):
            actions.append(Print("! the broadcast is paused or muted: the server drops audio until "
                                 "resume/unmute"))
        return actions

    def audio_unreadable(self, path: str, reason: str) -> List[Any]:
        """The I/O layer could not read the file of an ``audio`` command."""
        return [Print(f"! cannot read {path}: {reason}")]


def _answers(message: dict, action: str) -> bool:
    """Whether ``message`` is the server's answer to a client's ``action``."""
    kind = message.get("type")
    if kind == "error":
        return message.get("action") == action
    if kind == "controlAck":
        return message.get("action") == action
    return _ANSWERS.get(action) == kind


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
