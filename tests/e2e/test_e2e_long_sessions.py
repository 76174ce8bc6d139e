"""End to end: issue 5's "Done when", against the real local stack over real sockets.

Every test starts its own ``python -m local_stack run`` (``make_stack_process``) with
the app's timers shrunk from minutes to seconds through the environment, exactly as a
user would with ``make run``; the gateway runs the ``sweep`` schedule every 0.5 s.
State is read (and, to model a lost ``$disconnect``, written) through boto3 at the
stack's AWS endpoint; clients are the reference client (``python -m broadcast_client``
as subprocesses) or raw ``websockets`` sockets where a test needs a client that
misbehaves on purpose (silent, never refreshing).

Timer values leave wide margins for a loaded 2-core machine: heartbeats every 0.5 s
against a 2.5 s timeout, a refresh notice at 3.6 s of age with 6 s more before the
server would close the connection for its age. The only timing assertions are
generous timeouts, and lower bounds taken from the server's own timestamps.

A check that something did *not* happen (no second count correction, no end of a
session the speaker came back to) first runs a sweep itself (:func:`run_sweep`): the
``sweep`` function through the gateway's Lambda Invoke API, as EventBridge would invoke
it, which returns the sweep's report once it has run. So the check follows a sweep that
started after the moment of interest and says it looked at the session, instead of
trusting that a scheduled one happened to run in a slept-through window.

TestSweepDuringSpeakerConnect reproduces a race between the sweep and a speaker's
``$connect`` (fixed; these are its regression tests) by stretching ``$connect`` through a slow
Lambda endpoint.
"""
import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import boto3
import pytest
from boto3.dynamodb.conditions import Key
from botocore.config import Config
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from chalicelib.state.schema import CONNECTIONS_MEMBERS_INDEX, SPEAKER_MEMBER

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.e2e

HEARTBEAT_INTERVAL = 0.5
#: The app's timers for the tests with the default grace (0).
TIMERS = {
    "GATEWAY_SCHEDULE_PERIOD_SECONDS": "0.5",
    "HEARTBEAT_INTERVAL_SECONDS": str(HEARTBEAT_INTERVAL),
    "HEARTBEAT_TIMEOUT_SECONDS": "2.5",
    "CONNECTION_REFRESH_MINUTES": "0.06",  # 3.6 s
    "CONNECTION_WARNING_MINUTES": "0.11",  # 6.6 s
    "CONNECTION_MAX_DURATION_MINUTES": "0.16",  # 9.6 s
}
SESSIONS_TABLE = os.environ.get("SESSIONS_TABLE", "Sessions")
CONNECTIONS_TABLE = os.environ.get("CONNECTIONS_TABLE", "Connections")
# Messages that say nothing about the session's life.
CHATTER = ("heartbeatAck", "listenerPresence")  # the latter: the speaker's counts, checked elsewhere


# -- helpers -------------------------------------------------------------------


def wait_until(predicate, timeout, what, interval=0.1):
    """Poll ``predicate`` until it returns something truthy; return that."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)


class State:
    """The app's tables, read and written directly through boto3."""

    def __init__(self, stack):
        dynamodb = boto3.resource("dynamodb", endpoint_url=stack.aws, region_name="us-east-1",
                                  config=Config(retries={"max_attempts": 2}))
        self.sessions = dynamodb.Table(SESSIONS_TABLE)
        self.connections = dynamodb.Table(CONNECTIONS_TABLE)

    def session(self, session_id):
        return self.sessions.get_item(Key={"sessionId": session_id}, ConsistentRead=True).get("Item")

    def count(self, session_id):
        return int(self.session(session_id)["listenerCount"])

    def connection(self, connection_id):
        return self.connections.get_item(Key={"connectionId": connection_id},
                                         ConsistentRead=True).get("Item")

    def listener_ids(self, session_id):
        """Connection ids of the session's listener rows (the app's own index)."""
        ids, kwargs = set(), {"IndexName": CONNECTIONS_MEMBERS_INDEX,
                              "KeyConditionExpression": Key("sessionId").eq(session_id)
                              & Key("member").lt(SPEAKER_MEMBER)}
        while True:
            page = self.connections.query(**kwargs)
            ids.update(item["connectionId"] for item in page["Items"])
            if "LastEvaluatedKey" not in page:
                return ids
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def settled(self, session_id, listener_ids):
        """True when the rows are exactly ``listener_ids`` and, while the session is
        active, the count matches (an ended session's count is not kept)."""
        listener_ids = set(listener_ids)
        if self.listener_ids(session_id) != listener_ids:
            return False
        return self.session(session_id)["status"] != "active" or self.count(session_id) == len(listener_ids)

    def add_to_count(self, session_id, delta):
        self.sessions.update_item(Key={"sessionId": session_id},
                                  UpdateExpression="ADD listenerCount :d",
                                  ExpressionAttributeValues={":d": delta})


