"""The ``reference`` invariant set: the business rules of the bundled ARIS3 reference schema
(``aris3nb/contract/models.py``), each naming the offending rows (at most ``SAMPLE_LIMIT``).

Each declares the tables and columns it reads (``requires``); where the live schema lacks
one, the invariant is NOT APPLICABLE there, not a business FAIL. Some declare a column they do
not read, for its meaning: a reference transfer line is one stock item moving
(``transfer_lines.stock_item_id``), so its ``status`` is the line's state; a schema whose
``transfer_lines.status`` holds something else (upstream ARIS3 keeps the item's stock status
there, on lines without a stock item) lacks that column set and is not judged by these rules.

Checks (all FAIL when violated, except ``idempotency.stuck_records``, which WARNs):

    schema.revision                   the database is at the reference's head revision (a
                                      revision the reference history does not know: not
                                      applicable, another target's schema)
    stock.known_status                every stock row's status is RFID, PENDING, IN_TRANSIT or SOLD
    stock.not_sellable_in_transit     no IN_TRANSIT (or SOLD) row is flagged sellable
    stock.store_totals                per store, the units the stock endpoint reports
                                      (RFID + PENDING) equal the units flagged sellable
    transfers.known_states            transfers, lines and movements in known states/kinds only
    transfers.received_within_dispatched  per transfer, received never exceeds dispatched
    transfers.draft_not_dispatched    no DRAFT transfer has a DISPATCH movement
    transfers.received_complete       every line of a RECEIVED transfer is RECEIVED
    pos.payments_cover_total          a PAID sale's payments cover its total, any excess is
                                      cash change, and the cash booked to the till is what was kept
    pos.lines_sum_to_total            a PAID sale's lines sum to its total
    pos.paid_has_payments             no PAID sale with a non-zero total lacks payments
    pos.sold_stock_on_paid_sale       every SOLD stock row is on a line of a PAID sale
    cash.closed_sessions_balance      a CLOSED session's expected cash = opening + its cash sales
    exports.files_match               every READY export's file exists with its recorded size and SHA-256
    idempotency.stuck_records         no record left in progress longer than the allowed age (WARN)
    tenancy.store_tenant              no row points at a store (or stock item) of another tenant
"""

from __future__ import annotations

import datetime as dt
from functools import cache
from typing import Any

import sqlalchemy as sa
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from aris3nb import migrate
from aris3nb.contract import models as m
from aris3nb.core import words
from aris3nb.core.checks import SAMPLE_LIMIT, Outcome, failed, passed, warned
from aris3nb.integrity.files import file_problem
from aris3nb.integrity.invariants import IntegrityContext, InvariantSet, not_applicable, plain, row_text

INVARIANTS = InvariantSet("reference")

T = m.Base.metadata.tables


def _of(table: str, *columns: str) -> tuple[str, ...]:
    return tuple(f"{table}.{column}" for column in columns)


# What each rule reads (see the module docstring for the columns declared for their meaning).
_TRANSFER_LINE_STATE = _of("transfer_lines", "transfer_id", "status", "stock_item_id")
_PAID_SALE_MONEY = (
    *_of("sales", "id", "status", "total"),
    *_of("payments", "sale_id", "amount", "method"),
    *_of("cash_movements", "sale_id", "kind", "amount"),
)
_TENANCY = (
    *_of("stores", "id", "tenant_id"),
    *_of("users", "id", "tenant_id", "store_id"),
    *_of("stock_items", "id", "tenant_id", "store_id"),
    *_of("transfers", "id", "tenant_id", "origin_store_id", "destination_store_id"),
    *_of("cash_sessions", "id", "tenant_id", "store_id"),
    *_of("sales", "id", "tenant_id", "store_id"),
    *_of("export_records", "id", "tenant_id", "store_id"),
    *_of("transfer_movements", "id", "transfer_id", "from_store_id", "to_store_id"),
    *_of("sale_lines", "id", "sale_id", "stock_item_id"),
    *_of("transfer_lines", "id", "transfer_id", "stock_item_id"),
)


