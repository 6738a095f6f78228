"""The sales overview report: PAID sales of a date range (at most 92 days, inclusive, UTC),
aggregated in SQL (the seed can hold millions of rows), with a breakdown by tender."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import ROUND_HALF_UP
from typing import Annotated, Any

import sqlalchemy as sa
from fastapi import APIRouter, Query

from aris3nb.contract import models as m
from aris3nb.reference.dependencies import REPORT_READERS, Caller, DbSession, require_roles, tenant_store
from aris3nb.reference.envelope import ApiError
from aris3nb.reference.money import ZERO, from_cents, money, sum_cents

router = APIRouter(prefix="/aris3/reports", tags=["reports"])

MAX_RANGE_DAYS = 92
DEFAULT_RANGE_DAYS = 30
#: Dates outside this window are refused (and date arithmetic can never overflow).
EARLIEST, LATEST = dt.date(2000, 1, 1), dt.date(2999, 12, 31)

# The aggregates every overview selects, built once (building them is most of a request's
# Python time): what varies per request is only the WHERE clause.
_SALES_TOTALS = (sum_cents(m.Sale.subtotal), sum_cents(m.Sale.total), sum_cents(m.Sale.discount_total), sa.func.count())
_TENDER_TOTALS = (m.Payment.method, sum_cents(m.Payment.amount), sa.func.count())


def _day_start(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(), tzinfo=dt.UTC)


@router.get("/overview")
def overview(
    session: DbSession,
    caller: Annotated[Caller, require_roles(*REPORT_READERS)],
    store_id: uuid.UUID | None = None,
    date_from: Annotated[dt.date | None, Query(alias="from")] = None,
    date_to: Annotated[dt.date | None, Query(alias="to")] = None,
) -> dict[str, Any]:
    for name, value in (("from", date_from), ("to", date_to)):
        if value is not None and not EARLIEST <= value <= LATEST:
            raise ApiError(
                422, "VALIDATION_ERROR", f"'{name}' must be between {EARLIEST} and {LATEST}", {name: value.isoformat()}
            )
    date_to = date_to or m.utcnow().date()
    date_from = date_from or date_to - dt.timedelta(days=DEFAULT_RANGE_DAYS - 1)
    days = (date_to - date_from).days + 1
    if days < 1:
        raise ApiError(
            422,
            "VALIDATION_ERROR",
            "'from' must not be after 'to'",
            {"from": date_from.isoformat(), "to": date_to.isoformat()},
        )
    if days > MAX_RANGE_DAYS:
        raise ApiError(
            422,
            "VALIDATION_ERROR",
            f"the date range may span at most {MAX_RANGE_DAYS} days, not {days}",
            {"from": date_from.isoformat(), "to": date_to.isoformat(), "max_days": MAX_RANGE_DAYS},
        )
    if store_id is not None:
        tenant_store(session, caller, store_id)  # 404 another tenant's, 403 another of ours
    store = store_id or caller.store_id
    start, end = _day_start(date_from), _day_start(date_to + dt.timedelta(days=1))

    def in_scope(timestamp: Any, status: str) -> list[sa.ColumnElement[bool]]:
        conditions = [
            m.Sale.tenant_id == caller.tenant_id,
            m.Sale.status == status,
            timestamp >= start,
            timestamp < end,
        ]
        if store is not None:
            conditions.append(m.Sale.store_id == store)
        return conditions

    gross, net, discounts, orders = session.execute(
        sa.select(*_SALES_TOTALS).where(*in_scope(m.Sale.paid_at, "PAID"))
    ).one()
    canceled = session.scalar(
        sa.select(sa.func.count()).select_from(m.Sale).where(*in_scope(m.Sale.canceled_at, "CANCELED"))
    )
    tenders = session.execute(
        sa.select(*_TENDER_TOTALS)
        .join(m.Sale, m.Sale.id == m.Payment.sale_id)
        .where(*in_scope(m.Sale.paid_at, "PAID"))
        .group_by(m.Payment.method)
        .order_by(m.Payment.method)
    ).all()
    net_sales = from_cents(net)
    tendered = sum((from_cents(amount) for _, amount, _ in tenders), ZERO)
    average = (net_sales / orders).quantize(m.CENT, rounding=ROUND_HALF_UP) if orders else ZERO
    return {
        "store_id": str(store) if store else None,
        "from": date_from.isoformat(),
        "to": date_to.isoformat(),
        "gross_sales": money(from_cents(gross)),
        "net_sales": money(net_sales),
        "discount_total": money(from_cents(discounts)),
        "order_count": int(orders),
        "average_ticket": money(average),
        "canceled_count": int(canceled or 0),
        "tenders": [
            {"method": method, "amount": money(from_cents(amount)), "count": int(count)}
            for method, amount, count in tenders
        ],
        # Tenders are what customers handed over; the excess over net sales went back as change.
        "change_total": money(tendered - net_sales),
    }
