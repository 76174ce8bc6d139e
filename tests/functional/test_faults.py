"""DynamoDB faults at every call of every handler, and what they leave behind.

For each scenario (join, leave, speaker leave, listener and speaker refresh,
publish), the handler's DynamoDB calls are listed by a first clean run; then, for
every call k and every fault kind, the scenario runs again on fresh state with the
fault injected at call k:

- ``throttle``: every attempt of call k is throttled (botocore's retries exhausted);
- ``error``: every attempt of call k gets a 500;
- ``lost``: call k reaches DynamoDB and succeeds, but its response is lost, so
  botocore retries it.

Right after the handler: counts equal the listener rows that hold a place, and a
refused connect left no row; a successful one has its row. After one sweep (the
clock moved past the heartbeat timeout, live connections heartbeating): nothing
open without state, no state without an open connection, no session active
without its speaker, nobody closed without being told why, and the counts right.

The figures (calls tried per scenario and fault, violations) are written to
build/fault-matrix.json.
"""

from __future__ import annotations

import json
import threading
import urllib.request
from pathlib import Path

import boto3
import pytest

import app as app_module
from chalicelib.state.schema import ensure_tables
from tests.functional.conftest import LANG_QUERY
from tests.support.harness import Context, Gateway

KINDS = ("throttle", "error", "lost")
ROOT = Path(__file__).resolve().parents[2]


class _Body:
    def __init__(self, body: bytes) -> None:
        self._body = body

    def stream(self, **_):
        yield self._body


def _response(request, status: int, error_type: str):
    from botocore.awsrequest import AWSResponse

    body = json.dumps({"__type": f"com.amazonaws.dynamodb.v20120810#{error_type}",
                       "message": "injected"}).encode()
    headers = {"Content-Type": "application/x-amz-json-1.0", "x-amzn-RequestId": "fault"}
    return AWSResponse(request.url, status, headers, _Body(body))


class Faults:
    """Injects one fault at the k-th logical call (counted across operations) of
    a DynamoDB client while armed; counts the calls either way."""

    def __init__(self, client) -> None:
        self.calls = []
        self.armed = False
        self.target = None  # (index, kind)
        self._lock = threading.Lock()
        self._local = threading.local()
        client.meta.events.register("before-call.dynamodb", self._before_call)
        client.meta.events.register("before-send.dynamodb", self._before_send)

    def _before_call(self, model, **_):
        self._local.fault, self._local.attempts = None, 0
        if not self.armed:
            return
        with self._lock:
            index = len(self.calls)
            self.calls.append(model.name)
        if self.target and self.target[0] == index:
            self._local.fault = self.target[1]

    def _before_send(self, request, **_):
        fault = getattr(self._local, "fault", None)
        if fault is None:
            return None
        self._local.attempts += 1
        if fault == "throttle":
            return _response(request, 400, "ThrottlingException")
        if fault == "error":
            return _response(request, 500, "InternalServerError")
        if self._local.attempts == 1:  # lost: it happens, the answer never arrives
            from botocore.exceptions import ReadTimeoutError
            from botocore.httpsession import URLLib3Session

            URLLib3Session().send(request)
            raise ReadTimeoutError(endpoint_url=request.url)
        return None


# -- scenarios: setup (no faults), then the act under test -----------------------------


def _create(gw, issuer, user="alice"):
    status, _, cid = gw.connect({**LANG_QUERY, "token": issuer.token(user)})
    assert status == 200
    return cid, gw.last(cid)["sessionId"]


def _join(gw, session_id, language="es"):
    status, _, cid = gw.connect({"action": "joinSession", "sessionId": session_id,
                                 "targetLanguage": language})
    assert status == 200
    return cid


def join_scenario(gw, issuer):
    _, session_id = _create(gw, issuer)
    _join(gw, session_id)
    return lambda: ("connect", gw.connect({"action": "joinSession", "sessionId": session_id,
                                           "targetLanguage": "fr"}))


def leave_scenario(gw, issuer):
    _, session_id = _create(gw, issuer)
    cid = _join(gw, session_id)
    _join(gw, session_id)
    return lambda: gw.close(cid)


def speaker_leave_scenario(gw, issuer):
    speaker, session_id = _create(gw, issuer)
    for language in ("es", "es", "fr"):
        _join(gw, session_id, language)
    return lambda: gw.close(speaker)


def listener_refresh_scenario(gw, issuer):
    _, session_id = _create(gw, issuer)
    old = _join(gw, session_id)

    def act():
        result = gw.connect({"action": "refreshConnection", "sessionId": session_id,
                             "role": "listener", "targetLanguage": "es",
                             "previousConnectionId": old})
        gw.close(old)
        return "connect", result

    return act


def speaker_refresh_scenario(gw, issuer):
    old, session_id = _create(gw, issuer)
    _join(gw, session_id)

    def act():
        result = gw.connect({"action": "refreshConnection", "sessionId": session_id,
                             "role": "speaker", "token": issuer.token("alice")})
        if result[0] == 200:
            gw.close(old)  # the client switches over, then closes the old socket
        return "connect", result

    return act


def publish_scenario(gw, issuer):
    _, session_id = _create(gw, issuer)
    listeners = [_join(gw, session_id, language) for language in ("es", "es", "fr")]
    gw.vanish(listeners[1])  # gone without a $disconnect: the fan-out finds it

    def act():
        event = {"sessionId": session_id, "type": "translation", "data": {"text": "hello"}}
        result = gw.invoke(gw.app.publish, event) or {"error": "Lambda error"}
        return "publish", (session_id, result)

    return act


