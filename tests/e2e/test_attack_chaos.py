"""The chaos run (issue 12): about a hundred sockets doing everything at once over
the real local stack, then a count-drift and orphan check.

Five speakers and ninety-five listeners, one asyncio loop, for ``ATTACK_CHAOS_SECONDS``
(default 40): listeners join, leave, drop their TCP connection without a close
frame, refresh with and without ``previousConnectionId``, change language,
heartbeat and ask for status; speakers heartbeat, pause, set the volume, send audio,
refresh, end their session and open a new one, or drop. The stack sweeps every 2 s
meanwhile. Every client watches every reply: a 5xx other than 503, an
``INTERNAL_ERROR`` or API Gateway's "Internal server error" is a server error.

Then, with every client quiet: each active session's ``listenerCount`` equals its
listener rows holding a place, and the listener sockets the clients hold there (no
drift); and once every socket is closed and a sweep has run, no connection row is
left (no orphans). Figures: build/attack-figures.json ("chaos").
"""
import asyncio
import json
import os
import random
import time
from collections import Counter

import boto3
import pytest
from botocore.config import Config
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus

from test_e2e_long_sessions import CONNECTIONS_TABLE, SESSIONS_TABLE, run_sweep, wait_until
from tests.support.attack_figures import tally

pytestmark = [pytest.mark.e2e, pytest.mark.attack, pytest.mark.slow]

SECONDS = float(os.environ.get("ATTACK_CHAOS_SECONDS", "40"))
SPEAKERS, LISTENERS = 5, 95
LANGUAGES = ["es", "fr", "de", "it", "pt"]
WELCOMES = {"sessionCreated", "sessionJoined", "connectionRefreshComplete"}
REFUSALS = {400, 401, 403, 404, 429, 503}  # documented; 404/503: ended or full meanwhile
# Weights: over ~80 speaker operations a run, an "end" or a "drop" fails to happen at
# all with a chance under 1 in 10,000.
SPEAKER_OPS = {"heartbeat": 4, "control": 2, "volume": 2, "audio": 4, "refresh": 2, "end": 2, "drop": 2}
LISTENER_OPS = {"heartbeat": 4, "status": 1, "language": 2, "leave": 1, "drop": 1, "refresh-named": 2,
                "refresh-anonymous": 1}


class Chaos:
    """Shared bookkeeping of the run: live sessions, figures, what went wrong."""

    def __init__(self, stack, seed):
        self.stack = stack
        self.random = random.Random(seed)
        self.sessions = []  # active session ids as the speakers know them
        self.figures = tally("chaos")
        self.server_errors = []
        self.deadline = time.monotonic() + SECONDS
        self.tokens = [stack.token(f"speaker{i}") for i in range(SPEAKERS)]
        self.ops = Counter()

    def running(self):
        return time.monotonic() < self.deadline

    def pick(self, role, weights):
        """A random operation of ``role`` (``weights``: {operation: weight}), counted."""
        op = self.random.choices(list(weights), weights=list(weights.values()))[0]
        self.ops[f"{role} {op}"] += 1
        return op

    def check(self, message):
        """Any message a client receives: never a server error."""
        if message.get("code") == "INTERNAL_ERROR" or message.get("message") == "Internal server error":
            self.server_error(f"reply {message}")

    def server_error(self, what):
        self.server_errors.append(what)
        self.figures.add("server_errors")


