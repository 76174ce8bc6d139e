"""Sessions and connections in DynamoDB: the only code that knows their tables.

Every write that can race is a conditional write or a transaction: ids are claimed
with ``attribute_not_exists``, a join is one transaction that checks capacity and
counts, a leave is one transaction that can neither drive ``listenerCount`` below
zero nor recreate a session item that an end or TTL already removed. A read is only
ever used *after* a failed condition, to explain the failure to the client.

Conditions become domain outcomes here (None, False, or a
:class:`~chalicelib.errors.BroadcastError`); the toolkit in
:mod:`chalicelib.state.dynamo` turns every other failure into a 503.
"""

from __future__ import annotations

import logging
import secrets
import uuid
from decimal import Decimal
from typing import Callable, Iterator, Optional, Tuple

import attrs

from chalicelib import errors
from chalicelib.state import dynamo
from chalicelib.state.dynamo import Cancelled, Dynamo
from chalicelib.state.records import ACTIVE, ENDED, LISTENER, Connection, Session
from chalicelib.state.schema import CONNECTIONS_SESSION_INDEX, SESSIONS_STATUS_INDEX

logger = logging.getLogger(__name__)

_STATUS = {"#status": "status"}


class SessionIdTaken(Exception):
    """The candidate session id already exists; try the next one."""


class ConnectionExists(Exception):
    """A row for this connection id exists already (a duplicate ``$connect``)."""

    def __init__(self, existing: Optional[Connection]) -> None:
        super().__init__("connection exists")
        self.existing = existing


