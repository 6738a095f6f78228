"""A rollback restore (``aris3nb backup restore ... --yes``) that fails half-way: refused by
the target part-way through, out of disk, or killed. Whatever stops it, the safety backup
it took first exists, validates, and restoring it gives back the target's prior state;
and the rollback log says what happened."""

from __future__ import annotations

import json
import resource
import signal
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from faultkit import ARIS3NB, Run, Source, cli_env, database_name, run_cli, run_killed_at, wait_for_no_sessions

from aris3nb import migrate
from aris3nb.backup import postgres, sqlite
from aris3nb.backup.create import schema_tables_at
from aris3nb.backup.digest import Deadline
from aris3nb.backup.manifest import validate_backup
from aris3nb.core.db import create_engine
from aris3nb.reference.seed import seed_database

NAME = "pre_deploy_20261128_0800"


def state(url: str) -> dict[str, tuple[int, str]]:
    """Every table's row count and content digest: what "the same state" means here."""
    if url.startswith("sqlite"):
        digests = sqlite.table_digests(Path(url.removeprefix("sqlite:///")), Deadline(None))
    else:
        digests = postgres.table_digests(url, Deadline(None))
    return {name: (d.rows, d.digest) for name, d in digests.items()}


def change_target(url: str) -> None:
    """What happened to the target since the backup (the reason to roll it back)."""
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(sa.text("DELETE FROM audit_events WHERE id % 3 = 0"))
        conn.execute(sa.text("UPDATE stock_items SET sale_price = sale_price + 1 WHERE id % 7 = 0"))
    engine.dispose()


def rollback_log(artifacts: Path) -> list[dict[str, Any]]:
    path = artifacts / "rollback_log.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def safety_backup(artifacts: Path) -> Path:
    found = [p for p in (artifacts / "backups").iterdir() if p.name.startswith("safety_")]
    assert len(found) == 1, found
    return found[0]


def check_safety_backup_restores(artifacts: Path, target: str, prior: dict[str, tuple[int, str]]) -> None:
    """The safety backup validates, records the prior state, and restoring it gives it back."""
    safety = safety_backup(artifacts)
    validation = validate_backup(safety, schema_tables_at)
    assert validation.ok, validation.problems
    recorded = {
        t["name"]: (t["rows"], t["digest"]) for t in json.loads((safety / "manifest.json").read_text())["tables"]
    }
    assert recorded == prior, "the safety backup holds the target as it was before the restore"
    done = run_cli(["backup", "restore", str(safety / "manifest.json"), "--target-url", target, "--yes"], artifacts)
    assert done.returncode == 0, done.stderr
    assert state(target) == prior


@pytest.fixture
def pg_source(postgres_url: str, tmp_path: Path) -> Source:
    migrate.upgrade(postgres_url)
    seed_database(postgres_url, scale=3000, exports_dir=tmp_path / "exports")
    return Source(postgres_url, tmp_path / "exports")


def backup_of(source: Source, artifacts: Path) -> Path:
    done = run_cli(
        ["backup", "create", "--name", NAME, "--database-url", source.url, "--exports-dir", str(source.exports)],
        artifacts,
    )
    assert done.returncode == 0, done.stderr
    return artifacts / "backups" / NAME / "manifest.json"


@pytest.mark.slow
@pytest.mark.postgres
def test_a_target_that_refuses_part_way_is_left_as_it_was(pg_source: Source, artifacts: Path) -> None:
    """pg_restore drops and recreates the tables in one transaction; a view someone added
    on the target depends on one of them, so the DROP fails part-way and everything rolls back."""
    manifest = backup_of(pg_source, artifacts)
    change_target(pg_source.url)
    engine = create_engine(pg_source.url)
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE VIEW paid_sales_report AS SELECT id, total FROM sales WHERE status = 'PAID'")
    engine.dispose()
    prior = state(pg_source.url)

    done = run_cli(["backup", "restore", str(manifest), "--target-url", pg_source.url, "--yes"], artifacts)
    assert done.returncode == 1
    line = done.failed_line
    assert "pg_restore failed" in line and "other objects depend on it" in line, line
    assert "safety backup" in line and "aris3nb backup restore" in line and "--yes" in line
    assert [e["status"] for e in rollback_log(artifacts)] == ["STARTED", "FAILED"]
    assert state(pg_source.url) == prior, "the failed restore changed nothing"
    check_safety_backup_restores(artifacts, pg_source.url, prior)