@cache
def _reference_revisions() -> frozenset[str]:
    """Every revision of the reference schema's Alembic history."""
    scripts = ScriptDirectory.from_config(migrate.alembic_config())
    return frozenset(script.revision for script in scripts.walk_revisions())


# --------------------------------------------------------------------------- helpers


def _offenders(conn: sa.Connection, query: sa.Select[Any], order_by: Any) -> tuple[int, list[dict[str, Any]]]:
    """How many rows ``query`` finds, and the first ``SAMPLE_LIMIT`` of them (as plain values)."""
    count = conn.execute(sa.select(sa.func.count()).select_from(query.subquery())).scalar_one()
    if not count:
        return 0, []
    rows = conn.execute(query.order_by(order_by).limit(SAMPLE_LIMIT)).mappings().all()
    return int(count), [{key: plain(value) for key, value in row.items()} for row in rows]


def _count(conn: sa.Connection, table: sa.Table, *where: Any) -> int:
    return int(conn.execute(sa.select(sa.func.count()).select_from(table).where(*where)).scalar_one())


def _cents(column: Any) -> sa.ColumnElement[Any]:
    """An amount in whole cents, exact on every engine (SQLite keeps NUMERIC as doubles)."""
    return sa.cast(sa.func.round(column * sa.literal_column("100")), sa.BigInteger)


def _sum_cents(column: Any) -> sa.ColumnElement[Any]:
    return sa.func.coalesce(sa.func.sum(_cents(column)), 0)


def _flag(condition: Any) -> sa.ColumnElement[Any]:
    return sa.func.coalesce(sa.func.sum(sa.case((condition, 1), else_=0)), 0)


def _judge(
    count: int,
    sample: list[dict[str, Any]],
    *,
    ok: str,
    noun: str,
    bad: str,
    checked: int | None = None,
    **evidence: Any,
) -> Outcome:
    """PASS with ``ok``, or FAIL with the count of ``noun`` (plural from the count), then ``bad``:
    ``noun="stock row", bad="in an unknown status"`` gives "1 stock row in an unknown status; first: ..."."""
    facts = {"offending": count, "sample": sample, **({"checked": checked} if checked is not None else {}), **evidence}
    if count:
        return failed(f"{words.count(count, noun)} {bad}; first: {row_text(sample[0])}", **facts)
    return passed(ok, **facts)


# --------------------------------------------------------------------------- schema


@INVARIANTS.invariant("schema.revision", requires=("alembic_version.version_num",))
def check_revision(ctx: IntegrityContext) -> Outcome:
    """The data was written by code that matches this schema: the database is at the code's head."""
    current = MigrationContext.configure(ctx.conn).get_current_revision()
    head = migrate.head_revision()
    if current is not None and current not in _reference_revisions():
        return not_applicable(
            f"the database is at revision {current}, which the reference history does not know "
            "(another target's schema)",
            current_revision=current,
            head_revision=head,
        )
    if current != head:
        return failed(
            f"database at {current or 'no revision'}, code head is {head}", current_revision=current, head_revision=head
        )
    return passed(f"at head {head}", current_revision=current, head_revision=head)


# --------------------------------------------------------------------------- stock


@INVARIANTS.invariant("stock.known_status", requires=_of("stock_items", "id", "tenant_id", "store_id", "status"))
def check_stock_status(ctx: IntegrityContext) -> Outcome:
    """A stock row in an unknown status is invisible to every listing and total: it is lost stock."""
    stock = T["stock_items"]
    query = sa.select(stock.c.id, stock.c.tenant_id, stock.c.store_id, stock.c.status).where(
        sa.or_(stock.c.status.is_(None), stock.c.status.not_in(m.STOCK_STATUSES))
    )
    count, sample = _offenders(ctx.conn, query, stock.c.id)
    return _judge(
        count,
        sample,
        ok=f"every stock row in {', '.join(m.STOCK_STATUSES)}",
        noun="stock row",
        bad="in an unknown status",
        checked=_count(ctx.conn, stock),
        allowed=list(m.STOCK_STATUSES),
    )


