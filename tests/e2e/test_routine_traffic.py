"""Routine client behaviour moves no alarm (issue 11, "Proof"): 100 handshakes with a
bad speaker token, 100 refused handshakes (unknown session, malformed query, full
session, in-band refusals) and a listener that vanishes mid-broadcast, through the
local stack, and then: no fault signal an alarm counts (FAULT_SIGNALS: Faults,
JwksFetchFailures, WelcomeFailed, FanoutFailed) was emitted, no function failed
(what Lambda would count in Errors), and no handshake got a 5xx other than the
routine SESSION_FULL. The refusals themselves are counted, by code."""
import json
import socket
import urllib.request

import pytest
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from chalicelib.observability.metrics import FAULT_SIGNALS
from test_e2e_long_sessions import wait_until
from tests.support.aws_http import signed_http

pytestmark = pytest.mark.e2e


def metrics(stack) -> dict:
    with urllib.request.urlopen(f"{stack.http}/_local/metrics", timeout=10) as response:
        return json.loads(response.read())


def status(url) -> int:
    try:
        with connect(url, open_timeout=10, close_timeout=2):
            return 101
    except InvalidStatus as exc:
        return exc.response.status_code


def test_routine_refusals_and_a_gone_listener_move_no_alarm(make_stack_process):
    stack = make_stack_process(MAX_LISTENERS_PER_SESSION="1", GATEWAY_SCHEDULE_PERIOD_SECONDS="2")
    statuses = [status(stack.url(action="createSession", sourceLanguage="en", token=f"bad.{i}.token"))
                for i in range(100)]
    assert statuses == [401] * 100

    with stack.connect(action="createSession", sourceLanguage="en", token=stack.token()) as speaker:
        session_id = json.loads(speaker.recv(timeout=10))["sessionId"]
        with stack.connect(action="joinSession", sessionId=session_id, targetLanguage="es") as listener:
            json.loads(listener.recv(timeout=10))
            refused = (
                [status(stack.url(action="joinSession", sessionId="faithful-shepherd-427",
                                  targetLanguage="es")) for _ in range(40)]
                + [status(stack.url(action="joinSession", sessionId=session_id)) for _ in range(30)]
                + [status(stack.url(action="joinSession", sessionId=session_id, targetLanguage="fr"))
                   for _ in range(20)]
            )
            assert refused == [404] * 40 + [400] * 30 + [503] * 20  # 503: SESSION_FULL, routine
            for _ in range(10):  # a browser's in-band refusals: accepted, told, closed
                with connect(stack.url(action="joinSession", sessionId="faithful-shepherd-427",
                                       targetLanguage="es", refusal="message"), open_timeout=10) as browser:
                    assert json.loads(browser.recv(timeout=10))["code"] == "SESSION_NOT_FOUND"
            # The listener vanishes (no close handshake), and a broadcast follows at once.
            socket.socket(fileno=listener.socket.detach()).close()
            body = json.dumps({"sessionId": session_id, "type": "translation",
                               "data": {"text": "hola"}}).encode()
            answer = signed_http("POST", f"{stack.http}/2015-03-31/functions/publish/invocations",
                                 body, service="lambda")
            assert answer[0] == 200 and "error" not in json.loads(answer[2])
            wait_until(lambda: metrics(stack)["counts"].get("ListenersLeft"), 20,
                       "the vanished listener's departure")

    seen = metrics(stack)
    assert seen["counts"]["ConnectRefusals"]["by"] == {
        "Code=UNAUTHORIZED": 100, "Code=SESSION_NOT_FOUND": 50, "Code=MISSING_PARAMETER": 30,
        "Code=SESSION_FULL": 20}
    # FanoutFailed is emitted (as 0) with every fan-out; the others only when they happen.
    signals = [s for s in seen["series"] if s["metric"] in FAULT_SIGNALS and s["metric"] != "FanoutFailed"]
    assert signals == []
    assert seen["counts"].get("FanoutFailed", {"total": 0})["total"] == 0
    log = stack.log_path.read_text().splitlines()
    assert [line for line in log if "local_stack.lambda" in line and " failed: " in line] == []
    assert [line for line in log if '"level":"ERROR"' in line] == []
