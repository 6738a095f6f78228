"""Deterministic, realistic ARIS3 seed data at any scale.

``scale`` is the number of stock rows; tenants, stores, users, transfers, sales, cash
sessions and exports grow with it. Everything comes from one ``random.Random(seed)`` and a
fixed calendar, so the same seed gives the same rows byte for byte (backups' content
digests depend on that). Rows are generated and written in chunks, so memory stays
bounded whatever the scale.

The data is internally consistent, as the post-go-live integrity check expects: an
IN_TRANSIT item is on a dispatched transfer, a SOLD item is on a paid sale, payments cover
their sale, cash sales are booked to an open cash session of their store and day, and a
closed session's expected amount is its float plus its cash sales.

Besides the business tenants there is a *smoke tenant* (``smoke``, stores SMOKE-A and
SMOKE-B, user ``smoke.admin``) with no stock: the smoke suite creates and moves its own.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import gc
import random
import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from aris3nb.contract import models as m
from aris3nb.core.db import create_engine, database_errors
from aris3nb.core.errors import SeedError
from aris3nb.core.settings import EMBEDDED_SCALE, EMBEDDED_SEED
from aris3nb.migrate import current_revision, head_revision
from aris3nb.reference.bulk import BulkWriter
from aris3nb.reference.export_files import export_relative_path, export_rows, write_export_file
from aris3nb.reference.security import hash_seed_password
from aris3nb.reference.smoke_tenant import SMOKE_STORE_CODES, SMOKE_TENANT_SLUG, SMOKE_USERNAME

DEFAULT_SCALE = EMBEDDED_SCALE
DEFAULT_SEED = EMBEDDED_SEED
CHUNK_ROWS = 20_000

#: The seeded business calendar: stock arrives before it, trading happens within it.
EPOCH = dt.datetime(2026, 3, 2, tzinfo=dt.UTC)
WINDOW_DAYS = 91
OPENING_FLOAT = Decimal("150.00")

TENANT_NAMES = (
    ("northwind", "Northwind Apparel"),
    ("bluefin", "Bluefin Outdoor"),
    ("copperleaf", "Copperleaf Home"),
    ("granite", "Granite Footwear"),
    ("saffron", "Saffron Kids"),
    ("tidewater", "Tidewater Sports"),
    ("juniper", "Juniper Living"),
    ("marigold", "Marigold Beauty"),
    ("obsidian", "Obsidian Tech"),
    ("quartz", "Quartz Jewellery"),
    ("redwood", "Redwood Denim"),
    ("zephyr", "Zephyr Travel"),
)
CITIES = (
    "Lisbon",
    "Porto",
    "Madrid",
    "Valencia",
    "Lyon",
    "Milan",
    "Turin",
    "Munich",
    "Vienna",
    "Prague",
    "Krakow",
    "Ghent",
    "Utrecht",
    "Aarhus",
    "Bergen",
    "Tallinn",
    "Riga",
    "Cork",
    "Leeds",
    "Bilbao",
)
DEPARTMENTS = ("APP", "FTW", "ACC", "HOM", "SPT")
PRODUCTS = {
    "APP": ("T-shirt", "Hoodie", "Chinos", "Parka", "Polo", "Dress"),
    "FTW": ("Sneaker", "Boot", "Sandal", "Loafer"),
    "ACC": ("Belt", "Cap", "Scarf", "Backpack", "Wallet"),
    "HOM": ("Throw", "Cushion", "Mug", "Lamp"),
    "SPT": ("Jersey", "Shorts", "Yoga mat", "Bottle"),
}
ADJECTIVES = ("Classic", "Slim", "Relaxed", "Organic", "Heritage", "Urban", "Trail", "Studio")
COLOURS = ("Black", "Navy", "Olive", "Sand", "Rust", "Grey", "White", "Teal")
SIZES = ("XS", "S", "M", "L", "XL")


@dataclass
class SeedSummary:
    """What a seed run wrote: row counts per table, the export files, and how long it took."""

    scale: int
    seed: int
    rows: dict[str, int] = field(default_factory=dict)
    export_files: list[Path] = field(default_factory=list)
    duration_sec: float = 0.0


@dataclass(frozen=True)
class _Store:
    id: uuid.UUID
    tenant_no: int
    code: str
    deliveries: tuple[dt.datetime, ...]


@dataclass
class _Tenant:
    no: int
    id: uuid.UUID
    slug: str
    stores: list[_Store]
    catalog: list[tuple[str, str, Decimal, Decimal]]  # sku, description, cost, sale price
    cashiers: dict[uuid.UUID, uuid.UUID] = field(default_factory=dict)  # store id -> cashier id
    managers: dict[uuid.UUID, uuid.UUID] = field(default_factory=dict)
    admin_id: uuid.UUID | None = None


@dataclass(slots=True)
class _Item:
    id: int
    tenant: _Tenant
    store: _Store
    sku: str
    description: str
    cost: Decimal
    price: Decimal
    status: str
    created_at: dt.datetime
    updated_at: dt.datetime
    used: bool = False


@dataclass
class _Session:
    id: uuid.UUID
    store: _Store
    day: int
    cash_in: Decimal = Decimal("0.00")


def tenant_count(scale: int) -> int:
    return min(len(TENANT_NAMES), 3 + scale // 500_000)


def stores_per_tenant(scale: int) -> int:
    return max(2, min(60, scale // (tenant_count(scale) * 10_000)))


class _Generator:
    """Holds the random stream and the ids handed out so far; one per seed run."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.seed = seed
        self.next_id: dict[str, int] = defaultdict(lambda: 1)

    def uuid(self) -> uuid.UUID:
        return uuid.UUID(int=self.rng.getrandbits(128), version=4)

    def int_id(self, table: str) -> int:
        value = self.next_id[table]
        self.next_id[table] = value + 1
        return value

    def money(self, low: float, high: float) -> Decimal:
        return Decimal(self.rng.randrange(int(low * 100), int(high * 100) + 1)).scaleb(-2)

    def business_time(self, day: int) -> dt.datetime:
        """A moment during trading hours (09:00-20:59) of day ``day`` of the window."""
        return EPOCH + dt.timedelta(days=day, hours=9, seconds=self.rng.randrange(12 * 3600))