def run_sweep(stack):
    """Run one sweep now, every shard of it, and wait for it; the shards' reports
    summed (``sessions``, ``ended``, ``closed``, ``notices``, ``released``,
    ``skipped``). The Invoke API's RequestResponse returns once the handler has; the
    scheduled sweeps keep running alongside, as overlapping EventBridge invocations
    may in AWS."""
    client = boto3.client("lambda", endpoint_url=stack.http, region_name="us-east-1",
                          config=Config(retries={"max_attempts": 1}, read_timeout=60))
    total = {}
    for shard in range(int(stack.env.get("SWEEP_SHARDS", 16))):
        response = client.invoke(FunctionName="sweep_shard", Payload=json.dumps({"shard": shard}))
        assert "FunctionError" not in response, json.loads(response["Payload"].read())
        for key, value in json.loads(response["Payload"].read()).items():
            if key != "shard":
                total[key] = total.get(key, 0) + value
    return total


def management(stack):
    return boto3.client("apigatewaymanagementapi", endpoint_url=stack.http, region_name="us-east-1",
                        config=Config(retries={"max_attempts": 1}))


def socket_is_gone(stack, connection_id):
    """GET @connections/{id} answers 410: the gateway holds no such socket."""
    try:
        management(stack).get_connection(ConnectionId=connection_id)
    except management(stack).exceptions.GoneException:
        return True
    return False


class RawSocket:
    """A bare ``websockets`` client: records every message; optionally heartbeats
    (and never does anything else, in particular never refreshes)."""

    def __init__(self, stack, heartbeat=None, **query):
        self._context = ExitStack()
        self.ws = self._context.enter_context(connect(stack.url(**query), open_timeout=10, close_timeout=2))
        self.messages = []
        self.close_code = None
        self.closed = threading.Event()
        self._stop = threading.Event()
        self._changed = threading.Condition()
        threading.Thread(target=self._read, daemon=True).start()
        if heartbeat:
            threading.Thread(target=self._beat, args=(heartbeat,), daemon=True).start()

    def _read(self):
        try:
            for text in self.ws:
                with self._changed:
                    self.messages.append(json.loads(text))
                    self._changed.notify_all()
        except ConnectionClosed:
            pass
        finally:
            rcvd = self.ws.protocol.close_rcvd
            with self._changed:
                self.close_code = rcvd.code if rcvd is not None else None
                self.closed.set()
                self._changed.notify_all()

    def _beat(self, interval):
        while not self._stop.wait(interval):
            try:
                self.ws.send(json.dumps({"action": "heartbeat"}))
            except ConnectionClosed:
                return

    def send(self, **message):
        self.ws.send(json.dumps(message))

    def wait_for(self, type_, timeout=10.0):
        """The first message of ``type_`` (waiting for it if need be)."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                for message in self.messages:
                    if message["type"] == type_:
                        return message
                remaining = deadline - time.monotonic()
                if remaining <= 0 or self.closed.is_set():
                    raise AssertionError(f"no {type_} within {timeout} s; got {self.types()}, "
                                         f"closed {self.closed.is_set()} ({self.close_code})")
                self._changed.wait(min(remaining, 0.2))

    def wait_closed(self, timeout=10.0):
        """Wait for the socket to close; the code the server closed it with."""
        assert self.closed.wait(timeout), f"still open after {timeout} s; got {self.types()}"
        return self.close_code

    def types(self):
        return [m["type"] for m in list(self.messages) if m["type"] not in CHATTER]

    def assert_untouched(self):
        """Still open, and told nothing about leaving (refresh notices may come)."""
        assert not self.closed.is_set(), self.types()
        assert not {"connectionClosed", "sessionEnded"} & set(self.types()), self.types()

    @property
    def connection_id(self):
        """The id the server gave this connection, from its first message."""
        deadline = time.monotonic() + 10
        with self._changed:
            while not self.messages:
                remaining = deadline - time.monotonic()
                assert remaining > 0 and not self.closed.is_set(), "no first message"
                self._changed.wait(min(remaining, 0.2))
            return self.messages[0]["connectionId"]

    def close(self):
        self._stop.set()
        self._context.close()
        self.closed.wait(5)


class ClientProcess:
    """``python -m broadcast_client ...`` as a child process; its ``< {json}`` lines
    parsed as they come."""

    def __init__(self, stack, *args):
        env = {**os.environ, "BROADCAST_URL": stack.ws, "BROADCAST_TOKEN": stack.token("alice")}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "broadcast_client", "--heartbeat-interval", str(HEARTBEAT_INTERVAL),
             *args],
            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.messages, self.notes = [], []
        self._changed = threading.Condition()
        self._readers = [threading.Thread(target=self._read, args=(self.process.stdout, True), daemon=True),
                         threading.Thread(target=self._read, args=(self.process.stderr, False), daemon=True)]
        for reader in self._readers:
            reader.start()

    def _read(self, stream, out):
        for raw in iter(stream.readline, b""):
            line = raw.decode("utf-8", "replace").rstrip("\n")
            with self._changed:
                if out and line.startswith("< "):
                    self.messages.append(json.loads(line[2:]))
                elif line:
                    self.notes.append(line)
                self._changed.notify_all()

    def of_type(self, type_):
        with self._changed:
            return [m for m in self.messages if m.get("type") == type_]

    def wait_for(self, type_, count=1, timeout=15.0):
        """Wait until ``count`` messages of ``type_`` arrived; return the last one."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                found = [m for m in self.messages if m.get("type") == type_]
                if len(found) >= count:
                    return found[count - 1]
                remaining = deadline - time.monotonic()
                if remaining <= 0 or self.process.poll() is not None:
                    raise AssertionError(
                        f"{len(found)}/{count} {type_} within {timeout} s; "
                        f"types {[m.get('type') for m in self.messages if m.get('type') not in CHATTER]}, "
                        f"notes {self.notes}")
                self._changed.wait(min(remaining, 0.2))

    @property
    def connection_id(self):
        """The id of the connection that currently carries the client: the last welcome's."""
        with self._changed:
            welcomes = [m for m in self.messages
                        if m.get("type") in ("sessionCreated", "sessionJoined", "connectionRefreshComplete")]
        return welcomes[-1]["connectionId"]

    def interrupt(self):
        self.process.send_signal(signal.SIGINT)

    def finish(self, timeout=10):
        """Wait for the exit (killing it after ``timeout``); the exit status."""
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            raise
        finally:
            for reader in self._readers:
                reader.join(2)
            self.process.stdout.close()
            self.process.stderr.close()

    def kill(self):
        if self.process.poll() is None:
            self.process.kill()
        self.finish()


