"""What the sans-I/O client asks its I/O layer to do.

:class:`broadcast_client.protocol.ClientProtocol` returns lists of these; the I/O
layer (:class:`broadcast_client.cli.Runner`, or a test) performs them in order and
reports back what happened. Sockets are named by keys the protocol hands out
(``c1``, ``c2``...).
"""
from __future__ import annotations

from typing import Optional

import attrs


@attrs.frozen
class Open:
    """Open a WebSocket to ``url`` (after ``delay`` seconds) under ``key``."""

    key: str
    url: str
    delay: float = 0.0


@attrs.frozen
class FetchToken:
    """Get a fresh speaker token (``speak --token-command``) after ``delay`` seconds,
    then hand it to :meth:`ClientProtocol.token_ready` for the socket ``key`` (or
    report :meth:`ClientProtocol.token_failed`)."""

    key: str
    delay: float = 0.0


@attrs.frozen
class Send:
    key: str
    text: str


@attrs.frozen
class Close:
    key: str
    code: int = 1000


@attrs.frozen
class Print:
    text: str


@attrs.frozen
class Exit:
    code: int
    reason: str


@attrs.frozen
class ReadAudio:
    """Read the file at ``path`` and hand its bytes to :meth:`ClientProtocol.audio`
    with ``format`` (or report :meth:`ClientProtocol.audio_unreadable`)."""

    path: str
    format: Optional[str] = None


@attrs.frozen
class WriteAudio:
    """Append ``data`` to the received-audio output (``listen --audio-out``)."""

    data: bytes


Action = "Open | FetchToken | Send | Close | Print | Exit | ReadAudio | WriteAudio"
