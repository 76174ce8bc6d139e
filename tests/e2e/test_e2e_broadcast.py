"""End to end: issue 6's broadcast over the real local stack (``python -m local_stack run``).

Covers its "Done when" list: 200 listeners in three languages and a publish to one
language (the ``publish`` Lambda function invoked through the gateway's Lambda Invoke
API, as another service would); listeners dropped abruptly found gone and cleaned up
(DynamoDB read at the stack's AWS endpoint); 500 messages across a listener refresh
without a gap once duplicates are dropped (by the reference client's own logic);
controls, status, language change and audio with every refusal; and `speak` heard
by `listen`, both the real CLI, through the relay sink the local stack configures.
"""
import base64
import json
import os
import queue
import re
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import boto3
import pytest
from botocore.config import Config
from websockets.sync.client import connect

from broadcast_client.actions import Print
from broadcast_client.audio import tone_pcm16
from broadcast_client.protocol import ClientProtocol, Role
from chalicelib.state.schema import CONNECTIONS_MEMBERS_INDEX, SPEAKER_MEMBER
from local_stack.apigw.events import ApiContext, message_event
from local_stack.issuer import LocalIssuer

ROOT = Path(__file__).resolve().parents[2]
SESSIONS_TABLE, CONNECTIONS_TABLE = "Sessions", "Connections"  # the app's defaults
TIMEOUT = 10.0  # generous: a receive on a loaded 2-core machine

pytestmark = pytest.mark.e2e


# -- helpers --------------------------------------------------------------------


def open_ws(stack, **query):
    """A connection not yet entered (callers register it with an ExitStack)."""
    return connect(stack.url(**query), open_timeout=TIMEOUT, close_timeout=2, max_queue=None)


def recv_json(ws, timeout=TIMEOUT, presence=False):
    """The next message; a speaker's listenerPresence notices are skipped unless the
    test is about them (tests/functional/test_call_budgets.py and tests/browser are)."""
    while True:
        message = json.loads(ws.recv(timeout=timeout))
        if presence or message.get("type") != "listenerPresence":
            return message


def speaker_name():
    """A user of its own per session: the app allows 20 sessions per user and hour
    (RATE_LIMIT_SESSIONS_PER_HOUR) and the session-wide stack is shared."""
    return f"speaker-{uuid.uuid4().hex[:12]}"


def create(stack, sockets, with_connection_id=False):
    ws = sockets.enter_context(open_ws(stack, action="createSession", sourceLanguage="en",
                                       token=stack.token(speaker_name())))
    created = recv_json(ws)
    assert created["type"] == "sessionCreated", created
    if with_connection_id:
        return ws, created["sessionId"], created["connectionId"]
    return ws, created["sessionId"]


def deliver_message(stack, connection_id, **body):
    """Hand ``body`` to the $default function as a message of ``connection_id``, in the
    event the gateway builds for one, and wait for the handler: the Lambda Invoke API
    (RequestResponse) returns once it has returned. Returns its response."""
    host = stack.http.split("://", 1)[1]
    event = message_event(ApiContext(api_id="local00api", stage="dev", domain_name=host),
                          connection_id=connection_id, connected_at=int(time.time() * 1000),
                          now_ms=int(time.time() * 1000), source_ip="127.0.0.1",
                          route_key="$default", body=json.dumps(body), authorizer=None)
    response = Aws(stack).lambda_.invoke(FunctionName="websocket_message", Payload=json.dumps(event))
    assert "FunctionError" not in response, response
    return json.loads(response["Payload"].read())


def join(stack, sockets, session_id, language):
    ws = sockets.enter_context(open_ws(stack, action="joinSession", sessionId=session_id,
                                       targetLanguage=language))
    joined = recv_json(ws)
    assert joined["type"] == "sessionJoined", joined
    return ws, joined


def join_many(stack, sockets, session_id, languages, workers=16):
    """One listener per entry of ``languages``, opened by a bounded pool; returns
    ``[(ws, sessionJoined)]`` once every one of them has its first message."""
    def opened(language):
        return open_ws(stack, action="joinSession", sessionId=session_id, targetLanguage=language)

    with ThreadPoolExecutor(workers) as pool:
        futures = [pool.submit(opened, language) for language in languages]
    failures, listeners = [], []
    for future in futures:  # every socket that opened is closed at the end, whatever failed
        try:
            listeners.append(sockets.enter_context(future.result()))
        except Exception as exc:  # re-raised below
            failures.append(exc)
    if failures:
        raise failures[0]
    welcomes = [recv_json(ws) for ws in listeners]
    assert {w["type"] for w in welcomes} == {"sessionJoined"}, welcomes
    return list(zip(listeners, welcomes))


def send(ws, **body):
    ws.send(json.dumps(body))


def error_code(ws):
    reply = recv_json(ws)
    assert reply["type"] == "error", reply
    return reply["code"]


def drop_tcp(ws):
    """Lose the connection abruptly: the TCP stream ends with no WebSocket close
    handshake (a phone leaving the network, a killed browser)."""
    ws.socket.shutdown(socket.SHUT_RDWR)


