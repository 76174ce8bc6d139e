"""Targeted patches of moto 5.2.5 where the project embeds it as its DynamoDB.

Every moto server the project starts (:mod:`local_stack.moto_server`: ``make run``,
``make deploy-local``, the functional tests, the scaling simulation) applies all of
them, in the server's own process. Each patch is a function of its own, idempotent,
with the reason in its docstring; :data:`PATCHES` names them, so ``make bench`` can
leave one out to measure what it buys (``LOCAL_MOTO_SKIP_PATCHES``).

What they keep: moto's DynamoDB models, expression parsing and evaluation, and its
wire format are unchanged. Two patches fix behaviour where moto differs from
DynamoDB (cancelled transactions undoing other requests' writes; requests
interleaving inside one another); the others only cache what moto recomputes on
every request from data that never changes while the server runs, or free what it
keeps for ever. ``tests/local_stack/test_moto_patches.py`` checks each one, and
that the pinned moto is the version they were written against.
"""
from __future__ import annotations

import copy
import functools
import logging
import threading
from typing import Callable, Dict, Iterable, List, Optional, Tuple

log = logging.getLogger("local_stack.moto")

#: The moto release these patches were read against (requirements-dev.in pins it).
MOTO_VERSION = "5.2.5"

_DYNAMODB_LOCK = threading.RLock()


def serialise_dynamodb() -> None:
    """Make moto's DynamoDB handle one request at a time.

    moto's models are not thread-safe: a conditional write evaluates its condition
    and then writes, and an UpdateItem applies its actions to the stored item one
    after the other, so two requests interleaving at a GIL switch could both pass
    ``attribute_not_exists`` or read a half-updated item. DynamoDB makes each
    request atomic; one lock around each DynamoDB request restores that. Requests
    from different clients still interleave *between* each other, so races in the
    app's own read-then-write sequences stay visible (the functional concurrency
    tests rely on it).

    One lock for all tables rather than one per table: the server is one Python
    process, so moto's work is serialised by the GIL anyway and per-table locks
    would add no throughput, only lock ordering for transactions over two tables.
    """
    from moto.dynamodb.responses import DynamoHandler

    if getattr(DynamoHandler, "_serialised_by_local_stack", False):
        return
    original = DynamoHandler.call_action

    def call_action(self):
        with _DYNAMODB_LOCK:
            return original(self)

    DynamoHandler.call_action = call_action
    DynamoHandler._serialised_by_local_stack = True


def _untracked_new(cls, *args, **kwargs):
    return object.__new__(cls)


def untrack_dynamodb_models() -> None:
    """Stop moto from keeping every DynamoDB object it ever created.

    moto's ``BaseModel.__new__`` appends each new model object to its class's
    ``instances_tracked`` list (for the ``/moto-api/data.json`` dashboard) and
    nothing ever removes it, so no ``Item``, ``Table`` or index moto creates is
    ever freed: ``make run`` grew by about 41 KiB per listener join/leave
    (``make bench`` measures it). DynamoDB's model classes get a ``__new__`` that
    does not track: nothing else in moto reads these lists, the objects are freed
    once moto drops them, and the dashboard no longer lists DynamoDB objects.
    """
    import moto.dynamodb.models  # noqa: F401  (defines and registers the classes)
    from moto.core.common_models import BaseModel
    from moto.core.model_instances import model_data

    for cls in list(model_data["dynamodb"].values()):
        if cls.__new__ is BaseModel.__new__:
            cls.__new__ = staticmethod(_untracked_new)
        cls.instances_tracked.clear()


def snapshot_transaction_items() -> None:
    """``TransactWriteItems`` rolls back the items it wrote, not whole tables.

    moto 5.2.5 deep-copies every table a transaction names before applying it
    (about 50 ms at 1,000 items, growing with the table), and on cancellation
    puts those copies back, which also undoes every write other requests made in
    between. This version keeps moto's transaction logic (one operation per item,
    conditions checked, then each write applied by moto's own put/update/delete),
    but snapshots only the item each operation touches, just before it is
    touched, and on cancellation puts back exactly those items (and drops the
    stream records the cancelled writes added), as DynamoDB leaves no trace of a
    cancelled transaction. A request-shape error (two operations in one item, an
    unknown operation) now also rolls back what was applied before it.
    """
    from moto.dynamodb import models

    backend = models.DynamoDBBackend
    if getattr(backend.transact_write_items, "_local_stack_snapshots", False):
        return
    backend.transact_write_items = _transact_write_items
    _transact_write_items._local_stack_snapshots = True


