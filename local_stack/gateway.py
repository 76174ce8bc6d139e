"""The local API Gateway: one aiohttp server for everything the app talks to.

- ``GET /`` and ``GET /{stage}`` with ``Upgrade: websocket``: the WebSocket
  API (authorizer, ``$connect``, ``$default``, ``$disconnect``, limits).
- ``/@connections/{id}`` and ``/{stage}/@connections/{id}``: the management
  API (``apigatewaymanagementapi``): POST, GET, DELETE.
- ``POST /2015-03-31/functions/{name}/invocations``: Lambda's Invoke API, so
  the app's own ``lambda.invoke`` reaches its functions here.
- ``GET /.well-known/jwks.json``: the local issuer's keys.
- ``GET /listen``, ``/speak``, ``/config.js``, ``/assets/...`` and ``POST
  /_local/token``: the browser pages (:mod:`local_stack.static`).
- The app's REST routes (``GET /health``), through its ``api_handler`` as the
  health API invokes it (:mod:`local_stack.http_api`).
- ``GET /_local/metrics``: the app's metrics so far (:mod:`local_stack.metrics`).

The rules live in :mod:`local_stack.apigw` (sans-I/O); this module moves
bytes and runs handlers in the thread pool of :class:`LambdaApp`.
"""
from __future__ import annotations

import asyncio
import base64
import functools
import hashlib
import json
import logging
import sys
import time
from typing import Any, Dict, Optional, Set, Tuple

from aiohttp import web
from websockets.frames import CloseCode

from . import apigw, http_api, sigv4
from .issuer import LocalIssuer
from .lambda_runtime import FunctionError, FunctionNotFound, LambdaApp
from .logsafe import LogRefs, client_text, refusal_code
from .metrics import Collector
from .schedule import Schedule, scheduled_event
from .settings import MAX_INVOKE_PAYLOAD_BYTES, MAX_MESSAGE_BYTES, Settings
from .static import StaticSite

log = logging.getLogger("local_stack.gateway")

_WS_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


def _error(status: int, error_type: str, message: str, **extra) -> web.Response:
    """An AWS JSON error: botocore maps ``x-amzn-ErrorType`` to the exception."""
    return web.json_response(
        {"message": message, **extra},
        status=status,
        headers={"x-amzn-ErrorType": error_type, "x-amzn-RequestId": apigw.new_request_id()},
    )


async def _read_body(request: web.Request) -> Optional[bytes]:
    """The request body, or None when it is over the server's 6 MB limit."""
    try:
        return await request.read()
    except web.HTTPRequestEntityTooLarge:
        return None


def _signed(service: str):
    """Serve the handler only to calls AWS would accept for ``service`` (a SigV4
    ``Authorization`` header) and never to a web page (an ``Origin`` header):
    see :mod:`local_stack.sigv4`."""
    def decorate(handler):
        @functools.wraps(handler)
        async def checked(self, request: web.Request) -> web.StreamResponse:
            denial = sigv4.check(request.headers, service)
            if denial is not None:
                return _error(denial.status, denial.error_type, denial.message)
            return await handler(self, request)
        return checked
    return decorate


def _gone(connection_id: str) -> web.Response:
    return _error(410, "GoneException", f"Connection {connection_id} is gone")


class _UpgradeResponse(web.StreamResponse):
    """The 101 answer; afterwards the socket belongs to a :class:`LiveConnection`."""

    def __init__(self, accept: str):
        super().__init__(status=101, headers={
            "Upgrade": "websocket",
            "Connection": "Upgrade",
            "Sec-WebSocket-Accept": accept,
        })
        self.force_close()
        self.done: asyncio.Future = asyncio.get_running_loop().create_future()

    async def write_eof(self, data: bytes = b"") -> None:
        # aiohttp calls this when the handler returns: the WebSocket owns the
        # socket until it closes, so wait for that, then let aiohttp finish.
        await asyncio.shield(self.done)


