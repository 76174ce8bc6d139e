"""No alarm that can never fire (issue 11, "Proof").

Every metric every alarm watches is taken from what Terraform created (the stack
applied to moto, ``describe_alarms``: single metrics and each metric of a metric-math
alarm), then:

- the app's own metrics (namespace Broadcast) must be emitted, with exactly those
  dimensions and values, by the real functions in end-to-end runs of the local stack
  that exercise them: a healthy stack whose tables are then deleted (every function's
  Faults), a stack whose @connections endpoint is unreachable (first messages that
  fail, a sweep that cannot start its shards), and one whose signing keys are
  unreachable (JWKS fetch failures). Only the authorizer's Faults cannot be provoked
  from outside (it fails on a bug alone); its lines show the dimension value its
  invocations carry.
- AWS's metrics must be ones AWS documents with exactly those dimensions, naming
  resources the stack has.
"""
from __future__ import annotations

import json
import time
import urllib.request

import boto3
import pytest

from tests.e2e.conftest import StackProcess
from tests.support.aws_http import http
from tools import publish

pytestmark = [pytest.mark.terraform, pytest.mark.e2e, pytest.mark.slow]

NAMESPACE = "Broadcast"

# AWS's metrics and the dimension sets each is published with:
# - Lambda: "Types of metrics for Lambda functions" / "Viewing metrics for Lambda
#   functions" (Lambda Developer Guide): Errors, Throttles by FunctionName (also
#   Resource, ExecutedVersion; the account-wide series has none).
# - API Gateway, WebSocket APIs: "Monitoring WebSocket API execution with CloudWatch
#   metrics" (API Gateway Developer Guide): ExecutionError, IntegrationError,
#   ClientError, ConnectCount, MessageCount by ApiId; ApiId + Stage; ApiId + Stage +
#   Route (the last with detailed metrics only).
# - DynamoDB: "DynamoDB Metrics and dimensions" (DynamoDB Developer Guide):
#   ReadThrottleEvents, WriteThrottleEvents by TableName, and TableName +
#   GlobalSecondaryIndexName; SystemErrors by TableName + Operation only.
DOCUMENTED = {
    ("AWS/Lambda", "Errors"): [{"FunctionName"}, {"FunctionName", "Resource"}],
    ("AWS/Lambda", "Throttles"): [{"FunctionName"}, {"FunctionName", "Resource"}],
    ("AWS/ApiGateway", "ExecutionError"): [{"ApiId"}, {"ApiId", "Stage"}, {"ApiId", "Stage", "Route"}],
    ("AWS/DynamoDB", "ReadThrottleEvents"): [{"TableName"}, {"TableName", "GlobalSecondaryIndexName"}],
    ("AWS/DynamoDB", "WriteThrottleEvents"): [{"TableName"}, {"TableName", "GlobalSecondaryIndexName"}],
    ("AWS/DynamoDB", "SystemErrors"): [{"TableName", "Operation"}],
}
DYNAMODB_OPERATIONS = {"GetItem", "PutItem", "UpdateItem", "DeleteItem", "Query", "Scan",
                       "BatchGetItem", "BatchWriteItem", "TransactWriteItems", "TransactGetItems"}
# Faults of the authorizer need a bug: nothing a client sends makes it fail.
NOT_PROVOKED = {("Faults", (("Function", "authorizer"), ("Stage", "dev")))}


def watched(stack) -> list:
    """(alarm, namespace, metric, dimensions) of every metric of every alarm."""
    found = []
    for alarm in stack.client("cloudwatch").describe_alarms(AlarmNamePrefix="broadcast-dev-")["MetricAlarms"]:
        def add(namespace, name, dimensions):
            found.append((alarm["AlarmName"], namespace, name,
                          {d["Name"]: d["Value"] for d in dimensions or []}))
        if alarm.get("MetricName"):
            add(alarm["Namespace"], alarm["MetricName"], alarm.get("Dimensions"))
        for query in alarm.get("Metrics") or []:
            metric = (query.get("MetricStat") or {}).get("Metric")
            if metric:
                add(metric["Namespace"], metric["MetricName"], metric.get("Dimensions"))
    return found


