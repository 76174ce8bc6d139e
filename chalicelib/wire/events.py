"""Reading API Gateway WebSocket events. Pure.

Chalice's WebsocketEvent exposes the connection id and body; the query string and
the authorizer's context are only in the raw event, read here in one place.
"""

from __future__ import annotations

import os
from typing import Dict, Optional

from chalicelib.connections_api import management_endpoint


def request_context(event: dict) -> dict:
    return event.get("requestContext") or {}


def query_parameters(event: dict) -> Dict[str, str]:
    return dict(event.get("queryStringParameters") or {})


def _authorizer_context(event: dict) -> dict:
    return request_context(event).get("authorizer") or {}


def authorizer_user_id(event: dict) -> Optional[str]:
    """The verified speaker's user id, set only by the authorizer."""
    user_id = _authorizer_context(event).get("userId")
    return user_id if isinstance(user_id, str) and user_id else None


def authorizer_refusal(event: dict) -> Optional[str]:
    """Why the authorizer could not verify a speaker's token, if it could not."""
    refusal = _authorizer_context(event).get("refusal")
    return refusal if isinstance(refusal, str) and refusal else None


def endpoint_for(event: dict, config) -> str:
    context = request_context(event)
    region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION", "us-east-1")
    return management_endpoint(
        config, context.get("apiId", ""), context.get("stage", ""), region
    )


def source_ip(event: dict) -> Optional[str]:
    identity = request_context(event).get("identity") or {}
    value = identity.get("sourceIp")
    return value if isinstance(value, str) and value else None
