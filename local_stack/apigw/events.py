"""What API Gateway hands a WebSocket integration: ids, timestamps and events.

Pure builders of the ``$connect`` authorizer's REQUEST event and of the
``$connect``, ``MESSAGE`` and ``$disconnect`` events, shaped like API Gateway's
(developer guide, "Working with WebSocket APIs": the event's ``requestContext``
and "Controlling access with a Lambda REQUEST authorizer"). Callers pass the time in.
"""
from __future__ import annotations

import base64
import os
import re
import time
import uuid
from typing import Any, Dict, List, Optional, Tuple

import attrs

ROUTE_CONNECT = "$connect"
ROUTE_DEFAULT = "$default"
ROUTE_DISCONNECT = "$disconnect"

# --------------------------------------------------------------------------
# Identifiers and timestamps
# --------------------------------------------------------------------------

_CONNECTION_ID = re.compile(r"^[A-Za-z0-9]{15}=$")


def new_connection_id() -> str:
    """A connection id shaped like API Gateway's (``L0SM9cOFvHcCIhw=``).

    API Gateway's ids are the standard base64 of 11 bytes. We keep only those
    without ``+`` or ``/`` so ids stay safe in URL paths without escaping.
    """
    while True:
        candidate = base64.b64encode(os.urandom(11)).decode("ascii")
        if _CONNECTION_ID.match(candidate):
            return candidate


def is_connection_id(value: str) -> bool:
    return bool(_CONNECTION_ID.match(value))


def new_request_id() -> str:
    """API Gateway's ``extendedRequestId``/``messageId`` look like this."""
    return base64.b64encode(os.urandom(12)).decode("ascii").replace("+", "A").replace("/", "B")[:16] + "="


def request_time(epoch_ms: int) -> str:
    """``requestTime`` in API Gateway's CLF format: ``09/Feb/2019:11:50:27 +0000``."""
    return time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(epoch_ms / 1000))


def iso8601(epoch_seconds: float) -> str:
    """Timestamps in ``@connections`` GET responses."""
    whole = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(epoch_seconds))
    return f"{whole}.{int(epoch_seconds * 1000) % 1000:03d}Z"


# --------------------------------------------------------------------------
# Incoming handshake request
# --------------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class HandshakeRequest:
    """What API Gateway knows about a client's upgrade request."""

    #: Header (name, value) pairs in the order and case the client sent them.
    headers: Tuple[Tuple[str, str], ...] = ()
    #: Query string (name, value) pairs in order, already percent-decoded.
    query: Tuple[Tuple[str, str], ...] = ()
    source_ip: str = "127.0.0.1"
    host: str = "localhost"
    port: int = 443
    scheme: str = "https"

    def header(self, name: str) -> Optional[str]:
        wanted = name.lower()
        for key, value in self.headers:
            if key.lower() == wanted:
                return value
        return None

    @property
    def user_agent(self) -> str:
        return self.header("User-Agent") or ""

    def event_headers(self) -> Tuple[Dict[str, str], Dict[str, List[str]]]:
        """``headers`` and ``multiValueHeaders`` as API Gateway builds them.

        API Gateway adds the forwarding headers of its edge
        (``X-Forwarded-For``/``-Port``/``-Proto``, ``X-Amzn-Trace-Id``).
        """
        pairs = list(self.headers)
        present = {k.lower() for k, _ in pairs}
        extra = [
            ("X-Amzn-Trace-Id", f"Root=1-{int(time.time()):08x}-{uuid.uuid4().hex[:24]}"),
            ("X-Forwarded-For", self.source_ip),
            ("X-Forwarded-Port", str(self.port)),
            ("X-Forwarded-Proto", self.scheme),
        ]
        pairs.extend((k, v) for k, v in extra if k.lower() not in present)
        single: Dict[str, str] = {}
        multi: Dict[str, List[str]] = {}
        for key, value in pairs:
            single[key] = value
            multi.setdefault(key, []).append(value)
        return single, multi

    def event_query(self) -> Dict[str, Any]:
        """``queryStringParameters`` (last value wins) and the multi-value map.

        Both keys are absent when the request has no query string, as in
        API Gateway's events (handlers must not assume they exist).
        """
        if not self.query:
            return {}
        single: Dict[str, str] = {}
        multi: Dict[str, List[str]] = {}
        for key, value in self.query:
            single[key] = value
            multi.setdefault(key, []).append(value)
        return {"queryStringParameters": single, "multiValueQueryStringParameters": multi}


# --------------------------------------------------------------------------
# Events
# --------------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class ApiContext:
    """The fixed part of every event's ``requestContext``."""

    api_id: str
    stage: str
    domain_name: str
    region: str = "us-east-1"
    account_id: str = "123456789012"

    @property
    def connect_method_arn(self) -> str:
        # "methodArn": "arn:aws:execute-api:{region}:{account}:{apiId}/{stage}/$connect"
        return (
            f"arn:aws:execute-api:{self.region}:{self.account_id}:"
            f"{self.api_id}/{self.stage}/{ROUTE_CONNECT}"
        )


