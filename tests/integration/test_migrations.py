"""The migrations' history on real SQLite and PostgreSQL, beyond pytest-alembic's standard
checks (test_migrations_alembic.py: one head, upgrade, agreement with the models, up/down
consistency): revision ids, the round trip's exact schema, aris3nb's model comparison, the data
migrations, the playbook's own `alembic` command line and an unknown revision."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
import uuid
from decimal import Decimal
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.script import ScriptDirectory

from aris3nb import migrate
from aris3nb.contract.models import Base
from aris3nb.core.db import create_engine
from aris3nb.core.errors import MigrationError
from aris3nb.schema import model_differences, schema_snapshot

ROOT = Path(__file__).resolve().parents[2]


def test_short_revision_ids_and_downgrades_that_do_something() -> None:
    script = ScriptDirectory.from_config(migrate.alembic_config())
    revisions = list(script.walk_revisions())
    assert len(revisions) >= 4
    assert all(len(r.revision) <= 32 for r in revisions), "alembic_version.version_num is VARCHAR(32)"
    assert all(r.module.downgrade.__code__.co_code != (lambda: None).__code__.co_code for r in revisions), (
        "every downgrade does something"
    )


def test_round_trip_restores_the_same_schema(database_url: str) -> None:
    """Stricter than pytest-alembic's up/down checks: the reflected schema (server defaults and
    check constraints included) is the same after ``downgrade base`` and ``upgrade head``."""
    migrate.upgrade(database_url)
    assert migrate.current_revision(database_url) == migrate.head_revision()
    first = schema_snapshot(database_url)
    assert model_differences(database_url) == [], "aris3nb's own comparison (the gate's) agrees on a sound schema"

    migrate.downgrade(database_url, "base")
    assert migrate.current_revision(database_url) is None
    assert set(schema_snapshot(database_url)) <= {"alembic_version"}, "downgrade base leaves nothing of the schema"

    migrate.upgrade(database_url)
    assert schema_snapshot(database_url) == first


def test_model_comparison_notices_a_difference(sqlite_url: str) -> None:
    """aris3nb's own agreement check (aris3nb.schema, as the gate runs it) can fail: a column
    the migrations lack is reported."""
    migrate.upgrade(sqlite_url)
    drifted = sa.MetaData(naming_convention=Base.metadata.naming_convention)
    for table in Base.metadata.sorted_tables:
        table.to_metadata(drifted)
    drifted.tables["stock_items"].append_column(sa.Column("weight_grams", sa.Integer(), nullable=True))
    differences = model_differences(sqlite_url, drifted)
    assert [d[0] for d in differences] == ["add_column"]
    assert differences[0][3].name == "weight_grams"


def _now() -> dt.datetime:
    return dt.datetime(2025, 6, 1, 12, 0, tzinfo=dt.UTC)


def test_transfer_movements_are_backfilled_from_existing_lines(database_url: str) -> None:
    migrate.upgrade(database_url, "0001_initial_schema")
    engine = create_engine(database_url)
    tenant, origin, destination = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    transfers = {status: uuid.uuid4() for status in ("RECEIVED", "DISPATCHED", "CANCELED", "DRAFT")}
    t = Base.metadata.tables  # the columns written here all exist at the older revision
    now = _now()
    with engine.begin() as conn:
        conn.execute(t["tenants"].insert(), {"id": tenant, "slug": "t", "name": "T", "created_at": now})
        conn.execute(
            t["stores"].insert(),
            [
                {"id": s, "tenant_id": tenant, "code": code, "name": code, "created_at": now}
                for s, code in ((origin, "A"), (destination, "B"))
            ],
        )
        conn.execute(
            t["stock_items"].insert(),
            [
                {
                    "id": i,
                    "tenant_id": tenant,
                    "store_id": origin,
                    "sku": "S",
                    "description": "d",
                    "epc": f"E{i}",
                    "status": "RFID",
                    "location_code": "FLOOR",
                    "cost_price": Decimal("1.00"),
                    "sale_price": Decimal("2.00"),
                    "created_at": now,
                    "updated_at": now,
                }
                for i in range(1, 5)
            ],
        )
        stamps = {"created_at": now, "updated_at": now, "dispatched_at": now, "received_at": now, "canceled_at": now}
        conn.execute(
            t["transfers"].insert(),
            [
                {
                    "id": tid,
                    "tenant_id": tenant,
                    "origin_store_id": origin,
                    "destination_store_id": destination,
                    "status": status,
                    "created_by": None,
                    **stamps,
                }
                for status, tid in transfers.items()
            ],
        )
        conn.execute(
            t["transfer_lines"].insert(),
            [
                {
                    "id": 1,
                    "transfer_id": transfers["RECEIVED"],
                    "stock_item_id": 1,
                    "status": "RECEIVED",
                    "origin_status": "RFID",
                    "received_at": now,
                },
                {
                    "id": 2,
                    "transfer_id": transfers["DISPATCHED"],
                    "stock_item_id": 2,
                    "status": "IN_TRANSIT",
                    "origin_status": "RFID",
                    "received_at": None,
                },
                {
                    "id": 3,
                    "transfer_id": transfers["CANCELED"],
                    "stock_item_id": 3,
                    "status": "RETURNED",
                    "origin_status": "PENDING",
                    "received_at": None,
                },
                {
                    "id": 4,
                    "transfer_id": transfers["DRAFT"],
                    "stock_item_id": 4,
                    "status": "PLANNED",
                    "origin_status": "RFID",
                    "received_at": None,
                },
            ],
        )
    migrate.upgrade(database_url, "0002_transfer_movements")
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text("SELECT transfer_line_id, kind FROM transfer_movements ORDER BY transfer_line_id, kind")
        ).all()
    engine.dispose()
    assert [tuple(r) for r in rows] == [
        (1, "DISPATCH"),
        (1, "RECEIVE"),
        (2, "DISPATCH"),
        (3, "DISPATCH"),
        (3, "RETURN"),
    ]
    migrate.downgrade(database_url, "0001_initial_schema")
    assert "transfer_movements" not in schema_snapshot(database_url)


def test_sellable_flag_is_derived_from_status_and_dropped_on_downgrade(database_url: str) -> None:
    migrate.upgrade(database_url, "0004_exports_idempotency")
    engine = create_engine(database_url)
    t = Base.metadata.tables  # the columns written here all exist at the older revision
    tenant, store = uuid.uuid4(), uuid.uuid4()
    now = _now()
    statuses = ["RFID", "PENDING", "IN_TRANSIT", "SOLD"]
    with engine.begin() as conn:
        conn.execute(t["tenants"].insert(), {"id": tenant, "slug": "t", "name": "T", "created_at": now})
        conn.execute(
            t["stores"].insert(), {"id": store, "tenant_id": tenant, "code": "A", "name": "A", "created_at": now}
        )
        conn.execute(
            t["stock_items"].insert(),
            [
                {
                    "id": i,
                    "tenant_id": tenant,
                    "store_id": store,
                    "sku": "S",
                    "description": "d",
                    "epc": f"E{i}",
                    "status": status,
                    "location_code": "X",
                    "cost_price": Decimal("1.00"),
                    "sale_price": Decimal("2.00"),
                    "created_at": now,
                    "updated_at": now,
                }
                for i, status in enumerate(statuses, start=1)
            ],
        )
    migrate.upgrade(database_url, "0005_stock_sellable")
    with engine.connect() as conn:
        sellable = dict(conn.execute(sa.text("SELECT status, sellable FROM stock_items")).all())
    assert {k: bool(v) for k, v in sellable.items()} == {
        "RFID": True,
        "PENDING": True,
        "IN_TRANSIT": False,
        "SOLD": False,
    }
    migrate.downgrade(database_url, "0004_exports_idempotency")
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM stock_items")).scalar_one() == 4, "rows survive the downgrade"
    engine.dispose()
    assert "sellable" not in [c[0] for c in schema_snapshot(database_url)["stock_items"]["columns"]]


@pytest.mark.slow
def test_the_playbook_alembic_command_line_round_trips(database_url: str) -> None:
    """`alembic upgrade head && alembic downgrade base && alembic upgrade head`, verbatim,
    from the repository root, with the target in DATABASE_URL."""
    env = {**os.environ, "DATABASE_URL": database_url}
    alembic = str(Path(sys.executable).with_name("alembic"))
    command = f"{alembic} upgrade head && {alembic} downgrade base && {alembic} upgrade head"
    done = subprocess.run(command, shell=True, cwd=ROOT, env=env, capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr
    assert migrate.current_revision(database_url) == migrate.head_revision()


def test_a_database_at_a_revision_these_migrations_do_not_know_fails_in_one_line(
    sqlite_url: str, tmp_path: Path
) -> None:
    """A foreign target's database (at its own revision): Alembic's refusal is one
    ``FAILED: <reason>`` line and exit 1 from `aris3nb db upgrade`, a MigrationError from the library."""
    foreign = "fr0007_account_outlet_grants_and_unit_shelves"
    engine = create_engine(sqlite_url, create_sqlite_parent=True)
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE alembic_version (version_num VARCHAR(128) NOT NULL PRIMARY KEY)")
        conn.exec_driver_sql(f"INSERT INTO alembic_version VALUES ('{foreign}')")
    engine.dispose()
    with pytest.raises(
        MigrationError, match=f"downgrade to base failed on .*: Can't locate revision identified by '{foreign}'"
    ):
        migrate.downgrade(sqlite_url, "base")
    aris3nb = str(Path(sys.executable).with_name("aris3nb"))
    done = subprocess.run(
        [aris3nb, "db", "upgrade", "--database-url", sqlite_url],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 1, (done.stdout, done.stderr)
    assert done.stderr.strip().splitlines() == [
        f"FAILED: upgrade to head failed on {sqlite_url}: Can't locate revision identified by '{foreign}'"
    ]
    assert "Traceback" not in done.stdout + done.stderr
