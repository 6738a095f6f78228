"""The foreign target's schema: SQLAlchemy models and the one table without a primary key.

``metadata`` is what the migrations in ``migrations/versions`` build, revision by revision;
``alembic check`` (and aris3nb's drift comparison, as ``foreign_retail.models:metadata``)
finds them equal on SQLite and PostgreSQL.

Shapes worth knowing, because they differ from the ARIS3 reference double on purpose:

* every entity key is a UUID named ``<entity>_id``; money is an integer count of minor units
  (``*_minor`` BIGINT); states are plain strings without CHECK constraints (the integrity
  invariants find rows in an unknown state);
* ``consignment_items``, ``account_outlet_grants`` and ``request_keys`` have composite primary
  keys; ``activity_journal`` has none at all (an append-only log, as many real systems keep);
* timestamps are ``*_on`` columns, UTC.
"""

from __future__ import annotations

import datetime as dt
import uuid

import sqlalchemy as sa
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

NAMING_CONVENTION = {
    "ix": "%(table_name)s_%(column_0_N_name)s_idx",
    "uq": "%(table_name)s_%(column_0_N_name)s_key",
    "ck": "%(table_name)s_%(constraint_name)s_check",
    "fk": "%(table_name)s_%(column_0_name)s_fkey",
    "pk": "%(table_name)s_pkey",
}

ACCESS_LEVELS = ("OWNER", "SUPERVISOR", "CLERK", "VIEWER")
UNIT_STATES = ("ON_HAND", "RESERVED", "SHIPPING", "SOLD")
CONSIGNMENT_PHASES = ("OPEN", "SHIPPED", "DELIVERED", "VOID")
#: The item phase each consignment phase implies.
ITEM_PHASE_OF = {"OPEN": "PACKED", "SHIPPED": "IN_TRANSIT", "DELIVERED": "ARRIVED", "VOID": "PULLED"}
CONSIGNMENT_EVENT_KINDS = ("OPENED", "SHIPPED", "DELIVERED", "VOIDED")
SHIFT_STATES = ("ACTIVE", "ENDED")
TILL_ENTRY_KINDS = ("FLOAT", "TAKING", "PAYOUT")
RECEIPT_STATES = ("OPEN", "SETTLED", "VOIDED")
TENDER_KINDS = ("CASH", "CARD", "VOUCHER")
REPORT_KINDS = ("INVENTORY_SNAPSHOT", "DAILY_TAKINGS")
EXPORT_STATES = ("QUEUED", "DONE", "FAILED")

Timestamp = sa.DateTime(timezone=True)
Minor = sa.BigInteger()


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class Base(DeclarativeBase):
    metadata = sa.MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {uuid.UUID: sa.Uuid(), dt.datetime: Timestamp}  # noqa: RUF012 - SQLAlchemy's declarative API


class Merchant(Base):
    __tablename__ = "merchants"

    merchant_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    handle: Mapped[str] = mapped_column(sa.String(48), unique=True)
    legal_name: Mapped[str] = mapped_column(sa.String(160))
    currency_code: Mapped[str] = mapped_column(sa.String(3))
    onboarded_on: Mapped[dt.datetime]


class Outlet(Base):
    __tablename__ = "outlets"
    __table_args__ = (sa.UniqueConstraint("merchant_id", "outlet_code"),)

    outlet_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    merchant_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("merchants.merchant_id"), index=True)
    outlet_code: Mapped[str] = mapped_column(sa.String(24))
    display_name: Mapped[str] = mapped_column(sa.String(160))
    opened_on: Mapped[dt.datetime]


class Account(Base):
    __tablename__ = "accounts"

    account_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    merchant_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("merchants.merchant_id"), index=True)
    home_outlet_id: Mapped[uuid.UUID | None] = mapped_column(sa.ForeignKey("outlets.outlet_id"))
    login_name: Mapped[str] = mapped_column(sa.String(80), unique=True)
    email: Mapped[str] = mapped_column(sa.String(200), unique=True)
    pw_digest: Mapped[str] = mapped_column(sa.String(200))
    access_level: Mapped[str] = mapped_column(sa.String(16))
    enabled: Mapped[bool] = mapped_column(sa.Boolean())
    registered_on: Mapped[dt.datetime]


