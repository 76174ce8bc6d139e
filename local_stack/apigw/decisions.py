"""API Gateway's decisions about a WebSocket request, as pure functions.

- :func:`select_route`: which route a client message goes to
  (``$request.body.action``).
- :func:`evaluate_authorizer`: a REQUEST authorizer's output into Allow, 403 or
  500 (developer guide, "Controlling access with a Lambda REQUEST authorizer").
- :func:`evaluate_connect_response`: a ``$connect`` integration's answer into
  accept or refuse.
"""
from __future__ import annotations

import base64
import fnmatch
import json
from typing import Any, Dict, List, Optional, Sequence

import attrs

from .events import ROUTE_DEFAULT

# --------------------------------------------------------------------------
# Route selection
# --------------------------------------------------------------------------


def select_route(body: "str | bytes", routes: Sequence[str]) -> Optional[str]:
    """Route selection on ``$request.body.action``.

    A JSON object whose ``action`` names a custom route goes there; anything
    else (non-JSON, binary, no match) goes to ``$default`` if it exists, else
    nowhere (API Gateway then answers the client with an error message).
    Chalice only ever defines ``$default``.
    """
    if isinstance(body, str):
        try:
            parsed = json.loads(body)
        except (ValueError, RecursionError):
            # "The $default route is selected when the route selection expression
            # cannot be evaluated against the message" (developer guide, "Working
            # with routes for WebSocket APIs"). JSON nested ~1,000 deep exhausts
            # the parser's recursion: the message still reaches $default (where
            # the app refuses it), the sender's socket stays open.
            parsed = None
        if isinstance(parsed, dict):
            action = parsed.get("action")
            if isinstance(action, str) and action in routes and not action.startswith("$"):
                return action
    return ROUTE_DEFAULT if ROUTE_DEFAULT in routes else None


# --------------------------------------------------------------------------
# Authorizer results
# --------------------------------------------------------------------------


@attrs.frozen
class Refusal:
    """A refused handshake: HTTP status and body sent instead of 101."""

    status: int
    body: str = ""

    @classmethod
    def message(cls, status: int, message: str) -> "Refusal":
        return cls(status, json.dumps({"message": message}))


UNAUTHORIZED = Refusal.message(401, "Unauthorized")
FORBIDDEN = Refusal.message(403, "Forbidden")
INTERNAL_ERROR = Refusal.message(500, "Internal server error")


@attrs.frozen
class Allowed:
    """An Allow decision; ``authorizer`` becomes ``requestContext.authorizer``."""

    authorizer: Dict[str, Any]


class AuthorizerConfigurationError(Exception):
    """The authorizer's output is not a valid policy response (API Gateway: 500)."""


def _as_list(value: Any) -> List[Any]:
    return value if isinstance(value, list) else [value]


def _matches(pattern: str, value: str) -> bool:
    # IAM wildcards: '*' any run of characters, '?' one character.
    # fnmatch's '[...]' classes do not exist in IAM, so escape them.
    escaped = pattern.replace("[", "[[]")
    return fnmatch.fnmatchcase(value, escaped)


def _stringify(value: Any, key: str) -> str:
    # "You can't set a JSON object or array as a valid value of any key in
    # the context map"; the values reach the integration as strings.
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float, str)):
        return str(value)
    raise AuthorizerConfigurationError(f"context[{key!r}] must be a string, number or boolean")


def evaluate_authorizer(result: Any, method_arn: str) -> "Allowed | Refusal":
    """Turn a REQUEST authorizer's output into API Gateway's decision.

    - The output must carry ``principalId`` and a ``policyDocument``;
      otherwise 500 (``AuthorizerConfigurationException``).
    - An explicit ``Deny`` matching ``methodArn`` wins; otherwise an ``Allow``
      matching it allows; no match is an implicit deny: 403.
    - Only a *raised* ``Unauthorized`` means 401, and the caller sees that
      exception. A *returned* ``"Unauthorized"`` string is output like any
      other: not a policy response, so 500.
    """
    try:
        if not isinstance(result, dict):
            raise AuthorizerConfigurationError("authorizer output must be an object")
        principal = result.get("principalId")
        if principal is None or isinstance(principal, (dict, list)):
            raise AuthorizerConfigurationError("principalId is required")
        document = result.get("policyDocument")
        if not isinstance(document, dict) or "Statement" not in document:
            raise AuthorizerConfigurationError("policyDocument.Statement is required")
        allowed = denied = False
        for statement in _as_list(document["Statement"]):
            if not isinstance(statement, dict):
                raise AuthorizerConfigurationError("each Statement must be an object")
            effect = statement.get("Effect")
            if effect not in ("Allow", "Deny"):
                raise AuthorizerConfigurationError(f"invalid Effect {effect!r}")
            actions = [str(a) for a in _as_list(statement.get("Action", []))]
            resources = [str(r) for r in _as_list(statement.get("Resource", []))]
            if not any(_matches(a, "execute-api:Invoke") for a in actions):
                continue
            if not any(_matches(r, method_arn) for r in resources):
                continue
            if effect == "Deny":
                denied = True
            else:
                allowed = True
        context = result.get("context") or {}
        if not isinstance(context, dict):
            raise AuthorizerConfigurationError("context must be an object")
        authorizer = {key: _stringify(value, key) for key, value in context.items()}
    except AuthorizerConfigurationError:
        return INTERNAL_ERROR
    if denied or not allowed:
        return FORBIDDEN
    authorizer["principalId"] = str(principal)
    return Allowed(authorizer)


def evaluate_connect_response(result: Any) -> Optional[Refusal]:
    """``None`` if ``$connect`` accepted the connection, else the refusal.

    A Lambda proxy response with a non-2xx ``statusCode`` refuses the
    handshake with that status. (API Gateway drops the body; we keep it in
    the refusal because it helps, as the design allows.) No ``statusCode``
    means 200.
    """
    if result is None:
        return None
    if not isinstance(result, dict):
        return None
    raw = result.get("statusCode", 200)
    try:
        status = int(raw)
    except (TypeError, ValueError):
        return INTERNAL_ERROR
    if 200 <= status < 300:
        return None
    if not 100 <= status <= 599:
        return INTERNAL_ERROR
    body = result.get("body")
    if body is None:
        body = ""
    elif not isinstance(body, str):
        body = json.dumps(body)
    elif result.get("isBase64Encoded"):
        body = base64.b64decode(body).decode("utf-8", "replace")
    return Refusal(status, body)

