"""Keyed hashes that stand in for client addresses, user ids and connection ids
wherever we store or log them (rate-limit keys, log lines).

HMAC-SHA256 with PRIVACY_KEY: without the key a hash cannot be reversed by trying
every IPv4 address, and the same value always hashes alike, so a rate limit or a
log search still works. Pure.
"""

from __future__ import annotations

import base64
import hashlib
import hmac


class Hasher:
    def __init__(self, key: str) -> None:
        self._key = key.encode("utf-8")

    def __call__(self, kind: str, value: str) -> str:
        """``kind`` keeps the same value of different kinds apart (an address is not a
        user id). 96 bits, base64url: short, and collisions are out of reach."""
        digest = hmac.new(self._key, f"{kind}\x00{value}".encode("utf-8"), hashlib.sha256)
        return base64.urlsafe_b64encode(digest.digest()[:12]).decode("ascii")
