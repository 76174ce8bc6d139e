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
import threading
import time
from collections import OrderedDict
from typing import Callable, List, Optional, Tuple, Union

import attrs

from chalicelib import errors
from chalicelib.connections_api import ConnectionsApi
from chalicelib.departures import Departures
from chalicelib.fanout import fan_out
from chalicelib.observability.telemetry import annotate
from chalicelib.state.records import Connection, Session
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


class ListenerListings:
    """The listeners of recently published-to sessions, kept per Lambda container.

    A listing read from the members index stays good while the session's roster
    version (moved by every join, leave, takeover and language change, and returned
    by the very update that takes the sequence numbers) is the one it was read at,
    provided it was read after the index had settled on that version: the index is
    eventually consistent, so a listing read within SETTLE_MS of the last change is
    used once but not kept. A publish then costs one DynamoDB call instead of two.

    Listings are of one language (a translation's) or of all (a control, relayed
    audio); a listing of all serves a publish to one language as well.
    """

    SETTLE_MS = 1000
    MAX_LISTINGS = 2048

    def __init__(self) -> None:
        self._listings: "OrderedDict[tuple, tuple]" = OrderedDict()
        self._lock = threading.Lock()

    def get(self, session: Session, language: Optional[str]) -> Optional[List[Connection]]:
        keys = [(session.session_id, language)] + ([(session.session_id, None)] if language else [])
        with self._lock:
            for key in keys:
                entry = self._listings.get(key)
                if entry is not None and entry[0] == session.roster_version:
                    self._listings.move_to_end(key)
                    return [c for c in entry[1] if language is None or c.target_language == language]
        return None

    def keep(self, session: Session, language: Optional[str], listeners: List[Connection],
             read_at_ms: int) -> None:
        if read_at_ms < session.roster_changed_at + self.SETTLE_MS:
            return
        key = (session.session_id, language)
        with self._lock:
            self._listings[key] = (session.roster_version, listeners)
            self._listings.move_to_end(key)
            while len(self._listings) > self.MAX_LISTINGS:
                self._listings.popitem(last=False)

    def drop(self, session_id: str) -> None:
        with self._lock:
            for key in [k for k in self._listings if k[0] == session_id]:
                del self._listings[key]


class Publisher:
    def __init__(
        self,
        *,
        config,
        store: Store,
        departures: Departures,
        metrics=None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._metrics = metrics
        self._config = config
        self._store = store
        self._departures = departures
        self._clock = clock
        self._listings = ListenerListings()

    def publish(
        self,
        session_id: str,
        type_: str,
        payload: Union[dict, Callable[[Session], dict]],
        api: ConnectionsApi,
        target_language: Optional[str] = None,
        *,
        state_changes: Optional[dict] = None,
        speaker_connection_id: Optional[str] = None,
    ) -> Tuple[PublishResult, Session]:
        """Deliver one message to every listener of the session, or of one language.

        One UpdateItem takes the sequence numbers (and, for a speaker control, sets
        the broadcast state, only for the current speaker); the listeners come from
        the container's listing when still good, else from the members index; sends
        run concurrently in a bounded pool; listeners found gone are removed and
        uncounted. ``payload`` may be a function of the updated session (a control
        reports the state it set). Returns the result and the session as updated. Raises
        SessionNotFound (or ConnectionReplaced) if the session is not active.
        """
        now = self._clock()
        languages = (target_language,) if target_language else self._config.supported_languages
        session, numbers = self._store.advance(
            session_id, languages, int(now * 1000),
            state_changes=state_changes, speaker_connection_id=speaker_connection_id,
        )
        if callable(payload):
            payload = payload(session)
        listeners = self._listings.get(session, target_language)
        if listeners is None:
            read_at = int(self._clock() * 1000)
            listeners = list(self._store.listeners(session_id, target_language))
            self._listings.keep(session, target_language, listeners, read_at)
        present = {c.target_language for c in listeners}
        reported = {lang: n for lang, n in numbers.items() if lang in present or lang == target_language}
        if not listeners:
            return PublishResult(sequence_numbers=reported), session
        encoded = {
            language: messages.encode(
                messages.build(
                    type_, now, sessionId=session_id, targetLanguage=language,
                    sequenceNumber=numbers[language], **payload,
                )
            )
            for language in present
        }
        result = fan_out(
            api,
            listeners,
            lambda listener: encoded[listener.target_language],
            concurrency=self._config.publish_concurrency,
            on_gone=lambda listener: self._gone(listener, api),
            metrics=self._metrics,
        )
        return PublishResult(result.delivered, result.gone, result.failed, reported), session

    def _gone(self, listener: Connection, api: ConnectionsApi) -> None:
        self._listings.drop(listener.session_id)
        self._departures.forget(listener, api)

    def publish_request(self, event: dict, api: ConnectionsApi) -> dict:
        """The ``publish`` Lambda function's contract: validate, publish, report."""
        try:
            if not isinstance(event, dict):
                raise errors.InvalidMessage("the event must be a JSON object")
            session_id = validate_session_id(event.get("sessionId"))
            annotate(session_id=session_id)
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
            return self.publish(session_id, type_, data, api, language)[0].to_dict()
        except errors.BroadcastError as exc:
            if exc.fault and self._metrics is not None:
                self._metrics.fault()
                logger.error("publish failed: %s", exc.code)
            return {"error": exc.to_body()}
