"""The scheduled sweep: makes the state heal itself.

Runs every minute in AWS (and every few seconds in the local stack). It walks the
active sessions through the status index and each session's listeners through the
session index (no table scans), and:

- ends sessions that reached ``expiresAt`` (before TTL removes them), telling everyone;
- ends sessions whose speaker connection is gone without a ``$disconnect`` once
  SPEAKER_RECONNECT_GRACE_SECONDS have passed;
- closes silent or too-old connections and sends the one-time notices, by the
  rules of :mod:`chalicelib.liveness`.

Every action is a conditional write shared with the request path, so a sweep racing
a heartbeat, a ``$disconnect`` or another sweep changes things once.
"""

from __future__ import annotations

import logging
import random
import time
from typing import Callable, Optional

import attrs

from chalicelib import liveness
from chalicelib.connections_api import ConnectionsApi, DeliveryFailed
from chalicelib.departures import EXPIRED, SPEAKER_DISCONNECTED, Departures
from chalicelib.keepalive import KeepAlive
from chalicelib.state.records import Session
from chalicelib.state.store import Store

logger = logging.getLogger(__name__)


# How long ended sessions are re-checked for listeners a release missed (an index
# read that lagged behind a join, a failed close, a Lambda that died midway).
RELEASE_RECHECK_MS = 10 * 60 * 1000
_SPEAKER_PRESENT, _SPEAKER_ABSENT, _SPEAKER_GONE = "present", "absent", "gone"
# Stop starting new sessions this long before the Lambda's own timeout.
_TIME_RESERVE_SECONDS = 5


@attrs.define
class SweepReport:
    sessions: int = 0
    ended: int = 0
    closed: int = 0
    notices: int = 0
    released: int = 0
    skipped: int = 0  # left for the next sweep: out of time

    def to_dict(self) -> dict:
        return attrs.asdict(self)


class Sweeper:
    def __init__(
        self,
        *,
        config,
        store: Store,
        departures: Departures,
        keepalive: KeepAlive,
        api: ConnectionsApi,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._config = config
        self._store = store
        self._departures = departures
        self._keepalive = keepalive
        self._api = api
        self._clock = clock

    def sweep(self, seconds_left: Optional[Callable[[], float]] = None) -> SweepReport:
        """One pass. ``seconds_left`` (the Lambda context's remaining time) lets a
        long pass stop in time; the order is shuffled so that no session is always
        the one left for next time."""
        report = SweepReport()
        sessions = list(self._store.active_sessions())
        random.shuffle(sessions)
        for session in sessions:
            if seconds_left is not None and seconds_left() < _TIME_RESERVE_SECONDS:
                report.skipped += 1
                continue
            report.sessions += 1
            try:
                self._sweep_session(session, report)
            except Exception:  # one bad session must not stop the sweep
                logger.exception("sweeping %s failed", session.session_id)
        since = int(self._clock() * 1000) - RELEASE_RECHECK_MS
        for session in self._store.recently_ended_sessions(since):
            if seconds_left is not None and seconds_left() < _TIME_RESERVE_SECONDS:
                break
            try:
                result = self._departures.release_listeners(
                    session.session_id, session.ended_reason or "ended", self._api
                )
                report.released += result.delivered + result.gone
            except Exception:
                logger.exception("releasing %s failed", session.session_id)
        acted = report.ended or report.closed or report.notices or report.released
        logger.log(logging.INFO if acted else logging.DEBUG, "sweep: %s", report.to_dict())
        return report

    def _sweep_session(self, session: Session, report: SweepReport) -> None:
        now = self._clock()
        if session.expires_at <= now:
            if self._departures.end_session(session.session_id, EXPIRED, self._api):
                report.ended += 1
            return
        speaker = self._store.get_connection(session.speaker_connection_id)
        verdict = self._check_speaker(session, speaker, now)
        if verdict == _SPEAKER_GONE:
            if self._departures.end_session(
                session.session_id,
                SPEAKER_DISCONNECTED,
                self._api,
                only_if_speaker=session.speaker_connection_id,
            ):
                report.ended += 1
            return
        connections = list(self._store.listeners(session.session_id))
        if verdict == _SPEAKER_PRESENT:
            connections.append(speaker)
        for connection in connections:
            self._judge(connection, now, report)
        if session.previous_speaker_connection_id:
            self._sweep_previous_speaker(session, now, report)

    def _sweep_previous_speaker(self, session: Session, now: float, report: SweepReport) -> None:
        """A replaced speaker connection is judged like any other (silent: closed and
        removed) until its row is gone; then the session stops tracking it."""
        previous_id = session.previous_speaker_connection_id
        previous = self._store.get_connection(previous_id)
        if previous is None or self._judge(previous, now, report):
            self._store.forget_previous_speaker(session.session_id, previous_id)

    def _check_speaker(self, session: Session, speaker, now: float) -> str:
        """Present, absent (within its reconnect grace), or gone for good."""
        grace = self._config.speaker_reconnect_grace_seconds
        if session.speaker_disconnected_at is not None:
            waited = now * 1000 - session.speaker_disconnected_at >= grace * 1000
            return _SPEAKER_GONE if waited else _SPEAKER_ABSENT
        speaker_id = session.speaker_connection_id
        if speaker is not None and liveness.may_be_connecting(speaker, int(now * 1000), self._config):
            # API Gateway answers 410 for a connection still inside its $connect:
            # that is not a speaker gone.
            return _SPEAKER_PRESENT
        try:
            present = speaker is not None and self._api.exists(speaker_id)
        except DeliveryFailed as exc:
            logger.warning("probing speaker %s failed: %s", speaker_id, exc)
            return _SPEAKER_PRESENT if speaker is not None else _SPEAKER_ABSENT
        if present:
            return _SPEAKER_PRESENT
        # Gone without a $disconnect (lost event): from now on it is a disconnect.
        if grace <= 0:
            if speaker is not None:
                self._store.delete_connection(speaker_id)
            return _SPEAKER_GONE
        if speaker is not None:
            self._departures.connection_left(speaker, self._api)  # starts the grace
        else:
            self._store.mark_speaker_disconnected(session.session_id, speaker_id, int(now * 1000))
        return _SPEAKER_ABSENT

    def _judge(self, connection, now: float, report: SweepReport) -> bool:
        """Apply the liveness rules to one connection; True if it was closed."""
        verdict = liveness.judge(connection, int(now * 1000), self._config)
        if verdict.close_reason:
            report.closed += 1
            return self._departures.close_connection(connection, verdict.close_reason, self._api)
        if verdict.notices:
            self._keepalive.send_notices(connection, verdict.notices, self._api, now)
            report.notices += len(verdict.notices)
        return False