@pytest.mark.slow
def test_a_restore_that_runs_out_of_disk_fails_cleanly(small_sqlite: Source, artifacts: Path, tmp_path: Path) -> None:
    """The target shrank since the backup (rows deleted): its safety backup fits under the
    file size limit, the staged copy of the larger backup does not."""
    engine = create_engine(small_sqlite.url)
    with engine.begin() as conn:  # grow the source, back it up, then shrink it back (the target)
        conn.exec_driver_sql(
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 3000) "
            "INSERT INTO audit_events (action, entity_type, entity_id, details, created_at) "
            "SELECT 'PAD', 'pad', CAST(i AS TEXT), json_object('pad', hex(randomblob(500))), "
            "'2026-01-01 00:00:00.000000' FROM n"
        )
    engine.dispose()
    manifest = backup_of(small_sqlite, artifacts)
    engine = create_engine(small_sqlite.url)
    with engine.begin() as conn:
        conn.exec_driver_sql("DELETE FROM audit_events WHERE action = 'PAD'")
    with engine.connect() as conn:
        conn.exec_driver_sql("VACUUM")
    engine.dispose()
    prior = state(small_sqlite.url)
    before = small_sqlite.path.read_bytes()
    limit = small_sqlite.path.stat().st_size + 200_000
    assert (manifest.parent / sqlite.DATABASE_FILE).stat().st_size > limit

    def limit_file_size() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    process = subprocess.run(
        [ARIS3NB, "backup", "restore", str(manifest), "--target-url", small_sqlite.url, "--yes"],
        env=cli_env(artifacts),
        preexec_fn=limit_file_size,
        capture_output=True,
        text=True,
        timeout=120,
    )
    done = Run(process.returncode, process.stdout, process.stderr)
    assert done.returncode == 1, done.stderr
    line = done.failed_line
    assert "File too large" in line and "safety backup" in line, line
    assert [e["status"] for e in rollback_log(artifacts)] == ["STARTED", "FAILED"]
    assert small_sqlite.path.read_bytes() == before, "the target file is untouched"
    assert sorted(p.name for p in small_sqlite.path.parent.iterdir() if p.name.startswith(".")) == [], (
        "no half-written staging file beside the target"
    )
    check_safety_backup_restores(artifacts, small_sqlite.url, prior)


@pytest.mark.slow
@pytest.mark.parametrize("engine_name", ["sqlite", "postgresql"])
def test_a_restore_killed_half_way_leaves_the_target_as_it_was(
    engine_name: str, artifacts: Path, request: pytest.FixtureRequest
) -> None:
    """SIGKILL (the whole process group, pg_restore included) while the restore writes:
    SQLite part way through the backup API's copy into the target (one transaction: SQLite
    rolls it back from its journal); PostgreSQL while pg_restore is inside its one transaction."""
    if engine_name == "postgresql":
        request.applymarker(pytest.mark.postgres)
    source: Source = request.getfixturevalue("small_sqlite" if engine_name == "sqlite" else "pg_source")
    manifest = backup_of(source, artifacts)
    change_target(source.url)
    prior = state(source.url)
    seen = run_killed_at(
        "restore", ["backup", "restore", str(manifest), "--target-url", source.url, "--yes"], artifacts
    )
    assert [e["status"] for e in rollback_log(artifacts)] == ["STARTED"], "the log shows a restore that never ended"
    if engine_name == "postgresql":
        assert seen["pg_restore"] >= 1
        assert not wait_for_no_sessions(request.getfixturevalue("postgres_admin"), database_name(source.url))
    else:
        assert 0 < seen["pages_left"] < seen["pages"], seen
        scratch = list(Path(tempfile.gettempdir()).glob(f"aris3nb-drill-pid{seen['pid']}-*"))
        assert [p.name for f in scratch for p in f.iterdir()] == ["restored.sqlite3"], "a copy of the data is left..."
    assert state(source.url) == prior, "killed part way: SQLite rolled the copy back, the target is as it was"
    check_safety_backup_restores(artifacts, source.url, prior)
    if engine_name == "sqlite":
        assert not list(Path(tempfile.gettempdir()).glob(f"aris3nb-*-pid{seen['pid']}-*")), "...until the next restore"


def test_a_staged_copy_that_cannot_be_completed_is_removed(small_sqlite: Source, big_sqlite_template: Path) -> None:
    """The last write of a SQLite restore, the staged copy beside the target, fails (here
    under a file size limit this test process sets on itself for the call): the partial
    staged file is removed and the target is untouched."""
    before = small_sqlite.path.read_bytes()
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (2_000_000, hard))  # SIGXFSZ is ignored by Python: EFBIG
    try:
        with pytest.raises(OSError, match="File too large"):
            sqlite.replace_database(big_sqlite_template / "aris3.db", small_sqlite.url)
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
    assert small_sqlite.path.read_bytes() == before
    assert [p.name for p in small_sqlite.path.parent.iterdir() if p.name.startswith(".")] == []
