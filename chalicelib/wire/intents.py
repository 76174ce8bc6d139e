"""Parsing and validation of what clients send. Pure.

A ``$connect`` query string becomes one of three intents; a ``$default`` body
becomes a :class:`ClientMessage`. Anything malformed raises the matching
:class:`~chalicelib.errors.BroadcastError`.
"""

from __future__ import annotations

import json
import re
from typing import Mapping, Optional, Union

import attrs

from chalicelib import errors
from chalicelib.config import QUALITY_TIERS
from chalicelib.wire.echo import shown
from chalicelib.wire.ids import is_valid_session_id
from chalicelib.wire.languages import is_language_code
from chalicelib.state.records import LISTENER, SPEAKER

CREATE, JOIN, REFRESH = "createSession", "joinSession", "refreshConnection"
CONNECT_ACTIONS = (CREATE, JOIN, REFRESH)

# API Gateway's own limit is 128 KB; a body that large is refused by the gateway
# before it reaches us, this guards direct invocations.
MAX_MESSAGE_BYTES = 128 * 1024
MAX_NESTING = 16
# API Gateway connection ids are short base64 strings ("L0SM9cOFvHcCIhw=").
_CONNECTION_ID = re.compile(r"[A-Za-z0-9+/=_-]{1,128}")


@attrs.frozen
class CreateIntent:
    source_language: str
    quality_tier: str
    role = SPEAKER


@attrs.frozen
class JoinIntent:
    session_id: str
    target_language: str
    role = LISTENER


@attrs.frozen
class RefreshIntent:
    session_id: str
    role: str
    target_language: Optional[str] = None
    # A listener's connection being replaced: its place (and count) is taken over.
    previous_connection_id: Optional[str] = None


ConnectIntent = Union[CreateIntent, JoinIntent, RefreshIntent]


def connect_action(query: Mapping[str, str]) -> Optional[str]:
    """The intended action, inferring ``joinSession`` as the contract allows."""
    action = query.get("action")
    if action:
        return action
    if query.get("sessionId") and query.get("targetLanguage"):
        return JOIN
    return None


def needs_speaker_token(query: Mapping[str, str]) -> bool:
    """Whether the authorizer must demand a token. Malformed queries do not: they
    are refused with a precise 400 by ``$connect`` instead of a bare 401."""
    action = connect_action(query)
    return action == CREATE or (action == REFRESH and query.get("role") == SPEAKER)


def _require(query: Mapping[str, str], name: str) -> str:
    value = query.get(name)
    if value is None or value == "":
        raise errors.MissingParameter(f"query parameter {name!r} is required")
    return value


def validate_language(value: object, supported, name: str) -> str:
    if not is_language_code(value):
        raise errors.InvalidLanguage(
            f"{name} must be an ISO 639-1 code (two lower-case letters), got {shown(value)}"
        )
    if value not in supported:
        raise errors.UnsupportedLanguage(
            f"{name} {shown(value)} is not supported; supported: {', '.join(supported)}"
        )
    return value  # type: ignore[return-value]


def validate_session_id(value: object) -> str:
    if not is_valid_session_id(value):
        raise errors.InvalidSessionId(
            f"sessionId must look like faithful-shepherd-427, got {shown(value)}"
        )
    return value  # type: ignore[return-value]


def parse_connect(query: Mapping[str, str], supported_languages) -> ConnectIntent:
    action = connect_action(query)
    if action is None:
        raise errors.MissingParameter(
            "query parameter 'action' is required (createSession, joinSession or "
            "refreshConnection)"
        )
    if action not in CONNECT_ACTIONS:
        raise errors.InvalidAction(
            f"action must be one of {', '.join(CONNECT_ACTIONS)}, got {shown(action)}"
        )
    if action == CREATE:
        source = validate_language(
            _require(query, "sourceLanguage"), supported_languages, "sourceLanguage"
        )
        tier = query.get("qualityTier") or "standard"
        if tier not in QUALITY_TIERS:
            raise errors.InvalidQualityTier(
                f"qualityTier must be one of {', '.join(QUALITY_TIERS)}, got {shown(tier)}"
            )
        return CreateIntent(source, tier)

    session_id = validate_session_id(_require(query, "sessionId"))
    if action == JOIN:
        target = validate_language(
            _require(query, "targetLanguage"), supported_languages, "targetLanguage"
        )
        return JoinIntent(session_id, target)

    role = _require(query, "role")
    if role not in (SPEAKER, LISTENER):
        raise errors.InvalidParameter(f"role must be speaker or listener, got {shown(role)}")
    if role == SPEAKER:
        return RefreshIntent(session_id, SPEAKER)
    target = validate_language(
        _require(query, "targetLanguage"), supported_languages, "targetLanguage"
    )
    previous = query.get("previousConnectionId") or None
    if previous is not None and not _CONNECTION_ID.fullmatch(previous):
        raise errors.InvalidParameter(
            f"previousConnectionId must be a connection id, got {shown(previous)}"
        )
    return RefreshIntent(session_id, LISTENER, target, previous)


@attrs.frozen
class ClientMessage:
    action: str
    body: dict


def _no_constant(name: str):
    raise ValueError(f"{name} is not JSON")


def _depth(value: object) -> int:
    """How deeply objects and lists nest, counted without recursion."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, dict):
            node = node.values()
        elif not isinstance(node, list):
            continue
        deepest = max(deepest, depth)
        stack.extend((child, depth + 1) for child in node)
    return deepest


def parse_message(raw: Optional[str]) -> ClientMessage:
    """A ``$default`` body: a JSON object with a string ``action``, nested at most
    MAX_NESTING deep (no handler needs more, and deeper input would make later
    code recurse)."""
    if raw is None or raw == "":
        raise errors.InvalidMessage("empty message; send a JSON object with an action")
    if len(raw.encode("utf-8", "surrogatepass")) > MAX_MESSAGE_BYTES:
        raise errors.InvalidMessage("message larger than 128 KB")
    try:
        body = json.loads(raw, parse_constant=_no_constant)
    except RecursionError:
        raise errors.InvalidMessage(f"message nested deeper than {MAX_NESTING} levels") from None
    except ValueError:
        raise errors.InvalidMessage("message is not valid JSON") from None
    if not isinstance(body, dict):
        raise errors.InvalidMessage("message must be a JSON object")
    if _depth(body) > MAX_NESTING:
        raise errors.InvalidMessage(f"message nested deeper than {MAX_NESTING} levels")
    action = body.get("action")
    if action is None:
        raise errors.InvalidMessage("message has no 'action'")
    if not isinstance(action, str) or not action:
        raise errors.InvalidMessage("'action' must be a non-empty string")
    return ClientMessage(action, body)