def _table(model: type[m.Base]) -> sa.Table:
    """The model's table (SQLAlchemy types ``__table__`` as any ``FromClause``)."""
    table = model.__table__
    if not isinstance(table, sa.Table):
        raise TypeError(f"{model.__name__} is not mapped to a table")
    return table


def _require_empty_database_at_head(conn: sa.Connection, url: str) -> None:
    revision = current_revision(url)
    head = head_revision()
    if revision != head:
        raise SeedError(f"database is at revision {revision or 'none'}, not {head}: run `aris3nb db upgrade` first")
    if conn.execute(sa.select(sa.func.count()).select_from(m.Tenant.__table__)).scalar_one():
        raise SeedError("database already holds tenants: seed only into a freshly migrated, empty database")


def seed_database(
    database_url: str,
    *,
    scale: int = DEFAULT_SCALE,
    seed: int = DEFAULT_SEED,
    exports_dir: Path,
    seed_password: str = "aris3-demo-pass",
    smoke_password: str = "aris3-smoke-pass",
    progress: Callable[[int, int], None] | None = None,
) -> SeedSummary:
    """Fill a migrated, empty database with ``scale`` stock rows and everything around them.

    ``progress(done, total)`` is called after each chunk of stock rows.
    """
    if scale < 0:
        raise SeedError(f"scale must be zero or more, not {scale}")
    started = time.perf_counter()
    with _collector_paused():
        summary = _seed(database_url, scale, seed, exports_dir, seed_password, smoke_password, progress)
    summary.duration_sec = time.perf_counter() - started
    return summary


