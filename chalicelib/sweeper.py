"""The scheduled sweep: makes the state heal itself.

Every minute in AWS (every few seconds in the local stack) ``sweep`` hands one
``sweep_shard`` invocation per shard of the sweep index to Lambda, asynchronously,
so the work per period is split across parallel invocations whatever the number of
sessions (docs/scaling.md). A shard worker walks its sessions, a bounded number at
once, and for each one reads every connection of the session in one query (the
speaker's rows are in the members index too), then decides in memory:

- an expired session is ended (before TTL removes it), telling everyone;
- an ended session whose connections are not all released is released again, then
  leaves the index;
- a speaker connection silent past HEARTBEAT_TIMEOUT_SECONDS (its ``$disconnect``
  was lost) counts as gone: the session ends, or waits out
  SPEAKER_RECONNECT_GRACE_SECONDS; a session with no speaker row at all likewise;
- every other connection gets the liveness rules of :mod:`chalicelib.liveness`
  (silent or too old: closed; the one-time notices when due).

An idle session costs that one query per period, plus its share of the shard's
listing. Every action is a conditional write shared with the request path, so a
sweep racing a heartbeat, a ``$disconnect`` or another sweep changes things once.
"""

from __future__ import annotations

import logging
import random
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, Optional

import attrs

from chalicelib import liveness
from chalicelib.connections_api import ConnectionsApi
from chalicelib.departures import EXPIRED, SPEAKER_DISCONNECTED, Departures
from chalicelib.keepalive import KeepAlive
from chalicelib.observability.telemetry import Metrics, carry_context
from chalicelib.state.records import Connection, SweepEntry
from chalicelib.state.store import Store

logger = logging.getLogger(__name__)

# Stop starting new sessions this long before the Lambda's own timeout.
TIME_RESERVE_SECONDS = 5


@attrs.define
class SweepReport:
    shard: Optional[int] = None
    sessions: int = 0
    ended: int = 0
    closed: int = 0
    notices: int = 0
    released: int = 0
    skipped: int = 0  # left for the next sweep: out of time
    active: int = 0  # sessions found active (and not expired)
    listeners: int = 0  # listener connections of those sessions
    failed: int = 0  # sessions whose sweep failed (logged, counted in Faults)

    def to_dict(self) -> dict:
        return attrs.asdict(self)

    def add(self, other: "SweepReport") -> None:
        for field in ("sessions", "ended", "closed", "notices", "released", "skipped",
                      "active", "listeners", "failed"):
            setattr(self, field, getattr(self, field) + getattr(other, field))


