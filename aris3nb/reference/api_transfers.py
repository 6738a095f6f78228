"""Transfers of stock between two stores of a tenant and their state machine:

    DRAFT ──dispatch──▶ DISPATCHED ──receive (some)──▶ PARTIAL_RECEIVED ──receive (rest)──▶ RECEIVED
      │                    │  └──────────receive (all)───────────────────────────────────▲
      └──cancel──▶ CANCELED ◀──cancel (in-transit items return to the origin)──┘

Dispatch puts the items IN_TRANSIT (not sellable); receiving puts them in the destination
with the status they left with; canceling after dispatch returns them to the origin. Each
item movement is recorded as a TransferMovement, each action as an AuditEvent. A store-
scoped user dispatches and cancels from their store and receives into it.
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
    TRANSFER_READERS,
    TRANSFER_WRITERS,
    Caller,
    DbSession,
    PagingParams,
    paged,
    require_roles,
    tenant_store,
)
from aris3nb.reference.envelope import ApiError, forbidden, invalid_transition, not_found
from aris3nb.reference.inventory import reserve_available, unavailable_reason
from aris3nb.reference.schemas import TransferActionBody, TransferCreateBody
from aris3nb.reference.views import transfer_view

router = APIRouter(prefix="/aris3/transfers", tags=["transfers"])

TransferStatus = Literal["DRAFT", "DISPATCHED", "PARTIAL_RECEIVED", "RECEIVED", "CANCELED"]


def _involves_caller_store(caller: Caller) -> sa.ColumnElement[bool] | None:
    if caller.store_id is None:
        return None
    return sa.or_(m.Transfer.origin_store_id == caller.store_id, m.Transfer.destination_store_id == caller.store_id)


def _load_transfer(session: Session, caller: Caller, transfer_id: uuid.UUID, *, for_update: bool) -> m.Transfer:
    query = sa.select(m.Transfer).where(m.Transfer.id == transfer_id, m.Transfer.tenant_id == caller.tenant_id)
    if for_update:
        query = locked(query)
    transfer = session.scalar(query)
    if transfer is None:
        raise not_found("transfer")
    if caller.store_id is not None and caller.store_id not in (transfer.origin_store_id, transfer.destination_store_id):
        raise forbidden("your account is limited to its own store")
    return transfer


def _lines(session: Session, transfer_id: uuid.UUID) -> list[m.TransferLine]:
    return list(
        session.scalars(
            sa.select(m.TransferLine).where(m.TransferLine.transfer_id == transfer_id).order_by(m.TransferLine.id)
        )
    )


@router.post("", status_code=201)
def create_transfer(
    body: TransferCreateBody, session: DbSession, caller: Annotated[Caller, require_roles(*TRANSFER_WRITERS)]
) -> dict[str, Any]:
    origin = tenant_store(session, caller, body.origin_store_id)
    destination = session.scalar(
        sa.select(m.Store).where(m.Store.id == body.destination_store_id, m.Store.tenant_id == caller.tenant_id)
    )
    if destination is None:
        raise not_found("destination store")
    items = reserve_available(session, caller.tenant_id, origin.id, body.stock_item_ids)
    now = m.utcnow()
    transfer = m.Transfer(
        id=uuid.uuid4(),
        tenant_id=caller.tenant_id,
        origin_store_id=origin.id,
        destination_store_id=destination.id,
        status="DRAFT",
        created_by=caller.user_id,
        created_at=now,
        updated_at=now,
    )
    session.add(transfer)
    session.flush()
    lines = [
        m.TransferLine(transfer_id=transfer.id, stock_item_id=item.id, status="PLANNED", origin_status=item.status)
        for item in items
    ]
    session.add_all(lines)
    record_audit(
        session,
        tenant_id=caller.tenant_id,
        actor_id=caller.user_id,
        trace_id=caller.trace_id,
        action="transfer.create",
        entity_type="transfer",
        entity_id=transfer.id,
        details={"stock_item_ids": list(body.stock_item_ids)},
    )
    session.commit()
    return transfer_view(transfer, lines)


@router.get("")
def list_transfers(
    session: DbSession,
    caller: Annotated[Caller, require_roles(*TRANSFER_READERS)],
    paging: PagingParams,
    status: TransferStatus | None = None,
    store_id: uuid.UUID | None = None,
) -> dict[str, Any]:
    query = sa.select(m.Transfer).where(m.Transfer.tenant_id == caller.tenant_id)
    if (scope := _involves_caller_store(caller)) is not None:
        query = query.where(scope)
    if store_id is not None:
        caller.require_store(store_id)
        query = query.where(sa.or_(m.Transfer.origin_store_id == store_id, m.Transfer.destination_store_id == store_id))
    if status is not None:
        query = query.where(m.Transfer.status == status)
    return paged(session, query, paging, (m.Transfer.created_at.desc(), m.Transfer.id), transfer_view)


@router.get("/{transfer_id}")
def get_transfer(
    transfer_id: uuid.UUID, session: DbSession, caller: Annotated[Caller, require_roles(*TRANSFER_READERS)]
) -> dict[str, Any]:
    transfer = _load_transfer(session, caller, transfer_id, for_update=False)
    return transfer_view(transfer, _lines(session, transfer.id))


@router.post("/{transfer_id}/actions")
def transfer_action(
    transfer_id: uuid.UUID,
    body: TransferActionBody,
    session: DbSession,
    caller: Annotated[Caller, require_roles(*TRANSFER_WRITERS)],
) -> dict[str, Any]:
    transfer = _load_transfer(session, caller, transfer_id, for_update=True)
    # The side that acts: the origin sends and takes back, the destination receives.
    caller.require_store(transfer.destination_store_id if body.action == "receive" else transfer.origin_store_id)
    lines = _lines(session, transfer.id)
    items = _lock_items(session, [line.stock_item_id for line in lines])
    now = m.utcnow()
    if body.action == "dispatch":
        moved = _dispatch(session, caller, transfer, lines, items, now)
    elif body.action == "receive":
        moved = _receive(session, caller, transfer, lines, items, body.stock_item_ids, now)
    else:
        moved = _cancel(session, caller, transfer, lines, items, now)
    transfer.updated_at = now
    record_audit(
        session,
        tenant_id=caller.tenant_id,
        actor_id=caller.user_id,
        trace_id=caller.trace_id,
        action=f"transfer.{body.action}",
        entity_type="transfer",
        entity_id=transfer.id,
        details={"stock_item_ids": moved, "status": transfer.status},
    )
    session.commit()
    return transfer_view(transfer, lines)


def _lock_items(session: Session, item_ids: list[int]) -> dict[int, m.StockItem]:
    query = locked(sa.select(m.StockItem).where(m.StockItem.id.in_(item_ids)).order_by(m.StockItem.id))
    return {item.id: item for item in session.scalars(query)}


def _movement(
    session: Session,
    caller: Caller,
    transfer: m.Transfer,
    line: m.TransferLine,
    kind: str,
    from_store: uuid.UUID | None,
    to_store: uuid.UUID | None,
    now: Any,
) -> None:
    session.add(
        m.TransferMovement(
            transfer_id=transfer.id,
            transfer_line_id=line.id,
            stock_item_id=line.stock_item_id,
            kind=kind,
            from_store_id=from_store,
            to_store_id=to_store,
            actor_id=caller.user_id,
            created_at=now,
        )
    )


def _dispatch(
    session: Session,
    caller: Caller,
    transfer: m.Transfer,
    lines: list[m.TransferLine],
    items: dict[int, m.StockItem],
    now: Any,
) -> list[int]:
    if transfer.status != "DRAFT":
        raise invalid_transition("transfer", transfer.status, "dispatch")
    problems = [
        {"stock_item_id": line.stock_item_id, "reason": reason}
        for line in lines
        if (reason := unavailable_reason(items[line.stock_item_id], transfer.origin_store_id))
    ]
    if problems:
        raise ApiError(409, "STOCK_NOT_AVAILABLE", "some stock items can no longer be dispatched", {"items": problems})
    for line in lines:
        item = items[line.stock_item_id]
        line.status, line.origin_status = "IN_TRANSIT", item.status
        item.status, item.sellable, item.updated_at = "IN_TRANSIT", False, now
        _movement(session, caller, transfer, line, "DISPATCH", transfer.origin_store_id, None, now)
    transfer.status, transfer.dispatched_at = "DISPATCHED", now
    return [line.stock_item_id for line in lines]


def _receive(
    session: Session,
    caller: Caller,
    transfer: m.Transfer,
    lines: list[m.TransferLine],
    items: dict[int, m.StockItem],
    requested: list[int] | None,
    now: Any,
) -> list[int]:
    if transfer.status not in ("DISPATCHED", "PARTIAL_RECEIVED"):
        raise invalid_transition("transfer", transfer.status, "receive")
    in_transit = {line.stock_item_id: line for line in lines if line.status == "IN_TRANSIT"}
    if requested is None:
        requested = list(in_transit)
    not_in_transit = [item_id for item_id in requested if item_id not in in_transit]
    if not_in_transit:
        raise ApiError(
            409,
            "NOT_IN_TRANSIT",
            "some stock items are not in transit on this transfer",
            {"stock_item_ids": not_in_transit},
        )
    for item_id in requested:
        line, item = in_transit.pop(item_id), items[item_id]
        line.status, line.received_at = "RECEIVED", now
        item.status, item.store_id, item.sellable, item.updated_at = (
            line.origin_status,
            transfer.destination_store_id,
            True,
            now,
        )
        _movement(session, caller, transfer, line, "RECEIVE", None, transfer.destination_store_id, now)
    if in_transit:
        transfer.status = "PARTIAL_RECEIVED"
    else:
        transfer.status, transfer.received_at = "RECEIVED", now
    return requested


def _cancel(
    session: Session,
    caller: Caller,
    transfer: m.Transfer,
    lines: list[m.TransferLine],
    items: dict[int, m.StockItem],
    now: Any,
) -> list[int]:
    if transfer.status not in ("DRAFT", "DISPATCHED", "PARTIAL_RECEIVED"):
        raise invalid_transition("transfer", transfer.status, "cancel")
    returned = []
    for line in lines:
        if line.status != "IN_TRANSIT":
            continue
        item = items[line.stock_item_id]
        line.status = "RETURNED"
        item.status, item.store_id, item.sellable, item.updated_at = (
            line.origin_status,
            transfer.origin_store_id,
            True,
            now,
        )
        _movement(session, caller, transfer, line, "RETURN", None, transfer.origin_store_id, now)
        returned.append(line.stock_item_id)
    transfer.status, transfer.canceled_at = "CANCELED", now
    return returned
