"""Admission: ``$connect`` intents (create, join, refresh), rate limits, and the
first message.

A connect validates the query, records the connection with conditional writes or
a transaction, and hands its first message to ``deliver_welcome`` (an asynchronous
invocation: API Gateway refuses posts until ``$connect`` has returned). On any
failure nothing written for the connection remains.

Every handshake counts against its address's rate limit, refused ones included. A
join, the one intent that comes by the hundred, reads the session and the address's
counter in one call and writes row, count and counter in one transaction: four calls
in all with the welcome's invocation and post (docs/scaling.md).
"""

from __future__ import annotations

import logging
import time
import zlib
from typing import Callable, Dict, Optional

import attrs

from chalicelib import errors
from chalicelib.auth.authorizer import KEYS_UNAVAILABLE
from chalicelib.connections_api import ConnectionsApi, DeliveryFailed
from chalicelib.departures import Departures
from chalicelib.observability.logs import ref
from chalicelib.observability.telemetry import Metrics, annotate
from chalicelib.state.rate_limits import Counted, RateLimiter
from chalicelib.state.records import ACTIVE, LISTENER, SPEAKER, BroadcastState, Connection, Session
from chalicelib.state.store import ConnectionExists, ExtraConditionFailed, SessionIdTaken, Store
from chalicelib.wire import messages
from chalicelib.wire.ids import candidate_ids
from chalicelib.wire import responses
from chalicelib.wire.intents import (
    CreateIntent,
    JoinIntent,
    RefreshIntent,
    parse_connect,
    validate_language,
    validate_session_id,
)

logger = logging.getLogger(__name__)

CONNECT_WINDOW_SECONDS = 60
CREATE_WINDOW_SECONDS = 3600
# While the first message gets 410 (the connection is still inside $connect), the
# connection's row is read once, after this long, to stop early if the client left.
_WELCOME_CHECK_AFTER_SECONDS = 1.0


@attrs.frozen(kw_only=True)
class ConnectRequest:
    connection_id: str
    query: Dict[str, str]
    endpoint: str
    user_id: Optional[str] = None  # set by the authorizer for a verified speaker token
    token_refusal: Optional[str] = None  # why the authorizer could not verify one
    source_ip: Optional[str] = None


@attrs.frozen(kw_only=True)
class Welcome:
    """The first message of a connection, delivered once ``$connect`` returned, and
    what to tell someone else once it was (the speaker, of a listener joining)."""

    connection_id: str
    endpoint: str
    message: dict
    deadline: float
    notify: Optional[dict] = None  # {"connection_id": ..., "message": {...}}
    close: bool = False  # an in-band refusal: close the connection once it is said
    issued_at: Optional[float] = None  # when $connect answered: WelcomeLatency starts there

    def to_payload(self) -> dict:
        return attrs.asdict(self)

    @classmethod
    def from_payload(cls, payload: dict) -> "Welcome":
        return cls(
            connection_id=payload["connection_id"],
            endpoint=payload["endpoint"],
            message=payload["message"],
            deadline=float(payload["deadline"]),
            notify=payload.get("notify"),
            close=bool(payload.get("close", False)),
            issued_at=payload.get("issued_at"),
        )


@attrs.frozen
class _Admitted:
    """What a successful ``$connect`` write produced: the first message, how to
    undo the write if the connection cannot complete, what to do once it has, and
    whom to tell once the first message is delivered."""

    message: dict
    undo: Callable[[], None]
    after: Optional[Callable[[], None]] = None
    notify: Optional[dict] = None
    # For the metrics: what was admitted (None: a repeated $connect, counted the
    # first time), and whether a listener place was taken.
    intent: Optional[str] = None
    joined: bool = False