@pytest.fixture
def sockets():
    """RawSockets to close at the end of the test."""
    opened = []
    yield opened
    for ws in opened:
        ws.close()


@pytest.fixture
def clients():
    """ClientProcesses to stop at the end of the test."""
    started = []
    yield started
    for client in started:
        if client.process.returncode is None:
            client.kill()


def raw(sockets, stack, heartbeat=HEARTBEAT_INTERVAL, **query):
    ws = RawSocket(stack, heartbeat=heartbeat, **query)
    sockets.append(ws)
    return ws


def raw_speaker(sockets, stack, heartbeat=HEARTBEAT_INTERVAL):
    ws = raw(sockets, stack, heartbeat, action="createSession", sourceLanguage="en", token=stack.token())
    welcome = ws.wait_for("sessionCreated")
    return ws, welcome["sessionId"]


def raw_listener(sockets, stack, session_id, language="es", heartbeat=HEARTBEAT_INTERVAL):
    ws = raw(sockets, stack, heartbeat, action="joinSession", sessionId=session_id, targetLanguage=language)
    ws.wait_for("sessionJoined")
    return ws


# -- long sessions with the reference client -----------------------------------


class TestRefreshCycles:
    CYCLES = 3

    def test_speaker_and_three_listeners_survive_three_refresh_cycles(self, make_stack_process, clients):
        """The reference client follows every connectionRefreshRequired: four clients
        (one speaker, three listeners) each replace their connection three times, none is
        ever closed by the server, the listener count stays between 3 and 3 + the
        listeners mid-refresh, at each cycle's quiet moment it equals the listener rows,
        which are exactly the clients' current connections, and the session is active
        at the end with ``expiresAt`` extended by the speaker's refreshes."""
        stack = make_stack_process(**TIMERS)
        state = State(stack)
        speaker = ClientProcess(stack, "speak")
        clients.append(speaker)
        created = speaker.wait_for("sessionCreated")
        session_id = created["sessionId"]
        listeners = []
        for language in ("es", "fr", "de"):
            listeners.append(ClientProcess(stack, "listen", session_id, language))
            clients.append(listeners[-1])
        for listener in listeners:
            listener.wait_for("sessionJoined")
        everyone = [speaker, *listeners]

        def current_ids():
            return {listener.connection_id for listener in listeners}

        wait_until(lambda: state.settled(session_id, current_ids()), 10, "3 listener rows, count 3")

        samples, stop = [], threading.Event()

        def monitor():
            while not stop.wait(0.2):
                session = state.session(session_id)
                samples.append((session["status"], int(session["listenerCount"]),
                                len(state.listener_ids(session_id))))

        sampler = threading.Thread(target=monitor, daemon=True)
        sampler.start()
        try:
            for cycle in range(1, self.CYCLES + 1):
                for client in everyone:
                    client.wait_for("connectionRefreshComplete", count=cycle, timeout=20)
                # The quiet moment between two refreshes: rows == the clients' current
                # connections, count == rows, and the speaker is the speaker's current one.
                wait_until(lambda: state.settled(session_id, current_ids())
                           and state.session(session_id)["speakerConnectionId"] == speaker.connection_id,
                           10, f"a settled state after cycle {cycle}")
        finally:
            stop.set()
            sampler.join(5)

        assert samples, "the monitor took no sample"
        assert {status for status, _, _ in samples} == {"active"}
        counts = sorted({count for _, count, _ in samples})
        rows = sorted({row for _, _, row in samples})
        assert 3 <= counts[0] and counts[-1] <= 6, counts  # 3, plus listeners mid-refresh
        assert 3 <= rows[0] and rows[-1] <= 6, rows
        session = state.session(session_id)
        assert session["status"] == "active"
        assert session["expiresAt"] > created["expiresAt"]  # extended by the speaker's refreshes
        for client in everyone:
            # Every refresh was a refresh (on notice), never a reconnect after a close.
            assert not client.of_type("connectionClosed"), client.of_type("connectionClosed")
            assert not client.of_type("sessionEnded")
            assert not [n for n in client.notes if "connection lost" in n], client.notes
            assert len(client.of_type("connectionRefreshRequired")) >= self.CYCLES
        completed = [len(listener.of_type("connectionRefreshComplete")) for listener in listeners]
        assert min(completed) >= self.CYCLES

        speaker.interrupt()  # Ctrl-C: the speaker ends its session
        for listener in listeners:
            assert listener.wait_for("sessionEnded")["reason"] == "speakerEnded"
            assert listener.finish() == 0
        assert speaker.finish() == 0
        wait_until(lambda: state.settled(session_id, set()), 10, "no rows left, count 0")
        assert state.session(session_id)["status"] == "ended"


