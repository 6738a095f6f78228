"""Backups on real SQLite and PostgreSQL: create, validate, drill, restore — and every way a
backup can be damaged or a drill can go wrong, each ending with a clear verdict."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import shutil
import sqlite3
import stat
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import clifork
import pytest
import sqlalchemy as sa

from aris3nb import migrate
from aris3nb.backup import drill as drill_module
from aris3nb.backup import postgres, sqlite
from aris3nb.backup.create import create_backup, schema_tables_at
from aris3nb.backup.digest import Deadline, table_digest_of
from aris3nb.backup.drill import read_drill_report, restore_verify
from aris3nb.backup.manifest import Manifest, manifest_digest, read_manifest, validate_backup
from aris3nb.backup.restore import discarded_rows, restore_backup, rollback_log_path, rows_newer_than_backup
from aris3nb.contract import models as m
from aris3nb.core.db import create_engine
from aris3nb.core.errors import (
    BackupError,
    BackupExists,
    DatabaseUnavailable,
    DeadlineExceeded,
    DrillDisabled,
    DrillFailed,
    ManifestUnreadable,
    UsageError,
)
from aris3nb.core.settings import Settings, load_settings
from aris3nb.reference.seed import seed_database

ARIS3NB = str(Path(sys.executable).with_name("aris3nb"))
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return load_settings(
        artifacts={"dir": tmp_path / "artifacts"},
        backup={"drill_enabled": True},
        target={"exports_dir": tmp_path / "exports"},
    )


#: The seeded target most tests back up (``source``): stock rows, and export files beside it.
SOURCE_SCALE = 600


@pytest.fixture(scope="module")
def seeded_sqlite(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The module's seeded SQLite database and its export files, never used itself: each test's
    ``source`` is a copy of it (what seeding gives is the same every time: the seed is fixed)."""
    folder = tmp_path_factory.mktemp("seeded-sqlite")
    url = f"sqlite:///{folder / 'aris3.db'}"
    migrate.upgrade(url)
    seed_database(url, scale=SOURCE_SCALE, exports_dir=folder / "exports")
    return folder


