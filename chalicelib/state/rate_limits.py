"""Fixed-window rate limits on the RateLimits table.

One conditional ``UpdateItem`` per hit: the counter for the current window is
incremented only while it is below the limit, so concurrent hits can never admit
more than the limit (no read-then-write). Window items expire through TTL.
If the table itself fails, the limiter fails open: refusing every connection
because a counter is unavailable would be the bigger outage.
"""

from __future__ import annotations

import logging
import time
from typing import Callable

from chalicelib import errors
from chalicelib.state.dynamo import Dynamo

logger = logging.getLogger(__name__)


class RateLimiter:
    def __init__(self, client, table: str, clock: Callable[[], float] = time.time) -> None:
        self._db = Dynamo(client)
        self._table = table
        self._clock = clock

    def allow(self, key: str, limit: int, window_seconds: int) -> bool:
        """Count one hit for ``key``; False once ``limit`` hits happened this window."""
        if limit <= 0:
            return True
        window = int(self._clock() // window_seconds)
        try:
            counted = self._db.update_if(
                self._table,
                {"limitKey": f"{key}#{window}"},
                "ADD hits :one SET expiresAt = if_not_exists(expiresAt, :expires)",
                "attribute_not_exists(hits) OR hits < :limit",
                values={":one": 1, ":limit": limit, ":expires": (window + 2) * window_seconds},
            )
        except errors.ServiceUnavailable:
            logger.error("rate limit check failed open")
            return True
        return counted is not None
