"""Listeners under load: a load generator for a running local stack (``make run``).

Runs in its own process (``python bench/loadgen.py``; ``bench/run.py`` starts it)
so that its clients never compete with the stack for the stack's GIL. All clients
are asyncio ``websockets`` connections in this one process:

1. **Join**: ``--speakers`` speakers create sessions, then ``--listeners`` listeners
   join them (round robin), at most ``--join-concurrency`` handshakes in flight. A
   join counts when its ``sessionJoined`` arrives (what a listener waits for). The
   connect rate is listeners / (last ``sessionJoined`` - first handshake started).
2. **Heartbeat**: every client (speakers too) sends ``{"action": "heartbeat"}`` every
   ``--interval`` seconds, each at its own random phase, on schedule whether or not
   the last one was acknowledged (open loop: a slow stack cannot slow the senders
   down and hide its own latency). Each ``heartbeatAck`` is matched to that
   connection's oldest unacknowledged heartbeat. Latencies are taken after
   ``--warmup`` seconds for ``--duration`` seconds; heartbeats still unacknowledged
   ``--grace`` seconds after the end count as lost.

Each session's clients connect from their own loopback source address
(127.0.1.N: one congregation behind one NAT address), so the app's per-address
connect rate limit (``RATE_LIMIT_CONNECTS_PER_MINUTE``, 1,000 per minute) stays in
the path and is not exceeded; where such addresses cannot be bound (not Linux) all
clients use 127.0.0.1 and the stack needs that limit raised or 0.

Prints one JSON object on stdout: counts, connect rate, connect and
acknowledgement latency percentiles (ms).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import random
import socket
import sys
import time
from collections import deque
from pathlib import Path
from typing import Deque, Dict, List, Optional
from urllib.parse import urlencode, urlsplit

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from websockets.asyncio.client import connect  # noqa: E402

HEARTBEAT = json.dumps({"action": "heartbeat"})


def percentile(ordered: List[float], fraction: float) -> Optional[float]:
    """Nearest-rank percentile of an already sorted list (None when empty)."""
    if not ordered:
        return None
    rank = max(1, math.ceil(fraction * len(ordered)))
    return ordered[rank - 1]


def summary(samples: List[float]) -> Dict[str, Optional[float]]:
    ordered = sorted(samples)
    return {name: (round(value, 2) if value is not None else None)
            for name, value in (("p50", percentile(ordered, 0.50)), ("p95", percentile(ordered, 0.95)),
                                ("p99", percentile(ordered, 0.99)),
                                ("max", ordered[-1] if ordered else None))}


def source_address(index: int) -> Optional[str]:
    """127.0.1.``index + 1`` if this machine lets us bind it (Linux routes all of
    127/8 to lo), else None (connect from the default address)."""
    address = f"127.0.1.{index % 250 + 1}"
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind((address, 0))
        except OSError:
            return None
    return address


class Client:
    """One WebSocket client: a listener or a speaker, and its heartbeats."""

    def __init__(self, url: str, source: Optional[str], first_type: str):
        self.url = url
        self.source = source
        self.first_type = first_type
        self.ws = None
        self.first: Optional[dict] = None
        self.pending: Deque[float] = deque()
        self.acks: List[tuple] = []  # (sent, latency)
        self.errors: List[str] = []
        self._first = asyncio.get_running_loop().create_future()

    async def open(self, timeout: float) -> dict:
        kwargs = {"local_addr": (self.source, 0)} if self.source else {}
        self.ws = await connect(self.url, open_timeout=timeout, close_timeout=2, ping_interval=None,
                                compression=None, max_queue=None, **kwargs)
        asyncio.get_running_loop().create_task(self._read())
        return await asyncio.wait_for(asyncio.shield(self._first), timeout)

    async def _read(self) -> None:
        try:
            async for raw in self.ws:
                now = time.perf_counter()
                message = json.loads(raw)
                kind = message.get("type")
                if kind == "heartbeatAck":
                    if self.pending:
                        sent = self.pending.popleft()
                        self.acks.append((sent, now - sent))
                elif not self._first.done():
                    if kind == self.first_type:
                        self._first.set_result(message)
                    else:
                        self._first.set_exception(RuntimeError(f"first message {kind}: {raw[:200]}"))
                elif kind in ("error", "sessionEnded", "connectionClosed"):
                    self.errors.append(str(kind if kind != "error" else message.get("code")))
        except Exception as exc:  # the connection failed: counted, never raised
            self.errors.append(type(exc).__name__)
        finally:
            if not self._first.done():
                self._first.set_exception(RuntimeError("closed before its first message"))

    async def heartbeats(self, interval: float, until: float, rng: random.Random) -> None:
        await asyncio.sleep(rng.uniform(0, interval))
        due = time.perf_counter()
        while due < until:
            self.pending.append(time.perf_counter())
            try:
                await self.ws.send(HEARTBEAT)
            except Exception as exc:
                self.errors.append(type(exc).__name__)
                return
            due += interval
            await asyncio.sleep(max(0.0, due - time.perf_counter()))

    async def close(self) -> None:
        if self.ws is not None:
            await self.ws.close()


def speaker_tokens(count: int, state_dir: Path) -> List[str]:
    from local_stack.issuer import LocalIssuer

    issuer = LocalIssuer(state_dir)
    return [issuer.token(f"load-speaker-{n}") for n in range(count)]


async def run(args) -> dict:
    base = args.url.rstrip("/")
    rng = random.Random(args.seed)
    sources = [source_address(n) for n in range(args.speakers)]
    tokens = speaker_tokens(args.speakers, Path(args.state_dir))
    speakers: List[Client] = []
    sessions: List[str] = []
    for n, token in enumerate(tokens):
        query = urlencode({"action": "createSession", "sourceLanguage": "en", "token": token})
        speaker = Client(f"{base}?{query}", sources[n], "sessionCreated")
        sessions.append((await speaker.open(args.open_timeout))["sessionId"])
        speakers.append(speaker)

    listeners: List[Client] = []
    connect_ms: List[float] = []
    failures: Dict[str, int] = {}
    gate = asyncio.Semaphore(args.join_concurrency)

    async def join(n: int) -> None:
        session = n % len(sessions)
        query = urlencode({"action": "joinSession", "sessionId": sessions[session],
                           "targetLanguage": args.languages[n % len(args.languages)]})
        client = Client(f"{base}?{query}", sources[session], "sessionJoined")
        async with gate:
            started = time.perf_counter()
            try:
                await client.open(args.open_timeout)
            except Exception as exc:
                name = type(exc).__name__
                failures[name] = failures.get(name, 0) + 1
                await client.close()
                return
            connect_ms.append((time.perf_counter() - started) * 1000)
            listeners.append(client)

    join_started = time.perf_counter()
    await asyncio.gather(*(join(n) for n in range(args.listeners)))
    join_seconds = time.perf_counter() - join_started

    clients = speakers + listeners
    start = time.perf_counter()
    measure_from = start + args.warmup
    until = measure_from + args.duration
    await asyncio.gather(*(c.heartbeats(args.interval, until, rng) for c in clients))
    deadline = time.perf_counter() + args.grace
    while any(c.pending for c in clients) and time.perf_counter() < deadline:
        await asyncio.sleep(0.1)
    acks = [latency * 1000 for c in clients for sent, latency in c.acks if measure_from <= sent < until]
    sent = sum(1 for c in clients for t, _ in c.acks if measure_from <= t < until)
    lost = sum(1 for c in clients for t in c.pending if measure_from <= t < until)
    errors: Dict[str, int] = {}
    for c in clients:
        for e in c.errors:
            errors[e] = errors.get(e, 0) + 1
    await asyncio.gather(*(c.close() for c in clients), return_exceptions=True)
    return {
        "listeners": args.listeners,
        "speakers": args.speakers,
        "joined": len(listeners),
        "join_failures": failures,
        "join_seconds": round(join_seconds, 3),
        "connect_rate_per_second": round(len(listeners) / join_seconds, 1) if join_seconds else None,
        "connect_ms": summary(connect_ms),
        "heartbeat_interval_seconds": args.interval,
        "heartbeats_per_second": round(len(clients) / args.interval, 1),
        "measured_seconds": args.duration,
        "acks": sent,
        "lost": lost,
        "ack_ms": summary(acks),
        "errors": errors,
        "source_addresses": sorted({s for s in sources if s}) or ["127.0.0.1"],
    }


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--url", default="ws://127.0.0.1:8000/dev", help="the stack's WebSocket URL")
    p.add_argument("--state-dir", default=".local",
                   help="the stack's LOCAL_STATE_DIR, whose issuer signs the speakers' tokens")
    p.add_argument("--listeners", type=int, default=1000)
    p.add_argument("--speakers", type=int, default=0,
                   help="sessions the listeners are spread over (default: one per 250 listeners)")
    p.add_argument("--languages", default="es,fr,de", type=lambda s: s.split(","))
    p.add_argument("--join-concurrency", type=int, default=50,
                   help="handshakes in flight at once during the join phase")
    p.add_argument("--interval", type=float, default=1.0, help="seconds between a client's heartbeats")
    p.add_argument("--warmup", type=float, default=5.0)
    p.add_argument("--duration", type=float, default=30.0)
    p.add_argument("--grace", type=float, default=10.0)
    p.add_argument("--open-timeout", type=float, default=30.0)
    p.add_argument("--seed", type=int, default=1)
    return p


def main(argv=None) -> int:
    args = parser().parse_args(argv)
    if args.speakers <= 0:
        args.speakers = max(1, math.ceil(args.listeners / 250))
    if urlsplit(args.url).hostname not in ("127.0.0.1", "localhost"):
        print("loadgen: only a stack on this machine (127.0.0.1) may be loaded", file=sys.stderr)
        return 2
    result = asyncio.run(run(args))
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
