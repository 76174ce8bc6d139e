"""Measure each event on the real handlers: calls, request units, CPU, bytes.

The scenario runs app.py's handlers in-process against moto (``mock_aws``) through
the functional tests' API Gateway stand-in (tests/support/harness.py), with the
tests' call counter extended by :class:`tools.scaling.meter.Meter`. One session of
``listeners`` listeners over ``languages`` languages lives through every event the
capacity model needs, each measured on its own:

    speaker create, join, heartbeat (listener, speaker), heartbeat with the refresh
    notice, translation (listing reused / read), control, audio chunk (Kinesis and
    relay), listener refresh, speaker refresh, listener leave, speaker leave with
    its listeners, and the sweep (empty, and with the session idle).

Nothing here is typed in: the counts the model multiplies are these measurements
(tests/functional/test_capacity.py checks them against the call budgets).
"""

from __future__ import annotations

import base64
import json
import os
import statistics
import time
from contextlib import ExitStack, contextmanager
from typing import Callable, Dict, List, Optional

import attrs

# The app reads configuration at import; nothing here may reach a real account.
_ENDPOINTS = ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_DYNAMODB", "AWS_PROFILE")
FAKE_AWS = {
    "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing", "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_REGION": "us-east-1", "AWS_CONFIG_FILE": os.devnull,
    "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
}



@contextmanager
def aws_environment(**extra: str):
    """Fake credentials, no profile, no endpoint but ``extra``'s, for the block:
    whatever runs in it cannot reach a real AWS account."""
    saved = {k: os.environ.get(k) for k in [*FAKE_AWS, *_ENDPOINTS, *extra]}
    for name in _ENDPOINTS:
        os.environ.pop(name, None)
    os.environ.update(FAKE_AWS, **extra)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


STREAM = "broadcast-audio"
MANAGEMENT_URL = "https://abcdef1234.execute-api.us-east-1.amazonaws.com/dev"
# The Sessions index before issue 10 (partition key status, projection ALL), priced
# against the same writes; not part of the table any more.
OLD_INDEX = "status-expiresAt-index (before)"
MESSAGE_BILLING_BYTES = 32 * 1024
# Derived events: what a fan-out's read of the listeners' listing adds, and what one
# idle session adds to a sweep.
LISTING = "listing read"
SWEEP_SESSION = "sweep, per idle session"  # API Gateway meters WebSocket messages in 32 KB steps

# app.py's handlers -> the Lambda functions they are deployed as.
FUNCTIONS = {
    "authorizer": "authorizer",
    "on_ws_connect": "websocket_connect",
    "on_ws_message": "websocket_message",
    "on_ws_disconnect": "websocket_disconnect",
    "deliver_welcome": "deliver_welcome",
    "publish": "publish",
    "sweep": "sweep",
    "sweep_shard": "sweep_shard",
}


@attrs.frozen
class EventCost:
    """One event as measured: what it invoked, called, consumed and sent."""

    name: str
    invocations: Dict[str, int]  # function -> invocations
    cpu_ms: Dict[str, float]  # function -> our CPU (ms), all its invocations together
    calls: Dict[str, Dict[str, Dict[str, int]]]  # function -> main|pool -> "service.Op" -> n
    units: List[list]  # [table, index, "rru"|"wru", key class, units]
    posts: List[int]  # bytes of each @connections post
    received: List[int] = attrs.field(factory=list)  # bytes of each client message
    records: List[int] = attrs.field(factory=list)  # bytes of each Kinesis record

    @property
    def total_calls(self) -> int:
        return sum(n for where in self.calls.values() for ops in where.values() for n in ops.values())

    def count(self, name: str, function: Optional[str] = None) -> int:
        """Calls of ``service.Op`` (in ``function``, else in all)."""
        return sum(n for f, where in self.calls.items() if function in (None, f)
                   for ops in where.values() for op, n in ops.items() if op == name)

    def unit_total(self, kind: str, table: Optional[str] = None, index: Optional[str] = None) -> float:
        return sum(u for t, i, k, _, u in self.units
                   if k == kind and table in (None, t) and index in (None, i))

    def to_dict(self) -> dict:
        return attrs.asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "EventCost":
        return cls(**data)


