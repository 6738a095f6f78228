"""Recovery that never harms what it protects: the right backup or none, no stranded locks,
no client-side deadlock, no backup its own validator would refuse (docs/RELIABILITY.md
"Recovery never harms the target")."""

from __future__ import annotations

import contextlib
import json
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from faultkit import Run, Source, database_name, database_url_named, run_cli, sessions_on

from aris3nb import migrate
from aris3nb.backup import pg_sessions, postgres
from aris3nb.backup.catalog import choose_backup
from aris3nb.backup.digest import Deadline
from aris3nb.core.db import create_engine
from aris3nb.core.errors import BackupError, MigrationError, NoBackup
from aris3nb.core.settings import load_settings
from aris3nb.reference.seed import seed_database

pytestmark = pytest.mark.postgres


def make_database(admin: sa.Engine, scale: int, tmp_path: Path, *, schema: str | None = None) -> Source:
    name = f"aris3nb_test_{uuid.uuid4().hex[:12]}"
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
        if schema:  # the target keeps its tables in another schema, named by the database's search_path
            conn.exec_driver_sql(f'ALTER DATABASE "{name}" SET search_path = {schema}')
    url = database_url_named(name)
    if schema:
        engine = create_engine(url)
        with engine.begin() as conn:
            conn.exec_driver_sql(f"CREATE SCHEMA {schema}")
        engine.dispose()
    exports = tmp_path / f"exports-{name}"
    migrate.upgrade(url)
    seed_database(url, scale=scale, exports_dir=exports)
    return Source(url, exports)


@pytest.fixture
def databases(postgres_admin: sa.Engine, tmp_path: Path) -> Iterator[list[Source]]:
    made: list[Source] = []

    def make(scale: int = 200, schema: str | None = None) -> Source:
        made.append(make_database(postgres_admin, scale, tmp_path, schema=schema))
        return made[-1]

    yield make  # type: ignore[misc]
    with postgres_admin.connect() as conn:
        for source in made:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{database_name(source.url)}" WITH (FORCE)')


def stock_rows(url: str) -> int:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return int(conn.exec_driver_sql("SELECT count(*) FROM stock_items").scalar_one())
    finally:
        engine.dispose()


def create(source: Source, name: str, artifacts: Path, *extra: str, **env: str) -> Run:
    return run_cli(
        [
            "backup",
            "create",
            "--name",
            name,
            "--database-url",
            source.url,
            "--exports-dir",
            str(source.exports),
            *extra,
        ],
        artifacts,
        **env,
    )


def aris3nb_sessions(admin: sa.Engine, database: str, settle_sec: float = 5.0) -> list[tuple[int, str, str]]:
    """aris3nb's sessions (and its pg_dump's, pg_restore's) still on ``database``. A server
    backend leaves pg_stat_activity a moment after its client closed the connection (its exit
    is asynchronous): one that is still there ``settle_sec`` later was left behind."""
    deadline = time.monotonic() + settle_sec
    while True:
        left = [s for s in sessions_on(admin, database) if s[1].startswith("aris3nb") or s[1].startswith("pg_")]
        if not left or time.monotonic() > deadline:
            return left
        time.sleep(0.1)


# --- the right backup or none -----------------------------------------------------------