class LiveConnection:
    """Binds a sans-I/O :class:`apigw.Connection` to an aiohttp transport.

    aiohttp feeds it the upgraded socket's bytes through the parser interface
    (``feed_data``/``feed_eof``) it uses for its own WebSocket reader.
    """

    def __init__(self, gateway: "Gateway", conn: apigw.Connection, api: apigw.ApiContext):
        self.gateway = gateway
        self.conn = conn
        self.api = api
        self.transport: Optional[asyncio.Transport] = None
        self.response: Optional[_UpgradeResponse] = None
        self._timer: Optional[asyncio.TimerHandle] = None
        self._abort_timer: Optional[asyncio.TimerHandle] = None

    @property
    def connection_id(self) -> str:
        return self.conn.connection_id

    @property
    def ref(self) -> str:
        """The connection in log lines (a keyed hash: never the raw id)."""
        return self.gateway.log_refs.connection(self.conn.connection_id)

    # -- aiohttp payload parser interface -----------------------------------

    def feed_data(self, data: bytes) -> Tuple[bool, bytes]:
        try:
            self._after(self.conn.receive_data(data, time.time()))
        except Exception as exc:
            # An exception escaping here makes aiohttp abort the TCP connection
            # (the client sees 1006, no close frame): a fault of ours closes
            # with 1011 instead (RFC 6455 section 7.4.1, "unexpected condition").
            # The exception's text may quote client data: only its type is logged.
            log.error("%s: frame handling failed (%s); closing with 1011",
                      self.ref, type(exc).__name__)
            self.close(CloseCode.INTERNAL_ERROR)
        return False, b""

    def feed_eof(self) -> None:
        self._after(self.conn.receive_eof(time.time()))

    # -- actions ------------------------------------------------------------

    def start(self, transport: asyncio.Transport, response: _UpgradeResponse) -> None:
        self.transport = transport
        self.response = response
        self._arm_timer()

    def send(self, data: "str | bytes") -> None:
        self.conn.send(data)
        self._flush()

    def close(self, code: int, reason: str = "") -> None:
        self.conn.close(code, reason)
        self._after([])
        if self.conn.state is apigw.State.CLOSING and self._abort_timer is None:
            loop = asyncio.get_running_loop()
            self._abort_timer = loop.call_later(self.gateway.settings.close_timeout, self._abort)

    def _abort(self) -> None:
        self.conn.abort()
        if self.transport is not None:
            self.transport.abort()
        self._after([])

    def _after(self, messages) -> None:
        self._flush()
        for message in messages:
            self.gateway.dispatch_message(self, message)
        disconnect = self.conn.take_disconnect()
        if disconnect is not None:
            self._closed(disconnect)

    def _flush(self) -> None:
        transport = self.transport
        for chunk in self.conn.data_to_send():
            if transport is None or transport.is_closing():
                continue
            if chunk:
                transport.write(chunk)
            else:
                transport.close()  # flushes buffered data first

    def _arm_timer(self) -> None:
        if self.conn.state is not apigw.State.OPEN:
            return
        loop = asyncio.get_running_loop()
        delay = max(0.0, self.conn.deadline() - time.time())
        self._timer = loop.call_later(delay, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        limit = self.conn.check_timeouts(time.time())
        if limit is not None:
            log.info("%s closed: %s timeout", self.ref, limit)
            self.close(CloseCode.GOING_AWAY)  # reason already set by check_timeouts
            return
        self._arm_timer()

    def _closed(self, disconnect: apigw.Disconnect) -> None:
        for timer in (self._timer, self._abort_timer):
            if timer is not None:
                timer.cancel()
        if self.transport is not None and not self.transport.is_closing():
            self.transport.close()
        if self.response is not None and not self.response.done.done():
            self.response.done.set_result(None)
        self.gateway.connection_closed(self, disconnect)


class Gateway:
    """The aiohttp application and the registry of live connections."""

    def __init__(self, lambda_app: LambdaApp, settings: Settings,
                 issuer: Optional[LocalIssuer] = None, metrics: Optional[Collector] = None):
        self.lambda_app = lambda_app
        self.settings = settings
        self.issuer = issuer
        self.metrics = metrics
        self._summaries: Optional[asyncio.Task] = None
        self.connections: Dict[str, LiveConnection] = {}
        self.log_refs = LogRefs(settings.privacy_key)
        self._tasks: Set[asyncio.Task] = set()
        self._scheduler: Optional[asyncio.Task] = None
        self._runner: Optional[web.AppRunner] = None
        self.port: Optional[int] = None

    # -- server lifecycle ---------------------------------------------------

    def web_app(self) -> web.Application:
        # Bodies up to Lambda's 6 MB reach the handlers, which answer anything
        # larger than their own API allows with that API's error (@connections:
        # 128 KB, PayloadTooLargeException), never with aiohttp's bare 413.
        app = web.Application(client_max_size=MAX_INVOKE_PAYLOAD_BYTES)
        app.router.add_get("/.well-known/jwks.json", self.handle_jwks)
        app.router.add_get("/_local/metrics", self.handle_metrics)
        for path, methods in getattr(self.lambda_app, "http_routes", {}).items():
            for method in methods:
                app.router.add_route(method, path, functools.partial(self.handle_http, resource=path))
        app.router.add_post("/2015-03-31/functions/{function}/invocations", self.handle_invoke)
        for prefix in ("", "/{stage}"):
            path = prefix + "/@connections/{connection_id}"
            app.router.add_post(path, self.handle_post)
            app.router.add_get(path, self.handle_get)
            app.router.add_delete(path, self.handle_delete)
        # Before /{stage}, which would take /listen and /speak.
        StaticSite(stage=self.settings.stage, bound_host=self.settings.host,
                   issuer=self.issuer).add_routes(app)
        app.router.add_get("/", self.handle_upgrade)
        app.router.add_get("/{stage}", self.handle_upgrade)
        app.router.add_get("/{stage}/", self.handle_upgrade)
        return app

    async def start(self, sock=None) -> None:
        """Serve on ``sock`` (a bound socket) or on the settings' host/port."""
        self._runner = web.AppRunner(self.web_app(), access_log=None, handle_signals=False,
                                     shutdown_timeout=1.0)
        await self._runner.setup()
        if sock is not None:
            site = web.SockSite(self._runner, sock)
        else:
            site = web.TCPSite(self._runner, self.settings.host, self.settings.port)
        await site.start()
        server = site._server  # the asyncio.Server; its port when 0 was asked
        self.port = server.sockets[0].getsockname()[1] if server and server.sockets else None
        self._scheduler = asyncio.create_task(self.run_schedules())
        if self.metrics is not None and self.settings.summary_period:
            self._summaries = asyncio.create_task(self.run_summaries())

    async def stop(self) -> None:
        """Close every connection (1001, firing ``$disconnect``), then the server."""
        for task in (self._scheduler, self._summaries):
            if task is not None:
                task.cancel()
        for live in list(self.connections.values()):
            if live.conn.state is apigw.State.OPEN:
                live.close(CloseCode.GOING_AWAY, "Going away")
        deadline = time.monotonic() + self.settings.close_timeout + 1
        while self.connections and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        for live in list(self.connections.values()):
            live._abort()
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=10)
        if self._runner is not None:
            await self._runner.cleanup()

    def _spawn(self, coro) -> asyncio.Task:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def _api(self, request: web.Request, stage: str) -> apigw.ApiContext:
        return apigw.ApiContext(
            api_id=self.settings.api_id,
            stage=stage,
            # What the client connected to, as for a custom domain name.
            domain_name=request.host,
            region=self.settings.region,
            account_id=self.settings.account_id,
        )

    # -- the WebSocket API ---------------------------------------------------

    async def handle_upgrade(self, request: web.Request) -> web.StreamResponse:
        stage = request.match_info.get("stage", self.settings.stage)
        if stage != self.settings.stage:
            # API Gateway answers an unknown stage with 403 Forbidden.
            return web.json_response({"message": "Forbidden"}, status=403)
        if request.headers.get("Upgrade", "").lower() != "websocket":
            return web.json_response({"message": "Upgrade Required"}, status=426)
        key = request.headers.get("Sec-WebSocket-Key", "")
        try:
            valid_key = len(base64.b64decode(key, validate=True)) == 16
        except ValueError:
            valid_key = False
        if request.headers.get("Sec-WebSocket-Version") != "13" or not valid_key:
            return web.json_response({"message": "Bad Request"}, status=400)

        api = self._api(request, stage)
        peer = request.transport.get_extra_info("peername") if request.transport else None
        handshake = apigw.HandshakeRequest(
            headers=tuple((k.decode("latin-1"), v.decode("latin-1")) for k, v in request.raw_headers),
            query=tuple(request.rel_url.query.items()),
            source_ip=peer[0] if peer else "127.0.0.1",
            host=request.host,
            port=self.port or 0,
            scheme=request.scheme,
        )
        now = time.time()
        conn = apigw.Connection(
            connection_id=apigw.new_connection_id(),
            request=handshake,
            connected_at=now,
            idle_timeout=self.settings.idle_timeout,
            max_duration=self.settings.max_connection_duration,
        )
        live = LiveConnection(self, conn, api)
        # Registered while CONNECTING so @connections answers 410, not 404-ish.
        self.connections[conn.connection_id] = live
        try:
            decision = await self._authorize_and_connect(live)
        except Exception as exc:
            log.error("$connect of %s failed: %s: %s", live.ref, type(exc).__name__,
                      client_text(exc))
            decision = apigw.INTERNAL_ERROR
        if not isinstance(decision, apigw.Refusal) and conn.state is apigw.State.CLOSED:
            # Aborted while $connect ran (the gateway is stopping): never
            # accepted, so no $disconnect; the client sees a failed handshake.
            decision = apigw.Refusal.message(503, "Service Unavailable")
        if isinstance(decision, apigw.Refusal):
            conn.refuse()
            self.connections.pop(conn.connection_id, None)
            # The body may quote what the client sent (a token among it): only its code.
            log.info("%s refused: %s %s", live.ref, decision.status, refusal_code(decision.body))
            return web.Response(status=decision.status, text=decision.body,
                                content_type="application/json")

        accept = base64.b64encode(hashlib.sha1(key.encode() + _WS_GUID).digest()).decode()
        response = _UpgradeResponse(accept)
        try:
            await response.prepare(request)
        except (ConnectionError, RuntimeError):
            conn.accept(decision)
            conn.receive_eof(time.time())
            live._after([])
            return response
        transport = request.transport
        conn.accept(decision)
        live.start(transport, response)
        request.protocol.set_parser(live)
        request.protocol.keep_alive(False)
        if transport is None or transport.is_closing():
            live.feed_eof()
        log.info("%s connected", live.ref)
        return response

    async def _authorize_and_connect(self, live: LiveConnection) -> "Dict[str, Any] | apigw.Refusal | None":
        conn, api = live.conn, live.api
        now_ms = int(time.time() * 1000)
        authorizer_context: Optional[Dict[str, Any]] = None
        authorizer = self._authorizer()
        if authorizer is not None:
            event = apigw.authorizer_event(api, conn.request, connection_id=conn.connection_id,
                                           now_ms=now_ms)
            try:
                result = await self.lambda_app.invoke(authorizer, event)
            except FunctionError as exc:
                if exc.payload.get("errorMessage") == "Unauthorized":
                    return apigw.UNAUTHORIZED
                return apigw.INTERNAL_ERROR
            decision = apigw.evaluate_authorizer(result, api.connect_method_arn)
            if isinstance(decision, apigw.Refusal):
                return decision
            authorizer_context = decision.authorizer
        function = self.lambda_app.route_function(apigw.ROUTE_CONNECT)
        if function is not None:
            event = apigw.connect_event(
                api, conn.request, connection_id=conn.connection_id,
                connected_at=conn.connected_at_ms, now_ms=int(time.time() * 1000),
                authorizer=authorizer_context,
            )
            try:
                result = await self.lambda_app.invoke(function, event)
            except FunctionError:
                return apigw.INTERNAL_ERROR
            refusal = apigw.evaluate_connect_response(result)
            if refusal is not None:
                return refusal
        return authorizer_context

    def _authorizer(self):
        # An app that knows its API's configuration (run-deployed) names the
        # function attached to $connect; a Chalice app calls it "authorizer".
        if hasattr(self.lambda_app, "connect_authorizer"):
            return self.lambda_app.connect_authorizer()
        try:
            return self.lambda_app.function("authorizer")
        except FunctionNotFound:
            return None

    def dispatch_message(self, live: LiveConnection, message: apigw.Message) -> None:
        route = apigw.select_route(message.data, list(self.lambda_app.routes))
        self._spawn(self._run_message(live, route, message))

    async def _run_message(self, live: LiveConnection, route: Optional[str],
                           message: apigw.Message) -> None:
        conn = live.conn
        if route is None:
            self._error_to_client(live, "Forbidden")
            return
        event = apigw.message_event(
            live.api, connection_id=conn.connection_id, connected_at=conn.connected_at_ms,
            now_ms=int(time.time() * 1000), source_ip=conn.request.source_ip,
            route_key=route, body=message.data, authorizer=conn.authorizer,
        )
        function = self.lambda_app.route_function(route)
        try:
            await self.lambda_app.invoke(function, event)
        except FunctionError:
            # API Gateway tells the client when the integration fails.
            self._error_to_client(live, "Internal server error",
                                  requestId=event["requestContext"]["requestId"])

    def _error_to_client(self, live: LiveConnection, text: str, **extra) -> None:
        try:
            live.send(json.dumps({"message": text, "connectionId": live.connection_id, **extra}))
        except apigw.ConnectionGone:
            pass

    def connection_closed(self, live: LiveConnection, disconnect: apigw.Disconnect) -> None:
        self.connections.pop(live.connection_id, None)
        # The reason is the client's own text when it closed: clipped.
        log.info("%s disconnected: %s %s", live.ref, disconnect.status_code,
                 client_text(disconnect.reason))
        function = self.lambda_app.route_function(apigw.ROUTE_DISCONNECT)
        if function is None:
            return
        conn = live.conn
        event = apigw.disconnect_event(
            live.api, conn.request, connection_id=conn.connection_id,
            connected_at=conn.connected_at_ms, now_ms=int(time.time() * 1000),
            status_code=disconnect.status_code, reason=disconnect.reason,
            authorizer=conn.authorizer,
        )
        self._spawn(self._run_disconnect(function, event))

    async def _run_disconnect(self, function, event) -> None:
        try:
            await self.lambda_app.invoke(function, event)
        except FunctionError:
            pass  # logged by the runtime; API Gateway ignores $disconnect errors

    # -- the management API --------------------------------------------------

    def _live(self, request: web.Request) -> Optional[LiveConnection]:
        stage = request.match_info.get("stage")
        if stage is not None and stage != self.settings.stage:
            return None
        live = self.connections.get(request.match_info["connection_id"])
        if live is None or live.conn.state is not apigw.State.OPEN:
            return None
        return live

    @_signed(sigv4.MANAGEMENT_API)
    async def handle_post(self, request: web.Request) -> web.Response:
        connection_id = request.match_info["connection_id"]
        data = await _read_body(request)
        if data is None or len(data) > MAX_MESSAGE_BYTES:
            # botocore maps x-amzn-ErrorType to PayloadTooLargeException.
            return _error(413, "PayloadTooLargeException", "Message too long")
        live = self._live(request)
        if live is None:
            return _gone(connection_id)
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            text = None
        try:
            live.send(text if text is not None else data)
        except apigw.ConnectionGone:
            return _gone(connection_id)
        return web.Response(status=200)

    @_signed(sigv4.MANAGEMENT_API)
    async def handle_get(self, request: web.Request) -> web.Response:
        live = self._live(request)
        if live is None:
            return _gone(request.match_info["connection_id"])
        conn = live.conn
        return web.json_response({
            "connectedAt": apigw.iso8601(conn.connected_at),
            "identity": {"sourceIp": conn.request.source_ip, "userAgent": conn.request.user_agent},
            "lastActiveAt": apigw.iso8601(conn.last_active_at),
        })

    @_signed(sigv4.MANAGEMENT_API)
    async def handle_delete(self, request: web.Request) -> web.Response:
        live = self._live(request)
        if live is None:
            return _gone(request.match_info["connection_id"])
        live.close(CloseCode.NORMAL_CLOSURE)
        return web.Response(status=204)

    # -- Lambda's Invoke API -------------------------------------------------

    @_signed(sigv4.LAMBDA_API)
    async def handle_invoke(self, request: web.Request) -> web.Response:
        name = request.match_info["function"]
        qualifier = request.query.get("Qualifier")
        try:
            function = self.lambda_app.function(name)
        except FunctionNotFound:
            arn = f"arn:aws:lambda:{self.settings.region}:{self.settings.account_id}:function:{name}"
            return _error(404, "ResourceNotFoundException", f"Function not found: {arn}",
                          Type="User")
        if qualifier not in (None, "$LATEST"):
            return _error(404, "ResourceNotFoundException",
                          f"Function not found: {name}:{qualifier}", Type="User")
        body = await _read_body(request)
        if body is None:
            return _error(413, "RequestTooLargeException",
                          f"Request must be smaller than {MAX_INVOKE_PAYLOAD_BYTES} bytes for "
                          "the InvokeFunction operation", Type="User")
        try:
            event = json.loads(body) if body else {}
        except ValueError:
            return _error(400, "InvalidRequestContentException",
                          "Could not parse request body into json", Type="User")
        invocation_type = request.headers.get("X-Amz-Invocation-Type", "RequestResponse")
        version = {"X-Amz-Executed-Version": "$LATEST"}
        if invocation_type == "DryRun":
            return web.Response(status=204)
        if invocation_type == "Event":
            self._spawn(self._invoke_async(function, event))
            return web.Response(status=202)
        if invocation_type != "RequestResponse":
            return _error(400, "InvalidParameterValueException",
                          f"Unsupported InvocationType {invocation_type}", Type="User")
        try:
            result = await self.lambda_app.invoke(function, event)
        except FunctionError as exc:
            return web.json_response(exc.payload, status=200, headers={
                **version, "X-Amz-Function-Error": "Unhandled"})
        return web.Response(status=200, body=json.dumps(result).encode(),
                            content_type="application/json", headers=version)

    async def _invoke_async(self, function, event) -> None:
        # Lambda would retry a failed asynchronous invocation twice, minutes
        # later; locally a failure is only logged.
        try:
            await self.lambda_app.invoke(function, event)
        except FunctionError:
            pass

    # -- the app's REST routes and metrics ---------------------------------------

    async def handle_http(self, request: web.Request, resource: str) -> web.Response:
        peer = request.transport.get_extra_info("peername") if request.transport else None
        event = http_api.proxy_event(
            method=request.method, path=request.path, resource=resource,
            query=request.rel_url.query.items(),
            headers=((k.decode("latin-1"), v.decode("latin-1")) for k, v in request.raw_headers),
            body=await request.read(), source_ip=peer[0] if peer else "127.0.0.1",
            api_id=self.settings.api_id, account_id=self.settings.account_id,
        )
        try:
            result = await self.lambda_app.invoke(self.lambda_app.function(http_api.API_HANDLER), event)
        except FunctionError:
            # What an HTTP API answers when its integration fails.
            return web.json_response({"message": "Internal Server Error"}, status=500)
        status, headers, body = http_api.response_parts(result or {})
        return web.Response(status=status, body=body, headers=headers)

    async def handle_metrics(self, request: web.Request) -> web.Response:
        """The app's metrics so far (a development aid). Never to a web page: a
        page the developer visits must not read what the stack is doing."""
        if "origin" in {name.lower() for name in request.headers}:
            denial = sigv4.CROSS_ORIGIN
            return _error(denial.status, denial.error_type, denial.message)
        if self.metrics is None:
            return web.json_response({"message": "Not Found"}, status=404)
        return web.json_response(self.metrics.snapshot(), headers={"Cache-Control": "no-store"})

    async def run_summaries(self) -> None:
        """One line on stdout per period in which anything was connected or happened."""
        while True:
            await asyncio.sleep(self.settings.summary_period)
            line = self.metrics.summary(len(self.connections), self.settings.summary_period)
            if line is not None:
                print(line, file=self.summary_stream or sys.__stdout__, flush=True)

    #: Where summaries go: the stack's own stdout (the functions' is tapped).
    summary_stream = None

    # -- JWKS ------------------------------------------------------------------

    async def handle_jwks(self, request: web.Request) -> web.Response:
        if self.issuer is None:
            return web.json_response({"message": "Not Found"}, status=404)
        loop = asyncio.get_running_loop()
        jwks = await loop.run_in_executor(None, self.issuer.jwks)
        return web.json_response(jwks)

    # -- schedules -------------------------------------------------------------

    async def run_schedules(self) -> None:
        """Run ``@app.schedule`` functions on their expression (or the override)."""
        functions = self.lambda_app.scheduled()
        if not functions:
            return
        override = self.settings.schedule_period
        plans = []
        now = time.time()
        for function in functions:
            schedule = Schedule.parse(function.schedule)
            plans.append([now + override if override else schedule.next_after(now),
                          function, schedule])
        log.info("schedules: %s", ", ".join(
            f"{f.name} {'every %gs' % override if override else s.expression}"
            for _, f, s in plans))
        while True:
            plans.sort(key=lambda plan: plan[0])
            due, function, schedule = plans[0]
            await asyncio.sleep(max(0.0, due - time.time()))
            now = time.time()
            rule = getattr(function, "schedule_rule_arn", None) or (
                f"arn:aws:events:{self.settings.region}:{self.settings.account_id}:rule/"
                f"{self.lambda_app.deployed_name(function.name)}-event")
            event = scheduled_event(rule_arn=rule, region=self.settings.region,
                                    account_id=self.settings.account_id, now=now)
            self._spawn(self._invoke_async(function, event))
            plans[0][0] = now + override if override else schedule.next_after(now)