# -- the one-time notices and the server's own closes --------------------------


class TestNotices:
    def test_refresh_and_warning_once_then_max_duration(self, make_stack_process, clients, sockets):
        """Connections that heartbeat but never refresh (a listener, and a speaker of
        another session) get exactly one connectionRefreshRequired and one
        connectionWarning, though both heartbeats and the sweep could send them, then
        connectionClosed {maxDuration} and close 1000; their rows and count are cleaned."""
        stack = make_stack_process(**TIMERS)
        state = State(stack)
        speaker = ClientProcess(stack, "speak")  # refreshes: keeps session A alive
        clients.append(speaker)
        session_a = speaker.wait_for("sessionCreated")["sessionId"]
        listener = raw_listener(sockets, stack, session_a, "es")
        lone_speaker, session_b = raw_speaker(sockets, stack)

        for ws, role in ((listener, "listener"), (lone_speaker, "speaker")):
            assert ws.wait_closed(timeout=25) == 1000
            assert ws.types()[1:] == ["connectionRefreshRequired", "connectionWarning", "connectionClosed"], \
                (role, ws.types())
            notice = ws.wait_for("connectionRefreshRequired")
            assert notice["role"] == role and isinstance(notice["refreshBy"], int)
            assert notice["reconnectQuery"]["action"] == "refreshConnection"
            assert notice["reconnectQuery"]["role"] == role
            warning = ws.wait_for("connectionWarning")
            assert 0 < warning["remainingMinutes"] < 0.16
            assert ws.wait_for("connectionClosed")["reason"] == "maxDuration"
        notice = listener.wait_for("connectionRefreshRequired")
        assert notice["sessionId"] == session_a and notice["targetLanguage"] == "es"
        assert notice["reconnectQuery"] == {"action": "refreshConnection", "sessionId": session_a,
                                            "role": "listener", "targetLanguage": "es",
                                            "previousConnectionId": listener.wait_for("sessionJoined")["connectionId"]}
        assert "token" not in lone_speaker.wait_for("connectionRefreshRequired")["reconnectQuery"]

        wait_until(lambda: state.settled(session_a, set()), 10, "the listener's row and count cleaned")
        assert state.connection(listener.connection_id) is None
        assert state.session(session_a)["status"] == "active"  # the refreshing speaker's
        # The speaker that never refreshed took its session with it.
        wait_until(lambda: state.session(session_b)["status"] == "ended", 10, "session B ended")
        assert state.session(session_b)["endedReason"] == "speakerDisconnected"
        assert state.connection(lone_speaker.connection_id) is None
        speaker.interrupt()
        assert speaker.finish() == 0


