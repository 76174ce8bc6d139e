"""An in-process, synchronous stand-in for API Gateway, for functional tests.

It invokes the real Lambda handlers of app.py with API Gateway-shaped events, and
records what the app posts to ``@connections``. It mirrors the gateway rules the
app depends on: posting to a connection still inside its ``$connect`` or already
gone gives 410; closing a connection fires ``$disconnect`` (after the current
invocation, as a separate invocation would); the first message is delivered by an
"asynchronous" ``deliver_welcome`` invocation that runs after ``$connect`` returns.
The real gateway emulator (local_stack) is exercised by the e2e tests.
"""

from __future__ import annotations

import base64
import itertools
import json
import os
import time
from collections import defaultdict
from typing import Dict, List, Optional

from chalicelib.connections_api import ConnectionsApi
from chalicelib.runtime import Runtime

API_ID = "abcdef1234"
STAGE = "dev"
METHOD_ARN = f"arn:aws:execute-api:us-east-1:123456789012:{API_ID}/{STAGE}/$connect"
_ids = itertools.count(1)


class Gone(Exception):
    pass


class FakeManagementClient:
    """Duck-types the botocore ``apigatewaymanagementapi`` client."""

    def __init__(self, gateway: "Gateway") -> None:
        self.gateway = gateway

    def _count(self, operation: str) -> None:
        counter = self.gateway.call_counter
        if counter is not None:
            counter.count("apigatewaymanagementapi", operation)

    def _gone(self):
        from botocore.exceptions import ClientError

        return ClientError(
            {"Error": {"Code": "GoneException", "Message": "gone"},
             "ResponseMetadata": {"HTTPStatusCode": 410}},
            "PostToConnection",
        )

    def post_to_connection(self, ConnectionId, Data):
        self._count("PostToConnection")
        if ConnectionId not in self.gateway.open:
            raise self._gone()
        self.gateway.inbox[ConnectionId].append(json.loads(Data))

    def get_connection(self, ConnectionId):
        self._count("GetConnection")
        if ConnectionId not in self.gateway.open:
            raise self._gone()
        return {"ConnectedAt": "2026-01-01T00:00:00Z", "Identity": {"SourceIp": "127.0.0.1"}}

    def delete_connection(self, ConnectionId):
        self._count("DeleteConnection")
        if ConnectionId not in self.gateway.open:
            raise self._gone()
        self.gateway.server_closed.add(ConnectionId)
        self.gateway.drop(ConnectionId, status=1000, reason="closed by server")


class Clock:
    """Real time plus whatever the test fast-forwards."""

    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset

    def advance(self, seconds: float) -> None:
        self.offset += seconds


class HarnessRuntime(Runtime):
    def __init__(self, config, gateway: "Gateway") -> None:
        # Metrics are kept as the EMF objects the functions would print.
        super().__init__(config, clock=Clock(), emit_metrics=gateway.emf.append)
        self.gateway = gateway
        self.fail_dispatch = False

    def connections_api(self, endpoint: str) -> ConnectionsApi:
        self.gateway.endpoints.add(endpoint)
        return ConnectionsApi(FakeManagementClient(self.gateway))

    def dispatch_welcome(self, welcome) -> None:
        if self.gateway.call_counter is not None:
            self.gateway.call_counter.count("lambda", "Invoke")
        if self.fail_dispatch:
            raise RuntimeError("Lambda throttled the async invocation")
        self.gateway.pending_welcomes.append(welcome.to_payload())

    def dispatch_sweep(self, shard: int) -> None:
        if self.gateway.call_counter is not None:
            self.gateway.call_counter.count("lambda", "Invoke")
        self.gateway.pending_sweeps.append({"shard": shard})


class Context:
    aws_request_id = "req"

    def __init__(self, function: str = "test") -> None:
        # Deployed as <app>-<stage>-<Chalice name>, as Terraform names them.
        self.function_name = f"broadcast-dev-{function}"

    def get_remaining_time_in_millis(self):
        return 30000


