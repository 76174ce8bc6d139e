"""A tiny Chalice WebSocket app that exercises every path of the gateway.

Not shipped; loaded by the gateway tests from this file. It talks to the
gateway only through boto3 (``apigatewaymanagementapi`` via
``MANAGEMENT_API_URL``, ``lambda`` via ``AWS_ENDPOINT_URL_LAMBDA``), as the
real app does, and records what it receives for the tests to inspect.

Query parameters steer it: ``auth=deny|unauthorized|returned-unauthorized|error|nested|garbage``,
``status=NNN`` (the ``$connect`` answer), ``slow=SECONDS`` (a slow ``$connect``), ``welcome=1`` (ask
``deliver_welcome`` to greet once ``$connect`` returned).
"""
import json
import os
import threading
import time

import boto3
from chalice import Chalice, Response, WebsocketDisconnectedError
from chalice.app import Rate

app = Chalice(app_name="fixture")
app.experimental_feature_flags.update(["WEBSOCKETS"])

EVENTS = []  # (route, event) in arrival order
LOCK = threading.Lock()
TICKS = []


def record(route, event):
    with LOCK:
        EVENTS.append((route, event))


class _EndpointSession:
    """The supported way to point Chalice's WebsocketAPI at another endpoint."""

    def __init__(self, session, url):
        self._session, self._url = session, url

    @property
    def region_name(self):
        return self._session.region_name

    def client(self, service, endpoint_url=None, **kwargs):
        return self._session.client(service, endpoint_url=self._url, **kwargs)


def _api():
    if app.websocket_api.session is None:
        app.websocket_api.session = _EndpointSession(boto3.session.Session(),
                                                     os.environ["MANAGEMENT_API_URL"])
    return app.websocket_api


def _configure(event):
    _api().configure_from_api_id(event["requestContext"]["apiId"], event["requestContext"]["stage"])


@app.lambda_function(name="authorizer")
def authorizer(event, context):
    record("authorizer", event)
    mode = (event.get("queryStringParameters") or {}).get("auth", "allow")
    if mode == "unauthorized":
        raise Exception("Unauthorized")
    if mode == "returned-unauthorized":
        return "Unauthorized"  # not a raise: an invalid policy response, 500
    if mode == "error":
        # Quotes the query, as a careless handler might: the gateway's log must not.
        raise RuntimeError(f"boom: {event.get('queryStringParameters')}")
    if mode == "garbage":
        return {"hello": "world"}
    effect = "Deny" if mode == "deny" else "Allow"
    context_map = {"userId": "user-1", "admin": False, "n": 3}
    if mode == "nested":
        context_map["bad"] = {"x": 1}
    return {
        "principalId": "user-1",
        "policyDocument": {
            "Version": "2012-10-17",
            "Statement": [{"Action": "execute-api:Invoke", "Effect": effect,
                           "Resource": event["methodArn"]}],
        },
        "context": context_map,
    }


@app.on_ws_connect()
def connect(event):
    raw = event.to_dict()
    record("$connect", raw)
    query = raw.get("queryStringParameters") or {}
    _configure(raw)
    # API Gateway refuses posts to a connection during its own $connect.
    try:
        _api().send(event.connection_id, "too early")
        early = "sent"
    except WebsocketDisconnectedError:
        early = "gone"
    record("early-post", {"result": early})
    if "slow" in query:
        time.sleep(float(query["slow"]))  # a $connect still running when the stack stops
    if "status" in query:
        # The message quotes the query (a careless app): the gateway logs only the code.
        return Response(status_code=int(query["status"]),
                        body={"code": "REFUSED", "message": f"as asked: {query}"})
    if query.get("welcome"):
        boto3.session.Session().client("lambda").invoke(
            FunctionName="fixture-dev-deliver_welcome", InvocationType="Event",
            Payload=json.dumps({"connectionId": event.connection_id}).encode())
    return None


@app.lambda_function(name="deliver_welcome")
def deliver_welcome(event, context):
    record("deliver_welcome", event)
    api = _api()
    api.configure_from_api_id("local00api", "dev")
    deadline = time.monotonic() + 5
    while True:
        try:
            api.send(event["connectionId"], json.dumps({"type": "welcome"}))
            return {"delivered": True}
        except WebsocketDisconnectedError:
            if time.monotonic() > deadline:
                return {"delivered": False}
            time.sleep(0.05)


@app.lambda_function(name="echo_function")
def echo_function(event, context):
    record("echo_function", event)
    return {"event": event, "function": context.function_name,
            "remaining": context.get_remaining_time_in_millis() > 0}


@app.lambda_function(name="failing_function")
def failing_function(event, context):
    raise ValueError("nope")


@app.on_ws_message()
def message(event):
    raw = event.to_dict()
    record("$default", raw)
    _configure(raw)
    api = _api()
    body = event.body
    if body == "raise":
        raise RuntimeError("handler failed")
    if body.startswith("sleep "):
        record("sleeping", {"seconds": body.split()[1]})
        time.sleep(float(body.split()[1]))  # a handler still running at shutdown
        return
    if body == "close-me":
        api.close(event.connection_id)
        return
    if body == "info":
        info = api.info(event.connection_id)
        api.send(event.connection_id, json.dumps({
            "info": {k: str(v) for k, v in info.items() if k != "ResponseMetadata"}}))
        return
    if len(body) > 1000:
        api.send(event.connection_id, json.dumps({"length": len(body)}))
        return
    api.send(event.connection_id, json.dumps({"echo": body, "route": raw["requestContext"]["routeKey"]}))


@app.on_ws_disconnect()
def disconnect(event):
    record("$disconnect", event.to_dict())


@app.schedule(Rate(1, unit=Rate.MINUTES))
def tick(event):
    TICKS.append(event.to_dict())
