"""A small DynamoDB toolkit: plain values in and out, conditional writes,
transactions and pagination, with botocore's errors translated in one place.

- A failed condition is an expected outcome: ``update_if``/``put_if``/``delete_if``
  return None, a transaction raises :class:`Cancelled` with one code per item.
- Retries are safe. botocore retries a write whose response was lost, and the retry
  then finds the condition failed by our own first attempt. Transactions carry a
  ``ClientRequestToken``, which makes DynamoDB answer such a retry with the first
  outcome; a single-item write may pass ``mine``, a test of the item as the failed
  condition found it, which recognises our own earlier write (a unique value it
  set) and turns that failure back into the success it was.
- Transaction conflicts (two transactions on one item at once, which every join and
  leave on a session risks) are retried with jittered backoff: botocore does not
  retry them, and they are transient by definition.
- Anything else (throttling after botocore's own retries, 5xx, network) is logged
  and becomes :class:`~chalicelib.errors.ServiceUnavailable` (503).
"""

from __future__ import annotations

import logging
import random
import time
import uuid
from typing import Callable, Dict, Iterable, Iterator, List, Optional

from chalicelib import errors
from chalicelib.state.values import deserialize, serialize

logger = logging.getLogger(__name__)

CONDITION_FAILED = "ConditionalCheckFailed"
BATCH_WRITE_LIMIT = 25  # items per BatchWriteItem
_CONFLICT_RETRIES = 4
_UNPROCESSED_RETRIES = 4

def attributes(values: dict) -> dict:
    """Plain Python values -> DynamoDB attribute values (an item, a key, or
    expression attribute values)."""
    return {k: serialize(v) for k, v in values.items()}


def plain(item: dict) -> dict:
    """DynamoDB attribute values -> plain Python values."""
    return {k: deserialize(v) for k, v in item.items()}


class ConditionFailed(Exception):
    """A single-item write's condition did not hold; ``item`` is the item as it was
    (plain values) when it was asked for, else None."""

    def __init__(self, item: Optional[dict] = None) -> None:
        super().__init__("condition failed")
        self.item = item


class Cancelled(Exception):
    """A transaction was cancelled by a failed condition; ``codes`` holds one
    cancellation code per item, in the order the items were given."""

    def __init__(self, codes: List[str]) -> None:
        super().__init__(f"transaction cancelled: {codes}")
        self.codes = codes

    def failed(self, index: int) -> bool:
        """Whether the condition of item ``index`` is what failed."""
        return index < len(self.codes) and self.codes[index] == CONDITION_FAILED


def error_code(exc) -> str:
    return exc.response.get("Error", {}).get("Code", "")


def _cancellation_codes(exc) -> List[str]:
    return [r.get("Code", "None") for r in exc.response.get("CancellationReasons") or []]


def _is_conflict(exc) -> bool:
    code = error_code(exc)
    if code == "TransactionConflictException":
        return True
    if code != "TransactionCanceledException":
        return False
    codes = _cancellation_codes(exc)
    return "TransactionConflict" in codes and CONDITION_FAILED not in codes


# -- transaction items ------------------------------------------------------------


def _expression(kind: str, table: str, condition: Optional[str], names, values, **fields) -> dict:
    item = {"TableName": table, **fields}
    if condition:
        item["ConditionExpression"] = condition
    if names:
        item["ExpressionAttributeNames"] = names
    if values:
        item["ExpressionAttributeValues"] = attributes(values)
    return {kind: item}


def put(table: str, item: dict, condition: Optional[str] = None, *, names=None, values=None) -> dict:
    return _expression("Put", table, condition, names, values, Item=attributes(item))


def update(table: str, key: dict, expression: str, condition: Optional[str] = None, *,
           names=None, values=None) -> dict:
    return _expression("Update", table, condition, names, values,
                       Key=attributes(key), UpdateExpression=expression)


def delete(table: str, key: dict, condition: Optional[str] = None, *, names=None, values=None) -> dict:
    return _expression("Delete", table, condition, names, values, Key=attributes(key))


def condition_check(table: str, key: dict, condition: str, *, names=None, values=None) -> dict:
    return _expression("ConditionCheck", table, condition, names, values, Key=attributes(key))


