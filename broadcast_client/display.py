"""What the reference client shows a person: readable lines, never a token.

:func:`describe` renders a server message as one line (``--output text``),
:func:`describe_gap` broadcast messages given up on, :func:`describe_refusal` a
refused handshake, :func:`describe_nothing_listening` a server that is not there; :func:`redact` hides ``token=`` values in anything
printed.
"""
from __future__ import annotations

import ipaddress
import json
import re
import time as _time
from typing import Any
from urllib.parse import urlsplit

from .audio import decode_audio_data

_TOKEN_VALUE = re.compile(r"(?i)(token(?:=|%3D))[^&\s'\"]+")


def redact(text: str) -> str:
    """``text`` with every ``token=`` value (a speaker's JWT in a URL) hidden."""
    return _TOKEN_VALUE.sub(r"\1***", text)


def _state(state: Any) -> str:
    if not isinstance(state, dict):
        return "state unknown"
    words = ["paused" if state.get("isPaused") else "playing"]
    if state.get("isMuted"):
        words.append("muted")
    words.append(f"volume {state.get('volume')}")
    return ", ".join(words)


def _clock(epoch_seconds: Any) -> str:
    if not isinstance(epoch_seconds, (int, float)):
        return "?"
    return _time.strftime("%H:%M:%S", _time.localtime(epoch_seconds))


def _duration(seconds: Any) -> str:
    if not isinstance(seconds, (int, float)):
        return "?"
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m{secs:02d}s" if hours else f"{minutes}m{secs:02d}s"


def describe(message: dict) -> str:
    """One readable line for a server message (the ``< `` prefix is the caller's)."""
    kind = message.get("type")
    seq = message.get("sequenceNumber")
    numbered = f" #{seq}" if isinstance(seq, int) else ""
    if kind == "sessionCreated":
        return (f"sessionCreated: session {message.get('sessionId')} in {message.get('sourceLanguage')} "
                f"({message.get('qualityTier')}), expires at {_clock(message.get('expiresAt'))}")
    if kind == "sessionJoined":
        return (f"sessionJoined: {message.get('sessionId')} in {message.get('targetLanguage')} "
                f"(spoken in {message.get('sourceLanguage')}); broadcast {_state(message.get('broadcastState'))}; "
                f"last message #{seq}")
    if kind == "connectionRefreshComplete":
        language = f" in {message['targetLanguage']}" if message.get("targetLanguage") else ""
        return f"connectionRefreshComplete: now on {message.get('connectionId')} as {message.get('role')}{language}"
    if kind == "controlAck":
        return f"controlAck: {message.get('action')} done; broadcast {_state(message.get('broadcastState'))}"
    if kind in ("broadcastPaused", "broadcastResumed", "broadcastMuted", "broadcastUnmuted"):
        return f"{kind}{numbered}: broadcast {_state(message.get('broadcastState'))}"
    if kind == "volumeChanged":
        return f"volumeChanged{numbered}: volume {message.get('volumeLevel')}"
    if kind == "sessionStatus":
        count = message.get("listenerCount")
        text = (f"sessionStatus: {message.get('sessionId')} {message.get('status')}, "
                f"{count} listener{'' if count == 1 else 's'}")
        distribution = message.get("languageDistribution")
        if isinstance(distribution, dict):
            text += " (" + (", ".join(f"{k} {v}" for k, v in sorted(distribution.items())) or "none") + ")"
        text += (f", on air {_duration(message.get('sessionDuration'))}, "
                 f"broadcast {_state(message.get('broadcastState'))}")
        if message.get("expiresAt") is not None:
            text += f", expires at {_clock(message.get('expiresAt'))}"
        return text
    if kind == "languageChanged":
        return (f"languageChanged: now {message.get('targetLanguage')} (was {message.get('previousLanguage')}), "
                f"last message #{seq}")
    if kind == "audio":
        data = decode_audio_data(message)
        details = [f"speaker chunk {message['speakerSequenceNumber']}"] if "speakerSequenceNumber" in message else []
        if message.get("format"):
            details.append(str(message["format"]))
        extra = f" ({', '.join(details)})" if details else ""
        return f"audio chunk{numbered}, {'?' if data is None else len(data)} bytes{extra}"
    if kind == "error":
        action = f" ({message['action']})" if message.get("action") else ""
        return f"error {message.get('code')}{action}: {message.get('message')}"
    if kind == "sessionEnded":
        return f"sessionEnded: {message.get('sessionId')} ({message.get('reason')})"
    if kind == "connectionClosed":
        return f"connectionClosed: {message.get('reason')}"
    if kind == "connectionRefreshRequired":
        return f"connectionRefreshRequired: refresh by {_clock((message.get('refreshBy') or 0) / 1000)}"
    if kind == "connectionWarning":
        return f"connectionWarning: {message.get('remainingMinutes')} minutes left on this connection"
    if kind == "speakerDisconnected":
        return f"speakerDisconnected: waiting {message.get('graceSeconds')} s for the speaker"
    if kind == "heartbeatAck":
        return "heartbeatAck"
    skip = {"type", "timestamp", "sessionId", "sequenceNumber", "targetLanguage"}
    fields = ", ".join(f"{k}={json.dumps(v, ensure_ascii=False)}" for k, v in message.items() if k not in skip)
    language = f" ({message['targetLanguage']})" if message.get("targetLanguage") else ""
    return f"{kind}{numbered}{language}" + (f": {fields}" if fields else "")


def describe_gap(language: Any, gap: Any, *, gap_timeout: float, window: int) -> str:
    """A note for numbers given up on (an :class:`~broadcast_client.ordering.Gap`)."""
    why = {
        "timeout": f"not arrived within {gap_timeout:g} s of a later one",
        "window": f"not arrived before {window} later ones",
        "reconnect": "published while reconnecting",
        "end": "not arrived before the client stopped",
    }.get(gap.reason, gap.reason)
    return (f"! {gap.count} message(s) in {language} missed (#{gap.first}..#{gap.last}): {why}; "
            f"not waiting for them any more")


def describe_refusal(status: int, body: str) -> str:
    """A refused handshake in a few words: the server's code and message when it sent them."""
    try:
        parsed = json.loads(body)
    except ValueError:
        parsed = None
    if isinstance(parsed, dict) and parsed.get("code"):
        return f"{status} {parsed['code']}: {parsed.get('message', '')}".strip()
    if isinstance(parsed, dict) and parsed.get("message"):
        return f"{status} {parsed['message']}"
    return f"HTTP {status}"


def _is_this_machine(url: str) -> bool:
    host = urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def describe_nothing_listening(url: str) -> str:
    """No server at ``url``'s address (the connection was refused): what to do."""
    where = redact(url.split("?", 1)[0])
    if _is_this_machine(where):
        return (f"nothing is listening at {where} (connection refused). Is the local stack "
                f"running? Start it with `make run` in another terminal; if it runs elsewhere, "
                f"give its address: make speak|listen PORT=... or WS_URL=..., or --url / BROADCAST_URL")
    return (f"nothing is listening at {where} (connection refused): is the server up, and is "
            f"the URL right (--url or BROADCAST_URL)?")
