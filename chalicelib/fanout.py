"""Concurrent delivery of one message to many connections, with a bounded pool."""

from __future__ import annotations

import logging
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, Iterable, Optional, Union

import attrs

from chalicelib.connections_api import ConnectionsApi, DeliveryFailed
from chalicelib.observability.logs import ref
from chalicelib.observability.telemetry import carry_context
from chalicelib.state.records import Connection

logger = logging.getLogger(__name__)


@attrs.frozen
class FanoutResult:
    delivered: int = 0
    gone: int = 0
    failed: int = 0
    # The connections a send failed to (not gone: throttled, 5xx): worth a retry.
    failed_ids: frozenset = frozenset()

    def to_dict(self) -> dict:
        return {"delivered": self.delivered, "gone": self.gone, "failed": self.failed}


def fan_out(
    api: ConnectionsApi,
    connections: Iterable[Connection],
    message: Union[dict, bytes, Callable[[Connection], Union[dict, bytes]]],
    *,
    concurrency: int,
    on_gone: Optional[Callable[[Connection], None]] = None,
    after_send: Optional[Callable[[Connection], None]] = None,
    metrics=None,
) -> FanoutResult:
    """Send ``message`` (or ``message(connection)``) to every connection; ``on_gone``
    runs for each connection found gone (410), ``after_send`` after each success.
    With ``metrics``, the outcome is counted (FanoutDelivered, FanoutGone,
    FanoutFailed, FanoutDuration)."""
    started = time.monotonic()

    def deliver(connection: Connection) -> str:
        try:
            payload = message(connection) if callable(message) else message
            sent = api.send(connection.connection_id, payload)
        except DeliveryFailed as exc:
            logger.warning("send failed: %s", exc, extra={"target": ref(connection.connection_id)})
            return "failed"
        try:
            if not sent:
                if on_gone is not None:
                    on_gone(connection)
                return "gone"
            if after_send is not None:
                after_send(connection)
            return "delivered"
        except Exception:  # cleanup of one must not abort the others
            logger.exception("post-send step failed", extra={"target": ref(connection.connection_id)})
            return "delivered" if sent else "gone"

    counts = {"delivered": 0, "gone": 0, "failed": 0}
    failed_ids = set()
    with ThreadPoolExecutor(max_workers=max(1, concurrency)) as pool:
        for connection, outcome in pool.map(carry_context(lambda c: (c, deliver(c))), connections):
            counts[outcome] += 1
            if outcome == "failed":
                failed_ids.add(connection.connection_id)
    result = FanoutResult(**counts, failed_ids=frozenset(failed_ids))
    if metrics is not None and (result.delivered or result.gone or result.failed):
        metrics.add("FanoutDelivered", result.delivered)
        metrics.add("FanoutGone", result.gone)
        metrics.add("FanoutFailed", result.failed)
        metrics.timing("FanoutDuration", started)
    return result