def test_a_backup_of_another_database_is_never_restored_over_the_target(databases, artifacts: Path) -> None:
    prod, other = databases(scale=150), databases(scale=400)
    assert create(prod, "old_prod", artifacts).returncode == 0
    time.sleep(0.01)
    assert create(other, "newer_other", artifacts).returncode == 0
    before = stock_rows(prod.url)

    # Named by hand: refused without the second confirmation, and the log says so.
    named = run_cli(
        ["backup", "restore", str(artifacts / "backups/newer_other/manifest.json"), "--target-url", prod.url, "--yes"],
        artifacts,
    )
    assert named.returncode == 1
    assert "was not made from" in named.failed_line and "--allow-other-source" in named.failed_line
    assert stock_rows(prod.url) == before
    log = [json.loads(line) for line in (artifacts / "rollback_log.jsonl").read_text().splitlines()]
    assert log[-1]["status"] == "REFUSED"

    # Chosen automatically: only the target's own backup, never the newer one of the other database.
    choice = choose_backup(load_settings(artifacts={"dir": artifacts}), prod.url, require_valid=True, purpose="restore")
    assert choice.manifest is not None and choice.manifest.parent.name == "old_prod"
    assert [c.name for c in choice.passed_over] == ["newer_other"]
    assert "not of the target" in (choice.passed_over[0].rejected or "")

    # Confirmed twice: restored, and the log records that it was another source.
    forced = run_cli(
        [
            "backup",
            "restore",
            str(artifacts / "backups/newer_other/manifest.json"),
            "--target-url",
            prod.url,
            "--yes",
            "--allow-other-source",
            "--json",
        ],
        artifacts,
    )
    assert forced.returncode == 0, forced.stderr
    assert json.loads(forced.stdout)["other_source"]
    assert stock_rows(prod.url) == stock_rows(other.url)
    log = [json.loads(line) for line in (artifacts / "rollback_log.jsonl").read_text().splitlines()]
    assert log[-1]["status"] == "RESTORED" and log[-1]["other_source_confirmed"]


def test_safety_backups_are_never_chosen_and_no_backup_names_every_one_found(databases, artifacts: Path) -> None:
    prod, other = databases(scale=100), databases(scale=100)
    assert create(other, "of_other", artifacts).returncode == 0
    settings = load_settings(artifacts={"dir": artifacts})
    with pytest.raises(NoBackup, match="of_other .*not of the target"):
        choose_backup(settings, prod.url, require_valid=True, purpose="restore")
    assert create(prod, "safety_by_hand", artifacts).returncode == 0
    with pytest.raises(NoBackup, match="safety_by_hand .*a safety backup"):
        choose_backup(settings, prod.url, require_valid=True, purpose="restore")
    (artifacts / "backups" / "copied_by_hand").mkdir()  # a folder without a manifest is named too
    (artifacts / "backups" / ".tmp-being_made-pid1-x").mkdir()  # a backup being made is not
    with pytest.raises(NoBackup, match="copied_by_hand .*no manifest.json: not a backup") as none:
        choose_backup(settings, prod.url, require_valid=True, purpose="restore")
    assert ".tmp-being_made" not in str(none.value)


# --- never strand the target ------------------------------------------------------------


@pytest.fixture
def lock_holder(postgres_admin: sa.Engine) -> Iterator[callable]:
    """Holds a transaction with a lock on a table of a database until the test ends."""
    held: list[tuple[sa.Engine, sa.Connection]] = []

    def hold(url: str, mode: str = "ROW EXCLUSIVE") -> None:
        engine = sa.create_engine(url, poolclass=sa.NullPool, connect_args={"application_name": "someone_else"})
        conn = engine.connect()
        conn.exec_driver_sql(f"LOCK TABLE stock_items IN {mode} MODE")
        held.append((engine, conn))

    yield hold
    for engine, conn in held:
        with contextlib.suppress(sa.exc.DBAPIError):  # ended by --terminate-sessions: nothing to close
            conn.close()
        engine.dispose()