@pytest.fixture(scope="module")
def seeded_postgres(postgres_admin: sa.Engine, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """The module's seeded PostgreSQL database (a template only: no test connects to it) and
    its export files; each test's ``source`` is a copy of it (CREATE DATABASE ... TEMPLATE)."""
    name = f"aris3nb_test_tpl_{uuid.uuid4().hex[:10]}"
    with postgres_admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    try:
        url = postgres_admin.url.set(database=name).render_as_string(hide_password=False)
        exports = tmp_path_factory.mktemp("seeded-postgres") / "exports"
        migrate.upgrade(url)
        seed_database(url, scale=SOURCE_SCALE, exports_dir=exports)
        yield name, exports
    finally:
        with postgres_admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def source(database_url: str, settings: Settings, request: pytest.FixtureRequest) -> str:
    """``database_url`` migrated and seeded (SOURCE_SCALE stock rows), its export files in the
    settings' exports folder: a copy of the module's seeded database, the test's own."""
    if database_url.startswith("sqlite"):
        template = request.getfixturevalue("seeded_sqlite")
        shutil.copyfile(template / "aris3.db", database_url.removeprefix("sqlite:///"))
        exports = template / "exports"
    else:  # the test's empty database, made again as a copy of the template, under its own name
        template_name, exports = request.getfixturevalue("seeded_postgres")
        name = sa.engine.make_url(database_url).database
        with request.getfixturevalue("postgres_admin").connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE "{name}"')
            conn.exec_driver_sql(f'CREATE DATABASE "{name}" TEMPLATE "{template_name}"')
    shutil.copytree(exports, settings.resolved_exports_dir(), dirs_exist_ok=True)
    return database_url


def backup(source: str, settings: Settings, name: str = "pre_deploy_20261128_0800") -> Path:
    return create_backup(source, name, settings=settings, exports_dir=settings.resolved_exports_dir()).manifest_path


def drill(manifest: Path, settings: Settings, source: str, **kwargs: Any):  # type: ignore[no-untyped-def]
    return restore_verify(manifest, settings=settings, server_url=source, **kwargs)


def rewrite(manifest: Path, change: Any) -> None:
    """Edit a manifest as an attacker would: change it, then recompute its own digest."""
    document = json.loads(manifest.read_text())
    change(document)
    document["manifest_digest"] = manifest_digest(document)
    manifest.write_text(json.dumps(document))


def scratch_databases(admin: sa.Engine) -> list[str]:
    with admin.connect() as conn:
        return [
            r[0] for r in conn.execute(sa.text("SELECT datname FROM pg_database WHERE datname LIKE 'aris3nb_drill_%'"))
        ]


# --- the passing path -------------------------------------------------------------------


def test_create_validate_drill(source: str, settings: Settings) -> None:
    manifest_path = backup(source, settings)
    folder = manifest_path.parent
    document = json.loads(manifest_path.read_text())
    assert (
        document["version"] == 1
        and "format_version" not in document
        and document["alembic_revision"] == migrate.head_revision()
    )
    assert document["manifest_digest"] == manifest_digest(document)
    assert "password" not in manifest_path.read_text().lower()
    tables = {t["name"]: t for t in document["tables"]}
    assert set(tables) == schema_tables_at(migrate.head_revision())
    assert tables["stock_items"]["rows"] == 600
    assert {f["role"] for f in document["files"]} == {"database", "export", "index"}
    assert document["row_index"]["rows"] == sum(t["rows"] for t in document["tables"])
    for path in folder.rglob("*"):
        mode = stat.S_IMODE(path.stat().st_mode)
        assert mode == (0o700 if path.is_dir() else 0o600), path
    assert not [p for p in folder.parent.iterdir() if p.name.startswith(".tmp-")], "no temporary folder left"

    validation = validate_backup(manifest_path, schema_tables_at)
    assert validation.ok, validation.problems

    report, report_path = drill(manifest_path, settings, source)
    assert report.status == "PASS"
    assert [(c.name, c.status) for c in report.checks] == [
        ("manifest valid", "PASS"),
        ("RPO within budget", "PASS"),
        ("revision matches", "PASS"),
        ("tables match the manifest", "PASS"),
        ("constraints hold", "PASS"),
        ("upgrades to head", "PASS"),
        ("RTO within budget", "PASS"),
    ]
    assert set(report.rto_sec) == {"validate", "restore", "verify", "upgrade", "total"}
    assert report.rpo["backup_age_sec"] >= 0 and report.rpo["newest_business_timestamp"]
    assert report.rpo["backup_created_at"] == document["created_at"]
    assert report.rpo["budget_sec"] == 86_400 and report.rpo["status"] == "PASS"
    assert report.rto == {"total_sec": report.rto_sec["total"], "budget_sec": 900, "status": "PASS"}
    written = json.loads(report_path.read_text())
    assert written["status"] == "PASS" and written["version"] == 1
    assert read_drill_report(report_path)["rto"]["status"] == "PASS"
    assert stat.S_IMODE(report_path.stat().st_mode) == 0o600


@pytest.mark.postgres
def test_postgresql_drill_drops_its_scratch_database(
    postgres_url: str, settings: Settings, postgres_admin: sa.Engine
) -> None:
    migrate.upgrade(postgres_url)
    seed_database(postgres_url, scale=100, exports_dir=settings.resolved_exports_dir())
    name = f"drill_{uuid.uuid4().hex[:10]}"  # other suites may drill on this server at the same time
    drill(backup(postgres_url, settings, name), settings, postgres_url)
    assert not [d for d in scratch_databases(postgres_admin) if name in d]


def test_an_existing_name_is_refused_and_left_untouched(source: str, settings: Settings) -> None:
    manifest_path = backup(source, settings)
    before = manifest_path.read_bytes()
    with pytest.raises(BackupExists, match="already exists"):
        backup(source, settings)
    assert manifest_path.read_bytes() == before
    assert validate_backup(manifest_path).ok


@pytest.mark.parametrize(
    "name", ["", "../escape", "a/b", "/abs", ".hidden", "x" * 101, "pre\u2010deploy", "pré_deploy", "a b", "n\x00ul"]
)
def test_unsafe_names_are_refused(sqlite_url: str, settings: Settings, name: str) -> None:
    with pytest.raises(UsageError, match="not a plain slug"):
        create_backup(sqlite_url, name, settings=settings)
    assert not (settings.artifacts.dir / "backups").exists() or not any((settings.artifacts.dir / "backups").iterdir())


def test_decimal_prices_survive_exactly(
    source: str, settings: Settings, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    engine = create_engine(source)
    with engine.begin() as conn:
        conn.execute(
            sa.update(m.StockItem.__table__)
            .where(m.StockItem.__table__.c.id == 1)
            .values(sale_price=Decimal("9.99"), cost_price=Decimal("0.10"))
        )
    engine.dispose()
    manifest_path = backup(source, settings)
    target = source if "postgresql" in source else f"sqlite:///{tmp_path / 'target.db'}"
    if target != source:
        shutil.copyfile(source.removeprefix("sqlite:///"), tmp_path / "target.db")
    engine = create_engine(target)
    with engine.begin() as conn:
        conn.execute(sa.update(m.StockItem.__table__).values(sale_price=Decimal("1.00")))
    engine.dispose()  # a restore replaces the SQLite file: connections opened before it see the old one
    # SQLite: a copy of the source under another name, so the backup is of another file on purpose.
    restore_backup(manifest_path, target, settings=settings, confirmed=True, allow_other_source=target != source)
    engine = create_engine(target)
    with engine.connect() as conn:
        row = conn.execute(
            sa.select(m.StockItem.__table__.c.sale_price, m.StockItem.__table__.c.cost_price).where(
                m.StockItem.__table__.c.id == 1
            )
        ).one()
    engine.dispose()
    assert row == (Decimal("9.99"), Decimal("0.10"))


def test_sqlite_digests_agree_across_shells_and_ranges(
    sqlite_url: str, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    migrate.upgrade(sqlite_url)
    seed_database(sqlite_url, scale=12_000, exports_dir=settings.resolved_exports_dir())
    path = Path(sqlite_url.removeprefix("sqlite:///"))
    monkeypatch.setattr(sqlite, "SHELLS", 1)
    one = sqlite.table_digests(path, Deadline(None))
    monkeypatch.setattr(sqlite, "SHELLS", 2)
    two = sqlite.table_digests(path, Deadline(None))
    assert one == two
    assert len(two["stock_items"].chunks) == 3 and two["stock_items"].rows == 12_000
    recorded = {name: digest.as_manifest_entry() for name, digest in two.items()}
    assert sqlite.table_digests(path, Deadline(None), recorded) == two


def test_the_digest_shells_wait_for_a_lock_another_holds(sqlite_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """A shell that finds the file locked (a service mid-write; a shell beside it recovering a
    copy's write-ahead log) waits, as the library's own connections do, instead of failing at
    once with "database is locked"; past the wait it still fails, with that reason."""
    migrate.upgrade(sqlite_url)
    path = Path(sqlite_url.removeprefix("sqlite:///"))
    statements = ["SELECT 'rows', count(*) FROM alembic_version;"] * 2
    writer = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    writer.execute("BEGIN EXCLUSIVE")
    threading.Timer(1.0, writer.rollback).start()
    started, lines = time.monotonic(), []
    problems = sqlite._run_shells(path, statements, Deadline(None), lines.append)
    assert problems == [] and len(lines) == 2 and time.monotonic() - started >= 0.9
    writer.execute("BEGIN EXCLUSIVE")
    monkeypatch.setattr(sqlite, "BUSY_TIMEOUT_SEC", 0.3)
    try:
        problems = sqlite._run_shells(path, statements, Deadline(None), lines.append)
        assert problems and all("database is locked" in p for p in problems), problems
    finally:
        writer.rollback()
        writer.close()


def test_a_sqlite_chunk_digest_is_recomputable_with_the_sqlite3_shell(sqlite_url: str, settings: Settings) -> None:
    """What an auditor would do: run the chunk's statement in the sqlite3 shell, with the
    native row hash loaded, then take the SHA-256 of the row digests it lists (docs/FORMAT.md 5)."""
    import hashlib

    from aris3nb.backup import rowhash

    migrate.upgrade(sqlite_url)
    seed_database(sqlite_url, scale=7_000, exports_dir=settings.resolved_exports_dir())
    path = Path(sqlite_url.removeprefix("sqlite:///"))
    stock = sqlite.table_digests(path, Deadline(None))["stock_items"]
    columns = [c["name"] for c in sa.inspect(create_engine(sqlite_url)).get_columns("stock_items")]
    assert stock.method == rowhash.ROW_SHA256_METHOD
    statement = sqlite.row_statement(
        "stock_items", ["id"], columns, stock.chunks[0]["last_key"], None, integer=True, native=True
    )
    extension = rowhash.extension()
    assert extension is not None
    done = subprocess.run(
        ["sqlite3", "-readonly", "-cmd", rowhash.load_command(extension), str(path), statement],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    _number, rows, digests, keys = done.stdout.strip().split("|")
    assert int(rows) == stock.chunks[1]["rows"] == 2_000
    assert keys == "5001:"  # the first key; the others follow it one by one
    assert hashlib.sha256(bytes.fromhex(digests)).hexdigest() == stock.chunks[1]["digest"]
    engine = create_engine(sqlite_url)
    with engine.begin() as conn:
        conn.execute(sa.update(m.StockItem.__table__).where(m.StockItem.__table__.c.id == 6_500).values(sku="CHANGED"))
    engine.dispose()
    changed = sqlite.table_digests(path, Deadline(None))["stock_items"]
    assert changed.chunks[0] == stock.chunks[0] and changed.chunks[1]["digest"] != stock.chunks[1]["digest"]


@pytest.mark.parametrize("native", [True, False], ids=["native-row-hash", "shell-json-hash"])
def test_a_blob_value_is_digested_and_a_change_to_it_seen(
    sqlite_url: str, settings: Settings, monkeypatch: pytest.MonkeyPatch, native: bool
) -> None:
    """The native row hash encodes a BLOB like any value; json_array refuses them, so with the
    shell's hash such a chunk is digested again with blobs as hex, to the same digest a
    blob-free chunk gets: a BLOB anywhere never stops a backup."""
    from aris3nb.backup import rowhash

    monkeypatch.setattr(rowhash, "USE_NATIVE", native)
    migrate.upgrade(sqlite_url)
    seed_database(sqlite_url, scale=300, exports_dir=settings.resolved_exports_dir())
    path = Path(sqlite_url.removeprefix("sqlite:///"))
    before = sqlite.table_digests(path, Deadline(None))
    engine = create_engine(sqlite_url)
    with engine.begin() as conn:
        conn.exec_driver_sql("UPDATE stock_items SET description = x'00ff10' WHERE id = 42")
    blob = sqlite.table_digests(path, Deadline(None))
    with engine.begin() as conn:
        conn.exec_driver_sql("UPDATE stock_items SET description = x'00ff11' WHERE id = 42")
    other = sqlite.table_digests(path, Deadline(None))
    engine.dispose()
    assert before["stock_items"].digest != blob["stock_items"].digest != other["stock_items"].digest
    assert before["sales"] == blob["sales"] == other["sales"]
    assert before["stock_items"].method == (rowhash.ROW_SHA256_METHOD if native else "rows")


# --- damaged backups ----------------------------------------------------------------------


def test_one_changed_byte_in_any_file_is_named(source: str, settings: Settings) -> None:
    manifest_path = backup(source, settings)
    for entry in json.loads(manifest_path.read_text())["files"]:
        path = manifest_path.parent / entry["path"]
        original = path.read_bytes()
        if not original:
            continue
        damaged = bytearray(original)
        damaged[len(damaged) // 2] ^= 0x01
        path.write_bytes(bytes(damaged))
        problems = validate_backup(manifest_path).problems
        assert problems == [
            f"file {entry['path']!r} has changed: "
            f"its SHA-256 is {__import__('hashlib').sha256(damaged).hexdigest()}, the manifest says {entry['sha256']}"
        ]
        path.write_bytes(original)
    assert validate_backup(manifest_path).ok


def test_a_changed_file_fails_the_drill_and_the_cli(source: str, settings: Settings) -> None:
    manifest_path = backup(source, settings)
    entry = max(
        (f for f in json.loads(manifest_path.read_text())["files"] if f["role"] == "database"), key=lambda f: f["size"]
    )
    with (manifest_path.parent / entry["path"]).open("r+b") as handle:
        handle.seek(100)
        byte = handle.read(1)
        handle.seek(100)
        handle.write(bytes([byte[0] ^ 0xFF]))
    with pytest.raises(DrillFailed, match="has changed") as failed:
        drill(manifest_path, settings, source)
    report = json.loads(Path(failed.value.report_path).read_text())
    assert report["status"] == "FAIL" and report["checks"][0]["name"] == "manifest valid"
    # A SQLite backup's file was copied while it was validated: that copy is gone, unused.
    scratch = f"aris3nb-drill-pid{os.getpid()}-*"  # this process's: other drills may run beside the tests
    assert not list(Path(tempfile.gettempdir()).glob(scratch)), "the drill's scratch folder is removed"
    done = clifork.run(["backup", "validate", str(manifest_path)], timeout=60)
    assert done.returncode == 1 and entry["path"] in done.stdout and "Traceback" not in done.stderr


def test_missing_extra_and_unlisted_files(source: str, settings: Settings) -> None:
    manifest_path = backup(source, settings)
    folder = manifest_path.parent
    export = next(f["path"] for f in json.loads(manifest_path.read_text())["files"] if f["role"] == "export")
    (folder / export).unlink()
    (folder / "database" / "extra.bin").write_bytes(b"x")
    problems = validate_backup(manifest_path).problems
    assert f"file {export!r} is missing" in problems
    assert "unlisted file 'database/extra.bin' in the backup folder" in problems
    # Deleting the file *and* its entry is a changed manifest.
    manifest = json.loads(manifest_path.read_text())
    manifest["files"] = [f for f in manifest["files"] if f["path"] != export]
    manifest_path.write_text(json.dumps(manifest))
    assert (
        "manifest digest does not match its content: the manifest was changed after it was written"
        in validate_backup(manifest_path).problems
    )


def test_a_hand_edited_row_count_is_caught_and_a_forged_one_fails_the_drill_with_a_diff(
    source: str, settings: Settings
) -> None:
    manifest_path = backup(source, settings)
    document = json.loads(manifest_path.read_text())
    stock = next(t for t in document["tables"] if t["name"] == "stock_items")
    stock["rows"] += 1
    manifest_path.write_text(json.dumps(document))
    assert any("manifest digest does not match" in p for p in validate_backup(manifest_path).problems)

    # A forger who also recomputes the manifest digest gets past validation, not past the drill.
    def forge(doc: dict[str, Any]) -> None:
        table = next(t for t in doc["tables"] if t["name"] == "stock_items")
        table["rows"] -= 1  # undo the first edit: the counts agree again
        table["chunks"][0]["digest"] = "0" * 64
        table["digest"] = table_digest_of(table["chunks"])  # consistent, as a careful forger makes it

    rewrite(manifest_path, forge)
    assert validate_backup(manifest_path).ok
    with pytest.raises(DrillFailed, match="stock_items"):
        drill(manifest_path, settings, source)
    report = json.loads(sorted((settings.artifacts.dir / "drills").rglob("drill_report_*.json"))[-1].read_text())
    diff = report["diff"][0]
    assert diff["table"] == "stock_items" and diff["ranges_differing"] == 1
    first = diff["ranges"][0]
    assert first["after_key"] is None and first["rows_found"] == first["rows_recorded"]
    # The data is the backup's: every row matches the row index, only the forged digest differs.
    assert diff["counts"] == {"changed": 0, "missing": 0, "extra": 0} and diff["unexplained_chunks"] == [0]


def test_an_rpo_budget_exceeded_fails_the_drill_naming_it(source: str, settings: Settings) -> None:
    manifest_path = backup(source, settings)
    with pytest.raises(DrillFailed, match="over the RPO budget") as failed:
        drill(manifest_path, settings, source, rpo_budget_sec=0.001)
    report = read_drill_report(Path(failed.value.report_path))
    check = next(c for c in report["checks"] if c["name"] == "RPO within budget")
    assert check["status"] == "FAIL" and "rpo_budget_sec" in check["detail"] and "\n" not in check["detail"]
    assert report["reason"] == check["detail"]
    assert report["rpo"]["status"] == "FAIL" and report["rpo"]["budget_sec"] == 0.001
    assert report["rpo"]["backup_age_sec"] > 0.001
    assert [c["name"] for c in report["checks"] if c["status"] == "FAIL"] == ["RPO within budget"]


def test_an_rto_budget_exceeded_fails_the_drill_naming_it(sqlite_url: str, settings: Settings) -> None:
    migrate.upgrade(sqlite_url)
    manifest_path = backup(sqlite_url, settings)
    with pytest.raises(DrillFailed, match="over the RTO budget") as failed:
        drill(manifest_path, settings, sqlite_url, rto_budget_sec=0.001)
    report = read_drill_report(Path(failed.value.report_path))
    assert report["rto"]["status"] == "FAIL" and report["rto"]["budget_sec"] == 0.001
    assert report["rto"]["total_sec"] == report["rto_sec"]["total"] > 0.001
    assert report["checks"][-1]["name"] == "RTO within budget" and "rto_budget_sec" in report["checks"][-1]["detail"]


@pytest.mark.parametrize("budget", [0, -1, float("inf"), float("nan"), True])
def test_a_budget_that_is_not_a_positive_number_is_bad_input(sqlite_url: str, settings: Settings, budget: Any) -> None:
    with pytest.raises(UsageError, match="rpo_budget_sec"):
        restore_verify(Path("nowhere/manifest.json"), settings=settings, rpo_budget_sec=budget)


def test_the_business_timestamps_are_a_parameter(source: str, settings: Settings) -> None:
    manifest_path = backup(source, settings)
    report, _ = drill(
        manifest_path,
        settings,
        source,
        business_timestamps=[("stock_items", "created_at"), ("no_such_table", "at"), ("sales", "no_such_column")],
    )
    engine = create_engine(source)
    with engine.connect() as conn:
        newest = conn.exec_driver_sql("SELECT max(created_at) FROM stock_items").scalar_one()
    engine.dispose()
    assert report.rpo["newest_business_timestamp"] == str(newest)
    report, _ = drill(manifest_path, settings, source, business_timestamps=[])
    assert report.rpo["newest_business_timestamp"] is None


@pytest.mark.parametrize(
    ("path", "reason"),
    [
        ("../outside.csv", "contains '..'"),
        ("/etc/hostname", "absolute"),
        ("exports/../../x", "contains '..'"),
        ("a\\b", "contains a backslash"),
    ],
)
def test_unsafe_paths_in_a_manifest_are_refused(source: str, settings: Settings, path: str, reason: str) -> None:
    manifest_path = backup(source, settings)
    rewrite(manifest_path, lambda d: d["files"].append({"path": path, "size": 9, "sha256": "0" * 64, "role": "export"}))
    problems = validate_backup(manifest_path).problems
    assert f"file {path!r}: unsafe path ({reason})" in problems


def test_a_database_file_that_is_a_link_is_never_copied_before_it_is_validated(
    sqlite_url: str, settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The drill copies a SQLite backup's file while validating it, but only a regular file:
    a link (to a huge file, a device, a FIFO) is refused by validation before anything reads it."""
    migrate.upgrade(sqlite_url)
    seed_database(sqlite_url, scale=200, exports_dir=settings.resolved_exports_dir())
    manifest_path = backup(sqlite_url, settings)
    database = manifest_path.parent / sqlite.DATABASE_FILE
    outside = tmp_path / "outside.sqlite3"
    shutil.move(str(database), str(outside))
    database.symlink_to(outside)
    copied: list[Path] = []
    real = sqlite.scratch_copy_ahead
    monkeypatch.setattr(sqlite, "scratch_copy_ahead", lambda path: (copied.append(path), real(path))[1])
    with pytest.raises(DrillFailed, match="symbolic link"):
        drill(manifest_path, settings, sqlite_url)
    assert copied == []
    database.unlink()
    shutil.move(str(outside), str(database))
    drill(manifest_path, settings, sqlite_url)
    assert copied == [database], "a regular file is copied ahead"


def _sqlite_source(seeded_sqlite: Path, sqlite_url: str, settings: Settings) -> str:
    shutil.copyfile(seeded_sqlite / "aris3.db", sqlite_url.removeprefix("sqlite:///"))
    shutil.copytree(seeded_sqlite / "exports", settings.resolved_exports_dir(), dirs_exist_ok=True)
    return sqlite_url


def test_a_sqlite_drill_begins_its_structural_checks_while_the_backup_is_validated(
    seeded_sqlite: Path, sqlite_url: str, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The integrity check of the largest table is a SQLite drill's critical path: it begins on
    the scratch copy once the copy is made, not once the file's hash is known; its report says so."""
    source = _sqlite_source(seeded_sqlite, sqlite_url, settings)
    manifest_path = backup(source, settings)
    checking = threading.Event()
    began_first: list[bool] = []
    real_checks, real_validate = sqlite.structural_problems, drill_module.validate_backup

    def checks(path: Path, deadline: Deadline) -> list[str]:
        checking.set()
        return real_checks(path, deadline)

    def validate(*args: Any, **kwargs: Any) -> Any:
        began_first.append(checking.wait(10))  # before: the checks waited for this
        return real_validate(*args, **kwargs)

    monkeypatch.setattr(sqlite, "structural_problems", checks)
    monkeypatch.setattr(drill_module, "validate_backup", validate)
    report, _ = drill(manifest_path, settings, source)
    assert began_first == [True] and report.status == "PASS"
    constraints = next(c for c in report.checks if c.name == "constraints hold")
    assert constraints.status == "PASS" and constraints.evidence["begun_during_validation"] is True


def test_checks_begun_on_a_backup_that_fails_validation_are_abandoned(
    seeded_sqlite: Path, sqlite_url: str, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A backup whose file does not match its manifest: the checks begun on its copy are told to
    stop, their result is never used, and the copy is removed."""
    source = _sqlite_source(seeded_sqlite, sqlite_url, settings)
    manifest_path = backup(source, settings)
    with (manifest_path.parent / sqlite.DATABASE_FILE).open("r+b") as handle:  # still a sound database
        handle.seek(0, os.SEEK_END)
        handle.write(b"\0" * 4096)
    stopped: list[bool] = []

    def checks(path: Path, deadline: Deadline) -> list[str]:
        waited_until = time.monotonic() + 30
        while not deadline.expired() and time.monotonic() < waited_until:
            time.sleep(0.01)
        stopped.append(deadline.expired())
        return ["never read"]

    monkeypatch.setattr(sqlite, "structural_problems", checks)
    started = time.monotonic()
    with pytest.raises(DrillFailed, match="bytes, the manifest says") as failed:
        drill(manifest_path, settings, source)
    assert stopped == [True] and time.monotonic() - started < 25
    report = json.loads(Path(failed.value.report_path).read_text())
    assert [c["name"] for c in report["checks"]] == ["manifest valid"]
    assert not list(Path(tempfile.gettempdir()).glob(f"aris3nb-drill-pid{os.getpid()}-*"))


def test_an_abandoned_deadline_interrupts_a_sqlite_statement(tmp_path: Path) -> None:
    """``Deadline.abandoned``: setting it stops a statement under way, with no time set."""
    database = tmp_path / "any.sqlite3"
    sqlite3.connect(database).close()
    abandon = threading.Event()
    deadline = Deadline(None, abandon)
    assert not deadline.expired()
    raised: list[BaseException] = []

    def endless() -> None:
        try:
            with sqlite.connect(database, deadline) as conn:
                conn.execute("WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n) SELECT count(*) FROM n")
        except DeadlineExceeded as exc:
            raised.append(exc)

    worker = threading.Thread(target=endless)
    worker.start()
    time.sleep(0.2)
    assert worker.is_alive(), "the statement runs until it is abandoned"
    abandon.set()
    worker.join(10)
    assert not worker.is_alive() and len(raised) == 1


def test_symlinks_are_refused(source: str, settings: Settings, tmp_path: Path) -> None:
    manifest_path = backup(source, settings)
    folder = manifest_path.parent
    export = next(f["path"] for f in json.loads(manifest_path.read_text())["files"] if f["role"] == "export")
    outside = tmp_path / "outside.csv"
    shutil.copyfile(folder / export, outside)
    (folder / export).unlink()
    (folder / export).symlink_to(outside)
    assert (
        f"file {export!r} is a symbolic link; backups hold regular files only"
        in validate_backup(manifest_path).problems
    )
    (folder / export).unlink()
    tenant_dir = (folder / export).parent
    shutil.move(str(tenant_dir), str(tmp_path / "moved"))
    tenant_dir.symlink_to(tmp_path / "moved")
    assert any("lies under a symbolic link" in p for p in validate_backup(manifest_path).problems)


@pytest.mark.parametrize(
    "content", [b"", b"   ", b'{"format": "aris3nb.backup.manifest", "files": [', b"[1, 2]", b"\xff\xfe"]
)
def test_empty_truncated_or_not_json_manifests_are_usage_errors(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "manifest.json"
    path.write_bytes(content)
    with pytest.raises(ManifestUnreadable):
        read_manifest(path)
    done = clifork.run(["backup", "validate", str(path)], timeout=60)
    assert done.returncode == 2
    assert done.stderr.startswith("FAILED: ") and len(done.stderr.strip().splitlines()) == 1


def test_an_unknown_format_version_is_refused(source: str, settings: Settings) -> None:
    manifest_path = backup(source, settings)
    rewrite(manifest_path, lambda d: d.update(version=2))
    assert validate_backup(manifest_path).problems == ["version 2 is not supported (this aris3nb reads [1])"]

    def spelled_as_before(document: dict[str, Any]) -> None:  # manifests written before 2026-11-30
        document.pop("version")
        document["format_version"] = 1

    rewrite(manifest_path, spelled_as_before)
    assert validate_backup(manifest_path).ok, "the older spelling is still read"
    rewrite(manifest_path, lambda d: d.update(version=1))
    assert validate_backup(manifest_path).problems == ["version None is not supported (this aris3nb reads [1])"], (
        "both spellings at once: neither is taken"
    )


def test_a_manifest_missing_a_table_of_its_schema_is_invalid(source: str, settings: Settings) -> None:
    manifest_path = backup(source, settings)
    rewrite(manifest_path, lambda d: d.update(tables=[t for t in d["tables"] if t["name"] != "payments"]))
    problems = validate_backup(manifest_path, schema_tables_at).problems
    assert problems == [f"table 'payments' of the schema at {migrate.head_revision()} is not in the backup"]


def test_a_backup_of_an_older_revision_still_drills_and_upgrades(database_url: str, settings: Settings) -> None:
    migrate.upgrade(database_url, "0004_exports_idempotency")
    manifest_path = backup(database_url, settings)
    assert json.loads(manifest_path.read_text())["alembic_revision"] == "0004_exports_idempotency"
    report, _ = drill(manifest_path, settings, database_url)
    upgrade = next(c for c in report.checks if c.name == "upgrades to head")
    assert upgrade.status == "PASS" and upgrade.evidence["from"] == "0004_exports_idempotency"
    assert upgrade.detail == f"upgraded from 0004_exports_idempotency to {migrate.head_revision()}"


def test_an_orphaned_foreign_key_in_the_backup_fails_the_drill(source: str, settings: Settings) -> None:
    engine = create_engine(source)
    with engine.begin() as conn:
        if conn.dialect.name == "sqlite":
            conn.exec_driver_sql("PRAGMA foreign_keys=OFF")
            conn.exec_driver_sql("UPDATE sale_lines SET stock_item_id = 999999 WHERE id = 1")
        else:
            conn.exec_driver_sql("ALTER TABLE sale_lines DISABLE TRIGGER ALL")
            conn.exec_driver_sql("UPDATE sale_lines SET stock_item_id = 999999 WHERE id = 1")
            conn.exec_driver_sql("ALTER TABLE sale_lines ENABLE TRIGGER ALL")
    engine.dispose()
    manifest_path = backup(source, settings)
    with pytest.raises(DrillFailed) as failed:
        drill(manifest_path, settings, source)
    assert "sale_lines" in str(failed.value) or "foreign key" in str(failed.value)


# --- drills that cannot or must not run -----------------------------------------------------


def test_the_drill_refuses_unless_enabled(source: str, settings: Settings) -> None:
    manifest_path = backup(source, settings)
    with pytest.raises(DrillDisabled, match="OPS_ENABLE_BACKUP_DRILL"):
        restore_verify(manifest_path, settings=settings.updated(backup={"drill_enabled": False}))
    done = clifork.run(
        ["backup", "restore-verify", str(manifest_path)],
        env={**os.environ, "OPS_ENABLE_BACKUP_DRILL": "false"},
        timeout=60,
    )
    assert done.returncode == 2 and "OPS_ENABLE_BACKUP_DRILL" in done.stderr


def test_a_drill_past_its_deadline_fails_with_timeout_and_cleans_up(
    source: str, settings: Settings, request: pytest.FixtureRequest
) -> None:
    name = f"late_{uuid.uuid4().hex[:10]}"
    manifest_path = backup(source, settings, name)
    with pytest.raises(DrillFailed, match="timeout") as failed:
        drill(manifest_path, settings, source, timeout_sec=0.001)
    reason = json.loads(Path(failed.value.report_path).read_text())["reason"]
    assert reason.startswith("timeout") and "the drill's deadline: 0.001 s, set by --timeout" in reason, reason
    if "postgresql" in source:
        assert not [d for d in scratch_databases(request.getfixturevalue("postgres_admin")) if name in d]


def test_unreachable_postgresql_is_a_usage_error_without_the_password(settings: Settings) -> None:
    url = "postgresql://postgres:Hunter2-Secret@127.0.0.1:1/aris3"
    with pytest.raises(DatabaseUnavailable) as caught:
        create_backup(url, "pg_unreachable", settings=settings)
    assert "Hunter2-Secret" not in str(caught.value)
    done = clifork.run(
        ["backup", "create", "--name", "x", "--database-url", url],
        env={**os.environ, "OPS_ARTIFACTS_DIR": str(settings.artifacts.dir)},
        timeout=60,
    )
    assert done.returncode == 2 and "Hunter2-Secret" not in done.stderr + done.stdout
    assert not list((settings.artifacts.dir / "backups").glob("*"))


# --- writers and crashes ---------------------------------------------------------------------


def test_a_concurrent_writer_cannot_make_the_backup_inconsistent(source: str, settings: Settings) -> None:
    """Sales with their payments land while the backup runs: the backup holds each sale
    with its payment or neither, and its counts and digests match its content."""
    engine = create_engine(source)
    with engine.connect() as conn:
        tenant, store = conn.execute(sa.select(m.Store.__table__.c.tenant_id, m.Store.__table__.c.id).limit(1)).one()
    stop = threading.Event()
    written = 0

    def writer() -> None:
        nonlocal written
        while not stop.is_set():
            sale = uuid.uuid4()
            now = m.utcnow()
            with engine.begin() as conn:
                conn.execute(
                    m.Sale.__table__.insert(),
                    {
                        "id": sale,
                        "tenant_id": tenant,
                        "store_id": store,
                        "status": "PAID",
                        "subtotal": Decimal("5.00"),
                        "discount_total": Decimal("0.00"),
                        "total": Decimal("5.00"),
                        "created_at": now,
                        "updated_at": now,
                        "paid_at": now,
                    },
                )
                conn.execute(
                    m.Payment.__table__.insert(),
                    {"sale_id": sale, "method": "CARD", "amount": Decimal("5.00"), "created_at": now},
                )
            written += 1

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        manifest_path = backup(source, settings)
    finally:
        stop.set()
        thread.join()
    engine.dispose()
    assert written > 0
    report, _ = drill(manifest_path, settings, source)
    assert report.status == "PASS"
    with restored(manifest_path, source) as url:
        engine = create_engine(url)
        with engine.connect() as conn:
            concurrent_sales = conn.execute(sa.text("SELECT count(*) FROM sales WHERE created_by IS NULL")).scalar_one()
            their_payments = conn.execute(
                sa.text("SELECT count(*) FROM payments p JOIN sales s ON s.id = p.sale_id WHERE s.created_by IS NULL")
            ).scalar_one()
            orphans = conn.execute(
                sa.text(
                    "SELECT count(*) FROM payments p WHERE NOT EXISTS (SELECT 1 FROM sales s WHERE s.id = p.sale_id)"
                )
            ).scalar_one()
        engine.dispose()
    assert concurrent_sales == their_payments and orphans == 0


@contextlib.contextmanager
def restored(manifest_path: Path, server_url: str) -> Iterator[str]:
    """The backup's database, restored where a test can read it."""
    folder = manifest_path.parent
    if "postgresql" in server_url:
        with postgres.scratch_database(server_url, "test") as url:
            postgres.restore(folder / postgres.DUMP_DIR, url, Deadline.after(120), clean=False)
            yield url
    else:
        yield f"sqlite:///{folder / sqlite.DATABASE_FILE}"


def test_a_killed_backup_leaves_nothing_under_its_name_and_a_rerun_succeeds(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'big.db'}"
    migrate.upgrade(url)
    seed_database(url, scale=150_000, exports_dir=tmp_path / "exports")
    env = {
        **os.environ,
        "OPS_ARTIFACTS_DIR": str(tmp_path / "artifacts"),
        "ARIS3_EXPORTS_DIR": str(tmp_path / "exports"),
    }
    process = subprocess.Popen(
        [ARIS3NB, "backup", "create", "--name", "killed", "--database-url", url],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    backups = tmp_path / "artifacts" / "backups"
    deadline = __import__("time").monotonic() + 60
    while not (backups.exists() and any(p.name.startswith(".tmp-killed-") for p in backups.iterdir())):
        assert __import__("time").monotonic() < deadline and process.poll() is None, "backup never started"
        __import__("time").sleep(0.01)
    process.kill()
    process.wait()
    assert not (backups / "killed").exists()
    assert [p.name for p in backups.iterdir() if p.name.startswith(".tmp-killed-")], (
        "the killed run left its temporary folder"
    )
    done = clifork.run(["backup", "create", "--name", "killed", "--database-url", url], env=env, timeout=300)
    assert done.returncode == 0, done.stderr
    assert validate_backup(backups / "killed").ok
    assert [p.name for p in backups.iterdir()] == ["killed"], "the rerun swept the dead run's temporary folder"


def test_a_live_backups_temporary_folder_is_not_swept(sqlite_url: str, settings: Settings) -> None:
    migrate.upgrade(sqlite_url)
    backups = settings.artifacts.dir / "backups"
    backups.mkdir(parents=True)
    live = backups / f".tmp-other-pid{os.getpid()}-abc123"
    live.mkdir()
    result = create_backup(sqlite_url, "second", settings=settings)
    assert live.is_dir() and result.stale_removed == []


# --- the rollback restore -------------------------------------------------------------------


def test_restore_needs_confirmation_and_keeps_a_safety_backup(source: str, settings: Settings) -> None:
    manifest_path = backup(source, settings)
    with pytest.raises(UsageError, match="--yes"):
        restore_backup(manifest_path, source, settings=settings, confirmed=False)
    engine = create_engine(source)
    with engine.begin() as conn:
        conn.execute(sa.delete(m.AuditEvent.__table__))
    engine.dispose()
    result = restore_backup(manifest_path, source, settings=settings, confirmed=True)
    assert validate_backup(result.safety_backup).ok
    safety = {t["name"]: t["rows"] for t in read_manifest(result.safety_backup).document["tables"]}
    assert safety["audit_events"] == 0, "the safety backup holds the target as it was"
    report, _ = drill(manifest_path, settings, source)  # the target now equals the backup
    assert report.status == "PASS"
    log = [json.loads(line) for line in rollback_log_path(settings).read_text().splitlines()]
    assert [e["status"] for e in log] == ["STARTED", "RESTORED"]
    assert "password" not in rollback_log_path(settings).read_text()


def test_a_restore_whose_checks_use_up_its_timeout_is_a_timeout_logged_not_bad_input(
    source: str, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """--timeout spent before the safety backup (a slow pull, sessions to clear): exit 1, a
    timeout, the target untouched and the attempt in the rollback log — never "a timeout must
    be more than 0 seconds" (exit 2, bad input) for a valid --timeout."""
    import time

    from aris3nb.backup import restore as restore_module
    from aris3nb.core.errors import DeadlineExceeded

    manifest_path = backup(source, settings)
    slow = restore_module._clear_the_way

    def clears_slowly(*args: Any, **keywords: Any) -> None:
        slow(*args, **keywords)
        time.sleep(0.6)

    monkeypatch.setattr(restore_module, "_clear_the_way", clears_slowly)
    with pytest.raises(DeadlineExceeded, match="before the safety backup") as stopped:
        restore_backup(manifest_path, source, settings=settings, confirmed=True, timeout_sec=0.5)
    assert stopped.value.exit_code == 1
    log = [json.loads(line) for line in rollback_log_path(settings).read_text().splitlines()]
    assert [e["status"] for e in log] == ["FAILED"] and "nothing restored" in log[0]["error"]
    assert not any(p.name.startswith("safety_") for p in (settings.artifacts.dir / "backups").iterdir())


def test_a_restore_says_which_export_files_it_did_not_put_back(source: str, settings: Settings) -> None:
    """The restore puts back the database, not the export files: one written after the backup
    (no row vouches for it any more) and one changed since are said, in the result, the
    announcement and the log — never a silent success the next drill FAILs on."""
    exports = settings.resolved_exports_dir()
    manifest_path = backup(source, settings)
    files = len(list(exports.rglob("*.csv")))
    # A target profile's backup records the folder its export files came from (the reference's does not).
    rewrite(manifest_path, lambda document: document.update(exports={"dir": str(exports), "files": files}))
    assert restore_backup(manifest_path, source, settings=settings, confirmed=True).warnings == []
    backed_up = sorted(p for p in exports.rglob("*") if p.is_file())
    assert backed_up, "the seeded target has export files"
    (backed_up[0].parent / "written-after-the-backup.csv").write_text("id\n1\n")
    backed_up[-1].write_text("changed\n")
    said: list[str] = []
    result = restore_backup(manifest_path, source, settings=settings, confirmed=True, announce=said.append)
    [warning] = result.warnings
    assert f"the export files in {exports} were not restored: 1 file the backup does not hold" in warning
    assert "written-after-the-backup.csv" in warning and "1 file of the backup missing or changed" in warning
    assert f"the backup's copies are in {manifest_path.parent / 'exports'}" in warning
    assert f"warning: {warning}" in said
    log = [json.loads(line) for line in rollback_log_path(settings).read_text().splitlines()]
    assert log[-1]["status"] == "RESTORED" and log[-1]["warnings"] == [warning]


@pytest.mark.parametrize("journal", ["wal", "delete"])
def test_a_sqlite_restore_reaches_a_service_that_has_the_file_open(
    sqlite_url: str, settings: Settings, journal: str
) -> None:
    """The service keeps its connection open across the restore (as a running ARIS3 does): it
    reads the restored rows, and what it writes afterwards lands in the target file (a file
    renamed into place left it reading, and writing, the old, deleted one)."""
    migrate.upgrade(sqlite_url)
    path = Path(sqlite_url.removeprefix("sqlite:///"))
    with sqlite3.connect(path) as conn:
        conn.execute(f"PRAGMA journal_mode={journal}")
    manifest_path = backup(sqlite_url, settings)
    engine = create_engine(sqlite_url)
    with engine.begin() as conn:
        conn.execute(sa.insert(m.AuditEvent.__table__), [_audit(n) for n in range(5)])
    engine.dispose()
    inode = path.stat().st_ino
    service = subprocess.Popen(
        [sys.executable, "-c", SERVICE, str(path)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert service.stdout is not None and service.stdin is not None
    assert service.stdout.readline().strip() == "5", "the service sees the rows written after the backup"

    said: list[str] = []
    result = restore_backup(manifest_path, sqlite_url, settings=settings, confirmed=True, announce=said.append)

    service.stdin.write("\n")
    service.stdin.flush()
    after, after_write = service.stdout.readline().strip(), service.stdout.readline().strip()
    service.wait(timeout=30)
    assert (after, after_write) == ("0", "1"), "the service reads the restored data and writes into it"
    assert path.stat().st_ino == inode, "restored in place: the same file"
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT count(*) FROM audit_events WHERE action = 'AFTER'").fetchone()[0] == 1
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == journal
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert sum(c["newer_than_backup"] or 0 for c in result.discarded.values()) >= 5
    assert "; at least 5 rows written or changed after the backup (per table the larger of: " in said[0]
    assert ") will be discarded" in said[0]
    assert "what the service writes after that snapshot and before the restore ends is in neither" in said[0]


#: A service: one connection kept open; the row count before and after the restore, then a write.
SERVICE = """
import sqlite3, sys
conn = sqlite3.connect(sys.argv[1], isolation_level=None)
count = "SELECT count(*) FROM audit_events"
print(conn.execute(count).fetchone()[0], flush=True)
sys.stdin.readline()
print(conn.execute(count).fetchone()[0], flush=True)
conn.execute("INSERT INTO audit_events (action, entity_type, entity_id, details, created_at) "
             "VALUES ('AFTER', 'test', '1', '{}', '2026-12-01 00:00:00.000000')")
print(conn.execute(count).fetchone()[0], flush=True)
"""


def _audit(number: int) -> dict[str, Any]:
    return {
        "action": "NEWER",
        "entity_type": "test",
        "entity_id": str(number),
        "details": {},
        "created_at": dt.datetime.now(dt.UTC) + dt.timedelta(days=1),  # after the backup, whatever the date
    }


#: The backup's moment in ``test_the_discarded_rows_are_an_honest_lower_bound``, and rows before and after it.
_BACKED_UP_AT = "2026-11-15T00:00:00.000Z"
_BEFORE, _AFTER = dt.datetime(2026, 11, 1, tzinfo=dt.UTC), dt.datetime(2026, 11, 20, tzinfo=dt.UTC)


def test_the_discarded_rows_are_an_honest_lower_bound(database_url: str, tmp_path: Path) -> None:
    """Per table the larger of the rows newer than the backup (by ``updated_at``, else
    ``created_at``: ARIS3 leaves ``updated_at`` NULL on imported rows) and the rows added
    since: the warning once said "at least 15" where 90 rows were discarded."""
    metadata = sa.MetaData()
    stamped = [
        sa.Table(
            name,
            metadata,
            sa.Column("id", sa.Integer, primary_key=True),
            sa.Column("created_at", m.UTCDateTime, nullable=True),
            sa.Column("updated_at", m.UTCDateTime, nullable=True),
        )
        for name in ("imported", "reimported", "churned")
    ]
    plain = sa.Table("plain", metadata, sa.Column("id", sa.Integer, primary_key=True), sa.Column("note", sa.Text))
    imported, reimported, churned = stamped
    engine = create_engine(database_url, create_sqlite_parent=True)
    with engine.begin() as conn:
        metadata.create_all(conn)
        # 90 rows in the backup; 75 imported since, never updated (updated_at NULL)
        conn.execute(sa.insert(imported), [{"created_at": _BEFORE, "updated_at": None}] * 90)
        conn.execute(sa.insert(imported), [{"created_at": _AFTER, "updated_at": None}] * 75)
        # the same, imported with their original (older) created_at: only the count tells
        conn.execute(sa.insert(reimported), [{"created_at": _BEFORE, "updated_at": None}] * 165)
        # 10 rows in the backup; 4 deleted since and 3 added: fewer rows, yet 3 new ones
        conn.execute(sa.insert(churned), [{"created_at": _BEFORE, "updated_at": _BEFORE}] * 6)
        conn.execute(sa.insert(churned), [{"created_at": _AFTER, "updated_at": _AFTER}] * 3)
        # no timestamp at all: 5 rows in the backup, 8 now
        conn.execute(sa.insert(plain), [{"note": str(n)} for n in range(8)])
    engine.dispose()
    backed_up = {"imported": 90, "reimported": 90, "churned": 10, "plain": 5}
    manifest = Manifest(
        {"created_at": _BACKED_UP_AT, "tables": [{"name": t, "rows": n} for t, n in backed_up.items()]},
        tmp_path / "manifest.json",
    )

    found = rows_newer_than_backup(database_url, manifest)

    assert discarded_rows(found).startswith("at least 156 rows written or changed after the backup")
    assert {t: (c["rows_now"], c["newer_than_backup"], c.get("at_least")) for t, c in found.items()} == {
        "imported": (165, 75, 75),
        "reimported": (165, 0, 75),
        "churned": (9, 3, 3),
        "plain": (8, None, 3),
    }
    assert found["imported"]["by"] == "coalesce(updated_at, created_at)" and found["plain"]["by"] is None


def test_a_failed_restore_says_how_to_use_the_safety_backup(
    source: str, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    from aris3nb.backup import restore as restore_module

    manifest_path = backup(source, settings)

    def broken(*args: Any, **kwargs: Any) -> None:
        raise BackupError("simulated failure half-way")

    monkeypatch.setattr(restore_module.postgres, "restore", broken)
    monkeypatch.setattr(restore_module.sqlite, "restore_in_place", broken)
    with pytest.raises(BackupError, match="safety backup") as failed:
        restore_backup(manifest_path, source, settings=settings, confirmed=True)
    assert "aris3nb backup restore" in str(failed.value)
    assert [json.loads(line)["status"] for line in rollback_log_path(settings).read_text().splitlines()] == [
        "STARTED",
        "FAILED",
    ]


def test_the_playbook_scripts_run_verbatim(source: str, settings: Settings) -> None:
    env = {
        **os.environ,
        "DATABASE_URL": source,
        "OPS_ARTIFACTS_DIR": str(settings.artifacts.dir),
        "ARIS3_EXPORTS_DIR": str(settings.resolved_exports_dir()),
        "OPS_ENABLE_BACKUP_DRILL": "true",
    }

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)

    created = run("scripts/ops/backup_create.py", "--name", "pre_deploy_20261128_0800")
    assert created.returncode == 0, created.stderr
    manifest = settings.artifacts.dir / "backups" / "pre_deploy_20261128_0800" / "manifest.json"
    assert run("scripts/ops/backup_manifest_validate.py", str(manifest)).returncode == 0
    verified = run("scripts/ops/backup_restore_verify.py", str(manifest))
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert "drill PASS" in verified.stdout


@pytest.mark.postgres
def test_a_drill_that_times_out_mid_restore_still_drops_its_scratch_database(
    postgres_url: str, settings: Settings, postgres_admin: sa.Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    from aris3nb.core.errors import DeadlineExceeded

    migrate.upgrade(postgres_url)
    name = f"mid_{uuid.uuid4().hex[:10]}"
    manifest_path = backup(postgres_url, settings, name)
    seen: list[str] = []

    def slow_restore(dump_dir: Path, target_url: str, deadline: Deadline, *, clean: bool) -> None:
        seen.append(target_url)
        assert [d for d in scratch_databases(postgres_admin) if name in d], "the scratch database exists meanwhile"
        raise DeadlineExceeded("timeout: pg_restore ran past the deadline")

    monkeypatch.setattr(postgres, "restore", slow_restore)
    with pytest.raises(DrillFailed, match="timeout"):
        drill(manifest_path, settings, postgres_url)
    assert seen and not [d for d in scratch_databases(postgres_admin) if name in d]


def test_backup_create_has_a_deadline_by_default(sqlite_url: str, settings: Settings) -> None:
    from aris3nb.core.errors import DeadlineExceeded

    migrate.upgrade(sqlite_url)
    with pytest.raises(DeadlineExceeded, match="timeout"):
        create_backup(sqlite_url, "too_slow", settings=settings.updated(backup={"timeout_sec": 1e-9}))
    assert not (settings.artifacts.dir / "backups" / "too_slow").exists()


@pytest.mark.postgres
@pytest.mark.parametrize("through", ["driver", "sqlalchemy"])
def test_a_postgresql_statement_past_the_deadline_is_a_timeout(postgres_url: str, through: str) -> None:
    """The deadline is enforced inside the statements (statement_timeout); a statement it
    cancels, on a raw cursor (as COPY runs) or through SQLAlchemy, is a timeout."""
    import time

    from aris3nb.core.errors import DeadlineExceeded

    with pytest.raises(DeadlineExceeded, match="timeout: a statement ran past the deadline"):
        with postgres._read_only_snapshot(postgres_url, Deadline(time.monotonic() + 0.5), "sleep") as conn:
            if through == "driver":
                with conn.connection.driver_connection.cursor() as cursor:
                    cursor.execute("SELECT pg_sleep(3)")
            else:
                conn.exec_driver_sql("SELECT pg_sleep(3)")


def test_a_drill_report_names_the_manifest_by_its_absolute_path(
    sqlite_url: str, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Given as typed (``../copies/b/manifest.json``), the path would be read later from another
    folder, and a copy elsewhere taken for the catalog's backup of that name."""
    migrate.upgrade(sqlite_url)
    manifest_path = backup(sqlite_url, settings)
    monkeypatch.chdir(manifest_path.parent.parent)
    report, written = drill(Path(manifest_path.parent.name) / "manifest.json", settings, sqlite_url)
    assert report.manifest == str(manifest_path)
    assert json.loads(written.read_text())["manifest"] == str(manifest_path)


def test_the_drills_scratch_copy_is_made_in_the_background_and_always_removed(tmp_path: Path) -> None:
    source = tmp_path / "aris3.sqlite3"
    source.write_bytes(os.urandom(4 << 20))
    scratch = f"aris3nb-drill-pid{os.getpid()}-*"
    with sqlite.scratch_copy_ahead(source) as ready:
        [folder] = Path(tempfile.gettempdir()).glob(scratch)
        copy = folder / "restored.sqlite3"
        deadline = time.monotonic() + 60
        while not (copy.exists() and copy.stat().st_size == source.stat().st_size) and time.monotonic() < deadline:
            time.sleep(0.01)
        assert copy.stat().st_size == source.stat().st_size, "copied before anyone waited for it"
        assert ready() == copy and copy.read_bytes() == source.read_bytes()
    assert not folder.exists()
    with sqlite.scratch_copy_ahead(tmp_path / "missing") as ready, pytest.raises(FileNotFoundError):
        ready()
    assert not list(Path(tempfile.gettempdir()).glob(scratch))
