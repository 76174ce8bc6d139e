"""Benchmarks: `make bench`. Prints a table and writes build/bench.json.

Measures our own code, not moto's: pure hot paths in-process, the fan-out with a
management client that does nothing, the cold import of app.py, and then the whole
local stack over real sockets on 127.0.0.1 (latencies there include moto and the
emulator, and say what a developer feels, not what AWS would do), the stack under
load (``--load 100,300,1000``: listeners joining, then heartbeating once a second,
from bench/loadgen.py in a process of its own), and its memory over 10,000 listener
join/leave cycles (``--cycles``; ``--memory-baseline N`` adds a run with moto's leak
put back, to compare).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")

RESULTS: dict = {}


def record(name: str, value: float, unit: str) -> None:
    RESULTS[name] = {"value": round(value, 3), "unit": unit}
    print(f"  {name:<52} {value:>12.3f} {unit}")


def per_op(fn, n: int) -> float:
    start = time.perf_counter()
    for _ in range(n):
        fn()
    return (time.perf_counter() - start) / n * 1e6


def percentiles(samples):
    ordered = sorted(samples)
    return (
        statistics.median(ordered),
        ordered[min(len(ordered) - 1, int(len(ordered) * 0.95))],
    )


def bench_cold_import() -> None:
    code = "import time; t=time.perf_counter(); import app; print(time.perf_counter()-t)"
    samples = []
    for _ in range(5):
        out = subprocess.run(
            [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
        )
        samples.append(float(out.stdout.strip()) * 1000)
    record("cold import of app.py (median of 5)", statistics.median(samples), "ms")


def bench_metrics_library() -> None:
    """Our EMF emitter and JSON logs against Powertools' Metrics and Logger (issue 11)."""
    from bench import metrics_library

    try:
        numbers = metrics_library.measure()
    except subprocess.CalledProcessError as exc:  # no PyPI: say so, measure the rest
        print(f"  (Powertools could not be downloaded, not compared: {exc})")
        return
    record("metrics+logs cold import: chalicelib.observability", numbers["ours_import_ms"], "ms")
    record("metrics+logs cold import: Powertools", numbers["powertools_import_ms"], "ms")
    record("zip bytes: chalicelib.observability", numbers["ours_zip_bytes"], "bytes")
    record("zip bytes: Powertools (whole package)", numbers["powertools_zip_bytes"], "bytes")
    record("zip bytes: Powertools (metrics+logging only)",
           numbers["powertools_metrics_logging_zip_bytes"], "bytes")


def bench_cold_starts() -> None:
    """Each function from a fresh process, no .pyc, first request served (bench/cold_start.py)."""
    from bench import cold_start

    zip_path = ROOT / "build" / "dev" / "deployment.zip"
    if not zip_path.is_file():
        subprocess.run([sys.executable, str(ROOT / "tools" / "package.py"), "--stage", "dev"],
                       cwd=ROOT, check=True, capture_output=True)
    for function, numbers in cold_start.measure(zip_path).items():
        if function.startswith("("):
            record(f"cold start: {function}", numbers["total_ms"], "ms")
            continue
        record(f"cold start {function}: import app.py", numbers["import_ms"], "ms")
        record(f"cold start {function}: first request", numbers["request_ms"], "ms")
        record(f"cold start {function}: process start to served", numbers["total_ms"], "ms")


