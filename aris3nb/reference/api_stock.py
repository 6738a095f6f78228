"""Stock: the filtered, paged listing with totals aggregated in SQL, and stock intake."""

from __future__ import annotations

import uuid
from typing import Annotated, Any, Literal

import sqlalchemy as sa
from fastapi import APIRouter, Query

from aris3nb.contract import models as m
from aris3nb.reference.audit import record_audit
from aris3nb.reference.dependencies import (
    STOCK_READERS,
    STOCK_WRITERS,
    Caller,
    DbSession,
    PagingParams,
    require_roles,
    tenant_store,
)
from aris3nb.reference.envelope import ApiError
from aris3nb.reference.schemas import PRINTABLE, StockIntakeBody
from aris3nb.reference.views import page_meta, stock_item_view

router = APIRouter(prefix="/aris3/stock", tags=["stock"])


def _status_count(value: str) -> sa.ColumnElement[Any]:
    return sa.func.coalesce(sa.func.sum(sa.case((m.StockItem.status == value, 1), else_=0)), 0)


#: A listing's totals per store, built once: what varies per request is only the WHERE clause.
_TOTALS_BY_STORE = (m.StockItem.store_id, sa.func.count(), _status_count("RFID"), _status_count("PENDING"))


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


@router.get("")
def list_stock(
    session: DbSession,
    caller: Annotated[Caller, require_roles(*STOCK_READERS)],
    paging: PagingParams,
    store_id: uuid.UUID | None = None,
    status: Annotated[Literal["RFID", "PENDING", "IN_TRANSIT", "SOLD"] | None, Query()] = None,
    sku: Annotated[str | None, Query(min_length=1, max_length=64, pattern=PRINTABLE)] = None,
    q: Annotated[str | None, Query(min_length=1, max_length=100, pattern=PRINTABLE)] = None,
    sellable: bool | None = None,
) -> dict[str, Any]:
    stock = m.StockItem
    conditions: list[sa.ColumnElement[bool]] = [stock.tenant_id == caller.tenant_id]
    scoped_store = caller.store_filter(store_id)
    if scoped_store is not None:
        conditions.append(stock.store_id == scoped_store)
    if status is not None:
        conditions.append(stock.status == status)
    if sku is not None:
        conditions.append(stock.sku == sku)
    if q is not None:
        pattern = f"%{_escape_like(q.lower())}%"
        conditions.append(
            sa.or_(
                *(sa.func.lower(col).like(pattern, escape="\\") for col in (stock.sku, stock.description, stock.epc))
            )
        )
    if sellable is not None:
        conditions.append(stock.sellable == sellable)

    by_store = session.execute(
        sa.select(*_TOTALS_BY_STORE).where(*conditions).group_by(stock.store_id).order_by(stock.store_id)
    ).all()
    totals_by_store: list[dict[str, Any]] = [
        {
            "store_id": str(store),
            "total_rows": int(rows),
            "total_rfid": int(rfid),
            "total_pending": int(pending),
            "total_units": int(rfid) + int(pending),
        }
        for store, rows, rfid, pending in by_store
    ]
    totals = {
        key: sum(t[key] for t in totals_by_store)
        for key in ("total_rows", "total_rfid", "total_pending", "total_units")
    }
    rows = session.scalars(
        sa.select(stock).where(*conditions).order_by(stock.id).offset(paging.offset).limit(paging.page_size)
    )
    return {
        "meta": page_meta(paging.page, paging.page_size, totals["total_rows"]),
        "rows": [stock_item_view(item) for item in rows],
        "totals": {**totals, "totals_by_store": totals_by_store},
    }


@router.post("", status_code=201)
def intake_stock(
    body: StockIntakeBody,
    session: DbSession,
    caller: Annotated[Caller, require_roles(*STOCK_WRITERS)],
) -> Any:
    store = tenant_store(session, caller, body.store_id)
    epcs = [item.epc for item in body.items]
    taken = sorted(
        session.scalars(
            sa.select(m.StockItem.epc).where(m.StockItem.tenant_id == caller.tenant_id, m.StockItem.epc.in_(epcs))
        )
    )
    if taken:
        raise ApiError(409, "EPC_CONFLICT", "some EPCs are already registered", {"epcs": taken})
    now = m.utcnow()
    items = [
        m.StockItem(
            tenant_id=caller.tenant_id,
            store_id=store.id,
            sku=item.sku,
            description=item.description,
            epc=item.epc,
            status=item.status,
            location_code=item.location_code,
            sellable=True,
            cost_price=item.cost_price,
            sale_price=item.sale_price,
            created_at=now,
            updated_at=now,
        )
        for item in body.items
    ]
    session.add_all(items)
    try:
        session.flush()
    except sa.exc.IntegrityError as exc:
        # Another intake registered one of these EPCs since the check above.
        raise ApiError(409, "EPC_CONFLICT", "some EPCs are already registered", {"epcs": epcs}) from exc
    record_audit(
        session,
        tenant_id=caller.tenant_id,
        actor_id=caller.user_id,
        trace_id=caller.trace_id,
        action="stock.intake",
        entity_type="store",
        entity_id=store.id,
        details={"stock_item_ids": [item.id for item in items]},
    )
    session.commit()
    return {"store_id": str(store.id), "rows": [stock_item_view(item) for item in items]}
