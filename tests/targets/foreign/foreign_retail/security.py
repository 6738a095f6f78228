"""Password digests and bearer tokens, with the standard library only.

Digests are ``pbkdf2_sha256$<iterations>$<salt hex>$<digest hex>``. Tokens are
``<base64url(JSON claims)>.<base64url(HMAC-SHA256)>`` signed with ``FOREIGN_TOKEN_SECRET``
(a random secret per process when unset: tokens then die with the process).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import secrets
import time
from typing import Any

TOKEN_SECRET_ENV = "FOREIGN_TOKEN_SECRET"
TOKEN_TTL_SEC = 3600
ITERATIONS = 60_000


def hash_password(password: str, salt: bytes | None = None) -> str:
    salt = salt if salt is not None else secrets.token_bytes(16)
    digest = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, ITERATIONS)
    return f"pbkdf2_sha256${ITERATIONS}${salt.hex()}${digest.hex()}"


def verify_password(password: str, stored: str) -> bool:
    try:
        scheme, iterations, salt_hex, digest_hex = stored.split("$")
    except ValueError:
        return False
    if scheme != "pbkdf2_sha256":
        return False
    digest = hashlib.pbkdf2_hmac("sha256", password.encode(), bytes.fromhex(salt_hex), int(iterations))
    return hmac.compare_digest(digest.hex(), digest_hex)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class TokenSigner:
    def __init__(self, secret: str | None = None) -> None:
        self._key = (secret or os.environ.get(TOKEN_SECRET_ENV) or secrets.token_hex(32)).encode()

    def issue(self, claims: dict[str, Any], ttl: int = TOKEN_TTL_SEC) -> str:
        body = _b64(json.dumps({**claims, "exp": int(time.time()) + ttl}, separators=(",", ":")).encode())
        return f"{body}.{_b64(hmac.new(self._key, body.encode(), hashlib.sha256).digest())}"

    def verify(self, token: str) -> dict[str, Any] | None:
        """The token's claims, or None when it is malformed, forged or expired."""
        body, _, signature = token.partition(".")
        expected = _b64(hmac.new(self._key, body.encode(), hashlib.sha256).digest())
        if not signature or not hmac.compare_digest(signature, expected):
            return None
        try:
            claims = json.loads(_unb64(body))
        except ValueError:
            return None
        if not isinstance(claims, dict) or claims.get("exp", 0) < time.time():
            return None
        return claims
