"""Server-to-client messages. Pure: every builder returns a JSON-ready dict.

Every message is ``{"type": ..., "timestamp": <epoch ms>, ...}``; see
docs/protocol.md for each one.
"""

from __future__ import annotations

import json
from typing import Any, Optional


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
    return build("connectionRefreshComplete", now, **fields)


def heartbeat_ack(now) -> dict:
    return build("heartbeatAck", now)


def session_ended(now, session_id, reason) -> dict:
    return build("sessionEnded", now, sessionId=session_id, reason=reason)


def error(now, code: str, message: str, action: Optional[str] = None) -> dict:
    fields = {"code": code, "message": message}
    if action:
        fields["action"] = action
    return build("error", now, **fields)