SCENARIOS = {
    "join": join_scenario,
    "leave": leave_scenario,
    "speaker_leave": speaker_leave_scenario,
    "listener_refresh": listener_refresh_scenario,
    "speaker_refresh": speaker_refresh_scenario,
    "publish": publish_scenario,
}


# -- invariants --------------------------------------------------------------------


def _state(client, config):
    def scan(table):
        from chalicelib.state.dynamo import plain

        items, kwargs = [], {"TableName": table, "ConsistentRead": True}
        while True:
            page = client.scan(**kwargs)
            items += [plain(item) for item in page["Items"]]
            if "LastEvaluatedKey" not in page:
                return items
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    return scan(config.sessions_table), scan(config.connections_table)


def after_handler(gw, client, config, outcome):
    """What must hold the moment the handler returns."""
    problems = []
    sessions, rows = _state(client, config)
    for session in sessions:
        if session["status"] != "active":
            continue  # an ended session's count is not kept (its rows go in batches)
        holding = [r for r in rows if r["sessionId"] == session["sessionId"]
                   and r["role"] == "listener" and "replacedBy" not in r]
        if int(session.get("listenerCount", 0)) != len(holding):
            problems.append(f"count {session.get('listenerCount')} != {len(holding)} listeners")
    if outcome and outcome[0] == "connect":
        status, _, cid = outcome[1]
        has_row = any(r["connectionId"] == cid for r in rows)
        if (200 <= status < 300) != has_row:
            problems.append(f"connect answered {status} but its row {'exists' if has_row else 'is missing'}")
    return problems


def after_sweep(gw, client, config, outcome):
    """What one sweep must have healed."""
    clock = gw.runtime.clock
    clock.advance(config.heartbeat_timeout_seconds + 1)
    for cid in list(gw.open):
        gw.send(cid, {"action": "heartbeat"})
    gw.sweep()
    problems = after_handler(gw, client, config, None)
    sessions, rows = _state(client, config)
    row_ids = {r["connectionId"] for r in rows}
    ghosts = row_ids - gw.open
    if ghosts:
        problems.append(f"{len(ghosts)} rows of closed connections")
    stateless = gw.open - row_ids
    if stateless:
        problems.append(f"{len(stateless)} open connections without state")
    for session in sessions:
        if session["status"] == "active" and session["speakerConnectionId"] not in gw.open:
            problems.append("an active session without its speaker")
    for cid in gw.server_closed:
        told = [m["type"] for m in gw.inbox[cid] if m["type"] in ("sessionEnded", "connectionClosed")]
        if not told:
            problems.append("a connection closed by the server without being told why")
    if outcome and outcome[0] == "publish":
        session_id, result = outcome[1]
        if "error" not in result:
            app_module.publish({"sessionId": session_id, "type": "translation",
                                "data": {"text": "again"}}, Context())
            for cid in gw.open:
                numbers = [m["sequenceNumber"] for m in gw.inbox[cid] if m["type"] == "translation"]
                if numbers and numbers != list(range(numbers[0], numbers[0] + len(numbers))):
                    problems.append(f"sequence numbers {numbers} skip after a publish that succeeded")
    return problems


@pytest.fixture
def backend():
    return "server"


@pytest.fixture
def config_env(config_env):
    config_env.update(PUBLISH_CONCURRENCY="1")  # one order of calls, so call k is call k
    return config_env


@pytest.fixture(autouse=True)
def no_retry_sleeps(monkeypatch):
    import botocore.endpoint

    monkeypatch.setattr(botocore.endpoint.time, "sleep", lambda seconds: None)


@pytest.fixture
def fresh(moto_server, config, issuer, gateway):
    """A function giving a new gateway on an empty moto server, with a fault injector
    on the app's DynamoDB client."""

    def make():
        request = urllib.request.Request(moto_server + "/moto-api/reset", method="POST")
        urllib.request.urlopen(request).close()
        client = boto3.client("dynamodb", region_name="us-east-1")
        ensure_tables(client, config)
        gw = Gateway(app_module, config)
        gw.runtime.__dict__["verifier"] = gateway.runtime.verifier
        faults = Faults(gw.runtime.clients.dynamodb())
        gw.record_lambda_errors = True
        return gw, client, faults

    return make


MATRIX = {}


@pytest.mark.slow
@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_faults_leave_nothing_inconsistent(scenario, fresh, config, issuer):
    """Every call of the scenario's handler, every fault kind: the invariants hold
    right after the handler and after one sweep."""
    gw, client, faults = fresh()
    act = SCENARIOS[scenario](gw, issuer)
    faults.armed = True
    act()
    calls = list(faults.calls)
    assert calls, "the scenario made no DynamoDB call"
    violations = []
    for index, operation in enumerate(calls):
        for kind in KINDS:
            gw, client, faults = fresh()
            act = SCENARIOS[scenario](gw, issuer)
            faults.armed, faults.target = True, (index, kind)
            outcome = act()
            faults.armed = False
            gw.pump()
            case = f"{scenario}: {kind} at call {index} ({operation})"
            violations += [f"{case}, after the handler: {p}" for p in after_handler(gw, client, config, outcome)]
            violations += [f"{case}, after a sweep: {p}" for p in after_sweep(gw, client, config, outcome)]
    MATRIX[scenario] = {"calls": calls, "cases": len(calls) * len(KINDS), "violations": violations}
    out = ROOT / "build" / "fault-matrix.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(MATRIX, indent=2))
    assert not violations, "\n".join(violations)