@INVARIANTS.invariant(
    "stock.not_sellable_in_transit", requires=_of("stock_items", "id", "store_id", "status", "sellable")
)
def check_in_transit_not_sellable(ctx: IntegrityContext) -> Outcome:
    """An item on a truck (IN_TRANSIT) or already sold cannot be sold: if flagged sellable, a till
    could sell it twice."""
    stock = T["stock_items"]
    query = sa.select(stock.c.id, stock.c.store_id, stock.c.status, stock.c.sellable).where(
        stock.c.status.in_(("IN_TRANSIT", "SOLD")), stock.c.sellable == sa.true()
    )
    count, sample = _offenders(ctx.conn, query, stock.c.id)
    return _judge(
        count,
        sample,
        ok="no IN_TRANSIT or SOLD row is flagged sellable",
        noun="IN_TRANSIT or SOLD stock row",
        bad="flagged sellable",
        checked=_count(ctx.conn, stock, stock.c.status.in_(("IN_TRANSIT", "SOLD"))),
    )


@INVARIANTS.invariant("stock.store_totals", requires=_of("stock_items", "store_id", "status", "sellable"))
def check_store_totals(ctx: IntegrityContext) -> Outcome:
    """The stock endpoint reports a store's units as RFID + PENDING (aggregated per store in
    SQL, as here); they must be exactly the units the tills may sell (flagged sellable)."""
    stock = T["stock_items"]
    rfid, pending = _flag(stock.c.status == "RFID"), _flag(stock.c.status == "PENDING")
    sellable = _flag(stock.c.sellable == sa.true())
    per_store = sa.select(
        stock.c.store_id,
        sa.func.count().label("total_rows"),
        rfid.label("total_rfid"),
        pending.label("total_pending"),
        (rfid + pending).label("total_units"),
        sellable.label("sellable_units"),
    ).group_by(stock.c.store_id)
    stores = per_store.subquery()
    totals = ctx.conn.execute(
        sa.select(sa.func.count(), sa.func.coalesce(sa.func.sum(stores.c.total_units), 0)).select_from(stores)
    ).one()
    query = per_store.having(rfid + pending != sellable)
    count, sample = _offenders(ctx.conn, query, stock.c.store_id)
    return _judge(
        count,
        sample,
        ok=f"{words.count(totals[0], 'store')}: total units (RFID + PENDING) = sellable units, {int(totals[1])} in all",
        noun="store",
        bad="whose total units (RFID + PENDING) differ from their sellable units",
        checked=int(totals[0]),
        total_units=int(totals[1]),
    )


# --------------------------------------------------------------------------- transfers


@INVARIANTS.invariant(
    "transfers.known_states",
    requires=(
        *_of("transfers", "id", "status"),
        *_TRANSFER_LINE_STATE,
        *_of("transfer_lines", "id"),
        *_of("transfer_movements", "id", "transfer_id", "kind"),
    ),
)
def check_transfer_states(ctx: IntegrityContext) -> Outcome:
    """A transfer, line or movement in an unknown state cannot be received or canceled: its stock is stuck."""
    transfers, lines, moves = T["transfers"], T["transfer_lines"], T["transfer_movements"]
    parts = {
        "transfers": (
            sa.select(transfers.c.id, transfers.c.status).where(
                sa.or_(transfers.c.status.is_(None), transfers.c.status.not_in(m.TRANSFER_STATUSES))
            ),
            transfers.c.id,
        ),
        "transfer_lines": (
            sa.select(lines.c.id, lines.c.transfer_id, lines.c.status).where(
                sa.or_(lines.c.status.is_(None), lines.c.status.not_in(m.TRANSFER_LINE_STATUSES))
            ),
            lines.c.id,
        ),
        "transfer_movements": (
            sa.select(moves.c.id, moves.c.transfer_id, moves.c.kind).where(
                sa.or_(moves.c.kind.is_(None), moves.c.kind.not_in(m.MOVEMENT_KINDS))
            ),
            moves.c.id,
        ),
    }
    found = {table: _offenders(ctx.conn, query, order) for table, (query, order) in parts.items()}
    total = sum(count for count, _ in found.values())
    evidence = {table: {"offending": count, "sample": sample} for table, (count, sample) in found.items()}
    if total:
        first_table = next(table for table, (count, _) in found.items() if count)
        return failed(
            f"{words.count(total, 'row')} in an unknown state; "
            f"first: {first_table} {row_text(found[first_table][1][0])}",
            offending=total,
            **evidence,
        )
    return passed(
        f"{_count(ctx.conn, transfers)} transfers, their lines and movements all in known states",
        offending=0,
        **evidence,
    )


