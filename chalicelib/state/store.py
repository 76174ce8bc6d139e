"""Sessions and connections in DynamoDB: the only code that knows their tables.

Every write that can race is a conditional write or a transaction: ids are claimed
with ``attribute_not_exists``, a join is one transaction that checks capacity and
counts, a leave is one transaction that can neither drive ``listenerCount`` below
zero nor recreate a session item that an end or TTL already removed. Reads decide
nothing that a write's condition does not check again.

Conditions become domain outcomes here (None, False, or a
:class:`~chalicelib.errors.BroadcastError`); the toolkit in
:mod:`chalicelib.state.dynamo` turns every other failure into a 503.
"""

from __future__ import annotations

import logging
import secrets
import uuid
from decimal import Decimal
from typing import Dict, Iterable, Iterator, Optional, Tuple

import attrs

from chalicelib import errors
from chalicelib.state import dynamo
from chalicelib.state.dynamo import Cancelled, Dynamo
from chalicelib.state.records import (
    ACTIVE,
    ENDED,
    LISTENER,
    Connection,
    Session,
    SweepEntry,
)
from chalicelib.state.schema import CONNECTIONS_MEMBERS_INDEX, SESSIONS_SWEEP_INDEX, SPEAKER_MEMBER

logger = logging.getLogger(__name__)

_STATUS = {"#status": "status"}
# Counting a listener in or out also moves the roster version (see Session).
_ROSTER_CHANGE = "rosterVersion :one SET rosterChangedAt = :rosterNow"


class SessionIdTaken(Exception):
    """The candidate session id already exists; try the next one."""


class ConnectionExists(Exception):
    """A row for this connection id exists already (a duplicate ``$connect``)."""

    def __init__(self, existing: Optional[Connection]) -> None:
        super().__init__("connection exists")
        self.existing = existing


class ExtraConditionFailed(Exception):
    """The condition of an item the caller added to a transaction failed."""


