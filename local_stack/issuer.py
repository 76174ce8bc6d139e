"""A local stand-in for a Cognito user pool: one RSA key, a JWKS, ID tokens.

The key is created on first use in the state directory (``.local/``, ignored
by git) and shared by every process that uses the same directory, so a token
minted with ``make token`` verifies against the JWKS of a stack that was
started before or after it.
"""
from __future__ import annotations

import base64
import hashlib
import json
import os
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any, Dict, Optional

import attrs
import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

DEFAULT_ISSUER = "https://local-stack.localhost/us-east-1_LocalPool"
DEFAULT_AUDIENCE = "local-stack-client"
#: Cognito's default ID token lifetime (an app client may set 5 minutes to a
#: day): clients must get a fresh token for every refresh past the first hour,
#: locally as in AWS. ``LOCAL_TOKEN_TTL_SECONDS`` or ``token --ttl`` change it.
DEFAULT_TOKEN_TTL = 3600
KEY_FILE = "issuer-key.pem"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def load_or_create_key(state_dir: Path) -> rsa.RSAPrivateKey:
    """Read the signing key, creating it atomically if it does not exist yet."""
    path = Path(state_dir) / KEY_FILE
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".key-")
        try:
            os.fchmod(fd, 0o600)
            os.write(fd, pem)
            os.close(fd)
            try:
                os.link(tmp, path)  # fails if another process won the race
            except FileExistsError:
                pass
        finally:
            os.unlink(tmp)
    return serialization.load_pem_private_key(path.read_bytes(), password=None)


def key_id(public_key) -> str:
    """RFC 7638 thumbprint of the public key, as Cognito-like ``kid``."""
    numbers = public_key.public_numbers()
    n = _b64(numbers.n.to_bytes((numbers.n.bit_length() + 7) // 8, "big"))
    e = _b64(numbers.e.to_bytes((numbers.e.bit_length() + 7) // 8, "big"))
    canonical = json.dumps({"e": e, "kty": "RSA", "n": n}, separators=(",", ":"), sort_keys=True)
    return _b64(hashlib.sha256(canonical.encode()).digest())


@attrs.frozen
class LocalIssuer:
    """Mints Cognito-shaped ID tokens and publishes the matching JWKS."""

    state_dir: Path = attrs.field(converter=Path)
    issuer: str = DEFAULT_ISSUER
    audience: str = DEFAULT_AUDIENCE
    #: Lifetime of the tokens minted, in seconds.
    ttl: int = DEFAULT_TOKEN_TTL

    @classmethod
    def from_environ(cls, state_dir: Path, environ=None) -> "LocalIssuer":
        """``LOCAL_TOKEN_ISSUER``, ``LOCAL_TOKEN_AUDIENCE``, ``LOCAL_TOKEN_TTL_SECONDS``."""
        env = os.environ if environ is None else environ
        raw_ttl = env.get("LOCAL_TOKEN_TTL_SECONDS") or ""
        try:
            ttl = int(raw_ttl) if raw_ttl else DEFAULT_TOKEN_TTL
        except ValueError:
            raise ValueError(f"LOCAL_TOKEN_TTL_SECONDS: expected a whole number of seconds, "
                             f"got {raw_ttl!r}") from None
        if ttl <= 0:
            raise ValueError(f"LOCAL_TOKEN_TTL_SECONDS must be > 0, got {ttl}")
        return cls(
            state_dir,
            issuer=env.get("LOCAL_TOKEN_ISSUER") or DEFAULT_ISSUER,
            audience=env.get("LOCAL_TOKEN_AUDIENCE") or DEFAULT_AUDIENCE,
            ttl=ttl,
        )

    def _key(self) -> rsa.RSAPrivateKey:
        return load_or_create_key(self.state_dir)

    def jwks(self) -> Dict[str, Any]:
        """The JWKS document (read from the key file each time, so never stale)."""
        public = self._key().public_key()
        jwk = jwt.algorithms.RSAAlgorithm.to_jwk(public, as_dict=True)
        jwk.update({"kid": key_id(public), "alg": "RS256", "use": "sig"})
        return {"keys": [jwk]}

    def claims(self, username: str, *, now: Optional[float] = None,
               ttl: Optional[int] = None, email: Optional[str] = None) -> Dict[str, Any]:
        """The claims of a Cognito ID token for ``username``.

        ``sub`` is stable per username (a UUID derived from it), as a Cognito
        user's ``sub`` is stable across sign-ins.
        """
        issued = int(time.time() if now is None else now)
        ttl = self.ttl if ttl is None else ttl
        return {
            "sub": str(uuid.uuid5(uuid.NAMESPACE_URL, f"{self.issuer}#{username}")),
            "email_verified": True,
            "iss": self.issuer,
            "cognito:username": username,
            "origin_jti": str(uuid.uuid4()),
            "aud": self.audience,
            "event_id": str(uuid.uuid4()),
            "token_use": "id",
            "auth_time": issued,
            "exp": issued + ttl,
            "iat": issued,
            "jti": str(uuid.uuid4()),
            "email": email or f"{username}@example.com",
        }

    def token(self, username: str, **kwargs) -> str:
        """A signed RS256 ID token for ``username``."""
        key = self._key()
        return jwt.encode(
            self.claims(username, **kwargs),
            key,
            algorithm="RS256",
            headers={"kid": key_id(key.public_key())},
        )