def bench_pure() -> None:
    from chalicelib import liveness
    from chalicelib.wire import ids
    from chalicelib.config import Config
    from chalicelib.state.records import Connection
    from chalicelib.wire.intents import parse_connect, parse_message

    config = Config.from_environ({})
    record("session id generate + validate", per_op(lambda: ids.is_valid_session_id(ids.generate_session_id()), 20000), "us/op")
    query = {"action": "joinSession", "sessionId": "faithful-shepherd-427", "targetLanguage": "es"}
    record("parse $connect query", per_op(lambda: parse_connect(query, config.supported_languages), 20000), "us/op")
    body = json.dumps({"action": "heartbeat"})
    record("parse message", per_op(lambda: parse_message(body), 20000), "us/op")
    now = int(time.time() * 1000)
    connection = Connection(connection_id="c", session_id="s", role="listener", connected_at=now,
                            last_seen_at=now, ttl=0, target_language="es")
    record("liveness verdict", per_op(lambda: liveness.judge(connection, now, config), 20000), "us/op")

    from chalicelib.auth.tokens import JwksCache, TokenVerifier
    from tests.support.tokens import AUDIENCE, ISSUER, Issuer

    issuer = Issuer()
    verifier = TokenVerifier(issuer=ISSUER, audience=AUDIENCE, token_use="id",
                             jwks=JwksCache("u", 300, fetch=lambda url: issuer.jwks()))
    token = issuer.token()
    record("verify speaker token (JWKS cached)", per_op(lambda: verifier.verify(token), 2000), "us/op")


def bench_fanout() -> None:
    from chalicelib.connections_api import ConnectionsApi
    from chalicelib.fanout import fan_out
    from chalicelib.wire.messages import build, encode
    from chalicelib.state.records import Connection

    class NullClient:
        def post_to_connection(self, ConnectionId, Data):
            return None

    api = ConnectionsApi(NullClient())
    listeners = [
        Connection(connection_id=f"c{i}", session_id="s", role="listener", connected_at=0,
                   last_seen_at=0, ttl=0, target_language="es")
        for i in range(500)
    ]
    message = encode(build("audio", time.time(), audioData="A" * 8000, sequenceNumber=1))
    fan_out(api, listeners, message, concurrency=16)
    tracemalloc.start()
    samples = []
    for _ in range(20):
        start = time.perf_counter()
        result = fan_out(api, listeners, message, concurrency=16)
        samples.append((time.perf_counter() - start) * 1000)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert result.delivered == 500
    record("fan-out to 500 listeners, null client (median)", statistics.median(samples), "ms")
    record("fan-out to 500 listeners, peak traced memory", peak / 1024, "KiB")


def bench_local_stack(joins: int) -> None:
    from contextlib import ExitStack

    from websockets.sync.client import connect as ws_connect

    from tests.e2e.conftest import StackProcess

    with tempfile.TemporaryDirectory() as tmp, ExitStack() as sockets:
        def connect(url):
            return sockets.enter_context(ws_connect(url, open_timeout=10))

        stack = StackProcess(Path(tmp) / "state", Path(tmp) / "stack.log").start()
        try:
            speaker = connect(stack.url(action="createSession", sourceLanguage="en", token=stack.token()))
            session_id = json.loads(speaker.recv(timeout=10))["sessionId"]

            first_message, listeners = [], []
            for _ in range(joins):
                start = time.perf_counter()
                ws = connect(stack.url(action="joinSession", sessionId=session_id, targetLanguage="es"))
                json.loads(ws.recv(timeout=10))
                first_message.append((time.perf_counter() - start) * 1000)
                listeners.append(ws)
            p50, p95 = percentiles(first_message)
            record("local stack: join -> sessionJoined p50", p50, "ms")
            record("local stack: join -> sessionJoined p95", p95, "ms")

            rtt = []
            for _ in range(100):
                start = time.perf_counter()
                speaker.send(json.dumps({"action": "heartbeat"}))
                while json.loads(speaker.recv(timeout=10))["type"] != "heartbeatAck":
                    pass
                rtt.append((time.perf_counter() - start) * 1000)
            p50, p95 = percentiles(rtt)
            record("local stack: heartbeat round trip p50", p50, "ms")
            record("local stack: heartbeat round trip p95", p95, "ms")

            relay = []
            audio = "A" * 4000
            for n in range(20):
                start = time.perf_counter()
                speaker.send(json.dumps({"action": "sendAudio", "audioData": audio, "sequenceNumber": n}))
                for ws in listeners:
                    while json.loads(ws.recv(timeout=10))["type"] != "audio":
                        pass
                relay.append((time.perf_counter() - start) * 1000)
            p50, p95 = percentiles(relay)
            record(f"local stack: audio chunk to all {joins} listeners p50", p50, "ms")
            record(f"local stack: audio chunk to all {joins} listeners p95", p95, "ms")

            # What a listener page shows within 1 s (issue 14): the speaker's control
            # reaching every listener, pause and resume alternately.
            control = []
            for n in range(20):
                action, shown = (("pauseBroadcast", "broadcastPaused") if n % 2 == 0
                                 else ("resumeBroadcast", "broadcastResumed"))
                start = time.perf_counter()
                speaker.send(json.dumps({"action": action}))
                for ws in listeners:
                    while json.loads(ws.recv(timeout=10))["type"] != shown:
                        pass
                control.append((time.perf_counter() - start) * 1000)
            p50, p95 = percentiles(control)
            record(f"local stack: pause/resume to all {joins} listeners p50", p50, "ms")
            record(f"local stack: pause/resume to all {joins} listeners p95", p95, "ms")
            sockets.close()
        finally:
            stack.stop()