def snapshot(stack) -> dict:
    with urllib.request.urlopen(f"{stack.http}/_local/metrics", timeout=10) as response:
        return json.loads(response.read())


def series(stack) -> set:
    return {(s["metric"], tuple(sorted(s["dimensions"].items())))
            for s in snapshot(stack)["series"] if s["namespace"] == NAMESPACE}


def wait_for(stack, metric, dimensions, timeout=30):
    key = (metric, tuple(sorted(dimensions.items())))
    deadline = time.monotonic() + timeout
    while key not in series(stack):
        if time.monotonic() > deadline:
            raise AssertionError(f"{metric} {dimensions} not emitted in {timeout} s")
        time.sleep(0.2)


def reply_to(ws) -> dict:
    """The next message that is not a notice (a listener's presence, say)."""
    while True:
        message = json.loads(ws.recv(timeout=10))
        if message.get("type") not in ("listenerPresence", "sessionCreated", "sessionJoined"):
            return message


def invoke(stack, function, payload) -> dict:
    return publish.invoke(payload, endpoint=stack.http, function=function, region="us-east-1")


def drop_tables(stack) -> None:
    dynamodb = boto3.client("dynamodb", endpoint_url=stack.aws, region_name="us-east-1",
                            aws_access_key_id="test", aws_secret_access_key="test")
    for table in dynamodb.list_tables()["TableNames"]:
        dynamodb.delete_table(TableName=table)


@pytest.fixture(scope="module")
def emitted(tmp_path_factory):
    """Every (metric, dimensions) the functions emitted in the three runs, and every
    JSON log line they wrote."""
    base = tmp_path_factory.mktemp("alarm-metrics")
    started = []

    def start(name, **env):
        stack = StackProcess(base / name, base / f"{name}.log", GATEWAY_SCHEDULE_PERIOD_SECONDS="1",
                             GATEWAY_SUMMARY_SECONDS="0", **env).start()
        started.append(stack)
        return stack

    found = set()
    try:
        # A healthy stack: a session, a listener, a broadcast, sweeps...
        healthy = start("healthy")
        with healthy.connect(action="createSession", sourceLanguage="en", token=healthy.token()) as speaker:
            session_id = json.loads(speaker.recv(timeout=10))["sessionId"]
            with healthy.connect(action="joinSession", sessionId=session_id, targetLanguage="es") as listener:
                listener.recv(timeout=10)
                invoke(healthy, "publish", {"sessionId": session_id, "data": {"text": "hola"}})
                wait_for(healthy, "SweepCompleted", {"Stage": "dev"})
                # ... then its tables are gone: every function that reads them fails.
                drop_tables(healthy)
                # (not a heartbeat: a sender seen in the last seconds is not read again)
                speaker.send(json.dumps({"action": "getSessionStatus"}))
                assert reply_to(speaker)["code"] == "SERVICE_UNAVAILABLE"
                assert healthy.status(action="joinSession", sessionId=session_id, targetLanguage="fr") == 503
                assert http("GET", f"{healthy.http}/health")[0] == 503
                assert invoke(healthy, "publish", {"sessionId": session_id, "data": {}})["error"]["code"] \
                    == "SERVICE_UNAVAILABLE"
            wait_for(healthy, "Faults", {"Stage": "dev", "Function": "websocket_disconnect"})
            wait_for(healthy, "Faults", {"Stage": "dev", "Function": "sweep_shard"})
        found |= series(healthy)

        # @connections unreachable: a first message fails; the sweep cannot start its shards;
        # a first message whose connection's table vanishes meanwhile is a fault.
        cut_off = start("unreachable", MANAGEMENT_API_URL="http://127.0.0.1:9",
                        WELCOME_DELIVERY_TIMEOUT_SECONDS="2", SWEEP_FUNCTION_NAME="missing")
        with cut_off.connect(action="createSession", sourceLanguage="en", token=cut_off.token()):
            wait_for(cut_off, "WelcomeFailed", {"Stage": "dev"})
            with cut_off.connect(action="createSession", sourceLanguage="en", token=cut_off.token()):
                drop_tables(cut_off)
                wait_for(cut_off, "Faults", {"Stage": "dev", "Function": "deliver_welcome"})
        wait_for(cut_off, "Faults", {"Stage": "dev", "Function": "sweep"})
        found |= series(cut_off)

        # Signing keys unreachable: speakers refused with 503, each failed fetch counted.
        keyless = start("keyless", JWKS_URL="http://127.0.0.1:9/.well-known/jwks.json")
        assert keyless.status(action="createSession", sourceLanguage="en", token=keyless.token()) == 503
        wait_for(keyless, "JwksFetchFailures", {"Stage": "dev"})
        found |= series(keyless)
    finally:
        for stack in started:
            stack.stop()
    lines = [json.loads(line) for stack in started for line in stack.log_path.read_text().splitlines()
             if line.startswith("{")]
    return found, lines


