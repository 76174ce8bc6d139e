"""Carrying a broadcast: fan-out to listeners, speaker controls, status, language
change, and audio in.

Every message published to listeners carries ``sequenceNumber``: strictly
increasing per session and target language (each listener hears one language, so it
sees one gap-free sequence; duplicates from a refresh overlap are dropped by it).
"""

from __future__ import annotations

import logging
import math
import re
import time
from collections import Counter
from typing import Callable, Optional

import attrs

from chalicelib import errors, liveness, messages
from chalicelib.audio import parse_chunk
from chalicelib.connections_api import ConnectionsApi
from chalicelib.fanout import fan_out
from chalicelib.requests import validate_language, validate_session_id
from chalicelib.store import Store

logger = logging.getLogger(__name__)

# Types other services may publish; server-owned types cannot be forged through it.
_PUBLISHABLE_TYPE = re.compile(r"^[a-z][a-zA-Z0-9]{0,39}$")
RESERVED_TYPES = frozenset(
    {
        "sessionCreated", "sessionJoined", "sessionEnded", "sessionStatus",
        "connectionRefreshComplete", "connectionRefreshRequired", "connectionWarning",
        "connectionClosed", "heartbeatAck", "error", "controlAck", "languageChanged",
        "speakerDisconnected", "speakerReconnected", "broadcastPaused",
        "broadcastResumed", "broadcastMuted", "broadcastUnmuted", "volumeChanged",
    }
)
MAX_PUBLISH_BYTES = 126 * 1024  # leaves room for the envelope under 128 KB

# action -> (listener message type, broadcastState changes)
CONTROLS = {
    "pauseBroadcast": ("broadcastPaused", {"isPaused": True}),
    "resumeBroadcast": ("broadcastResumed", {"isPaused": False}),
    "muteBroadcast": ("broadcastMuted", {"isMuted": True}),
    "unmuteBroadcast": ("broadcastUnmuted", {"isMuted": False}),
}


@attrs.frozen
class PublishResult:
    delivered: int = 0
    gone: int = 0
    failed: int = 0
    sequence_numbers: dict = attrs.field(factory=dict)

    def to_dict(self) -> dict:
        return {
            "delivered": self.delivered,
            "gone": self.gone,
            "failed": self.failed,
            "sequenceNumbers": dict(self.sequence_numbers),
        }