class TestHeartbeatTimeout:
    def test_silent_listener_is_closed_and_cleaned(self, make_stack_process, sockets):
        """A listener that sends nothing receives connectionClosed {heartbeatTimeout}
        (its only message after sessionJoined), then close 1000; its row goes and the
        count drops, while a heartbeating listener of the same session stays."""
        stack = make_stack_process(**TIMERS)
        state = State(stack)
        speaker, session_id = raw_speaker(sockets, stack)
        alive = raw_listener(sockets, stack, session_id, "es")
        silent = raw_listener(sockets, stack, session_id, "fr", heartbeat=None)
        assert state.settled(session_id, {alive.connection_id, silent.connection_id})

        assert silent.wait_closed(timeout=15) == 1000
        assert silent.types() == ["sessionJoined", "connectionClosed"]
        assert silent.wait_for("connectionClosed")["reason"] == "heartbeatTimeout"
        wait_until(lambda: state.settled(session_id, {alive.connection_id}), 10,
                   "the silent listener's row and count cleaned")
        assert state.connection(silent.connection_id) is None
        alive.assert_untouched()
        speaker.assert_untouched()
        assert state.session(session_id)["status"] == "active"


# -- self-healing state: lost $disconnect --------------------------------------


def lose_disconnect(stack, state, ws, session_id):
    """Make ``ws`` a connection whose ``$disconnect`` was lost.

    The emulator, like API Gateway on a good day, runs ``$disconnect`` exactly once per
    connection and offers no switch to drop it. So the socket is really closed (the
    gateway forgets it: @connections answers 410 from then on), its ``$disconnect``
    runs and cleans up, and then exactly what that cleanup did is undone through boto3:
    the row, as it was, goes back, and ``listenerCount`` goes up by one, as the
    join's transaction had counted it. The result is indistinguishable from a lost
    ``$disconnect``: a counted row for a connection id the gateway issued and no longer
    holds. Returns the row.
    """
    row = state.connection(ws.connection_id)
    assert row is not None and row["role"] == "listener"
    before = state.count(session_id)
    ws.close()
    wait_until(lambda: state.connection(row["connectionId"]) is None and state.count(session_id) == before - 1,
               10, "$disconnect to clean up")
    state.connections.put_item(Item=row)
    state.add_to_count(session_id, 1)
    assert socket_is_gone(stack, row["connectionId"])
    return row


class TestLostDisconnect:
    def test_sweep_removes_the_ghost_and_corrects_the_count(self, make_stack_process, sockets):
        """A listener row left behind by a lost $disconnect (socket gone, row and count
        still there) is found by the sweep (silent past HEARTBEAT_TIMEOUT_SECONDS, the
        send of its connectionClosed gets 410), removed, and the count corrected, once;
        the live listener and the session are untouched."""
        stack = make_stack_process(**TIMERS)
        state = State(stack)
        speaker, session_id = raw_speaker(sockets, stack)
        alive = raw_listener(sockets, stack, session_id, "es")
        ghost_ws = raw_listener(sockets, stack, session_id, "fr")
        ghost = lose_disconnect(stack, state, ghost_ws, session_id)["connectionId"]
        assert state.settled(session_id, {alive.connection_id, ghost})  # the lost state

        wait_until(lambda: state.settled(session_id, {alive.connection_id}), 15, "the sweep to heal")
        # Two more sweeps, both started after the heal and both looking at the session:
        # the count moved once, not once per sweep.
        for _ in range(2):
            report = run_sweep(stack)
            assert report["sessions"] == 1 and report["closed"] == 0, report
        assert state.settled(session_id, {alive.connection_id})
        assert state.session(session_id)["status"] == "active"
        alive.assert_untouched()
        speaker.assert_untouched()

    def test_concurrent_sends_finding_the_ghost_gone_count_it_once(self, make_stack_process, sockets):
        """Several fan-outs at once (eight setVolume controls, handled concurrently as
        API Gateway does) all get 410 for the ghost: its row goes and the count drops
        by exactly one, however many senders noticed."""
        stack = make_stack_process(**TIMERS)
        state = State(stack)
        speaker, session_id = raw_speaker(sockets, stack)
        alive = raw_listener(sockets, stack, session_id, "es")
        ghost_ws = raw_listener(sockets, stack, session_id, "fr")
        ghost = lose_disconnect(stack, state, ghost_ws, session_id)["connectionId"]
        # Fresh timestamps: the sweep leaves the ghost alone for the next 2.5 s, so
        # the senders are the ones that find it gone.
        now_ms = int(time.time() * 1000)
        state.connections.update_item(Key={"connectionId": ghost},
                                      UpdateExpression="SET lastSeenAt = :n, connectedAt = :n",
                                      ExpressionAttributeValues={":n": Decimal(now_ms)})
        for i in range(8):
            speaker.send(action="setVolume", volumeLevel=round(0.2 + i * 0.1, 1))
        wait_until(lambda: len([m for m in speaker.messages if m["type"] == "controlAck"]) == 8, 10,
                   "eight controlAcks")
        wait_until(lambda: alive.types().count("volumeChanged") == 8, 10, "eight volumeChanged")
        wait_until(lambda: state.settled(session_id, {alive.connection_id}), 10, "the ghost removed")
        assert state.count(session_id) == 1
        assert state.session(session_id)["status"] == "active"


