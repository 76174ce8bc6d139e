"""Structured logs: one JSON object per line, for CloudWatch Logs Insights.

Every line of the app's loggers (``chalicelib.*``) carries ``timestamp``,
``level``, ``logger``, ``message``, the invocation's ``function``,
``requestId``, ``coldStart``, ``route``, ``sessionId`` and ``connection`` (the
keyed hash of its connection id, :mod:`chalicelib.privacy`), and the fields the
call passed (``logger.warning("send failed", extra={"target": ref(cid)})``).

What never appears: a token, a client address, a raw connection id (it is what
``@connections`` accepts: a log reader could post to or close the connection),
or a client's text except as :func:`chalicelib.wire.echo.clip` leaves it.
Callers pass ids through :func:`ref`; as a safety net, the invocation's own raw
connection id is replaced by its hash wherever a message or field holds it.
An exception is logged by type, clipped message and frames (file, line,
function), never its locals.

The handler writes to stdout: in Lambda each line is one CloudWatch Logs event
(the function's ``logging_config`` sets Lambda's own lines to JSON as well);
the local stack reads the same stdout.
"""

from __future__ import annotations

import json
import logging
import sys
import traceback
from datetime import datetime, timezone
from typing import Optional

from chalicelib.observability.telemetry import current
from chalicelib.privacy import Hasher
from chalicelib.wire.echo import clip

APP_LOGGER = "chalicelib"
# LogRecord's own attributes: anything else on a record came through ``extra``.
_RECORD_ATTRIBUTES = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message", "asctime", "taskName"}
_ERROR_TEXT_LIMIT = 200

_hasher: Optional[Hasher] = None


def ref(connection_id: Optional[str]) -> Optional[str]:
    """How a connection id appears in a log line: ``c:<keyed hash>``."""
    if not connection_id:
        return None
    hasher = _hasher or Hasher("unset")
    return "c:" + hasher("connectionId", connection_id)


#: Lambda's names for the levels (its JSON log format filters the function's lines
#: by ``level`` at ``application_log_level``; "WARNING" is not one of its names).
_LAMBDA_LEVELS = {"WARNING": "WARN", "CRITICAL": "FATAL"}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        invocation = current()
        line = {
            "timestamp": datetime.fromtimestamp(record.created, timezone.utc)
                                 .strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z",
            "level": _LAMBDA_LEVELS.get(record.levelname, record.levelname),
            "logger": record.name,
            "message": record.getMessage(),
        }
        raw_connection = None
        if invocation is not None:
            raw_connection = invocation.connection_id
            line.update(
                function=invocation.function,
                requestId=invocation.request_id,
                coldStart=invocation.cold_start,
                route=invocation.route,
                sessionId=invocation.session_id,
                connection=ref(invocation.connection_id),
            )
        for key, value in vars(record).items():
            if key not in _RECORD_ATTRIBUTES and key not in line:
                line[key] = value
        if record.exc_info and record.exc_info[0] is not None:
            kind, exc, tb = record.exc_info
            line["errorType"] = kind.__name__
            line["errorMessage"] = clip(str(exc), _ERROR_TEXT_LIMIT)
            line["stackTrace"] = [f"{frame.filename}:{frame.lineno} {frame.name}"
                                  for frame in traceback.extract_tb(tb)]
        text = json.dumps({k: v for k, v in line.items() if v is not None},
                          default=str, separators=(",", ":"))
        if raw_connection and raw_connection in text:
            text = text.replace(raw_connection, ref(raw_connection))
        return text


class _Handler(logging.StreamHandler):
    """Marks the handler this module installed, so installing again replaces it."""

    def emit(self, record: logging.LogRecord) -> None:
        # One write per line: threads of one process never interleave halves.
        try:
            self.stream.write(self.format(record) + "\n")
            self.flush()
        except Exception:
            self.handleError(record)


def install(*, level: str, privacy_key: str, stream=None) -> None:
    """JSON lines for the app's loggers at ``level``, on ``stream`` (stdout as it is
    when the first line is written, by default)."""
    global _hasher
    _hasher = Hasher(privacy_key)
    logger = logging.getLogger(APP_LOGGER)
    for handler in [h for h in logger.handlers if isinstance(h, _Handler)]:
        logger.removeHandler(handler)
    handler = _Handler(stream or _Stdout())
    handler.setFormatter(JsonFormatter())
    logger.addHandler(handler)
    logger.setLevel(level)
    logger.propagate = False


class _Stdout:
    """``sys.stdout`` looked up at each write: Lambda and the local stack replace it."""

    def write(self, text: str) -> int:
        return sys.stdout.write(text)

    def flush(self) -> None:
        sys.stdout.flush()


def write_emf(document: dict) -> None:
    """The default metrics emitter: the EMF object as one stdout line, which
    CloudWatch Logs turns into metrics (no API call, nothing on the hot path)."""
    sys.stdout.write(json.dumps(document, separators=(",", ":")) + "\n")
    sys.stdout.flush()