class Aws:
    """What another service has: the Lambda Invoke API and the DynamoDB tables."""

    def __init__(self, stack):
        config = Config(retries={"max_attempts": 1}, read_timeout=60, max_pool_connections=32)
        session = boto3.session.Session(aws_access_key_id="test", aws_secret_access_key="test",
                                        region_name="us-east-1")
        self.lambda_ = session.client("lambda", endpoint_url=stack.http, config=config)
        self.dynamodb = session.client("dynamodb", endpoint_url=stack.aws, config=config)

    def publish(self, session_id, language=None, type_="translation", **data):
        event = {"sessionId": session_id, "type": type_, "data": data}
        if language is not None:
            event["targetLanguage"] = language
        response = self.lambda_.invoke(FunctionName="publish", Payload=json.dumps(event))
        assert "FunctionError" not in response, response
        return json.loads(response["Payload"].read())

    def listener_rows(self, session_id):
        paginator = self.dynamodb.get_paginator("query")
        rows = []
        for page in paginator.paginate(TableName=CONNECTIONS_TABLE, IndexName=CONNECTIONS_MEMBERS_INDEX,
                                       KeyConditionExpression="sessionId = :s AND #m < :speaker",
                                       ExpressionAttributeNames={"#m": "member"},
                                       ExpressionAttributeValues={":s": {"S": session_id},
                                                                  ":speaker": {"S": SPEAKER_MEMBER}}):
            rows.extend(page["Items"])
        return rows

    def listener_count(self, session_id):
        item = self.dynamodb.get_item(TableName=SESSIONS_TABLE, Key={"sessionId": {"S": session_id}},
                                      ConsistentRead=True)["Item"]
        return int(item["listenerCount"]["N"])

    def settled(self, session_id, expected, timeout=TIMEOUT):
        """Wait until both the rows and the session's count say ``expected`` listeners
        ($disconnect runs asynchronously); returns (rows, count) as last read."""
        deadline = time.monotonic() + timeout
        while True:
            rows, count = self.listener_rows(session_id), self.listener_count(session_id)
            if (len(rows) == count == expected) or time.monotonic() > deadline:
                return rows, count
            time.sleep(0.1)


class Collector:
    """Every message of some sockets, read by one thread per socket, into one queue
    in arrival order (as the CLI's event loop sees them)."""

    def __init__(self):
        self.queue = queue.Queue()
        self.threads = []

    def watch(self, key, ws):
        def read():
            try:
                for text in ws:
                    self.queue.put((key, text))
            except Exception:  # the socket closed: nothing more to read
                pass

        thread = threading.Thread(target=read, daemon=True)
        thread.start()
        self.threads.append(thread)

    def drain(self, until, timeout=TIMEOUT):
        """Messages received until ``until(messages)`` holds (or the timeout)."""
        got = []
        deadline = time.monotonic() + timeout
        while not until(got) and time.monotonic() < deadline:
            try:
                got.append(self.queue.get(timeout=0.1))
            except queue.Empty:
                pass
        return got


class LambdaApiLatency:
    """A pass-through proxy for the app's own Lambda API calls (``AWS_ENDPOINT_URL_LAMBDA``,
    which the stack leaves alone when given) that can hold one call until released: a slow
    Lambda API, made deterministic. ``$connect``'s last step is such a call (the welcome's
    asynchronous invocation), so holding it keeps a connection inside its ``$connect``."""

    def __init__(self):
        self.target = None  # the gateway's http URL, known once the stack runs
        self._armed, self._held, self._release = threading.Event(), threading.Event(), threading.Event()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # the http.server API
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                if proxy._armed.is_set():
                    proxy._armed.clear()
                    proxy._held.set()
                    proxy._release.wait(TIMEOUT)
                headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "content-length")}
                request = urllib.request.Request(proxy.target + self.path, data=body, headers=headers,
                                                 method="POST")
                try:
                    with urllib.request.urlopen(request, timeout=TIMEOUT) as response:
                        status, reply, reply_headers = response.status, response.read(), response.headers
                except urllib.error.HTTPError as exc:
                    status, reply, reply_headers = exc.code, exc.read(), exc.headers
                self.send_response(status)
                for key, value in reply_headers.items():
                    if key.lower() not in ("content-length", "transfer-encoding", "connection", "server", "date"):
                        self.send_header(key, value)
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, *args):
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._release.set()
        self._server.shutdown()
        self._server.server_close()

    def hold_next(self):
        self._held.clear()
        self._release.clear()
        self._armed.set()

    def wait_held(self):
        assert self._held.wait(TIMEOUT), "the app made no Lambda call"

    def release(self):
        self._release.set()


# -- fan-out to 200 listeners -----------------------------------------------------

LANGUAGES = ["es"] * 90 + ["fr"] * 60 + ["de"] * 50


