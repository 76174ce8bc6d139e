"""Departures and endings: a connection leaves, a session ends, everyone is told.

However a connection goes (``$disconnect``, a 410 found by any sender, a close of
our own) it ends up in :meth:`Departures.connection_left`; however a session ends
(the speaker leaves or ends it, it expires, its speaker vanished) it ends up in
:meth:`Departures.end_session`. Every step is a conditional write, so running them
twice or concurrently (a ``$disconnect`` racing the sweep) changes things once.

An ended session's connections are released in bulk: told and closed concurrently,
their rows deleted 25 to a call, no count kept (nobody reads an ended session's
count). The session then leaves the sweep index; if anything failed it stays there
and the sweep releases what is left.
"""

from __future__ import annotations

import logging
import time
from typing import Callable, Optional

from chalicelib import errors, liveness
from chalicelib.connections_api import ConnectionsApi, DeliveryFailed
from chalicelib.fanout import FanoutResult, fan_out
from chalicelib.observability.logs import ref
from chalicelib.observability.telemetry import Metrics, annotate
from chalicelib.state.records import Connection, Session
from chalicelib.state.store import Store
from chalicelib.wire import messages

logger = logging.getLogger(__name__)

# Why a session ended, as sent in sessionEnded.reason.
SPEAKER_DISCONNECTED = "speakerDisconnected"
SPEAKER_ENDED = "speakerEnded"
EXPIRED = "expired"


