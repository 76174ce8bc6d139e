"""The capacity model: measured events x a traffic profile -> load, cost, headroom.

Pure arithmetic (tests/unit/test_capacity_model.py). Everything the stack does is
a linear combination of measured events: each event has a rate (per second, for
all sessions together) from the profile, and carries its measured calls, request
units, invocations, CPU and bytes (:mod:`tools.scaling.measure`). The sweep's cost
per session is the difference of the sweep measured with one idle session and
with none; a fan-out that has to read the listeners' listing again (its container
holds none for this roster version) adds the difference of a publish with and
without that read.

Durations are not measured (moto is not AWS): an invocation lasts our measured CPU
time, stretched by the function's share of a vCPU, plus the assumed latency of each
call it makes in turn; calls made by a pool (fan-out, the sweep) overlap, so their
latency is divided by the pool's size (:data:`tools.scaling.aws.LATENCY_MS`).
"""

from __future__ import annotations

import math
from collections import defaultdict
from typing import Dict, List, Optional, Tuple

import attrs

from tools.scaling import aws
from tools.scaling.measure import LISTING, OLD_INDEX, SWEEP_SESSION, EventCost, Measurements, billed_messages
from tools.scaling.profile import Profile

HOUR = 3600
GB = 1024 ** 3

# How many keys of each class share the load of all sessions (the hot-key divisor).
def _keys(profile: Profile, key_class: str) -> float:
    return {
        "session": profile.sessions,
        "speaker row": profile.sessions,
        "listener row": profile.sessions * profile.listeners,
        "rate key": profile.sessions,  # worst case: each congregation behind one NAT address
        "sweep shard": min(profile.sweep_shards, profile.sessions),
        "status": 1,
    }.get(key_class, profile.sessions)


@attrs.frozen
class Term:
    """``rate`` events per second (all sessions) of the measured ``event``."""

    event: str
    rate: float


@attrs.frozen
class QuotaUse:
    key: str
    quota: aws.Quota
    value: float
    scales_with_sessions: bool = True
    detail: str = ""
    sessions: float = 0  # the profile's, at which ``value`` was computed

    @property
    def use(self) -> float:
        return self.value / self.quota.limit

    @property
    def breaks_at_sessions(self) -> Optional[float]:
        """Sessions at which this quota is reached (None: does not grow with sessions)."""
        if not self.scales_with_sessions or self.value <= 0:
            return None
        return self.sessions / self.use


@attrs.frozen
class Result:
    profile: Profile
    terms: List[Term]
    listing_miss: Dict[str, float]
    functions: Dict[str, dict]  # name -> invocations/s, concurrency, duration_ms, gb_seconds/s
    apigw: Dict[str, float]
    dynamodb: Dict[Tuple[str, str], Dict[str, float]]  # (table, index) -> rru/s, wru/s
    hot_keys: List[dict]  # table, index, class, rru/s, wru/s per key, use
    kinesis: Dict[str, float]
    logs_gb_per_hour: float
    transfer_gb_per_hour: float
    costs: Dict[str, float]  # per hour
    quotas: List[QuotaUse]
    sweep: Dict[str, float]

    @property
    def cost_per_hour(self) -> float:
        return sum(self.costs.values())

    @property
    def cost_per_listener_hour(self) -> float:
        return self.cost_per_hour / self.profile.listener_hours

    @property
    def cost_per_session(self) -> float:
        return self.cost_per_hour / self.profile.sessions * self.profile.session_minutes / 60

    def first_to_break(self, adjustable: Optional[str] = None) -> Optional[QuotaUse]:
        """The quota reached at the fewest sessions (of one adjustability, if given);
        a quota already exceeded whatever the sessions count comes first."""
        candidates = [q for q in self.quotas if adjustable in (None, q.quota.adjustable)]
        def order(q: QuotaUse):
            if q.breaks_at_sessions is None:
                return 0.0 if q.use > 1 else math.inf
            return q.breaks_at_sessions
        ranked = sorted(candidates, key=order)
        return ranked[0] if ranked and order(ranked[0]) < math.inf else None

    def exceeded(self) -> List[QuotaUse]:
        return [q for q in self.quotas if q.use > 1]


# -- rates -------------------------------------------------------------------------------