@INVARIANTS.invariant(
    "transfers.received_within_dispatched",
    requires=(
        *_of("transfers", "id", "status"),
        *_TRANSFER_LINE_STATE,
        *_of("transfer_movements", "transfer_id", "kind"),
    ),
)
def check_received_within_dispatched(ctx: IntegrityContext) -> Outcome:
    """A store cannot receive more than was sent to it: received units beyond the dispatched ones are invented stock."""
    transfers, lines, moves = T["transfers"], T["transfer_lines"], T["transfer_movements"]
    by_moves = (
        sa.select(
            moves.c.transfer_id,
            _flag(moves.c.kind == "DISPATCH").label("dispatched"),
            _flag(moves.c.kind == "RECEIVE").label("received"),
        )
        .group_by(moves.c.transfer_id)
        .subquery()
    )
    by_lines = (
        sa.select(lines.c.transfer_id, _flag(lines.c.status == "RECEIVED").label("received_lines"))
        .group_by(lines.c.transfer_id)
        .subquery()
    )
    dispatched = sa.func.coalesce(by_moves.c.dispatched, 0)
    received = sa.func.coalesce(by_moves.c.received, 0)
    received_lines = sa.func.coalesce(by_lines.c.received_lines, 0)
    query = (
        sa.select(
            transfers.c.id,
            transfers.c.status,
            dispatched.label("dispatched"),
            received.label("received_movements"),
            received_lines.label("received_lines"),
        )
        .select_from(
            transfers.outerjoin(by_moves, by_moves.c.transfer_id == transfers.c.id).outerjoin(
                by_lines, by_lines.c.transfer_id == transfers.c.id
            )
        )
        .where(sa.or_(received > dispatched, received_lines > dispatched))
    )
    count, sample = _offenders(ctx.conn, query, transfers.c.id)
    return _judge(
        count,
        sample,
        ok="no transfer received more than it dispatched",
        noun="transfer",
        bad="with more received than dispatched",
        checked=_count(ctx.conn, transfers),
    )


@INVARIANTS.invariant(
    "transfers.draft_not_dispatched",
    requires=(*_of("transfers", "id", "status"), *_of("transfer_movements", "transfer_id", "kind")),
)
def check_draft_not_dispatched(ctx: IntegrityContext) -> Outcome:
    """A DRAFT transfer has moved nothing: a DISPATCH movement on it means stock left a store
    without a dispatched transfer."""
    transfers, moves = T["transfers"], T["transfer_movements"]
    dispatches = (
        sa.select(moves.c.transfer_id, sa.func.count().label("dispatch_movements"))
        .where(moves.c.kind == "DISPATCH")
        .group_by(moves.c.transfer_id)
        .subquery()
    )
    query = (
        sa.select(transfers.c.id, transfers.c.status, dispatches.c.dispatch_movements)
        .join(dispatches, dispatches.c.transfer_id == transfers.c.id)
        .where(transfers.c.status == "DRAFT")
    )
    count, sample = _offenders(ctx.conn, query, transfers.c.id)
    return _judge(
        count,
        sample,
        ok="no DRAFT transfer has a DISPATCH movement",
        noun="DRAFT transfer",
        bad="with DISPATCH movements",
        checked=_count(ctx.conn, transfers, transfers.c.status == "DRAFT"),
    )