class TestOrphanedSession:
    def test_session_whose_speaker_vanished_is_ended_by_the_sweep(self, make_stack_process, sockets):
        """A session whose speaker connection is gone without a $disconnect is ended by
        the sweep (grace 0): every listener gets sessionEnded {speakerDisconnected} and
        close 1000, rows and count are cleaned, the speaker's stale row too.

        The vanished speaker connection is made real: the speaker refreshes (c2 takes
        over), its replaced connection c1 closes (closing a replaced speaker connection
        ends nothing, so its $disconnect only deletes c1's row); then c1's row is put
        back and the session pointed at c1 again, as before the refresh. Then c2, no
        longer the speaker, closes too; its $disconnect ends nothing. Left: a session
        whose speaker row exists and whose socket the gateway no longer holds, which is
        what a lost $disconnect of the speaker leaves.
        """
        stack = make_stack_process(**TIMERS)
        state = State(stack)
        c1, session_id = raw_speaker(sockets, stack)
        listeners = [raw_listener(sockets, stack, session_id, lang) for lang in ("es", "fr")]
        c2 = raw(sockets, stack, action="refreshConnection", sessionId=session_id, role="speaker",
                 token=stack.token())
        assert c2.wait_for("connectionRefreshComplete")["role"] == "speaker"
        assert state.session(session_id)["speakerConnectionId"] == c2.connection_id
        row = state.connection(c1.connection_id)
        c1.close()
        wait_until(lambda: state.connection(c1.connection_id) is None, 10, "c1's row deleted")
        assert state.session(session_id)["status"] == "active"  # a replaced speaker ends nothing
        # A speaker connection that vanished a while ago, not one that might still be
        # inside its $connect (see TestSweepDuringSpeakerConnect).
        long_ago = row["connectedAt"] - 60_000
        state.connections.put_item(Item={**row, "connectedAt": long_ago, "lastSeenAt": long_ago})
        state.sessions.update_item(Key={"sessionId": session_id},
                                   UpdateExpression="SET speakerConnectionId = :c1",
                                   ConditionExpression="speakerConnectionId = :c2",
                                   ExpressionAttributeValues={":c1": c1.connection_id,
                                                              ":c2": c2.connection_id})
        c2.close()
        assert socket_is_gone(stack, c1.connection_id)

        for listener in listeners:
            assert listener.wait_closed(timeout=15) == 1000
            assert listener.types() == ["sessionJoined", "sessionEnded"]
            assert listener.wait_for("sessionEnded")["reason"] == "speakerDisconnected"
        session = state.session(session_id)
        assert session["status"] == "ended" and session["endedReason"] == "speakerDisconnected"
        wait_until(lambda: state.settled(session_id, set()), 10, "rows and count cleaned")
        wait_until(lambda: state.connection(c1.connection_id) is None, 10, "the stale speaker row removed")


class TestExpiredSession:
    def test_expired_session_is_ended_before_ttl(self, make_stack_process, sockets):
        """SESSION_MAX_DURATION_HOURS=0.002 (7 s): the sweep ends the session at
        expiresAt; listeners and speaker get sessionEnded {expired} and close 1000, the
        session item is still there (status ended), rows and count are cleaned, and
        later joins are refused with 404."""
        stack = make_stack_process(GATEWAY_SCHEDULE_PERIOD_SECONDS="0.5", SESSION_MAX_DURATION_HOURS="0.002")
        state = State(stack)
        speaker, session_id = raw_speaker(sockets, stack, heartbeat=None)
        listeners = [raw_listener(sockets, stack, session_id, lang, heartbeat=None) for lang in ("es", "fr")]
        expires_at = int(state.session(session_id)["expiresAt"])

        for ws in [*listeners, speaker]:
            assert ws.wait_closed(timeout=25) == 1000
            assert ws.types()[1:] == ["sessionEnded"], ws.types()
            assert ws.wait_for("sessionEnded")["reason"] == "expired"
        session = state.session(session_id)
        assert session is not None, "the item is gone: ended by TTL, not by the sweep"
        assert session["status"] == "ended" and session["endedReason"] == "expired"
        assert int(session["endedAt"]) >= expires_at * 1000
        wait_until(lambda: state.settled(session_id, set()), 10, "rows and count cleaned")
        assert stack.refusal(action="joinSession", sessionId=session_id, targetLanguage="es")[0] == 404