class Admission:
    def __init__(
        self,
        *,
        config,
        store: Store,
        departures: Departures,
        rate_limiter: RateLimiter,
        hasher: Callable[[str, str], str],
        connections_api: Callable[[str], ConnectionsApi],
        dispatch_welcome: Callable[[Welcome], None],
        metrics: Metrics,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._metrics = metrics
        self._config = config
        self._store = store
        self._departures = departures
        self._rate_limiter = rate_limiter
        self._hash = hasher
        self._api = connections_api
        self._dispatch_welcome = dispatch_welcome
        self._clock = clock
        self._sleep = sleep

    # -- $connect ----------------------------------------------------------------

    def on_connect(self, request: ConnectRequest) -> dict:
        """``$connect``: the response that accepts the handshake, or refuses it with
        its status (or accepts it to say the refusal in-band, when asked). Every
        refusal is counted by code; one that is our fault also in Faults."""
        try:
            self.connect(request)
        except Exception as exc:  # every refusal, expected or not, is a status + code
            refusal = exc if isinstance(exc, errors.BroadcastError) else errors.BroadcastError()
            self._metrics.add("ConnectRefusals", 1, refusal.code)
            if refusal.fault:
                self._metrics.fault()
                logger.error("connect failed: %s", refusal.code, exc_info=exc,
                             extra={"status": refusal.status})
            else:
                logger.info("connect refused: %s", refusal.code, extra={"status": refusal.status})
            if self.refuse_in_band(request, exc):
                return responses.connect_accepted()
            return responses.connect_refusal(refusal)
        return responses.connect_accepted()

    def connect(self, request: ConnectRequest) -> Welcome:
        """Validate, record the connection, and hand its first message to delivery.

        Raises a BroadcastError whose status refuses the handshake. On any failure
        nothing written for this connection remains.
        """
        try:
            intent = parse_connect(request.query, self._config.supported_languages)
        except errors.BroadcastError:
            self._count_connect(request)  # a malformed handshake counts too
            raise
        # The refusal's log line names the session asked for (a valid id, never an echo).
        annotate(session_id=getattr(intent, "session_id", None))
        now = self._clock()
        if isinstance(intent, JoinIntent):
            admitted = self._join(request, intent, now, count=True)
        else:
            self._count_connect(request)
            if intent.role == SPEAKER:
                self._require_verified_speaker(request)
            if isinstance(intent, CreateIntent):
                self._limit(self._hash("user", request.user_id),
                            self._config.rate_limit_sessions_per_hour, CREATE_WINDOW_SECONDS,
                            "too many sessions created by this user, retry later",
                            "sessionsPerUser")
                admitted = self._create(request, intent, now)
            elif intent.role == SPEAKER:
                admitted = self._refresh_speaker(request, intent, now)
            else:
                admitted = self._refresh_listener(request, intent, now)

        welcome = Welcome(
            connection_id=request.connection_id,
            endpoint=request.endpoint,
            message=admitted.message,
            deadline=now + self._config.welcome_delivery_timeout_seconds,
            notify=admitted.notify,
            issued_at=self._clock(),
        )
        annotate(session_id=admitted.message.get("sessionId"))
        try:
            self._dispatch_welcome(welcome)
        except Exception:
            logger.exception("could not dispatch the first message; undoing connect")
            admitted.undo()
            raise errors.ConnectNotCompleted() from None
        self._count_admitted(admitted)
        if admitted.after is not None:
            try:
                admitted.after()
            except Exception:  # the connection stands; a notice is not worth refusing it
                logger.exception("post-connect notice failed")
        return welcome

    def _count_admitted(self, admitted: _Admitted) -> None:
        if admitted.intent is None:
            return
        # One line per admitted connection: what a session's log query finds first.
        logger.info("connect admitted: %s", admitted.intent)
        self._metrics.add("ConnectionsAdmitted", 1, admitted.intent)
        if admitted.intent == "createSession":
            self._metrics.add("SessionsCreated")
        elif admitted.intent.endswith("Refresh"):
            self._metrics.add("RefreshesCompleted", 1, admitted.intent[: -len("Refresh")])
        if admitted.joined:
            self._metrics.add("ListenersJoined")

    def refuse_in_band(self, request: ConnectRequest, refusal: Exception) -> bool:
        """A client that asked for it (``refusal=message``: browsers, which see nothing
        of a refused handshake) gets its refusal as the first message, ``error`` with
        the code, and is then closed. True if that was arranged; False leaves the
        usual HTTP refusal. Nothing was written for the connection either way."""
        if request.query.get("refusal") != "message" or not isinstance(refusal, errors.BroadcastError):
            return False
        if isinstance(refusal, errors.ConnectNotCompleted):
            return False  # the welcome could not be dispatched: neither can this
        now = self._clock()
        try:
            self._dispatch_welcome(Welcome(
                connection_id=request.connection_id,
                endpoint=request.endpoint,
                message=messages.error(now, refusal.code, refusal.message),
                deadline=now + self._config.welcome_delivery_timeout_seconds,
                close=True,
                issued_at=now,
            ))
        except Exception:
            logger.exception("could not dispatch an in-band refusal")
            return False
        return True

    # -- rate limits -------------------------------------------------------------

    def _ip_key(self, request: ConnectRequest) -> Optional[str]:
        return self._hash("ip", request.source_ip) if request.source_ip else None

    def _count_connect(self, request: ConnectRequest) -> None:
        """Count a handshake against its address; refuse it when over the limit."""
        self._limit(self._ip_key(request), self._config.rate_limit_connects_per_minute,
                    CONNECT_WINDOW_SECONDS,
                    "too many connections from this address, retry in a minute",
                    "connectsPerAddress")

    def _limit(self, key: Optional[str], limit: int, window_seconds: int, message: str,
               name: str) -> None:
        if key and not self._rate_limiter.allow(key, limit, window_seconds):
            self._metrics.add("RateLimitRefusals", 1, name)
            raise errors.RateLimited(message)

    @staticmethod
    def _require_verified_speaker(request: ConnectRequest) -> None:
        """Speaker intents need the user id the authorizer set for a verified token;
        the authorizer says why there is none (see chalicelib/auth/authorizer.py)."""
        if request.token_refusal == KEYS_UNAVAILABLE:
            raise errors.KeysUnavailable()
        if not request.user_id:
            raise errors.Unauthorized()

    # -- records -----------------------------------------------------------------

    def _connection(self, request, session_id, role, now, target_language=None,
                    speaker_connection_id=None) -> Connection:
        now_ms = int(now * 1000)
        return Connection(
            connection_id=request.connection_id,
            session_id=session_id,
            role=role,
            target_language=target_language,
            user_id=request.user_id if role == SPEAKER else None,
            connected_at=now_ms,
            last_seen_at=now_ms,
            ttl=int(now) + self._config.connection_ttl_seconds,
            speaker_connection_id=speaker_connection_id,
        )

    def _listener(self, request, intent, now, session: Session) -> Connection:
        return self._connection(request, intent.session_id, LISTENER, now,
                                intent.target_language, session.speaker_connection_id)

    # -- intents -----------------------------------------------------------------

    def _create(self, request, intent: CreateIntent, now) -> _Admitted:
        for session_id in candidate_ids():
            session = Session(
                session_id=session_id,
                speaker_user_id=request.user_id,
                speaker_connection_id=request.connection_id,
                source_language=intent.source_language,
                quality_tier=intent.quality_tier,
                status=ACTIVE,
                listener_count=0,
                created_at=int(now * 1000),
                expires_at=int(now) + self._config.session_max_duration_seconds,
                sweep_shard=zlib.crc32(session_id.encode()) % self._config.sweep_shards,
                broadcast_state=BroadcastState(last_state_change=int(now * 1000)),
            )
            speaker = self._connection(request, session_id, SPEAKER, now)
            try:
                self._store.create_session(session, speaker)
            except SessionIdTaken:
                continue
            except ConnectionExists as exc:
                return self._repeat_welcome(exc.existing, intent, now)

            def undo(session_id=session_id):
                self._store.end_session(session_id, "aborted", int(self._clock() * 1000))
                self._store.delete_connection(request.connection_id)

            return _Admitted(messages.session_created(now, session, request.connection_id), undo,
                             intent="createSession")
        raise errors.SessionIdExhausted()

    def _join(self, request, intent, now, *, count: bool) -> _Admitted:
        """A join, or a listener refresh that names no connection to take over: a new
        place, within capacity. With ``count``, the handshake is counted against its
        address inside the join's own transaction (read with the session)."""
        key = self._ip_key(request) if count else None
        limit = self._config.rate_limit_connects_per_minute
        if key:
            session, counter = self._store.read_with(
                intent.session_id, self._config.rate_limits_table, self._rate_limiter.key(key))
        else:
            session, counter = self._store.get_session(intent.session_id), None
        if session is None or not session.is_active or session.expires_at <= int(now):
            if key:
                self._count_connect(request)
            raise errors.SessionNotFound()
        counted = (self._rate_limiter.counted_within(counter, key, limit, CONNECT_WINDOW_SECONDS)
                   if key else Counted(True, None))
        if not counted.allowed:
            self._count_connect(request)  # counts it, and refuses it unless a window just ended
            counted = Counted(True, None)
        listener = self._listener(request, intent, now, session)
        extra = (counted.item,) if counted.item else ()
        try:
            try:
                self._store.add_listener(listener, self._config.max_listeners_per_session, *extra)
            except ExtraConditionFailed:  # the counter moved since we read it
                extra = ()
                self._count_connect(request)
                self._store.add_listener(listener, self._config.max_listeners_per_session)
        except ConnectionExists as exc:
            return self._repeat_welcome(exc.existing, intent, now)
        except (errors.SessionNotFound, errors.SessionFull):
            if extra:  # the cancelled transaction did not count the refusal
                self._count_refusal(request)
            raise
        return _Admitted(
            self._listener_welcome(intent, session, listener, now),
            lambda: self._store.remove_listener(listener, int(self._clock() * 1000)),
            notify=self._presence(session, now, joined=listener.target_language),
            intent="joinSession" if count else "listenerRefresh",
            joined=True,
        )

    def _count_refusal(self, request: ConnectRequest) -> None:
        """Count a refused handshake; the refusal's own reason is the answer."""
        key = self._ip_key(request)
        if key:
            self._rate_limiter.allow(key, self._config.rate_limit_connects_per_minute,
                                     CONNECT_WINDOW_SECONDS)

    def _refresh_listener(self, request, intent: RefreshIntent, now) -> _Admitted:
        """A listener refresh naming its current connection takes over that one's
        place, whatever the capacity; the old connection's departure then uncounts
        nothing. A place is taken over once: capacity plus refreshes in flight never
        exceed what real listeners hold. Without a connection it can take over, a
        refresh is admitted like a join."""
        previous = intent.previous_connection_id
        if previous is None:
            return self._join(request, intent, now, count=False)
        session = self._store.active_session(intent.session_id)
        listener = self._listener(request, intent, now, session)
        try:
            taken = self._store.take_over_listener(listener, previous)
        except ConnectionExists as exc:
            return self._repeat_welcome(exc.existing, intent, now)
        if not taken:
            return self._join(request, intent, now, count=False)
        return _Admitted(
            self._listener_welcome(intent, session, listener, now),
            lambda: self._store.undo_take_over(listener, previous),
            intent="listenerRefresh",
        )

    @staticmethod
    def _listener_welcome(intent, session, listener: Connection, now) -> dict:
        if isinstance(intent, JoinIntent):
            return messages.session_joined(
                now, session, listener.connection_id, listener.target_language
            )
        return messages.refresh_complete(
            now, session, listener.connection_id, LISTENER, listener.target_language
        )

    @staticmethod
    def _presence(session: Session, now, **change) -> dict:
        return {"connection_id": session.speaker_connection_id,
                "message": messages.listener_presence(now, session.session_id, **change)}

    def _refresh_speaker(self, request, intent: RefreshIntent, now) -> _Admitted:
        speaker = self._connection(request, intent.session_id, SPEAKER, now)
        try:
            session, previous, previous_disconnected_at = self._store.replace_speaker(
                speaker,
                request.user_id,
                int(now) + self._config.session_max_duration_seconds,
            )
        except ConnectionExists as exc:
            return self._repeat_welcome(exc.existing, intent, now)

        def undo():
            if previous is not None:
                self._store.restore_speaker(
                    intent.session_id, previous, request.connection_id, previous_disconnected_at
                )
            self._store.delete_connection(request.connection_id)

        after = None
        if previous_disconnected_at is not None:
            def after():
                self._departures.tell_listeners(
                    session.session_id,
                    messages.speaker_reconnected(self._clock(), session.session_id),
                    self._api(request.endpoint),
                )

        message = messages.refresh_complete(now, session, request.connection_id, SPEAKER, None)
        return _Admitted(message, undo, after, intent="speakerRefresh")

    def _repeat_welcome(self, existing: Optional[Connection], intent, now) -> _Admitted:
        """A duplicate ``$connect`` for a connection we already recorded: answer as
        the first time, change nothing."""
        if existing is None:
            raise errors.ServiceUnavailable("connection state changed, retry")
        session = self._store.active_session(existing.session_id)
        cid = existing.connection_id
        if isinstance(intent, RefreshIntent):
            message = messages.refresh_complete(
                now, session, cid, existing.role, existing.target_language
            )
        elif existing.is_speaker:
            message = messages.session_created(now, session, cid)
        else:
            message = messages.session_joined(now, session, cid, existing.target_language)
        return _Admitted(message, lambda: None)

    # -- first message -----------------------------------------------------------

    def deliver_welcome(self, welcome: Welcome) -> bool:
        """Post the first message, retrying while the connection is still inside its
        own ``$connect`` (API Gateway answers 410 then). Gives up at the deadline, or
        when the connection's row is gone (the client left; read once, after a
        second of 410s). Then tells whoever ``notify`` names (a new listener's
        speaker), once, on a best-effort basis."""
        annotate(connection_id=welcome.connection_id, session_id=welcome.message.get("sessionId"))
        api = self._api(welcome.endpoint)
        delay, started, checked = 0.02, self._clock(), False
        while True:
            try:
                if api.send(welcome.connection_id, welcome.message):
                    break
            except DeliveryFailed as exc:
                logger.warning("first message: %s, retrying", exc)
            now = self._clock()
            if now >= welcome.deadline:
                # Still there? Then it was ours to deliver and we failed; else the
                # client left before its first message (routine).
                if self._store.get_connection(welcome.connection_id) is None:
                    self._metrics.add("WelcomeGone")
                    return False
                self._metrics.add("WelcomeFailed")
                logger.warning("first message not delivered by the deadline")
                return False
            if not checked and now - started >= _WELCOME_CHECK_AFTER_SECONDS:
                checked = True
                if self._store.get_connection(welcome.connection_id) is None:
                    self._metrics.add("WelcomeGone")
                    return False
            self._sleep(delay)
            delay = min(delay * 2, 0.25)
        self._metrics.add("WelcomeDelivered")
        self._metrics.add("WelcomeLatency", max(0.0, self._clock() - (welcome.issued_at or started)) * 1000)
        if welcome.close:
            try:
                api.close(welcome.connection_id)
            except DeliveryFailed as exc:
                logger.warning("closing a refused connection failed: %s", exc)
        if welcome.notify:
            try:
                api.send(welcome.notify["connection_id"], welcome.notify["message"])
            except DeliveryFailed as exc:  # the speaker re-syncs with getSessionStatus
                logger.warning("presence notice failed: %s", exc,
                               extra={"target": ref(welcome.notify["connection_id"])})
        return True

    # -- joinSession on an open connection ------------------------------------------

    def on_join_again(self, connection: Connection, message, api: ConnectionsApi, now: float) -> None:
        """The ``joinSession`` action: a listener asks again (after a lost first
        message, say); it is answered as at its connect, nothing changes."""
        if connection.is_speaker:
            raise errors.Forbidden("the speaker cannot join its own session as a listener")
        session_id = validate_session_id(message.body.get("sessionId"))
        validate_language(
            message.body.get("targetLanguage"),
            self._config.supported_languages,
            "targetLanguage",
        )
        if session_id != connection.session_id:
            raise errors.Forbidden(
                "a connection belongs to one session; open a new connection to join another"
            )
        session = self._store.active_session(session_id)
        api.send(
            connection.connection_id,
            messages.session_joined(
                now, session, connection.connection_id, connection.target_language
            ),
        )