def _request_context(
    api: ApiContext,
    *,
    route_key: str,
    event_type: str,
    connection_id: str,
    connected_at: int,
    now_ms: int,
    source_ip: str,
    user_agent: Optional[str],
) -> Dict[str, Any]:
    request_id = new_request_id()
    identity: Dict[str, Any] = {"sourceIp": source_ip}
    if user_agent is not None:
        identity["userAgent"] = user_agent
    return {
        "routeKey": route_key,
        "eventType": event_type,
        "extendedRequestId": request_id,
        "requestTime": request_time(now_ms),
        "messageDirection": "IN",
        "stage": api.stage,
        "connectedAt": connected_at,
        "requestTimeEpoch": now_ms,
        "identity": identity,
        "requestId": request_id,
        "domainName": api.domain_name,
        "connectionId": connection_id,
        "apiId": api.api_id,
    }


def _connect_parts(
    api: ApiContext, request: HandshakeRequest, *, connection_id: str, connected_at: int, now_ms: int
) -> Dict[str, Any]:
    """What the authorizer's and ``$connect``'s events share: headers, query, context."""
    headers, multi_headers = request.event_headers()
    context = _request_context(
        api,
        route_key=ROUTE_CONNECT,
        event_type="CONNECT",
        connection_id=connection_id,
        connected_at=connected_at,
        now_ms=now_ms,
        source_ip=request.source_ip,
        user_agent=request.user_agent,
    )
    return {
        "headers": headers,
        "multiValueHeaders": multi_headers,
        **request.event_query(),
        "requestContext": context,
    }


def authorizer_event(
    api: ApiContext, request: HandshakeRequest, *, connection_id: str, now_ms: int
) -> Dict[str, Any]:
    """The REQUEST authorizer's input for ``$connect``."""
    parts = _connect_parts(api, request, connection_id=connection_id, connected_at=now_ms,
                           now_ms=now_ms)
    return {"type": "REQUEST", "methodArn": api.connect_method_arn, **parts, "stageVariables": {}}


def connect_event(
    api: ApiContext,
    request: HandshakeRequest,
    *,
    connection_id: str,
    connected_at: int,
    now_ms: int,
    authorizer: Optional[Dict[str, Any]],
) -> Dict[str, Any]:
    event = _connect_parts(api, request, connection_id=connection_id, connected_at=connected_at,
                           now_ms=now_ms)
    if authorizer is not None:
        event["requestContext"]["authorizer"] = dict(authorizer)
    event["isBase64Encoded"] = False
    return event


def message_event(
    api: ApiContext,
    *,
    connection_id: str,
    connected_at: int,
    now_ms: int,
    source_ip: str,
    route_key: str,
    body: "str | bytes",
    authorizer: Optional[Dict[str, Any]],
) -> Dict[str, Any]:
    """A ``MESSAGE`` event; binary frames arrive base64-encoded."""
    context = _request_context(
        api,
        route_key=route_key,
        event_type="MESSAGE",
        connection_id=connection_id,
        connected_at=connected_at,
        now_ms=now_ms,
        source_ip=source_ip,
        user_agent=None,
    )
    context["messageId"] = new_request_id()
    if authorizer is not None:
        context["authorizer"] = dict(authorizer)
    if isinstance(body, bytes):
        return {
            "requestContext": context,
            "body": base64.b64encode(body).decode("ascii"),
            "isBase64Encoded": True,
        }
    return {"requestContext": context, "body": body, "isBase64Encoded": False}


def disconnect_event(
    api: ApiContext,
    request: HandshakeRequest,
    *,
    connection_id: str,
    connected_at: int,
    now_ms: int,
    status_code: int,
    reason: str,
    authorizer: Optional[Dict[str, Any]],
) -> Dict[str, Any]:
    # API Gateway's $disconnect carries only a few headers of the original
    # request (Host and its own forwarding headers), not the client's.
    headers, multi_headers = HandshakeRequest(
        headers=(("Host", api.domain_name),),
        source_ip=request.source_ip,
        port=request.port,
        scheme=request.scheme,
    ).event_headers()
    context = _request_context(
        api,
        route_key=ROUTE_DISCONNECT,
        event_type="DISCONNECT",
        connection_id=connection_id,
        connected_at=connected_at,
        now_ms=now_ms,
        source_ip=request.source_ip,
        user_agent=request.user_agent,
    )
    context["disconnectStatusCode"] = status_code
    context["disconnectReason"] = reason
    if authorizer is not None:
        context["authorizer"] = dict(authorizer)
    return {
        "headers": headers,
        "multiValueHeaders": multi_headers,
        "requestContext": context,
        "isBase64Encoded": False,
    }