# -- a speaker that comes back within the grace ---------------------------------


GRACE = {"GATEWAY_SCHEDULE_PERIOD_SECONDS": "0.5", "SPEAKER_RECONNECT_GRACE_SECONDS": "3"}


class TestSpeakerGrace:
    def test_speaker_back_within_the_grace_keeps_the_session(self, make_stack_process, sockets):
        """SPEAKER_RECONNECT_GRACE_SECONDS=3: the speaker's socket drops, listeners get
        speakerDisconnected {graceSeconds: 3}; the speaker comes back with
        refreshConnection, listeners get speakerReconnected; the grace runs out with the
        session still active, carried by the new connection, expiresAt extended."""
        stack = make_stack_process(**GRACE)
        state = State(stack)
        c1, session_id = raw_speaker(sockets, stack, heartbeat=None)
        listeners = [raw_listener(sockets, stack, session_id, lang, heartbeat=None) for lang in ("es", "fr")]
        expires_at = int(state.session(session_id)["expiresAt"])
        c1.close()
        for listener in listeners:
            assert listener.wait_for("speakerDisconnected")["graceSeconds"] == 3
        disconnected_at = int(state.session(session_id)["speakerDisconnectedAt"]) / 1000
        time.sleep(1)  # a reload takes a moment; expiresAt (whole seconds) can then move
        c2 = raw(sockets, stack, heartbeat=None, action="refreshConnection", sessionId=session_id,
                 role="speaker", token=stack.token())
        assert c2.wait_for("connectionRefreshComplete")["role"] == "speaker"
        for listener in listeners:
            assert listener.wait_for("speakerReconnected")["sessionId"] == session_id

        # Past the grace (the server's own timestamp), then a sweep that looks at the session.
        wait_until(lambda: time.time() > disconnected_at + 3 + 0.5, 10, "the grace to pass")
        report = run_sweep(stack)
        assert report["sessions"] == 1 and report["ended"] == 0, report
        session = state.session(session_id)
        assert session["status"] == "active"
        assert session["speakerConnectionId"] == c2.connection_id
        assert "speakerDisconnectedAt" not in session
        assert int(session["expiresAt"]) > expires_at
        assert state.settled(session_id, {ws.connection_id for ws in listeners})
        for listener in listeners:
            assert not listener.closed.is_set()
            assert listener.types() == ["sessionJoined", "speakerDisconnected", "speakerReconnected"]
        c2.send(action="endSession")
        for listener in listeners:
            assert listener.wait_closed() == 1000
            assert listener.wait_for("sessionEnded")["reason"] == "speakerEnded"

    def test_speaker_not_back_within_the_grace_ends_the_session(self, make_stack_process, sockets):
        """Without the speaker's return the session ends once the grace is over (not
        before, by the server's own timestamps): speakerDisconnected, then sessionEnded
        {speakerDisconnected} and close 1000; the speaker's refresh is then refused 404."""
        stack = make_stack_process(**GRACE)
        state = State(stack)
        c1, session_id = raw_speaker(sockets, stack, heartbeat=None)
        listener = raw_listener(sockets, stack, session_id, "es", heartbeat=None)
        c1.close()
        assert listener.wait_closed(timeout=15) == 1000
        assert listener.types() == ["sessionJoined", "speakerDisconnected", "sessionEnded"]
        assert listener.wait_for("sessionEnded")["reason"] == "speakerDisconnected"
        session = state.session(session_id)
        assert session["status"] == "ended" and session["endedReason"] == "speakerDisconnected"
        assert int(session["endedAt"]) - int(session["speakerDisconnectedAt"]) >= 3000
        wait_until(lambda: state.settled(session_id, set()), 10, "rows and count cleaned")
        status, _ = stack.refusal(action="refreshConnection", sessionId=session_id, role="speaker",
                                  token=stack.token())
        assert status == 404


# -- the sweep racing a speaker's $connect ------------------------------------------


