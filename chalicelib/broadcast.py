"""The broadcast's message handlers: speaker controls, status, language change,
and audio in. Each is an entry of the router's action table."""

from __future__ import annotations

import logging
from collections import Counter
from decimal import Decimal

from chalicelib import errors
from chalicelib.audio import parse_chunk
from chalicelib.connections_api import ConnectionsApi, DeliveryFailed
from chalicelib.publisher import Publisher
from chalicelib.recent import Recent
from chalicelib.state.records import Connection, Session
from chalicelib.state.store import Store
from chalicelib.wire import messages
from chalicelib.wire.echo import shown
from chalicelib.wire.intents import validate_language

logger = logging.getLogger(__name__)

# After a speaker refresh, audio the client sent on its old connection before it
# switched over (in flight while the server already made the new one current) is
# still taken for this long: a refresh must lose no audio. Every other speaker
# action from the old connection is CONNECTION_REPLACED at once.
AUDIO_HANDOVER_SECONDS = 10
# How stale the session behind an audio chunk may be: a pause drops audio within this.
AUDIO_SESSION_MAX_AGE_SECONDS = 1

# action -> (listener message type, broadcastState changes)
CONTROLS = {
    "pauseBroadcast": ("broadcastPaused", {"isPaused": True}),
    "resumeBroadcast": ("broadcastResumed", {"isPaused": False}),
    "muteBroadcast": ("broadcastMuted", {"isMuted": True}),
    "unmuteBroadcast": ("broadcastUnmuted", {"isMuted": False}),
}


def _may_send_audio(connection: Connection, session, now: float) -> bool:
    """The session's speaker, or the one it replaced within the handover window."""
    return connection.connection_id == session.speaker_connection_id or (
        connection.connection_id == session.previous_speaker_connection_id
        and now * 1000 - (session.speaker_replaced_at or 0) < AUDIO_HANDOVER_SECONDS * 1000
    )


def _require_speaker(connection: Connection, what: str) -> None:
    if not connection.is_speaker:
        raise errors.Forbidden(f"only the speaker {what}")


class BroadcastActions:
    def __init__(self, *, config, store: Store, publisher: Publisher, audio_sink) -> None:
        self._config = config
        self._store = store
        self._publisher = publisher
        self._audio_sink = audio_sink
        self._sessions: Recent[Session] = Recent(AUDIO_SESSION_MAX_AGE_SECONDS)

    # -- speaker controls --------------------------------------------------------------

    def on_control(self, connection: Connection, message, api: ConnectionsApi, now: float) -> None:
        _require_speaker(connection, "controls the broadcast")
        listener_type, changes = CONTROLS[message.action]
        self._apply(connection, message.action, listener_type, changes, {}, api, now)

    def on_set_volume(self, connection: Connection, message, api: ConnectionsApi, now: float) -> None:
        _require_speaker(connection, "controls the broadcast")
        level = message.body.get("volumeLevel")
        # Compared as given: float() of a 400-digit integer would overflow.
        if isinstance(level, bool) or not isinstance(level, (int, float)) or not 0 <= level <= 1:
            raise errors.InvalidParameter(
                f"volumeLevel must be a number from 0.0 to 1.0, got {shown(level)}"
            )
        # Six decimals are plenty for a volume, and keep it in DynamoDB's number
        # range (a level of 1e-191 is valid JSON but no DynamoDB number).
        level = round(float(level), 6)
        self._apply(
            connection, "setVolume", "volumeChanged",
            {"volume": Decimal(str(level))}, {"volumeLevel": level}, api, now,
        )

    def _apply(self, connection, action, listener_type, changes, extra, api, now) -> None:
        """Set the state and take the listeners' sequence numbers in one write (only
        the current speaker may), tell the listeners, acknowledge."""
        _, session = self._publisher.publish(
            connection.session_id, listener_type,
            lambda updated: {"broadcastState": updated.broadcast_state.to_wire(), **extra},
            api,
            state_changes=changes,
            speaker_connection_id=connection.connection_id,
        )
        self._sessions.keep(session.session_id, session, now)  # this container's audio knows at once
        api.send(
            connection.connection_id,
            messages.build("controlAck", now, action=action,
                           broadcastState=session.broadcast_state.to_wire()),
        )

    # -- status and language -----------------------------------------------------------

    def on_status(self, connection: Connection, message, api: ConnectionsApi, now: float) -> None:
        session = self._store.active_session(connection.session_id)
        status = {
            "sessionId": session.session_id,
            "status": session.status,
            "sourceLanguage": session.source_language,
            "qualityTier": session.quality_tier,
            "listenerCount": session.listener_count,
            "sessionDuration": max(0, int(now - session.created_at / 1000)),
            "broadcastState": session.broadcast_state.to_wire(),
        }
        if connection.is_speaker:
            # Per-language counts are for the speaker only (see docs/protocol.md).
            distribution = Counter(
                listener.target_language for listener in self._store.listeners(session.session_id)
            )
            status["languageDistribution"] = dict(sorted(distribution.items()))
            status["expiresAt"] = session.expires_at
        api.send(connection.connection_id, messages.build("sessionStatus", now, **status))

    def on_change_language(self, connection: Connection, message, api: ConnectionsApi, now: float) -> None:
        if connection.is_speaker:
            raise errors.Forbidden("the speaker's language is the session's source language")
        if connection.replaced_by:
            raise errors.ConnectionReplaced()
        language = validate_language(
            message.body.get("targetLanguage"), self._config.supported_languages, "targetLanguage"
        )
        previous = connection.target_language
        self._store.change_language(connection, language, int(now * 1000))
        session = self._store.active_session(connection.session_id)
        api.send(
            connection.connection_id,
            messages.build(
                "languageChanged",
                now,
                sessionId=connection.session_id,
                targetLanguage=language,
                previousLanguage=previous,
                sequenceNumber=session.sequence_numbers.get(language, 0),
            ),
        )
        if language != previous:  # the speaker's counts by language move
            try:
                api.send(session.speaker_connection_id, messages.listener_presence(
                    now, session.session_id, joined=language, left=previous))
            except DeliveryFailed as exc:
                logger.warning("presence notice failed: %s", exc)

    # -- audio in ----------------------------------------------------------------------

    def on_audio(self, connection: Connection, message, api: ConnectionsApi, now: float) -> None:
        _require_speaker(connection, "can send audio")
        claimed = message.body.get("sessionId")
        if claimed is not None and claimed != connection.session_id:
            raise errors.Forbidden("audio can only be sent to the speaker's own session")
        chunk = parse_chunk(message.body)
        # Several chunks a second: the session (is it paused? who is its speaker?) read
        # in this container in the last AUDIO_SESSION_MAX_AGE_SECONDS serves again.
        session = self._sessions.get_or(
            connection.session_id, now,
            lambda: self._store.active_session(connection.session_id, consistent=False),
        )
        if not _may_send_audio(connection, session, now):
            # A refreshed speaker's first chunks meet a session read before the
            # handover (cached, or eventually consistent): read it again, strongly,
            # before calling the sender replaced; a chunk refused here is lost audio.
            session = self._sessions.keep(
                connection.session_id,
                self._store.active_session(connection.session_id, consistent=True), now)
            if not _may_send_audio(connection, session, now):
                raise errors.ConnectionReplaced()
        state = session.broadcast_state
        if state.is_paused or state.is_muted:
            return  # a paused or muted broadcast is silent: nothing leaves the server
        self._audio_sink.accept(session, chunk, api)