@pytest.fixture
def own_stack(make_stack_process):
    """A stack of the test's own, with the default capacity (500 listeners per session).

    Tests that check a long stream's sequence numbers use one: in the embedded moto a
    failed TransactWriteItems anywhere (a SESSION_FULL join, a lost removal race, a
    sweep on another test's session) restores the tables it touched as they were when
    it began, undoing concurrent writes such as a sequence counter's increment, and
    the same number goes out twice. DynamoDB itself isolates transactions."""
    return make_stack_process()


class TestFanOut:
    def test_publish_to_one_language_reaches_exactly_its_listeners_and_the_gone_are_cleaned_up(
            self, own_stack):
        """200 listeners in es/fr/de: a publish to fr reaches the 60 fr listeners once each and
        nobody else; 20 fr listeners dropped abruptly are removed (by $disconnect or found gone
        by the publish), rows and count corrected; a publish after lost $disconnects reports
        exactly those 20 as gone and removes them."""
        stack, aws = own_stack, Aws(own_stack)
        with ExitStack() as sockets:
            speaker, session_id = create(stack, sockets)
            crowd = join_many(stack, sockets, session_id, LANGUAGES)
            assert all(joined["sequenceNumber"] == 0 for _, joined in crowd)
            assert len(aws.listener_rows(session_id)) == aws.listener_count(session_id) == 200
            by_language = {lang: [ws for ws, j in crowd if j["targetLanguage"] == lang] for lang in ("es", "fr", "de")}

            # 1. One language only.
            result = aws.publish(session_id, "fr", text="Bienheureux les doux")
            assert result == {"delivered": 60, "gone": 0, "failed": 0, "sequenceNumbers": {"fr": 1}}
            marker = aws.publish(session_id, type_="marker")  # to everyone, after the fr message
            assert marker["delivered"] == 200
            for ws in by_language["fr"]:
                got = recv_json(ws)
                assert (got["type"], got["text"], got["sequenceNumber"], got["targetLanguage"]) == \
                    ("translation", "Bienheureux les doux", 1, "fr")
                assert recv_json(ws)["type"] == "marker"
            for ws in by_language["es"] + by_language["de"]:
                # Delivery to one socket keeps the publish order: had the fr message reached
                # a listener of another language, it would come before the marker.
                got = recv_json(ws)
                assert got["type"] == "marker" and got["sequenceNumber"] == 1, got
            send(speaker, action="heartbeat")
            assert recv_json(speaker)["type"] == "heartbeatAck"  # the speaker is no listener

            # 2. Twenty fr listeners vanish without a close handshake.
            dropped, kept = by_language["fr"][:20], by_language["fr"][20:]
            dropped_ids = {j["connectionId"] for ws, j in crowd if ws in dropped}
            rows_before = {row["connectionId"]["S"]: row for row in aws.listener_rows(session_id)}
            for ws in dropped:
                drop_tcp(ws)
            result = aws.publish(session_id, "fr", text="second")
            # The emulator, like API Gateway, fires $disconnect for a lost TCP stream, so some
            # may already be removed; the others are found gone (410) by this very publish.
            assert result["delivered"] == 40 and result["failed"] == 0 and 0 <= result["gone"] <= 20
            for ws in kept:
                assert recv_json(ws)["text"] == "second"
            rows, count = aws.settled(session_id, 180)
            assert (len(rows), count) == (180, 180)
            assert not dropped_ids & {row["connectionId"]["S"] for row in rows}

            # 3. The same twenty again, as if API Gateway had lost their $disconnect: their
            # rows are back and counted, as established connections (joined a minute ago,
            # past the window in which a 410 may only mean "still inside $connect", within
            # the heartbeat timeout); only the publish can find out.
            a_minute_ago = {"N": str(int((time.time() - 60) * 1000))}
            for cid in sorted(dropped_ids):
                ghost = {**rows_before[cid], "connectedAt": a_minute_ago, "lastSeenAt": a_minute_ago}
                aws.dynamodb.put_item(TableName=CONNECTIONS_TABLE, Item=ghost)
            aws.dynamodb.update_item(TableName=SESSIONS_TABLE, Key={"sessionId": {"S": session_id}},
                                     UpdateExpression="ADD listenerCount :n",
                                     ExpressionAttributeValues={":n": {"N": "20"}})
            assert aws.listener_count(session_id) == 200
            result = aws.publish(session_id, "fr", text="third")
            assert result == {"delivered": 40, "gone": 20, "failed": 0, "sequenceNumbers": {"fr": 4}}
            for ws in kept:
                assert recv_json(ws)["text"] == "third"
            rows, count = aws.listener_rows(session_id), aws.listener_count(session_id)
            assert (len(rows), count) == (180, 180)  # removed by the publish itself

            send(speaker, action="getSessionStatus")
            status = recv_json(speaker)
            assert status["listenerCount"] == 180
            assert status["languageDistribution"] == {"de": 50, "es": 90, "fr": 40}


# -- refresh overlap ----------------------------------------------------------------