class Sweeper:
    def __init__(
        self,
        *,
        config,
        store: Store,
        departures: Departures,
        keepalive: KeepAlive,
        api: ConnectionsApi,
        metrics: Metrics,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._metrics = metrics
        self._config = config
        self._store = store
        self._departures = departures
        self._keepalive = keepalive
        self._api = api
        self._clock = clock

    # -- the coordinator ----------------------------------------------------------------

    def dispatch(self, invoke: Callable[[int], None]) -> dict:
        """``sweep``: start one worker per shard (``invoke`` hands the shard to Lambda
        asynchronously). A shard that cannot be started is swept next period."""
        started, failed = 0, []
        for shard in range(self._config.sweep_shards):
            try:
                invoke(shard)
                started += 1
            except Exception:
                logger.exception("could not start the sweep of shard %d", shard)
                self._metrics.fault()
                failed.append(shard)
        return {"shards": self._config.sweep_shards, "started": started, "failed": failed}

    # -- a shard worker -----------------------------------------------------------------

    def sweep_shard(self, shard: int, seconds_left: Optional[Callable[[], float]] = None) -> SweepReport:
        """``sweep_shard``: one pass over the shard's sessions, a bounded number at once.
        ``seconds_left`` (the Lambda context's remaining time) lets a long pass stop in
        time; the order is shuffled so that no session is always the one left over."""
        report = SweepReport(shard=shard)
        started = time.monotonic()
        # Counted first, so a run that fails on an error still counts as run (the alarm
        # on missing runs watches the schedule). A run Lambda kills (timeout, memory)
        # prints nothing at all: that one is AWS/Lambda Errors', in sweep_shard's
        # faults alarm.
        self._metrics.add("SweepShardRuns")
        self._metrics.set_property("shard", shard)
        entries = list(self._store.sweep_entries(shard))
        random.shuffle(entries)

        def sweep_one(entry: SweepEntry) -> SweepReport:
            one = SweepReport()
            if seconds_left is not None and seconds_left() < TIME_RESERVE_SECONDS:
                one.skipped = 1
                return one
            one.sessions = 1
            try:
                self._sweep_session(entry, one)
            except Exception:  # one bad session must not stop the sweep
                logger.exception("sweeping a session failed", extra={"sweptSessionId": entry.session_id})
                self._metrics.fault()
                one.failed = 1
            return one

        with ThreadPoolExecutor(max_workers=self._config.sweep_concurrency) as pool:
            for one in pool.map(carry_context(sweep_one), entries):
                report.add(one)
        self._count(report, started)
        acted = report.ended or report.closed or report.notices or report.released
        logger.log(logging.INFO if acted else logging.DEBUG, "sweep: %s", report.to_dict())
        return report

    def _count(self, report: SweepReport, started: float) -> None:
        add = self._metrics.add
        if not report.skipped:
            add("SweepCompleted")
        add("SweepSessions", report.sessions)
        add("SweepSkipped", report.skipped)
        for action in ("ended", "closed", "notices", "released"):
            if getattr(report, action):
                add("SweepActions", getattr(report, action), action)
        add("ActiveSessions", report.active)
        add("ConnectedListeners", report.listeners)
        self._metrics.timing("SweepDuration", started)

    def _sweep_session(self, entry: SweepEntry, report: SweepReport) -> None:
        now = self._clock()
        if not entry.is_active:
            result = self._departures.release(
                entry.session_id, entry.ended_reason or "ended", self._api
            )
            report.released += result.delivered + result.gone
            return
        if entry.expires_at <= now:
            if self._departures.end_session(entry.session_id, EXPIRED, self._api):
                report.ended += 1
            return
        members = list(self._store.members(entry.session_id))
        report.active += 1
        report.listeners += sum(1 for m in members if not m.is_speaker)
        speaker = next((m for m in members if m.connection_id == entry.speaker_connection_id), None)
        if self._speaker_gone(entry, speaker, now):
            if self._departures.end_session(
                entry.session_id, SPEAKER_DISCONNECTED, self._api,
                only_if_speaker=entry.speaker_connection_id,
            ):
                report.ended += 1
            return
        for connection in members:
            if connection is speaker and entry.speaker_disconnected_at is not None:
                continue  # a speaker within its grace is judged by the grace alone
            self._judge(connection, now, report)

    def _speaker_gone(self, entry: SweepEntry, speaker: Optional[Connection], now: float) -> bool:
        """Whether the session has lost its speaker for good: its grace ran out, or
        (without a grace) its row is gone. A silent speaker is closed by the
        liveness rules like any connection, which is a departure as well."""
        grace = self._config.speaker_reconnect_grace_seconds
        if entry.speaker_disconnected_at is not None:
            return now * 1000 - entry.speaker_disconnected_at >= grace * 1000
        if speaker is not None:
            return False
        # The index may lag behind a brand-new speaker row: ask the table itself.
        if self._store.get_connection(entry.speaker_connection_id) is not None:
            return False
        if grace <= 0:
            return True
        self._store.mark_speaker_disconnected(
            entry.session_id, entry.speaker_connection_id, int(now * 1000)
        )
        return False

    def _judge(self, connection: Connection, now: float, report: SweepReport) -> bool:
        """Apply the liveness rules to one connection; True if it was closed."""
        verdict = liveness.judge(connection, int(now * 1000), self._config)
        if verdict.close_reason:
            report.closed += 1
            return self._departures.close_connection(connection, verdict.close_reason, self._api)
        if verdict.notices:
            self._keepalive.send_notices(connection, verdict.notices, self._api, now)
            report.notices += len(verdict.notices)
        return False