@INVARIANTS.invariant(
    "transfers.received_complete", requires=(*_of("transfers", "id", "status"), *_TRANSFER_LINE_STATE)
)
def check_received_complete(ctx: IntegrityContext) -> Outcome:
    """A RECEIVED transfer is closed: a line still PLANNED or IN_TRANSIT on it is stock nobody will ever receive."""
    transfers, lines = T["transfers"], T["transfer_lines"]
    open_lines = (
        sa.select(lines.c.transfer_id, sa.func.count().label("lines_not_received"))
        .where(lines.c.status != "RECEIVED")
        .group_by(lines.c.transfer_id)
        .subquery()
    )
    query = (
        sa.select(transfers.c.id, transfers.c.status, open_lines.c.lines_not_received)
        .join(open_lines, open_lines.c.transfer_id == transfers.c.id)
        .where(transfers.c.status == "RECEIVED")
    )
    count, sample = _offenders(ctx.conn, query, transfers.c.id)
    return _judge(
        count,
        sample,
        ok="every RECEIVED transfer is fully received",
        noun="RECEIVED transfer",
        bad="with lines not received",
        checked=_count(ctx.conn, transfers, transfers.c.status == "RECEIVED"),
    )


# --------------------------------------------------------------------------- POS


def _paid_sale_money() -> sa.Subquery:
    """Per PAID sale: total, payments (all, cash) and the cash booked to the till, in cents."""
    sales, payments, cash = T["sales"], T["payments"], T["cash_movements"]
    paid = (
        sa.select(
            payments.c.sale_id,
            _sum_cents(payments.c.amount).label("paid"),
            _sum_cents(sa.case((payments.c.method == "CASH", payments.c.amount), else_=0)).label("cash"),
            sa.func.count().label("payment_rows"),
        )
        .group_by(payments.c.sale_id)
        .subquery()
    )
    kept = (
        sa.select(cash.c.sale_id, _sum_cents(cash.c.amount).label("kept"))
        .where(cash.c.kind == "SALE", cash.c.sale_id.is_not(None))
        .group_by(cash.c.sale_id)
        .subquery()
    )
    return (
        sa.select(
            sales.c.id,
            _cents(sales.c.total).label("total"),
            sa.func.coalesce(paid.c.paid, 0).label("paid"),
            sa.func.coalesce(paid.c.cash, 0).label("cash"),
            sa.func.coalesce(paid.c.payment_rows, 0).label("payment_rows"),
            kept.c.kept.label("kept"),
        )
        .select_from(sales.outerjoin(paid, paid.c.sale_id == sales.c.id).outerjoin(kept, kept.c.sale_id == sales.c.id))
        .where(sales.c.status == "PAID")
        .subquery()
    )


@INVARIANTS.invariant("pos.payments_cover_total", requires=_PAID_SALE_MONEY)
def check_payments_cover_total(ctx: IntegrityContext) -> Outcome:
    """Money in must match money owed: a PAID sale's payments cover its total; any excess is
    change, which only cash can give (excess <= cash tendered); and the cash booked to the
    till for it is the cash kept (cash tendered minus change). Amounts below are in cents."""
    money = _paid_sale_money()
    change = money.c.paid - money.c.total
    query = sa.select(money.c.id, money.c.total, money.c.paid, money.c.cash, money.c.kept).where(
        money.c.payment_rows > 0,
        sa.or_(
            money.c.paid < money.c.total,
            change > money.c.cash,
            sa.and_(money.c.kept.is_not(None), money.c.kept != money.c.cash - change),
        ),
    )
    count, sample = _offenders(ctx.conn, query, money.c.id)
    for row in sample:
        row["missing"] = max(0, row["total"] - row["paid"])
    checked = ctx.conn.execute(sa.select(sa.func.count()).select_from(money)).scalar_one()
    return _judge(
        count,
        sample,
        ok=f"{words.count(checked, 'PAID sale')}: payments cover the total, change handled",
        noun="PAID sale",
        bad="whose payments do not settle the total (amounts in cents)",
        checked=int(checked),
    )