class Client:
    """One socket and what arrived on it."""

    def __init__(self, chaos, ws, first):
        self.chaos, self.ws, self.first = chaos, ws, first
        self.connection_id = first.get("connectionId")
        self.session_id = first.get("sessionId")
        self.reader = asyncio.ensure_future(self._read())

    @classmethod
    async def start(cls, chaos, **query):
        """Connect and wait for the first message; None if refused (counted)."""
        try:
            ws = await connect(chaos.stack.url(**query), open_timeout=15, close_timeout=2,
                               ping_interval=None)
        except InvalidStatus as exc:
            status = exc.response.status_code
            if status in REFUSALS:
                chaos.figures.add("refused")
            else:
                chaos.server_error(f"handshake {status} for {query.get('action')}")
            return None
        except (InvalidHandshake, OSError, asyncio.TimeoutError) as exc:
            chaos.server_error(f"handshake failed: {type(exc).__name__}")
            return None
        try:
            first = await asyncio.wait_for(cls._welcome(chaos, ws), 15)
        except (ConnectionClosed, asyncio.TimeoutError):
            # Closed before its first message: the session ended meanwhile.
            chaos.figures.add("refused")
            await ws.close()
            return None
        chaos.figures.add("accepted")
        return cls(chaos, ws, first)

    @staticmethod
    async def _welcome(chaos, ws):
        """The connection's first message proper: what the session sends its listeners
        (audio, controls) may arrive before it, as through API Gateway."""
        while True:
            message = json.loads(await ws.recv())
            if message.get("type") in WELCOMES:
                return message
            chaos.check(message)

    async def _read(self):
        try:
            async for raw in self.ws:
                if isinstance(raw, bytes):
                    continue
                self.chaos.check(json.loads(raw))
        except ConnectionClosed:
            pass

    @property
    def alive(self):
        return not self.reader.done()

    @property
    def is_listener(self):
        return self.first.get("type") == "sessionJoined" or (
            self.first.get("type") == "connectionRefreshComplete" and self.first.get("role") == "listener")

    async def send(self, message):
        try:
            await self.ws.send(json.dumps(message))
            self.chaos.figures.add("accepted")
        except ConnectionClosed:
            self.chaos.figures.add("refused")

    async def close(self):
        await self.ws.close()
        await self.reader

    async def drop(self):
        """Lose the TCP connection without a close frame."""
        self.ws.transport.abort()
        await self.reader


async def pause(chaos):
    await asyncio.sleep(chaos.random.uniform(0.05, 0.6))


async def speaker(chaos, index):
    token = chaos.tokens[index]
    client = None
    while chaos.running():
        if client is None or not client.alive:
            client = await Client.start(chaos, action="createSession", sourceLanguage="en", token=token)
            chaos.ops["speaker create"] += 1
            if client is not None:
                chaos.sessions.append(client.session_id)
            await pause(chaos)
            continue
        op = chaos.pick("speaker", SPEAKER_OPS)
        if op == "heartbeat":
            await client.send({"action": "heartbeat"})
        elif op == "control":
            await client.send({"action": chaos.random.choice(
                ["pauseBroadcast", "resumeBroadcast", "muteBroadcast", "unmuteBroadcast"])})
        elif op == "volume":
            await client.send({"action": "setVolume", "volumeLevel": round(chaos.random.random(), 2)})
        elif op == "audio":
            await client.send({"action": "sendAudio", "audioData": "AAAA" * 50})
        elif op == "refresh":
            fresh = await Client.start(chaos, action="refreshConnection", sessionId=client.session_id,
                                      role="speaker", token=token)
            if fresh is not None:
                await client.close()  # a replaced speaker connection ends nothing
                client = fresh
        elif op in ("end", "drop"):
            if client.session_id in chaos.sessions:
                chaos.sessions.remove(client.session_id)
            if op == "end":
                await client.send({"action": "endSession"})
                try:  # the server says sessionEnded and closes every connection
                    await asyncio.wait_for(asyncio.shield(client.reader), 10)
                except asyncio.TimeoutError:
                    chaos.server_error("endSession did not close the speaker's socket")
                    await client.drop()
            else:
                await client.drop()
            client = None
        await pause(chaos)
    return [client] if client is not None and client.alive else []


async def listener(chaos):
    client = None
    while chaos.running():
        if client is None or not client.alive:
            if not chaos.sessions:
                await pause(chaos)
                continue
            client = await Client.start(chaos, action="joinSession", sessionId=chaos.random.choice(chaos.sessions),
                                        targetLanguage=chaos.random.choice(LANGUAGES))
            chaos.ops["listener join"] += 1
            await pause(chaos)
            continue
        op = chaos.pick("listener", LISTENER_OPS)
        if op == "heartbeat":
            await client.send({"action": "heartbeat"})
        elif op == "status":
            await client.send({"action": "getSessionStatus"})
        elif op == "language":
            await client.send({"action": "changeLanguage", "targetLanguage": chaos.random.choice(LANGUAGES)})
        elif op == "leave":
            await client.close()
            client = None
        elif op == "drop":
            await client.drop()
            client = None
        else:
            query = {"action": "refreshConnection", "sessionId": client.session_id, "role": "listener",
                     "targetLanguage": chaos.random.choice(LANGUAGES)}
            if op == "refresh-named":
                query["previousConnectionId"] = client.connection_id
            fresh = await Client.start(chaos, **query)
            if fresh is not None:
                await client.close()
                client = fresh
        await pause(chaos)
    return [client] if client is not None and client.alive else []


