"""The audit trail: every mutating action adds one AuditEvent in the same transaction as
the change it describes, so an action and its record are committed (or lost) together.
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy.orm import Session

from aris3nb.contract import models as m


def record_audit(
    session: Session,
    *,
    tenant_id: uuid.UUID,
    actor_id: uuid.UUID | None,
    trace_id: str,
    action: str,
    entity_type: str,
    entity_id: object,
    details: dict[str, Any] | None = None,
) -> None:
    session.add(
        m.AuditEvent(
            tenant_id=tenant_id,
            actor_id=actor_id,
            action=action,
            entity_type=entity_type,
            entity_id=str(entity_id),
            trace_id=trace_id,
            details=details or {},
            created_at=m.utcnow(),
        )
    )