@INVARIANTS.invariant(
    "pos.lines_sum_to_total",
    requires=(
        *_of("sales", "id", "status", "total", "subtotal", "discount_total"),
        *_of("sale_lines", "sale_id", "line_total"),
    ),
)
def check_lines_sum_to_total(ctx: IntegrityContext) -> Outcome:
    """What was charged is what was sold: a PAID sale's line totals sum to its total, and
    subtotal − discounts = total."""
    sales, sale_lines = T["sales"], T["sale_lines"]
    lines = (
        sa.select(sale_lines.c.sale_id, _sum_cents(sale_lines.c.line_total).label("lines_total"))
        .group_by(sale_lines.c.sale_id)
        .subquery()
    )
    lines_total = sa.func.coalesce(lines.c.lines_total, 0)
    total = _cents(sales.c.total)
    query = (
        sa.select(
            sales.c.id,
            total.label("total"),
            lines_total.label("lines_total"),
            _cents(sales.c.subtotal).label("subtotal"),
            _cents(sales.c.discount_total).label("discount_total"),
        )
        .select_from(sales.outerjoin(lines, lines.c.sale_id == sales.c.id))
        .where(
            sales.c.status == "PAID",
            sa.or_(lines_total != total, _cents(sales.c.subtotal) - _cents(sales.c.discount_total) != total),
        )
    )
    count, sample = _offenders(ctx.conn, query, sales.c.id)
    return _judge(
        count,
        sample,
        ok="every PAID sale's lines sum to its total",
        noun="PAID sale",
        bad="whose lines do not sum to the total (amounts in cents)",
        checked=_count(ctx.conn, sales, sales.c.status == "PAID"),
    )


@INVARIANTS.invariant("pos.paid_has_payments", requires=_PAID_SALE_MONEY)
def check_paid_has_payments(ctx: IntegrityContext) -> Outcome:
    """A sale marked PAID with no payment is goods out with no money in. (A sale whose total
    is zero needs no payment; those are counted in the evidence, not failed.)"""
    money = _paid_sale_money()
    query = sa.select(money.c.id, money.c.total, money.c.payment_rows).where(
        money.c.payment_rows == 0, money.c.total != 0
    )
    count, sample = _offenders(ctx.conn, query, money.c.id)
    free = ctx.conn.execute(
        sa.select(sa.func.count()).select_from(money).where(money.c.payment_rows == 0, money.c.total == 0)
    ).scalar_one()
    return _judge(
        count,
        sample,
        ok="every PAID sale with a total has payments",
        noun="PAID sale",
        bad="without any payment",
        zero_total_without_payments=int(free),
        checked=int(ctx.conn.execute(sa.select(sa.func.count()).select_from(money)).scalar_one()),
    )


@INVARIANTS.invariant(
    "pos.sold_stock_on_paid_sale",
    requires=(
        *_of("stock_items", "id", "tenant_id", "store_id", "status"),
        *_of("sales", "id", "status"),
        *_of("sale_lines", "sale_id", "stock_item_id"),
    ),
)
def check_sold_stock_on_paid_sale(ctx: IntegrityContext) -> Outcome:
    """Stock only leaves as SOLD through a paid sale: a SOLD row without one is shrinkage booked as
    revenue that never came."""
    stock, sales, sale_lines = T["stock_items"], T["sales"], T["sale_lines"]
    on_paid_sale = (
        sa.select(sale_lines.c.stock_item_id)
        .join(sales, sales.c.id == sale_lines.c.sale_id)
        .where(sales.c.status == "PAID", sale_lines.c.stock_item_id == stock.c.id)
    )
    query = sa.select(stock.c.id, stock.c.tenant_id, stock.c.store_id, stock.c.status).where(
        stock.c.status == "SOLD", ~on_paid_sale.exists()
    )
    count, sample = _offenders(ctx.conn, query, stock.c.id)
    return _judge(
        count,
        sample,
        ok="every SOLD stock row is on a PAID sale",
        noun="SOLD stock row",
        bad="on no PAID sale",
        checked=_count(ctx.conn, stock, stock.c.status == "SOLD"),
    )


# --------------------------------------------------------------------------- cash


