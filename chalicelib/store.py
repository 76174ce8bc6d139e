"""DynamoDB access for sessions and connections.

Every write that can race is a conditional write or a transaction: ids are claimed
with ``attribute_not_exists``, a join is one transaction that checks capacity and
counts, a leave is one transaction that can neither drive ``listenerCount`` below
zero nor recreate a session item that an end or TTL already removed. A read is only
ever used *after* a failed condition, to explain the failure to the client.

botocore errors are translated here: conditions become domain outcomes, anything
else becomes :class:`~chalicelib.errors.ServiceUnavailable` (503).
"""

from __future__ import annotations

import logging
import random
import time
from typing import Iterator, List, Optional, Tuple

import attrs

from chalicelib import errors
from chalicelib.records import ACTIVE, ENDED, LISTENER, Connection, Session
from chalicelib.schema import CONNECTIONS_SESSION_INDEX, SESSIONS_STATUS_INDEX

logger = logging.getLogger(__name__)

_CONDITION_FAILED = "ConditionalCheckFailed"
_CONFLICT_RETRIES = 4


class SessionIdTaken(Exception):
    """The candidate session id already exists; try the next one."""


class ConnectionExists(Exception):
    """A row for this connection id exists already (a duplicate ``$connect``)."""

    def __init__(self, existing: Optional[Connection]) -> None:
        super().__init__("connection exists")
        self.existing = existing


def _serializer():
    from boto3.dynamodb.types import TypeDeserializer, TypeSerializer

    return TypeSerializer(), TypeDeserializer()