class _TouchedItems:
    """Items a transaction touched, as they were before it touched them."""

    def __init__(self, backend):
        self._backend = backend
        self._items: List[Tuple[str, object, object, object]] = []
        self._streams: Dict[str, int] = {}

    def remember(self, table_name: str, key: dict) -> None:
        table = self._backend.get_table(table_name)
        if table_name not in self._streams and table.stream_shard is not None:
            self._streams[table_name] = len(table.stream_shard.items)
        hash_value, range_value = self._backend.get_keys_value(table, key)
        before = table.get_item(hash_value, range_value)
        # UpdateItem changes the stored Item in place: keep a copy of this one item.
        self._items.append((table_name, hash_value, range_value, copy.deepcopy(before)))

    def restore(self) -> None:
        for table_name, hash_value, range_value, before in reversed(self._items):
            table = self._backend.tables.get(table_name)
            if table is None:
                continue
            if range_value is not None:
                if before is None:
                    table.items.get(hash_value, {}).pop(range_value, None)
                    if hash_value in table.items and not table.items[hash_value]:
                        del table.items[hash_value]
                else:
                    table.items[hash_value][range_value] = before
            elif before is None:
                table.items.pop(hash_value, None)
            else:
                table.items[hash_value] = before
        for table_name, length in self._streams.items():
            table = self._backend.tables.get(table_name)
            if table is not None and table.stream_shard is not None:
                del table.stream_shard.items[length:]


def _transact_write_items(self, transact_items):
    """moto 5.2.5's ``DynamoDBBackend.transact_write_items`` with item snapshots."""
    from moto.dynamodb.comparisons import get_filter_expression
    from moto.dynamodb.exceptions import (
        ConditionalCheckFailed,
        MockValidationException,
        MultipleTransactionsException,
        TooManyTransactionsException,
        TransactionCanceledException,
        TransactWriteSingleOpException,
    )

    if len(transact_items) > 100:
        raise TooManyTransactionsException()
    touched = _TouchedItems(self)
    target_items = set()

    def check_unicity(table_name, key):
        item = (str(table_name), str(dict(sorted(key.items()))))
        if item in target_items:
            raise MultipleTransactionsException()
        target_items.add(item)

    errors = []  # [(Code, Message, Item)]: one per operation, (None, None, None) when fine
    try:
        for item in transact_items:
            original_item = None
            if len(list(item.keys())) > 1:
                raise TransactWriteSingleOpException
            try:
                op_type, op = next(iter(item.items()))
                if op_type not in {"ConditionCheck", "Put", "Delete", "Update"}:
                    raise ValueError("Unsupported transaction operation")
                table_name = op["TableName"]
                condition_expression = op.get("ConditionExpression")
                names = op.get("ExpressionAttributeNames")
                values = op.get("ExpressionAttributeValues")
                if op_type == "Put":
                    attrs = op["Item"]
                    table = self.get_table(table_name)
                    key = {table.hash_key_attr: attrs[table.hash_key_attr]}
                    if table.range_key_attr is not None:
                        key[table.range_key_attr] = attrs[table.range_key_attr]
                else:
                    key = op["Key"]
                check_unicity(table_name, key)
                current = self.get_item(table_name, key)
                if condition_expression is not None:
                    condition = get_filter_expression(condition_expression, names, values)
                    if not condition.expr(current):
                        if op.get("ReturnValuesOnConditionCheckFailure") == "ALL_OLD" and current:
                            original_item = current.to_json()["Attributes"]
                        raise ConditionalCheckFailed(item=original_item)
                if op_type != "ConditionCheck":
                    touched.remember(table_name, key)
                if op_type == "Put":
                    self.put_item(table_name, op["Item"], condition_expression=condition_expression,
                                  expression_attribute_names=names,
                                  expression_attribute_values=values)
                elif op_type == "Delete":
                    self.delete_item(table_name, key, condition_expression=condition_expression,
                                     expression_attribute_names=names,
                                     expression_attribute_values=values)
                elif op_type == "Update":
                    self.update_item(table_name, key, update_expression=op["UpdateExpression"],
                                     condition_expression=condition_expression,
                                     expression_attribute_names=names,
                                     expression_attribute_values=values)
                errors.append((None, None, None))
            except (MultipleTransactionsException, MockValidationException):
                raise
            except ConditionalCheckFailed as e:
                errors.append(("ConditionalCheckFailed", str(e.message), original_item))
            except Exception as e:  # moto's own rule: any other failure cancels with its name
                errors.append((type(e).__name__, str(e), original_item))
    except BaseException:
        touched.restore()
        raise
    if any(code is not None for code, _, _ in errors):
        touched.restore()
        raise TransactionCanceledException(errors)