@INVARIANTS.invariant(
    "cash.closed_sessions_balance",
    requires=(
        *_of("cash_sessions", "id", "store_id", "status", "opening_amount", "expected_amount"),
        *_of("cash_movements", "cash_session_id", "kind", "amount"),
    ),
)
def check_closed_sessions(ctx: IntegrityContext) -> Outcome:
    """A closed till's expected cash is what the count is judged against: it must be the float
    plus the cash its sales kept, or shortages go unseen. Amounts below are in cents."""
    sessions, cash = T["cash_sessions"], T["cash_movements"]
    sales_cash = (
        sa.select(cash.c.cash_session_id, _sum_cents(cash.c.amount).label("cash_sales"))
        .where(cash.c.kind == "SALE")
        .group_by(cash.c.cash_session_id)
        .subquery()
    )
    cash_sales = sa.func.coalesce(sales_cash.c.cash_sales, 0)
    expected = _cents(sessions.c.expected_amount)
    query = (
        sa.select(
            sessions.c.id,
            sessions.c.store_id,
            _cents(sessions.c.opening_amount).label("opening"),
            cash_sales.label("cash_sales"),
            expected.label("expected"),
        )
        .select_from(sessions.outerjoin(sales_cash, sales_cash.c.cash_session_id == sessions.c.id))
        .where(
            sessions.c.status == "CLOSED",
            sa.or_(sessions.c.expected_amount.is_(None), expected != _cents(sessions.c.opening_amount) + cash_sales),
        )
    )
    count, sample = _offenders(ctx.conn, query, sessions.c.id)
    return _judge(
        count,
        sample,
        ok="every closed session's expected cash = opening + cash sales",
        noun="closed cash session",
        bad="whose expected cash is not opening + cash sales (amounts in cents)",
        checked=_count(ctx.conn, sessions, sessions.c.status == "CLOSED"),
    )


# --------------------------------------------------------------------------- exports


@INVARIANTS.invariant(
    "exports.files_match", requires=_of("export_records", "id", "status", "file_path", "size_bytes", "sha256")
)
def check_export_files(ctx: IntegrityContext) -> Outcome:
    """A READY export is a promise that its file can be downloaded as recorded: it must exist with its
    recorded size and SHA-256."""
    exports = T["export_records"]
    folder = ctx.options.exports_dir
    rows = ctx.conn.execute(
        sa.select(exports.c.id, exports.c.file_path, exports.c.size_bytes, exports.c.sha256)
        .where(exports.c.status == "READY")
        .order_by(exports.c.id)
        .execution_options(yield_per=1000)
    )
    checked, problems = 0, []
    for export_id, relative, size, sha256 in rows:
        checked += 1
        problem = file_problem(folder, relative, size, (sha256 or "").lower())
        if problem is not None:
            problems.append({"id": str(export_id), "file_path": relative, "problem": problem})
    evidence = {
        "exports_dir": str(folder),
        "checked": checked,
        "offending": len(problems),
        "sample": problems[:SAMPLE_LIMIT],
    }
    if problems:
        missing = ctx.options.missing_exports_hint
        hint = f" (the exports folder {folder} does not exist; {missing})" if not folder.is_dir() else ""
        return failed(
            f"{words.count(len(problems), 'READY export')} of {checked} "
            f"{'does not match its file' if len(problems) == 1 else 'do not match their files'}{hint}; first: "
            f"{row_text(problems[0])}",
            **evidence,
        )
    return passed(
        f"{words.count(checked, 'READY export file')} present with {'its' if checked == 1 else 'their'} "
        "recorded size and SHA-256",
        **evidence,
    )


# --------------------------------------------------------------------------- idempotency


@INVARIANTS.invariant(
    "idempotency.stuck_records",
    requires=_of("idempotency_records", "id", "tenant_id", "endpoint", "response_status", "created_at"),
)
def check_stuck_idempotency(ctx: IntegrityContext) -> Outcome:
    """A key stuck "in progress" blocks every retry of that request. This schema has no
    in-progress state: a record is written with its final response, in the same transaction
    as the work. A record whose ``response_status`` is not a final HTTP status (below 200 or
    above 599, e.g. a 0 or 102 placeholder) is taken as in progress; older than the allowed
    age it is WARN (FAIL under --strict)."""
    records = T["idempotency_records"]
    in_progress = sa.or_(
        records.c.response_status.is_(None), records.c.response_status < 200, records.c.response_status > 599
    )
    cutoff = ctx.now - dt.timedelta(seconds=ctx.options.idempotency_max_age_sec)
    query = sa.select(
        records.c.id, records.c.tenant_id, records.c.endpoint, records.c.response_status, records.c.created_at
    ).where(in_progress, records.c.created_at < cutoff)
    count, sample = _offenders(ctx.conn, query, records.c.id)
    total = _count(ctx.conn, records)
    recent = _count(ctx.conn, records, in_progress, records.c.created_at >= cutoff)
    evidence = {
        "checked": total,
        "offending": count,
        "sample": sample,
        "in_progress_recent": recent,
        "max_age_sec": ctx.options.idempotency_max_age_sec,
        "cutoff": cutoff.isoformat(),
    }
    if count:
        return warned(
            f"{words.count(count, 'idempotency record')} in progress for more than "
            f"{ctx.options.idempotency_max_age_sec:g} s; first: {row_text(sample[0])}",
            **evidence,
        )
    return passed(
        f"no record in progress beyond {ctx.options.idempotency_max_age_sec:g} s ({words.count(total, 'record')}, "
        f"{recent} recent in progress)",
        **evidence,
    )