class Departures:
    def __init__(self, *, config, store: Store, metrics: Metrics,
                 clock: Callable[[], float] = time.time) -> None:
        self._metrics = metrics
        self._config = config
        self._store = store
        self._clock = clock

    def _now_ms(self) -> int:
        return int(self._clock() * 1000)

    # -- a connection leaves -----------------------------------------------------------

    def disconnect(self, connection_id: str, api: ConnectionsApi) -> None:
        """``$disconnect``: idempotent; a repeated delivery finds nothing to do."""
        connection = self._store.get_connection(connection_id)
        if connection is not None:
            annotate(session_id=connection.session_id)
            logger.info("disconnected: %s", "speaker" if connection.is_speaker else "listener")
            self.connection_left(connection, api, closed=True)

    def connection_left(self, connection: Connection, api: ConnectionsApi,
                        closed: bool = False) -> None:
        """The socket is gone (``closed``: we know it is), however we learned it. A
        listener is counted out and its speaker told; the session's current speaker
        starts the reconnect grace, or ends the session."""
        if not connection.is_speaker:
            if self._store.remove_listener(connection, self._now_ms()):
                self._metrics.add("ListenersLeft")
                self._tell_speaker_left(connection, api)
            return
        grace = self._config.speaker_reconnect_grace_seconds
        if grace > 0:
            self._store.delete_connection(connection.connection_id)
            session = self._store.mark_speaker_disconnected(
                connection.session_id, connection.connection_id, self._now_ms()
            )
            if session is not None:
                self.tell_listeners(
                    session.session_id,
                    messages.speaker_disconnected(self._clock(), session.session_id, grace),
                    api,
                )
            return
        ended = self.end_session(
            connection.session_id, SPEAKER_DISCONNECTED, api,
            only_if_speaker=connection.connection_id,
            gone=connection.connection_id if closed else None,
        )
        if ended is None:  # a replaced speaker connection: its row alone goes
            self._store.delete_connection(connection.connection_id)

    def _tell_speaker_left(self, listener: Connection, api: ConnectionsApi) -> None:
        """One post to the speaker the listener joined under; only if that one is
        gone (a speaker refresh since), a read of the session finds the current one."""
        notice = messages.listener_presence(self._clock(), listener.session_id,
                                            left=listener.target_language)
        speaker = listener.speaker_connection_id
        try:
            if speaker and api.send(speaker, notice):
                return
            session = self._store.get_session(listener.session_id)
            if session is not None and session.is_active and session.speaker_connection_id != speaker:
                api.send(session.speaker_connection_id, notice)
        except (DeliveryFailed, errors.BroadcastError) as exc:  # the speaker re-syncs later
            logger.warning("presence notice failed: %s", exc)

    def forget(self, connection: Connection, api: ConnectionsApi) -> None:
        """A send found the connection gone (410): clean up as for a disconnect,
        unless the 410 may only mean it is still inside its ``$connect``."""
        if not liveness.may_be_connecting(connection, self._now_ms(), self._config):
            self.connection_left(connection, api, closed=True)

    def close_connection(self, connection: Connection, reason: str, api: ConnectionsApi) -> bool:
        """Close a connection ourselves, saying why first, and clean up at once
        (the ``$disconnect`` that follows finds nothing left to do). False if the
        close failed and the row stays for the next sweep to try again."""
        try:
            api.say_and_close(
                connection.connection_id, messages.connection_closed(self._clock(), reason)
            )
        except DeliveryFailed as exc:
            logger.warning("closing failed: %s", exc, extra={"target": ref(connection.connection_id)})
            return False
        self._metrics.add("ForcedCloses", 1, reason)
        self.connection_left(connection, api, closed=True)
        return True

    # -- a session ends ----------------------------------------------------------------

    def on_end_session(self, connection: Connection, message, api: ConnectionsApi, now: float) -> None:
        """The ``endSession`` action: only the session's current speaker may end it."""
        if not connection.is_speaker:
            raise errors.Forbidden("only the speaker can end the session")
        if self.end_session(
            connection.session_id, SPEAKER_ENDED, api, only_if_speaker=connection.connection_id
        ) is None:
            # Why not: ended already (SessionNotFound), or a refresh replaced this
            # connection (ConnectionReplaced).
            self._store.current_speaker_session(connection.session_id, connection.connection_id)
            raise errors.SessionNotFound("the session has already ended")

    def end_session(
        self,
        session_id: str,
        reason: str,
        api: ConnectionsApi,
        only_if_speaker: Optional[str] = None,
        gone: Optional[str] = None,
    ) -> Optional[Session]:
        """End an active session (once) and tell and release everyone in it (but
        ``gone``, a connection known closed). An ``expired`` end re-checks expiry in
        the write: a refresh may have won."""
        ended = self._store.end_session(
            session_id,
            reason,
            self._now_ms(),
            only_if_speaker=only_if_speaker,
            only_if_expired=reason == EXPIRED,
        )
        if ended is not None:
            self._metrics.add("SessionsEnded", 1, reason)
            logger.info("session ended: %s", reason, extra={"endedSessionId": session_id})
            self.release(session_id, reason, api, gone=gone)
        return ended

    def release(self, session_id: str, reason: str, api: ConnectionsApi,
                gone: Optional[str] = None) -> FanoutResult:
        """Tell every connection of an ended session (listeners and speakers alike)
        that it ended, close them, delete their rows in batches, and take the session
        off the sweep index once nothing failed."""
        members = list(self._store.members(session_id))
        ended = messages.session_ended(self._clock(), session_id, reason)
        told = [m for m in members if m.connection_id != gone]
        result = fan_out(
            api, told, ended,
            concurrency=self._config.publish_concurrency,
            after_send=lambda member: api.close(member.connection_id),
            metrics=self._metrics,
        )
        # A connection a send failed to keeps its row: the sweep tells it later.
        released = [m for m in members if m.connection_id not in result.failed_ids]
        if released:
            self._store.delete_connections([m.connection_id for m in released])
            listeners = sum(1 for m in released if not m.is_speaker)
            if listeners:
                self._metrics.add("ListenersLeft", listeners)
        if not result.failed_ids:
            self._store.unlist(session_id)
        return result

    def tell_listeners(self, session_id: str, message: dict, api: ConnectionsApi) -> FanoutResult:
        """Send to every listener of a session; listeners found gone are cleaned up."""
        return fan_out(
            api,
            self._store.listeners(session_id),
            message,
            concurrency=self._config.publish_concurrency,
            on_gone=lambda listener: self.forget(listener, api),
            metrics=self._metrics,
        )
