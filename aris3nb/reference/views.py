"""How rows look in responses: one function per entity, so that an entity reads the same
from every endpoint. Money is a two-decimal string, timestamps ISO 8601 UTC (``Z``), ids
are strings for UUIDs and integers for stock items and lines.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterable
from decimal import Decimal
from typing import Any

from aris3nb.contract import models as m
from aris3nb.reference.money import ZERO, money


def timestamp(value: dt.datetime | None) -> str | None:
    if value is None:
        return None
    return value.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


def page_meta(page: int, page_size: int, total_rows: int) -> dict[str, Any]:
    total_pages = math.ceil(total_rows / page_size) if total_rows else 0
    return {
        "page": page,
        "page_size": page_size,
        "total_rows": total_rows,
        "total_pages": total_pages,
        "has_next": page < total_pages,
    }


def tenant_view(tenant: m.Tenant) -> dict[str, Any]:
    return {"id": str(tenant.id), "slug": tenant.slug, "name": tenant.name}


def user_view(user: m.User, tenant: m.Tenant) -> dict[str, Any]:
    return {
        "id": str(user.id),
        "username": user.username,
        "full_name": user.full_name,
        "role": user.role,
        "tenant": tenant_view(tenant),
        "store_id": str(user.store_id) if user.store_id else None,
    }


def store_view(store: m.Store) -> dict[str, Any]:
    return {"id": str(store.id), "code": store.code, "name": store.name}


def stock_item_view(item: m.StockItem) -> dict[str, Any]:
    return {
        "id": item.id,
        "store_id": str(item.store_id),
        "sku": item.sku,
        "description": item.description,
        "epc": item.epc,
        "status": item.status,
        "location_code": item.location_code,
        "sellable": item.sellable,
        "cost_price": money(item.cost_price),
        "sale_price": money(item.sale_price),
        "updated_at": timestamp(item.updated_at),
    }


def transfer_view(transfer: m.Transfer, lines: Iterable[m.TransferLine] | None = None) -> dict[str, Any]:
    view: dict[str, Any] = {
        "id": str(transfer.id),
        "origin_store_id": str(transfer.origin_store_id),
        "destination_store_id": str(transfer.destination_store_id),
        "status": transfer.status,
        "created_by": str(transfer.created_by) if transfer.created_by else None,
        "created_at": timestamp(transfer.created_at),
        "updated_at": timestamp(transfer.updated_at),
        "dispatched_at": timestamp(transfer.dispatched_at),
        "received_at": timestamp(transfer.received_at),
        "canceled_at": timestamp(transfer.canceled_at),
    }
    if lines is not None:
        view["lines"] = [
            {
                "id": line.id,
                "stock_item_id": line.stock_item_id,
                "status": line.status,
                "origin_status": line.origin_status,
                "received_at": timestamp(line.received_at),
            }
            for line in lines
        ]
    return view


def sale_view(
    sale: m.Sale, lines: Iterable[m.SaleLine] | None = None, payments: Iterable[m.Payment] | None = None
) -> dict[str, Any]:
    view: dict[str, Any] = {
        "id": str(sale.id),
        "store_id": str(sale.store_id),
        "status": sale.status,
        "created_by": str(sale.created_by) if sale.created_by else None,
        "cash_session_id": str(sale.cash_session_id) if sale.cash_session_id else None,
        "subtotal": money(sale.subtotal),
        "discount_total": money(sale.discount_total),
        "total": money(sale.total),
        "created_at": timestamp(sale.created_at),
        "updated_at": timestamp(sale.updated_at),
        "paid_at": timestamp(sale.paid_at),
        "canceled_at": timestamp(sale.canceled_at),
    }
    if lines is not None:
        view["lines"] = [
            {
                "id": line.id,
                "stock_item_id": line.stock_item_id,
                "sku": line.sku,
                "unit_price": money(line.unit_price),
                "discount": money(line.discount),
                "line_total": money(line.line_total),
            }
            for line in lines
        ]
    if payments is not None:
        payments = list(payments)
        paid = sum((p.amount for p in payments), ZERO)
        view["payments"] = [{"method": p.method, "amount": money(p.amount)} for p in payments]
        view["paid_total"] = money(paid)
        view["change_due"] = money(max(paid - sale.total, ZERO) if payments else ZERO)
    return view


def cash_session_view(session: m.CashSession) -> dict[str, Any]:
    difference: Decimal | None = None
    if session.counted_amount is not None and session.expected_amount is not None:
        difference = session.counted_amount - session.expected_amount
    return {
        "id": str(session.id),
        "store_id": str(session.store_id),
        "cashier_id": str(session.cashier_id),
        "status": session.status,
        "opening_amount": money(session.opening_amount),
        "expected_amount": money(session.expected_amount),
        "counted_amount": money(session.counted_amount),
        "difference": money(difference),
        "opened_at": timestamp(session.opened_at),
        "closed_at": timestamp(session.closed_at),
    }


def export_view(record: m.ExportRecord) -> dict[str, Any]:
    return {
        "id": str(record.id),
        "kind": record.kind,
        "format": record.file_format,
        "status": record.status,
        "store_id": str(record.store_id) if record.store_id else None,
        "requested_by": str(record.requested_by) if record.requested_by else None,
        "file_path": record.file_path,
        "row_count": record.row_count,
        "size_bytes": record.size_bytes,
        "sha256": record.sha256,
        "filters": record.filters,
        "created_at": timestamp(record.created_at),
        "download_url": f"/aris3/exports/{record.id}/download",
    }