@attrs.frozen
class Measurements:
    listeners: int
    languages: int
    events: Dict[str, EventCost]
    client_cpu_ms: float  # botocore's own CPU per call the harness stands in for
    sizes: List[list]  # [table, index, key class, largest bytes]
    config: Dict[str, object]

    def __getitem__(self, name: str) -> EventCost:
        return self.events[name]

    def to_dict(self) -> dict:
        return {"listeners": self.listeners, "languages": self.languages,
                "client_cpu_ms": self.client_cpu_ms, "sizes": self.sizes, "config": self.config,
                "events": {name: e.to_dict() for name, e in self.events.items()}}

    @classmethod
    def from_dict(cls, data: dict) -> "Measurements":
        return cls(data["listeners"], data["languages"],
                   {n: EventCost.from_dict(e) for n, e in data["events"].items()},
                   data["client_cpu_ms"], data["sizes"], data["config"])


def billed_messages(sizes: List[int]) -> int:
    """API Gateway WebSocket messages as billed: one per started 32 KB."""
    return sum(max(1, -(-size // MESSAGE_BILLING_BYTES)) for size in sizes)


def difference(name: str, more: EventCost, less: EventCost) -> EventCost:
    """What ``more`` costs beyond ``less`` (the same event with one thing more): its
    calls and units exactly, its CPU as the difference of the medians (at least 0),
    and no invocations or bytes of its own."""
    def minus(a: dict, b: dict) -> dict:
        return {k: a.get(k, 0) - b.get(k, 0) for k in set(a) | set(b) if a.get(k, 0) != b.get(k, 0)}

    calls = {}
    for function in set(more.calls) | set(less.calls):
        where = {w: minus(more.calls.get(function, {}).get(w, {}), less.calls.get(function, {}).get(w, {}))
                 for w in ("main", "pool")}
        if any(where.values()):
            calls[function] = where
    units: Dict[tuple, float] = {}
    for sign, event in ((1, more), (-1, less)):
        for table, index, kind, key_class, value in event.units:
            key = (table, index, kind, key_class)
            units[key] = units.get(key, 0) + sign * value
    return EventCost(
        name=name, invocations={},
        cpu_ms={f: max(0.0, more.cpu_ms.get(f, 0.0) - less.cpu_ms.get(f, 0.0)) for f in more.cpu_ms},
        calls=calls, units=sorted([list(k) + [v] for k, v in units.items() if abs(v) > 1e-9]), posts=[],
    )


def metered_gateway(app_module, config, meter, post_seconds: float = 0.0):
    """The functional tests' gateway, attributing work to the function it runs and
    recording each invocation as (function, our CPU seconds, wall seconds). Each
    @connections post takes ``post_seconds`` (a stand-in for the network)."""
    from tests.support.harness import FakeManagementClient, Gateway
    from chalicelib.connections_api import ConnectionsApi

    names = {id(getattr(app_module, attr)): name for attr, name in FUNCTIONS.items()}

    class SizedManagementClient(FakeManagementClient):
        def post_to_connection(self, ConnectionId, Data):
            meter.post(Data)
            if post_seconds:
                time.sleep(post_seconds)
            return super().post_to_connection(ConnectionId, Data)

    class MeteredGateway(Gateway):
        def __init__(self):
            super().__init__(app_module, config)
            self.invocations: List[tuple] = []
            self.runtime.connections_api = self._connections_api

        def _connections_api(self, endpoint):
            self.endpoints.add(endpoint)
            return ConnectionsApi(SizedManagementClient(self))

        def invoke(self, handler, event):
            name = names.get(id(handler), "?")
            meter.function = name
            wall, cpu, emulated = time.perf_counter(), time.process_time(), meter.emulator.seconds
            try:
                return super().invoke(handler, event)
            finally:
                ours = time.process_time() - cpu - (meter.emulator.seconds - emulated)
                self.invocations.append((name, ours, time.perf_counter() - wall))
                meter.function = "-"

    return MeteredGateway()


class Scenario:
    """One session's life, event by event, against the in-process moto."""

    def __init__(self, listeners: int, languages: int, *, audio_bytes: int,
                 translation_bytes: int, sweep_shards: int = 16) -> None:
        if listeners < 4:
            raise ValueError("the scenario needs at least 4 listeners")
        self.listeners = listeners
        self.audio_bytes = audio_bytes
        self.translation_bytes = translation_bytes
        self.sweep_shards = sweep_shards
        self.languages_wanted = languages
        self.events: Dict[str, EventCost] = {}
        self.speakers = set()

    # -- setup ---------------------------------------------------------------------------

    def _config(self):
        from chalicelib.config import Config
        from chalicelib.wire.languages import DEFAULT_SUPPORTED_LANGUAGES
        from tests.support.tokens import AUDIENCE, ISSUER

        self.targets = [c for c in DEFAULT_SUPPORTED_LANGUAGES if c != "en"][: self.languages_wanted]
        return Config.from_environ({
            "TOKEN_ISSUER": ISSUER, "TOKEN_AUDIENCE": AUDIENCE,
            "MAX_LISTENERS_PER_SESSION": str(max(500, self.listeners + 1)),
            "MANAGEMENT_API_URL": MANAGEMENT_URL,
            "AUDIO_SINK": "kinesis", "AUDIO_STREAM_NAME": STREAM,
            "SWEEP_SHARDS": str(self.sweep_shards),
        })

    def _classify(self, table, index, attribute, value) -> str:
        if attribute == "connectionId":
            return "speaker row" if value in self.speakers else "listener row"
        return {"sessionId": "session", "sweepShard": "sweep shard", "status": "status",
                "limitKey": "rate key"}.get(attribute, attribute)

    def run(self) -> Measurements:
        with aws_environment():
            return self._run()

    def _run(self) -> Measurements:
        import boto3
        from moto import mock_aws

        import app as app_module
        from chalicelib.auth.tokens import JwksCache, TokenVerifier
        from chalicelib.state.schema import ensure_tables, table_definitions
        from tests.support.calls import counting
        from tests.support.tokens import AUDIENCE, ISSUER, Issuer
        from tools.scaling.meter import EmulatorCpu, Meter
        from tools.scaling.units import IndexSpec

        config = self._config()
        self.config = config
        with ExitStack() as stack:
            stack.enter_context(mock_aws())
            client = boto3.client("dynamodb", region_name="us-east-1")
            ensure_tables(client, config)
            boto3.client("kinesis", region_name="us-east-1").create_stream(StreamName=STREAM, ShardCount=1)
            peeker = boto3.session.Session().client("dynamodb", region_name="us-east-1")

            def peek(table, key):
                return peeker.get_item(TableName=table, Key=key, ConsistentRead=True).get("Item")

            emulator = EmulatorCpu()
            stack.callback(emulator.install_moto())
            tables = table_definitions(config)
            # The index the sweep used before issue 10, to price the same writes against it.
            old_index = IndexSpec(OLD_INDEX, ["sessionId"], ["status", "expiresAt"])
            self.meter = meter = Meter(tables=tables, extra_indexes={config.sessions_table: [old_index]},
                                       peek=peek, classify=self._classify, emulator=emulator)
            self.issuer = Issuer()
            self.gateway = gateway = metered_gateway(app_module, config, meter)
            gateway.runtime.__dict__["verifier"] = TokenVerifier(
                issuer=ISSUER, audience=AUDIENCE, token_use="id",
                jwks=JwksCache("http://127.0.0.1:9/jwks.json", 300, fetch=lambda url: self.issuer.jwks()),
            )
            counting(gateway, meter)
            self._events()
            client_cpu = self._client_cpu_ms(emulator)
        return Measurements(
            self.listeners, len(self.targets), self.events, client_cpu,
            sorted([list(k) + [v] for k, v in meter.sizes.items()]),
            {"sweep_shards": config.sweep_shards, "sweep_concurrency": config.sweep_concurrency,
             "publish_concurrency": config.publish_concurrency,
             "heartbeat_interval_seconds": config.heartbeat_interval_seconds,
             "connection_refresh_minutes": config.connection_refresh_minutes,
             "session_max_duration_hours": config.session_max_duration_hours,
             "supported_languages": len(config.supported_languages)},
        )

    # -- measuring -----------------------------------------------------------------------

    def measure(self, name: str, action: Callable[[], None], received: List[int] = (),
                repeat: int = 1) -> EventCost:
        """Run ``action`` (``repeat`` times, each measured alone) and keep its cost: the
        calls, units and bytes of the last run, the median CPU of all runs."""
        meter, gateway = self.meter, self.gateway
        runs = []
        for _ in range(repeat):
            meter.reset()
            gateway.invocations.clear()
            action()
            cpu: Dict[str, float] = {}
            for function, seconds, _ in gateway.invocations:
                cpu[function] = cpu.get(function, 0.0) + seconds * 1000
            runs.append(cpu)
        invocations: Dict[str, int] = {}
        for function, _, _ in gateway.invocations:
            invocations[function] = invocations.get(function, 0) + 1
        cost = EventCost(
            name=name, invocations=invocations,
            cpu_ms={f: statistics.median(run.get(f, 0.0) for run in runs) for f in invocations},
            calls=meter.calls_by_function(),
            units=sorted([list(k) + [v] for k, v in meter.units.items()]),
            posts=list(meter.posts), received=list(received), records=list(meter.records),
        )
        self.events[name] = cost
        return cost

    def _connect(self, query: dict) -> str:
        status, body, cid = self.gateway.connect(query)
        if status != 200:
            raise RuntimeError(f"connect {query.get('action')} refused: {status} {body}")
        return cid

    def _send(self, cid: str, body: dict) -> List[int]:
        self.gateway.send(cid, body)
        return [len(json.dumps(body))]

    def _join(self, language: str) -> str:
        return self._connect({"action": "joinSession", "sessionId": self.session_id,
                              "targetLanguage": language})

    def _publish(self, language: str) -> None:
        audio = base64.b64encode(os.urandom(self.translation_bytes * 3 // 4)).decode()
        event = {"sessionId": self.session_id, "targetLanguage": language, "type": "translation",
                 "data": {"text": "Bienaventurados los mansos, porque ellos recibirán la tierra.",
                          "audioData": audio, "format": "mp3"}}
        result = self.gateway.invoke(self.gateway.app.publish, event)
        if "error" in result:
            raise RuntimeError(f"publish failed: {result}")

    def _create(self, user: str) -> None:
        cid = self.gateway.new_connection_id()
        self.speakers.add(cid)  # its row is the speaker's from the first write
        self._connect_as(cid, {"action": "createSession", "sourceLanguage": "en",
                               "token": self.issuer.token(user)})
        self.speaker = cid
        self.session_id = self.gateway.last(cid)["sessionId"]

    def _warm_up(self) -> None:
        """A first session through every code path, then ended: the measured events
        run warm, as they do in a busy Lambda container."""
        self._create("speaker-warm-up")
        listener = self._join(self.targets[0])
        self._send(listener, {"action": "heartbeat"})
        self._publish(self.targets[0])
        self._send(self.speaker, {"action": "pauseBroadcast"})
        self._send(self.speaker, {"action": "resumeBroadcast"})
        self.gateway.close(self.speaker)
        self.gateway.sweep()

    def _events(self) -> None:
        gateway, clock = self.gateway, self.gateway.runtime.clock
        self._warm_up()
        self.measure("sweep (no sessions)", gateway.sweep, repeat=3)
        self.measure("speaker create", lambda: self._create("speaker-1"))
        self.members = [self._join(self.targets[i % len(self.targets)]) for i in range(self.listeners - 1)]
        self.measure("join", lambda: self.members.append(self._join(self.targets[-1])))
        clock.advance(2)  # the members index has settled on the last join
        first = self.targets[0]
        self.measure("translation (listing read)", lambda: self._publish(first))
        self.measure("translation", lambda: self._publish(first), repeat=5)
        pause, resume = {"action": "pauseBroadcast"}, {"action": "resumeBroadcast"}
        # A listing of one language serves only its own publishes: the first control
        # reads all languages' (measured apart), the next ones reuse it.
        self.measure("control (listing read)", lambda: self._send(self.speaker, pause), [len(json.dumps(pause))])
        self._send(self.speaker, resume)
        self.measure("control", lambda: self._send(self.speaker, pause), [len(json.dumps(pause))])
        self._send(self.speaker, resume)
        audio = {"action": "sendAudio", "sequenceNumber": 1, "format": "pcm16/16000",
                 "audioData": base64.b64encode(os.urandom(self.audio_bytes)).decode()}
        size = [len(json.dumps(audio))]
        self.measure("audio chunk (kinesis)", lambda: self._send(self.speaker, audio), size, repeat=5)
        self._measure_relay(audio, size)
        heartbeat = {"action": "heartbeat"}
        size = [len(json.dumps(heartbeat))]
        beats = iter(range(10))
        self.measure("heartbeat (listener)", lambda: self._send(self.members[next(beats) % len(self.members)], heartbeat),
                     size, repeat=10)
        self.measure("heartbeat (speaker)", lambda: self._send(self.speaker, heartbeat), size, repeat=5)
        self.measure("sweep (one idle session)", gateway.sweep, repeat=3)
        left = self.members.pop(2)
        self.measure("listener leave", lambda: gateway.close(left))
        self.members.append(self._join(self.targets[0]))  # back to `listeners` listeners
        self._refreshes()
        clock.advance(self.config.connection_refresh_minutes * 60)
        self.measure("heartbeat (refresh notice)", lambda: self._send(self.members[3], heartbeat), size)
        self.measure("speaker leave", lambda: gateway.close(self.speaker))
        events = self.events
        events[LISTING] = difference(LISTING, events["translation (listing read)"], events["translation"])
        events[SWEEP_SESSION] = difference(SWEEP_SESSION, events["sweep (one idle session)"],
                                           events["sweep (no sessions)"])

    def _measure_relay(self, audio: dict, size: List[int]) -> None:
        from chalicelib import audio as sinks

        # The router holds the sink it was built with (AUDIO_SINK is read once, at
        # cold start): swap it there for this one measurement.
        broadcast = self.gateway.runtime.router.actions["sendAudio"].__self__
        kinesis = broadcast._audio_sink
        broadcast._audio_sink = sinks.RelaySink(self.gateway.runtime.publisher)
        try:
            self.measure("audio chunk (relay)", lambda: self._send(self.speaker, audio), size, repeat=5)
        finally:
            broadcast._audio_sink = kinesis

    def _refreshes(self) -> None:
        gateway = self.gateway
        old = self.members[1]
        language = self.targets[1 % len(self.targets)]

        def listener_refresh():
            new = self._connect({"action": "refreshConnection", "sessionId": self.session_id,
                                 "role": "listener", "targetLanguage": language,
                                 "previousConnectionId": old})
            gateway.close(old)
            self.members[1] = new

        self.measure("listener refresh", listener_refresh)

        def speaker_refresh():
            previous = self.speaker
            new = gateway.new_connection_id()
            self.speakers.add(new)
            self._connect_as(new, {"action": "refreshConnection", "sessionId": self.session_id,
                                   "role": "speaker", "token": self.issuer.token("speaker-1")})
            gateway.close(previous)
            self.speaker = new

        self.measure("speaker refresh", speaker_refresh)

    def _connect_as(self, cid: str, query: dict) -> None:
        status, body, _ = self.gateway.connect(query, connection_id=cid)
        if status != 200:
            raise RuntimeError(f"connect {query.get('action')} refused: {status} {body}")

    def _client_cpu_ms(self, emulator) -> float:
        """botocore's client-side CPU per call (serialise, sign, parse), measured on a
        real @connections client: the harness stands in for @connections and for
        Lambda's Invoke, so their calls would otherwise cost no client CPU at all."""
        import boto3

        client = boto3.client("apigatewaymanagementapi", endpoint_url=MANAGEMENT_URL,
                              region_name="us-east-1")
        data = json.dumps({"type": "heartbeatAck", "timestamp": 0}).encode()
        client.post_to_connection(ConnectionId="warm", Data=data)
        calls = 200
        cpu, emulated = time.process_time(), emulator.seconds
        for i in range(calls):
            client.post_to_connection(ConnectionId=f"c{i}", Data=data)
        return (time.process_time() - cpu - (emulator.seconds - emulated)) * 1000 / calls


def measure(listeners: int = 100, languages: int = 5, *, audio_bytes: int = 8000,
            translation_bytes: int = 12000, sweep_shards: int = 16) -> Measurements:
    """Run the scenario (about a second per 30 listeners) and return its measurements."""
    return Scenario(listeners, languages, audio_bytes=audio_bytes,
                    translation_bytes=translation_bytes, sweep_shards=sweep_shards).run()
