"""What the local stack may write to its log about a client: nothing that identifies
it, and nothing it could smuggle a token through.

- A connection id is logged as a keyed hash (``conn:3q2+7w...``), never raw: the
  raw id is what ``@connections`` accepts, so a log reader could post to, read or
  close the connection with it. The key is ``PRIVACY_KEY`` (the variable the app's
  own keyed hashes use, so the same id hashes alike in both once the app logs
  hashes too), or a random key for the run.
- Client-chosen text (a close reason, the ``code`` of a refusal, an exception's
  message) only through :func:`chalicelib.wire.echo.clip`: a short prefix cut
  before ``token``, with anything that looks like a JWT redacted. Refusal bodies,
  query strings and events are never logged.
"""
from __future__ import annotations

import json
import secrets
from typing import Optional

from chalicelib.privacy import Hasher
from chalicelib.wire.echo import clip

#: Long enough for an exception message or a close reason to say what happened.
TEXT_LIMIT = 80


class LogRefs:
    """Stand-ins for connection ids in log lines."""

    def __init__(self, key: Optional[str] = None):
        self._hash = Hasher(key or secrets.token_urlsafe(32))

    def connection(self, connection_id: str) -> str:
        return "conn:" + self._hash("connectionId", connection_id)


def client_text(text: object, limit: int = TEXT_LIMIT) -> str:
    """``text`` as it may appear in a log line."""
    return clip(str(text), limit)


def refusal_code(body: str) -> str:
    """What a ``$connect`` refusal's body says, as a log line may repeat it: its
    ``code`` (the app's, e.g. ``INVALID_LANGUAGE``) or ``message``, clipped; never
    the body, whose message may quote the client's values."""
    try:
        parsed = json.loads(body) if body else None
    except (ValueError, RecursionError):
        parsed = None
    if isinstance(parsed, dict):
        for key in ("code", "message"):
            if isinstance(parsed.get(key), str):
                return client_text(parsed[key], 40)
    return "-"