@contextlib.contextmanager
def _collector_paused() -> Iterator[None]:
    """Pause Python's cycle collector: rows make no reference cycles, and the collector
    would only scan and rescan the chunk's live rows (a quarter of the run time)."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _seed(
    database_url: str,
    scale: int,
    seed: int,
    exports_dir: Path,
    seed_password: str,
    smoke_password: str,
    progress: Callable[[int, int], None] | None,
) -> SeedSummary:
    gen = _Generator(seed)
    summary = SeedSummary(scale=scale, seed=seed)
    engine = create_engine(database_url)
    try:
        with database_errors(database_url, "seed the database"), engine.connect() as conn:
            _require_empty_database_at_head(conn, database_url)
            if conn.dialect.name == "sqlite":
                # A fresh database being filled: losing it to a power cut only means seeding again.
                conn.exec_driver_sql("PRAGMA synchronous=OFF")
                conn.exec_driver_sql("PRAGMA cache_size=-65536")
                # Index builds sort in memory, on a second core.
                conn.exec_driver_sql("PRAGMA temp_store=MEMORY")
                conn.exec_driver_sql("PRAGMA threads=2")
            writer = BulkWriter(conn)
            counts: dict[str, int] = defaultdict(int)

            def write(model: type[m.Base], columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
                counts[model.__tablename__] += writer.insert(_table(model), columns, rows)

            tenants = _write_tenants(gen, write, scale, seed_password)
            _write_smoke_tenant(gen, write, smoke_password)
            sessions = _write_cash_sessions(gen, write, tenants)
            conn.commit()
            done = 0
            with writer.deferred_indexes(m.Base.metadata.sorted_tables):
                for chunk_rows in _chunks(scale, CHUNK_ROWS):
                    _write_chunk(gen, write, tenants, sessions, chunk_rows)
                    conn.commit()
                    done += chunk_rows
                    if progress is not None:
                        progress(done, scale)
            _close_cash_sessions(gen, writer, write, sessions)
            conn.commit()
            summary.export_files = _write_exports(gen, write, conn, tenants, exports_dir)
            writer.reset_sequences(
                t for t in m.Base.metadata.sorted_tables if "id" in t.c and isinstance(t.c.id.type, sa.Integer)
            )
            conn.commit()
            summary.rows = dict(sorted(counts.items()))
    finally:
        engine.dispose()
    return summary


def _chunks(total: int, size: int) -> Iterator[int]:
    while total > 0:
        yield min(size, total)
        total -= size


def _write_tenants(gen: _Generator, write: Callable[..., None], scale: int, password: str) -> list[_Tenant]:
    tenants: list[_Tenant] = []
    store_rows, user_rows, tenant_rows = [], [], []
    per_tenant = stores_per_tenant(scale)
    skus_per_tenant = max(24, min(5_000, scale // (tenant_count(scale) * 40)))
    for no, (slug, name) in enumerate(TENANT_NAMES[: tenant_count(scale)], start=1):
        tenant = _Tenant(no=no, id=gen.uuid(), slug=slug, stores=[], catalog=_catalog(gen, skus_per_tenant))
        created = EPOCH - dt.timedelta(days=400 - no)
        tenant_rows.append((tenant.id, slug, name, created))
        for store_no in range(1, per_tenant + 1):
            code = f"{slug[:3].upper()}-{store_no:03d}"
            deliveries = tuple(
                sorted(
                    EPOCH - dt.timedelta(days=gen.rng.randrange(1, 180), minutes=gen.rng.randrange(600))
                    for _ in range(24)
                )
            )
            store = _Store(id=gen.uuid(), tenant_no=no, code=code, deliveries=deliveries)
            tenant.stores.append(store)
            city = CITIES[(no * 7 + store_no) % len(CITIES)]
            store_rows.append((store.id, tenant.id, code, f"{name} {city} #{store_no}", created))
        tenant.admin_id = gen.uuid()
        user_rows.append(
            _user_row(
                gen,
                tenant.admin_id,
                tenant.id,
                None,
                f"{slug}.admin",
                f"{name} Administrator",
                "ADMIN",
                password,
                created,
            )
        )
        user_rows.append(
            _user_row(
                gen, gen.uuid(), tenant.id, None, f"{slug}.auditor", f"{name} Auditor", "AUDITOR", password, created
            )
        )
        for store in tenant.stores:
            prefix = f"{slug}.{store.code.lower()}"
            tenant.managers[store.id] = gen.uuid()
            tenant.cashiers[store.id] = gen.uuid()
            user_rows.append(
                _user_row(
                    gen,
                    tenant.managers[store.id],
                    tenant.id,
                    store.id,
                    f"{prefix}.manager",
                    f"Manager {store.code}",
                    "MANAGER",
                    password,
                    created,
                )
            )
            user_rows.append(
                _user_row(
                    gen,
                    tenant.cashiers[store.id],
                    tenant.id,
                    store.id,
                    f"{prefix}.cashier",
                    f"Cashier {store.code}",
                    "CASHIER",
                    password,
                    created,
                )
            )
        tenants.append(tenant)
    write(m.Tenant, ("id", "slug", "name", "created_at"), tenant_rows)
    write(m.Store, ("id", "tenant_id", "code", "name", "created_at"), store_rows)
    write(m.User, _USER_COLUMNS, user_rows)
    return tenants


_USER_COLUMNS = (
    "id",
    "tenant_id",
    "store_id",
    "username",
    "full_name",
    "role",
    "password_hash",
    "is_active",
    "created_at",
)


def _user_row(
    gen: _Generator,
    user_id: uuid.UUID,
    tenant_id: uuid.UUID,
    store_id: uuid.UUID | None,
    username: str,
    full_name: str,
    role: str,
    password: str,
    created: dt.datetime,
) -> tuple[Any, ...]:
    password_hash = hash_seed_password(password, f"{gen.seed}:{username}")
    return (user_id, tenant_id, store_id, username, full_name, role, password_hash, True, created)


def _write_smoke_tenant(gen: _Generator, write: Callable[..., None], password: str) -> None:
    created = EPOCH - dt.timedelta(days=30)
    tenant_id = gen.uuid()
    write(
        m.Tenant, ("id", "slug", "name", "created_at"), [(tenant_id, SMOKE_TENANT_SLUG, "Smoke Test Tenant", created)]
    )
    write(
        m.Store,
        ("id", "tenant_id", "code", "name", "created_at"),
        [(gen.uuid(), tenant_id, code, f"Smoke store {code[-1]}", created) for code in SMOKE_STORE_CODES],
    )
    write(
        m.User,
        _USER_COLUMNS,
        [
            _user_row(
                gen, gen.uuid(), tenant_id, None, SMOKE_USERNAME, "Smoke Administrator", "ADMIN", password, created
            )
        ],
    )


def _catalog(gen: _Generator, size: int) -> list[tuple[str, str, Decimal, Decimal]]:
    catalog = []
    for style in range(1, size + 1):
        dept = DEPARTMENTS[style % len(DEPARTMENTS)]
        size_code = SIZES[gen.rng.randrange(len(SIZES))]
        sku = f"{dept}-{style:05d}-{size_code}"
        description = (
            f"{gen.rng.choice(ADJECTIVES)} {gen.rng.choice(PRODUCTS[dept])} {gen.rng.choice(COLOURS)} {size_code}"
        )
        cost = gen.money(2, 120)
        markup = Decimal(gen.rng.randrange(160, 260)) / 100
        price = (cost * markup).quantize(Decimal(1)) - Decimal("0.01")
        catalog.append((sku, description, cost, max(price, cost)))
    return catalog


def _write_cash_sessions(
    gen: _Generator, write: Callable[..., None], tenants: list[_Tenant]
) -> dict[tuple[uuid.UUID, int], _Session]:
    """One session per store and trading day; the last day's stay open (the tills are live)."""
    sessions: dict[tuple[uuid.UUID, int], _Session] = {}
    rows, movements = [], []
    for tenant in tenants:
        for store in tenant.stores:
            for day in range(WINDOW_DAYS):
                session = _Session(id=gen.uuid(), store=store, day=day)
                sessions[(store.id, day)] = session
                opened = EPOCH + dt.timedelta(days=day, hours=8)
                rows.append(
                    (
                        session.id,
                        tenant.id,
                        store.id,
                        tenant.cashiers[store.id],
                        "OPEN",
                        OPENING_FLOAT,
                        None,
                        None,
                        opened,
                        None,
                    )
                )
                movements.append((gen.int_id("cash_movements"), session.id, None, "OPENING", OPENING_FLOAT, opened))
    write(
        m.CashSession,
        (
            "id",
            "tenant_id",
            "store_id",
            "cashier_id",
            "status",
            "opening_amount",
            "expected_amount",
            "counted_amount",
            "opened_at",
            "closed_at",
        ),
        rows,
    )
    write(m.CashMovement, ("id", "cash_session_id", "sale_id", "kind", "amount", "created_at"), movements)
    return sessions


