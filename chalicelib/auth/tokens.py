"""Verification of Cognito JWTs (speaker tokens).

RS256 only; signature checked against a JWKS fetched from a configurable URL and
cached for the life of the Lambda container. A token naming an unknown ``kid``
triggers at most one refetch per cooldown period, so forged ``kid`` values cannot
turn the authorizer into a request amplifier against the JWKS endpoint.

Tokens are never logged; failures carry a short reason for our logs only.
"""

from __future__ import annotations

import json
import threading
import time
from typing import Callable, Dict, Optional

import attrs

ALGORITHM = "RS256"
_JWKS_TIMEOUT_SECONDS = 3
# After a failed fetch, retry this soon rather than after the full cooldown: one
# network blip at cold start must not lock every speaker out for minutes.
_RETRY_AFTER_FAILURE_SECONDS = 5
_LEEWAY_SECONDS = 5


class InvalidToken(Exception):
    """The token is missing, malformed, expired, or not ours. ``str()`` says why."""


class KeysUnavailable(InvalidToken):
    """The signing keys could not be fetched: the token may well be valid."""


def fetch_json(url: str) -> dict:
    import urllib.request  # lazy: only the authorizer ever fetches keys

    with urllib.request.urlopen(url, timeout=_JWKS_TIMEOUT_SECONDS) as response:
        return json.loads(response.read().decode("utf-8"))


class JwksCache:
    """Signing keys by ``kid``, refetched on an unknown ``kid`` at most once per
    ``cooldown`` seconds."""

    def __init__(
        self,
        url: str,
        cooldown: float,
        fetch: Callable[[str], dict] = fetch_json,
        clock: Callable[[], float] = time.monotonic,
        on_failure: Optional[Callable[[], None]] = None,
    ) -> None:
        self._on_failure = on_failure
        self._url = url
        self._cooldown = cooldown
        self._fetch = fetch
        self._clock = clock
        self._keys: Dict[str, object] = {}
        self._next_fetch_at: Optional[float] = None
        self._last_fetch_failed = False
        self._lock = threading.Lock()

    def key_for(self, kid: str):
        with self._lock:
            if kid not in self._keys and self._may_refetch():
                self._refresh()
            try:
                return self._keys[kid]
            except KeyError:
                if self._last_fetch_failed:
                    # Waiting to retry a failed fetch: the key may well exist; the
                    # speaker is told the keys are unavailable (503), not that the
                    # token is bad (401, which would send them to sign in again).
                    raise KeysUnavailable("signing keys unavailable (retrying)") from None
                raise InvalidToken("unknown signing key id") from None

    def _may_refetch(self) -> bool:
        return self._next_fetch_at is None or self._clock() >= self._next_fetch_at

    def _refresh(self) -> None:
        import jwt  # lazy: keeps cold start of handlers that never verify fast

        now = self._clock()
        try:
            document = self._fetch(self._url)
            key_set = jwt.PyJWKSet.from_dict(document)
        except Exception as exc:  # network, JSON or key errors: refuse, don't crash
            self._next_fetch_at = now + min(self._cooldown, _RETRY_AFTER_FAILURE_SECONDS)
            self._last_fetch_failed = True
            if self._on_failure is not None:
                self._on_failure()
            raise KeysUnavailable(f"signing keys unavailable ({type(exc).__name__})") from None
        self._next_fetch_at = now + self._cooldown
        self._last_fetch_failed = False
        self._keys = {
            key.key_id: key.key
            for key in key_set.keys
            if key.key_id and getattr(key, "algorithm_name", ALGORITHM) == ALGORITHM
        }


@attrs.frozen
class VerifiedToken:
    user_id: str
    username: Optional[str]


class TokenVerifier:
    def __init__(
        self,
        *,
        issuer: str,
        audience: str,
        token_use: str,
        jwks: JwksCache,
    ) -> None:
        self._issuer = issuer
        self._audience = audience
        self._token_use = token_use
        self._jwks = jwks

    @classmethod
    def from_config(cls, config, on_keys_unavailable=None) -> "TokenVerifier":
        """``on_keys_unavailable`` is told of each failed fetch of the signing keys."""
        return cls(
            issuer=config.token_issuer,
            audience=config.token_audience,
            token_use=config.token_use,
            jwks=JwksCache(
                config.effective_jwks_url, config.jwks_refetch_cooldown_seconds,
                on_failure=on_keys_unavailable,
            ),
        )

    def verify(self, token: Optional[str]) -> VerifiedToken:
        import jwt

        if not token:
            raise InvalidToken("no token")
        if not self._issuer or not self._audience:
            raise InvalidToken("TOKEN_ISSUER/TOKEN_AUDIENCE not configured")
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise InvalidToken("malformed token") from None
        # Checked before any key lookup: alg=none and HS256 (key confusion) never
        # reach signature verification.
        if header.get("alg") != ALGORITHM:
            raise InvalidToken("algorithm not allowed")
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid:
            raise InvalidToken("no key id")
        key = self._jwks.key_for(kid)
        is_id_token = self._token_use == "id"
        try:
            claims = jwt.decode(
                token,
                key,
                algorithms=[ALGORITHM],
                issuer=self._issuer,
                audience=self._audience if is_id_token else None,
                leeway=_LEEWAY_SECONDS,
                options={
                    "require": ["exp", "iss", "sub", "token_use"],
                    "verify_aud": is_id_token,
                },
            )
        except jwt.ExpiredSignatureError:
            raise InvalidToken("expired") from None
        except jwt.PyJWTError as exc:
            raise InvalidToken(type(exc).__name__) from None
        # RFC 7519 4.1.4: a NumericDate is a JSON number. PyJWT int()s a string
        # ("9999999999"), which would let a signed string outlive its intent.
        for claim in ("exp", "nbf", "iat"):
            value = claims.get(claim)
            if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))):
                raise InvalidToken(f"{claim} is not a number")
        if claims.get("token_use") != self._token_use:
            raise InvalidToken("wrong token_use")
        if not is_id_token and claims.get("client_id") != self._audience:
            raise InvalidToken("wrong client_id")
        sub = claims.get("sub")
        if not isinstance(sub, str) or not sub:
            raise InvalidToken("no subject")
        return VerifiedToken(
            user_id=sub, username=claims.get("cognito:username") or claims.get("username")
        )
