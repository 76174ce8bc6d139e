"""Commands a person types while the client runs: their help text and their meaning.

:func:`parse_command` turns one typed line into what it asks for (a message to
send, a file to read, a tone, leaving, help) or a :class:`Problem` explaining what
is wrong with it. Pure: the protocol core decides when and on which socket.
"""
from __future__ import annotations

import math
import shlex
from typing import Any, Dict, List, Optional

import attrs

from .actions import ReadAudio
from .audio import MAX_TONE_SECONDS, guess_audio_format

SPEAKER_HELP = """\
commands (type while speaking):
  pause | resume       pause or resume the broadcast; listeners are told
  mute | unmute        mute or unmute it; the server drops audio while paused or muted
  volume LEVEL         set the volume, a number from 0.0 to 1.0
  status               session status: listeners per language, broadcast state
  audio FILE [FORMAT]  send a file's bytes as sendAudio chunks of 16 KB
  tone [SECONDS]       send a 440 Hz test tone, pcm16/16000 (default 1 s, at most 60)
  end                  end the session for everyone and exit
  help                 this list"""

LISTENER_HELP = """\
commands (type while listening):
  status               session status: listener count, broadcast state
  language CODE        listen in another language from now on (e.g. language de)
  leave | quit         leave the session and exit
  help                 this list"""

_CONTROL_COMMANDS = {"pause": "pauseBroadcast", "resume": "resumeBroadcast",
                     "mute": "muteBroadcast", "unmute": "unmuteBroadcast"}


@attrs.frozen
class Request:
    """Send ``body`` to the server; it answers (docs/protocol.md, Messages)."""

    body: Dict[str, Any]


@attrs.frozen
class Tone:
    """Send a test tone of ``seconds``."""

    seconds: float


@attrs.frozen
class Leave:
    """Stop the client (a listener leaves)."""


@attrs.frozen
class Help:
    """Show the command list."""


@attrs.frozen
class Problem:
    """The line asks for nothing that can be done; ``text`` says why."""

    text: str


Command = "Request | ReadAudio | Tone | Leave | Help | Problem"


def parse_command(line: str, *, speaker: bool) -> Optional[Any]:
    """What ``line`` asks for, or None for an empty line."""
    try:
        words = shlex.split(line)
    except ValueError as exc:
        return Problem(str(exc))
    if not words:
        return None
    name, args = words[0].lower(), words[1:]
    if name in ("help", "?"):
        return Help()
    command = _speaker_command(name, args) if speaker else _listener_command(name, args)
    return command or Problem(f"unknown command {' '.join([name] + args)!r}; type help")


def _speaker_command(name: str, args: List[str]) -> Optional[Any]:
    if name in _CONTROL_COMMANDS and not args:
        return Request({"action": _CONTROL_COMMANDS[name]})
    if name == "volume" and len(args) == 1:
        try:
            level = float(args[0])
        except ValueError:
            level = math.nan
        if not math.isfinite(level):
            return Problem(f"volume takes a number from 0.0 to 1.0, not {args[0]!r}")
        # Out-of-range numbers go to the server, which refuses them (INVALID_PARAMETER).
        return Request({"action": "setVolume", "volumeLevel": level})
    if name == "status" and not args:
        return Request({"action": "getSessionStatus"})
    if name == "audio" and len(args) in (1, 2):
        return ReadAudio(args[0], args[1] if len(args) == 2 else guess_audio_format(args[0]))
    if name == "tone" and len(args) <= 1:
        try:
            seconds = float(args[0]) if args else 1.0
        except ValueError:
            seconds = -1.0
        if not 0 < seconds <= MAX_TONE_SECONDS:
            return Problem(f"tone takes a duration in seconds, more than 0 and at most {MAX_TONE_SECONDS:g}")
        return Tone(seconds)
    if name == "end" and not args:
        return Request({"action": "endSession"})
    return None


def _listener_command(name: str, args: List[str]) -> Optional[Any]:
    if name == "status" and not args:
        return Request({"action": "getSessionStatus"})
    if name == "language" and len(args) == 1:
        return Request({"action": "changeLanguage", "targetLanguage": args[0]})
    if name in ("leave", "quit") and not args:
        return Leave()
    return None
