"""The session lifecycle: connecting, messages, leaving, ending.

The service owns the decisions; the store owns DynamoDB, the connections API owns
``@connections``. Handlers in app.py parse events into the small request objects
below and call one method each.
"""

from __future__ import annotations

import logging
import time
from typing import Callable, Dict, Optional

import attrs

from chalicelib import errors, liveness, messages
from chalicelib.connections_api import ConnectionsApi, DeliveryFailed
from chalicelib.fanout import FanoutResult, fan_out
from chalicelib.ids import candidate_ids
from chalicelib.records import (
    ACTIVE,
    LISTENER,
    SPEAKER,
    BroadcastState,
    Connection,
    Session,
)
from chalicelib.requests import (
    ClientMessage,
    CreateIntent,
    JoinIntent,
    RefreshIntent,
    parse_connect,
    parse_message,
    validate_language,
    validate_session_id,
)
from chalicelib.store import ConnectionExists, SessionIdTaken, Store

logger = logging.getLogger(__name__)

# Why a session ended, as sent in sessionEnded.reason.
SPEAKER_DISCONNECTED = "speakerDisconnected"
SPEAKER_ENDED = "speakerEnded"
EXPIRED = "expired"


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
class _Admission:
    """What a successful ``$connect`` write produced: the first message, how to
    undo the write if the connection cannot complete, and what to do once it has."""

    message: dict
    undo: Callable[[], None]
    after: Optional[Callable[[], None]] = None


