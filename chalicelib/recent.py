"""What a warm Lambda container read a moment ago, kept for a moment.

A speaker sends several audio chunks a second. Reading its connection row and its
session for each one would be most of the service's DynamoDB traffic at scale
(docs/scaling.md, "Hot spots"), for facts that change rarely: a container keeps
them for ``max_age`` seconds, bounded in number, least recently used out first.
Pure (the clock comes in).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Callable, Generic, Hashable, Optional, TypeVar

T = TypeVar("T")


class Recent(Generic[T]):
    def __init__(self, max_age: float, size: int = 1024) -> None:
        self._max_age = max_age
        self._size = size
        self._entries: "OrderedDict[Hashable, tuple]" = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: Hashable, now: float) -> Optional[T]:
        """The value kept for ``key`` if it is younger than ``max_age``."""
        with self._lock:
            entry = self._entries.get(key)
            if entry is None or now - entry[0] >= self._max_age:
                return None
            self._entries.move_to_end(key)
            return entry[1]

    def keep(self, key: Hashable, value: T, now: float) -> T:
        with self._lock:
            self._entries[key] = (now, value)
            self._entries.move_to_end(key)
            while len(self._entries) > self._size:
                self._entries.popitem(last=False)
        return value

    def get_or(self, key: Hashable, now: float, read: Callable[[], T]) -> T:
        value = self.get(key, now)
        return value if value is not None else self.keep(key, read(), now)

    def drop(self, key: Hashable) -> None:
        with self._lock:
            self._entries.pop(key, None)