class Store:
    def __init__(self, client, config) -> None:
        self._db = Dynamo(client)
        self._sessions = config.sessions_table
        self._connections = config.connections_table

    # -- reads -------------------------------------------------------------------

    def get_session(self, session_id: str, consistent: bool = True) -> Optional[Session]:
        item = self._db.get(self._sessions, {"sessionId": session_id}, consistent)
        return Session.from_item(item) if item else None

    def active_session(self, session_id: str, message: str = "", consistent: bool = True) -> Session:
        """The session if it is active; raises SessionNotFound otherwise."""
        session = self.get_session(session_id, consistent)
        if session is None or not session.is_active:
            raise errors.SessionNotFound(message)
        return session

    def current_speaker_session(self, session_id: str, speaker_connection_id: str) -> Session:
        """The active session, if ``speaker_connection_id`` is its current speaker.
        Raises SessionNotFound, or ConnectionReplaced for a speaker connection a
        refresh replaced."""
        session = self.active_session(session_id)
        if session.speaker_connection_id != speaker_connection_id:
            raise errors.ConnectionReplaced()
        return session

    def get_connection(self, connection_id: str) -> Optional[Connection]:
        item = self._db.get(self._connections, {"connectionId": connection_id})
        return Connection.from_item(item) if item else None

    def read_with(self, session_id: str, table: str, key: dict) -> Tuple[Optional[Session], Optional[dict]]:
        """The session and one item of another table (a rate-limit counter), in one
        strongly consistent BatchGetItem."""
        found = self._db.batch_get({self._sessions: [{"sessionId": session_id}], table: [key]})
        sessions = found[self._sessions]
        others = found[table]
        return (Session.from_item(sessions[0]) if sessions else None,
                others[0] if others else None)

    def members(self, session_id: str) -> Iterator[Connection]:
        """Every connection of a session, speakers' included, in one query (paged)."""
        return self._members(session_id, "sessionId = :s", {":s": session_id})

    def listeners(
        self, session_id: str, target_language: Optional[str] = None
    ) -> Iterator[Connection]:
        """Listeners of a session (optionally of one language), via the members index,
        page by page; never a scan."""
        if target_language is not None:
            return self._members(session_id, "sessionId = :s AND #m = :l",
                                 {":s": session_id, ":l": target_language})
        # SPEAKER_MEMBER sorts after every language code.
        return self._members(session_id, "sessionId = :s AND #m < :speaker",
                             {":s": session_id, ":speaker": SPEAKER_MEMBER})

    def _members(self, session_id, condition, values) -> Iterator[Connection]:
        names = {"#m": "member"} if "#m" in condition else None
        for item in self._db.query(
            self._connections, condition, values, index=CONNECTIONS_MEMBERS_INDEX, names=names
        ):
            yield Connection.from_item(item)

    def sweep_entries(self, shard: int) -> Iterator[SweepEntry]:
        """The sessions of one sweep shard (active ones, and ended ones whose
        connections are not all released yet), page by page."""
        for item in self._db.query(
            self._sessions, "sweepShard = :shard", {":shard": shard}, index=SESSIONS_SWEEP_INDEX
        ):
            yield SweepEntry.from_item(item)

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
        with ``only_if_expired``, a refresh extended it meanwhile). It stays in the
        sweep index until its connections are released (:meth:`unlist`)."""
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

    def unlist(self, session_id: str) -> None:
        """An ended session whose connections are all released leaves the sweep index."""
        self._db.update_if(
            self._sessions, {"sessionId": session_id}, "REMOVE sweepShard",
            "#status = :ended", names=_STATUS, values={":ended": ENDED},
        )

    # -- joining -----------------------------------------------------------------

    def _put_new_connection(self, connection: Connection) -> dict:
        return dynamo.put(
            self._connections, connection.to_item(), "attribute_not_exists(connectionId)"
        )

    def _count_in(self, listener: Connection, capacity_limit: Optional[int]) -> dict:
        """The transaction item that counts a listener in: only into an active,
        unexpired session below ``capacity_limit`` (an expired session admits nobody,
        even before the sweep marks it ended)."""
        condition = "#status = :active AND expiresAt > :now"
        values = {":active": ACTIVE, ":one": 1, ":now": listener.connected_at // 1000,
                  ":rosterNow": listener.connected_at}
        if capacity_limit is not None:
            condition += " AND listenerCount < :limit"
            values[":limit"] = capacity_limit
        return dynamo.update(
            self._sessions, {"sessionId": listener.session_id},
            "ADD listenerCount :one, " + _ROSTER_CHANGE, condition,
            names=_STATUS, values=values,
        )

    def add_listener(self, listener: Connection, capacity_limit: Optional[int],
                     *extra: dict) -> None:
        """Put the listener's row and count it, in one transaction (with ``extra``
        items of the caller's, a rate-limit count say).

        ``capacity_limit`` is the count the session must be *below* (None: no limit).
        Raises SessionNotFound, SessionFull, ConnectionExists, or
        ExtraConditionFailed when an extra item's condition failed.
        """
        try:
            self._db.transact(
                self._put_new_connection(listener),
                self._count_in(listener, capacity_limit),
                *extra,
            )
        except Cancelled as exc:
            if exc.failed(0):
                raise ConnectionExists(self.get_connection(listener.connection_id)) from None
            if not exc.failed(1):
                raise ExtraConditionFailed() from None
            session = self.get_session(listener.session_id)
            now_seconds = listener.connected_at // 1000
            if session is None or not session.is_active or session.expires_at <= now_seconds:
                raise errors.SessionNotFound() from None
            raise errors.SessionFull() from None

    def take_over_listener(self, listener: Connection, previous_id: str) -> bool:
        """A listener refresh: put the new row and mark ``previous_id`` as replaced by
        it, in one transaction, without changing the count (the new connection takes
        the old one's place). Only a listener row of the same active session that is
        not already replaced can be named, so each place is taken over once.

        False when ``previous_id`` cannot be taken over (the caller then admits the
        refresh like a join). Raises ConnectionExists or SessionNotFound."""
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
                dynamo.update(
                    self._sessions,
                    {"sessionId": listener.session_id},
                    "ADD " + _ROSTER_CHANGE,
                    "#status = :active AND expiresAt > :now",
                    names=_STATUS,
                    values={":active": ACTIVE, ":now": listener.connected_at // 1000, ":one": 1,
                            ":rosterNow": listener.connected_at},
                ),
            )
        except Cancelled as exc:
            if exc.failed(0):
                raise ConnectionExists(self.get_connection(listener.connection_id)) from None
            if exc.failed(2):
                raise errors.SessionNotFound() from None
            return False
        return True

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
    ) -> Tuple[Session, Optional[str], Optional[int]]:
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
                "SET previousSpeakerConnectionId = speakerConnectionId, speakerReplacedAt = :now, "
                "speakerConnectionId = :c, expiresAt = :e REMOVE speakerDisconnectedAt",
                "#status = :active AND speakerUserId = :u AND speakerConnectionId <> :c",
                names=_STATUS,
                values={
                    ":c": speaker.connection_id,
                    ":e": expires_at,
                    ":active": ACTIVE,
                    ":u": user_id,
                    ":now": speaker.connected_at,
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
            speaker_replaced_at=speaker.connected_at,
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
        expression = "SET speakerConnectionId = :previous"
        values = {":previous": previous, ":current": current}
        if disconnected_at is not None:
            expression += ", speakerDisconnectedAt = :gone"
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

    def remove_listener(self, listener: Connection, now_ms: int) -> bool:
        """Delete the row and count the listener out, once. True if this call
        counted it out.

        A row whose place a refresh took over (``replacedBy``) is deleted without
        counting out: whatever ``listener`` says, the condition reads the row as it
        is now. A listener of an ended session is not counted out either: the
        session's release counts its listeners (and the ``$disconnect`` its closes
        cause would otherwise count the same listener a second time)."""
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
                    "ADD listenerCount :minus, " + _ROSTER_CHANGE,
                    # Never below zero, never an Update that recreates a session item
                    # TTL already deleted; an ended session's count is nobody's.
                    "attribute_exists(sessionId) AND listenerCount > :zero AND #status = :active",
                    names=_STATUS,
                    values={":minus": -1, ":zero": 0, ":one": 1, ":rosterNow": now_ms,
                            ":active": ACTIVE},
                ),
            )
            return True
        except Cancelled as exc:
            if exc.failed(0):
                # Removed by somebody else first (nothing to do), or replaced by a
                # refresh (the row alone goes; its count belongs to the new one).
                self._db.delete_if(
                    self._connections, {"connectionId": listener.connection_id},
                    "attribute_exists(replacedBy)",
                )
                return False
            # The session is gone, ended, or already at zero: the row alone goes.
            self.delete_connection(listener.connection_id)
            return False

    def delete_connection(self, connection_id: str) -> Optional[Connection]:
        """Delete a row that carries no count (speakers); returns what was deleted."""
        old = self._db.delete_if(
            self._connections, {"connectionId": connection_id}, returns="ALL_OLD"
        )
        return Connection.from_item(old) if old else None

    def delete_connections(self, connection_ids: Iterable[str]) -> int:
        """Delete rows in batches of 25, uncounted (an ended session's); returns the
        number of calls made."""
        return self._db.batch_delete(
            self._connections, ({"connectionId": cid} for cid in connection_ids)
        )

    # -- broadcast ---------------------------------------------------------------

    def advance(
        self,
        session_id: str,
        languages: Iterable[str],
        now_ms: int,
        *,
        state_changes: Optional[Dict[str, object]] = None,
        speaker_connection_id: Optional[str] = None,
    ) -> Tuple[Session, Dict[str, int]]:
        """In one UpdateItem on an active session: advance the sequence counters of
        ``languages`` by one each and, for a speaker control, set ``state_changes`` in
        its broadcastState (only if ``speaker_connection_id`` is its current speaker).

        Returns the session as updated (its roster version tells the publisher whether
        a listing of the listeners it holds is still good) and {language: number}.
        Raises SessionNotFound, or ConnectionReplaced.
        """
        languages = sorted(set(languages))
        names = dict(_STATUS)
        values = {":active": ACTIVE, ":one": 1, ":zero": 0}
        clauses = []
        for i, language in enumerate(languages):
            names[f"#l{i}"] = language
            clauses.append(
                f"sequenceNumbers.#l{i} = if_not_exists(sequenceNumbers.#l{i}, :zero) + :one"
            )
        condition = "#status = :active"
        if state_changes:
            values[":now"] = now_ms
            clauses.append("broadcastState.lastStateChange = :now")
            for i, (field, value) in enumerate(sorted(state_changes.items())):
                names[f"#f{i}"] = field
                values[f":v{i}"] = value
                clauses.append(f"broadcastState.#f{i} = :v{i}")
        if speaker_connection_id is not None:
            condition += " AND speakerConnectionId = :me"
            values[":me"] = speaker_connection_id
        # lastPublish makes a retried advance recognisable: without it, a retry after
        # a lost response would skip a number in every language.
        publish_id = uuid.uuid4().hex
        clauses.append("lastPublish = :pid")
        values[":pid"] = publish_id
        item = self._db.update_if(
            self._sessions,
            {"sessionId": session_id},
            "SET " + ", ".join(clauses),
            condition + " AND (attribute_not_exists(lastPublish) OR lastPublish <> :pid)",
            names=names,
            values=values,
            returns="ALL_NEW",
            mine=lambda current: current.get("lastPublish") == publish_id,
        )
        if item is None:
            if speaker_connection_id is not None:
                self.current_speaker_session(session_id, speaker_connection_id)
            raise errors.SessionNotFound()
        session = Session.from_item(item)
        return session, {language: session.sequence_numbers[language] for language in languages}

    def change_language(self, listener: Connection, language: str, now_ms: int) -> None:
        """Move a listener to another language in place (its index keys with it), and
        move the roster version, in one transaction. Raises SessionNotFound when the
        row is gone, ConnectionReplaced when a refresh took its place."""
        try:
            self._db.transact(
                dynamo.update(
                    self._connections,
                    {"connectionId": listener.connection_id},
                    "SET targetLanguage = :l, #m = :l",
                    "attribute_exists(connectionId) AND #role = :listener "
                    "AND attribute_not_exists(replacedBy)",
                    names={"#role": "role", "#m": "member"},
                    values={":l": language, ":listener": LISTENER},
                ),
                dynamo.update(
                    self._sessions, {"sessionId": listener.session_id},
                    "ADD " + _ROSTER_CHANGE, "attribute_exists(sessionId)",
                    values={":one": 1, ":rosterNow": now_ms},
                ),
            )
        except Cancelled as exc:
            current = self.get_connection(listener.connection_id) if exc.failed(0) else None
            if current is not None and current.replaced_by:
                raise errors.ConnectionReplaced() from None
            raise errors.SessionNotFound("this connection is not part of an active session") from None

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