class Lifecycle:
    def __init__(
        self,
        *,
        config,
        store: Store,
        connections_api: Callable[[str], ConnectionsApi],
        dispatch_welcome: Callable[[Welcome], None],
        broadcaster=None,
        rate_limiter=None,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
        rng=None,
    ) -> None:
        self._config = config
        self._store = store
        self._api = connections_api
        self._dispatch_welcome = dispatch_welcome
        self._broadcaster = broadcaster
        self._rate_limiter = rate_limiter
        self._clock = clock
        self._sleep = sleep
        self._rng = rng

    def _now_ms(self) -> int:
        return int(self._clock() * 1000)

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
            admission = self._create(request, intent, now)
        elif isinstance(intent, JoinIntent):
            admission = self._join(request, intent, now)
        elif intent.role == SPEAKER:
            admission = self._refresh_speaker(request, intent, now)
        else:
            admission = self._refresh_listener(request, intent, now)

        welcome = Welcome(
            connection_id=request.connection_id,
            endpoint=request.endpoint,
            message=admission.message,
            deadline=now + self._config.welcome_delivery_timeout_seconds,
        )
        try:
            self._dispatch_welcome(welcome)
        except Exception:
            logger.exception("could not dispatch the first message; undoing connect")
            admission.undo()
            raise errors.ServiceUnavailable("could not complete the connection, retry") from None
        if admission.after is not None:
            try:
                admission.after()
            except Exception:  # the connection stands; a notice is not worth refusing it
                logger.exception("post-connect notice failed")
        return welcome

    def _check_rate_limits(self, request: ConnectRequest, intent) -> None:
        limiter = self._rate_limiter
        if limiter is None:
            return
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

    def _create(self, request, intent: CreateIntent, now) -> "_Admission":
        for session_id in candidate_ids(self._rng):
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
                self._store.end_session(session_id, "aborted", self._now_ms())
                self._store.delete_connection(request.connection_id)

            return _Admission(messages.session_created(now, session, request.connection_id), undo)
        raise errors.SessionIdExhausted()

    def _admit_listener(self, request, intent, now, capacity_limit: int) -> "_Admission":
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
        return _Admission(message, lambda: self._store.remove_listener(listener))

    def _join(self, request, intent: JoinIntent, now) -> "_Admission":
        return self._admit_listener(
            request, intent, now, self._config.max_listeners_per_session
        )

    def _refresh_listener(self, request, intent: RefreshIntent, now) -> "_Admission":
        # The refreshing listener's old connection is about to leave, so capacity
        # does not apply; the hard ceiling of twice the capacity bounds what anyone
        # can gain by "refreshing" into a full session.
        return self._admit_listener(
            request, intent, now, 2 * self._config.max_listeners_per_session
        )

    def _refresh_speaker(self, request, intent: RefreshIntent, now) -> "_Admission":
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
                self._broadcast_to_listeners(
                    session.session_id,
                    messages.speaker_reconnected(self._clock(), session.session_id),
                    self._api(request.endpoint),
                )

        message = messages.refresh_complete(
            now, session, request.connection_id, SPEAKER, None
        )
        return _Admission(message, undo, after)

    def _repeat_welcome(self, existing: Optional[Connection], intent, now) -> "_Admission":
        """A duplicate ``$connect`` for a connection we already recorded: answer as
        the first time, change nothing."""
        if existing is None:
            raise errors.ServiceUnavailable("connection state changed, retry")
        session = self._store.get_session(existing.session_id)
        if session is None or not session.is_active:
            raise errors.SessionNotFound()
        cid = existing.connection_id
        if isinstance(intent, RefreshIntent):
            message = messages.refresh_complete(
                now, session, cid, existing.role, existing.target_language
            )
        elif existing.is_speaker:
            message = messages.session_created(now, session, cid)
        else:
            message = messages.session_joined(now, session, cid, existing.target_language)
        return _Admission(message, lambda: None)

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

    # -- $default ----------------------------------------------------------------

    def handle_message(self, connection_id: str, raw: Optional[str], endpoint: str) -> None:
        """Handle one client message; every outcome, good or bad, is a reply."""
        api = self._api(endpoint)
        now = self._clock()
        action = None
        try:
            message = parse_message(raw)
            action = message.action
            connection = self._store.touch(connection_id, int(now * 1000))
            if connection is None:
                raise errors.SessionNotFound("this connection is not part of an active session")
            handler = self._message_handlers().get(message.action)
            if handler is None:
                raise errors.UnknownAction(f"unknown action {message.action!r}")
            handler(connection, message, api, now)
        except errors.BroadcastError as exc:
            self._reply(api, connection_id, messages.error(now, exc.code, exc.message, action))
        except Exception:  # a bug: log it, tell the client nothing more than that
            logger.exception("unexpected error handling %r", action)
            internal = errors.BroadcastError()
            self._reply(api, connection_id, messages.error(now, internal.code, internal.message, action))

    def _message_handlers(self):
        """Every client action and the method that handles it."""
        handlers = {
            "heartbeat": self._on_heartbeat,
            "joinSession": self._on_join_again,
            "endSession": self._on_end_session,
        }
        b = self._broadcaster
        if b is not None:
            handlers.update(
                pauseBroadcast=b.on_control,
                resumeBroadcast=b.on_control,
                muteBroadcast=b.on_control,
                unmuteBroadcast=b.on_control,
                setVolume=b.on_set_volume,
                getSessionStatus=b.on_status,
                changeLanguage=b.on_change_language,
                sendAudio=b.on_audio,
            )
        return handlers

    def _reply(self, api: ConnectionsApi, connection_id: str, message: dict) -> None:
        try:
            api.send(connection_id, message)
        except DeliveryFailed as exc:
            logger.warning("reply to %s failed: %s", connection_id, exc)

    def _on_heartbeat(self, connection, message: ClientMessage, api, now):
        self._reply(api, connection.connection_id, messages.heartbeat_ack(now))
        verdict = liveness.judge(connection, int(now * 1000), self._config)
        self.send_notices(connection, verdict.notices, api, now)

    def _on_join_again(self, connection, message: ClientMessage, api, now):
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
        session = self._store.get_session(session_id)
        if session is None or not session.is_active:
            raise errors.SessionNotFound()
        self._reply(
            api,
            connection.connection_id,
            messages.session_joined(
                now, session, connection.connection_id, connection.target_language
            ),
        )

    def _on_end_session(self, connection, message: ClientMessage, api, now):
        if not connection.is_speaker:
            raise errors.Forbidden("only the speaker can end the session")
        session = self._store.end_session(
            connection.session_id,
            SPEAKER_ENDED,
            int(now * 1000),
            only_if_speaker=connection.connection_id,
        )
        if session is None:
            raise errors.SessionNotFound("the session has already ended")
        self.finish_session(session, SPEAKER_ENDED, api)

    # -- leaving -----------------------------------------------------------------

    def disconnect(self, connection_id: str, endpoint: str) -> None:
        """``$disconnect``: idempotent; a repeated delivery finds nothing to do."""
        connection = self._store.get_connection(connection_id)
        if connection is not None:
            self.connection_left(connection, self._api(endpoint))

    def connection_left(self, connection: Connection, api: ConnectionsApi) -> None:
        """The socket is gone, however we learned it ($disconnect, a 410, a forced
        close). Safe to run more than once and concurrently: every step is
        conditional, so the count moves once and the session ends once."""
        if not connection.is_speaker:
            self._store.remove_listener(connection)
            return
        self._store.delete_connection(connection.connection_id)
        grace = self._config.speaker_reconnect_grace_seconds
        if grace > 0:
            session = self._store.mark_speaker_disconnected(
                connection.session_id, connection.connection_id, self._now_ms()
            )
            if session is not None:
                self._broadcast_to_listeners(
                    session.session_id,
                    messages.speaker_disconnected(self._clock(), session.session_id, grace),
                    api,
                )
            return
        self.end_session(connection.session_id, SPEAKER_DISCONNECTED, api, only_if_speaker=connection.connection_id)

    def end_session(
        self,
        session_id: str,
        reason: str,
        api: ConnectionsApi,
        only_if_speaker: Optional[str] = None,
    ) -> Optional[Session]:
        """End an active session (once) and tell and release everyone in it.
        An ``expired`` end re-checks expiry in the write: a refresh may have won."""
        ended = self._store.end_session(
            session_id,
            reason,
            self._now_ms(),
            only_if_speaker=only_if_speaker,
            only_if_expired=reason == EXPIRED,
        )
        if ended is not None:
            self.finish_session(ended, reason, api)
        return ended

    def finish_session(self, session: Session, reason: str, api: ConnectionsApi) -> None:
        """After the session is marked ended: listeners first, then the speaker."""
        self.release_listeners(session.session_id, reason, api)
        speaker_id = session.speaker_connection_id
        try:
            api.say_and_close(speaker_id, messages.session_ended(self._clock(), session.session_id, reason))
        except DeliveryFailed as exc:
            logger.warning("closing speaker %s failed: %s", speaker_id, exc)
        self._store.delete_connection(speaker_id)

    def release_listeners(self, session_id: str, reason: str, api: ConnectionsApi) -> FanoutResult:
        """Tell every listener the session ended, close them, and remove their rows.

        Each removal is the same idempotent transaction a ``$disconnect`` runs, so
        whichever comes first counts and the other finds nothing."""
        ended = messages.session_ended(self._clock(), session_id, reason)

        def close_and_remove(listener: Connection) -> None:
            try:
                api.close(listener.connection_id)
            finally:
                self._store.remove_listener(listener)

        return fan_out(
            api,
            self._store.listeners(session_id),
            ended,
            concurrency=self._config.publish_concurrency,
            on_gone=lambda listener: self.forget(listener, api),
            after_send=close_and_remove,
        )

    def _broadcast_to_listeners(self, session_id: str, message: dict, api: ConnectionsApi) -> FanoutResult:
        """Send to every listener; listeners found gone are cleaned up."""
        return fan_out(
            api,
            self._store.listeners(session_id),
            message,
            concurrency=self._config.publish_concurrency,
            on_gone=lambda listener: self.forget(listener, api),
        )

    # -- liveness ----------------------------------------------------------------

    def send_notices(self, connection: Connection, notices, api: ConnectionsApi, now: float) -> None:
        """Send each due one-time notice, exactly once per connection."""
        now_ms = int(now * 1000)
        refresh_by = liveness.refresh_deadline_ms(connection, self._config)
        for notice in notices:
            if not self._store.claim_notice(connection.connection_id, notice, now_ms):
                continue
            if notice == liveness.REFRESH_NOTICE:
                message = messages.connection_refresh_required(
                    now, connection, refresh_by, liveness.reconnect_query(connection)
                )
            else:
                message = messages.connection_warning(
                    now, liveness.remaining_minutes(connection, now_ms, self._config), refresh_by
                )
            try:
                sent = api.send(connection.connection_id, message)
            except DeliveryFailed as exc:
                # Claimed but not sent: give the claim back so the next try sends it.
                logger.warning("notice to %s failed: %s", connection.connection_id, exc)
                self._store.release_notice(connection.connection_id, notice)
                return
            if not sent:
                self.forget(connection, api)
                return

    def close_connection(self, connection: Connection, reason: str, api: ConnectionsApi) -> None:
        """Close a connection ourselves, saying why first, and clean up at once
        (the ``$disconnect`` that follows finds nothing left to do)."""
        try:
            api.say_and_close(connection.connection_id, messages.connection_closed(self._clock(), reason))
        except DeliveryFailed as exc:
            logger.warning("closing %s failed: %s", connection.connection_id, exc)
            return  # keep the row; the next sweep tries again
        self.connection_left(connection, api)

    def forget(self, connection: Connection, api: ConnectionsApi) -> None:
        """A send found the connection gone (410): clean up as for a disconnect,
        unless the 410 may only mean it is still inside its ``$connect``."""
        if not liveness.may_be_connecting(connection, self._now_ms(), self._config):
            self.connection_left(connection, api)
