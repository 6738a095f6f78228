"""Passwords and bearer tokens of the reference ARIS3 service.

Passwords are hashed with Argon2id (argon2-cffi). Seeded accounts are hashed with a salt
derived from the seed, so the same seed gives byte-identical data, and with lighter
parameters so that seeding thousands of accounts stays fast; ``needs_rehash`` tells the
service to upgrade such a hash to the full parameters on the account's next login.

Tokens are HS256 JSON Web Tokens (PyJWT) carrying the user, tenant and role, and expire.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import time
import uuid
from dataclasses import dataclass

import jwt
from argon2 import PasswordHasher, low_level
from argon2.exceptions import InvalidHashError, VerificationError

#: Argon2id parameters for seeded demo accounts (deterministic salt, fast to compute).
SEED_TIME_COST = 1
SEED_MEMORY_COST_KIB = 1024
#: The library's default parameters (RFC 9106's low-memory profile): ~0.1 s per hash or check.
STANDARD_HASHER = PasswordHasher()
#: The seed's parameters, for a service over a throwaway database (the embedded target, deleted
#: with its run, seeded with published passwords): a login there neither checks nor upgrades a
#: hash at full cost, which protects nothing on such a database and took ~0.4 s of each gate.
LIGHT_HASHER = PasswordHasher(
    time_cost=SEED_TIME_COST, memory_cost=SEED_MEMORY_COST_KIB, parallelism=1, hash_len=32, salt_len=16
)
TOKEN_ALGORITHM = "HS256"
TOKEN_ISSUER = "aris3-reference"
#: How many verified tokens' claims are remembered (each ~1 KB): a caller's token is verified
#: once, then only its expiry is checked on each request.
VERIFIED_TOKENS_KEPT = 1024


def hash_password(password: str, hasher: PasswordHasher = STANDARD_HASHER) -> str:
    """An Argon2id hash with a random salt and ``hasher``'s parameters."""
    return hasher.hash(password)


def hash_seed_password(password: str, salt_source: str) -> str:
    """A reproducible Argon2id hash for seeded accounts: same inputs, same text."""
    salt = hashlib.sha256(salt_source.encode()).digest()[:16]
    encoded = low_level.hash_secret(
        password.encode(),
        salt,
        time_cost=SEED_TIME_COST,
        memory_cost=SEED_MEMORY_COST_KIB,
        parallelism=1,
        hash_len=32,
        type=low_level.Type.ID,
    )
    return encoded.decode()


def verify_password(password_hash: str, password: str) -> bool:
    """Whether ``password`` matches (checked with the parameters the hash carries)."""
    try:
        return STANDARD_HASHER.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def needs_rehash(password_hash: str, hasher: PasswordHasher = STANDARD_HASHER) -> bool:
    """Whether the hash was made with other parameters than ``hasher``'s."""
    try:
        return hasher.check_needs_rehash(password_hash)
    except InvalidHashError:
        return True


class InvalidToken(Exception):
    """The bearer token is malformed, forged or expired (``reason`` says which)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class TokenClaims:
    user_id: uuid.UUID
    tenant_id: uuid.UUID
    role: str
    expires_at: dt.datetime


def issue_token(
    secret: str, *, user_id: uuid.UUID, tenant_id: uuid.UUID, role: str, ttl_sec: int, now: dt.datetime | None = None
) -> tuple[str, dt.datetime]:
    """A signed token and the moment it expires."""
    issued = now or dt.datetime.now(dt.UTC)
    expires = issued + dt.timedelta(seconds=ttl_sec)
    payload = {
        "iss": TOKEN_ISSUER,
        "sub": str(user_id),
        "tid": str(tenant_id),
        "role": role,
        "iat": int(issued.timestamp()),
        "exp": int(expires.timestamp()),
        "jti": uuid.uuid4().hex,
    }
    return jwt.encode(payload, secret, algorithm=TOKEN_ALGORITHM), expires


def decode_token(secret: str, token: str) -> TokenClaims:
    """The claims of ``token`` if it is signed with ``secret`` and has not expired;
    ``InvalidToken`` otherwise. A token's signature and claims are verified once (the result
    is remembered; a refused token never is); its expiry is checked on every call."""
    claims = _verified_claims(secret, token)
    if claims.expires_at.timestamp() <= time.time():  # as PyJWT judges ``exp`` (no leeway)
        raise InvalidToken("token expired")
    return claims


@functools.lru_cache(maxsize=VERIFIED_TOKENS_KEPT)
def _verified_claims(secret: str, token: str) -> TokenClaims:
    try:
        payload = jwt.decode(
            token,
            secret,
            algorithms=[TOKEN_ALGORITHM],
            issuer=TOKEN_ISSUER,
            options={"require": ["exp", "iat", "sub", "tid", "role", "iss"]},
        )
        return TokenClaims(
            user_id=uuid.UUID(payload["sub"]),
            tenant_id=uuid.UUID(payload["tid"]),
            role=str(payload["role"]),
            expires_at=dt.datetime.fromtimestamp(payload["exp"], dt.UTC),
        )
    except jwt.ExpiredSignatureError as exc:
        raise InvalidToken("token expired") from exc
    except (jwt.InvalidTokenError, ValueError, TypeError) as exc:
        raise InvalidToken("token invalid") from exc
