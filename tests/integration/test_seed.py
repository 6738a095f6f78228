"""Seed data: deterministic, consistent, the same on SQLite and PostgreSQL, and careful
about where it writes."""

from __future__ import annotations

import hashlib
import stat
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from aris3nb import migrate
from aris3nb.contract import models as m
from aris3nb.core.db import create_engine
from aris3nb.core.errors import SeedError
from aris3nb.reference.security import verify_password
from aris3nb.reference.seed import SMOKE_TENANT_SLUG, SMOKE_USERNAME, seed_database

SCALE = 1500


def table_contents(url: str) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table, read through the models' types and ordered by key."""
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return {
                table.name: [tuple(row) for row in conn.execute(sa.select(table).order_by(*table.primary_key.columns))]
                for table in m.Base.metadata.sorted_tables
            }
    finally:
        engine.dispose()


def file_digests(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.rglob("*.csv"))
    }


def seeded(url: str, exports: Path, **kwargs: Any) -> dict[str, int]:
    migrate.upgrade(url)
    return seed_database(url, exports_dir=exports, **kwargs).rows


def test_same_seed_same_data_different_seed_different_data(tmp_path: Path) -> None:
    urls = {name: f"sqlite:///{tmp_path / name}.db" for name in ("a", "b", "c")}
    seeded(urls["a"], tmp_path / "ex-a", scale=SCALE, seed=7)
    seeded(urls["b"], tmp_path / "ex-b", scale=SCALE, seed=7)
    seeded(urls["c"], tmp_path / "ex-c", scale=SCALE, seed=8)
    a, b, c = (table_contents(u) for u in urls.values())
    assert a == b
    assert file_digests(tmp_path / "ex-a") == file_digests(tmp_path / "ex-b")
    assert a["stock_items"] != c["stock_items"]
    assert file_digests(tmp_path / "ex-a") != file_digests(tmp_path / "ex-c")


@pytest.mark.postgres
def test_postgresql_gets_exactly_the_rows_sqlite_gets(tmp_path: Path, postgres_url: str) -> None:
    sqlite_url = f"sqlite:///{tmp_path / 's.db'}"
    rows_sqlite = seeded(sqlite_url, tmp_path / "ex-s", scale=SCALE, seed=3)
    rows_postgres = seeded(postgres_url, tmp_path / "ex-p", scale=SCALE, seed=3)
    assert rows_sqlite == rows_postgres
    assert table_contents(sqlite_url) == table_contents(postgres_url)
    assert file_digests(tmp_path / "ex-s") == file_digests(tmp_path / "ex-p")
    # Sequences were moved past the explicit ids: the next insert gets a fresh one.
    engine = create_engine(postgres_url)
    with engine.connect() as conn:
        next_id = conn.execute(sa.text("SELECT nextval(pg_get_serial_sequence('stock_items', 'id'))")).scalar_one()
    engine.dispose()
    assert next_id == SCALE + 1


def test_data_is_realistic_and_consistent(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'a.db'}"
    rows = seeded(url, tmp_path / "ex", scale=SCALE, seed=11)
    assert rows["stock_items"] == SCALE
    engine = create_engine(url)
    q = lambda sql: conn.execute(sa.text(sql)).all()  # noqa: E731
    with engine.connect() as conn:
        assert {r[0] for r in q("SELECT status FROM stock_items")} == set(m.STOCK_STATUSES)
        assert {r[0] for r in q("SELECT status FROM transfers")} == set(m.TRANSFER_STATUSES)
        assert {r[0] for r in q("SELECT status FROM sales")} >= {"PAID", "CANCELED"}
        assert {r[0] for r in q("SELECT method FROM payments")} == set(m.PAYMENT_METHODS)
        assert {r[0] for r in q("SELECT role FROM users")} == set(m.ROLES)
        assert q("SELECT count(*) FROM tenants")[0][0] >= 3 + 1
        assert (
            q("""SELECT count(*) FROM stock_items s WHERE status = 'IN_TRANSIT' AND NOT EXISTS (
                      SELECT 1 FROM transfer_lines l JOIN transfers t ON t.id = l.transfer_id
                      WHERE l.stock_item_id = s.id AND l.status = 'IN_TRANSIT'
                        AND t.status IN ('DISPATCHED', 'PARTIAL_RECEIVED'))""")[0][0]
            == 0
        )
        assert (
            q("""SELECT count(*) FROM stock_items s WHERE status = 'SOLD' AND NOT EXISTS (
                      SELECT 1 FROM sale_lines l JOIN sales x ON x.id = l.sale_id
                      WHERE l.stock_item_id = s.id AND x.status = 'PAID')""")[0][0]
            == 0
        )
        assert q("SELECT count(*) FROM stock_items WHERE sellable != (status IN ('RFID', 'PENDING'))")[0][0] == 0
        assert (
            q("""SELECT count(*) FROM transfer_lines l JOIN transfers t ON t.id = l.transfer_id
                    JOIN stock_items s ON s.id = l.stock_item_id
                    WHERE l.status = 'RECEIVED' AND s.store_id != t.destination_store_id""")[0][0]
            == 0
        )
        assert q("PRAGMA foreign_key_check") == []
    # Money is exact: every paid sale's payments add up to its total, to the cent.
    with engine.connect() as conn:
        sales = conn.execute(
            sa.select(m.Sale.__table__.c.id, m.Sale.__table__.c.total).where(m.Sale.__table__.c.status == "PAID")
        ).all()
        paid: dict[Any, Any] = {}
        for sale_id, amount in conn.execute(sa.select(m.Payment.__table__.c.sale_id, m.Payment.__table__.c.amount)):
            paid[sale_id] = paid.get(sale_id, 0) + amount
        sessions = conn.execute(
            sa.select(m.CashSession.__table__).where(m.CashSession.__table__.c.status == "CLOSED")
        ).all()
        cash_in: dict[Any, Any] = {}
        booked: dict[Any, Any] = {}
        movements = m.CashMovement.__table__
        for session_id, kind, amount in conn.execute(
            sa.select(movements.c.cash_session_id, movements.c.kind, movements.c.amount)
        ):
            booked[session_id] = booked.get(session_id, 0) + amount
            if kind != "CLOSING_ADJUSTMENT":
                cash_in[session_id] = cash_in.get(session_id, 0) + amount
    engine.dispose()
    assert sales and all(paid[sale_id] == total for sale_id, total in sales)
    # Expected cash is the float plus cash sales; what was counted is everything booked.
    assert sessions and all(s.expected_amount == cash_in[s.id] and s.counted_amount == booked[s.id] for s in sessions)
    assert any(s.counted_amount != s.expected_amount for s in sessions), "some tills do not balance"