class Broadcaster:
    def __init__(
        self,
        *,
        config,
        store: Store,
        audio_sink=None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._config = config
        self._store = store
        self.audio_sink = audio_sink
        self._clock = clock

    # -- fan-out -----------------------------------------------------------------

    def publish(
        self,
        session_id: str,
        type_: str,
        payload: dict,
        api: ConnectionsApi,
        target_language: Optional[str] = None,
    ) -> PublishResult:
        """Deliver one message to every listener of the session, or of one language.

        Listeners come from the session index, page by page; sends run concurrently
        in a bounded pool; listeners found gone are removed and uncounted.
        Raises SessionNotFound if the session is not active.
        """
        listeners = list(self._store.listeners(session_id, target_language))
        languages = {listener.target_language for listener in listeners}
        if target_language is not None:
            languages.add(target_language)
        if not languages:
            session = self._store.get_session(session_id)
            if session is None or not session.is_active:
                raise errors.SessionNotFound()
            return PublishResult()
        numbers = self._store.next_sequence_numbers(session_id, languages)
        if not listeners:
            return PublishResult(sequence_numbers=numbers)
        now = self._clock()
        encoded = {
            language: messages.encode(
                messages.build(
                    type_,
                    now,
                    sessionId=session_id,
                    targetLanguage=language,
                    sequenceNumber=number,
                    **payload,
                )
            )
            for language, number in numbers.items()
        }
        result = fan_out(
            api,
            listeners,
            lambda listener: encoded[listener.target_language],
            concurrency=self._config.publish_concurrency,
            on_gone=self._forget,
        )
        return PublishResult(result.delivered, result.gone, result.failed, numbers)

    def _forget(self, listener) -> None:
        """A listener found gone is removed and uncounted, unless it may still be
        inside its ``$connect`` (API Gateway answers 410 then too)."""
        if not liveness.may_be_connecting(listener, int(self._clock() * 1000), self._config):
            self._store.remove_listener(listener)

    def publish_request(self, event: dict, api: ConnectionsApi) -> dict:
        """The ``publish`` Lambda function's contract: validate, publish, report."""
        try:
            if not isinstance(event, dict):
                raise errors.InvalidMessage("the event must be a JSON object")
            session_id = validate_session_id(event.get("sessionId"))
            language = event.get("targetLanguage")
            if language is not None:
                validate_language(language, self._config.supported_languages, "targetLanguage")
            type_ = event.get("type", "broadcast")
            if not isinstance(type_, str) or not _PUBLISHABLE_TYPE.match(type_) or type_ in RESERVED_TYPES:
                raise errors.InvalidParameter(
                    f"type must be a camelCase word that is not a server message type, got {type_!r}"
                )
            data = event.get("data", {})
            if not isinstance(data, dict):
                raise errors.InvalidParameter("data must be a JSON object")
            reserved = {"type", "timestamp", "sessionId", "targetLanguage", "sequenceNumber"} & set(data)
            if reserved:
                raise errors.InvalidParameter(f"data may not set {sorted(reserved)}")
            if len(messages.encode(data)) > MAX_PUBLISH_BYTES:
                raise errors.InvalidParameter("data is larger than a WebSocket message may be")
            return self.publish(session_id, type_, data, api, language).to_dict()
        except errors.BroadcastError as exc:
            return {"error": exc.to_body()}

    # -- speaker controls ------------------------------------------------------------

    def on_control(self, connection, message, api, now) -> None:
        self._require_speaker(connection)
        listener_type, changes = CONTROLS[message.action]
        self._apply(connection, message.action, listener_type, changes, {}, api, now)

    def on_set_volume(self, connection, message, api, now) -> None:
        self._require_speaker(connection)
        level = message.body.get("volumeLevel")
        if (
            isinstance(level, bool)
            or not isinstance(level, (int, float))
            or not math.isfinite(level)
            or not 0.0 <= level <= 1.0
        ):
            raise errors.InvalidParameter(
                f"volumeLevel must be a number from 0.0 to 1.0, got {level!r}"
            )
        from decimal import Decimal

        level = float(level)
        self._apply(
            connection, "setVolume", "volumeChanged",
            {"volume": Decimal(str(level))}, {"volumeLevel": level}, api, now,
        )

    def _apply(self, connection, action, listener_type, changes, extra, api, now) -> None:
        session = self._store.update_broadcast_state(
            connection.session_id, changes, int(now * 1000)
        )
        state = session.broadcast_state.to_wire()
        self.publish(session.session_id, listener_type, {"broadcastState": state, **extra}, api)
        api.send(
            connection.connection_id,
            messages.build("controlAck", now, action=action, broadcastState=state),
        )

    # -- status and language ---------------------------------------------------------

    def on_status(self, connection, message, api, now) -> None:
        session = self._store.get_session(connection.session_id)
        if session is None or not session.is_active:
            raise errors.SessionNotFound()
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

    def on_change_language(self, connection, message, api, now) -> None:
        if connection.is_speaker:
            raise errors.Forbidden("the speaker's language is the session's source language")
        language = validate_language(
            message.body.get("targetLanguage"), self._config.supported_languages, "targetLanguage"
        )
        before = self._store.change_language(connection.connection_id, language)
        if before is None:
            raise errors.SessionNotFound("this connection is not part of an active session")
        session = self._store.get_session(connection.session_id)
        api.send(
            connection.connection_id,
            messages.build(
                "languageChanged",
                now,
                sessionId=connection.session_id,
                targetLanguage=language,
                previousLanguage=before.target_language,
                sequenceNumber=(session.sequence_numbers.get(language, 0) if session else 0),
            ),
        )

    # -- audio in --------------------------------------------------------------------

    def on_audio(self, connection, message, api, now) -> None:
        if not connection.is_speaker:
            raise errors.Forbidden("only the speaker can send audio")
        claimed = message.body.get("sessionId")
        if claimed is not None and claimed != connection.session_id:
            raise errors.Forbidden("audio can only be sent to the speaker's own session")
        chunk = parse_chunk(message.body)
        session = self._store.get_session(connection.session_id)
        if session is None or not session.is_active:
            raise errors.SessionNotFound()
        state = session.broadcast_state
        if state.is_paused or state.is_muted:
            return  # a paused or muted broadcast is silent: nothing leaves the server
        self.audio_sink.accept(session, chunk, api)

    @staticmethod
    def _require_speaker(connection) -> None:
        if not connection.is_speaker:
            raise errors.Forbidden("only the speaker controls the broadcast")
