"""The ARIS3 schema as SQLAlchemy 2 typed models: the contract aris3nb checks a database
against (the gate's drift check, the integrity invariants, ``aris3nb.schema``) and the one the
reference double (``aris3nb.reference``) serves.

These models are the *target* of the migrations in ``migrations/``: a test compares the
migrated schema with them on SQLite and PostgreSQL, so a change here needs a revision there.

Status columns are plain strings without CHECK constraints, as in ARIS3 itself: the
post-go-live integrity check is what finds rows in an unknown status. Money is an exact
``Numeric(12, 2)`` (``Money``); timestamps are UTC (``UTCDateTime``).
"""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

ROLES = ("ADMIN", "MANAGER", "CASHIER", "AUDITOR")
STOCK_STATUSES = ("RFID", "PENDING", "IN_TRANSIT", "SOLD")
SELLABLE_STATUSES = ("RFID", "PENDING")
TRANSFER_STATUSES = ("DRAFT", "DISPATCHED", "PARTIAL_RECEIVED", "RECEIVED", "CANCELED")
TRANSFER_LINE_STATUSES = ("PLANNED", "IN_TRANSIT", "RECEIVED", "RETURNED")
MOVEMENT_KINDS = ("DISPATCH", "RECEIVE", "RETURN")
SALE_STATUSES = ("DRAFT", "PAID", "CANCELED")
PAYMENT_METHODS = ("CASH", "CARD", "TRANSFER")
CASH_SESSION_STATUSES = ("OPEN", "CLOSED")
CASH_MOVEMENT_KINDS = ("OPENING", "SALE", "CLOSING_ADJUSTMENT")
EXPORT_KINDS = ("STOCK", "SALES")
EXPORT_STATUSES = ("READY", "FAILED")


class UTCDateTime(TypeDecorator[dt.datetime]):
    """A timestamp stored as UTC and always read back timezone-aware.

    PostgreSQL keeps it as ``timestamptz``; SQLite, which has no timezone type, keeps the
    naive UTC text that SQLAlchemy writes.
    """

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: sa.Dialect) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given where a UTC timestamp is required")
        value = value.astimezone(dt.UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: dt.datetime | None, dialect: sa.Dialect) -> dt.datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


CENT = Decimal("0.01")


class Money(TypeDecorator[Decimal]):
    """An exact amount of money with two decimals, ``NUMERIC(12, 2)`` on every engine.

    SQLite has no decimal type: it keeps the value as an integer or a double, which holds
    every amount below 10^13 exactly to the cent. Values are written as decimal text and read
    back through their shortest representation, so a round trip is exact.
    """

    impl = sa.Numeric(12, 2)
    cache_ok = True

    def load_dialect_impl(self, dialect: sa.Dialect) -> sa.types.TypeEngine[Any]:
        if dialect.name == "sqlite":
            return dialect.type_descriptor(sa.Numeric(12, 2, asdecimal=False))
        return dialect.type_descriptor(sa.Numeric(12, 2))

    def process_bind_param(self, value: Decimal | int | str | None, dialect: sa.Dialect) -> Any:
        if value is None:
            return None
        if isinstance(value, Decimal) and value.as_tuple().exponent == -2:
            amount = value  # already to the cent: the common case, and worth skipping quantize for
        else:
            amount = Decimal(value).quantize(CENT)
        return str(amount) if dialect.name == "sqlite" else amount

    def process_result_value(self, value: Any, dialect: sa.Dialect) -> Decimal | None:
        if value is None:
            return None
        return Decimal(repr(value) if isinstance(value, float) else value).quantize(CENT)


#: Integer surrogate key: BIGINT on PostgreSQL, INTEGER (the rowid alias) on SQLite.
BigIntPK = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class Base(DeclarativeBase):
    metadata = sa.MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {
        dt.datetime: UTCDateTime(),
        uuid.UUID: sa.Uuid(),
        Decimal: Money(),
        dict[str, Any]: sa.JSON(),
    }


class Tenant(Base):
    __tablename__ = "tenants"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    slug: Mapped[str] = mapped_column(sa.String(64), unique=True)
    name: Mapped[str] = mapped_column(sa.String(200))
    created_at: Mapped[dt.datetime]


