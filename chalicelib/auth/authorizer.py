"""The ``$connect`` REQUEST authorizer's decision.

API Gateway calls it with no identity sources configured (so anonymous listeners
reach it at all). It verifies a speaker's Cognito token (``token`` in the query
string) and tells ``$connect`` what it found through the policy's context; it never
refuses by itself. ``$connect`` is where every handshake is counted against the rate
limits and refused with its precise status (401 for a bad token, 503 when the
signing keys are unreachable), so that:

- a refused handshake counts like any other (an address over its limit cannot keep
  trying tokens), and
- a bad token is not a Lambda error: an authorizer that raises ``Unauthorized``
  counts in ``AWS/Lambda Errors``, and routine client mistakes must not page anyone.

The Allow policy is scoped to the ``methodArn`` that was asked for. Context values
are strings (API Gateway allows only strings, numbers and booleans there).
"""

from __future__ import annotations

import logging

from chalicelib.auth.tokens import InvalidToken, KeysUnavailable
from chalicelib.wire.intents import needs_speaker_token

logger = logging.getLogger(__name__)

ANONYMOUS = "anonymous"
# The context key that carries a refusal to $connect, and its values.
REFUSAL = "refusal"
BAD_TOKEN = "badToken"
KEYS_UNAVAILABLE = "keysUnavailable"


def policy(principal_id: str, method_arn: str, context: dict) -> dict:
    return {
        "principalId": principal_id,
        "policyDocument": {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Action": "execute-api:Invoke",
                    "Effect": "Allow",
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
        return policy(ANONYMOUS, method_arn, {"role": "listener"})
    try:
        verified = verifier.verify(query.get("token"))
    except InvalidToken as exc:
        # The reason is ours to know, never the token itself.
        logger.info("speaker token refused: %s", exc)
        refusal = KEYS_UNAVAILABLE if isinstance(exc, KeysUnavailable) else BAD_TOKEN
        return policy(ANONYMOUS, method_arn, {"role": "speaker", REFUSAL: refusal})
    return policy(verified.user_id, method_arn, {"role": "speaker", "userId": verified.user_id})