class Tables:
    """The app's tables, read whole through boto3 at the stack's AWS endpoint."""

    def __init__(self, stack):
        dynamodb = boto3.resource("dynamodb", endpoint_url=stack.aws, region_name="us-east-1",
                                  config=Config(retries={"max_attempts": 3}))
        self.sessions, self.connections = dynamodb.Table(SESSIONS_TABLE), dynamodb.Table(CONNECTIONS_TABLE)

    @staticmethod
    def _scan(table):
        items, kwargs = [], {"ConsistentRead": True}
        while True:
            page = table.scan(**kwargs)
            items += page["Items"]
            if "LastEvaluatedKey" not in page:
                return items
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def drift(self):
        """{session id: (listenerCount, listener rows holding a place)} where they differ."""
        holding = Counter(row["sessionId"] for row in self._scan(self.connections)
                          if row["role"] == "listener" and not row.get("replacedBy"))
        return {s["sessionId"]: (int(s.get("listenerCount", 0)), holding[s["sessionId"]])
                for s in self._scan(self.sessions)
                if s["status"] == "active" and int(s.get("listenerCount", 0)) != holding[s["sessionId"]]}

    def active_counts(self):
        return {s["sessionId"]: int(s.get("listenerCount", 0))
                for s in self._scan(self.sessions) if s["status"] == "active"}

    def connection_rows(self):
        return self._scan(self.connections)


async def run_chaos(chaos):
    tasks = [speaker(chaos, i) for i in range(SPEAKERS)] + [listener(chaos) for _ in range(LISTENERS)]
    survivors = [client for group in await asyncio.gather(*tasks) for client in group]
    return survivors


async def close_all(clients):
    await asyncio.gather(*(client.close() for client in clients), return_exceptions=True)


def test_chaos_leaves_no_drift_and_no_orphans(make_stack_process):
    """A hundred sockets in chaos for ATTACK_CHAOS_SECONDS: no server error seen by any
    client; quiet, every count equals its rows and its open sockets; all closed and
    swept, no row left."""
    stack = make_stack_process(
        MAX_LISTENERS_PER_SESSION="40", RATE_LIMIT_CONNECTS_PER_MINUTE="0",
        RATE_LIMIT_SESSIONS_PER_HOUR="0", GATEWAY_SCHEDULE_PERIOD_SECONDS="2",
        SPEAKER_RECONNECT_GRACE_SECONDS="0")
    seed = int(os.environ.get("ATTACK_CHAOS_SEED", time.time()))
    chaos = Chaos(stack, seed)
    tables = Tables(stack)
    loop = asyncio.new_event_loop()
    try:
        survivors = loop.run_until_complete(run_chaos(chaos))
        time.sleep(2)  # in-flight $connect/$disconnect handlers finish
        drift = wait_until(lambda: tables.drift() == {} and "settled", 20,
                           f"counts to match rows (seed {seed}): {tables.drift()}")
        # The listener sockets the clients hold, per active session, against its count.
        live = Counter(c.session_id for c in survivors if c.alive and c.is_listener)
        counts = tables.active_counts()
        sockets_vs_counts = {s: (live[s], n) for s, n in counts.items() if live[s] != n}
        loop.run_until_complete(close_all(survivors))
    finally:
        loop.close()
    wait_until(lambda: tables.connection_rows() == [], 30, "every $disconnect to be handled")
    run_sweep(stack)
    orphans = tables.connection_rows()
    chaos.figures.wrongly_accepted += len(sockets_vs_counts) + len(orphans)
    chaos.figures.extra.update(seed=seed, sockets=SPEAKERS + LISTENERS, seconds_of_chaos=SECONDS,
                               operations=dict(sorted(chaos.ops.items())))
    assert chaos.server_errors == [], f"seed {seed}"
    assert drift == "settled"
    assert sockets_vs_counts == {}, f"seed {seed}: (open sockets, listenerCount) per session"
    assert orphans == []
    # The chaos really happened: every kind of operation, hundreds in all.
    assert len(chaos.ops) == 16 and chaos.figures.tried >= 500, chaos.ops