def _close_cash_sessions(
    gen: _Generator, writer: BulkWriter, write: Callable[..., None], sessions: dict[tuple[uuid.UUID, int], _Session]
) -> None:
    rows, adjustments = [], []
    for session in sessions.values():
        if session.day == WINDOW_DAYS - 1:
            continue
        expected = OPENING_FLOAT + session.cash_in
        # Most tills balance; a few are a little over or short, as real ones are, and the
        # difference is booked as the service books it: a closing adjustment.
        counted = expected + (gen.money(-5, 5) if gen.rng.random() < 0.08 else Decimal("0.00"))
        closed = EPOCH + dt.timedelta(days=session.day, hours=21, minutes=gen.rng.randrange(45))
        rows.append((session.id, "CLOSED", expected, counted, closed))
        if counted != expected:
            adjustments.append(
                (gen.int_id("cash_movements"), session.id, None, "CLOSING_ADJUSTMENT", counted - expected, closed)
            )
    writer.update(_table(m.CashSession), "id", ("status", "expected_amount", "counted_amount", "closed_at"), rows)
    write(m.CashMovement, ("id", "cash_session_id", "sale_id", "kind", "amount", "created_at"), adjustments)


class _Chunk:
    """The rows of one chunk of stock, and of the transfers and sales that move it."""

    def __init__(self) -> None:
        self.stock: list[tuple[Any, ...]] = []
        self.transfers: list[tuple[Any, ...]] = []
        self.lines: list[tuple[Any, ...]] = []
        self.movements: list[tuple[Any, ...]] = []
        self.sales: list[tuple[Any, ...]] = []
        self.sale_lines: list[tuple[Any, ...]] = []
        self.payments: list[tuple[Any, ...]] = []
        self.cash: list[tuple[Any, ...]] = []
        self.audit: list[tuple[Any, ...]] = []


