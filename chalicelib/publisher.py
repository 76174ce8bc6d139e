"""Fan-out of one message to the listeners of a session, with sequence numbers,
and the ``publish`` Lambda function's contract for other services.

Every message published to listeners carries ``sequenceNumber``, increasing per
session and target language (each listener hears one language, so it sees one
sequence; clients reorder within a small window and drop duplicates, see
docs/protocol.md).
"""

from __future__ import annotations

import logging
import re
import time
from typing import Callable, Optional

import attrs

from chalicelib import errors
from chalicelib.connections_api import ConnectionsApi
from chalicelib.departures import Departures
from chalicelib.fanout import fan_out
from chalicelib.state.store import Store
from chalicelib.wire import messages
from chalicelib.wire.echo import shown
from chalicelib.wire.intents import validate_language, validate_session_id

logger = logging.getLogger(__name__)

# Types other services may publish; server-owned types cannot be forged through it.
_PUBLISHABLE_TYPE = re.compile(r"[a-z][a-zA-Z0-9]{0,39}")
RESERVED_TYPES = frozenset(
    {
        "sessionCreated", "sessionJoined", "sessionEnded", "sessionStatus",
        "connectionRefreshComplete", "connectionRefreshRequired", "connectionWarning",
        "connectionClosed", "heartbeatAck", "error", "controlAck", "languageChanged",
        "speakerDisconnected", "speakerReconnected", "broadcastPaused",
        "broadcastResumed", "broadcastMuted", "broadcastUnmuted", "volumeChanged",
    }
)
ENVELOPE_FIELDS = frozenset({"type", "timestamp", "sessionId", "targetLanguage", "sequenceNumber"})
MAX_PUBLISH_BYTES = 126 * 1024  # leaves room for the envelope under 128 KB


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


class Publisher:
    def __init__(
        self,
        *,
        config,
        store: Store,
        departures: Departures,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._config = config
        self._store = store
        self._departures = departures
        self._clock = clock

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
            self._store.active_session(session_id)
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
            on_gone=lambda listener: self._departures.forget(listener, api),
        )
        return PublishResult(result.delivered, result.gone, result.failed, numbers)

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
            if (
                not isinstance(type_, str)
                or not _PUBLISHABLE_TYPE.fullmatch(type_)
                or type_ in RESERVED_TYPES
            ):
                raise errors.InvalidParameter(
                    f"type must be a camelCase word that is not a server message type, got {shown(type_)}"
                )
            data = event.get("data", {})
            if not isinstance(data, dict):
                raise errors.InvalidParameter("data must be a JSON object")
            reserved = ENVELOPE_FIELDS & set(data)
            if reserved:
                raise errors.InvalidParameter(f"data may not set {sorted(reserved)}")
            if len(messages.encode(data)) > MAX_PUBLISH_BYTES:
                raise errors.InvalidParameter("data is larger than a WebSocket message may be")
            return self.publish(session_id, type_, data, api, language).to_dict()
        except errors.BroadcastError as exc:
            return {"error": exc.to_body()}