class TestRefreshOverlap:
    def test_500_messages_across_a_listener_refresh_arrive_without_gap(self, own_stack):
        """A stream of 500 publishes runs through a listener refresh: before it, during the
        new socket's handshake, while both sockets are open, and after the old one closed.
        The reference client's reorder buffer turns the two streams into 1..500, each once,
        in order, with no gap reported."""
        stack, aws = own_stack, Aws(own_stack)
        total = 500
        with ExitStack() as sockets, ThreadPoolExecutor(4) as publishers, \
                ThreadPoolExecutor(1) as background:
            _, session_id = create(stack, sockets)
            old, joined = join(stack, sockets, session_id, "es")
            client = ClientProtocol(url=stack.ws, role=Role.LISTENER, session_id=session_id,
                                    target_language="es")
            [start] = client.start()
            client.opened(start.key, time.time())
            client.received(start.key, json.dumps(joined), time.time())
            arrived = Collector()
            arrived.watch(start.key, old)

            def publish(numbers):
                return list(publishers.map(lambda n: aws.publish(session_id, "es", n=n), numbers))

            def refresh():
                """Open the new socket; messages may come before its welcome."""
                ws = sockets.enter_context(open_ws(stack, action="refreshConnection", sessionId=session_id,
                                                   role="listener", targetLanguage="es"))
                early = []
                while True:
                    text = ws.recv(timeout=TIMEOUT)
                    if json.loads(text)["type"] == "connectionRefreshComplete":
                        return ws, early
                    early.append(text)

            first = publish(range(1, 151))  # the old socket alone
            refreshing = background.submit(refresh)
            during = publish(range(151, 301))  # while the new socket connects
            new, early = refreshing.result(timeout=TIMEOUT)
            for text in early:
                arrived.queue.put(("c-new", text))
            arrived.watch("c-new", new)
            both = publish(range(301, 401))  # both sockets open
            old.close()  # as docs/protocol.md says, once connectionRefreshComplete arrived
            last = publish(range(401, total + 1))  # the new socket alone

            assert all(r["delivered"] == 1 and r["gone"] == 0 for r in first)
            assert all(r["delivered"] >= 1 and r["failed"] == 0 for r in during)
            assert all(r["delivered"] == 2 for r in both), "both sockets receive during the overlap"
            # Right after the close the old row may still be there ($disconnect is
            # asynchronous): such a publish finds it gone and removes it.
            assert all(r["delivered"] == 1 and r["failed"] == 0 for r in last)
            assert aws.settled(session_id, 1) == ([row for row in aws.listener_rows(session_id)], 1)

            def numbers(got, key):
                return {json.loads(text)["n"] for k, text in got if k == key}

            raw = arrived.drain(lambda got: len(numbers(got, start.key)) == 400
                                and numbers(got, "c-new") >= set(range(301, total + 1)))
            assert numbers(raw, start.key) == set(range(1, 401))
            assert numbers(raw, "c-new") >= set(range(301, total + 1))
            printed = []
            for key, text in raw:
                printed += [a.text for a in client.received(key, text, time.time()) if isinstance(a, Print)]
            assert len(raw) > total, "the overlap delivered duplicates"
            assert [line for line in printed if not line.startswith("< ")] == [], "no gap, no late message"
            shown = [json.loads(line[2:]) for line in printed]
            # Concurrent publishes take their numbers in any order: n is only a label.
            assert [m["sequenceNumber"] for m in shown] == list(range(1, total + 1)), "in order, once each"
            assert sorted(m["n"] for m in shown) == list(range(1, total + 1)), "none missing"
            es = client.sequence("es")
            assert (es.next, es.waiting, es.duplicates) == (total + 1, 0, len(raw) - total)

    def test_a_listener_connecting_during_a_publish_is_not_dropped(self, make_stack_process):
        """A publish that runs while a listener is inside its $connect (API Gateway answers
        410 for it then) does not cost that listener its place: it is welcomed, keeps its row
        and count, and receives what is published next. Before 60ce921 the publish removed it
        and the client was welcomed into silence, or never welcomed at all."""
        with LambdaApiLatency() as lambda_api:
            stack = make_stack_process(AWS_ENDPOINT_URL_LAMBDA=lambda_api.url)
            lambda_api.target = stack.http
            aws = Aws(stack)
            with ExitStack() as sockets, ThreadPoolExecutor(1) as background:
                _, session_id = create(stack, sockets)
                join(stack, sockets, session_id, "es")
                lambda_api.hold_next()  # the next $connect stops at its welcome dispatch
                joining = background.submit(open_ws, stack, action="joinSession", sessionId=session_id,
                                            targetLanguage="es")
                lambda_api.wait_held()  # its row is written; API Gateway still answers 410
                during = aws.publish(session_id, "es", text="while the second listener connects")
                lambda_api.release()
                late = sockets.enter_context(joining.result(timeout=TIMEOUT))
                try:
                    welcome = recv_json(late, timeout=5)  # promised within 2 s of the socket opening
                except TimeoutError:
                    welcome = {"type": None, "connectionId": None}
                after = aws.publish(session_id, "es", text="after")
                rows, count = aws.listener_rows(session_id), aws.listener_count(session_id)
                outcome = (welcome["type"], during["delivered"], after["delivered"], len(rows), count)
                assert outcome == ("sessionJoined", 1, 2, 2, 2), (
                    f"welcome {welcome['type']!r} for {welcome['connectionId']}; publish during the "
                    f"connect: {during}; after: {after}; rows {[r['connectionId']['S'] for r in rows]}, "
                    f"listenerCount {count}")
                assert recv_json(late)["text"] == "after"