class Store:
    def __init__(self, client, config) -> None:
        self._client = client
        self._sessions = config.sessions_table
        self._connections = config.connections_table
        self._ser, self._de = _serializer()

    # -- (de)serialisation -------------------------------------------------------

    def _item(self, data: dict) -> dict:
        return {k: self._ser.serialize(v) for k, v in data.items()}

    def _values(self, data: dict) -> dict:
        return {k: self._ser.serialize(v) for k, v in data.items()}

    def _plain(self, item: dict) -> dict:
        return {k: self._de.deserialize(v) for k, v in item.items()}

    def _call(self, operation: str, **kwargs):
        """Run a client call; conditional failures propagate, the rest is a 503.

        Transaction conflicts (two transactions on one session item at once, which
        every join and leave touches) are retried with jittered backoff: botocore
        does not retry them, and they are transient by definition."""
        from botocore.exceptions import BotoCoreError, ClientError

        for attempt in range(_CONFLICT_RETRIES + 1):
            try:
                return getattr(self._client, operation)(**kwargs)
            except ClientError as exc:
                if attempt < _CONFLICT_RETRIES and self._is_conflict(exc):
                    time.sleep(random.uniform(0, 0.02 * 2**attempt))
                    continue
                code = exc.response.get("Error", {}).get("Code", "")
                if code in ("ConditionalCheckFailedException", "TransactionCanceledException"):
                    raise
                logger.error("DynamoDB %s failed: %s", operation, code or exc)
                raise errors.ServiceUnavailable() from None
            except BotoCoreError as exc:
                logger.error("DynamoDB %s failed: %s", operation, type(exc).__name__)
                raise errors.ServiceUnavailable() from None

    @staticmethod
    def _is_conflict(exc) -> bool:
        code = exc.response.get("Error", {}).get("Code", "")
        if code == "TransactionConflictException":
            return True
        if code != "TransactionCanceledException":
            return False
        reasons = [r.get("Code", "None") for r in exc.response.get("CancellationReasons") or []]
        return "TransactionConflict" in reasons and _CONDITION_FAILED not in reasons

    def _update_if(
        self,
        table: str,
        key: dict,
        update: str,
        condition: str,
        *,
        names: Optional[dict] = None,
        values: Optional[dict] = None,
        returns: str = "NONE",
    ) -> Optional[dict]:
        """One conditional UpdateItem. Returns the requested attributes (plain
        values, ``{}`` for ``NONE``), or None when the condition did not hold."""
        from botocore.exceptions import ClientError

        kwargs = dict(
            TableName=table,
            Key=self._item(key),
            UpdateExpression=update,
            ConditionExpression=condition,
            ReturnValues=returns,
        )
        if names:
            kwargs["ExpressionAttributeNames"] = names
        if values:
            kwargs["ExpressionAttributeValues"] = self._values(values)
        try:
            response = self._call("update_item", **kwargs)
        except ClientError as exc:
            if self._is_condition_failure(exc):
                return None
            raise
        return self._plain(response.get("Attributes", {}))

    @staticmethod
    def _cancellation_codes(exc) -> List[str]:
        reasons = exc.response.get("CancellationReasons") or []
        return [r.get("Code", "None") for r in reasons]

    @staticmethod
    def _is_condition_failure(exc) -> bool:
        return exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException"

    # -- reads -------------------------------------------------------------------

    def get_session(self, session_id: str) -> Optional[Session]:
        response = self._call(
            "get_item",
            TableName=self._sessions,
            Key=self._item({"sessionId": session_id}),
            ConsistentRead=True,
        )
        item = response.get("Item")
        return Session.from_item(self._plain(item)) if item else None

    def get_connection(self, connection_id: str) -> Optional[Connection]:
        response = self._call(
            "get_item",
            TableName=self._connections,
            Key=self._item({"connectionId": connection_id}),
            ConsistentRead=True,
        )
        item = response.get("Item")
        return Connection.from_item(self._plain(item)) if item else None

    def listeners(
        self, session_id: str, target_language: Optional[str] = None
    ) -> Iterator[Connection]:
        """Listeners of a session (optionally of one language), via the sparse index,
        page by page; never a scan."""
        condition = "sessionId = :s"
        values = {":s": session_id}
        if target_language is not None:
            condition += " AND targetLanguage = :l"
            values[":l"] = target_language
        kwargs = dict(
            TableName=self._connections,
            IndexName=CONNECTIONS_SESSION_INDEX,
            KeyConditionExpression=condition,
            ExpressionAttributeValues=self._values(values),
        )
        while True:
            page = self._call("query", **kwargs)
            for item in page.get("Items", []):
                yield Connection.from_item(self._plain(item))
            if "LastEvaluatedKey" not in page:
                return
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def active_sessions(self) -> Iterator[Session]:
        """Every active session, via the status index, page by page."""
        return self._sessions_by_status(ACTIVE)

    def recently_ended_sessions(self, since_ms: int) -> Iterator[Session]:
        """Sessions ended since ``since_ms``, whose listeners may still need releasing."""
        return self._sessions_by_status(
            ENDED, "endedAt >= :since", {":since": since_ms}
        )

    def _sessions_by_status(self, status, filter_expression=None, filter_values=None):
        kwargs = dict(
            TableName=self._sessions,
            IndexName=SESSIONS_STATUS_INDEX,
            KeyConditionExpression="#status = :status",
            ExpressionAttributeNames={"#status": "status"},
            ExpressionAttributeValues=self._values({":status": status, **(filter_values or {})}),
        )
        if filter_expression:
            kwargs["FilterExpression"] = filter_expression
        while True:
            page = self._call("query", **kwargs)
            for item in page.get("Items", []):
                yield Session.from_item(self._plain(item))
            if "LastEvaluatedKey" not in page:
                return
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    # -- sessions ----------------------------------------------------------------

    def create_session(self, session: Session, speaker: Connection) -> None:
        """Claim ``session.session_id`` and record the speaker's connection, together.

        Raises SessionIdTaken (try another id) or ConnectionExists (duplicate connect).
        """
        from botocore.exceptions import ClientError

        try:
            self._call(
                "transact_write_items",
                TransactItems=[
                    {
                        "Put": {
                            "TableName": self._sessions,
                            "Item": self._item(session.to_item()),
                            "ConditionExpression": "attribute_not_exists(sessionId)",
                        }
                    },
                    {
                        "Put": {
                            "TableName": self._connections,
                            "Item": self._item(speaker.to_item()),
                            "ConditionExpression": "attribute_not_exists(connectionId)",
                        }
                    },
                ],
            )
        except ClientError as exc:
            codes = self._cancellation_codes(exc)
            if len(codes) > 1 and codes[1] == _CONDITION_FAILED:
                raise ConnectionExists(self.get_connection(speaker.connection_id)) from None
            if codes and codes[0] == _CONDITION_FAILED:
                raise SessionIdTaken(session.session_id) from None
            logger.error("create_session cancelled: %s", codes)
            raise errors.ServiceUnavailable() from None

    def end_session(
        self,
        session_id: str,
        reason: str,
        now_ms: int,
        only_if_speaker: Optional[str] = None,
        only_if_expired: bool = False,
    ) -> Optional[Session]:
        """Mark an active session ended; returns it, or None if it was not active
        (already ended, gone, or, with ``only_if_speaker``, its speaker replaced;
        with ``only_if_expired``, a refresh extended it meanwhile)."""
        condition = "#status = :active"
        values = {":active": ACTIVE, ":ended": ENDED, ":reason": reason, ":now": now_ms}
        if only_if_speaker is not None:
            condition += " AND speakerConnectionId = :speaker"
            values[":speaker"] = only_if_speaker
        if only_if_expired:
            condition += " AND expiresAt <= :nowSeconds"
            values[":nowSeconds"] = now_ms // 1000
        item = self._update_if(
            self._sessions,
            {"sessionId": session_id},
            "SET #status = :ended, endedReason = :reason, endedAt = :now",
            condition,
            names={"#status": "status"},
            values=values,
            returns="ALL_NEW",
        )
        return Session.from_item(item) if item is not None else None

    # -- joining -----------------------------------------------------------------

    def add_listener(
        self, listener: Connection, capacity_limit: Optional[int]
    ) -> Session:
        """Put the listener's row and count it, in one transaction.

        ``capacity_limit`` is the count the session must be *below* (None: no limit).
        Raises SessionNotFound, SessionFull or ConnectionExists.
        """
        from botocore.exceptions import ClientError

        # An expired session admits nobody, even before the sweep marks it ended.
        condition = "#status = :active AND expiresAt > :now"
        values = {":active": ACTIVE, ":one": 1, ":now": listener.connected_at // 1000}
        if capacity_limit is not None:
            condition += " AND listenerCount < :limit"
            values[":limit"] = capacity_limit
        try:
            self._call(
                "transact_write_items",
                TransactItems=[
                    {
                        "Put": {
                            "TableName": self._connections,
                            "Item": self._item(listener.to_item()),
                            "ConditionExpression": "attribute_not_exists(connectionId)",
                        }
                    },
                    {
                        "Update": {
                            "TableName": self._sessions,
                            "Key": self._item({"sessionId": listener.session_id}),
                            "UpdateExpression": "ADD listenerCount :one",
                            "ConditionExpression": condition,
                            "ExpressionAttributeNames": {"#status": "status"},
                            "ExpressionAttributeValues": self._values(values),
                        }
                    },
                ],
            )
        except ClientError as exc:
            codes = self._cancellation_codes(exc)
            if codes and codes[0] == _CONDITION_FAILED:
                raise ConnectionExists(self.get_connection(listener.connection_id)) from None
            if len(codes) > 1 and codes[1] == _CONDITION_FAILED:
                session = self.get_session(listener.session_id)
                expired = session is not None and session.expires_at <= listener.connected_at // 1000
                if session is None or not session.is_active or expired:
                    raise errors.SessionNotFound() from None
                raise errors.SessionFull() from None
            logger.error("add_listener cancelled: %s", codes)
            raise errors.ServiceUnavailable() from None
        try:
            session = self.get_session(listener.session_id)
        except errors.ServiceUnavailable:
            self.remove_listener(listener)  # a refused connect gets no $disconnect
            raise
        if session is None:  # ended and reaped between our write and this read
            self.delete_connection(listener.connection_id)
            raise errors.SessionNotFound()
        return session

    def put_connection(self, connection: Connection) -> None:
        """Record a connection that carries no count (a speaker's).

        Raises ConnectionExists on a duplicate ``$connect``."""
        from botocore.exceptions import ClientError

        try:
            self._call(
                "put_item",
                TableName=self._connections,
                Item=self._item(connection.to_item()),
                ConditionExpression="attribute_not_exists(connectionId)",
            )
        except ClientError as exc:
            if self._is_condition_failure(exc):
                raise ConnectionExists(self.get_connection(connection.connection_id)) from None
            raise

    def replace_speaker(
        self, speaker: Connection, user_id: str, expires_at: int
    ) -> Tuple[Session, str, Optional[int]]:
        """Point the session at a new speaker connection and extend ``expiresAt`` in
        one conditional update: only an active session owned by ``user_id``.

        Returns the updated session, the replaced connection id, and when the
        replaced connection was noticed gone (None if it was not). Raises
        SessionNotFound, Forbidden or ConnectionExists; on failure nothing remains.
        """
        self.put_connection(speaker)
        try:
            old = self._update_if(
                self._sessions,
                {"sessionId": speaker.session_id},
                "SET speakerConnectionId = :c, expiresAt = :e REMOVE speakerDisconnectedAt",
                "#status = :active AND speakerUserId = :u",
                names={"#status": "status"},
                values={
                    ":c": speaker.connection_id,
                    ":e": expires_at,
                    ":active": ACTIVE,
                    ":u": user_id,
                },
                returns="ALL_OLD",
            )
        except errors.ServiceUnavailable:
            self.delete_connection(speaker.connection_id)
            raise
        if old is None:
            self.delete_connection(speaker.connection_id)
            session = self.get_session(speaker.session_id)
            if session is None or not session.is_active:
                raise errors.SessionNotFound()
            raise errors.Forbidden("only the speaker who created the session may refresh it")
        previous = Session.from_item(old)
        updated = attrs.evolve(
            previous,
            speaker_connection_id=speaker.connection_id,
            expires_at=expires_at,
            speaker_disconnected_at=None,
        )
        return updated, previous.speaker_connection_id, previous.speaker_disconnected_at

    def restore_speaker(
        self, session_id: str, previous: str, current: str, disconnected_at: Optional[int]
    ) -> bool:
        """Undo :meth:`replace_speaker` if nothing replaced ``current`` since,
        including the grace period it cleared."""
        update = "SET speakerConnectionId = :previous"
        values = {":previous": previous, ":current": current}
        if disconnected_at is not None:
            update += ", speakerDisconnectedAt = :gone"
            values[":gone"] = disconnected_at
        restored = self._update_if(
            self._sessions,
            {"sessionId": session_id},
            update,
            "speakerConnectionId = :current",
            values=values,
        )
        return restored is not None

    # -- leaving -----------------------------------------------------------------

    def remove_listener(self, listener: Connection) -> bool:
        """Delete the row and decrement the count, once. True if this call did it."""
        from botocore.exceptions import ClientError

        try:
            self._call(
                "transact_write_items",
                TransactItems=[
                    {
                        "Delete": {
                            "TableName": self._connections,
                            "Key": self._item({"connectionId": listener.connection_id}),
                            "ConditionExpression": "attribute_exists(connectionId)",
                        }
                    },
                    {
                        "Update": {
                            "TableName": self._sessions,
                            "Key": self._item({"sessionId": listener.session_id}),
                            "UpdateExpression": "ADD listenerCount :minus",
                            # Never below zero, never an Update that recreates a
                            # session item TTL already deleted.
                            "ConditionExpression": "attribute_exists(sessionId) AND listenerCount > :zero",
                            "ExpressionAttributeValues": self._values(
                                {":minus": -1, ":zero": 0}
                            ),
                        }
                    },
                ],
            )
            return True
        except ClientError as exc:
            codes = self._cancellation_codes(exc)
            if codes and codes[0] == _CONDITION_FAILED:
                return False  # somebody else removed it first: nothing to do
            if len(codes) > 1 and codes[1] == _CONDITION_FAILED:
                # The session item is gone (or already at zero): the row alone goes.
                return self.delete_connection(listener.connection_id) is not None
            logger.error("remove_listener cancelled: %s", codes)
            raise errors.ServiceUnavailable() from None

    def delete_connection(self, connection_id: str) -> Optional[Connection]:
        """Delete a row that carries no count (speakers); returns what was deleted."""
        response = self._call(
            "delete_item",
            TableName=self._connections,
            Key=self._item({"connectionId": connection_id}),
            ReturnValues="ALL_OLD",
        )
        old = response.get("Attributes")
        return Connection.from_item(self._plain(old)) if old else None

    # -- broadcast ---------------------------------------------------------------

    def next_sequence_numbers(self, session_id: str, languages) -> dict:
        """Atomically advance the per-language sequence counters of an active session
        by one each; returns {language: new number}. Raises SessionNotFound."""
        languages = sorted(set(languages))
        if not languages:
            return {}
        names = {"#status": "status"}
        clauses = []
        for i, language in enumerate(languages):
            names[f"#l{i}"] = language
            clauses.append(
                f"sequenceNumbers.#l{i} = if_not_exists(sequenceNumbers.#l{i}, :zero) + :one"
            )
        item = self._update_if(
            self._sessions,
            {"sessionId": session_id},
            "SET " + ", ".join(clauses),
            "#status = :active",
            names=names,
            values={":active": ACTIVE, ":one": 1, ":zero": 0},
            returns="UPDATED_NEW",
        )
        if item is None:
            raise errors.SessionNotFound()
        numbers = item.get("sequenceNumbers", {})
        return {language: int(numbers[language]) for language in languages}

    def update_broadcast_state(self, session_id: str, changes: dict, now_ms: int) -> Session:
        """Set fields of an active session's broadcastState; returns the session."""
        names = {"#status": "status"}
        values = {":active": ACTIVE, ":now": now_ms}
        clauses = ["broadcastState.lastStateChange = :now"]
        for i, (field, value) in enumerate(sorted(changes.items())):
            names[f"#f{i}"] = field
            values[f":v{i}"] = value
            clauses.append(f"broadcastState.#f{i} = :v{i}")
        item = self._update_if(
            self._sessions,
            {"sessionId": session_id},
            "SET " + ", ".join(clauses),
            "#status = :active",
            names=names,
            values=values,
            returns="ALL_NEW",
        )
        if item is None:
            raise errors.SessionNotFound()
        return Session.from_item(item)

    def change_language(self, connection_id: str, language: str) -> Optional[Connection]:
        """Move a listener to another language in place (the index key is updated
        with the item); returns the row as it was, or None if it is gone."""
        item = self._update_if(
            self._connections,
            {"connectionId": connection_id},
            "SET targetLanguage = :l",
            "attribute_exists(connectionId) AND #role = :listener",
            names={"#role": "role"},
            values={":l": language, ":listener": LISTENER},
            returns="ALL_OLD",
        )
        return Connection.from_item(item) if item is not None else None

    # -- liveness ----------------------------------------------------------------

    def claim_notice(self, connection_id: str, attribute: str, now_ms: int) -> bool:
        """Mark a one-time notice as sent; True only for the one caller that marks
        it, so a heartbeat and the sweep racing send it exactly once."""
        claimed = self._update_if(
            self._connections,
            {"connectionId": connection_id},
            "SET #notice = :now",
            "attribute_exists(connectionId) AND attribute_not_exists(#notice)",
            names={"#notice": attribute},
            values={":now": now_ms},
        )
        return claimed is not None

    def release_notice(self, connection_id: str, attribute: str) -> None:
        """Undo :meth:`claim_notice` after a failed send, so a later try sends it."""
        self._update_if(
            self._connections,
            {"connectionId": connection_id},
            "REMOVE #notice",
            "attribute_exists(connectionId)",
            names={"#notice": attribute},
        )

    def mark_speaker_disconnected(
        self, session_id: str, connection_id: str, now_ms: int
    ) -> Optional[Session]:
        """Start the reconnect grace period, once, if ``connection_id`` is still the
        session's speaker connection."""
        item = self._update_if(
            self._sessions,
            {"sessionId": session_id},
            "SET speakerDisconnectedAt = :now",
            "#status = :active AND speakerConnectionId = :c "
            "AND attribute_not_exists(speakerDisconnectedAt)",
            names={"#status": "status"},
            values={":now": now_ms, ":active": ACTIVE, ":c": connection_id},
            returns="ALL_NEW",
        )
        return Session.from_item(item) if item is not None else None

    def touch(self, connection_id: str, now_ms: int) -> Optional[Connection]:
        """Record activity; returns the updated row, or None if it does not exist."""
        item = self._update_if(
            self._connections,
            {"connectionId": connection_id},
            "SET lastSeenAt = :now",
            "attribute_exists(connectionId)",
            values={":now": now_ms},
            returns="ALL_NEW",
        )
        return Connection.from_item(item) if item is not None else None