#: Cumulative shares of stock statuses: 55 % RFID, 20 % PENDING, 10 % IN_TRANSIT, 15 % SOLD.
_STATUS_THRESHOLDS = ((0.55, "RFID"), (0.75, "PENDING"), (0.85, "IN_TRANSIT"), (1.0, "SOLD"))


def _status_for(draw: float) -> str:
    for threshold, status in _STATUS_THRESHOLDS:
        if draw < threshold:
            return status
    return "SOLD"


def _write_chunk(
    gen: _Generator,
    write: Callable[..., None],
    tenants: list[_Tenant],
    sessions: dict[tuple[uuid.UUID, int], _Session],
    rows: int,
) -> None:
    items: list[_Item] = []
    draw = gen.rng.random  # the hot loop: one float per choice is several times cheaper than randrange
    first_id = gen.next_id["stock_items"]
    gen.next_id["stock_items"] = first_id + rows
    for item_id in range(first_id, first_id + rows):
        tenant = tenants[int(draw() * len(tenants))]
        store = tenant.stores[int(draw() * len(tenant.stores))]
        sku, description, cost, price = tenant.catalog[int(draw() * len(tenant.catalog))]
        arrived = store.deliveries[int(draw() * len(store.deliveries))]
        items.append(
            _Item(item_id, tenant, store, sku, description, cost, price, _status_for(draw()), arrived, arrived)
        )
    chunk = _Chunk()
    # Keyed by store code: a str caches its hash, a UUID computes it on every lookup.
    by_store: dict[str, dict[str, list[_Item]]] = defaultdict(lambda: defaultdict(list))
    for item in items:
        by_store[item.store.code]["on_hand" if item.status in m.SELLABLE_STATUSES else item.status].append(item)
    for tenant in tenants:
        for store in tenant.stores:
            groups = by_store.get(store.code)
            if groups:
                _transfers_from(gen, chunk, tenant, store, groups, by_store)
                _sales_in(gen, chunk, tenant, store, groups, sessions)
    for item in items:
        chunk.stock.append(
            (
                item.id,
                item.tenant.id,
                item.store.id,
                item.sku,
                item.description,
                # SGTIN-96-like: header, tenant's company prefix, serial (ascending, so that
                # the (tenant, epc) unique index grows at its end rather than everywhere).
                f"3034{item.tenant.no:04X}{item.id:016X}",
                item.status,
                _location(gen.rng, item.status),
                item.status in m.SELLABLE_STATUSES,
                item.cost,
                item.price,
                item.created_at,
                item.updated_at,
            )
        )
    write(
        m.StockItem,
        (
            "id",
            "tenant_id",
            "store_id",
            "sku",
            "description",
            "epc",
            "status",
            "location_code",
            "sellable",
            "cost_price",
            "sale_price",
            "created_at",
            "updated_at",
        ),
        chunk.stock,
    )
    write(
        m.Transfer,
        (
            "id",
            "tenant_id",
            "origin_store_id",
            "destination_store_id",
            "status",
            "created_by",
            "created_at",
            "updated_at",
            "dispatched_at",
            "received_at",
            "canceled_at",
        ),
        chunk.transfers,
    )
    write(m.TransferLine, ("id", "transfer_id", "stock_item_id", "status", "origin_status", "received_at"), chunk.lines)
    write(
        m.TransferMovement,
        (
            "id",
            "transfer_id",
            "transfer_line_id",
            "stock_item_id",
            "kind",
            "from_store_id",
            "to_store_id",
            "actor_id",
            "created_at",
        ),
        chunk.movements,
    )
    write(
        m.Sale,
        (
            "id",
            "tenant_id",
            "store_id",
            "status",
            "created_by",
            "cash_session_id",
            "subtotal",
            "discount_total",
            "total",
            "created_at",
            "updated_at",
            "paid_at",
            "canceled_at",
        ),
        chunk.sales,
    )
    write(
        m.SaleLine, ("id", "sale_id", "stock_item_id", "sku", "unit_price", "discount", "line_total"), chunk.sale_lines
    )
    write(m.Payment, ("id", "sale_id", "method", "amount", "created_at"), chunk.payments)
    write(m.CashMovement, ("id", "cash_session_id", "sale_id", "kind", "amount", "created_at"), chunk.cash)
    write(
        m.AuditEvent,
        ("id", "tenant_id", "actor_id", "action", "entity_type", "entity_id", "trace_id", "details", "created_at"),
        chunk.audit,
    )


