"""Sliding-window rate limits on the RateLimits table.

Each key has one item holding the hits of the current fixed window (``hits``, window
``window``) and of the one before (``previousHits``). A hit is counted with one
atomic ``UpdateItem`` that returns both, and allowed while the two-window estimate

    hits + previousHits * (1 - elapsed fraction of the current window)

is within the limit (the estimate Cloudflare and nginx use). A fixed window alone
admits up to twice the limit across a window boundary; this admits at most the
limit plus rounding. Every hit is counted, refused ones included, so an address
over its limit stays there while it keeps trying. The window rolls over with a
second conditional update, once per key and window, whichever request gets there
first (the others see the condition fail and count again).

Keys are keyed hashes (:mod:`chalicelib.privacy`): the table never holds a client
address or a user id. Items expire through TTL after two windows. If the table
fails, the limiter fails open: refusing every connection because a counter is
unavailable would be the bigger outage.
"""

from __future__ import annotations

import logging
import math
import time
from typing import Callable, Optional

import attrs

from chalicelib import errors
from chalicelib.state import dynamo
from chalicelib.state.dynamo import Dynamo

logger = logging.getLogger(__name__)

_ROLLS = 3  # a roll-over lost to a concurrent one is retried; more is a bug


@attrs.frozen
class Counted:
    """Whether a hit is within the limit, and the transaction item that counts it
    (None when there is nothing to count: the limit is off, or the hit is over it)."""

    allowed: bool
    item: Optional[dict]


class RateLimiter:
    def __init__(self, client, table: str, clock: Callable[[], float] = time.time) -> None:
        self._db = Dynamo(client)
        self._table = table
        self._clock = clock

    def allow(self, key: str, limit: int, window_seconds: int) -> bool:
        """Count one hit for ``key`` (already a keyed hash); False when the sliding
        estimate of hits in the last ``window_seconds`` exceeds ``limit``."""
        if limit <= 0:
            return True
        now = self._clock()
        window = int(now // window_seconds)
        try:
            hits, previous = self._count(key, window, window_seconds)
        except errors.ServiceUnavailable:
            logger.error("rate limit check failed open")
            return True
        elapsed = (now - window * window_seconds) / window_seconds
        return hits + previous * (1.0 - elapsed) <= limit

    def key(self, key: str) -> dict:
        return {"limitKey": key}

    def counted_within(self, item: Optional[dict], key: str, limit: int,
                       window_seconds: int) -> "Counted":
        """For a hit counted inside the caller's own transaction (a join, which must
        stay within its call budget): given ``key``'s item as just read (or None),
        whether the hit is allowed and the transaction item that counts it. The
        item's condition holds only while the counter is as read and the estimate
        stays within ``limit``; if the transaction fails on it (a concurrent hit
        moved the counter), count with :meth:`allow` instead. A hit over the limit
        already is not counted here: count it with :meth:`allow`, which refuses it."""
        if limit <= 0:
            return Counted(True, None)
        now = self._clock()
        window = int(now // window_seconds)
        elapsed = (now - window * window_seconds) / window_seconds
        seen = int(item["window"]) if item and "window" in item else None
        if seen is not None and seen >= window:
            hits, previous = int(item.get("hits", 0)), int(item.get("previousHits", 0))
            # Allowed while hits + 1 + previous * (1 - elapsed) <= limit.
            most = math.floor(limit - 1 - previous * (1.0 - elapsed))
            if hits > most:
                return Counted(False, None)
            return Counted(True, dynamo.update(
                self._table, self.key(key), "ADD hits :one",
                "#w = :seen AND hits <= :most", names={"#w": "window"},
                values={":one": 1, ":seen": seen, ":most": most},
            ))
        carried = int(item.get("hits", 0)) if seen == window - 1 else 0
        if 1 + carried * (1.0 - elapsed) > limit:
            return Counted(False, None)
        values = {":one": 1, ":w": window, ":carried": carried,
                  ":expires": (window + 2) * window_seconds}
        if seen is None:
            condition = "attribute_not_exists(#w)"
        else:
            condition, values[":seen"] = "#w = :seen", seen
        return Counted(True, dynamo.update(
            self._table, self.key(key),
            "SET previousHits = :carried, hits = :one, #w = :w, expiresAt = :expires",
            condition, names={"#w": "window"}, values=values,
        ))

    def _count(self, key: str, window: int, window_seconds: int):
        """Add one hit to ``key``'s current window; returns (hits, previousHits)."""
        expires = (window + 2) * window_seconds
        names = {"#w": "window"}
        for _ in range(_ROLLS):
            # One call for a new key or the current window. ">=": a Lambda whose
            # clock runs a little behind counts into the window a peer started.
            item = self._db.update_if(
                self._table, {"limitKey": key},
                "ADD hits :one SET #w = if_not_exists(#w, :w), "
                "expiresAt = if_not_exists(expiresAt, :expires)",
                "attribute_not_exists(#w) OR #w >= :w",
                names=names, values={":one": 1, ":w": window, ":expires": expires},
                returns="ALL_NEW",
            )
            if item is not None:
                return int(item["hits"]), int(item.get("previousHits", 0))
            # A new window: the last one's hits become previousHits if it was the
            # window just before, else nothing carries over.
            for condition, carried, extra in (
                ("#w = :before", "hits", {}),
                ("#w < :before", ":zero", {":zero": 0}),
            ):
                item = self._db.update_if(
                    self._table, {"limitKey": key},
                    f"SET previousHits = {carried}, hits = :one, #w = :w, expiresAt = :expires",
                    condition,
                    names=names,
                    values={":one": 1, ":w": window, ":expires": expires, ":before": window - 1,
                            **extra},
                    returns="ALL_NEW",
                )
                if item is not None:
                    return 1, int(item["previousHits"])
        logger.error("rate limit window of a key kept moving; failing open")
        return 0, 0