def _cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def bench_load(levels, duration: float) -> None:
    """Listeners under load: for each level, a fresh stack as `make run` starts it and
    bench/loadgen.py in its own process (asyncio clients: no share of the stack's
    GIL, but a share of the machine's cores): listeners join, then every client
    heartbeats once a second. Prints the connect rate, acknowledgement latency
    percentiles, the CPU the stack and its moto server used, and the machine's load.
    """
    from tests.e2e.conftest import StackProcess

    for listeners in levels:
        with tempfile.TemporaryDirectory() as tmp:
            stack = StackProcess(Path(tmp) / "state", Path(tmp) / "stack.log",
                                 GATEWAY_SCHEDULE_PERIOD_SECONDS="5").start()
            try:
                members = [stack.process.pid] + _children(stack.process.pid)
                cpu_before = [_cpu_seconds(p) for p in members]
                load_before = os.getloadavg()[0]
                started = time.monotonic()
                out = subprocess.run(
                    [sys.executable, str(ROOT / "bench" / "loadgen.py"), "--url", stack.ws,
                     "--state-dir", str(Path(tmp) / "state"), "--listeners", str(listeners),
                     "--duration", str(duration)],
                    cwd=ROOT, capture_output=True, text=True, timeout=600)
                elapsed = time.monotonic() - started
                cpu = [_cpu_seconds(p) - before for p, before in zip(members, cpu_before)]
                load_after = os.getloadavg()[0]
            finally:
                stack.stop()
        if out.returncode != 0:
            raise RuntimeError(f"loadgen failed: {out.stderr[-2000:]}")
        result = json.loads(out.stdout.strip().splitlines()[-1])
        name = f"load {listeners} listeners"
        print(f"    {name}: {json.dumps(result)}", flush=True)
        record(f"{name}: joined", result["joined"], "listeners")
        record(f"{name}: connect rate", result["connect_rate_per_second"], "joins/s")
        record(f"{name}: connect (to sessionJoined) p99", result["connect_ms"]["p99"], "ms")
        for p in ("p50", "p95", "p99"):
            value = result["ack_ms"][p]
            record(f"{name}: heartbeat ack {p} ({result['heartbeats_per_second']:g}/s)",
                   value if value is not None else float("nan"), "ms")
        record(f"{name}: heartbeats lost", result["lost"], "of %d" % (result["acks"] + result["lost"]))
        record(f"{name}: stack CPU (gateway + app)", cpu[0] / elapsed * 100, "% of a core")
        record(f"{name}: moto server CPU", sum(cpu[1:]) / elapsed * 100, "% of a core")
        record(f"{name}: machine load average (1 min), before/after",
               load_before, f"/ {load_after:.2f} on {os.cpu_count()} cores")


def _children(pid: int) -> list:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as stat:
                    if int(stat.read().rsplit(")", 1)[1].split()[1]) == pid:
                        found.append(int(entry))
            except (OSError, IndexError, ValueError):
                continue
    return found


