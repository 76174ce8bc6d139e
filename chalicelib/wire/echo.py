"""What of a client's value may be repeated back to it (in an ``error``) or logged.

Refusals help most when they say what was wrong, but a value a client sent can be
huge (a reply over 128 KB is never delivered), nested (``repr`` recurses), or carry
a token (a query string ``...;token=<JWT>`` parsed as one value): logs and replies
must never hold it. So a value is shown only as a short, sanitised prefix, cut
before anything that says ``token``, and a value that looks like a JWT is not
shown at all. Pure.
"""

from __future__ import annotations

import re

MAX_SHOWN = 24
# Header.payload(.signature), base64url: what a JWT looks like, even cut short.
_JWT = re.compile(r"eyJ[A-Za-z0-9_-]*\.[A-Za-z0-9_-]*")
_SAFE = re.compile(r"[^A-Za-z0-9 ._:/@+,=-]")
_TOKEN = re.compile(r"token", re.IGNORECASE)


def shown(value: object) -> str:
    """A short, safe rendering of a client value for messages and logs."""
    if value is None or isinstance(value, bool):
        return repr(value)
    if isinstance(value, int):
        return str(value) if -(10**MAX_SHOWN) < value < 10**MAX_SHOWN else "a very large integer"
    if isinstance(value, float):
        return repr(value)[:MAX_SHOWN]
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, (list, tuple)):
        return "a list"
    if not isinstance(value, str):
        return f"a {type(value).__name__}"
    return "'" + clip(value) + "'"


def clip(text: str, limit: int = MAX_SHOWN) -> str:
    """A string cut to a safe prefix: nothing from ``token`` on, nothing that looks
    like a JWT, only plain characters, at most ``limit`` of them."""
    cut = _TOKEN.search(text)
    truncated = cut is not None
    if cut:
        text = text[: cut.start()]
    if _JWT.search(text):
        return "<redacted>"
    if len(text) > limit:
        text, truncated = text[:limit], True
    text = _SAFE.sub("?", text)
    return text + "..." if truncated else text


def looks_like_jwt(text: str) -> bool:
    return bool(_JWT.search(text))