def _location(rng: random.Random, status: str) -> str:
    if status == "RFID":
        return f"FLOOR-{1 + int(rng.random() * 12):02d}" if rng.random() < 0.8 else "BACKROOM"
    return {"PENDING": "RECEIVING", "IN_TRANSIT": "IN_TRANSIT", "SOLD": "SOLD"}[status]


def _batches(rng: random.Random, items: list[_Item], low: int, high: int) -> Iterator[list[_Item]]:
    start = 0
    while start < len(items):
        size = rng.randint(low, high)
        yield items[start : start + size]
        start += size


def _free_on_hand(groups: dict[str, list[_Item]], share: float, rng: random.Random) -> list[_Item]:
    """Take about ``share`` of a store's unused on-hand items (marking them used)."""
    taken = [item for item in groups.get("on_hand", []) if not item.used and rng.random() < share]
    for item in taken:
        item.used = True
    return taken


def _audit(
    gen: _Generator,
    chunk: _Chunk,
    tenant: _Tenant,
    actor: uuid.UUID | None,
    action: str,
    entity: str,
    entity_id: uuid.UUID,
    at: dt.datetime,
    details: dict[str, Any],
) -> None:
    chunk.audit.append(
        (
            gen.int_id("audit_events"),
            tenant.id,
            actor,
            action,
            entity,
            str(entity_id),
            f"seed-{gen.rng.getrandbits(48):012x}",
            details,
            at,
        )
    )


#: The service's audit action that leaves an entity in each state (its last action).
_TRANSFER_ACTIONS = {
    "DRAFT": "transfer.create",
    "DISPATCHED": "transfer.dispatch",
    "PARTIAL_RECEIVED": "transfer.receive",
    "RECEIVED": "transfer.receive",
    "CANCELED": "transfer.cancel",
}
_SALE_ACTIONS = {"DRAFT": "sale.create", "PAID": "sale.checkout", "CANCELED": "sale.cancel"}


def _transfers_from(
    gen: _Generator,
    chunk: _Chunk,
    tenant: _Tenant,
    origin: _Store,
    groups: dict[str, list[_Item]],
    by_store: dict[str, dict[str, list[_Item]]],
) -> None:
    rng = gen.rng
    others = [s for s in tenant.stores if s.id != origin.id]
    manager = tenant.managers[origin.id]
    # Open transfers carrying this store's in-transit stock, some already partly received.
    for batch in _batches(rng, groups.get("IN_TRANSIT", []), 1, 8):
        destination = rng.choice(others)
        partial = rng.random() < 0.3
        received = _free_on_hand(by_store[destination.code], 0.02, rng)[:3] if partial else []
        status = "PARTIAL_RECEIVED" if received else "DISPATCHED"
        _transfer(gen, chunk, tenant, origin, destination, manager, status, in_transit=batch, received=received)
    # Closed history: received, canceled before dispatch, canceled after dispatch; and drafts.
    for status, share in (("RECEIVED", 0.08), ("CANCELED_DRAFT", 0.01), ("CANCELED_RETURNED", 0.01), ("DRAFT", 0.01)):
        for batch in _batches(rng, _free_on_hand(groups, share, rng), 1, 8):
            if status == "RECEIVED":
                # These items are here now: they came from another store.
                _transfer(
                    gen,
                    chunk,
                    tenant,
                    rng.choice(others),
                    origin,
                    tenant.managers[origin.id],
                    "RECEIVED",
                    received=batch,
                )
            else:
                _transfer(gen, chunk, tenant, origin, rng.choice(others), manager, status, planned=batch)