def _rss_mib(pid: int) -> float:
    """Resident memory of ``pid`` and its children (the stack and its moto server)."""
    total = 0
    for member in [pid] + _children(pid):
        with open(f"/proc/{member}/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
    return total / 1024


# The stack as `make run` starts it, but with moto's DynamoDB objects tracked
# again (the leak issue 12 found), to compare against.
_UNPATCHED = {"LOCAL_MOTO_SKIP_PATCHES": "untrack_dynamodb_models"}


def bench_memory(cycles: int, *, baseline: bool = False) -> None:
    """RSS of the stack's process over listener join/leave cycles (one session).

    Each cycle is a join (a transaction over Sessions and Connections) and a
    leave (another); moto used to keep every table copy its transactions made.
    The slope is taken after the first 1,000 cycles (warm-up: caches, pools).
    """
    from websockets.sync.client import connect as ws_connect

    from tests.e2e.conftest import StackProcess

    label = "unpatched moto" if baseline else "local stack"
    warmup = min(1000, cycles // 5)
    with tempfile.TemporaryDirectory() as tmp:
        stack = StackProcess(Path(tmp) / "state", Path(tmp) / "stack.log",
                             RATE_LIMIT_CONNECTS_PER_MINUTE="0",
                             **(_UNPATCHED if baseline else {})).start()
        try:
            pid = stack.process.pid
            with ws_connect(stack.url(action="createSession", sourceLanguage="en",
                                      token=stack.token()), open_timeout=10) as speaker:
                session_id = json.loads(speaker.recv(timeout=10))["sessionId"]
                join = stack.url(action="joinSession", sessionId=session_id, targetLanguage="es")
                start = _rss_mib(pid)
                samples = []
                for cycle in range(1, cycles + 1):
                    with ws_connect(join, open_timeout=10) as listener:
                        json.loads(listener.recv(timeout=10))
                    if cycle % 100 == 0:  # a silent speaker is closed by the sweep
                        speaker.send(json.dumps({"action": "heartbeat"}))
                        while json.loads(speaker.recv(timeout=10))["type"] != "heartbeatAck":
                            pass
                    if cycle == warmup or cycle % 1000 == 0 or cycle == cycles:
                        samples.append((cycle, _rss_mib(pid)))
                        print(f"    {label}: {cycle} cycles, RSS {samples[-1][1]:.1f} MiB", flush=True)
        finally:
            stack.stop()
    (first_cycle, first_rss), (last_cycle, last_rss) = samples[0], samples[-1]
    slope = (last_rss - first_rss) * 1024 / max(1, last_cycle - first_cycle)
    record(f"{label}: RSS at start", start, "MiB")
    record(f"{label}: RSS after {cycles} join/leave cycles", last_rss, "MiB")
    record(f"{label}: RSS growth per join/leave after warm-up", slope, "KiB/cycle")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--joins", type=int, default=30, help="listeners in the local-stack run")
    parser.add_argument("--skip-stack", action="store_true", help="only the in-process benchmarks")
    parser.add_argument("--cycles", type=int, default=10000,
                        help="listener join/leave cycles in the memory run (0: skip it)")
    parser.add_argument("--load", default="100,300,1000", metavar="N,N,...",
                        help="listener counts of the load test ('' skips it)")
    parser.add_argument("--load-duration", type=float, default=30.0,
                        help="seconds of heartbeats measured at each load level")
    parser.add_argument("--memory-baseline", type=int, default=0, metavar="CYCLES",
                        help="also measure CYCLES cycles with moto's instance tracking restored")
    args = parser.parse_args()
    print("benchmarks (lower is better)")
    bench_cold_import()
    bench_metrics_library()
    bench_cold_starts()
    bench_pure()
    bench_fanout()
    if not args.skip_stack:
        bench_local_stack(args.joins)
        if args.load:
            bench_load([int(n) for n in args.load.split(",")], args.load_duration)
        if args.cycles:
            bench_memory(args.cycles)
        if args.memory_baseline:
            bench_memory(args.memory_baseline, baseline=True)
    out = ROOT / "build" / "bench.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(RESULTS, indent=2) + "\n")
    print(f"written to {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