class Store:
    def __init__(self, client, config) -> None:
        self._db = Dynamo(client)
        self._sessions = config.sessions_table
        self._connections = config.connections_table

    # -- reads -------------------------------------------------------------------

    def get_session(self, session_id: str) -> Optional[Session]:
        item = self._db.get(self._sessions, {"sessionId": session_id})
        return Session.from_item(item) if item else None

    def active_session(self, session_id: str, message: str = "") -> Session:
        """The session if it is active; raises SessionNotFound otherwise."""
        session = self.get_session(session_id)
        if session is None or not session.is_active:
            raise errors.SessionNotFound(message)
        return session

    def get_connection(self, connection_id: str) -> Optional[Connection]:
        item = self._db.get(self._connections, {"connectionId": connection_id})
        return Connection.from_item(item) if item else None

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
        for item in self._db.query(
            self._connections, condition, values, index=CONNECTIONS_SESSION_INDEX
        ):
            yield Connection.from_item(item)

    def active_sessions(self) -> Iterator[Session]:
        """Every active session, via the status index, page by page."""
        return self._sessions_by_status(ACTIVE)

    def recently_ended_sessions(self, since_ms: int) -> Iterator[Session]:
        """Sessions ended since ``since_ms``, whose listeners may still need releasing."""
        return self._sessions_by_status(ENDED, "endedAt >= :since", {":since": since_ms})

    def _sessions_by_status(self, status, filter_expression=None, filter_values=None):
        for item in self._db.query(
            self._sessions,
            "#status = :status",
            {":status": status, **(filter_values or {})},
            index=SESSIONS_STATUS_INDEX,
            names=_STATUS,
            filter_expression=filter_expression,
        ):
            yield Session.from_item(item)

    # -- sessions ----------------------------------------------------------------

    def create_session(self, session: Session, speaker: Connection) -> None:
        """Claim ``session.session_id`` and record the speaker's connection, together.

        Raises SessionIdTaken (try another id) or ConnectionExists (duplicate connect).
        """
        try:
            self._db.transact(
                dynamo.put(self._sessions, session.to_item(), "attribute_not_exists(sessionId)"),
                self._put_new_connection(speaker),
            )
        except Cancelled as exc:
            if exc.failed(1):
                raise ConnectionExists(self.get_connection(speaker.connection_id)) from None
            raise SessionIdTaken(session.session_id) from None

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
        item = self._db.update_if(
            self._sessions,
            {"sessionId": session_id},
            "SET #status = :ended, endedReason = :reason, endedAt = :now",
            condition,
            names=_STATUS,
            values=values,
            returns="ALL_NEW",
            mine=lambda old: old.get("status") == ENDED and old.get("endedAt") == now_ms
            and old.get("endedReason") == reason,
        )
        return Session.from_item(item) if item is not None else None

    # -- joining -----------------------------------------------------------------

    def _put_new_connection(self, connection: Connection) -> dict:
        return dynamo.put(
            self._connections, connection.to_item(), "attribute_not_exists(connectionId)"
        )

    def add_listener(self, listener: Connection, capacity_limit: Optional[int]) -> Session:
        """Put the listener's row and count it, in one transaction.

        ``capacity_limit`` is the count the session must be *below* (None: no limit).
        Raises SessionNotFound, SessionFull or ConnectionExists.
        """
        # An expired session admits nobody, even before the sweep marks it ended.
        now_seconds = listener.connected_at // 1000
        condition = "#status = :active AND expiresAt > :now"
        values = {":active": ACTIVE, ":one": 1, ":now": now_seconds}
        if capacity_limit is not None:
            condition += " AND listenerCount < :limit"
            values[":limit"] = capacity_limit
        try:
            self._db.transact(
                self._put_new_connection(listener),
                dynamo.update(
                    self._sessions,
                    {"sessionId": listener.session_id},
                    "ADD listenerCount :one",
                    condition,
                    names=_STATUS,
                    values=values,
                ),
            )
        except Cancelled as exc:
            if exc.failed(0):
                raise ConnectionExists(self.get_connection(listener.connection_id)) from None
            session = self.get_session(listener.session_id)
            if session is None or not session.is_active or session.expires_at <= now_seconds:
                raise errors.SessionNotFound() from None
            raise errors.SessionFull() from None
        return self._admitted_session(listener.session_id, lambda: self.remove_listener(listener))

    def _admitted_session(self, session_id: str, undo: Callable[[], object]) -> Session:
        """The session a listener was just admitted to, for its first message. If it
        cannot be read, ``undo`` undoes the admission: a refused connect gets no
        ``$disconnect`` to clean up after it."""
        try:
            session = self.get_session(session_id)
        except errors.ServiceUnavailable:
            undo()
            raise
        if session is None:  # ended and reaped between our write and this read
            undo()
            raise errors.SessionNotFound()
        return session

    def take_over_listener(self, listener: Connection, previous_id: str) -> Optional[Session]:
        """A listener refresh: put the new row and mark ``previous_id`` as replaced by
        it, in one transaction, without changing the count (the new connection takes
        the old one's place). Only a listener row of the same active session that is
        not already replaced can be named, so each place is taken over once.

        Returns the session, or None when ``previous_id`` cannot be taken over (the
        caller then admits the refresh like a join). Raises ConnectionExists or
        SessionNotFound."""
        now_seconds = listener.connected_at // 1000
        try:
            self._db.transact(
                self._put_new_connection(listener),
                dynamo.update(
                    self._connections,
                    {"connectionId": previous_id},
                    "SET replacedBy = :new",
                    "sessionId = :s AND #role = :listener AND attribute_not_exists(replacedBy)",
                    names={"#role": "role"},
                    values={":new": listener.connection_id, ":s": listener.session_id,
                            ":listener": LISTENER},
                ),
                dynamo.condition_check(
                    self._sessions,
                    {"sessionId": listener.session_id},
                    "#status = :active AND expiresAt > :now",
                    names=_STATUS,
                    values={":active": ACTIVE, ":now": now_seconds},
                ),
            )
        except Cancelled as exc:
            if exc.failed(0):
                raise ConnectionExists(self.get_connection(listener.connection_id)) from None
            if exc.failed(2):
                raise errors.SessionNotFound() from None
            return None
        return self._admitted_session(
            listener.session_id, lambda: self.undo_take_over(listener, previous_id)
        )

    def undo_take_over(self, listener: Connection, previous_id: str) -> None:
        """Undo :meth:`take_over_listener`: the new row goes, the old one keeps its place."""
        self._db.update_if(
            self._connections, {"connectionId": previous_id}, "REMOVE replacedBy",
            "replacedBy = :new", values={":new": listener.connection_id},
        )
        self._db.delete_if(
            self._connections, {"connectionId": listener.connection_id},
            "attribute_not_exists(replacedBy)",
        )

    def put_connection(self, connection: Connection) -> None:
        """Record a connection that carries no count (a speaker's).

        Raises ConnectionExists on a duplicate ``$connect``."""
        if not self._db.put_if(
            self._connections, connection.to_item(), "attribute_not_exists(connectionId)",
            mine=lambda old: Connection.from_item(old) == connection,
        ):
            raise ConnectionExists(self.get_connection(connection.connection_id))

    def replace_speaker(
        self, speaker: Connection, user_id: str, expires_at: int
    ) -> Tuple[Session, str, Optional[int]]:
        """Point the session at a new speaker connection and extend ``expiresAt`` in
        one conditional update: only an active session owned by ``user_id``.

        Returns the updated session, the replaced connection id, and when the
        replaced connection was noticed gone (None if it was not; both None when
        a retry found its own lost update applied). Raises SessionNotFound,
        Forbidden or ConnectionExists; on failure nothing remains.
        """
        self.put_connection(speaker)
        try:
            old = self._db.update_if(
                self._sessions,
                {"sessionId": speaker.session_id},
                # Operands read the item as it was: the replaced id moves over.
                "SET previousSpeakerConnectionId = speakerConnectionId, "
                "speakerConnectionId = :c, expiresAt = :e REMOVE speakerDisconnectedAt",
                "#status = :active AND speakerUserId = :u AND speakerConnectionId <> :c",
                names=_STATUS,
                values={
                    ":c": speaker.connection_id,
                    ":e": expires_at,
                    ":active": ACTIVE,
                    ":u": user_id,
                },
                returns="ALL_OLD",
                mine=lambda current: current.get("speakerConnectionId") == speaker.connection_id,
            )
        except errors.ServiceUnavailable:
            self.delete_connection(speaker.connection_id)
            raise
        if old is None:
            self.delete_connection(speaker.connection_id)
            self.active_session(speaker.session_id)
            raise errors.Forbidden("only the speaker who created the session may refresh it")
        previous = Session.from_item(old)
        updated = attrs.evolve(
            previous,
            speaker_connection_id=speaker.connection_id,
            previous_speaker_connection_id=previous.speaker_connection_id,
            expires_at=expires_at,
            speaker_disconnected_at=None,
        )
        if previous.speaker_connection_id == speaker.connection_id:
            return updated, None, None  # our lost first attempt: the old values are gone
        return updated, previous.speaker_connection_id, previous.speaker_disconnected_at

    def restore_speaker(
        self, session_id: str, previous: str, current: str, disconnected_at: Optional[int]
    ) -> bool:
        """Undo :meth:`replace_speaker` if nothing replaced ``current`` since,
        including the grace period it cleared."""
        expression = "SET speakerConnectionId = :previous REMOVE previousSpeakerConnectionId"
        values = {":previous": previous, ":current": current}
        if disconnected_at is not None:
            expression = expression.replace(" REMOVE", ", speakerDisconnectedAt = :gone REMOVE")
            values[":gone"] = disconnected_at
        restored = self._db.update_if(
            self._sessions,
            {"sessionId": session_id},
            expression,
            "speakerConnectionId = :current",
            values=values,
        )
        return restored is not None

    # -- leaving -----------------------------------------------------------------

    def remove_listener(self, listener: Connection) -> bool:
        """Delete the row and decrement the count, once. True if this call did it.

        A row whose place a refresh took over (``replacedBy``) is deleted without
        decrementing: whatever ``listener`` says, the condition reads the row as it
        is now."""
        try:
            self._db.transact(
                dynamo.delete(
                    self._connections,
                    {"connectionId": listener.connection_id},
                    "attribute_exists(connectionId) AND attribute_not_exists(replacedBy)",
                ),
                dynamo.update(
                    self._sessions,
                    {"sessionId": listener.session_id},
                    "ADD listenerCount :minus",
                    # Never below zero, never an Update that recreates a session item
                    # TTL already deleted.
                    "attribute_exists(sessionId) AND listenerCount > :zero",
                    values={":minus": -1, ":zero": 0},
                ),
            )
            return True
        except Cancelled as exc:
            if exc.failed(0):
                # Removed by somebody else first (nothing to do), or replaced by a
                # refresh (the row alone goes; its count belongs to the new one).
                return self._db.delete_if(
                    self._connections, {"connectionId": listener.connection_id},
                    "attribute_exists(replacedBy)",
                ) is not None
            # The session item is gone (or already at zero): the row alone goes.
            return self.delete_connection(listener.connection_id) is not None

    def delete_connection(self, connection_id: str) -> Optional[Connection]:
        """Delete a row that carries no count (speakers); returns what was deleted."""
        old = self._db.delete_if(
            self._connections, {"connectionId": connection_id}, returns="ALL_OLD"
        )
        return Connection.from_item(old) if old else None

    # -- broadcast ---------------------------------------------------------------

    def next_sequence_numbers(self, session_id: str, languages) -> dict:
        """Atomically advance the per-language sequence counters of an active session
        by one each; returns {language: new number}. Raises SessionNotFound."""
        languages = sorted(set(languages))
        if not languages:
            return {}
        names = dict(_STATUS)
        clauses = []
        for i, language in enumerate(languages):
            names[f"#l{i}"] = language
            clauses.append(
                f"sequenceNumbers.#l{i} = if_not_exists(sequenceNumbers.#l{i}, :zero) + :one"
            )
        # lastPublish makes a retried advance recognisable: without it, a retry after
        # a lost response would skip a number in every language.
        publish_id = uuid.uuid4().hex
        clauses.append("lastPublish = :pid")
        item = self._db.update_if(
            self._sessions,
            {"sessionId": session_id},
            "SET " + ", ".join(clauses),
            "#status = :active AND (attribute_not_exists(lastPublish) OR lastPublish <> :pid)",
            names=names,
            values={":active": ACTIVE, ":one": 1, ":zero": 0, ":pid": publish_id},
            returns="UPDATED_NEW",
            mine=lambda current: current.get("lastPublish") == publish_id,
        )
        if item is None:
            raise errors.SessionNotFound()
        numbers = item.get("sequenceNumbers", {})
        return {language: int(numbers[language]) for language in languages}

    def update_broadcast_state(
        self, session_id: str, speaker_connection_id: str, changes: dict, now_ms: int
    ) -> Session:
        """Set fields of an active session's broadcastState, if ``speaker_connection_id``
        is its current speaker; returns the session. Raises SessionNotFound or
        ConnectionReplaced."""
        names = dict(_STATUS)
        values = {":active": ACTIVE, ":now": now_ms, ":me": speaker_connection_id}
        clauses = ["broadcastState.lastStateChange = :now"]
        for i, (field, value) in enumerate(sorted(changes.items())):
            names[f"#f{i}"] = field
            values[f":v{i}"] = value
            clauses.append(f"broadcastState.#f{i} = :v{i}")
        item = self._db.update_if(
            self._sessions,
            {"sessionId": session_id},
            "SET " + ", ".join(clauses),
            "#status = :active AND speakerConnectionId = :me",
            names=names,
            values=values,
            returns="ALL_NEW",
        )
        if item is None:
            self.current_speaker_session(session_id, speaker_connection_id)
        return Session.from_item(item)

    def forget_previous_speaker(self, session_id: str, connection_id: str) -> None:
        """The replaced speaker connection's row is gone: stop tracking it."""
        self._db.update_if(
            self._sessions, {"sessionId": session_id}, "REMOVE previousSpeakerConnectionId",
            "previousSpeakerConnectionId = :c", values={":c": connection_id},
        )

    def current_speaker_session(self, session_id: str, speaker_connection_id: str) -> Session:
        """The active session, if ``speaker_connection_id`` is its current speaker.
        Raises SessionNotFound, or ConnectionReplaced for a speaker connection a
        refresh replaced."""
        session = self.active_session(session_id)
        if session.speaker_connection_id != speaker_connection_id:
            raise errors.ConnectionReplaced()
        return session

    def change_language(self, connection_id: str, language: str) -> Optional[Connection]:
        """Move a listener to another language in place (the index key is updated
        with the item); returns the row as it was, or None if it is gone."""
        item = self._db.update_if(
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
        # A claim is its time plus a random fraction of a millisecond: unique, so a
        # retried claim whose first attempt applied recognises itself, and two
        # claimers in the same millisecond do not.
        stamp = Decimal(now_ms) + Decimal(secrets.randbelow(10**6)) / 10**6
        claimed = self._db.update_if(
            self._connections,
            {"connectionId": connection_id},
            "SET #notice = :now",
            "attribute_exists(connectionId) AND attribute_not_exists(#notice)",
            names={"#notice": attribute},
            values={":now": stamp},
            mine=lambda current: current.get(attribute) == stamp,
        )
        return claimed is not None

    def release_notice(self, connection_id: str, attribute: str) -> None:
        """Undo :meth:`claim_notice` after a failed send, so a later try sends it."""
        self._db.update_if(
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
        item = self._db.update_if(
            self._sessions,
            {"sessionId": session_id},
            "SET speakerDisconnectedAt = :now",
            "#status = :active AND speakerConnectionId = :c "
            "AND attribute_not_exists(speakerDisconnectedAt)",
            names=_STATUS,
            values={":now": now_ms, ":active": ACTIVE, ":c": connection_id},
            returns="ALL_NEW",
            mine=lambda current: current.get("speakerDisconnectedAt") == now_ms
            and current.get("speakerConnectionId") == connection_id,
        )
        return Session.from_item(item) if item is not None else None

    def touch(self, connection_id: str, now_ms: int) -> Optional[Connection]:
        """Record activity; returns the updated row, or None if it does not exist."""
        item = self._db.update_if(
            self._connections,
            {"connectionId": connection_id},
            "SET lastSeenAt = :now",
            "attribute_exists(connectionId)",
            values={":now": now_ms},
            returns="ALL_NEW",
        )
        return Connection.from_item(item) if item is not None else None
