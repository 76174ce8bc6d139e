"""One invocation's telemetry: who is running (function, request id, cold start,
route), what it is about (session, connection), and the metrics it records.

A Chalice middleware (:meth:`Telemetry.middleware`, registered for every event
type in app.py) opens an :class:`Invocation` around each handler call and, when
the handler returns or raises, hands its metrics to the emitter as EMF objects:
once per invocation, as Powertools' ``log_metrics`` does. The invocation is held
in a context variable, so concurrent invocations (the local stack runs handlers
in threads) never mix; work handed to a thread pool keeps it with
:func:`carry_context`. Services record through :class:`Metrics`, injected by
chalicelib/runtime.py; outside an invocation a recorded metric is dropped.

No I/O here: the emitter is given (app.py's default prints one line to stdout,
which Lambda sends to CloudWatch Logs; tests keep the objects).
"""

from __future__ import annotations

import contextvars
import logging
import time
from typing import Callable, Optional

import attrs

from chalicelib.observability.metrics import MetricSet

logger = logging.getLogger("chalicelib.invocation")

_current: "contextvars.ContextVar[Optional[Invocation]]" = contextvars.ContextVar(
    "broadcast_invocation", default=None)


@attrs.define
class Invocation:
    function: str
    request_id: Optional[str] = None
    cold_start: bool = False
    route: Optional[str] = None
    session_id: Optional[str] = None
    connection_id: Optional[str] = None  # raw: logged only as its keyed hash
    metrics: MetricSet = attrs.field(factory=MetricSet)


def current() -> Optional[Invocation]:
    return _current.get()


def annotate(*, session_id: Optional[str] = None, connection_id: Optional[str] = None) -> None:
    """Name the session (or connection) the rest of this invocation is about: its
    log lines carry them (the connection as its keyed hash)."""
    invocation = _current.get()
    if invocation is None:
        return
    if session_id:
        invocation.session_id = session_id
    if connection_id:
        invocation.connection_id = connection_id


def carry_context(fn: Callable) -> Callable:
    """``fn`` run, in whatever thread, in a copy of the caller's context: its log
    lines and metrics stay the caller's invocation's."""
    context = contextvars.copy_context()
    return lambda *args, **kwargs: context.copy().run(fn, *args, **kwargs)


class Metrics:
    """What services record through (``metrics.add("ListenersJoined")``)."""

    def add(self, name: str, value: float = 1, dimension: Optional[str] = None) -> None:
        invocation = _current.get()
        if invocation is not None:
            invocation.metrics.add(name, value, dimension)

    def timing(self, name: str, started: float, now: Optional[float] = None) -> None:
        """Milliseconds from ``started`` (``time.monotonic()``) until now."""
        self.add(name, ((now if now is not None else time.monotonic()) - started) * 1000)

    def set_property(self, name: str, value) -> None:
        invocation = _current.get()
        if invocation is not None:
            invocation.metrics.set_property(name, value)

    def fault(self) -> None:
        """An error of ours that a handler caught and answered: Faults, by function."""
        invocation = _current.get()
        if invocation is not None:
            invocation.metrics.add("Faults", 1, invocation.function)


def chalice_name(function_name: str) -> str:
    """The Chalice name of a deployed function (``broadcast-dev-deliver_welcome`` is
    ``deliver_welcome``): Terraform names each ``<app>-<stage>-<name>``, and
    Chalice names hold no '-'."""
    return function_name.rsplit("-", 1)[-1] if function_name else "unknown"


class InvocationFailed(Exception):
    """What an invocation that failed on an uncaught error raises to Lambda: the
    original's type name only (the original is in the app's own log line)."""


class Telemetry:
    def __init__(self, *, stage: str, emit: Callable[[dict], None],
                 clock: Callable[[], float] = time.time) -> None:
        self.stage = stage
        self.emit = emit
        self.metrics = Metrics()
        self._clock = clock
        self._warm: set = set()

    def middleware(self, event, get_response):
        """Chalice middleware for every event type: one Invocation per call."""
        context = getattr(event, "context", None)
        if context is None or isinstance(context, dict):  # a REST Request: context is the requestContext
            context = getattr(event, "lambda_context", None)
        function = chalice_name(getattr(context, "function_name", "") or "")
        raw = _raw_event(event)
        request_context = raw.get("requestContext") if isinstance(raw.get("requestContext"), dict) else {}
        invocation = Invocation(
            function=function,
            request_id=getattr(context, "aws_request_id", None),
            cold_start=function not in self._warm,
            route=request_context.get("routeKey") or _http_route(event),
            connection_id=request_context.get("connectionId") if request_context.get("eventType") else None,
        )
        self._warm.add(function)
        token = _current.set(invocation)
        try:
            try:
                response = get_response(event)
            except Exception as exc:
                # Uncaught: Lambda counts it in Errors too; Faults has every error our
                # code saw (the alarm takes the larger of the two, see modules/alarms).
                invocation.metrics.add("Faults", 1, function)
                logger.exception("invocation failed")
                # What Lambda's runtime logs of it (message, stack) bypasses our log's
                # clipping and connection-id hashing: it gets the type's name alone.
                raise InvocationFailed(type(exc).__name__) from None
            if getattr(response, "status_code", None) == 500 and _http_route(event):
                # A REST route's uncaught error: Chalice answers 500 itself, so neither
                # the except above nor Lambda's Errors sees it.
                invocation.metrics.add("Faults", 1, function)
            return response
        finally:
            try:
                self.flush(invocation)
            finally:
                _current.reset(token)

    def flush(self, invocation: Invocation) -> None:
        if invocation.metrics:
            for document in invocation.metrics.to_emf(self.stage, int(self._clock() * 1000)):
                self.emit(document)


def _raw_event(event) -> dict:
    to_dict = getattr(event, "to_dict", None)
    try:
        raw = to_dict() if callable(to_dict) else {}
    except Exception:  # a Request without its original event
        raw = {}
    return raw if isinstance(raw, dict) else {}


def _http_route(event) -> Optional[str]:
    method = getattr(event, "method", None)
    path = getattr(event, "path", None)
    return f"{method} {path}" if method and path else None
