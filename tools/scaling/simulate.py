"""The real sweep and fan-out against a DynamoDB emulator, with many sessions.

A moto server on 127.0.0.1 (:mod:`local_stack.moto_server`, as ``make run`` and the
functional tests start it)
holds ``sessions`` active sessions of ``listeners`` listeners each, written as the
app writes them (its own records), spread over the sweep shards as the app spreads
them. Then, through the functional tests' gateway and call counter:

- the scheduled ``sweep`` runs and every ``sweep_shard`` worker it starts, one after
  the other (in AWS they run in parallel): calls per session, each shard's wall
  time, and what every session cost it;
- one session of ``fanout`` listeners gets a publish, twice (the first reads the
  listeners' listing, the second reuses it), each @connections post taking
  ``post_ms`` (the network the emulator lacks): calls and wall time, against the
  model's ``ceil(N / PUBLISH_CONCURRENCY) x post`` estimate.

Wall times are the emulator's (moto answers one DynamoDB request at a time and its
index queries scan every item), an upper bound for AWS; calls per session and
request units are exact. The run extrapolates both to ``target_sessions``.
"""

from __future__ import annotations

import math
import time
import zlib
from contextlib import contextmanager
from typing import Dict, Iterator, List, Optional

from tools.scaling import aws
from tools.scaling.measure import MANAGEMENT_URL, aws_environment, metered_gateway
from tools.scaling.units import read_units


@contextmanager
def moto_endpoint(endpoint: Optional[str] = None) -> Iterator[str]:
    """``endpoint`` (reset), else a moto server of our own on a free 127.0.0.1 port;
    the process's AWS clients point at it meanwhile."""
    from local_stack.moto_server import MotoServer, reset

    server = None
    if endpoint is None:
        server = MotoServer(0)  # the one `make run` and the functional tests start
        endpoint = server.start()
    else:
        reset(endpoint)
    try:
        with aws_environment(AWS_ENDPOINT_URL=endpoint):
            yield endpoint
    finally:
        if server is not None:
            server.stop()


def _seed(client, config, count: int, listeners: int, now: float, prefix: str = "") -> List[str]:
    """``count`` active sessions of ``listeners`` listeners, as the app writes them
    (connection ids: ``{prefix}spk{n}=`` and ``{prefix}lis{n}{i}=``)."""
    from chalicelib.state import dynamo
    from chalicelib.state.records import ACTIVE, LISTENER, SPEAKER, BroadcastState, Connection, Session
    from chalicelib.wire.ids import generate_session_id

    now_ms, ids, requests = int(now * 1000), [], {config.sessions_table: [], config.connections_table: []}
    languages = [c for c in config.supported_languages if c != "en"]
    while len(ids) < count:
        session_id = generate_session_id()
        if session_id in ids:
            continue
        ids.append(session_id)
        speaker = f"{prefix}spk{len(ids):06d}="
        session = Session(
            session_id=session_id, speaker_user_id=f"user-{len(ids)}", speaker_connection_id=speaker,
            source_language="en", quality_tier="standard", status=ACTIVE, listener_count=listeners,
            created_at=now_ms, expires_at=int(now) + config.session_max_duration_seconds,
            sweep_shard=zlib.crc32(session_id.encode()) % config.sweep_shards,  # as admission does
            broadcast_state=BroadcastState(last_state_change=now_ms),
        )
        requests[config.sessions_table].append(session.to_item())
        rows = [Connection(connection_id=speaker, session_id=session_id, role=SPEAKER, user_id=session.speaker_user_id,
                           connected_at=now_ms, last_seen_at=now_ms, ttl=int(now) + config.connection_ttl_seconds)]
        rows += [Connection(connection_id=f"{prefix}lis{len(ids):06d}{i:04d}=", session_id=session_id, role=LISTENER,
                            target_language=languages[i % len(languages)], connected_at=now_ms,
                            last_seen_at=now_ms, ttl=int(now) + config.connection_ttl_seconds,
                            speaker_connection_id=speaker)
                 for i in range(listeners)]
        requests[config.connections_table] += [row.to_item() for row in rows]
    for table, items in requests.items():
        for start in range(0, len(items), dynamo.BATCH_WRITE_LIMIT):
            batch = [{"PutRequest": {"Item": dynamo.attributes(item)}}
                     for item in items[start:start + dynamo.BATCH_WRITE_LIMIT]]
            client.batch_write_item(RequestItems={table: batch})
    return ids


def run(*, sessions: int = 1000, listeners: int = 3, fanout: int = 500, shards: int = 16,
        concurrency: int = 16, post_ms: float = 15.0, target_sessions: int = 10_000,
        endpoint: Optional[str] = None) -> Dict[str, float]:
    import boto3

    import app as app_module
    from chalicelib.config import Config
    from chalicelib.state.schema import ensure_tables, table_definitions
    from tests.support.calls import counting
    from tools.scaling.meter import Meter

    numbers: Dict[str, float] = {"sessions": sessions, "listeners": listeners, "shards": shards,
                                 "concurrency": concurrency, "fanout": fanout, "post_ms": post_ms,
                                 "target_sessions": target_sessions}
    with moto_endpoint(endpoint):
        config = Config.from_environ({
            "MANAGEMENT_API_URL": MANAGEMENT_URL, "SWEEP_SHARDS": str(shards),
            "SWEEP_CONCURRENCY": str(concurrency), "MAX_LISTENERS_PER_SESSION": str(max(500, fanout)),
        })
        client = boto3.client("dynamodb", region_name="us-east-1")
        ensure_tables(client, config)
        started = time.perf_counter()
        _seed(client, config, sessions, listeners, time.time())
        numbers["seed_seconds"] = time.perf_counter() - started

        def classify(table, index, attribute, value):
            return {"sessionId": "session", "sweepShard": "sweep shard"}.get(attribute, attribute)

        meter = Meter(tables=table_definitions(config), classify=classify,
                      peek=lambda table, key: client.get_item(TableName=table, Key=key,
                                                              ConsistentRead=True).get("Item"))
        gateway = metered_gateway(app_module, config, meter, post_seconds=post_ms / 1000)
        counting(gateway, meter)
        numbers.update(_sweep(gateway, meter, sessions, target_sessions, shards))
        (fan_id,) = _seed(client, config, 1, fanout, time.time() - 5, prefix="fan")  # settled: listing kept
        numbers.update(_fanout(gateway, meter, fan_id, fanout, config, post_ms))
    return numbers


