"""The app's REST routes (``@app.route``: ``GET /health``) as API Gateway serves
them to Lambda: the proxy event of payload format 1.0 and the response mapping.
Pure.

In AWS an HTTP API (terraform/modules/health_api) invokes Chalice's
``api_handler`` (handler ``app.app``) with payload format 1.0, the REST API's
proxy event; Chalice dispatches on ``requestContext.resourcePath`` and
``httpMethod`` ("Working with AWS Lambda proxy integrations for HTTP APIs",
API Gateway Developer Guide).
"""
from __future__ import annotations

import base64
import time
import uuid
from typing import Dict, Iterable, List, Mapping, Optional, Tuple

#: Chalice's name for the function behind every @app.route.
API_HANDLER = "api_handler"


def proxy_event(*, method: str, path: str, resource: str, query: Iterable[Tuple[str, str]],
                headers: Iterable[Tuple[str, str]], body: bytes, source_ip: str,
                api_id: str, account_id: str, now_ms: Optional[int] = None) -> dict:
    """The payload format 1.0 event of one HTTP request."""
    now_ms = int(time.time() * 1000) if now_ms is None else now_ms
    single: Dict[str, str] = {}
    multi: Dict[str, List[str]] = {}
    for name, value in headers:
        single[name] = value
        multi.setdefault(name, []).append(value)
    query_single: Dict[str, str] = {}
    query_multi: Dict[str, List[str]] = {}
    for name, value in query:
        query_single[name] = value
        query_multi.setdefault(name, []).append(value)
    text: Optional[str]
    try:
        text, encoded = (body.decode("utf-8") if body else None), False
    except UnicodeDecodeError:
        text, encoded = base64.b64encode(body).decode("ascii"), True
    return {
        "version": "1.0",
        "resource": resource,
        "path": path,
        "httpMethod": method,
        "headers": single,
        "multiValueHeaders": multi,
        "queryStringParameters": query_single or None,
        "multiValueQueryStringParameters": query_multi or None,
        "pathParameters": None,
        "stageVariables": None,
        "requestContext": {
            "accountId": account_id,
            "apiId": api_id,
            "httpMethod": method,
            "path": path,
            "resourcePath": resource,
            "protocol": "HTTP/1.1",
            "requestId": str(uuid.uuid4()),
            "requestTimeEpoch": now_ms,
            "identity": {"sourceIp": source_ip},
            "stage": "$default",
        },
        "body": text,
        "isBase64Encoded": encoded,
    }


def response_parts(result: Mapping) -> Tuple[int, Dict[str, str], bytes]:
    """(status, headers, body) of a proxy integration's answer."""
    status = int(result.get("statusCode", 200))
    headers = {str(k): str(v) for k, v in (result.get("headers") or {}).items()}
    for name, values in (result.get("multiValueHeaders") or {}).items():
        headers[str(name)] = ", ".join(str(v) for v in values)
    body = result.get("body") or ""
    data = base64.b64decode(body) if result.get("isBase64Encoded") else str(body).encode("utf-8")
    return status, headers, data
