"""Liveness decisions for one connection at one instant. Pure.

API Gateway closes sockets after 2 hours and after 10 idle minutes, and
``$disconnect`` is best-effort. These rules (applied at each heartbeat and by the
scheduled sweep) keep long broadcasts alive and the state honest:

- silent for HEARTBEAT_TIMEOUT_SECONDS: close (``heartbeatTimeout``);
- older than CONNECTION_MAX_DURATION_MINUTES: close (``maxDuration``), before the
  gateway does it without telling anyone;
- older than CONNECTION_WARNING_MINUTES: ``connectionWarning``, once;
- older than CONNECTION_REFRESH_MINUTES: ``connectionRefreshRequired``, once.
"""

from __future__ import annotations

from typing import List, Optional

import attrs

HEARTBEAT_TIMEOUT = "heartbeatTimeout"
MAX_DURATION = "maxDuration"

REFRESH_NOTICE = "refreshNotifiedAt"
WARNING_NOTICE = "warnedAt"


@attrs.frozen
class Verdict:
    close_reason: Optional[str] = None
    notices: tuple = ()  # attribute names of the notices now due, in order


def judge(connection, now_ms: int, config) -> Verdict:
    age_ms = now_ms - connection.connected_at
    silence_ms = now_ms - connection.last_seen_at
    if silence_ms >= config.heartbeat_timeout_seconds * 1000:
        return Verdict(close_reason=HEARTBEAT_TIMEOUT)
    if age_ms >= config.connection_max_duration_minutes * 60_000:
        return Verdict(close_reason=MAX_DURATION)
    due: List[str] = []
    if age_ms >= config.connection_refresh_minutes * 60_000 and not connection.refresh_notified_at:
        due.append(REFRESH_NOTICE)
    if age_ms >= config.connection_warning_minutes * 60_000 and not connection.warned_at:
        due.append(WARNING_NOTICE)
    return Verdict(notices=tuple(due))


def refresh_deadline_ms(connection, config) -> int:
    """When the server will close this connection for its age."""
    return connection.connected_at + int(config.connection_max_duration_minutes * 60_000)


def remaining_minutes(connection, now_ms: int, config) -> float:
    remaining = refresh_deadline_ms(connection, config) - now_ms
    return round(max(0, remaining) / 60_000, 2)


def reconnect_query(connection) -> dict:
    """The query string a client should reconnect with (speakers add ``token``); a
    listener's names its connection, whose place the new one takes over."""
    query = {
        "action": "refreshConnection",
        "sessionId": connection.session_id,
        "role": connection.role,
    }
    if connection.target_language:
        query["targetLanguage"] = connection.target_language
    if not connection.is_speaker:
        query["previousConnectionId"] = connection.connection_id
    return query


def may_be_connecting(connection, now_ms: int, config) -> bool:
    """Whether a 410 for this connection may only mean "still inside $connect".

    API Gateway refuses posts until ``$connect`` returns, and the row is written
    during ``$connect``; the first message is retried for
    WELCOME_DELIVERY_TIMEOUT_SECONDS. Younger rows are not taken for gone; if they
    really are, the heartbeat timeout or the next sweep removes them.
    """
    window_ms = (config.welcome_delivery_timeout_seconds + 5) * 1000
    return now_ms - connection.connected_at < window_ms
