"""``GET /health``, for uptime monitors: are the tables reachable?

One eventually consistent GetItem of a key that never exists per table (half a
read unit each; a missing table, a wrong name, a denied permission or an
unreachable endpoint all fail it), so the check exercises the same data path
the service uses. 200 with ``{"status": "ok", ...}`` when every table answered,
503 with ``"unavailable"`` and which table did not otherwise. The body names
tables by role only and never says why (the route is public); the log says.
"""

from __future__ import annotations

import logging
from typing import Dict, Tuple

from chalicelib.state.dynamo import Dynamo

logger = logging.getLogger(__name__)

# A key no item has: ids never start with '~' (chalicelib.wire.ids, API Gateway's
# connection ids, the rate limiter's base64url hashes).
PROBE_KEY = "~health"


class Health:
    def __init__(self, client, config, metrics=None) -> None:
        self._metrics = metrics
        self._db = Dynamo(client)
        self._tables = {
            "sessions": (config.sessions_table, "sessionId"),
            "connections": (config.connections_table, "connectionId"),
            "rateLimits": (config.rate_limits_table, "limitKey"),
        }

    def check(self) -> Tuple[int, dict]:
        """(HTTP status, body)."""
        checks: Dict[str, str] = {}
        for name, (table, key) in self._tables.items():
            try:
                self._db.get(table, {key: PROBE_KEY}, consistent=False)
                checks[name] = "ok"
            except Exception as exc:  # any failure is "unavailable"; the log says which
                logger.error("health check of the %s table failed: %s", name, type(exc).__name__)
                checks[name] = "unavailable"
        healthy = all(state == "ok" for state in checks.values())
        if not healthy and self._metrics is not None:
            self._metrics.fault()  # the check works; what it found is a fault
        return (200 if healthy else 503), {"status": "ok" if healthy else "unavailable", "checks": checks}
