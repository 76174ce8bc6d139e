"""What a refused speaker token says about itself, read without trusting it.

A speaker refused at ``$connect`` gets ``401 Unauthorized`` and nothing more:
the authorizer tells no one why (docs/protocol.md, Connecting). The client holds
the token, though, so it can read its claims and point at the likely cause:
expired, not a JWT, not an ID token, signed with an algorithm the server
refuses. Nothing here checks a signature, so these are hints for a person,
never a verdict; the server's own checks are in ``chalicelib/auth/tokens.py``.
The token itself is never part of a hint.
"""
from __future__ import annotations

import time
from typing import Any, Dict, List, Optional

#: The only algorithm the server accepts (Cognito signs with RS256).
SERVER_ALGORITHM = "RS256"
#: Where to get a token that works, for the hints that end in "get a fresh one".
FRESH_TOKEN = "locally make token, or make speak without TOKEN= (it mints one per connection)"


def _utc(epoch_seconds: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(epoch_seconds))


def _ago(seconds: float) -> str:
    seconds = int(seconds)
    if seconds < 120:
        return f"{seconds} s"
    if seconds < 2 * 3600:
        return f"{seconds // 60} min"
    return f"{seconds // 3600} h"


def _claims(token: str) -> "tuple[Dict[str, Any], Dict[str, Any]]":
    import jwt  # lazily: only a refused speaker needs it

    # Read, not verified: the signature is the server's business.
    header = jwt.get_unverified_header(token)
    claims = jwt.decode(token, options={"verify_signature": False})
    return header, claims


def token_hints(token: Optional[str], now: float) -> str:
    """A sentence about what may be wrong with ``token``, for a 401 refusal."""
    if not token:
        return "no token was sent"
    try:
        header, claims = _claims(token)
    except Exception:  # any decoding failure means the same thing to a person
        # No "TOKEN=" here: the client's display redacts whatever follows one.
        return ("the token is not a JWT (three base64url-encoded JSON parts joined by dots): "
                "check the value given to make's TOKEN, to --token or to BROADCAST_TOKEN")
    problems: List[str] = []
    exp = claims.get("exp")
    if not isinstance(exp, (int, float)):
        problems.append("it has no expiry (exp), which the server requires")
    elif exp <= now:
        problems.append(f"it expired at {_utc(exp)}, {_ago(now - exp)} ago; get a fresh one: {FRESH_TOKEN}")
    nbf = claims.get("nbf")
    if isinstance(nbf, (int, float)) and nbf > now:
        problems.append(f"it is not valid before {_utc(nbf)}")
    if header.get("alg") != SERVER_ALGORITHM:
        problems.append(f"it is signed with {header.get('alg')}; the server accepts only {SERVER_ALGORITHM}")
    if not header.get("kid"):
        problems.append("its header names no signing key (kid)")
    token_use = claims.get("token_use")
    if token_use != "id":
        problems.append(f"its token_use is {token_use!r}: the server wants an ID token ('id') "
                        f"unless it runs with TOKEN_USE=access")
    if not claims.get("sub"):
        problems.append("it names no user (sub)")
    seen = f"issuer {claims.get('iss', '(none)')}, audience {claims.get('aud', '(none)')}"
    if problems:
        return f"the token (read here without checking its signature; {seen}): " + "; ".join(problems)
    until = f", valid until {_utc(exp)}" if isinstance(exp, (int, float)) else ""
    return (f"the token ({seen}{until}) looks well-formed, so the server does not trust its issuer, "
            f"audience or signing key: compare them with the server's TOKEN_ISSUER, TOKEN_AUDIENCE "
            f"and JWKS_URL (locally: make token, with the same LOCAL_STATE_DIR as make run)")