def _transfer(
    gen: _Generator,
    chunk: _Chunk,
    tenant: _Tenant,
    origin: _Store,
    destination: _Store,
    actor: uuid.UUID,
    status: str,
    *,
    in_transit: Sequence[_Item] = (),
    received: Sequence[_Item] = (),
    planned: Sequence[_Item] = (),
) -> None:
    rng = gen.rng
    transfer_id = gen.uuid()
    day = rng.randrange(WINDOW_DAYS - 3)
    created = gen.business_time(day)
    dispatched = created + dt.timedelta(hours=rng.randint(1, 20))
    arrived = dispatched + dt.timedelta(hours=rng.randint(12, 60))
    dispatched_at = received_at = canceled_at = None
    lines: list[tuple[_Item, str, dt.datetime | None]] = []
    if status in ("DISPATCHED", "PARTIAL_RECEIVED", "RECEIVED"):
        dispatched_at = dispatched
        lines += [(item, "IN_TRANSIT", None) for item in in_transit]
        lines += [(item, "RECEIVED", arrived) for item in received]
        if status == "RECEIVED":
            received_at = arrived
    elif status == "CANCELED_RETURNED":
        dispatched_at, canceled_at = dispatched, arrived
        lines += [(item, "RETURNED", None) for item in planned]
    elif status == "CANCELED_DRAFT":
        canceled_at = dispatched
        lines += [(item, "PLANNED", None) for item in planned]
    else:
        lines += [(item, "PLANNED", None) for item in planned]
    status = status.split("_")[0] if status.startswith("CANCELED") else status
    updated = max(t for t in (created, dispatched_at, received_at, canceled_at) if t is not None)
    chunk.transfers.append(
        (
            transfer_id,
            tenant.id,
            origin.id,
            destination.id,
            status,
            actor,
            created,
            updated,
            dispatched_at,
            received_at,
            canceled_at,
        )
    )
    _audit(
        gen, chunk, tenant, actor, _TRANSFER_ACTIONS[status], "transfer", transfer_id, updated, {"lines": len(lines)}
    )
    for item, line_status, line_received in lines:
        line_id = gen.int_id("transfer_lines")
        origin_status = item.status if item.status in m.SELLABLE_STATUSES else rng.choice(m.SELLABLE_STATUSES)
        chunk.lines.append((line_id, transfer_id, item.id, line_status, origin_status, line_received))
        if line_status in ("IN_TRANSIT", "RECEIVED", "RETURNED"):
            chunk.movements.append(
                (
                    gen.int_id("transfer_movements"),
                    transfer_id,
                    line_id,
                    item.id,
                    "DISPATCH",
                    origin.id,
                    None,
                    actor,
                    dispatched,
                )
            )
        if line_status == "RECEIVED":
            chunk.movements.append(
                (
                    gen.int_id("transfer_movements"),
                    transfer_id,
                    line_id,
                    item.id,
                    "RECEIVE",
                    None,
                    destination.id,
                    actor,
                    arrived,
                )
            )
            item.updated_at = max(item.updated_at, arrived)
        elif line_status == "RETURNED":
            chunk.movements.append(
                (
                    gen.int_id("transfer_movements"),
                    transfer_id,
                    line_id,
                    item.id,
                    "RETURN",
                    None,
                    origin.id,
                    actor,
                    arrived,
                )
            )
            item.updated_at = max(item.updated_at, arrived)
        elif line_status == "IN_TRANSIT":
            item.updated_at = max(item.updated_at, dispatched)


