"""Export files of the reference service: what a STOCK or SALES export contains, and how
its CSV is written (atomically, owner-only, with its row count, size and SHA-256).

Both the exports endpoint and the seed data write exports through this module, so a
seeded export and a live one have the same columns and the same guarantees.
"""

from __future__ import annotations

import csv
import hashlib
import io
import os
import tempfile
import uuid
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from aris3nb.contract import models as m

STOCK_COLUMNS = (
    "id",
    "store_code",
    "sku",
    "description",
    "epc",
    "status",
    "location_code",
    "sellable",
    "cost_price",
    "sale_price",
    "updated_at",
)
SALES_COLUMNS = ("sale_id", "store_code", "paid_at", "subtotal", "discount_total", "total", "line_count")


@dataclass(frozen=True)
class ExportFile:
    relative_path: str
    row_count: int
    size_bytes: int
    sha256: str


def export_rows(
    conn: sa.Connection, kind: str, tenant_id: uuid.UUID, store_id: uuid.UUID | None
) -> tuple[Sequence[str], Iterator[Sequence[Any]]]:
    """The header and rows of a ``kind`` export of a tenant (optionally one store)."""
    stores = m.Store.__table__
    if kind == "STOCK":
        stock = m.StockItem.__table__
        # Any number of columns: the two kinds select different ones.
        query: sa.Select[*tuple[Any, ...]] = (
            sa.select(
                stock.c.id,
                stores.c.code,
                stock.c.sku,
                stock.c.description,
                stock.c.epc,
                stock.c.status,
                stock.c.location_code,
                stock.c.sellable,
                stock.c.cost_price,
                stock.c.sale_price,
                stock.c.updated_at,
            )
            .join(stores, stores.c.id == stock.c.store_id)
            .where(stock.c.tenant_id == tenant_id)
            .order_by(stock.c.id)
        )
        if store_id is not None:
            query = query.where(stock.c.store_id == store_id)
        return STOCK_COLUMNS, _stream(conn, query)
    if kind == "SALES":
        sales, lines = m.Sale.__table__, m.SaleLine.__table__
        line_count = sa.select(sa.func.count()).where(lines.c.sale_id == sales.c.id).scalar_subquery()
        query = (
            sa.select(
                sales.c.id,
                stores.c.code,
                sales.c.paid_at,
                sales.c.subtotal,
                sales.c.discount_total,
                sales.c.total,
                line_count,
            )
            .join(stores, stores.c.id == sales.c.store_id)
            .where(sales.c.tenant_id == tenant_id, sales.c.status == "PAID")
            .order_by(sales.c.paid_at, sales.c.id)
        )
        if store_id is not None:
            query = query.where(sales.c.store_id == store_id)
        return SALES_COLUMNS, _stream(conn, query)
    raise ValueError(f"unknown export kind {kind!r}")


def _stream(conn: sa.Connection, query: sa.Select[*tuple[Any, ...]]) -> Iterator[Sequence[Any]]:
    # On the statement, not the connection: Connection.execution_options changes the caller's
    # connection in place, and every later statement on it would stream too.
    result = conn.execute(query.execution_options(yield_per=5_000))
    for row in result:
        yield tuple(_cell(value) for value in row)


def _cell(value: Any) -> Any:
    if hasattr(value, "isoformat"):
        return value.isoformat()
    if isinstance(value, bool):
        return "true" if value else "false"
    return value


def export_relative_path(tenant_id: uuid.UUID, export_id: uuid.UUID) -> str:
    return f"{tenant_id}/{export_id}.csv"


def write_export_file(
    exports_dir: Path, relative_path: str, header: Sequence[str], rows: Iterable[Sequence[Any]]
) -> ExportFile:
    """Write the CSV beside its final name, then rename it into place; mode 0600."""
    target = exports_dir / relative_path
    target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    digest = hashlib.sha256()
    row_count = size = 0
    fd, tmp_name = tempfile.mkstemp(prefix=".export-", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as out:
            buffer = io.StringIO()
            writer = csv.writer(buffer, lineterminator="\n")

            def flush() -> None:
                nonlocal size
                data = buffer.getvalue().encode("utf-8")
                out.write(data)
                digest.update(data)
                size += len(data)
                buffer.seek(0)
                buffer.truncate()

            writer.writerow(header)
            for row in rows:
                writer.writerow(row)
                row_count += 1
                if buffer.tell() > 1 << 16:
                    flush()
            flush()
            out.flush()
            os.fsync(out.fileno())
        os.chmod(tmp_name, 0o600)
        os.replace(tmp_name, target)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
    return ExportFile(relative_path=relative_path, row_count=row_count, size_bytes=size, sha256=digest.hexdigest())