def test_every_app_metric_an_alarm_watches_is_emitted(applied_stack, emitted):
    """Each Broadcast metric of each alarm, with its exact dimensions and values
    (Stage=dev, Function=<Chalice name>), was emitted by the functions."""
    found, lines = emitted
    ours = [(alarm, name, dimensions) for alarm, namespace, name, dimensions in watched(applied_stack)
            if namespace == NAMESPACE]
    # Not vacuous: every function's faults are watched, and so are the app's own signals.
    assert {d.get("Function") for _, name, d in ours if name == "Faults"} == set(applied_stack.package.functions)
    assert {"WelcomeFailed", "FanoutFailed", "SweepShardRuns", "JwksFetchFailures"} <= {name for _, name, _ in ours}, ours
    missing = [(alarm, name, dimensions) for alarm, name, dimensions in ours
               if (name, tuple(sorted(dimensions.items()))) not in found | NOT_PROVOKED]
    assert missing == []
    # The one not provoked: the authorizer's invocations carry Function=authorizer.
    assert {line.get("function") for line in lines if line.get("logger") == "chalicelib.auth.authorizer"} \
        == {"authorizer"}


def test_every_aws_metric_an_alarm_watches_is_documented(applied_stack):
    """Each AWS metric of each alarm is published with exactly its dimension set, and
    names a function, table, index, API or operation the stack has."""
    outputs = applied_stack.outputs
    functions = set(outputs["function_names"].values())
    tables = set(outputs["table_names"].values())
    dynamodb = applied_stack.client("dynamodb")
    indexes = {(table, index["IndexName"]) for table in tables
               for index in dynamodb.describe_table(TableName=table)["Table"].get("GlobalSecondaryIndexes", [])}
    problems = []
    for alarm, namespace, name, dimensions in watched(applied_stack):
        if namespace == NAMESPACE:
            continue
        if set(dimensions) not in DOCUMENTED.get((namespace, name), []):
            problems.append(f"{alarm}: {namespace} {name} is not published by {sorted(dimensions)}")
        if "FunctionName" in dimensions and dimensions["FunctionName"] not in functions:
            problems.append(f"{alarm}: no function {dimensions['FunctionName']}")
        if "TableName" in dimensions and dimensions["TableName"] not in tables:
            problems.append(f"{alarm}: no table {dimensions['TableName']}")
        if "GlobalSecondaryIndexName" in dimensions and \
                (dimensions["TableName"], dimensions["GlobalSecondaryIndexName"]) not in indexes:
            problems.append(f"{alarm}: no index {dimensions['GlobalSecondaryIndexName']}")
        if "ApiId" in dimensions and (dimensions["ApiId"], dimensions.get("Stage")) != \
                (outputs["api_id"], outputs["api_stage_name"]):
            problems.append(f"{alarm}: another API {dimensions}")
        if "Operation" in dimensions and dimensions["Operation"] not in DYNAMODB_OPERATIONS:
            problems.append(f"{alarm}: no DynamoDB operation {dimensions['Operation']}")
    assert problems == []


def test_nothing_routine_is_watched(applied_stack):
    """No alarm watches what routine clients cause: IntegrationError and ClientError
    (every $connect refusal), refusal counts, gone connections (but as the ratio's
    denominator)."""
    routine = {"IntegrationError", "ClientError", "ConnectRefusals", "MessageRefusals",
               "RateLimitRefusals", "WelcomeGone"}
    names = {name for _, _, name, _ in watched(applied_stack)}
    assert names & routine == set()