# --------------------------------------------------------------------------- tenancy


def _tenancy_relations() -> dict[str, sa.Select[Any]]:
    """Each way a row can point into a store (or at a stock item), and the rows where that
    store's (item's) tenant is not the row's."""
    stores, stock = T["stores"], T["stock_items"]
    relations: dict[str, sa.Select[Any]] = {}
    direct = (
        ("users", "store_id"),
        ("stock_items", "store_id"),
        ("transfers", "origin_store_id"),
        ("transfers", "destination_store_id"),
        ("cash_sessions", "store_id"),
        ("sales", "store_id"),
        ("export_records", "store_id"),
    )
    for table_name, column in direct:
        table = T[table_name]
        relations[f"{table_name}.{column}"] = (
            sa.select(
                table.c.id,
                table.c.tenant_id,
                table.c[column].label("store_id"),
                stores.c.tenant_id.label("store_tenant_id"),
            )
            .join(stores, stores.c.id == table.c[column])
            .where(stores.c.tenant_id != table.c.tenant_id)
        )
    moves, transfers = T["transfer_movements"], T["transfers"]
    for column in ("from_store_id", "to_store_id"):
        relations[f"transfer_movements.{column}"] = (
            sa.select(
                moves.c.id,
                transfers.c.tenant_id,
                moves.c[column].label("store_id"),
                stores.c.tenant_id.label("store_tenant_id"),
            )
            .join(transfers, transfers.c.id == moves.c.transfer_id)
            .join(stores, stores.c.id == moves.c[column])
            .where(stores.c.tenant_id != transfers.c.tenant_id)
        )
    for lines_name, parent_name, parent_key in (
        ("sale_lines", "sales", "sale_id"),
        ("transfer_lines", "transfers", "transfer_id"),
    ):
        lines, parent = T[lines_name], T[parent_name]
        relations[f"{lines_name}.stock_item_id"] = (
            sa.select(lines.c.id, parent.c.tenant_id, lines.c.stock_item_id, stock.c.tenant_id.label("item_tenant_id"))
            .join(parent, parent.c.id == lines.c[parent_key])
            .join(stock, stock.c.id == lines.c.stock_item_id)
            .where(stock.c.tenant_id != parent.c.tenant_id)
        )
    return relations


@INVARIANTS.invariant("tenancy.store_tenant", requires=_TENANCY)
def check_tenancy(ctx: IntegrityContext) -> Outcome:
    """Tenants are isolated: a row pointing at another tenant's store or stock shows one tenant's data to another."""
    found = {
        name: _offenders(ctx.conn, query, query.selected_columns[0]) for name, query in _tenancy_relations().items()
    }
    total = sum(count for count, _ in found.values())
    evidence = {
        "offending": total,
        "relations": {name: {"offending": count, "sample": sample} for name, (count, sample) in found.items()},
    }
    if total:
        first = next(name for name, (count, _) in found.items() if count)
        return failed(
            f"{words.count(total, 'row')} {'points' if total == 1 else 'point'} at another tenant's store or stock; "
            f"first: {first} {row_text(found[first][1][0])}",
            **evidence,
        )
    return passed(f"no row points at another tenant's store or stock ({len(found)} relations checked)", **evidence)