def refreshes_per_connection(profile: Profile) -> int:
    """Connection refreshes in a session (a connection present from the start)."""
    return int(profile.session_minutes // profile.refresh_minutes)


def terms(profile: Profile, miss: Dict[str, float]) -> List[Term]:
    """Every event's rate, all sessions together, per second."""
    s, n, t = profile.sessions, profile.listeners, profile.session_seconds
    refreshes = refreshes_per_connection(profile)
    churn = profile.churn_per_minute / 60
    translations = s * profile.languages * profile.translations_per_second
    controls = s * profile.controls_per_hour / HOUR
    listener_refreshes = s * n * refreshes / t
    speaker_refreshes = s * refreshes / t
    out = [
        Term("speaker create", s / t),
        Term("speaker leave", s / t),
        Term("join", s * (n / t + churn)),
        Term("listener leave", s * churn),
        Term("listener refresh", listener_refreshes),
        Term("speaker refresh", speaker_refreshes),
        Term("heartbeat (refresh notice)", listener_refreshes + speaker_refreshes),
        Term("heartbeat (listener)", s * n / profile.heartbeat_seconds - listener_refreshes),
        Term("heartbeat (speaker)", s / profile.heartbeat_seconds - speaker_refreshes),
        Term("translation", translations),
        Term("control", controls),
        Term("sweep (no sessions)", 1 / profile.sweep_seconds),
        Term(SWEEP_SESSION, s / profile.sweep_seconds),
        Term(LISTING, translations * miss.get("publish", 1.0) + controls * miss.get("websocket_message", 1.0)),
    ]
    if profile.audio_sink == "kinesis":
        out.append(Term("audio chunk (kinesis)", s * profile.audio_chunks_per_second))
    elif profile.audio_sink == "relay":
        relayed = s * profile.audio_chunks_per_second
        out += [Term("audio chunk (relay)", relayed),
                Term(LISTING, relayed * miss.get("websocket_message", 1.0))]
    return out


def roster_changes_per_session(profile: Profile) -> float:
    """Joins, leaves and takeovers per session per second: each moves the roster
    version, after which a container's listing of the listeners is stale."""
    refreshes = refreshes_per_connection(profile)
    return (profile.listeners / profile.session_seconds + 2 * profile.churn_per_minute / 60
            + profile.listeners * refreshes / profile.session_seconds)


def listing_miss_rate(*, publishes_per_session: float, roster_changes_per_session: float,
                      containers: float, total_publishes: float, cache_sessions: int = 1024,
                      settle_seconds: float = 1.0) -> float:
    """Share of fan-outs that must read the listeners again (publisher.ListenerListings).

    A container keeps a listing until the roster version moves (mean epoch
    ``1/roster changes``) or 1,024 other sessions push it out (after ``horizon``
    seconds at its share of the publishes). Lambda routes each invocation to any
    warm container, so a publish finds a listing only if one of the session's
    earlier publishes of the same epoch, still cached, ran in the same container:
    with ``m`` such publishes among ``containers``, 1 - (1 - 1/containers)**m. The
    first publish of an epoch, and any within ``settle_seconds`` of a change, always
    read."""
    if publishes_per_session <= 0:
        return 0.0
    epoch = 1 / roster_changes_per_session if roster_changes_per_session > 0 else math.inf
    containers = max(1.0, containers)
    per_container = total_publishes / containers
    horizon = cache_sessions / per_container if per_container > 0 else math.inf
    window = max(0.0, min(epoch, horizon) - settle_seconds)
    earlier = publishes_per_session * window / 2  # on average, half the window lies behind
    hit = 1 - (1 - 1 / containers) ** earlier if containers > 1 else (1.0 if earlier >= 1 else 0.0)
    first = 1 / (1 + publishes_per_session * window) if math.isfinite(window) else 0.0
    return min(1.0, max(1 - hit, first))


# -- per-event arithmetic ----------------------------------------------------------------


def durations_ms(event: EventCost, profile: Profile, client_cpu_ms: float,
                 latency: Dict[str, float]) -> Dict[str, float]:
    """Total duration (ms) of each function's invocations in one event."""
    scale = max(1.0, aws.FULL_VCPU_MB / profile.memory_mb)
    out = {}
    for function in set(event.cpu_ms) | set(event.calls):
        where = event.calls.get(function, {})
        stubbed = sum(n for ops in where.values() for op, n in ops.items()
                      if op.startswith("apigatewaymanagementapi.") or op == "lambda.Invoke")
        cpu = event.cpu_ms.get(function, 0.0) + client_cpu_ms * stubbed
        main = sum(n * latency.get(op, 0.0) for op, n in where.get("main", {}).items())
        pool_size = profile.sweep_concurrency if function == "sweep_shard" else profile.publish_concurrency
        pool = sum(n * latency.get(op, 0.0) for op, n in where.get("pool", {}).items()) / pool_size
        out[function] = cpu * scale + main + pool
    return out


# -- the model ---------------------------------------------------------------------------


def run(profile: Profile, measured: Measurements, latency: Dict[str, float] = None) -> Result:
    """The model: first with every listing reused, then with the miss rates the
    resulting number of containers implies."""
    latency = {**aws.LATENCY_MS, **(latency or {})}
    first = _run(profile, measured, latency, {})
    miss = {}
    publishes = profile.languages * profile.translations_per_second
    for function, rate in (("publish", publishes),
                           ("websocket_message", profile.controls_per_hour / HOUR
                            + (profile.audio_chunks_per_second if profile.audio_sink == "relay" else 0))):
        miss[function] = listing_miss_rate(
            publishes_per_session=rate, roster_changes_per_session=roster_changes_per_session(profile),
            containers=first.functions.get(function, {}).get("concurrency", 1.0),
            total_publishes=rate * profile.sessions)
    return _run(profile, measured, latency, miss)


def _run(profile: Profile, measured: Measurements, latency: Dict[str, float], miss) -> Result:
    rates = terms(profile, miss)
    functions: Dict[str, dict] = defaultdict(lambda: defaultdict(float))
    apigw: Dict[str, float] = defaultdict(float)
    tables: Dict[Tuple[str, str], Dict[str, float]] = defaultdict(lambda: defaultdict(float))
    keys: Dict[Tuple[str, str, str], Dict[str, float]] = defaultdict(lambda: defaultdict(float))
    kinesis: Dict[str, float] = defaultdict(float)
    transfer_bytes = 0.0
    for term in rates:
        event = measured[term.event]
        r = term.rate
        for function, n in event.invocations.items():
            functions[function]["invocations"] += r * n
        for function, ms in durations_ms(event, profile, measured.client_cpu_ms, latency).items():
            functions[function]["concurrency"] += r * ms / 1000
            # Lambda bills each invocation's duration rounded up to the millisecond.
            n = event.invocations.get(function, 0)
            billed = n * math.ceil(ms / n) if n else ms
            functions[function]["billed_seconds"] += r * billed / 1000
        apigw["received"] += r * len(event.received)
        apigw["received_billed"] += r * billed_messages(event.received) if event.received else 0
        apigw["posts"] += r * len(event.posts)
        apigw["posts_billed"] += r * billed_messages(event.posts) if event.posts else 0
        apigw["connects"] += r * event.invocations.get("websocket_connect", 0)
        apigw["callbacks"] += r * sum(n for where in event.calls.values() for ops in where.values()
                                      for op, n in ops.items() if op.startswith("apigatewaymanagementapi."))
        transfer_bytes += r * sum(event.posts)
        kinesis["records"] += r * len(event.records)
        kinesis["bytes"] += r * sum(event.records)
        kinesis["billed_kb"] += r * sum(math.ceil(b / 1024) for b in event.records)
        for table, index, kind, key_class, units in event.units:
            tables[(table, index)][kind] += r * units
            keys[(table, index, key_class)][kind] += r * units
    for function in functions.values():
        function["duration_ms"] = (function["concurrency"] / function["invocations"] * 1000
                                   if function["invocations"] else 0.0)
        function["gb_seconds"] = function["billed_seconds"] * profile.memory_mb / 1024
    apigw["account_rps"] = apigw["received"] + apigw["connects"] + apigw["callbacks"]
    apigw["connection_minutes_per_hour"] = profile.sessions * (profile.listeners + 1) * 60
    hot = []
    for (table, index, key_class), units in keys.items():
        n = _keys(profile, key_class)
        rru, wru = units["rru"] / n, units["wru"] / n
        hot.append({"table": table, "index": index, "class": key_class, "rru": rru, "wru": wru,
                    "use": rru / 3000 + wru / 1000})
    hot.sort(key=lambda h: -h["use"])
    invocations = sum(f["invocations"] for f in functions.values())
    logs = (invocations * aws.LAMBDA_LOG_BYTES
            + (apigw["received"] + 2 * apigw["connects"]) * aws.ACCESS_LOG_BYTES) * HOUR / GB
    real = {k: v for k, v in tables.items() if k[1] != OLD_INDEX}
    costs = _costs(profile, functions, apigw, real, kinesis, logs, transfer_bytes * HOUR / GB)
    sweep = _sweep(profile, measured, latency)
    result = Result(
        profile=profile, terms=rates, listing_miss=dict(miss),
        functions={k: dict(v) for k, v in functions.items()}, apigw=dict(apigw),
        dynamodb={k: dict(v) for k, v in tables.items()}, hot_keys=hot, kinesis=dict(kinesis),
        logs_gb_per_hour=logs, transfer_gb_per_hour=transfer_bytes * HOUR / GB, costs=costs,
        quotas=[], sweep=sweep,
    )
    return attrs.evolve(result, quotas=_quotas(result))


def _costs(profile, functions, apigw, tables, kinesis, logs_gb, transfer_gb) -> Dict[str, float]:
    p = {k: v.value for k, v in aws.PRICES.items()}
    lambda_cost = sum(f["invocations"] * p["lambda_request"] + f["gb_seconds"] * p["lambda_gb_second"]
                      for f in functions.values()) * HOUR
    costs = {
        "API Gateway messages": (apigw["received_billed"] + apigw["posts_billed"]) * HOUR * p["apigw_message"],
        "API Gateway connection minutes": apigw["connection_minutes_per_hour"] * p["apigw_connection_minute"],
        "Lambda": lambda_cost,
        "DynamoDB": sum(t.get("rru", 0) * p["dynamodb_rru"] + t.get("wru", 0) * p["dynamodb_wru"]
                        for t in tables.values()) * HOUR,
        "CloudWatch Logs": logs_gb * p["logs_gb"],
        "Data transfer out": transfer_gb * p["transfer_out_gb"],
    }
    if kinesis.get("records"):
        costs["Kinesis"] = kinesis["billed_kb"] * 1024 * HOUR / GB * p["kinesis_gb_in"] + p["kinesis_stream_hour"]
    return costs


def _sweep(profile: Profile, measured: Measurements, latency) -> Dict[str, float]:
    """One shard worker's run at this profile, and the calls per idle session."""
    empty, per_session = measured["sweep (no sessions)"], measured[SWEEP_SESSION]
    base = durations_ms(empty, profile, measured.client_cpu_ms, latency).get("sweep_shard", 0.0)
    session_ms = durations_ms(per_session, profile, measured.client_cpu_ms, latency).get("sweep_shard", 0.0)
    shards = profile.sweep_shards
    return {
        "per_session_ms": session_ms,
        "per_shard_base_ms": base / shards,
        "shard_run_seconds": (base / shards + session_ms * profile.sessions / shards) / 1000,
        "calls_per_session": per_session.total_calls,
        "calls_per_period": empty.total_calls + 1,  # + the scheduled sweep invocation itself
        "rru_per_session": per_session.unit_total("rru"),
    }


SWEEP_TIME_QUOTA = aws.Quota(
    "sweep_shard run within its period (60 s schedule; 50 s timeout, stops 5 s early)", 45.0,
    "seconds per run", "project", "chalicelib/sweeper.py, .chalice/config.json")


def _quotas(result: Result) -> List[QuotaUse]:
    profile, q, s = result.profile, aws.QUOTAS, result.profile.sessions
    out = [
        QuotaUse("lambda_concurrency", q["lambda_concurrency"],
                 sum(f["concurrency"] for f in result.functions.values()), sessions=s),
        QuotaUse("apigw_new_connections", q["apigw_new_connections"], result.apigw["connects"], sessions=s),
        QuotaUse("apigw_account_rps", q["apigw_account_rps"], result.apigw["account_rps"], sessions=s),
        QuotaUse("apigw_route_rps", q["apigw_route_rps"], result.apigw["received"], sessions=s,
                 detail="$default (messages)"),
    ]
    busiest = max(result.functions.items(), key=lambda kv: kv[1]["invocations"])
    out.append(QuotaUse("lambda_sync_rate", q["lambda_sync_rate"], busiest[1]["invocations"],
                        sessions=s, detail=busiest[0]))
    if profile.start_window_minutes > 0:
        # Everyone present from the start arrives within the window instead of over
        # the session; churn and refreshes go on as before.
        arrivals = profile.sessions * (profile.listeners + 1)
        peak = (arrivals / (profile.start_window_minutes * 60) + result.apigw["connects"]
                - arrivals / profile.session_seconds)
        out.append(QuotaUse("apigw_new_connections", q["apigw_new_connections"], peak, sessions=s,
                            detail=f"peak: every session starts within {profile.start_window_minutes:g} min"))
    for (table, index), units in sorted(result.dynamodb.items()):
        if index == OLD_INDEX:
            continue
        name = f"{table}{'/' + index if index else ''}"
        out.append(QuotaUse("dynamodb_table_rru", q["dynamodb_table_rru"], units.get("rru", 0), sessions=s, detail=name))
        out.append(QuotaUse("dynamodb_table_wru", q["dynamodb_table_wru"], units.get("wru", 0), sessions=s, detail=name))
    for key in result.hot_keys:
        if key["index"] == OLD_INDEX:
            continue
        where = f"{key['table']}{'/' + key['index'] if key['index'] else ''} per {key['class']}"
        out.append(QuotaUse("dynamodb_partition", q["dynamodb_partition"], key["use"],
                            scales_with_sessions=key["class"] == "sweep shard", sessions=s, detail=where))
    if result.kinesis.get("records"):
        per_session = profile.audio_chunks_per_second
        record = result.kinesis["bytes"] / result.kinesis["records"]
        out.append(QuotaUse("kinesis_shard_records", q["kinesis_shard_records"], per_session,
                            scales_with_sessions=False, sessions=s, detail="one session"))
        out.append(QuotaUse("kinesis_shard_bytes", q["kinesis_shard_bytes"], per_session * record / 2 ** 20,
                            scales_with_sessions=False, sessions=s, detail="one session"))
        out.append(QuotaUse("kinesis_stream_bytes", q["kinesis_stream_bytes"],
                            result.kinesis["billed_kb"] / 1024, sessions=s))
    out.append(QuotaUse("sweep_run", SWEEP_TIME_QUOTA, result.sweep["shard_run_seconds"], sessions=s,
                        detail=f"{profile.sessions / profile.sweep_shards:,.0f} sessions per shard"))
    return out


# -- issue 10: before and after ----------------------------------------------------------

# The sweep before issue 10, per active session per run (issue 10's own count): a
# query of its connections, a read of the speaker's row and an @connections GET of
# the speaker; plus its share of one listing of the status index.
BEFORE_SWEEP_CALLS_PER_SESSION = 3


def before_after(profile: Profile, measured: Measurements, sessions: int = 1000,
                 latency: Dict[str, float] = None) -> List[dict]:
    """The hottest index partition at ``sessions`` sessions with the index the
    sweep used before (partition key ``status``, projection ALL: priced against the
    same measured writes) and with today's, for audio to Kinesis and relayed."""
    rows = []
    for sink in ("kinesis", "relay"):
        result = run(attrs.evolve(profile, sessions=sessions, audio_sink=sink), measured, latency)
        old = next(k for k in result.hot_keys if k["index"] == OLD_INDEX)
        indexed = [k for k in result.hot_keys if k["index"] and k["index"] != OLD_INDEX]
        new = max(indexed, key=lambda k: k["use"])
        item = max((k for k in result.hot_keys if not k["index"]), key=lambda k: k["use"])
        shard = next((k for k in result.hot_keys if k["class"] == "sweep shard" and k["index"]), None)
        rows.append({"sessions": sessions, "audio": sink, "before_wru": old["wru"], "before_use": old["use"],
                     "after_index": f"{new['index']} per {new['class']}", "after_wru": new["wru"],
                     "after_rru": new["rru"], "after_use": new["use"],
                     "hottest_item": f"{item['table']} {item['class']}", "item_use": item["use"],
                     "sweep_shard_wru": shard["wru"] if shard else 0.0,
                     "sweep_calls_per_session": result.sweep["calls_per_session"]
                     + result.sweep["calls_per_period"] / sessions,
                     "sweep_calls_per_session_before": BEFORE_SWEEP_CALLS_PER_SESSION})
    return rows
