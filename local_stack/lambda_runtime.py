"""Load a Chalice app and invoke its functions the way Lambda does.

Lambda knows a function by its handler string (``app.on_ws_connect``): it
imports the module and calls that attribute with ``(event, context)``. We do
the same, reading the handler strings from the Chalice app's own
registrations, so the app runs exactly the code it runs in AWS.
Events and results travel as JSON, as they do through Lambda.
"""
from __future__ import annotations

import asyncio
import concurrent.futures
import importlib
import importlib.util
import json
import logging
import sys
import time
import traceback
import uuid
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional

import attrs

from .logsafe import client_text
from .schedule import Schedule, ScheduleError

log = logging.getLogger("local_stack.lambda")

#: Chalice's names for the functions behind the three WebSocket routes.
WEBSOCKET_FUNCTION_NAMES = {
    "$connect": "websocket_connect",
    "$default": "websocket_message",
    "$disconnect": "websocket_disconnect",
}
DEFAULT_TIMEOUT_SECONDS = 60


class FunctionNotFound(LookupError):
    """No function of the app has that name (Lambda: 404 ResourceNotFoundException)."""


class FunctionError(Exception):
    """The handler raised; carries Lambda's error payload."""

    def __init__(self, payload: Dict[str, Any]):
        super().__init__(payload.get("errorMessage", ""))
        self.payload = payload


@attrs.frozen
class Function:
    """One Lambda function of the app."""

    name: str  # Chalice name, e.g. ``deliver_welcome``
    handler_string: str  # e.g. ``app.deliver_welcome``
    handler: Callable[[Any, Any], Any]
    schedule: Optional[str] = None  # for ``@app.schedule`` functions


class LambdaContext:
    """The context object handlers receive (the attributes Python's runtime has)."""

    def __init__(self, function_name: str, *, region: str, account_id: str,
                 timeout: float = DEFAULT_TIMEOUT_SECONDS, memory_mb: int = 128):
        self.function_name = function_name
        self.function_version = "$LATEST"
        self.invoked_function_arn = (
            f"arn:aws:lambda:{region}:{account_id}:function:{function_name}"
        )
        self.memory_limit_in_mb = memory_mb
        self.aws_request_id = str(uuid.uuid4())
        self.log_group_name = f"/aws/lambda/{function_name}"
        self.log_stream_name = time.strftime("%Y/%m/%d/[$LATEST]") + uuid.uuid4().hex
        self.identity = None
        self.client_context = None
        self._deadline = time.monotonic() + timeout

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


def load_module(app: str, app_dir: Path):
    """Import the app: a module name found from ``app_dir``, or a ``.py`` path."""
    app_dir = Path(app_dir).resolve()
    if str(app_dir) not in sys.path:
        sys.path.insert(0, str(app_dir))
    if app.endswith(".py"):
        path = Path(app)
        if not path.is_absolute():
            path = app_dir / path
        name = f"_local_stack_app_{path.stem}_{uuid.uuid4().hex[:8]}"
        spec = importlib.util.spec_from_file_location(name, path)
        if spec is None or spec.loader is None:
            raise ImportError(f"cannot load {path}")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
        return module
    return importlib.import_module(app)