def _sweep(gateway, meter, sessions: int, target: int, shards: int) -> Dict[str, float]:
    meter.reset()
    gateway.invocations.clear()
    report = gateway.sweep()
    if report.get("sessions") != sessions or report.get("closed") or report.get("ended"):
        raise RuntimeError(f"the sweep did not find {sessions} idle sessions: {report}")
    walls = [wall for name, _, wall in gateway.invocations if name == "sweep_shard"]
    calls = meter.total()
    per_shard_calls = 2 * shards  # one listing query per shard, one invocation per shard
    rru = {(t, i): u for (t, i, k, _), u in meter.units.items() if k == "rru"}
    members = rru.get(("Connections", "session-members-index"), 0.0)
    listing = rru.get(("Sessions", "sweep-index"), 0.0)
    entry = meter.sizes.get(("Sessions", "sweep-index", "sweep shard"), 0)
    per_session_wall = sum(walls) / sessions
    return {
        "sweep_calls": calls,
        "sweep_calls_per_session": (calls - per_shard_calls) / sessions,
        "sweep_wall_seconds_sequential": sum(walls),
        "sweep_wall_seconds_slowest_shard": max(walls),
        "sweep_wall_ms_per_session": per_session_wall * 1000,
        "sweep_rru_per_session": members / sessions,
        "sweep_listing_rru_per_shard": listing / shards,
        # The emulator answers one request at a time: at the target, a shard of
        # target/shards sessions takes about that many times the per-session wall.
        "target_shard_seconds_emulator": per_session_wall * target / shards,
        "sweep_index_entry_bytes": entry,
        "target_shard_listing_rru": read_units([entry] * math.ceil(target / shards), consistent=False),
        "target_sweep_queries_per_second": (target + shards) / 60,
    }


def _fanout(gateway, meter, session_id: str, listeners: int, config, post_ms: float) -> Dict[str, float]:
    from tests.support.harness import Context

    event = {"sessionId": session_id, "type": "translation", "data": {"text": "hola"}}
    out = {}
    for label in ("fanout_listing_read", "fanout_listing_reused"):
        for i in range(listeners):
            gateway.open.add(f"fanlis{1:06d}{i:04d}=")
        meter.reset()
        started = time.perf_counter()
        result = gateway.app.publish(event, Context())
        wall = time.perf_counter() - started
        if result.get("delivered") != listeners:
            raise RuntimeError(f"the fan-out reached {result} of {listeners}")
        out[f"{label}_calls"] = meter.total()
        out[f"{label}_wall_ms"] = wall * 1000
    rounds = math.ceil(listeners / config.publish_concurrency)
    out["fanout_model_ms"] = rounds * post_ms + aws.LATENCY_MS["dynamodb.UpdateItem"]
    return out


def render(numbers: Dict[str, float]) -> str:
    n = numbers
    lines = [
        f"Simulation: {n['sessions']:,} idle sessions of {n['listeners']} listeners in a moto server, "
        f"{n['shards']} sweep shards x {n['concurrency']} at once (seeded in {n['seed_seconds']:.1f} s).",
        f"  sweep: {n['sweep_calls']:,} calls = {n['sweep_calls_per_session']:.2f} per session + "
        f"{2 * n['shards']} per period (a listing query and an invocation per shard)",
        f"  sweep: {n['sweep_rru_per_session']:.2f} RRU per session, {n['sweep_listing_rru_per_shard']:.1f} RRU "
        "per shard listing",
        f"  sweep wall (emulator): {n['sweep_wall_seconds_sequential']:.1f} s for all shards one after the "
        f"other, slowest shard {n['sweep_wall_seconds_slowest_shard']:.2f} s, "
        f"{n['sweep_wall_ms_per_session']:.1f} ms per session",
        f"  at {n['target_sessions']:,} sessions: {n['target_sweep_queries_per_second']:.0f} queries/s, "
        f"a shard of {n['target_sessions'] / n['shards']:,.0f} sessions would take "
        f"{n['target_shard_seconds_emulator']:.1f} s on this emulator; its listing "
        f"({n['sweep_index_entry_bytes']} bytes an entry) {n['target_shard_listing_rru']:.1f} RRU per period",
        f"  fan-out to {n['fanout']} listeners, each post {n['post_ms']:g} ms: "
        f"{n['fanout_listing_read_calls']} calls in {n['fanout_listing_read_wall_ms']:.0f} ms reading the "
        f"listing, {n['fanout_listing_reused_calls']} calls in {n['fanout_listing_reused_wall_ms']:.0f} ms "
        f"reusing it; the model says {n['fanout_model_ms']:.0f} ms",
    ]
    return "\n".join(lines)
