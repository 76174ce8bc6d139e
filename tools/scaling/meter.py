"""What the real handlers call, and what each call costs.

:class:`Meter` is the tests' call counter (tests/support/calls.py) with three
additions, so the capacity model's numbers are the ones the call-budget tests hold:

- each call is attributed to the Lambda function being run and to whether it ran
  on the handler's own thread or a pool thread (a fan-out), which the model needs
  for durations;
- each DynamoDB call is priced in request units from the items themselves: write
  targets are read (by an uncounted client) before and after the call, so a write
  is priced by the larger image and every index, real or hypothetical, is charged
  only when its entry changes (:mod:`tools.scaling.units`); reads are priced from
  what they return. Units are also kept per *key class* (a session's item, a
  sweep shard, the speaker's row...) for the hot-partition arithmetic;
- the CPU the emulator spends is kept apart (:class:`EmulatorCpu`), so what is
  left is our code's (and botocore's client side).
"""

from __future__ import annotations

import re
import threading
import time
from collections import Counter, defaultdict
from contextlib import contextmanager
from typing import Callable, Dict, List, Mapping, Optional, Sequence, Tuple

from tests.support.calls import CallCounter
from tools.scaling.units import IndexSpec, item_size, read_units, write_units

# (table, index or "", key attribute, key value) -> a key class ("session", ...)
Classifier = Callable[[str, str, str, object], str]
# (table, key in DynamoDB JSON) -> the item as stored now, or None
Peek = Callable[[str, dict], Optional[dict]]

WRITES = {"PutItem", "UpdateItem", "DeleteItem", "TransactWriteItems", "BatchWriteItem"}
_FIRST_EQUALITY = re.compile(r"^\s*(#?\w+)\s*=\s*(:\w+)")