class SlowLambdaEndpoint:
    """An HTTP relay for the app's Lambda client (``AWS_ENDPOINT_URL_LAMBDA``, which the
    stack passes through to the app) that forwards every Invoke call to the gateway
    after ``delay`` seconds. The welcome is dispatched from inside ``$connect``, so this
    stretches ``$connect`` as a slow Lambda API call (or a cold start) would in AWS,
    where ``$connect`` may take up to API Gateway's 29 s integration timeout."""

    def __init__(self):
        self.delay = 0.0
        self.target = None
        relay = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                time.sleep(relay.delay)
                headers = {k: v for k, v in self.headers.items()
                           if k.lower() in ("content-type", "x-amz-invocation-type", "x-amz-log-type",
                                         "authorization", "x-amz-date")}
                request = urllib.request.Request(relay.target + self.path, data=body, headers=headers,
                                                 method="POST")
                try:
                    with urllib.request.urlopen(request, timeout=30) as response:
                        status, reply, reply_headers = response.status, response.read(), response.headers
                except urllib.error.HTTPError as exc:
                    status, reply, reply_headers = exc.code, exc.read(), exc.headers
                self.send_response(status)
                for key, value in reply_headers.items():
                    if key.lower().startswith("x-amz") or key.lower() == "content-type":
                        self.send_header(key, value)
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def slow_lambda():
    relay = SlowLambdaEndpoint()
    yield relay
    relay.stop()


SLOW_CONNECT = 1.5
class TestSweepDuringSpeakerConnect:
    """A sweep probing the speaker with GET @connections while the speaker's $connect
    is still running gets 410 (API Gateway answers so until $connect returns); it
    must not take the speaker for gone and end the session. Regression tests."""

    @pytest.fixture
    def stack(self, make_stack_process, slow_lambda):
        stack = make_stack_process(GATEWAY_SCHEDULE_PERIOD_SECONDS="0.25",
                                   AWS_ENDPOINT_URL_LAMBDA=slow_lambda.url)
        slow_lambda.target = stack.http
        return stack

    def test_sweep_during_create_keeps_the_new_session(self, stack, slow_lambda, sockets):
        """A createSession whose $connect lasts 1.5 s still creates a live session when a
        sweep runs inside that $connect (and another after it): sessionCreated arrives and
        the session stays active."""
        state = State(stack)
        slow_lambda.delay = SLOW_CONNECT
        with ThreadPoolExecutor(1) as pool:
            opening = pool.submit(raw, sockets, stack, heartbeat=None, action="createSession",
                                  sourceLanguage="en", token=stack.token())
            wait_until(lambda: state.sessions.scan()["Items"], 10, "$connect to write the session")
            report = run_sweep(stack)
            assert not opening.done(), "the sweep did not run inside $connect: the race was not tried"
            assert report["sessions"] == 1 and report["ended"] == 0, report
            speaker = opening.result(timeout=30)
        report = run_sweep(stack)
        assert report["sessions"] == 1 and report["ended"] == 0, report
        sessions = state.sessions.scan()["Items"]
        assert [(s["status"], s.get("endedReason")) for s in sessions] == [("active", None)]
        assert speaker.wait_for("sessionCreated")["sessionId"] == sessions[0]["sessionId"]
        assert state.connection(speaker.connection_id) is not None
        speaker.assert_untouched()

    def test_sweep_during_speaker_refresh_keeps_the_session(self, stack, slow_lambda, sockets):
        """A speaker refresh whose $connect lasts 1.5 s keeps the session: the listener
        hears nothing about an end, the new connection carries the session."""
        state = State(stack)
        c1, session_id = raw_speaker(sockets, stack, heartbeat=None)
        listener = raw_listener(sockets, stack, session_id, "es", heartbeat=None)
        slow_lambda.delay = SLOW_CONNECT
        with ThreadPoolExecutor(1) as pool:
            opening = pool.submit(raw, sockets, stack, heartbeat=None, action="refreshConnection",
                                  sessionId=session_id, role="speaker", token=stack.token())
            wait_until(lambda: state.session(session_id)["speakerConnectionId"] != c1.connection_id,
                       10, "$connect to hand the session to the new connection")
            report = run_sweep(stack)
            assert not opening.done(), "the sweep did not run inside $connect: the race was not tried"
            assert report["sessions"] == 1 and report["ended"] == 0, report
            c2 = opening.result(timeout=30)
        slow_lambda.delay = 0.0
        session = state.session(session_id)
        assert (session["status"], session.get("endedReason")) == ("active", None)
        assert c2.wait_for("connectionRefreshComplete")["role"] == "speaker"
        assert session["speakerConnectionId"] == c2.connection_id
        c1.close()
        # The replaced connection's $disconnect has run (its row is gone), then a sweep:
        # neither ended the session.
        wait_until(lambda: state.connection(c1.connection_id) is None, 10, "c1's $disconnect")
        report = run_sweep(stack)
        assert report["sessions"] == 1 and report["ended"] == 0, report
        assert state.session(session_id)["status"] == "active"
        listener.assert_untouched()
        c2.assert_untouched()
