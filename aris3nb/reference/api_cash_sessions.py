"""Cash sessions (a till's day): open with a float, take cash sales, close with a count.

At most one session per store is OPEN. Closing computes the expected cash (float plus the
session's cash sales) and books any difference to the count as a CLOSING_ADJUSTMENT.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any, Literal

import sqlalchemy as sa
from fastapi import APIRouter
from sqlalchemy.orm import Session

from aris3nb.contract import models as m
from aris3nb.reference.audit import record_audit
from aris3nb.reference.database import locked
from aris3nb.reference.dependencies import (
    POS_USERS,
    Caller,
    DbSession,
    PagingParams,
    paged,
    require_roles,
    tenant_store,
)
from aris3nb.reference.envelope import ApiError, invalid_transition, not_found
from aris3nb.reference.money import ZERO, from_cents, sum_cents
from aris3nb.reference.schemas import CashSessionCloseBody, CashSessionOpenBody
from aris3nb.reference.views import cash_session_view

router = APIRouter(prefix="/aris3/pos/cash-sessions", tags=["pos"])


def open_cash_session(session: Session, tenant_id: uuid.UUID, store_id: uuid.UUID) -> m.CashSession | None:
    """The store's OPEN cash session, locked so it cannot close under a sale being booked to it."""
    return session.scalar(
        locked(
            sa.select(m.CashSession)
            .where(
                m.CashSession.tenant_id == tenant_id, m.CashSession.store_id == store_id, m.CashSession.status == "OPEN"
            )
            .order_by(m.CashSession.opened_at.desc())
            .limit(1)
        )
    )


@router.post("", status_code=201)
def open_session(
    body: CashSessionOpenBody, session: DbSession, caller: Annotated[Caller, require_roles(*POS_USERS)]
) -> dict[str, Any]:
    store = tenant_store(session, caller, body.store_id)
    # Lock the store row: two concurrent opens for one store queue here on PostgreSQL.
    session.execute(locked(sa.select(m.Store.id).where(m.Store.id == store.id)))
    existing = open_cash_session(session, caller.tenant_id, store.id)
    if existing is not None:
        raise ApiError(
            409,
            "CASH_SESSION_ALREADY_OPEN",
            "this store already has an open cash session",
            {"cash_session_id": str(existing.id)},
        )
    now = m.utcnow()
    cash = m.CashSession(
        id=uuid.uuid4(),
        tenant_id=caller.tenant_id,
        store_id=store.id,
        cashier_id=caller.user_id,
        status="OPEN",
        opening_amount=body.opening_amount,
        opened_at=now,
    )
    session.add(cash)
    session.flush()
    session.add(m.CashMovement(cash_session_id=cash.id, kind="OPENING", amount=body.opening_amount, created_at=now))
    record_audit(
        session,
        tenant_id=caller.tenant_id,
        actor_id=caller.user_id,
        trace_id=caller.trace_id,
        action="cash_session.open",
        entity_type="cash_session",
        entity_id=cash.id,
        details={"opening_amount": str(body.opening_amount)},
    )
    session.commit()
    return cash_session_view(cash)


@router.get("")
def list_sessions(
    session: DbSession,
    caller: Annotated[Caller, require_roles(*POS_USERS)],
    paging: PagingParams,
    store_id: uuid.UUID | None = None,
    status: Literal["OPEN", "CLOSED"] | None = None,
) -> dict[str, Any]:
    query = sa.select(m.CashSession).where(m.CashSession.tenant_id == caller.tenant_id)
    if (store := caller.store_filter(store_id)) is not None:
        query = query.where(m.CashSession.store_id == store)
    if status is not None:
        query = query.where(m.CashSession.status == status)
    return paged(session, query, paging, (m.CashSession.opened_at.desc(), m.CashSession.id), cash_session_view)


@router.post("/{session_id}/close")
def close_session(
    session_id: uuid.UUID,
    body: CashSessionCloseBody,
    session: DbSession,
    caller: Annotated[Caller, require_roles(*POS_USERS)],
) -> dict[str, Any]:
    cash = session.scalar(
        locked(
            sa.select(m.CashSession).where(m.CashSession.id == session_id, m.CashSession.tenant_id == caller.tenant_id)
        )
    )
    if cash is None:
        raise not_found("cash session")
    caller.require_store(cash.store_id)
    if cash.status != "OPEN":
        raise invalid_transition("cash session", cash.status, "close")
    cash_sales = from_cents(
        session.scalar(
            sa.select(sum_cents(m.CashMovement.amount)).where(
                m.CashMovement.cash_session_id == cash.id, m.CashMovement.kind == "SALE"
            )
        )
    )
    now = m.utcnow()
    cash.expected_amount = cash.opening_amount + cash_sales
    cash.counted_amount = body.counted_amount
    cash.status, cash.closed_at = "CLOSED", now
    difference = body.counted_amount - cash.expected_amount
    if difference != ZERO:
        session.add(
            m.CashMovement(cash_session_id=cash.id, kind="CLOSING_ADJUSTMENT", amount=difference, created_at=now)
        )
    record_audit(
        session,
        tenant_id=caller.tenant_id,
        actor_id=caller.user_id,
        trace_id=caller.trace_id,
        action="cash_session.close",
        entity_type="cash_session",
        entity_id=cash.id,
        details={"expected_amount": str(cash.expected_amount), "counted_amount": str(body.counted_amount)},
    )
    session.commit()
    return cash_session_view(cash)