class AccountOutletGrant(Base):
    """Which outlets an account may work in (composite key: account, outlet)."""

    __tablename__ = "account_outlet_grants"

    account_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("accounts.account_id"), primary_key=True)
    outlet_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("outlets.outlet_id"), primary_key=True)
    access_level: Mapped[str] = mapped_column(sa.String(16))
    granted_on: Mapped[dt.datetime]


class InventoryUnit(Base):
    """One physical, RFID-tagged unit of an article, in one outlet."""

    __tablename__ = "inventory_units"
    __table_args__ = (
        sa.UniqueConstraint("merchant_id", "rfid_tag"),
        sa.Index("inventory_units_outlet_id_unit_state_idx", "outlet_id", "unit_state"),
    )

    unit_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    merchant_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("merchants.merchant_id"))
    outlet_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("outlets.outlet_id"))
    article_code: Mapped[str] = mapped_column(sa.String(40), index=True)
    label: Mapped[str] = mapped_column(sa.String(160))
    rfid_tag: Mapped[str] = mapped_column(sa.String(40))
    unit_state: Mapped[str] = mapped_column(sa.String(12))
    shelf: Mapped[str | None] = mapped_column(sa.String(24))
    unit_cost_minor: Mapped[int] = mapped_column(Minor)
    list_price_minor: Mapped[int] = mapped_column(Minor)
    received_on: Mapped[dt.datetime]
    changed_on: Mapped[dt.datetime]


class Consignment(Base):
    """A movement of units from one outlet to another of the same merchant."""

    __tablename__ = "consignments"

    consignment_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    merchant_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("merchants.merchant_id"), index=True)
    from_outlet_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("outlets.outlet_id"))
    to_outlet_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("outlets.outlet_id"))
    phase: Mapped[str] = mapped_column(sa.String(12))
    opened_by: Mapped[uuid.UUID | None] = mapped_column(sa.ForeignKey("accounts.account_id"))
    opened_on: Mapped[dt.datetime]
    shipped_on: Mapped[dt.datetime | None]
    delivered_on: Mapped[dt.datetime | None]


class ConsignmentItem(Base):
    """A unit on a consignment (composite key: consignment, unit)."""

    __tablename__ = "consignment_items"

    consignment_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("consignments.consignment_id"), primary_key=True)
    unit_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("inventory_units.unit_id"), primary_key=True)
    item_phase: Mapped[str] = mapped_column(sa.String(12))


class ConsignmentEvent(Base):
    __tablename__ = "consignment_events"

    event_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    consignment_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("consignments.consignment_id"), index=True)
    event_kind: Mapped[str] = mapped_column(sa.String(12))
    at_outlet_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("outlets.outlet_id"))
    actor_account_id: Mapped[uuid.UUID | None] = mapped_column(sa.ForeignKey("accounts.account_id"))
    note: Mapped[str | None] = mapped_column(sa.String(200))
    happened_on: Mapped[dt.datetime]


class Till(Base):
    __tablename__ = "tills"
    __table_args__ = (sa.UniqueConstraint("outlet_id", "till_label"),)

    till_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    outlet_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("outlets.outlet_id"))
    till_label: Mapped[str] = mapped_column(sa.String(40))


class TillShift(Base):
    """A clerk's shift on a till: opened with a float, ended with a count."""

    __tablename__ = "till_shifts"

    shift_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    till_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("tills.till_id"), index=True)
    clerk_account_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("accounts.account_id"))
    shift_state: Mapped[str] = mapped_column(sa.String(8))
    float_minor: Mapped[int] = mapped_column(Minor)
    counted_minor: Mapped[int | None] = mapped_column(Minor)
    started_on: Mapped[dt.datetime]
    ended_on: Mapped[dt.datetime | None]