class Store(Base):
    __tablename__ = "stores"
    __table_args__ = (sa.UniqueConstraint("tenant_id", "code"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    tenant_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("tenants.id"), index=True)
    code: Mapped[str] = mapped_column(sa.String(32))
    name: Mapped[str] = mapped_column(sa.String(200))
    created_at: Mapped[dt.datetime]


class User(Base):
    __tablename__ = "users"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    tenant_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("tenants.id"), index=True)
    store_id: Mapped[uuid.UUID | None] = mapped_column(sa.ForeignKey("stores.id"))
    username: Mapped[str] = mapped_column(sa.String(100), unique=True)
    full_name: Mapped[str] = mapped_column(sa.String(200))
    role: Mapped[str] = mapped_column(sa.String(20))
    password_hash: Mapped[str] = mapped_column(sa.String(255))
    is_active: Mapped[bool] = mapped_column(sa.Boolean())
    created_at: Mapped[dt.datetime]


class StockItem(Base):
    __tablename__ = "stock_items"
    __table_args__ = (
        sa.UniqueConstraint("tenant_id", "epc"),
        sa.Index("ix_stock_items_tenant_id_store_id_status", "tenant_id", "store_id", "status"),
        sa.Index("ix_stock_items_tenant_id_sku", "tenant_id", "sku"),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    tenant_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("tenants.id"))
    store_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("stores.id"))
    sku: Mapped[str] = mapped_column(sa.String(64))
    description: Mapped[str] = mapped_column(sa.String(200))
    epc: Mapped[str] = mapped_column(sa.String(32))
    status: Mapped[str] = mapped_column(sa.String(16))
    location_code: Mapped[str] = mapped_column(sa.String(32))
    sellable: Mapped[bool] = mapped_column(sa.Boolean(), server_default=sa.false())
    cost_price: Mapped[Decimal]
    sale_price: Mapped[Decimal]
    created_at: Mapped[dt.datetime]
    updated_at: Mapped[dt.datetime]


class Transfer(Base):
    __tablename__ = "transfers"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    tenant_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("tenants.id"), index=True)
    origin_store_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("stores.id"))
    destination_store_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("stores.id"))
    status: Mapped[str] = mapped_column(sa.String(20))
    created_by: Mapped[uuid.UUID | None] = mapped_column(sa.ForeignKey("users.id"))
    created_at: Mapped[dt.datetime]
    updated_at: Mapped[dt.datetime]
    dispatched_at: Mapped[dt.datetime | None]
    received_at: Mapped[dt.datetime | None]
    canceled_at: Mapped[dt.datetime | None]


class TransferLine(Base):
    __tablename__ = "transfer_lines"
    __table_args__ = (sa.UniqueConstraint("transfer_id", "stock_item_id"),)

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    transfer_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("transfers.id"))
    stock_item_id: Mapped[int] = mapped_column(sa.ForeignKey("stock_items.id"), index=True)
    status: Mapped[str] = mapped_column(sa.String(16))
    origin_status: Mapped[str] = mapped_column(sa.String(16))
    received_at: Mapped[dt.datetime | None]


class TransferMovement(Base):
    __tablename__ = "transfer_movements"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    transfer_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("transfers.id"), index=True)
    transfer_line_id: Mapped[int] = mapped_column(sa.ForeignKey("transfer_lines.id"))
    stock_item_id: Mapped[int] = mapped_column(sa.ForeignKey("stock_items.id"))
    kind: Mapped[str] = mapped_column(sa.String(16))
    from_store_id: Mapped[uuid.UUID | None] = mapped_column(sa.ForeignKey("stores.id"))
    to_store_id: Mapped[uuid.UUID | None] = mapped_column(sa.ForeignKey("stores.id"))
    actor_id: Mapped[uuid.UUID | None] = mapped_column(sa.ForeignKey("users.id"))
    created_at: Mapped[dt.datetime]


class CashSession(Base):
    __tablename__ = "cash_sessions"
    __table_args__ = (sa.Index("ix_cash_sessions_tenant_id_store_id_status", "tenant_id", "store_id", "status"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    tenant_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("tenants.id"))
    store_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("stores.id"))
    cashier_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("users.id"))
    status: Mapped[str] = mapped_column(sa.String(16))
    opening_amount: Mapped[Decimal]
    expected_amount: Mapped[Decimal | None]
    counted_amount: Mapped[Decimal | None]
    opened_at: Mapped[dt.datetime]
    closed_at: Mapped[dt.datetime | None]