# -- controls, status, language, audio ------------------------------------------------


class TestControls:
    def test_controls_are_acknowledged_and_announced_to_every_listener(self, stack):
        """Each control updates broadcastState, acks the speaker and reaches every
        language's listeners with their own sequence numbers."""
        with ExitStack() as sockets:
            speaker, session_id = create(stack, sockets)
            listeners = [join(stack, sockets, session_id, lang)[0] for lang in ("es", "fr")]
            expected = [
                ({"action": "pauseBroadcast"}, "broadcastPaused", {"isPaused": True, "isMuted": False, "volume": 1.0}),
                ({"action": "muteBroadcast"}, "broadcastMuted", {"isPaused": True, "isMuted": True, "volume": 1.0}),
                ({"action": "setVolume", "volumeLevel": 0.8}, "volumeChanged", {"isPaused": True, "isMuted": True, "volume": 0.8}),
                ({"action": "resumeBroadcast"}, "broadcastResumed", {"isPaused": False, "isMuted": True, "volume": 0.8}),
                ({"action": "unmuteBroadcast"}, "broadcastUnmuted", {"isPaused": False, "isMuted": False, "volume": 0.8}),
                ({"action": "setVolume", "volumeLevel": 0}, "volumeChanged", {"isPaused": False, "isMuted": False, "volume": 0.0}),
            ]
            for number, (body, notice, state) in enumerate(expected, start=1):
                send(speaker, **body)
                ack = recv_json(speaker)
                assert (ack["type"], ack["action"]) == ("controlAck", body["action"])
                assert {k: ack["broadcastState"][k] for k in state} == state
                for ws, lang in zip(listeners, ("es", "fr")):
                    got = recv_json(ws)
                    assert (got["type"], got["sequenceNumber"], got["targetLanguage"]) == (notice, number, lang)
                    assert got["broadcastState"] == ack["broadcastState"]
                    if notice == "volumeChanged":
                        assert got["volumeLevel"] == body["volumeLevel"]

    def test_a_late_joiner_receives_the_current_state_and_baseline(self, stack):
        """sessionJoined carries broadcastState and the last number of its language."""
        with ExitStack() as sockets:
            speaker, session_id = create(stack, sockets)
            join(stack, sockets, session_id, "es")
            for body in ({"action": "pauseBroadcast"}, {"action": "setVolume", "volumeLevel": 0.3}):
                send(speaker, **body)
                assert recv_json(speaker)["type"] == "controlAck"
            _, late = join(stack, sockets, session_id, "es")
            assert late["broadcastState"]["isPaused"] is True and late["broadcastState"]["volume"] == 0.3
            assert late["sequenceNumber"] == 2

    @pytest.mark.parametrize("body,code", [
        ({"action": "pauseBroadcast"}, "FORBIDDEN"),
        ({"action": "resumeBroadcast"}, "FORBIDDEN"),
        ({"action": "muteBroadcast"}, "FORBIDDEN"),
        ({"action": "unmuteBroadcast"}, "FORBIDDEN"),
        ({"action": "setVolume", "volumeLevel": 0.5}, "FORBIDDEN"),
        ({"action": "sendAudio", "audioData": "AAAA"}, "FORBIDDEN"),
    ])
    def test_listeners_may_not_control_or_send_audio(self, stack, body, code):
        """A listener's control or audio is refused with FORBIDDEN and changes nothing."""
        with ExitStack() as sockets:
            speaker, session_id = create(stack, sockets)
            listener, _ = join(stack, sockets, session_id, "es")
            other, _ = join(stack, sockets, session_id, "fr")
            send(listener, **body)
            assert error_code(listener) == code
            self.assert_nothing_changed(speaker, other)

    @pytest.mark.parametrize("level", [1.01, -0.1, "0.5", None, True, 10**400])
    def test_bad_volume_is_refused_and_changes_nothing(self, stack, level):
        """volumeLevel outside 0..1 or not a number: INVALID_PARAMETER, nothing published."""
        with ExitStack() as sockets:
            speaker, session_id = create(stack, sockets)
            listener, _ = join(stack, sockets, session_id, "es")
            body = {"action": "setVolume"}
            if level is not None:
                body["volumeLevel"] = level
            speaker.send(json.dumps(body))
            reply = recv_json(speaker)
            assert (reply["type"], reply["code"], reply["action"]) == ("error", "INVALID_PARAMETER", "setVolume")
            self.assert_nothing_changed(speaker, listener)

    def test_infinity_is_not_json(self, stack):
        """1e309 serialised by Python as the bare word Infinity is not JSON: INVALID_MESSAGE."""
        with ExitStack() as sockets:
            speaker, _ = create(stack, sockets)
            speaker.send(json.dumps({"action": "setVolume", "volumeLevel": 1e309}))
            reply = recv_json(speaker)
            assert (reply["type"], reply["code"]) == ("error", "INVALID_MESSAGE")

    @staticmethod
    def assert_nothing_changed(speaker, listener):
        """The state is the initial one and the listener's next notice is number 1."""
        send(speaker, action="getSessionStatus")
        status = recv_json(speaker)
        assert status["type"] == "sessionStatus"
        assert {k: status["broadcastState"][k] for k in ("isPaused", "isMuted", "volume")} == \
            {"isPaused": False, "isMuted": False, "volume": 1.0}
        send(speaker, action="muteBroadcast")
        assert recv_json(speaker)["type"] == "controlAck"
        first = recv_json(listener)
        assert (first["type"], first["sequenceNumber"]) == ("broadcastMuted", 1), first