class EmulatorCpu:
    """CPU time spent inside the emulator (and the meter's own reads), summed over
    threads, to be subtracted from a handler's process CPU time."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._depth = threading.local()
        self.seconds = 0.0

    @contextmanager
    def excluded(self):
        """Count the CPU this thread spends in the block (once, however nested)."""
        depth = getattr(self._depth, "value", 0)
        self._depth.value = depth + 1
        start = time.thread_time()
        try:
            yield
        finally:
            self._depth.value = depth
            if depth == 0:
                spent = time.thread_time() - start
                with self._lock:
                    self.seconds += spent

    def install_moto(self) -> Callable[[], None]:
        """Count the in-process moto's request handling as emulator time; returns
        the function that undoes it."""
        from moto.core.botocore_stubber import BotocoreStubber

        original = BotocoreStubber.process_request
        meter = self

        def process_request(stub, request):
            with meter.excluded():
                return original(stub, request)

        BotocoreStubber.process_request = process_request

        def uninstall() -> None:
            BotocoreStubber.process_request = original

        return uninstall


class Meter(CallCounter):
    """The call counter, per function and thread, with request units per call."""

    def __init__(self, *, tables: Mapping[str, dict] = None, extra_indexes: Mapping[str, Sequence[IndexSpec]] = None,
                 peek: Optional[Peek] = None, classify: Optional[Classifier] = None,
                 emulator: Optional[EmulatorCpu] = None) -> None:
        super().__init__()
        self.function = "-"
        self.main_thread = threading.get_ident()
        self.placement: Counter = Counter()  # (function, "service.Op", on a pool thread)
        self.units: Counter = Counter()  # (table, index, "rru"|"wru", key class)
        self.sizes: Dict[Tuple[str, str, str], int] = {}  # largest item/entry seen per class
        self.posts: List[int] = []  # bytes of each @connections post
        self.records: List[int] = []  # bytes of each Kinesis record
        self._keys = {name: [k["AttributeName"] for k in d["KeySchema"]]
                      for name, d in (tables or {}).items()}
        self._indexes: Dict[str, List[IndexSpec]] = defaultdict(list)
        for name, definition in (tables or {}).items():
            for gsi in definition.get("GlobalSecondaryIndexes", []):
                self._indexes[name].append(IndexSpec.from_definition(definition, gsi))
        for name, specs in (extra_indexes or {}).items():
            self._indexes[name].extend(specs)
        self._peek = peek
        self._classify = classify or (lambda table, index, attr, value: attr)
        self.emulator = emulator or EmulatorCpu()
        self._unit_lock = threading.Lock()

    # -- counting ----------------------------------------------------------------------

    def count(self, service: str, operation: str) -> None:
        super().count(service, operation)
        pooled = threading.get_ident() != self.main_thread
        with self._lock:
            self.placement[(self.function, f"{service}.{operation}", pooled)] += 1

    def reset(self) -> None:
        super().reset()
        with self._lock:
            self.placement.clear()
            self.units.clear()
            self.posts.clear()
            self.records.clear()

    def attach(self, client) -> None:
        already = id(client) in self._hooked
        super().attach(client)
        service = client.meta.service_model.service_name
        if already:
            return
        if service == "kinesis":
            client.meta.events.register("before-parameter-build.kinesis.PutRecord", self._record)
        if service != "dynamodb" or self._peek is None:
            return
        client.meta.events.register("before-parameter-build.dynamodb", self._before)
        client.meta.events.register("after-call.dynamodb", self._after)

    def post(self, data: bytes) -> None:
        with self._lock:
            self.posts.append(len(data))

    def _record(self, params, **_):
        with self._lock:
            self.records.append(len(params["Data"]) + len(params["PartitionKey"].encode()))

    # -- request units -----------------------------------------------------------------

    def _key(self, table: str, item: Mapping) -> dict:
        return {k: item[k] for k in self._keys[table]}

    def _targets(self, operation: str, params: Mapping) -> List[Tuple[str, dict, bool]]:
        """(table, key, transactional) of every item a write touches."""
        if operation in ("PutItem",):
            return [(params["TableName"], self._key(params["TableName"], params["Item"]), False)]
        if operation in ("UpdateItem", "DeleteItem"):
            return [(params["TableName"], dict(params["Key"]), False)]
        if operation == "TransactWriteItems":
            targets = []
            for entry in params["TransactItems"]:
                (kind, spec), = entry.items()
                key = spec["Item"] if kind == "Put" else spec["Key"]
                targets.append((spec["TableName"], self._key(spec["TableName"], key), True))
            return targets
        targets = []
        for table, requests in params["RequestItems"].items():  # BatchWriteItem
            for request in requests:
                (kind, spec), = request.items()
                key = spec["Item"] if kind == "PutRequest" else spec["Key"]
                targets.append((table, self._key(table, key), False))
        return targets

    def _before(self, params, model, context, **_):
        context["capacity_params"] = params
        if model.name in WRITES:
            with self.emulator.excluded():
                context["capacity_before"] = [
                    (table, key, transactional, self._peek(table, key))
                    for table, key, transactional in self._targets(model.name, params)
                ]

    def _after(self, parsed, model, context, **_):
        params = context.get("capacity_params")
        if params is None:
            return
        with self.emulator.excluded():
            if model.name in WRITES:
                for table, key, transactional, before in context.get("capacity_before", []):
                    self._charge_write(table, key, transactional, before, self._peek(table, key))
            elif model.name == "GetItem":
                self._charge_read(params["TableName"], "", params["Key"],
                                  [parsed.get("Item")], params.get("ConsistentRead", False), each=True)
            elif model.name == "BatchGetItem":
                for table, request in params["RequestItems"].items():
                    found = {self._frozen(self._key(table, i)): i for i in parsed.get("Responses", {}).get(table, [])}
                    for key in request["Keys"]:
                        self._charge_read(table, "", key, [found.get(self._frozen(key))],
                                          request.get("ConsistentRead", False), each=True)
            elif model.name == "Query":
                self._charge_query(params, parsed.get("Items", []))

    @staticmethod
    def _frozen(key: Mapping) -> Tuple:
        return tuple(sorted((k, tuple(v.items())) for k, v in key.items()))

    def _class(self, table: str, index: str, attribute: str, value) -> str:
        return self._classify(table, index, attribute, value)

    def _add(self, table: str, index: str, kind: str, key_class: str, units: float, size: int) -> None:
        with self._unit_lock:
            self.units[(table, index, kind, key_class)] += units
            slot = (table, index, key_class)
            self.sizes[slot] = max(self.sizes.get(slot, 0), size)

    def _charge_write(self, table, key, transactional, before, after) -> None:
        attribute = self._keys[table][0]
        key_class = self._class(table, "", attribute, _plain(key[attribute]))
        self._add(table, "", "wru", key_class,
                  write_units(item_size(before), item_size(after), transactional),
                  max(item_size(before), item_size(after)))
        for index in self._indexes.get(table, []):
            units = index.write_units(before, after)
            if not units:
                continue
            entry = index.entry(after) or index.entry(before)
            value = _plain(entry[index.partition_key])
            self._add(table, index.name, "wru", self._class(table, index.name, index.partition_key, value),
                      units, item_size(entry))

    def _charge_read(self, table, index, key, items, consistent, each) -> None:
        attribute = next(iter(key))
        sizes = [item_size(i) for i in items if i]
        self._add(table, index, "rru", self._class(table, index, attribute, _plain(key[attribute])),
                  read_units(sizes or [0], consistent=consistent, each=each), max(sizes or [0]))

    def _charge_query(self, params, items) -> None:
        table, index = params["TableName"], params.get("IndexName", "")
        match = _FIRST_EQUALITY.match(params["KeyConditionExpression"])
        names = params.get("ExpressionAttributeNames", {})
        attribute = names.get(match.group(1), match.group(1))
        value = params["ExpressionAttributeValues"][match.group(2)]
        sizes = [item_size(i) for i in items]
        consistent = params.get("ConsistentRead", False) and not index
        self._add(table, index, "rru", self._class(table, index, attribute, _plain(value)),
                  read_units(sizes, consistent=consistent), max(sizes or [0]))

    # -- views -------------------------------------------------------------------------

    def calls_by_function(self) -> Dict[str, Dict[str, Dict[str, int]]]:
        """{function: {"main"|"pool": {"service.Op": n}}}"""
        out: Dict[str, Dict[str, Dict[str, int]]] = {}
        with self._lock:
            for (function, name, pooled), n in self.placement.items():
                where = out.setdefault(function, {"main": {}, "pool": {}})["pool" if pooled else "main"]
                where[name] = where.get(name, 0) + n
        return out


def _plain(value: Mapping):
    (kind, data), = value.items()
    return data