def test_smoke_tenant_and_accounts(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'a.db'}"
    seeded(url, tmp_path / "ex", scale=300, seed_password="demo-pass-1", smoke_password="smoke-pass-1")
    engine = create_engine(url)
    with engine.connect() as conn:
        users = {u.username: u for u in conn.execute(sa.select(m.User.__table__))}
        smoke_stock = conn.execute(
            sa.text("SELECT count(*) FROM stock_items s JOIN tenants t ON t.id = s.tenant_id WHERE t.slug = :slug"),
            {"slug": SMOKE_TENANT_SLUG},
        ).scalar_one()
    engine.dispose()
    assert verify_password(users[SMOKE_USERNAME].password_hash, "smoke-pass-1")
    assert verify_password(users["northwind.admin"].password_hash, "demo-pass-1")
    assert not verify_password(users["northwind.admin"].password_hash, "smoke-pass-1")
    assert smoke_stock == 0


def test_export_files_match_their_records_and_are_private(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'a.db'}"
    exports = tmp_path / "ex"
    seeded(url, exports, scale=600)
    engine = create_engine(url)
    with engine.connect() as conn:
        records = conn.execute(sa.select(m.ExportRecord.__table__)).all()
    engine.dispose()
    assert {r.kind for r in records} == set(m.EXPORT_KINDS)
    for record in records:
        path = exports / record.file_path
        data = path.read_bytes()
        assert hashlib.sha256(data).hexdigest() == record.sha256
        assert len(data) == record.size_bytes
        assert data.count(b"\n") == record.row_count + 1  # header
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert not list(exports.rglob("*.tmp")), "no temporary file left behind"


def test_refuses_a_database_that_already_has_data(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'a.db'}"
    seeded(url, tmp_path / "ex", scale=100)
    before = table_contents(url)
    with pytest.raises(SeedError, match="already holds tenants"):
        seed_database(url, scale=100, exports_dir=tmp_path / "ex2")
    assert table_contents(url) == before
    assert not (tmp_path / "ex2").exists()


def test_refuses_a_database_that_is_not_migrated(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'a.db'}"
    migrate.upgrade(url, "0003_cash_sessions")
    with pytest.raises(SeedError, match="run `aris3nb db upgrade` first"):
        seed_database(url, scale=10, exports_dir=tmp_path / "ex")


def test_zero_scale_still_gives_tenants_and_accounts(tmp_path: Path) -> None:
    rows = seeded(f"sqlite:///{tmp_path / 'a.db'}", tmp_path / "ex", scale=0)
    assert rows.get("stock_items", 0) == 0
    assert rows["users"] > 0 and rows["tenants"] >= 4


def test_progress_is_reported_per_chunk(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'a.db'}"
    migrate.upgrade(url)
    calls: list[tuple[int, int]] = []
    seed_database(
        url, scale=45_000, exports_dir=tmp_path / "ex", progress=lambda done, total: calls.append((done, total))
    )
    assert calls == [(20_000, 45_000), (40_000, 45_000), (45_000, 45_000)]


@pytest.mark.slow
def test_memory_does_not_grow_chunk_after_chunk(tmp_path: Path) -> None:
    """Rows are generated and written chunk by chunk, never held whole: the Python heap
    after the last chunk is hardly larger than after the first few."""
    import tracemalloc

    url = f"sqlite:///{tmp_path / 'a.db'}"
    migrate.upgrade(url)
    heap: list[int] = []
    tracemalloc.start()
    try:
        seed_database(
            url,
            scale=140_000,
            exports_dir=tmp_path / "ex",
            progress=lambda done, total: heap.append(tracemalloc.get_traced_memory()[0]),
        )
    finally:
        tracemalloc.stop()
    assert len(heap) == 7
    # Holding on to a chunk's rows would add well over 10 MB a chunk (30 MB over the last
    # three); the bounded value caches still filling add well under 1 MB.
    assert heap[-1] < heap[3] * 1.25, [h // 1024 for h in heap]