class TillEntry(Base):
    """Cash into (positive) or out of (negative) a till during a shift."""

    __tablename__ = "till_entries"

    entry_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    shift_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("till_shifts.shift_id"), index=True)
    entry_kind: Mapped[str] = mapped_column(sa.String(10))
    amount_minor: Mapped[int] = mapped_column(Minor)
    memo: Mapped[str | None] = mapped_column(sa.String(200))
    booked_on: Mapped[dt.datetime]
    receipt_id: Mapped[uuid.UUID | None] = mapped_column(sa.ForeignKey("receipts.receipt_id"))


class Receipt(Base):
    __tablename__ = "receipts"
    __table_args__ = (sa.UniqueConstraint("outlet_id", "receipt_no"),)

    receipt_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    merchant_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("merchants.merchant_id"))
    outlet_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("outlets.outlet_id"))
    shift_id: Mapped[uuid.UUID | None] = mapped_column(sa.ForeignKey("till_shifts.shift_id"), index=True)
    receipt_no: Mapped[str] = mapped_column(sa.String(32))
    receipt_state: Mapped[str] = mapped_column(sa.String(10))
    gross_minor: Mapped[int] = mapped_column(Minor)
    issued_on: Mapped[dt.datetime] = mapped_column(index=True)
    settled_on: Mapped[dt.datetime | None]


class ReceiptItem(Base):
    __tablename__ = "receipt_items"
    __table_args__ = (sa.UniqueConstraint("receipt_id", "line_no"),)

    item_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    receipt_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("receipts.receipt_id"))
    unit_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("inventory_units.unit_id"), index=True)
    line_no: Mapped[int] = mapped_column(sa.Integer())
    price_minor: Mapped[int] = mapped_column(Minor)
    discount_minor: Mapped[int] = mapped_column(Minor)


class ReceiptTender(Base):
    """How a receipt was paid; ``amount_minor - change_minor`` is what the merchant kept."""

    __tablename__ = "receipt_tenders"

    tender_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    receipt_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("receipts.receipt_id"), index=True)
    tender_kind: Mapped[str] = mapped_column(sa.String(10))
    amount_minor: Mapped[int] = mapped_column(Minor)
    change_minor: Mapped[int] = mapped_column(Minor)


class ReportExport(Base):
    """A report file on disk, ``file_name`` relative to the exports folder."""

    __tablename__ = "report_exports"

    export_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    merchant_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("merchants.merchant_id"), index=True)
    requested_by: Mapped[uuid.UUID | None] = mapped_column(sa.ForeignKey("accounts.account_id"))
    report_kind: Mapped[str] = mapped_column(sa.String(24))
    export_state: Mapped[str] = mapped_column(sa.String(10))
    file_name: Mapped[str | None] = mapped_column(sa.String(255))
    byte_size: Mapped[int | None] = mapped_column(sa.BigInteger())
    row_total: Mapped[int | None] = mapped_column(sa.Integer())
    content_sha256: Mapped[str | None] = mapped_column(sa.String(64))
    generated_on: Mapped[dt.datetime]


class RequestKey(Base):
    """Idempotency keys of write requests (composite key: account, key)."""

    __tablename__ = "request_keys"

    account_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("accounts.account_id"), primary_key=True)
    request_key: Mapped[str] = mapped_column(sa.String(80), primary_key=True)
    route: Mapped[str] = mapped_column(sa.String(120))
    body_sha256: Mapped[str] = mapped_column(sa.String(64))
    answered_status: Mapped[int] = mapped_column(sa.Integer())
    stored_on: Mapped[dt.datetime]


#: Append-only activity log. No primary key, on purpose: backups, row digests and diffs must
#: cope with a table whose rows have no identity.
activity_journal = sa.Table(
    "activity_journal",
    Base.metadata,
    sa.Column("occurred_on", Timestamp, nullable=False, index=True),
    sa.Column("merchant_id", sa.Uuid(), sa.ForeignKey("merchants.merchant_id"), nullable=True),
    sa.Column("actor_account_id", sa.Uuid(), sa.ForeignKey("accounts.account_id"), nullable=True),
    sa.Column("verb", sa.String(40), nullable=False),
    sa.Column("subject_kind", sa.String(40), nullable=False),
    sa.Column("subject_ref", sa.String(64), nullable=False),
    sa.Column("detail", sa.Text(), nullable=True),
)

metadata = Base.metadata