def _sales_in(
    gen: _Generator,
    chunk: _Chunk,
    tenant: _Tenant,
    store: _Store,
    groups: dict[str, list[_Item]],
    sessions: dict[tuple[uuid.UUID, int], _Session],
) -> None:
    rng = gen.rng
    cashier = tenant.cashiers[store.id]
    for batch in _batches(rng, groups.get("SOLD", []), 1, 4):
        _sale(gen, chunk, tenant, store, cashier, "PAID", batch, sessions)
    for status, share in (("CANCELED", 0.03), ("DRAFT", 0.005)):
        for batch in _batches(rng, _free_on_hand(groups, share, rng), 1, 3):
            _sale(gen, chunk, tenant, store, cashier, status, batch, sessions)


def _sale(
    gen: _Generator,
    chunk: _Chunk,
    tenant: _Tenant,
    store: _Store,
    cashier: uuid.UUID,
    status: str,
    items: Sequence[_Item],
    sessions: dict[tuple[uuid.UUID, int], _Session],
) -> None:
    rng = gen.rng
    sale_id = gen.uuid()
    day = rng.randrange(WINDOW_DAYS)
    created = gen.business_time(day)
    subtotal = discount_total = Decimal("0.00")
    for item in items:
        discount = (
            (item.price * Decimal(rng.choice((5, 10, 20))) / 100).quantize(m.CENT)
            if rng.random() < 0.15
            else Decimal("0.00")
        )
        subtotal += item.price
        discount_total += discount
        chunk.sale_lines.append(
            (gen.int_id("sale_lines"), sale_id, item.id, item.sku, item.price, discount, item.price - discount)
        )
    total = subtotal - discount_total
    paid_at = canceled_at = session_id = None
    updated = created
    if status == "PAID":
        paid_at = updated = created + dt.timedelta(seconds=rng.randint(30, 600))
        method = rng.choices(m.PAYMENT_METHODS, weights=(35, 55, 10))[0]
        payments = [(method, total)]
        if method == "CARD" and total > 40 and rng.random() < 0.1:  # split tender: part cash, rest card
            cash_part = (total / 3).quantize(m.CENT)
            payments = [("CASH", cash_part), ("CARD", total - cash_part)]
        cash = sum((amount for meth, amount in payments if meth == "CASH"), Decimal("0.00"))
        if cash:
            session = sessions[(store.id, day)]
            session_id = session.id
            session.cash_in += cash
            chunk.cash.append((gen.int_id("cash_movements"), session.id, sale_id, "SALE", cash, paid_at))
        for meth, amount in payments:
            chunk.payments.append((gen.int_id("payments"), sale_id, meth, amount, paid_at))
        for item in items:
            item.updated_at = max(item.updated_at, paid_at)
    elif status == "CANCELED":
        canceled_at = updated = created + dt.timedelta(seconds=rng.randint(30, 900))
    chunk.sales.append(
        (
            sale_id,
            tenant.id,
            store.id,
            status,
            cashier,
            session_id,
            subtotal,
            discount_total,
            total,
            created,
            updated,
            paid_at,
            canceled_at,
        )
    )
    _audit(gen, chunk, tenant, cashier, _SALE_ACTIONS[status], "sale", sale_id, updated, {"total": str(total)})


def _write_exports(
    gen: _Generator, write: Callable[..., None], conn: sa.Connection, tenants: list[_Tenant], exports_dir: Path
) -> list[Path]:
    """Per tenant, a stock export and a sales export of its first store, made on the last day."""
    rows, files = [], []
    made = EPOCH + dt.timedelta(days=WINDOW_DAYS - 1, hours=18)
    for tenant in tenants:
        store = tenant.stores[0]
        for kind in m.EXPORT_KINDS:
            export_id = gen.uuid()
            header, data = export_rows(conn, kind, tenant.id, store.id)
            written = write_export_file(exports_dir, export_relative_path(tenant.id, export_id), header, data)
            files.append(exports_dir / written.relative_path)
            rows.append(
                (
                    export_id,
                    tenant.id,
                    store.id,
                    tenant.admin_id,
                    kind,
                    "CSV",
                    "READY",
                    written.relative_path,
                    written.row_count,
                    written.size_bytes,
                    written.sha256,
                    {"store_id": str(store.id)},
                    made,
                )
            )
    write(
        m.ExportRecord,
        (
            "id",
            "tenant_id",
            "store_id",
            "requested_by",
            "kind",
            "file_format",
            "status",
            "file_path",
            "row_count",
            "size_bytes",
            "sha256",
            "filters",
            "created_at",
        ),
        rows,
    )
    return files
