"""Idempotent POSTs (``Idempotency-Key``): the first request with a key is done and its
response remembered; a replay with the same key and the same body gets that response back
(``X-Idempotency-Result: IDEMPOTENCY_REPLAY``) and changes nothing; the same key with a
different body is refused with 409 IDEMPOTENCY_KEY_REUSED. Keys are per tenant and endpoint.
"""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy.orm import Session

from aris3nb.contract import models as m
from aris3nb.reference.envelope import ApiError

HEADER = "Idempotency-Key"
RESULT_HEADER = "X-Idempotency-Result"
REPLAY = "IDEMPOTENCY_REPLAY"
_VALID_KEY = re.compile(r"[\x21-\x7e]{1,128}")


def require_key(value: str | None) -> str:
    """The request's idempotency key; 400 when it is missing or not 1-128 visible ASCII characters."""
    if value is None or value == "":
        raise ApiError(400, "IDEMPOTENCY_KEY_REQUIRED", f"this request needs an {HEADER} header")
    if not _VALID_KEY.fullmatch(value):
        raise ApiError(400, "IDEMPOTENCY_KEY_INVALID", f"{HEADER} must be 1 to 128 visible ASCII characters")
    return value


def request_hash(body: BaseModel) -> str:
    """SHA-256 of the body's canonical JSON (defaults filled in, keys sorted, no spaces)."""
    canonical = json.dumps(body.model_dump(mode="json"), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


@dataclass(frozen=True)
class IdempotentRequest:
    tenant_id: uuid.UUID
    endpoint: str
    key: str
    request_hash: str

    def earlier_response(self, session: Session) -> tuple[int, dict[str, Any]] | None:
        """The response of an earlier request with this key, or None; 409 if its body differed."""
        record = session.scalar(
            sa.select(m.IdempotencyRecord).where(
                m.IdempotencyRecord.tenant_id == self.tenant_id,
                m.IdempotencyRecord.endpoint == self.endpoint,
                m.IdempotencyRecord.idempotency_key == self.key,
            )
        )
        if record is None:
            return None
        if record.request_hash != self.request_hash:
            raise ApiError(
                409,
                "IDEMPOTENCY_KEY_REUSED",
                f"this {HEADER} was already used with a different request body; use a new key",
            )
        return record.response_status, record.response_body

    def remember(self, session: Session, status: int, body: dict[str, Any]) -> None:
        session.add(
            m.IdempotencyRecord(
                tenant_id=self.tenant_id,
                endpoint=self.endpoint,
                idempotency_key=self.key,
                request_hash=self.request_hash,
                response_status=status,
                response_body=body,
                created_at=m.utcnow(),
            )
        )


def replay_response(status: int, body: dict[str, Any]) -> JSONResponse:
    return JSONResponse(body, status_code=status, headers={RESULT_HEADER: REPLAY})