def test_a_restore_refuses_while_another_session_holds_locks_and_leaves_nothing_behind(
    databases, artifacts: Path, lock_holder, postgres_admin: sa.Engine
) -> None:
    prod = databases(scale=150)
    assert create(prod, "before", artifacts).returncode == 0
    lock_holder(prod.url)
    started = time.monotonic()
    refused = run_cli(
        [
            "backup",
            "restore",
            str(artifacts / "backups/before/manifest.json"),
            "--target-url",
            prod.url,
            "--yes",
            "--timeout",
            "60",
        ],
        artifacts,
    )
    assert refused.returncode == 1 and time.monotonic() - started < 30
    line = refused.failed_line
    assert "someone_else" in line and "--terminate-sessions" in line and "LOCK TABLE stock_items" in line, line
    assert not aris3nb_sessions(postgres_admin, database_name(prod.url)), "no session of aris3nb left"

    ended = run_cli(
        [
            "backup",
            "restore",
            str(artifacts / "backups/before/manifest.json"),
            "--target-url",
            prod.url,
            "--yes",
            "--terminate-sessions",
        ],
        artifacts,
    )
    assert ended.returncode == 0, ended.stderr
    statuses = [json.loads(line)["status"] for line in (artifacts / "rollback_log.jsonl").read_text().splitlines()]
    assert statuses[-3:] == ["SESSIONS_TERMINATED", "STARTED", "RESTORED"]
    assert not aris3nb_sessions(postgres_admin, database_name(prod.url))


def test_pg_restore_waiting_on_a_lock_is_stopped_and_its_session_ended(
    databases, artifacts: Path, lock_holder, postgres_admin: sa.Engine
) -> None:
    """A lock taken after the restore's check (a race the check cannot see): pg_restore's
    archive sets lock_timeout = 0 itself, so aris3nb's watch stops it and ends its session."""
    prod = databases(scale=150)
    assert create(prod, "before", artifacts).returncode == 0
    lock_holder(prod.url, "ACCESS SHARE")  # enough to block DROP TABLE of --clean
    started = time.monotonic()
    with pytest.raises(BackupError, match="waited more than 2 s for a lock") as stopped:
        postgres.restore(
            artifacts / "backups/before" / postgres.DUMP_DIR,
            prod.url,
            Deadline.after(60),
            clean=True,
            lock_timeout_sec=2,
        )
    assert time.monotonic() - started < 20
    assert "someone_else" in str(stopped.value)
    assert not aris3nb_sessions(postgres_admin, database_name(prod.url)), "pg_restore's server session was ended"


def test_a_backup_meeting_a_locked_table_fails_within_its_lock_timeout_and_leaves_no_session(
    databases, artifacts: Path, lock_holder, postgres_admin: sa.Engine
) -> None:
    prod = databases(scale=150)
    lock_holder(prod.url, "ACCESS EXCLUSIVE")  # a migration's ALTER TABLE in progress
    started = time.monotonic()
    done = create(prod, "blocked", artifacts, OPS_LOCK_TIMEOUT_SEC="2")
    assert done.returncode == 1 and time.monotonic() - started < 30
    assert "not granted within 2 s" in done.failed_line and "someone_else" in done.failed_line
    assert not (artifacts / "backups" / "blocked").exists()
    assert not aris3nb_sessions(postgres_admin, database_name(prod.url))


@pytest.mark.slow
def test_backups_beside_a_migrating_loop_complete_or_fail_fast_and_never_hang(
    databases, artifacts: Path, postgres_admin: sa.Engine
) -> None:
    """The deadlock the server cannot see (aris3nb's snapshot, Alembic's ALTER, pg_dump's
    LOCK) never forms: every backup completes and validates, or fails within its lock timeout."""
    prod = databases(scale=300)
    stop = threading.Event()
    migrations = {"done": 0}

    def migrate_loop() -> None:
        while not stop.is_set():
            try:
                migrate.downgrade(prod.url, "0004_exports_idempotency")
                migrate.upgrade(prod.url)
                migrations["done"] += 1
            except MigrationError:  # a migration waits for its locks a bounded time too, then fails
                migrations["failed"] = migrations.get("failed", 0) + 1
                migrate.upgrade(prod.url)

    loop = threading.Thread(target=migrate_loop, daemon=True)
    loop.start()
    outcomes = []
    try:
        for number in range(8):
            started = time.monotonic()
            done = create(prod, f"beside_{number}", artifacts, OPS_LOCK_TIMEOUT_SEC="2")
            outcomes.append((done.returncode, round(time.monotonic() - started, 1)))
            assert time.monotonic() - started < 60, "a backup hung beside the migrations"
            if done.returncode == 0:
                valid = run_cli(
                    ["backup", "validate", str(artifacts / f"backups/beside_{number}/manifest.json")], artifacts
                )
                assert valid.returncode == 0, valid.stdout
            else:
                assert "lock" in done.failed_line or "revision" in done.failed_line, done.failed_line
    finally:
        stop.set()
        loop.join(120)
    assert migrations["done"] >= 1, outcomes
    assert not aris3nb_sessions(postgres_admin, database_name(prod.url)), outcomes


