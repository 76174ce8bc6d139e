"""A pytest plugin recording, per Lambda function, every AWS permission the code
uses while the functional scenarios run (``-p tests.terraform.iam_recorder``).

Each of app.py's handlers is wrapped so that a thread-local names the function
running (threads a handler starts inherit it); a botocore ``before-parameter-build``
hook on every session records each API call made meanwhile as the IAM action it
needs, on the resource it names:

- DynamoDB: the operation on the table or index (``TransactWriteItems`` needs
  each item's own action, ``dynamodb:PutItem``/``UpdateItem``/``DeleteItem``/
  ``ConditionCheckItem``, on that item's table: "Actions, resources, and
  condition keys for Amazon DynamoDB" in the Service Authorization Reference);
- Lambda ``Invoke``: ``lambda:InvokeFunction`` on the function; Kinesis the same way;
- ``@connections``: ``execute-api:ManageConnections`` with the HTTP verb.

The functional harness answers ``@connections`` and the ``deliver_welcome``
invocation itself, in place of the gateway; those two doubles are wrapped to
record the call the real code makes at that point
(``ConnectionsApi`` -> ``post_to_connection``/``get_connection``/
``delete_connection``; ``Runtime.dispatch_welcome``/``dispatch_sweep`` -> ``lambda.invoke``).

At the end the record is written as JSON to ``$IAM_RECORD_PATH``:
``{function: [[action, resource], ...]}``.
"""

from __future__ import annotations

import concurrent.futures
import functools
import json
import os
import threading

_current = threading.local()
_lock = threading.Lock()
RECORD: dict = {}

_TRANSACT_ITEM_ACTIONS = {
    "Put": "PutItem", "Update": "UpdateItem", "Delete": "DeleteItem",
    "ConditionCheck": "ConditionCheckItem",
}
_MANAGEMENT_VERBS = {
    "post_to_connection": "POST", "get_connection": "GET", "delete_connection": "DELETE",
}


def current_function():
    return getattr(_current, "function", None)


def record(action: str, resource: str) -> None:
    function = current_function()
    if function is None:  # test setup, table bootstrap: not a function's call
        return
    with _lock:
        RECORD.setdefault(function, set()).add((action, resource))


def _dynamodb_resource(params: dict) -> str:
    table = params.get("TableName", "?")
    index = params.get("IndexName")
    return f"{table}/index/{index}" if index else table


def on_api_call(params, model, **_kwargs) -> None:
    service = model.service_model.service_name
    operation = model.name
    if service == "dynamodb":
        if operation == "TransactWriteItems":
            for item in params.get("TransactItems", []):
                for kind, body in item.items():
                    record(f"dynamodb:{_TRANSACT_ITEM_ACTIONS[kind]}", body["TableName"])
        elif operation == "TransactGetItems":
            for item in params.get("TransactItems", []):
                record("dynamodb:GetItem", item["Get"]["TableName"])
        elif operation in ("BatchWriteItem", "BatchGetItem"):
            for table in params.get("RequestItems", {}):
                record(f"dynamodb:{operation}", table)
        else:
            record(f"dynamodb:{operation}", _dynamodb_resource(params))
    elif service == "lambda" and operation == "Invoke":
        record("lambda:InvokeFunction", params["FunctionName"])
    elif service == "kinesis":
        record(f"kinesis:{operation}", params.get("StreamName") or params.get("StreamARN", "?"))
    elif service == "apigatewaymanagementapi":
        verb = {"PostToConnection": "POST", "GetConnection": "GET", "DeleteConnection": "DELETE"}[operation]
        record("execute-api:ManageConnections", verb)
    else:
        record(f"{service}:{operation}", "*")


def _with_function(name, handler):
    @functools.wraps(handler)
    def invoke(*args, **kwargs):
        previous = current_function()
        _current.function = name
        try:
            return handler(*args, **kwargs)
        finally:
            _current.function = previous
    return invoke


def _install() -> None:
    import botocore.session

    import app as app_module
    from tests.support import harness

    chalice_app = app_module.app
    handlers = {}  # python attribute of app.py -> Chalice function name
    websocket_names = {"$connect": "websocket_connect", "$default": "websocket_message",
                       "$disconnect": "websocket_disconnect"}
    for route, config in chalice_app.websocket_handlers.items():
        handlers[config.handler_string.rsplit(".", 1)[1]] = websocket_names[route]
    for function in chalice_app.pure_lambda_functions:
        handlers[function.handler_string.rsplit(".", 1)[1]] = function.name
    for source in chalice_app.event_sources:
        handlers[source.handler_string.rsplit(".", 1)[1]] = source.name
    for attribute, name in handlers.items():
        setattr(app_module, attribute, _with_function(name, getattr(app_module, attribute)))
    if chalice_app.routes:  # every @app.route is served by api_handler, the app object itself
        type(chalice_app).__call__ = _with_function("api_handler", type(chalice_app).__call__)

    original_init = botocore.session.Session.__init__

    def session_init(self, *args, **kwargs):
        original_init(self, *args, **kwargs)
        self.register("before-parameter-build", on_api_call)

    botocore.session.Session.__init__ = session_init

    original_submit = concurrent.futures.ThreadPoolExecutor.submit

    def submit(self, fn, *args, **kwargs):
        return original_submit(self, _with_function(current_function(), fn), *args, **kwargs)

    concurrent.futures.ThreadPoolExecutor.submit = submit

    for method, verb in _MANAGEMENT_VERBS.items():
        original = getattr(harness.FakeManagementClient, method)

        def recorded(self, *args, _original=original, _verb=verb, **kwargs):
            record("execute-api:ManageConnections", _verb)
            return _original(self, *args, **kwargs)

        setattr(harness.FakeManagementClient, method, recorded)

    # The harness runs the asynchronous invocations itself: record the one the
    # real code makes at that point (Runtime.dispatch_welcome, dispatch_sweep).
    for method, function_name in (("dispatch_welcome", "welcome_function_name"),
                                  ("dispatch_sweep", "sweep_function_name")):
        original = getattr(harness.HarnessRuntime, method)

        def dispatched(self, *args, _original=original, _name=function_name, **kwargs):
            record("lambda:InvokeFunction", getattr(self.config, _name))
            return _original(self, *args, **kwargs)

        setattr(harness.HarnessRuntime, method, dispatched)


def pytest_configure(config) -> None:
    _install()


def pytest_unconfigure(config) -> None:
    path = os.environ.get("IAM_RECORD_PATH")
    if path:
        with open(path, "w") as out:
            json.dump({name: sorted(map(list, calls)) for name, calls in RECORD.items()}, out,
                      indent=1, sort_keys=True)
