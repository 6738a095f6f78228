"""Which stock items may be committed to a new transfer or sale.

An item is available when it belongs to the tenant, stands in the expected store, is on
hand (RFID or PENDING) and sellable, and is not already held by an open transfer (DRAFT,
DISPATCHED, PARTIAL_RECEIVED with the item still planned or in transit) or a DRAFT sale.
Transfers and sales both reserve items through here, so neither can take what the other holds.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence

import sqlalchemy as sa
from sqlalchemy.orm import Session

from aris3nb.contract import models as m
from aris3nb.reference.database import locked
from aris3nb.reference.envelope import ApiError

OPEN_TRANSFER_STATUSES = ("DRAFT", "DISPATCHED", "PARTIAL_RECEIVED")
HOLDING_LINE_STATUSES = ("PLANNED", "IN_TRANSIT")


def lock_tenant_items(session: Session, tenant_id: uuid.UUID, item_ids: Sequence[int]) -> dict[int, m.StockItem]:
    """The tenant's items among ``item_ids``, locked for update; 404 naming any missing one.

    Another tenant's item is reported exactly like one that does not exist.
    """
    items = {
        item.id: item
        for item in session.scalars(
            locked(
                sa.select(m.StockItem)
                .where(m.StockItem.tenant_id == tenant_id, m.StockItem.id.in_(item_ids))
                .order_by(m.StockItem.id)
            )
        )
    }
    missing = [item_id for item_id in item_ids if item_id not in items]
    if missing:
        raise ApiError(404, "NOT_FOUND", "stock item not found", {"stock_item_ids": missing})
    return items


def held_item_ids(session: Session, item_ids: Sequence[int]) -> set[int]:
    """Those of ``item_ids`` held by an open transfer or a draft sale."""
    on_transfers = (
        sa.select(m.TransferLine.stock_item_id)
        .join(m.Transfer, m.Transfer.id == m.TransferLine.transfer_id)
        .where(
            m.TransferLine.stock_item_id.in_(item_ids),
            m.TransferLine.status.in_(HOLDING_LINE_STATUSES),
            m.Transfer.status.in_(OPEN_TRANSFER_STATUSES),
        )
    )
    on_sales = (
        sa.select(m.SaleLine.stock_item_id)
        .join(m.Sale, m.Sale.id == m.SaleLine.sale_id)
        .where(m.SaleLine.stock_item_id.in_(item_ids), m.Sale.status == "DRAFT")
    )
    return set(session.scalars(sa.union(on_transfers, on_sales)))


def reserve_available(
    session: Session, tenant_id: uuid.UUID, store_id: uuid.UUID, item_ids: Sequence[int]
) -> list[m.StockItem]:
    """The items, locked, in request order; 409 STOCK_NOT_AVAILABLE naming each one that is not."""
    items = lock_tenant_items(session, tenant_id, item_ids)
    problems = {item_id: problem for item_id in item_ids if (problem := unavailable_reason(items[item_id], store_id))}
    for item_id in held_item_ids(session, item_ids):
        problems.setdefault(item_id, "held by an open transfer or a draft sale")
    if problems:
        raise ApiError(
            409,
            "STOCK_NOT_AVAILABLE",
            "some stock items are not available",
            {"items": [{"stock_item_id": i, "reason": r} for i, r in sorted(problems.items())]},
        )
    return [items[item_id] for item_id in item_ids]


def unavailable_reason(item: m.StockItem, store_id: uuid.UUID) -> str | None:
    """Why ``item`` cannot leave ``store_id`` now, or None when it can."""
    if item.store_id != store_id:
        return "not in the store"
    if item.status not in m.SELLABLE_STATUSES:
        return f"status is {item.status}"
    if not item.sellable:
        return "not sellable"
    return None