class Sale(Base):
    __tablename__ = "sales"
    __table_args__ = (sa.Index("ix_sales_tenant_id_store_id_status", "tenant_id", "store_id", "status"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    tenant_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("tenants.id"))
    store_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("stores.id"))
    status: Mapped[str] = mapped_column(sa.String(16))
    created_by: Mapped[uuid.UUID | None] = mapped_column(sa.ForeignKey("users.id"))
    cash_session_id: Mapped[uuid.UUID | None] = mapped_column(sa.ForeignKey("cash_sessions.id"))
    subtotal: Mapped[Decimal]
    discount_total: Mapped[Decimal]
    total: Mapped[Decimal]
    created_at: Mapped[dt.datetime]
    updated_at: Mapped[dt.datetime]
    paid_at: Mapped[dt.datetime | None]
    canceled_at: Mapped[dt.datetime | None]


class SaleLine(Base):
    __tablename__ = "sale_lines"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    sale_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("sales.id"), index=True)
    stock_item_id: Mapped[int] = mapped_column(sa.ForeignKey("stock_items.id"), index=True)
    sku: Mapped[str] = mapped_column(sa.String(64))
    unit_price: Mapped[Decimal]
    discount: Mapped[Decimal]
    line_total: Mapped[Decimal]


class Payment(Base):
    __tablename__ = "payments"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    sale_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("sales.id"), index=True)
    method: Mapped[str] = mapped_column(sa.String(16))
    amount: Mapped[Decimal]
    created_at: Mapped[dt.datetime]


class CashMovement(Base):
    __tablename__ = "cash_movements"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    cash_session_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("cash_sessions.id"), index=True)
    sale_id: Mapped[uuid.UUID | None] = mapped_column(sa.ForeignKey("sales.id"))
    kind: Mapped[str] = mapped_column(sa.String(24))
    amount: Mapped[Decimal]
    created_at: Mapped[dt.datetime]


class ExportRecord(Base):
    __tablename__ = "export_records"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    tenant_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("tenants.id"), index=True)
    store_id: Mapped[uuid.UUID | None] = mapped_column(sa.ForeignKey("stores.id"))
    requested_by: Mapped[uuid.UUID | None] = mapped_column(sa.ForeignKey("users.id"))
    kind: Mapped[str] = mapped_column(sa.String(16))
    file_format: Mapped[str] = mapped_column(sa.String(8))
    status: Mapped[str] = mapped_column(sa.String(16))
    file_path: Mapped[str] = mapped_column(sa.String(500))
    row_count: Mapped[int] = mapped_column(sa.Integer())
    size_bytes: Mapped[int] = mapped_column(sa.BigInteger())
    sha256: Mapped[str] = mapped_column(sa.String(64))
    filters: Mapped[dict[str, Any]]
    created_at: Mapped[dt.datetime]


class IdempotencyRecord(Base):
    __tablename__ = "idempotency_records"
    __table_args__ = (sa.UniqueConstraint("tenant_id", "endpoint", "idempotency_key"),)

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    tenant_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("tenants.id"))
    endpoint: Mapped[str] = mapped_column(sa.String(100))
    idempotency_key: Mapped[str] = mapped_column(sa.String(128))
    request_hash: Mapped[str] = mapped_column(sa.String(64))
    response_status: Mapped[int] = mapped_column(sa.Integer())
    response_body: Mapped[dict[str, Any]]
    created_at: Mapped[dt.datetime]


class AuditEvent(Base):
    __tablename__ = "audit_events"
    __table_args__ = (sa.Index("ix_audit_events_tenant_id_created_at", "tenant_id", "created_at"),)

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    tenant_id: Mapped[uuid.UUID | None] = mapped_column(sa.ForeignKey("tenants.id"))
    actor_id: Mapped[uuid.UUID | None] = mapped_column(sa.ForeignKey("users.id"))
    action: Mapped[str] = mapped_column(sa.String(64))
    entity_type: Mapped[str] = mapped_column(sa.String(32))
    entity_id: Mapped[str] = mapped_column(sa.String(64))
    trace_id: Mapped[str | None] = mapped_column(sa.String(64))
    details: Mapped[dict[str, Any]]
    created_at: Mapped[dt.datetime]
