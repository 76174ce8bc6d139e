"""DynamoDB item sizes and request units, by AWS's published rules. Pure.

Sizes (https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/CapacityUnitCalculations.html):
an item is the sum of its attribute names and values; a string is its UTF-8 bytes,
a number about one byte per two significant digits plus one, a boolean or null one
byte, a map or list 3 bytes plus its elements, each element one byte more.

Units (https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/read-write-operations.html):
a write costs one write request unit per started KB of the larger of the item before
and after (a transaction twice that); a strongly consistent read one read unit per
started 4 KB (eventually consistent: half); BatchGetItem rounds each item up on its
own, Query rounds the sum of what it returns. A global secondary index is written
only when the write changes its entry (its keys or a projected attribute), twice when
its key changes (delete and put: GSI.html#GSI.Writes).

Items are DynamoDB JSON (``{"S": "..."}``), as a low-level client sends and receives
them.
"""

from __future__ import annotations

import math
from decimal import Decimal
from typing import Iterable, Mapping, Optional, Sequence, Tuple

KB = 1024
READ_BLOCK = 4 * KB


def _number_size(text: str) -> int:
    digits = str(Decimal(text)).lstrip("-").replace(".", "").split("E")[0]
    digits = digits.strip("0") or "0"
    return (len(digits) + 1) // 2 + 1


def value_size(value: Mapping) -> int:
    """Size of one attribute value, without its name."""
    (kind, data), = value.items()
    if kind == "S":
        return len(data.encode("utf-8"))
    if kind == "N":
        return _number_size(data)
    if kind == "B":
        return len(data)
    if kind in ("BOOL", "NULL"):
        return 1
    if kind == "SS":
        return sum(len(s.encode("utf-8")) for s in data)
    if kind == "NS":
        return sum(_number_size(n) for n in data)
    if kind == "BS":
        return sum(len(b) for b in data)
    if kind == "M":
        return 3 + sum(len(k.encode("utf-8")) + value_size(v) + 1 for k, v in data.items())
    if kind == "L":
        return 3 + sum(value_size(v) + 1 for v in data)
    raise ValueError(f"unknown DynamoDB type {kind!r}")


def item_size(item: Optional[Mapping]) -> int:
    """Bytes of an item (0 for no item)."""
    if not item:
        return 0
    return sum(len(name.encode("utf-8")) + value_size(value) for name, value in item.items())


def write_units(size_before: int, size_after: int, transactional: bool = False) -> int:
    """WRU of one write: the larger image, per started KB (at least 1)."""
    units = max(1, math.ceil(max(size_before, size_after) / KB))
    return 2 * units if transactional else units


def read_units(sizes: Iterable[int], *, consistent: bool, each: bool = False) -> float:
    """RRU of a read returning items of ``sizes``: summed then rounded (Query), or
    each rounded (``each``: GetItem, BatchGetItem); a read that finds nothing still
    costs one block."""
    sizes = list(sizes)
    if each:
        blocks = sum(max(1, math.ceil(s / READ_BLOCK)) for s in sizes) or 1
    else:
        blocks = max(1, math.ceil(sum(sizes) / READ_BLOCK))
    return float(blocks) if consistent else blocks / 2


class IndexSpec:
    """A global secondary index as the table definition declares it."""

    def __init__(self, name: str, table_keys: Sequence[str], keys: Sequence[str],
                 projection: str = "ALL", include: Sequence[str] = ()) -> None:
        self.name = name
        self.table_keys = tuple(table_keys)
        self.keys = tuple(keys)
        self.projection = projection
        self.include = tuple(include)

    @classmethod
    def from_definition(cls, table_definition: Mapping, gsi: Mapping) -> "IndexSpec":
        projection = gsi["Projection"]
        return cls(
            gsi["IndexName"],
            [k["AttributeName"] for k in table_definition["KeySchema"]],
            [k["AttributeName"] for k in gsi["KeySchema"]],
            projection["ProjectionType"],
            projection.get("NonKeyAttributes", ()),
        )

    @property
    def partition_key(self) -> str:
        return self.keys[0]

    def entry(self, item: Optional[Mapping]) -> Optional[dict]:
        """The item's index entry, or None when the item is not in the (sparse) index."""
        if not item or any(key not in item for key in self.keys):
            return None
        if self.projection == "ALL":
            return dict(item)
        wanted = set(self.table_keys) | set(self.keys)
        if self.projection == "INCLUDE":
            wanted |= set(self.include)
        return {name: value for name, value in item.items() if name in wanted}

    def write_units(self, before: Optional[Mapping], after: Optional[Mapping]) -> int:
        """WRU the index takes for a table write from ``before`` to ``after``."""
        old, new = self.entry(before), self.entry(after)
        if old == new:
            return 0  # not in the index, or nothing it holds changed
        if old is not None and new is not None and self.key_of(old) == self.key_of(new):
            return write_units(item_size(old), item_size(new))
        # Key changed (or entry appears/disappears): a delete and a put.
        return sum(write_units(item_size(e), 0) for e in (old, new) if e is not None)

    def key_of(self, entry: Mapping) -> Tuple:
        return tuple(tuple(entry[k].items()) for k in self.keys)
