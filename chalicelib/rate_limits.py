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

logger = logging.getLogger(__name__)


class RateLimiter:
    def __init__(self, client, table: str, clock: Callable[[], float] = time.time) -> None:
        self._client = client
        self._table = table
        self._clock = clock

    def allow(self, key: str, limit: int, window_seconds: int) -> bool:
        """Count one hit for ``key``; False once ``limit`` hits happened this window."""
        if limit <= 0:
            return True
        from botocore.exceptions import BotoCoreError, ClientError

        now = self._clock()
        window = int(now // window_seconds)
        try:
            self._client.update_item(
                TableName=self._table,
                Key={"limitKey": {"S": f"{key}#{window}"}},
                UpdateExpression="ADD hits :one SET expiresAt = if_not_exists(expiresAt, :expires)",
                ConditionExpression="attribute_not_exists(hits) OR hits < :limit",
                ExpressionAttributeValues={
                    ":one": {"N": "1"},
                    ":limit": {"N": str(limit)},
                    ":expires": {"N": str((window + 2) * window_seconds)},
                },
            )
            return True
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
                return False
            logger.error("rate limit check failed open: %s", exc.response.get("Error", {}).get("Code"))
            return True
        except BotoCoreError as exc:
            logger.error("rate limit check failed open: %s", type(exc).__name__)
            return True
