"""Admission: ``$connect`` intents (create, join, refresh), rate limits, and the
first message.

A connect validates the query, records the connection with conditional writes or
a transaction, and hands its first message to ``deliver_welcome`` (an asynchronous
invocation: API Gateway refuses posts until ``$connect`` has returned). On any
failure nothing written for the connection remains.
"""

from __future__ import annotations

import logging
import time
from typing import Callable, Dict, Optional

import attrs

from chalicelib import errors
from chalicelib.connections_api import ConnectionsApi, DeliveryFailed
from chalicelib.departures import Departures
from chalicelib.state.rate_limits import RateLimiter
from chalicelib.state.records import ACTIVE, LISTENER, SPEAKER, BroadcastState, Connection, Session
from chalicelib.state.store import ConnectionExists, SessionIdTaken, Store
from chalicelib.wire import messages
from chalicelib.wire.ids import candidate_ids
from chalicelib.wire.intents import (
    CreateIntent,
    JoinIntent,
    RefreshIntent,
    parse_connect,
    validate_language,
    validate_session_id,
)

logger = logging.getLogger(__name__)


@attrs.frozen(kw_only=True)
class ConnectRequest:
    connection_id: str
    query: Dict[str, str]
    endpoint: str
    user_id: Optional[str] = None
    source_ip: Optional[str] = None


@attrs.frozen(kw_only=True)
class Welcome:
    """The first message of a connection, delivered once ``$connect`` returned."""

    connection_id: str
    endpoint: str
    message: dict
    deadline: float

    def to_payload(self) -> dict:
        return attrs.asdict(self)

    @classmethod
    def from_payload(cls, payload: dict) -> "Welcome":
        return cls(
            connection_id=payload["connection_id"],
            endpoint=payload["endpoint"],
            message=payload["message"],
            deadline=float(payload["deadline"]),
        )


@attrs.frozen
class _Admitted:
    """What a successful ``$connect`` write produced: the first message, how to
    undo the write if the connection cannot complete, and what to do once it has."""

    message: dict
    undo: Callable[[], None]
    after: Optional[Callable[[], None]] = None


class Admission:
    def __init__(
        self,
        *,
        config,
        store: Store,
        departures: Departures,
        rate_limiter: RateLimiter,
        connections_api: Callable[[str], ConnectionsApi],
        dispatch_welcome: Callable[[Welcome], None],
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._config = config
        self._store = store
        self._departures = departures
        self._rate_limiter = rate_limiter
        self._api = connections_api
        self._dispatch_welcome = dispatch_welcome
        self._clock = clock
        self._sleep = sleep

    # -- $connect ----------------------------------------------------------------

    def connect(self, request: ConnectRequest) -> Welcome:
        """Validate, record the connection, and hand its first message to delivery.

        Raises a BroadcastError whose status refuses the handshake. On any failure
        nothing written for this connection remains.
        """
        intent = parse_connect(request.query, self._config.supported_languages)
        if intent.role == SPEAKER and not request.user_id:
            # The authorizer should have refused already; never trust that alone.
            raise errors.Unauthorized()
        self._check_rate_limits(request, intent)
        now = self._clock()
        if isinstance(intent, CreateIntent):
            admitted = self._create(request, intent, now)
        elif isinstance(intent, JoinIntent):
            admitted = self._admit_listener(
                request, intent, now, self._config.max_listeners_per_session
            )
        elif intent.role == SPEAKER:
            admitted = self._refresh_speaker(request, intent, now)
        else:
            # The refreshing listener's old connection is about to leave, so capacity
            # does not apply; the hard ceiling of twice the capacity bounds what anyone
            # can gain by "refreshing" into a full session.
            admitted = self._admit_listener(
                request, intent, now, 2 * self._config.max_listeners_per_session
            )

        welcome = Welcome(
            connection_id=request.connection_id,
            endpoint=request.endpoint,
            message=admitted.message,
            deadline=now + self._config.welcome_delivery_timeout_seconds,
        )
        try:
            self._dispatch_welcome(welcome)
        except Exception:
            logger.exception("could not dispatch the first message; undoing connect")
            admitted.undo()
            raise errors.ServiceUnavailable("could not complete the connection, retry") from None
        if admitted.after is not None:
            try:
                admitted.after()
            except Exception:  # the connection stands; a notice is not worth refusing it
                logger.exception("post-connect notice failed")
        return welcome

    def _check_rate_limits(self, request: ConnectRequest, intent) -> None:
        limiter = self._rate_limiter
        if request.source_ip and not limiter.allow(
            f"connect#ip#{request.source_ip}", self._config.rate_limit_connects_per_minute, 60
        ):
            raise errors.RateLimited("too many connections from this address, retry in a minute")
        if isinstance(intent, CreateIntent) and not limiter.allow(
            f"create#user#{request.user_id}", self._config.rate_limit_sessions_per_hour, 3600
        ):
            raise errors.RateLimited("too many sessions created by this user, retry later")

    def _connection(self, request, session_id, role, now, target_language=None):
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
        )

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

            return _Admitted(messages.session_created(now, session, request.connection_id), undo)
        raise errors.SessionIdExhausted()

    def _admit_listener(self, request, intent, now, capacity_limit: int) -> _Admitted:
        listener = self._connection(
            request, intent.session_id, LISTENER, now, intent.target_language
        )
        try:
            session = self._store.add_listener(listener, capacity_limit)
        except ConnectionExists as exc:
            return self._repeat_welcome(exc.existing, intent, now)
        if isinstance(intent, JoinIntent):
            message = messages.session_joined(
                now, session, request.connection_id, intent.target_language
            )
        else:
            message = messages.refresh_complete(
                now, session, request.connection_id, LISTENER, intent.target_language
            )
        return _Admitted(message, lambda: self._store.remove_listener(listener))

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
        return _Admitted(message, undo, after)

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
        at once when the connection's row is gone (the client left)."""
        api = self._api(welcome.endpoint)
        delay = 0.02
        while True:
            try:
                if api.send(welcome.connection_id, welcome.message):
                    return True
            except DeliveryFailed as exc:
                logger.warning("first message to %s: %s", welcome.connection_id, exc)
            if self._clock() >= welcome.deadline:
                logger.warning("first message to %s not delivered", welcome.connection_id)
                return False
            if self._store.get_connection(welcome.connection_id) is None:
                return False
            self._sleep(delay)
            delay = min(delay * 2, 0.25)

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
