"""The ``$connect`` REQUEST authorizer's decision.

API Gateway calls it with no identity sources configured (so anonymous listeners
reach it at all). Listener intents are allowed as anonymous; speaker intents need a
valid Cognito token in the ``token`` query parameter. Lambda authorizers signal 401
by failing with the exact message ``Unauthorized``; an Allow policy is scoped to the
``methodArn`` that was asked for and carries ``userId`` in its context.
"""

from __future__ import annotations

import logging

from chalicelib.wire.intents import needs_speaker_token
from chalicelib.auth.tokens import InvalidToken

logger = logging.getLogger(__name__)

ANONYMOUS = "anonymous"


class AuthorizerUnauthorized(Exception):
    """Raised to make API Gateway answer 401; the message must stay 'Unauthorized'."""

    def __init__(self) -> None:
        super().__init__("Unauthorized")


def policy(principal_id: str, effect: str, method_arn: str, context: dict) -> dict:
    return {
        "principalId": principal_id,
        "policyDocument": {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Action": "execute-api:Invoke",
                    "Effect": effect,
                    "Resource": method_arn,
                }
            ],
        },
        "context": context,
    }


def authorize(event: dict, verifier) -> dict:
    query = event.get("queryStringParameters") or {}
    method_arn = event.get("methodArn", "")
    if not needs_speaker_token(query):
        return policy(ANONYMOUS, "Allow", method_arn, {"role": "listener"})
    try:
        verified = verifier.verify(query.get("token"))
    except InvalidToken as exc:
        # The reason is ours to know, never the token itself.
        logger.info("speaker token refused: %s", exc)
        raise AuthorizerUnauthorized() from None
    return policy(
        verified.user_id,
        "Allow",
        method_arn,
        {"role": "speaker", "userId": verified.user_id},
    )
