"""POS sales: a DRAFT reserves its items; CHECKOUT takes payments and sells them (PAID),
CANCEL releases them (CANCELED).

Checkout rules: the payments must cover the total (422 PAYMENT_INSUFFICIENT); paying more
is only possible with cash, and the change given back may not exceed the cash tendered;
any cash needs an OPEN cash session in the sale's store (409 CASH_SESSION_REQUIRED), to
which the cash kept (tendered minus change) is booked as a SALE movement.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any, Literal

import sqlalchemy as sa
from fastapi import APIRouter
from sqlalchemy.orm import Session

from aris3nb.contract import models as m
from aris3nb.reference.api_cash_sessions import open_cash_session
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
from aris3nb.reference.inventory import lock_tenant_items, reserve_available, unavailable_reason
from aris3nb.reference.money import ZERO, money
from aris3nb.reference.schemas import PaymentIn, SaleActionBody, SaleCreateBody
from aris3nb.reference.views import sale_view

router = APIRouter(prefix="/aris3/pos/sales", tags=["pos"])


def _load_sale(session: Session, caller: Caller, sale_id: uuid.UUID, *, for_update: bool) -> m.Sale:
    query = sa.select(m.Sale).where(m.Sale.id == sale_id, m.Sale.tenant_id == caller.tenant_id)
    sale = session.scalar(locked(query) if for_update else query)
    if sale is None:
        raise not_found("sale")
    caller.require_store(sale.store_id)
    return sale


def _lines(session: Session, sale_id: uuid.UUID) -> list[m.SaleLine]:
    return list(session.scalars(sa.select(m.SaleLine).where(m.SaleLine.sale_id == sale_id).order_by(m.SaleLine.id)))


def _payments(session: Session, sale_id: uuid.UUID) -> list[m.Payment]:
    return list(session.scalars(sa.select(m.Payment).where(m.Payment.sale_id == sale_id).order_by(m.Payment.id)))


@router.post("", status_code=201)
def create_sale(
    body: SaleCreateBody, session: DbSession, caller: Annotated[Caller, require_roles(*POS_USERS)]
) -> dict[str, Any]:
    store = tenant_store(session, caller, body.store_id)
    items = reserve_available(session, caller.tenant_id, store.id, [line.stock_item_id for line in body.lines])
    too_large = [
        line.stock_item_id for line, item in zip(body.lines, items, strict=True) if line.discount > item.sale_price
    ]
    if too_large:
        raise ApiError(
            422, "DISCOUNT_EXCEEDS_PRICE", "a discount may not exceed the item's price", {"stock_item_ids": too_large}
        )
    now = m.utcnow()
    lines = [
        m.SaleLine(
            stock_item_id=item.id,
            sku=item.sku,
            unit_price=item.sale_price,
            discount=line.discount,
            line_total=item.sale_price - line.discount,
        )
        for line, item in zip(body.lines, items, strict=True)
    ]
    subtotal = sum((line.unit_price for line in lines), ZERO)
    discount_total = sum((line.discount for line in lines), ZERO)
    sale = m.Sale(
        id=uuid.uuid4(),
        tenant_id=caller.tenant_id,
        store_id=store.id,
        status="DRAFT",
        created_by=caller.user_id,
        subtotal=subtotal,
        discount_total=discount_total,
        total=subtotal - discount_total,
        created_at=now,
        updated_at=now,
    )
    session.add(sale)
    session.flush()
    for line in lines:
        line.sale_id = sale.id
    session.add_all(lines)
    record_audit(
        session,
        tenant_id=caller.tenant_id,
        actor_id=caller.user_id,
        trace_id=caller.trace_id,
        action="sale.create",
        entity_type="sale",
        entity_id=sale.id,
        details={"total": money(sale.total)},
    )
    session.commit()
    return sale_view(sale, lines, [])


@router.get("")
def list_sales(
    session: DbSession,
    caller: Annotated[Caller, require_roles(*POS_USERS)],
    paging: PagingParams,
    store_id: uuid.UUID | None = None,
    status: Literal["DRAFT", "PAID", "CANCELED"] | None = None,
) -> dict[str, Any]:
    query = sa.select(m.Sale).where(m.Sale.tenant_id == caller.tenant_id)
    if (store := caller.store_filter(store_id)) is not None:
        query = query.where(m.Sale.store_id == store)
    if status is not None:
        query = query.where(m.Sale.status == status)
    return paged(session, query, paging, (m.Sale.created_at.desc(), m.Sale.id), sale_view)


@router.get("/{sale_id}")
def get_sale(
    sale_id: uuid.UUID, session: DbSession, caller: Annotated[Caller, require_roles(*POS_USERS)]
) -> dict[str, Any]:
    sale = _load_sale(session, caller, sale_id, for_update=False)
    return sale_view(sale, _lines(session, sale.id), _payments(session, sale.id))


@router.post("/{sale_id}/actions")
def sale_action(
    sale_id: uuid.UUID, body: SaleActionBody, session: DbSession, caller: Annotated[Caller, require_roles(*POS_USERS)]
) -> dict[str, Any]:
    sale = _load_sale(session, caller, sale_id, for_update=True)
    if sale.status != "DRAFT":
        raise invalid_transition("sale", sale.status, body.action.lower())
    lines = _lines(session, sale.id)
    now = m.utcnow()
    if body.action == "CHECKOUT":
        payments = _checkout(session, caller, sale, lines, body.payments or [], now)
    else:
        payments = []
        sale.status, sale.canceled_at = "CANCELED", now
    sale.updated_at = now
    record_audit(
        session,
        tenant_id=caller.tenant_id,
        actor_id=caller.user_id,
        trace_id=caller.trace_id,
        action=f"sale.{body.action.lower()}",
        entity_type="sale",
        entity_id=sale.id,
        details={"status": sale.status, "total": money(sale.total)},
    )
    session.commit()
    return sale_view(sale, lines, payments)


def _settle(total: Any, payments: list[PaymentIn]) -> tuple[Any, Any]:
    """(cash tendered, change due) for ``payments`` against ``total``; 422 when they do not settle it."""
    paid = sum((p.amount for p in payments), ZERO)
    cash = sum((p.amount for p in payments if p.method == "CASH"), ZERO)
    if paid < total:
        raise ApiError(
            422,
            "PAYMENT_INSUFFICIENT",
            "the payments do not cover the total",
            {"total": money(total), "paid": money(paid), "missing": money(total - paid)},
        )
    change = paid - total
    if change > cash:
        raise ApiError(
            422,
            "OVERPAYMENT_NOT_ALLOWED",
            "payments may exceed the total only by cash, and change cannot exceed the cash tendered",
            {"total": money(total), "paid": money(paid), "cash": money(cash)},
        )
    return cash, change


def _checkout(
    session: Session, caller: Caller, sale: m.Sale, lines: list[m.SaleLine], payments: list[PaymentIn], now: Any
) -> list[m.Payment]:
    cash, change = _settle(sale.total, payments)
    till = None
    if cash > ZERO:
        till = open_cash_session(session, sale.tenant_id, sale.store_id)
        if till is None:
            raise ApiError(
                409,
                "CASH_SESSION_REQUIRED",
                "cash payments need an open cash session in the sale's store",
                {"store_id": str(sale.store_id)},
            )
    items = lock_tenant_items(session, sale.tenant_id, [line.stock_item_id for line in lines])
    problems = [
        {"stock_item_id": item.id, "reason": reason}
        for item in items.values()
        if (reason := unavailable_reason(item, sale.store_id))
    ]
    if problems:
        raise ApiError(409, "STOCK_NOT_AVAILABLE", "some stock items can no longer be sold", {"items": problems})
    for item in items.values():
        item.status, item.sellable, item.updated_at = "SOLD", False, now
    rows = [m.Payment(sale_id=sale.id, method=p.method, amount=p.amount, created_at=now) for p in payments]
    session.add_all(rows)
    if till is not None:
        sale.cash_session_id = till.id
        session.add(
            m.CashMovement(cash_session_id=till.id, sale_id=sale.id, kind="SALE", amount=cash - change, created_at=now)
        )
    sale.status, sale.paid_at = "PAID", now
    return rows