class Dynamo:
    """One DynamoDB client, used through plain values. ``client`` may be a function
    that makes it: it is then made on first use (a cold start that never needs
    DynamoDB never pays for the client)."""

    def __init__(self, client, sleep: Callable[[float], None] = time.sleep) -> None:
        self._client = client
        self._sleep = sleep

    @property
    def client(self):
        if callable(self._client):
            self._client = self._client()
        return self._client

    def call(self, operation: str, **kwargs) -> dict:
        """Run one client call. Condition failures raise :class:`ConditionFailed` or
        :class:`Cancelled`; transaction conflicts are retried; anything else is a
        503 (:class:`~chalicelib.errors.ServiceUnavailable`)."""
        from botocore.exceptions import BotoCoreError, ClientError

        for attempt in range(_CONFLICT_RETRIES + 1):
            try:
                return getattr(self.client, operation)(**kwargs)
            except ClientError as exc:
                if attempt < _CONFLICT_RETRIES and _is_conflict(exc):
                    self._sleep(random.uniform(0, 0.02 * 2**attempt))
                    continue
                code = error_code(exc)
                if code == "ConditionalCheckFailedException":
                    item = exc.response.get("Item")
                    raise ConditionFailed(plain(item) if item else None) from None
                if code == "TransactionCanceledException":
                    codes = _cancellation_codes(exc)
                    if CONDITION_FAILED in codes:
                        raise Cancelled(codes) from None
                    logger.error("DynamoDB %s cancelled: %s", operation, codes)
                    raise errors.ServiceUnavailable() from None
                logger.error("DynamoDB %s failed: %s", operation, code or exc)
                raise errors.ServiceUnavailable() from None
            except BotoCoreError as exc:
                logger.error("DynamoDB %s failed: %s", operation, type(exc).__name__)
                raise errors.ServiceUnavailable() from None
        raise AssertionError("unreachable")  # pragma: no cover

    # -- single items -------------------------------------------------------------

    def get(self, table: str, key: dict, consistent: bool = True) -> Optional[dict]:
        """A read (strongly consistent unless told otherwise, at half the cost);
        None if there is no such item."""
        item = self.call("get_item", TableName=table, Key=attributes(key),
                         ConsistentRead=consistent).get("Item")
        return plain(item) if item else None

    def _write(self, operation: str, spec: dict, returns: str,
               mine: Optional[Callable[[dict], bool]] = None) -> Optional[dict]:
        (kind, kwargs), = spec.items()
        if returns != "NONE":
            kwargs["ReturnValues"] = returns
        if mine is not None:
            kwargs["ReturnValuesOnConditionCheckFailure"] = "ALL_OLD"
        try:
            response = self.call(operation, **kwargs)
        except ConditionFailed as failed:
            if mine is not None and failed.item is not None and mine(failed.item):
                return failed.item  # a retry of ours that had already applied
            return None
        return plain(response.get("Attributes", {}))

    def put_if(self, table: str, item: dict, condition: str, *, names=None, values=None,
               mine: Optional[Callable[[dict], bool]] = None) -> bool:
        """A conditional PutItem; False when the condition did not hold (and the item
        found is not ``mine``)."""
        spec = put(table, item, condition, names=names, values=values)
        return self._write("put_item", spec, "NONE", mine) is not None

    def update_if(self, table: str, key: dict, expression: str, condition: Optional[str] = None,
                  *, names=None, values=None, returns: str = "NONE",
                  mine: Optional[Callable[[dict], bool]] = None) -> Optional[dict]:
        """A (conditional) UpdateItem: the requested attributes as plain values (``{}``
        for ``NONE``), or None when the condition did not hold. When the item the
        failed condition found is ``mine``, that whole item is returned instead."""
        spec = update(table, key, expression, condition, names=names, values=values)
        return self._write("update_item", spec, returns, mine)

    def delete_if(self, table: str, key: dict, condition: Optional[str] = None, *,
                  names=None, values=None, returns: str = "NONE") -> Optional[dict]:
        """A (conditional) DeleteItem: the requested attributes, or None when the
        condition did not hold."""
        spec = delete(table, key, condition, names=names, values=values)
        return self._write("delete_item", spec, returns)

    # -- many items ---------------------------------------------------------------

    def transact(self, *items: dict) -> None:
        """One TransactWriteItems of items built with :func:`put`, :func:`update`,
        :func:`delete`, :func:`condition_check`. Raises :class:`Cancelled` when a
        condition failed."""
        self.call("transact_write_items", TransactItems=list(items),
                  ClientRequestToken=uuid.uuid4().hex)

    def batch_get(self, keys: Dict[str, List[dict]]) -> Dict[str, List[dict]]:
        """Strongly consistent reads of up to 100 items across tables, in one
        BatchGetItem (unprocessed keys, which DynamoDB may return under load, are
        asked again): {table: [item, ...]} with plain values; absent items are absent."""
        request = {table: {"Keys": [attributes(k) for k in table_keys], "ConsistentRead": True}
                   for table, table_keys in keys.items() if table_keys}
        found: Dict[str, List[dict]] = {table: [] for table in keys}
        for attempt in range(_UNPROCESSED_RETRIES + 1):
            response = self.call("batch_get_item", RequestItems=request)
            for table, items in response.get("Responses", {}).items():
                found[table] += [plain(item) for item in items]
            request = response.get("UnprocessedKeys") or {}
            if not request:
                return found
            self._sleep(random.uniform(0, 0.02 * 2**attempt))
        logger.error("DynamoDB batch_get_item left keys unprocessed")
        raise errors.ServiceUnavailable()

    def batch_delete(self, table: str, keys: Iterable[dict]) -> int:
        """Delete items unconditionally, 25 per BatchWriteItem (DynamoDB's limit),
        asking again for unprocessed ones. Returns how many calls it made."""
        keys = list(keys)
        calls = 0
        for start in range(0, len(keys), BATCH_WRITE_LIMIT):
            pending = [{"DeleteRequest": {"Key": attributes(k)}}
                       for k in keys[start:start + BATCH_WRITE_LIMIT]]
            for attempt in range(_UNPROCESSED_RETRIES + 1):
                calls += 1
                response = self.call("batch_write_item", RequestItems={table: pending})
                pending = (response.get("UnprocessedItems") or {}).get(table)
                if not pending:
                    break
                self._sleep(random.uniform(0, 0.02 * 2**attempt))
            else:
                logger.error("DynamoDB batch_write_item left items unprocessed")
                raise errors.ServiceUnavailable()
        return calls

    def query(self, table: str, key_condition: str, values: dict, *, index: Optional[str] = None,
              names=None, filter_expression: Optional[str] = None) -> Iterator[dict]:
        """Every item matching, page by page, as plain values."""
        kwargs = dict(TableName=table, KeyConditionExpression=key_condition,
                      ExpressionAttributeValues=attributes(values))
        if index:
            kwargs["IndexName"] = index
        if names:
            kwargs["ExpressionAttributeNames"] = names
        if filter_expression:
            kwargs["FilterExpression"] = filter_expression
        while True:
            page = self.call("query", **kwargs)
            for item in page.get("Items", []):
                yield plain(item)
            if "LastEvaluatedKey" not in page:
                return
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