# --- a backup is complete or it is not a backup -----------------------------------------


def test_a_target_in_another_schema_is_backed_up_drilled_and_restored(databases, artifacts: Path) -> None:
    prod = databases(scale=150, schema="aris3")
    done = create(prod, "in_schema", artifacts, "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["tables"] > 5
    manifest = artifacts / "backups/in_schema/manifest.json"
    assert json.loads(manifest.read_text())["source"]["schema"] == "aris3"
    assert run_cli(["backup", "validate", str(manifest)], artifacts).returncode == 0
    drilled = run_cli(
        ["backup", "restore-verify", str(manifest), "--database-url", prod.url],
        artifacts,
        OPS_ENABLE_BACKUP_DRILL="true",
    )
    assert drilled.returncode == 0, drilled.stdout + drilled.stderr
    restored = run_cli(["backup", "restore", str(manifest), "--target-url", prod.url, "--yes"], artifacts)
    assert restored.returncode == 0, restored.stderr


def test_a_backup_whose_tables_are_not_its_schema_is_not_published(databases, artifacts: Path) -> None:
    prod = databases(scale=100)
    engine = create_engine(prod.url)
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE stray_notes (id integer PRIMARY KEY)")
    engine.dispose()
    done = create(prod, "with_stray", artifacts)
    assert done.returncode == 1
    assert "not kept" in done.failed_line and "stray_notes" in done.failed_line
    assert not (artifacts / "backups" / "with_stray").exists()


def test_session_names_are_unique_and_fit_postgres(databases) -> None:
    names = {pg_sessions.session_name("backup") for _ in range(50)}
    assert len(names) == 50 and all(len(n) <= 63 and n.startswith("aris3nb-backup-") for n in names)


@pytest.mark.postgres
def test_a_backup_stopped_by_sigterm_mid_copy_says_interrupted_and_leaves_nothing(
    databases, artifacts: Path, postgres_admin: sa.Engine
) -> None:
    """SIGTERM (a CI job cancelled) while the backup's snapshot session is reading: exit 130
    with the one word "interrupted" — no traceback (the connection stopped mid-COPY is closed as
    it is, not reset by the pool) — no backup under its name, no session left on the server."""
    import signal
    import subprocess

    from faultkit import ARIS3NB, cli_env

    source = databases(scale=20000)
    database = database_name(source.url)
    process = subprocess.Popen(
        [ARIS3NB, "backup", "create", "--name", "stopped", "--database-url", source.url],
        env=cli_env(artifacts, ARIS3_EXPORTS_DIR=str(source.exports)),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and process.poll() is None:
        if any(name.startswith("aris3nb-backup-") for _, name, _ in sessions_on(postgres_admin, database)):
            break
        time.sleep(0.02)
    assert process.poll() is None, "the backup ended before it could be stopped"
    time.sleep(0.2)  # into its COPY
    process.send_signal(signal.SIGTERM)
    out, err = process.communicate(timeout=60)
    assert process.returncode == 130, (out, err)
    assert err.strip().splitlines()[-1] == "interrupted" and "Traceback" not in err + out, err
    assert not (artifacts / "backups" / "stopped").exists()
    assert aris3nb_sessions(postgres_admin, database) == []