class LambdaApp:
    """The app's functions, by Chalice name, and a way to invoke them.

    Handlers run in a thread pool (the app's boto3 calls block); :meth:`invoke`
    is the asyncio entry point, :meth:`invoke_sync` the blocking one.
    """

    def __init__(self, module, *, stage: str, region: str, account_id: str,
                 executor: Optional[concurrent.futures.ThreadPoolExecutor] = None,
                 max_workers: int = 64):
        chalice_app = getattr(module, "app", None)
        if chalice_app is None or not hasattr(chalice_app, "websocket_handlers"):
            raise ImportError(f"{module.__name__} has no Chalice object named 'app'")
        self.module = module
        self.chalice_app = chalice_app
        self.app_name = chalice_app.app_name
        self.stage = stage
        self.region = region
        self.account_id = account_id
        self._owns_executor = executor is None
        self.executor = executor or concurrent.futures.ThreadPoolExecutor(
            max_workers=max_workers, thread_name_prefix="lambda"
        )
        self.functions: Dict[str, Function] = {}
        self.routes: Dict[str, str] = {}
        #: REST routes (@app.route): path -> methods, all served by api_handler.
        self.http_routes: Dict[str, List[str]] = {}
        self._register()

    @classmethod
    def load(cls, app: str, app_dir: Path, **kwargs) -> "LambdaApp":
        return cls(load_module(app, app_dir), **kwargs)

    # -- registry -----------------------------------------------------------

    def _resolve(self, handler_string: str) -> Callable[[Any, Any], Any]:
        # Chalice writes 'app.<python name>': the module part is always the
        # app module, whatever file it was loaded from.
        attribute = handler_string.rsplit(".", 1)[-1]
        handler = getattr(self.module, attribute, None)
        if handler is None or not callable(handler):
            raise ImportError(
                f"handler {handler_string!r}: {self.module.__name__} has no callable {attribute!r}"
            )
        return handler

    def _add(self, name: str, handler_string: str, schedule: Optional[str] = None) -> None:
        self.functions[name] = Function(
            name=name, handler_string=handler_string,
            handler=self._resolve(handler_string), schedule=schedule,
        )

    def _register(self) -> None:
        app = self.chalice_app
        for route_key, config in app.websocket_handlers.items():
            name = WEBSOCKET_FUNCTION_NAMES.get(route_key, config.name)
            self._add(name, config.handler_string)
            self.routes[route_key] = name
        for function in app.pure_lambda_functions:
            self._add(function.name, function.handler_string)
        if getattr(app, "routes", None):
            # Chalice serves every route from one function, the app object itself.
            self._add("api_handler", "app.app")
            self.http_routes = {path: sorted(methods) for path, methods in app.routes.items()}
        for source in app.event_sources:
            expression = getattr(source, "schedule_expression", None)
            if expression is None:
                log.warning("event source %s (%s) is not emulated", source.name,
                            type(source).__name__)
                continue
            if not isinstance(expression, str):
                expression = expression.to_string()
            try:
                Schedule.parse(expression)
            except ScheduleError as exc:
                # Still invocable (Lambda Invoke API), just never run by the clock.
                log.warning("%s is not scheduled locally: %s", source.name, exc)
                expression = None
            self._add(source.name, source.handler_string, schedule=expression)

    def deployed_name(self, name: str) -> str:
        return f"{self.app_name}-{self.stage}-{name}"

    def function(self, function_name: str) -> Function:
        """Find a function by Chalice name, deployed name or ARN (qualifier allowed)."""
        name = function_name
        if name.startswith("arn:"):
            # arn:aws:lambda:region:account:function:name[:qualifier]
            parts = name.split(":")
            if len(parts) < 7 or parts[5] != "function":
                raise FunctionNotFound(function_name)
            name = parts[6]
        elif ":" in name:
            name = name.split(":", 1)[0]  # name:qualifier
        if name in self.functions:
            return self.functions[name]
        prefix = f"{self.app_name}-{self.stage}-"
        if name.startswith(prefix) and name[len(prefix):] in self.functions:
            return self.functions[name[len(prefix):]]
        raise FunctionNotFound(function_name)

    def route_function(self, route_key: str) -> Optional[Function]:
        name = self.routes.get(route_key)
        return self.functions[name] if name else None

    def scheduled(self) -> List[Function]:
        return [f for f in self.functions.values() if f.schedule]

    # -- invocation ---------------------------------------------------------

    def invoke_sync(self, function: Function, event: Any) -> Any:
        """Call the handler with a JSON copy of ``event``; JSON-round-trip the result.

        Raises :class:`FunctionError` with Lambda's error payload if the
        handler raises or returns something Lambda could not serialize.
        """
        deployed = self.deployed_name(function.name)
        context = LambdaContext(deployed, region=self.region, account_id=self.account_id)
        payload = json.loads(json.dumps(event))
        started = time.monotonic()
        try:
            result = function.handler(payload, context)
        except Exception as exc:  # the function failed: Lambda reports it
            # The message may quote the event (a query string, a token): clipped.
            log.info("%s %s failed: %s: %s", deployed, context.aws_request_id,
                     type(exc).__name__, client_text(exc))
            raise FunctionError({
                "errorMessage": str(exc),
                "errorType": type(exc).__name__,
                "requestId": context.aws_request_id,
                "stackTrace": traceback.format_tb(exc.__traceback__),
            }) from exc
        finally:
            log.debug("%s %s %.1f ms", deployed, context.aws_request_id,
                      (time.monotonic() - started) * 1000)
        try:
            return json.loads(json.dumps(result))
        except (TypeError, ValueError) as exc:
            raise FunctionError({
                "errorMessage": f"Unable to marshal response: {exc}",
                "errorType": "Runtime.MarshalError",
                "requestId": context.aws_request_id,
            }) from exc

    async def invoke(self, function: Function, event: Any) -> Any:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self.executor, self.invoke_sync, function, event)

    def shutdown(self) -> None:
        if self._owns_executor:
            self.executor.shutdown(wait=True, cancel_futures=True)