def cache_request_dispatch() -> None:
    """Cache what moto's server recomputes on every request from fixed data.

    Per request, moto 5.2.5 lists its own package directory (``os.listdir`` and an
    ``isdir`` per service, about 110 system calls) to decide whether the host
    names a service, matches the host against every service's URL patterns, and
    lists the handler class's methods with ``inspect.getmembers``: together about
    0.5 ms of the 2 ms an UpdateItem costs. None of it changes while the server
    runs; each is now computed once (per host, per class).
    """
    import moto.backends
    import moto.core.responses
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication

    if getattr(DomainDispatcherApplication, "_dispatch_cached_by_local_stack", False):
        return
    modules = tuple(moto.backends.list_of_moto_modules())
    moto.backends.list_of_moto_modules = lambda: modules
    moto.core.responses.method_names_from_class = functools.lru_cache(maxsize=None)(
        moto.core.responses.method_names_from_class)
    original = DomainDispatcherApplication.get_backend_for_host
    backends_by_host: Dict[Optional[str], object] = {}

    def get_backend_for_host(self, host):
        try:
            return backends_by_host[host]
        except KeyError:
            backend = original(self, host)
            if backend is not None and len(backends_by_host) < 1024:
                backends_by_host[host] = backend
            return backend

    DomainDispatcherApplication.get_backend_for_host = get_backend_for_host
    DomainDispatcherApplication._dispatch_cached_by_local_stack = True


def cache_update_expressions() -> None:
    """Parse each distinct ``UpdateExpression`` once, not twice per request.

    moto tokenises and parses an UpdateItem's expression in its response handler
    and again in its model. The parse is a pure function of the string, and the
    tree is never changed afterwards: the validator that substitutes names and
    values works on its own deep copy (``Validator.__init__``), and the response
    handler only reads it. An application uses a handful of expressions, so the
    parsed trees are kept in a bounded cache; an invalid expression is never
    cached and fails every time, as before.
    """
    from moto.dynamodb.parsing.expressions import UpdateExpressionParser

    if getattr(UpdateExpressionParser, "_cached_by_local_stack", False):
        return
    parse = UpdateExpressionParser.make.__func__

    @functools.lru_cache(maxsize=512)
    def parsed(cls, expression):
        return parse(cls, expression)

    UpdateExpressionParser.make = classmethod(parsed)
    UpdateExpressionParser._cached_by_local_stack = True


#: Every patch by name, in the order applied.
PATCHES: Dict[str, Callable[[], None]] = {
    "serialise_dynamodb": serialise_dynamodb,
    "untrack_dynamodb_models": untrack_dynamodb_models,
    "snapshot_transaction_items": snapshot_transaction_items,
    "cache_request_dispatch": cache_request_dispatch,
    "cache_update_expressions": cache_update_expressions,
}


def apply(skip: Iterable[str] = ()) -> List[str]:
    """Apply every patch except those named in ``skip``; returns the names applied.

    Raises ValueError for a name that is not a patch (a typo would otherwise
    measure the patched server while claiming the opposite).
    """
    skip = set(skip)
    unknown = skip - set(PATCHES)
    if unknown:
        raise ValueError(f"unknown moto patch(es) {sorted(unknown)}; known: {', '.join(PATCHES)}")
    import moto

    if moto.__version__ != MOTO_VERSION:
        log.warning("moto %s is not %s, the version local_stack's patches were written for",
                    moto.__version__, MOTO_VERSION)
    applied = []
    for name, patch in PATCHES.items():
        if name not in skip:
            patch()
            applied.append(name)
    return applied