class TestStatus:
    def test_speaker_sees_the_distribution_listeners_only_the_public_part(self, stack):
        """sessionStatus: counts per language and expiresAt for the speaker only."""
        with ExitStack() as sockets:
            speaker, session_id = create(stack, sockets)
            listener, _ = join(stack, sockets, session_id, "es")
            join(stack, sockets, session_id, "fr")
            send(speaker, action="getSessionStatus")
            status = recv_json(speaker)
            assert status["type"] == "sessionStatus" and status["sessionId"] == session_id
            assert (status["status"], status["sourceLanguage"], status["listenerCount"]) == ("active", "en", 2)
            assert status["languageDistribution"] == {"es": 1, "fr": 1}
            assert status["expiresAt"] > time.time() and status["sessionDuration"] >= 0
            assert status["broadcastState"]["isPaused"] is False
            send(listener, action="getSessionStatus")
            public = recv_json(listener)
            assert public["type"] == "sessionStatus" and public["listenerCount"] == 2
            assert "languageDistribution" not in public and "expiresAt" not in public
            assert public["broadcastState"] == status["broadcastState"]


class TestLanguageChange:
    def test_a_listener_switches_language_in_place(self, stack):
        """changeLanguage answers languageChanged with the new baseline; from then on only
        the new language arrives; the listener is counted under it."""
        aws = Aws(stack)
        with ExitStack() as sockets:
            speaker, session_id = create(stack, sockets)
            listener, joined = join(stack, sockets, session_id, "es")
            for _ in range(3):
                aws.publish(session_id, "de", text="vorher")
            send(listener, action="changeLanguage", targetLanguage="de")
            changed = recv_json(listener)
            assert (changed["type"], changed["targetLanguage"], changed["previousLanguage"],
                    changed["sequenceNumber"]) == ("languageChanged", "de", "es", 3)
            assert aws.publish(session_id, "es", text="hola")["delivered"] == 0
            assert aws.publish(session_id, "de", text="hallo")["delivered"] == 1
            got = recv_json(listener)
            assert (got["text"], got["targetLanguage"], got["sequenceNumber"]) == ("hallo", "de", 4)
            send(speaker, action="getSessionStatus")
            assert recv_json(speaker)["languageDistribution"] == {"de": 1}
            [row] = aws.listener_rows(session_id)
            assert (row["connectionId"]["S"], row["targetLanguage"]["S"]) == (joined["connectionId"], "de")

    @pytest.mark.parametrize("language,code", [("xx", "UNSUPPORTED_LANGUAGE"), ("DE", "INVALID_LANGUAGE"),
                                               (None, "INVALID_LANGUAGE")])
    def test_unsupported_or_malformed_languages_change_nothing(self, stack, language, code):
        """A refused change leaves the listener in its language."""
        aws = Aws(stack)
        with ExitStack() as sockets:
            _, session_id = create(stack, sockets)
            listener, _ = join(stack, sockets, session_id, "es")
            body = {"action": "changeLanguage"}
            if language is not None:
                body["targetLanguage"] = language
            send(listener, **body)
            assert error_code(listener) == code
            assert aws.publish(session_id, "es", text="todavía")["delivered"] == 1
            assert recv_json(listener)["text"] == "todavía"

    def test_the_speaker_cannot_change_language(self, stack):
        """The speaker's language is the session's: FORBIDDEN."""
        with ExitStack() as sockets:
            speaker, _ = create(stack, sockets)
            send(speaker, action="changeLanguage", targetLanguage="de")
            assert error_code(speaker) == "FORBIDDEN"


def fragments(text, size=16 * 1024):
    """A message sent as several frames, each under the gateway's 32 KB frame limit."""
    return iter([text[i:i + size] for i in range(0, len(text), size)])


