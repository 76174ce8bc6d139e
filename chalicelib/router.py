"""``$default``: every client message, parsed, attributed and dispatched through
one action table. Every outcome, good or bad, is a reply; no stack trace reaches a
client.

Where is an action handled? :meth:`Router.actions` lists them all.
"""

from __future__ import annotations

import logging
import time
from typing import Callable, Dict, Optional

from chalicelib import errors
from chalicelib.admission import Admission
from chalicelib.broadcast import CONTROLS, BroadcastActions
from chalicelib.connections_api import ConnectionsApi, DeliveryFailed
from chalicelib.departures import Departures
from chalicelib.keepalive import KeepAlive
from chalicelib.observability.telemetry import Metrics, annotate
from chalicelib.recent import Recent
from chalicelib.state.records import Connection
from chalicelib.state.store import Store
from chalicelib.wire import messages
from chalicelib.wire.echo import shown
from chalicelib.wire.intents import ClientMessage, parse_message

logger = logging.getLogger(__name__)

Handler = Callable[[Connection, ClientMessage, ConnectionsApi, float], None]

AUDIO_ACTION = "sendAudio"
AUDIO_TOUCH_EVERY_SECONDS = 10


class Router:
    def __init__(
        self,
        *,
        store: Store,
        admission: Admission,
        departures: Departures,
        keepalive: KeepAlive,
        broadcast: BroadcastActions,
        connections_api: Callable[[str], ConnectionsApi],
        metrics: Metrics,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._metrics = metrics
        self._store = store
        self._api = connections_api
        self._clock = clock
        self._touched: Recent[Connection] = Recent(AUDIO_TOUCH_EVERY_SECONDS)
        self.actions: Dict[str, Handler] = {
            "heartbeat": keepalive.on_heartbeat,
            "joinSession": admission.on_join_again,
            "endSession": departures.on_end_session,
            **{action: broadcast.on_control for action in CONTROLS},
            "setVolume": broadcast.on_set_volume,
            "getSessionStatus": broadcast.on_status,
            "changeLanguage": broadcast.on_change_language,
            AUDIO_ACTION: broadcast.on_audio,
        }

    def handle_message(self, connection_id: str, raw: Optional[str], endpoint: str) -> None:
        """Handle one client message; every outcome is a reply to the sender."""
        api = self._api(endpoint)
        now = self._clock()
        action = None
        self._metrics.add("MessagesReceived")
        try:
            message = parse_message(raw)
            action = message.action
            connection = self._sender(connection_id, action, now)
            annotate(session_id=connection.session_id)
            handler = self.actions.get(message.action)
            if handler is None:
                raise errors.UnknownAction(f"unknown action {shown(message.action)}")
            handler(connection, message, api, now)
        except DeliveryFailed as exc:  # the sender cannot be reached: nobody to tell
            logger.warning("reply failed: %s", exc)
        except errors.BroadcastError as exc:
            self._refused(exc, action)
            self._reply(api, connection_id, messages.error(now, exc.code, exc.message, action))
        except Exception as exc:  # a bug: log it, tell the client nothing more than that
            internal = errors.BroadcastError()
            self._refused(internal, action, exc)
            self._reply(
                api, connection_id, messages.error(now, internal.code, internal.message, action)
            )

    def _refused(self, refusal: errors.BroadcastError, action, exc: Exception = None) -> None:
        self._metrics.add("MessageRefusals", 1, refusal.code)
        if refusal.fault:
            self._metrics.fault()
            logger.error("%s failed: %s", shown(action), refusal.code, exc_info=exc or refusal)
        else:  # the action named only if it is one of ours: a client's word is no log text
            logger.info("message refused: %s", refusal.code,
                        extra={"action": action if action in self.actions else None})

    def _sender(self, connection_id: str, action: str, now: float) -> Connection:
        """The sender's row, its activity recorded (``lastSeenAt``). Audio chunks come
        several a second: for them a row touched in this container in the last
        AUDIO_TOUCH_EVERY_SECONDS serves again, so activity is recorded that often
        (far inside HEARTBEAT_TIMEOUT_SECONDS), not once per chunk."""
        if action == AUDIO_ACTION:
            recent = self._touched.get(connection_id, now)
            if recent is not None:
                return recent
        connection = self._store.touch(connection_id, int(now * 1000))
        if connection is None:
            self._touched.drop(connection_id)
            raise errors.SessionNotFound("this connection is not part of an active session")
        return self._touched.keep(connection_id, connection, now)

    @staticmethod
    def _reply(api: ConnectionsApi, connection_id: str, message: dict) -> None:
        try:
            api.send(connection_id, message)
        except DeliveryFailed as exc:
            logger.warning("reply failed: %s", exc)