# app.py's handler attribute -> the Chalice name of its Lambda function.
FUNCTION_NAMES = {"on_ws_connect": "websocket_connect", "on_ws_message": "websocket_message",
                  "on_ws_disconnect": "websocket_disconnect"}

class Gateway:
    def __init__(self, app_module, config) -> None:
        self.app = app_module
        self.emf: List[dict] = []  # every EMF object the functions emitted
        self.runtime = HarnessRuntime(config, self)
        app_module.runtime = self.runtime
        self.open: set = set()
        self.inbox: Dict[str, List[dict]] = defaultdict(list)
        self.closed: Dict[str, int] = {}
        self.server_closed: set = set()  # closed by DELETE @connections
        self.pending_welcomes: List[dict] = []
        self.pending_disconnects: List[tuple] = []
        self.pending_sweeps: List[dict] = []
        self.sweep_reports: List[dict] = []
        self.endpoints: set = set()
        self.call_counter = None  # tests/support/calls.py
        # Lambda records a handler's exception and moves on; tests see it raised
        # unless they model that (fault injection records them here instead).
        self.record_lambda_errors = False
        self.lambda_errors: List[str] = []

    def function_name(self, handler) -> str:
        for attribute, value in vars(self.app).items():
            if value is handler:
                return FUNCTION_NAMES.get(attribute, attribute)
        return "test"

    def metric(self, name: str, **dimensions) -> float:
        """The sum of every value of metric ``name`` (with these dimensions) emitted so far."""
        from chalicelib.observability.metrics import metric_values

        return sum(value for document in self.emf for metric, dims, value in metric_values(document)
                   if metric == name and all(dims.get(k) == v for k, v in dimensions.items()))

    def invoke(self, handler, event):
        try:
            return handler(event, Context(self.function_name(handler)))
        except Exception as exc:
            if not self.record_lambda_errors:
                raise
            name = getattr(handler, "__name__", type(handler).__name__)
            self.lambda_errors.append(f"{name}: {type(exc).__name__}: {exc}")
            return None

    # -- events ------------------------------------------------------------------

    def _context(self, connection_id, route, event_type):
        now_ms = int(time.time() * 1000)
        return {
            "routeKey": route,
            "eventType": event_type,
            "connectionId": connection_id,
            "connectedAt": now_ms,
            "domainName": f"{API_ID}.execute-api.us-east-1.amazonaws.com",
            "stage": STAGE,
            "apiId": API_ID,
            "requestTimeEpoch": now_ms,
            "messageId": base64.b64encode(os.urandom(9)).decode(),
            "identity": {"sourceIp": "127.0.0.1", "userAgent": "pytest"},
        }

    @staticmethod
    def new_connection_id() -> str:
        return base64.b64encode(next(_ids).to_bytes(8, "big") + os.urandom(1)).decode()

    def authorize(self, query: dict) -> Optional[dict]:
        event = {
            "type": "REQUEST",
            "methodArn": METHOD_ARN,
            "headers": {"Host": "localhost"},
            "queryStringParameters": query,
            "requestContext": self._context("pending", "$connect", "CONNECT"),
        }
        return self.invoke(self.app.authorizer, event)

    def connect(self, query: dict, connection_id: Optional[str] = None, deliver: bool = True):
        """Returns (status, body, connection_id), running the authorizer first."""
        connection_id = connection_id or self.new_connection_id()
        try:
            policy = self.authorize(query)
        except Exception as exc:
            return (401 if str(exc) == "Unauthorized" else 500), None, connection_id
        if policy is None:
            return 500, None, connection_id
        if policy["policyDocument"]["Statement"][0]["Effect"] != "Allow":
            return 403, None, connection_id
        context = self._context(connection_id, "$connect", "CONNECT")
        context["authorizer"] = {"principalId": policy["principalId"], **policy.get("context", {})}
        event = {
            "headers": {"Host": "localhost"},
            "queryStringParameters": query or None,
            "requestContext": context,
            "isBase64Encoded": False,
        }
        response = self.invoke(self.app.on_ws_connect, event) or {"statusCode": 500}
        status = response.get("statusCode", 200)
        body = json.loads(response["body"]) if response.get("body") else None
        if 200 <= status < 300:
            self.open.add(connection_id)
            if deliver:
                self.pump()
        else:
            self.pending_welcomes.clear()
        return status, body, connection_id

    def send(self, connection_id: str, message, raw: bool = False) -> None:
        assert connection_id in self.open, "cannot send on a closed socket"
        event = {
            "body": message if raw else json.dumps(message),
            "requestContext": self._context(connection_id, "$default", "MESSAGE"),
            "isBase64Encoded": False,
        }
        self.invoke(self.app.on_ws_message, event)
        self.pump()

    def drop(self, connection_id: str, status: int = 1001, reason: str = "Going away") -> None:
        """The socket closes: the client is gone and $disconnect will fire."""
        if connection_id in self.open:
            self.open.discard(connection_id)
            self.closed[connection_id] = status
            self.pending_disconnects.append((connection_id, status, reason))

    def disconnect_event(self, connection_id: str, status=1000, reason="") -> None:
        context = self._context(connection_id, "$disconnect", "DISCONNECT")
        context.update(disconnectStatusCode=status, disconnectReason=reason)
        self.invoke(self.app.on_ws_disconnect, {"requestContext": context, "isBase64Encoded": False})

    def pump(self) -> None:
        """Run the invocations that API Gateway/Lambda would run next."""
        while self.pending_welcomes or self.pending_disconnects or self.pending_sweeps:
            while self.pending_sweeps:
                report = self.invoke(self.app.sweep_shard, self.pending_sweeps.pop(0))
                if report is not None:
                    self.sweep_reports.append(report)
            while self.pending_welcomes:
                self.invoke(self.app.deliver_welcome, self.pending_welcomes.pop(0))
            while self.pending_disconnects:
                self.disconnect_event(*self.pending_disconnects.pop(0))

    def sweep(self) -> dict:
        """One run of the scheduled function, as EventBridge would invoke it, and of
        the shard workers it starts; returns the workers' reports summed up."""
        event = {"version": "0", "id": "sweep", "detail-type": "Scheduled Event", "source": "aws.events",
                 "account": "123456789012", "time": "2026-01-01T00:00:00Z", "region": "us-east-1",
                 "resources": ["arn:aws:events:us-east-1:123456789012:rule/sweep"], "detail": {}}
        self.sweep_reports = []
        self.invoke(self.app.sweep, event)
        self.pump()
        total = {}
        for report in self.sweep_reports:
            for key, value in report.items():
                if key != "shard":
                    total[key] = total.get(key, 0) + value
        return total

    def http(self, method: str, path: str):
        """A request to the app's REST routes, as the health API delivers it (payload
        format 1.0, the function api_handler); returns (status, parsed body)."""
        from local_stack.http_api import proxy_event, response_parts

        event = proxy_event(method=method, path=path, resource=path, query=(), headers=(),
                            body=b"", source_ip="127.0.0.1", api_id=API_ID, account_id="123456789012")
        status, _, body = response_parts(self.app.app(event, Context("api_handler")))
        return status, json.loads(body) if body else None

    def vanish(self, connection_id: str) -> None:
        """The socket is gone but API Gateway's $disconnect never arrives."""
        self.open.discard(connection_id)

    def close(self, connection_id: str) -> None:
        """The client closes its socket."""
        self.drop(connection_id, 1000, "client closed")
        self.pump()

    # -- assertions ----------------------------------------------------------------

    def received(self, connection_id: str, type_: Optional[str] = None) -> List[dict]:
        return [m for m in self.inbox[connection_id] if type_ is None or m["type"] == type_]

    def last(self, connection_id: str) -> dict:
        return self.inbox[connection_id][-1]