class TestAudio:
    MAX_CHARS = 129_024  # docs/protocol.md: at most 129,024 base64 characters

    @pytest.mark.parametrize("body,code", [
        ({}, "INVALID_AUDIO"),
        ({"audioData": ""}, "INVALID_AUDIO"),
        ({"audioData": "not base64!"}, "INVALID_AUDIO"),
        ({"audioData": 12}, "INVALID_AUDIO"),
        ({"audioData": "AAAA", "sequenceNumber": -1}, "INVALID_AUDIO"),
        ({"audioData": "AAAA", "sequenceNumber": "1"}, "INVALID_AUDIO"),
        ({"audioData": "AAAA", "sessionId": "faithful-shepherd-427"}, "FORBIDDEN"),
    ])
    def test_malformed_or_misaddressed_audio_is_refused(self, stack, body, code):
        """Bad chunks get an error; nothing reaches the listener."""
        with ExitStack() as sockets:
            speaker, session_id = create(stack, sockets)
            listener, _ = join(stack, sockets, session_id, "es")
            send(speaker, action="sendAudio", **body)
            assert error_code(speaker) == code
            self.assert_next_audio_is(speaker, listener, b"next")

    def test_oversized_chunk_is_refused_and_the_largest_allowed_is_relayed(self, stack):
        """129,025 base64 characters: AUDIO_TOO_LARGE; 129,024 reach the listener intact.
        Both travel as one message in several frames, each under the 32 KB frame limit."""
        with ExitStack() as sockets:
            speaker, session_id = create(stack, sockets)
            listener, _ = join(stack, sockets, session_id, "es")
            too_big = json.dumps({"action": "sendAudio", "audioData": "A" * (self.MAX_CHARS + 4)})
            speaker.send(fragments(too_big))
            assert error_code(speaker) == "AUDIO_TOO_LARGE"
            largest = base64.b64encode(os.urandom(self.MAX_CHARS // 4 * 3)).decode()
            assert len(largest) == self.MAX_CHARS
            speaker.send(fragments(json.dumps({"action": "sendAudio", "audioData": largest,
                                               "sequenceNumber": 7, "format": "pcm16/16000"})))
            got = recv_json(listener)
            assert (got["type"], got["speakerSequenceNumber"], got["format"], got["sourceLanguage"]) == \
                ("audio", 7, "pcm16/16000", "en")
            assert got["audioData"] == largest and got["sequenceNumber"] == 1

    def test_audio_while_paused_is_accepted_and_dropped(self, stack):
        """Paused: no error and nothing relayed; resumed: the next chunk is relayed.

        Messages of one connection are handled concurrently (docs: nothing orders them),
        and a dropped chunk gets no answer, so nothing on the socket says when its handler
        is done. The paused chunk is therefore handed to the $default function the way the
        gateway hands it (same event builder), through the Lambda Invoke API, which returns
        once the handler has: only then is the resume sent."""
        with ExitStack() as sockets:
            speaker, session_id, speaker_id = create(stack, sockets, with_connection_id=True)
            listener, _ = join(stack, sockets, session_id, "es")
            send(speaker, action="pauseBroadcast")
            assert recv_json(speaker)["type"] == "controlAck"
            handled = deliver_message(stack, speaker_id, action="sendAudio",
                                      audioData=base64.b64encode(b"silence").decode(), sequenceNumber=1)
            assert handled == {"statusCode": 200}
            send(speaker, action="resumeBroadcast")
            assert recv_json(speaker)["type"] == "controlAck"
            assert [recv_json(listener)["type"] for _ in range(2)] == ["broadcastPaused", "broadcastResumed"]
            self.assert_next_audio_is(speaker, listener, b"after resume")

    @staticmethod
    def assert_next_audio_is(speaker, listener, data):
        send(speaker, action="sendAudio", audioData=base64.b64encode(data).decode(), sequenceNumber=99)
        got = recv_json(listener)
        assert got["type"] == "audio" and base64.b64decode(got["audioData"]) == data, got


# -- the CLI -----------------------------------------------------------------------


class Cli:
    """``python -m broadcast_client ...`` as a child process; both output streams are
    read by threads into one queue of (stream, line)."""

    def __init__(self, stack, *args, **env):
        self.process = subprocess.Popen(
            [sys.executable, "-m", "broadcast_client", "--url", stack.ws, "--output", "text", *args],
            cwd=ROOT, env={**os.environ, **env}, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, text=True, bufsize=1)
        self.lines = queue.Queue()
        self.seen = []
        for name in ("stdout", "stderr"):
            threading.Thread(target=self._read, args=(name,), daemon=True).start()

    def _read(self, name):
        for line in getattr(self.process, name):
            self.lines.put((name, line.rstrip("\n")))

    def type(self, command):
        self.process.stdin.write(command + "\n")
        self.process.stdin.flush()

    def expect(self, pattern, stream="stdout", timeout=15.0):
        """The next line of ``stream`` matching ``pattern`` (a regex); earlier ones are kept in seen."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                name, line = self.lines.get(timeout=0.1)
            except queue.Empty:
                continue
            self.seen.append((name, line))
            if name == stream and re.search(pattern, line):
                return line
        raise AssertionError(f"no {stream} line matching {pattern!r}; saw {self.seen!r}")

    def stop(self):
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()
        for stream in (self.process.stdin, self.process.stdout, self.process.stderr):
            try:
                stream.close()
            except OSError:
                pass


class TestSpeakAndListen:
    def test_speak_commands_and_audio_are_heard_by_listen(self, own_stack, tmp_path):
        """`speak` takes commands on stdin while running; `listen --audio-out` prints the
        controls, refusals and audio chunks and writes exactly the bytes spoken."""
        stack = own_stack
        spoken = tmp_path / "spoken.pcm"
        spoken.write_bytes(os.urandom(40_000))  # 3 chunks of at most 16 KB
        heard = tmp_path / "heard.pcm"
        started = []
        try:
            speaker = Cli(stack, "speak", BROADCAST_TOKEN=stack.token(speaker_name()))
            started.append(speaker)
            session_id = speaker.expect(r"^session id: ").split(": ", 1)[1]
            # The bytes are compared exactly: a recording's hold, not the player's 300 ms,
            # which a loaded machine can exceed between two concurrent sendAudio calls.
            listener = Cli(stack, "listen", session_id, "es", "--audio-out", str(heard), "--audio-hold", "5")
            started.append(listener)
            listener.expect(rf"^< sessionJoined: {session_id} in es .*playing, volume 1.0")

            speaker.type("status")
            speaker.expect(r"^< sessionStatus: .* active, 1 listener \(es 1\).*playing, volume 1.0")
            # Typed in one go, as a script would pipe them: they still take effect in order.
            speaker.type("pause\nvolume 0.5\nvolume 7\nresume")
            speaker.expect(r"^< controlAck: pauseBroadcast done; broadcast paused")
            speaker.expect(r"^< controlAck: setVolume done; broadcast paused, volume 0.5")
            speaker.expect(r"^< error INVALID_PARAMETER \(setVolume\): ")
            speaker.expect(r"^< controlAck: resumeBroadcast done; broadcast playing, volume 0.5")
            listener.expect(r"^< broadcastPaused #1: broadcast paused")
            listener.expect(r"^< volumeChanged #2: volume 0.5$")
            listener.expect(r"^< broadcastResumed #3: broadcast playing, volume 0.5")
            speaker.type("help")
            speaker.expect(r"tone \[SECONDS\]", stream="stderr")

            speaker.type(f"audio {spoken}")
            speaker.expect(r"^sent .*spoken.pcm: 40000 bytes in 3 chunk\(s\) #1..#3$", stream="stderr")
            speaker.type("tone 0.5")
            speaker.expect(r"^sent a 0.5 s tone: 16000 bytes in 1 chunk\(s\) #4..#4$", stream="stderr")
            chunks = sorted(int(re.search(r"speaker chunk (\d+)", listener.expect(r"^< audio chunk #\d+, ")).group(1))
                            for _ in range(4))
            assert chunks == [1, 2, 3, 4]

            speaker.type("end")
            speaker.expect(r"^< sessionEnded: .*\(speakerEnded\)")
            listener.expect(r"^< sessionEnded: .*\(speakerEnded\)")
            assert listener.process.wait(15) == 0
            assert speaker.process.wait(15) == 0
            assert heard.read_bytes() == spoken.read_bytes() + tone_pcm16(0.5)
        finally:
            for cli in started:
                cli.stop()



class TestRefusedToken:
    FOREIGN_ISSUER = "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_Elsewhere"

    @pytest.mark.parametrize("claims,says", [
        ({"now": time.time() - 7200}, r"the token \(read here without checking its signature; issuer "
                                      r"\S+, audience \S+\): it expired at \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC"),
        ({"issuer": FOREIGN_ISSUER}, rf"the token \(issuer {re.escape(FOREIGN_ISSUER)}, .*\) looks "
                                     r"well-formed, so the server does not trust its issuer"),
    ], ids=["expired", "foreign-issuer"])
    def test_speak_refused_with_401_says_what_the_token_shows(self, stack, claims, says):
        """API Gateway answers a bad speaker token with a bare 401; `speak` adds what the
        token itself shows (read locally, never printed) and exits 1."""
        issuer_args = {"issuer": claims["issuer"]} if "issuer" in claims else {}
        token_args = {"now": claims["now"]} if "now" in claims else {}
        token = LocalIssuer(stack.state_dir, **issuer_args).token(speaker_name(), **token_args)
        result = subprocess.run(
            [sys.executable, "-m", "broadcast_client", "--url", stack.ws, "speak"], cwd=ROOT,
            env={**os.environ, "BROADCAST_TOKEN": token}, stdin=subprocess.DEVNULL,
            capture_output=True, text=True, timeout=60)
        assert result.returncode == 1
        # The local gateway shows $connect's body (UNAUTHORIZED); API Gateway sends none.
        assert re.search(r"connection refused: 401 (Unauthorized|UNAUTHORIZED: [^;]+); ", result.stderr)
        assert re.search(says, result.stderr), result.stderr
        assert token not in result.stdout + result.stderr
