"""Keeping connections alive: heartbeats and the one-time refresh and warning
notices, by the rules of :mod:`chalicelib.liveness`.

A notice is claimed with a conditional write before it is sent, so a heartbeat and
the sweep racing send it exactly once; a notice whose send fails (other than 410)
is released for a later try.
"""

from __future__ import annotations

import logging
from typing import Iterable

from chalicelib import liveness
from chalicelib.connections_api import ConnectionsApi, DeliveryFailed
from chalicelib.departures import Departures
from chalicelib.observability.logs import ref
from chalicelib.state.records import Connection
from chalicelib.state.store import Store
from chalicelib.wire import messages

logger = logging.getLogger(__name__)


class KeepAlive:
    def __init__(self, *, config, store: Store, departures: Departures) -> None:
        self._config = config
        self._store = store
        self._departures = departures

    def on_heartbeat(self, connection: Connection, message, api: ConnectionsApi, now: float) -> None:
        """The ``heartbeat`` action: acknowledge, then send any notice now due."""
        try:
            api.send(connection.connection_id, messages.heartbeat_ack(now))
        except DeliveryFailed as exc:
            logger.warning("heartbeat ack failed: %s", exc)
        verdict = liveness.judge(connection, int(now * 1000), self._config)
        self.send_notices(connection, verdict.notices, api, now)

    def send_notices(
        self, connection: Connection, notices: Iterable[str], api: ConnectionsApi, now: float
    ) -> None:
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
                logger.warning("notice failed: %s", exc, extra={"target": ref(connection.connection_id)})
                self._store.release_notice(connection.connection_id, notice)
                return
            if not sent:
                self._departures.forget(connection, api)
                return
