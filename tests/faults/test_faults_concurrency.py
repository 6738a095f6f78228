"""Backups racing other processes: two ``backup create`` of one name at once, and writers
committing to the source while ``backup create`` copies and digests it."""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from faultkit import ARIS3NB, KILL_AT, Run, Source, cli_env, run_cli

from aris3nb import migrate
from aris3nb.backup import postgres, sqlite
from aris3nb.backup.create import schema_tables_at
from aris3nb.backup.digest import Deadline
from aris3nb.backup.manifest import validate_backup
from aris3nb.core.db import create_engine
from aris3nb.reference.seed import seed_database

NAME = "pre_deploy_20261128_0800"


def create_args(source: Source) -> list[str]:
    return ["backup", "create", "--name", NAME, "--database-url", source.url, "--exports-dir", str(source.exports)]


# --- two runs, one name ----------------------------------------------------------------------


def test_two_runs_meeting_at_the_rename_one_wins_one_fails_cleanly(small_sqlite: Source, artifacts: Path) -> None:
    """Both runs pass the "name is free" check and build a complete backup; kill_at.py
    holds each at its rename until both are there, then lets them go at once."""
    markers = [artifacts.parent / f"run{i}.json" for i in (1, 2)]
    processes = [
        subprocess.Popen(
            [sys.executable, KILL_AT, "pause-rename", str(marker), "--", *create_args(small_sqlite)],
            env=cli_env(artifacts),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for marker in markers
    ]
    try:
        deadline = time.monotonic() + 60
        while not all(m.exists() for m in markers):
            assert time.monotonic() < deadline and all(p.poll() is None for p in processes), (
                "a run never reached its rename"
            )
            time.sleep(0.01)
        for marker in markers:
            Path(f"{marker}.go").touch()
        results = [Run(p.wait(60), *p.communicate()) for p in processes]
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
    assert sorted(r.returncode for r in results) == [0, 1], results
    loser = next(r for r in results if r.returncode == 1)
    assert f"a backup named {NAME!r} appeared at" in loser.failed_line and "it was left untouched" in loser.failed_line
    assert [p.name for p in (artifacts / "backups").iterdir()] == [NAME], "the loser removed its temporary folder"
    validation = validate_backup(artifacts / "backups" / NAME, schema_tables_at)
    assert validation.ok, validation.problems


def test_two_runs_started_together_one_wins_one_fails_cleanly(big_sqlite: Source, artifacts: Path) -> None:
    """The same race without a harness: whichever check the loser fails (the name taken
    before it started, or taken at its rename), it fails with exit 1 and leaves nothing."""
    processes = [
        subprocess.Popen(
            [ARIS3NB, *create_args(big_sqlite)],
            env=cli_env(artifacts),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    results = [Run(p.wait(120), *p.communicate()) for p in processes]
    assert sorted(r.returncode for r in results) == [0, 1], results
    loser = next(r for r in results if r.returncode == 1)
    assert "already exists" in loser.failed_line or "appeared at" in loser.failed_line
    assert [p.name for p in (artifacts / "backups").iterdir()] == [NAME]
    assert validate_backup(artifacts / "backups" / NAME, schema_tables_at).ok


# --- writers during the backup ------------------------------------------------------------------

WRITER = r"""
import os, sys, time, uuid
from decimal import Decimal
import sqlalchemy as sa
from aris3nb.core.db import create_engine
from aris3nb.contract import models as m

url, log, stop = sys.argv[1:4]
engine = create_engine(url)
sales, payments, stock, audit = (t.__table__ for t in (m.Sale, m.Payment, m.StockItem, m.AuditEvent))
with engine.connect() as conn:
    tenant, store = conn.execute(sa.select(m.Store.__table__.c.tenant_id, m.Store.__table__.c.id).limit(1)).one()
    items = [r[0] for r in conn.execute(sa.select(stock.c.id).order_by(stock.c.id).limit(200))]
previous = None
with open(log, "a") as out:
    n = 0
    while not os.path.exists(stop):
        sale, now = uuid.uuid4(), m.utcnow()
        with engine.begin() as conn:  # one transaction: a sale, its payment, a price change, one marker event
            conn.execute(sales.insert(), {"id": sale, "tenant_id": tenant, "store_id": store, "status": "PAID",
                                          "subtotal": Decimal("5.00"), "discount_total": Decimal("0.00"),
                                          "total": Decimal("5.00"), "created_at": now, "updated_at": now,
                                          "paid_at": now})
            conn.execute(payments.insert(), {"sale_id": sale, "method": "CARD", "amount": Decimal("5.00"),
                                             "created_at": now})
            conn.execute(stock.update().where(stock.c.id == items[n % len(items)])
                         .values(sale_price=Decimal(n % 900) + Decimal("0.99")))
            if previous is not None:
                conn.execute(audit.delete().where(audit.c.id == previous))
            previous = conn.execute(audit.insert().returning(audit.c.id), {
                "action": "WRITER", "entity_type": "writer", "entity_id": str(n), "details": {},
                "created_at": now}).scalar_one()
        n += 1
        out.write(f"{time.time()}\n")
        out.flush()
"""


@contextlib.contextmanager
def writer(url: str, folder: Path) -> Iterator[Path]:
    """A separate process committing to ``url`` until the block ends; yields its commit log."""
    log, stop = folder / "writer.log", folder / "writer.stop"
    process = subprocess.Popen(
        [sys.executable, "-c", WRITER, url, str(log), str(stop)], stderr=subprocess.PIPE, text=True
    )
    try:
        deadline = time.monotonic() + 30
        while not (log.exists() and len(log.read_text().splitlines()) >= 5):
            assert process.poll() is None, process.stderr.read() if process.stderr else ""
            assert time.monotonic() < deadline, "the writer never committed"
            time.sleep(0.01)
        yield log
    finally:
        stop.touch()
        _, errors = process.communicate(timeout=30)
        assert process.returncode == 0, errors


@contextlib.contextmanager
def backup_content(manifest: Path, engine: str, server_url: str) -> Iterator[str]:
    """A database holding exactly what the backup holds, for the test to read."""
    if engine == "postgresql":
        with postgres.scratch_database(server_url, "faults_content") as url:
            postgres.restore(manifest.parent / postgres.DUMP_DIR, url, Deadline.after(120), clean=False)
            yield url
    else:
        yield f"sqlite:///{manifest.parent / sqlite.DATABASE_FILE}"


@pytest.fixture
def seeded(request: pytest.FixtureRequest, tmp_path: Path) -> Source:
    if request.param == "sqlite":
        return request.getfixturevalue("small_sqlite")
    request.applymarker(pytest.mark.postgres)
    url = request.getfixturevalue("postgres_url")
    migrate.upgrade(url)
    seed_database(url, scale=3000, exports_dir=tmp_path / "exports")
    return Source(url, tmp_path / "exports")


@pytest.mark.slow
@pytest.mark.parametrize("seeded", ["sqlite", "postgresql"], indirect=True)
def test_writers_during_the_backup_cannot_make_it_disagree_with_itself(
    seeded: Source, artifacts: Path, tmp_path: Path
) -> None:
    with writer(seeded.url, tmp_path) as log:
        started = time.time()
        made = run_cli(create_args(seeded), artifacts)
        finished = time.time()
        time.sleep(0.2)  # the writer goes on after the backup
    assert made.returncode == 0, made.stderr
    commits = [float(line) for line in log.read_text().splitlines()]
    assert any(started < t < finished for t in commits), "some writes committed while the backup ran"
    assert commits[-1] > finished

    manifest_path = artifacts / "backups" / NAME / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    engine_name = manifest["source"]["engine"]
    with backup_content(manifest_path, engine_name, seeded.url) as url:
        engine = create_engine(url)
        with engine.connect() as conn:
            counts = {
                t["name"]: conn.execute(sa.text(f'SELECT count(*) FROM "{t["name"]}"')).scalar_one()
                for t in manifest["tables"]
            }
            sales_of_writer = conn.execute(sa.text("SELECT count(*) FROM sales WHERE created_by IS NULL")).scalar_one()
            their_payments = conn.execute(
                sa.text("SELECT count(*) FROM payments p JOIN sales s ON s.id = p.sale_id WHERE s.created_by IS NULL")
            ).scalar_one()
            markers = conn.execute(
                sa.text("SELECT count(*) FROM audit_events WHERE entity_type = 'writer'")
            ).scalar_one()
        engine.dispose()
    assert counts == {t["name"]: t["rows"] for t in manifest["tables"]}, "the manifest counts what the backup holds"
    assert sales_of_writer == their_payments > 0, "each writer transaction is in the backup whole, or not at all"
    assert markers == 1, "one marker event: the backup is one moment of the writer's history"

    drill = run_cli(
        ["backup", "restore-verify", str(manifest_path), "--database-url", seeded.url],
        artifacts,
        timeout=300,
        OPS_ENABLE_BACKUP_DRILL="true",
    )
    assert drill.returncode == 0, drill.stdout + drill.stderr
    assert "drill PASS" in drill.stdout and "tables match the manifest" in drill.stdout
