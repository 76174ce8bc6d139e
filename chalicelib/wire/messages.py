"""Server-to-client messages. Pure: every builder returns a JSON-ready dict.

Every message is ``{"type": ..., "timestamp": <epoch ms>, ...}``; see
docs/protocol.md for each one.
"""

from __future__ import annotations

import json
from typing import Any, Optional

from chalicelib.wire.echo import clip

# Every real action name is shorter; a longer one is echoed cut.
MAX_ACTION_ECHO = 40


def build(type_: str, now: float, **fields: Any) -> dict:
    return {"type": type_, "timestamp": int(now * 1000), **fields}


def encode(message: dict) -> bytes:
    return json.dumps(message, separators=(",", ":")).encode("utf-8")


def session_created(now, session, connection_id) -> dict:
    return build(
        "sessionCreated",
        now,
        sessionId=session.session_id,
        sourceLanguage=session.source_language,
        qualityTier=session.quality_tier,
        connectionId=connection_id,
        expiresAt=session.expires_at,
    )


def session_joined(now, session, connection_id, target_language) -> dict:
    return build(
        "sessionJoined",
        now,
        sessionId=session.session_id,
        targetLanguage=target_language,
        sourceLanguage=session.source_language,
        connectionId=connection_id,
        broadcastState=session.broadcast_state.to_wire(),
        sequenceNumber=session.sequence_numbers.get(target_language, 0),
    )


def refresh_complete(
    now, session, connection_id, role, target_language: Optional[str]
) -> dict:
    fields = dict(
        sessionId=session.session_id,
        role=role,
        connectionId=connection_id,
        sourceLanguage=session.source_language,
    )
    if target_language is not None:
        fields["targetLanguage"] = target_language
        fields["sequenceNumber"] = session.sequence_numbers.get(target_language, 0)
    fields["broadcastState"] = session.broadcast_state.to_wire()
    return build("connectionRefreshComplete", now, **fields)


def heartbeat_ack(now) -> dict:
    return build("heartbeatAck", now)


def session_ended(now, session_id, reason) -> dict:
    return build("sessionEnded", now, sessionId=session_id, reason=reason)


def error(now, code: str, message: str, action: Optional[str] = None) -> dict:
    """An ``error`` reply; the failed ``action`` is echoed only as a short, safe
    prefix, so the reply stays small enough to be delivered."""
    fields = {"code": code, "message": message}
    if action:
        fields["action"] = clip(action, MAX_ACTION_ECHO)
    return build("error", now, **fields)


def connection_closed(now, reason: str) -> dict:
    return build("connectionClosed", now, reason=reason)


def connection_refresh_required(now, connection, refresh_by_ms: int, query: dict) -> dict:
    fields = dict(
        sessionId=connection.session_id,
        role=connection.role,
        refreshBy=refresh_by_ms,
        reconnectQuery=query,
    )
    if connection.target_language:
        fields["targetLanguage"] = connection.target_language
    return build("connectionRefreshRequired", now, **fields)


def connection_warning(now, remaining_minutes: float, refresh_by_ms: int) -> dict:
    return build(
        "connectionWarning", now, remainingMinutes=remaining_minutes, refreshBy=refresh_by_ms
    )


def speaker_disconnected(now, session_id: str, grace_seconds: float) -> dict:
    return build(
        "speakerDisconnected", now, sessionId=session_id, graceSeconds=grace_seconds
    )


def speaker_reconnected(now, session_id: str) -> dict:
    return build("speakerReconnected", now, sessionId=session_id)


def listener_presence(now, session_id: str, joined: Optional[str] = None,
                      left: Optional[str] = None) -> dict:
    """To the speaker: a listener was counted in (``joined``), out (``left``), or
    moved from one language to another (both)."""
    fields = {"sessionId": session_id}
    if joined:
        fields["joined"] = joined
    if left:
        fields["left"] = left
    return build("listenerPresence", now, **fields)
