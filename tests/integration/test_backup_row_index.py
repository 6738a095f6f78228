"""The row index on real SQLite and PostgreSQL: a drill names the rows that differ, by key.

A forger changes the backup's own data (the SQLite file, the PostgreSQL dump's table data)
and recomputes every file digest and the manifest's own: validation passes, the drill fails,
and its diff names the changed, missing and extra rows by key, with the restored values and
the row digests recorded when the backup was made. Keys of every kind: an integer key not in
the first rows (stock_items id=1234 at seed scale 3,000), a UUID key, a composite key, and a
table without a primary key (the rowid on SQLite; on PostgreSQL rows named by their digest).

On PostgreSQL a chunk whose per-row record would be larger than a sketch gets the sketch
(stock_items' 3,000 rows: 24 kB of digests against a 7 kB sketch), so the tests above name its
rows through the sketch; the smaller tables keep per-row records. A backup cut into chunks of
1,000 rows names rows across several sketches, more differences in a chunk than its sketch can
name are reported as unnamed (the drill still fails), and a backup of per-row records only (as
made before sketches) is drilled as before.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import json
import re
import shutil
import sqlite3
import subprocess
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import clifork
import pytest
import sqlalchemy as sa

from aris3nb import migrate
from aris3nb.backup import create as create_module
from aris3nb.backup import digest, drill, postgres, sketch
from aris3nb.backup.create import create_backup
from aris3nb.backup.digest import ROW_INDEX_FILE, ChunkRows, ChunkSketch, read_record
from aris3nb.backup.drill import restore_verify
from aris3nb.backup.manifest import manifest_digest, read_manifest, validate_backup
from aris3nb.core.db import create_engine
from aris3nb.core.errors import DrillFailed
from aris3nb.core.settings import Settings, load_settings
from aris3nb.reference.seed import seed_database

SCALE = 3_000
#: Tables the reference schema lacks, added to the source: a composite key and no key at all.
EXTRA_TABLES = {"line_tags", "scan_log"}
EXTRA_DDL = [
    (
        "CREATE TABLE line_tags (stock_item_id BIGINT NOT NULL, tag VARCHAR(32) NOT NULL, note VARCHAR(100), "
        "PRIMARY KEY (stock_item_id, tag))"
    ),
    "CREATE TABLE scan_log (reader VARCHAR(32), epc VARCHAR(32), seen_at VARCHAR(32))",
    (
        "INSERT INTO line_tags VALUES (1, 'promo', 'spring'), (1, 'window', NULL), (1234, 'promo', 'summer'), "
        "(2500, 'damaged', 'box torn')"
    ),
    (
        "INSERT INTO scan_log VALUES ('gate-1', 'E1', '2026-03-02 10:00'), ('gate-1', 'E1', '2026-03-02 10:00'), "
        "('gate-2', 'E2', '2026-03-02 10:05'), (NULL, 'E3', NULL)"
    ),
]


SCHEMA_TABLES_AT = create_module.schema_tables_at


def schema_with_extra_tables(revision: str | None) -> frozenset[str] | None:
    known = SCHEMA_TABLES_AT(revision)
    return None if known is None else known | EXTRA_TABLES


@pytest.fixture(autouse=True)
def _extra_tables_belong_to_the_schema(monkeypatch: pytest.MonkeyPatch) -> None:
    """The source holds two tables the reference schema lacks; create and validation accept them."""
    monkeypatch.setattr(create_module, "schema_tables_at", schema_with_extra_tables)  # every lookup goes through it


class Made:
    """A backup made once per module, copied for each test (which may forge its copy)."""

    def __init__(self, url: str, folder: Path, exports: Path) -> None:
        self.url, self.folder, self.exports = url, folder, exports
        self.engine = "postgresql" if url.startswith("postgresql") else "sqlite"

    def copy(self, where: Path) -> Path:
        target = where / "backups" / self.folder.name
        shutil.copytree(self.folder, target)
        return target / "manifest.json"


def _make(url: str, folder: Path) -> Made:
    migrate.upgrade(url)
    seed_database(url, scale=SCALE, exports_dir=folder / "exports")
    engine = create_engine(url)
    with engine.begin() as conn:
        for statement in EXTRA_DDL:
            conn.exec_driver_sql(statement)
    engine.dispose()
    with pytest.MonkeyPatch.context() as monkeypatch:  # only while the backup is made
        monkeypatch.setattr(create_module, "schema_tables_at", schema_with_extra_tables)
        made = create_backup(
            url,
            "row_index",
            settings=load_settings(artifacts={"dir": folder / "artifacts"}),
            exports_dir=folder / "exports",
        )
    return Made(url, made.path, folder / "exports")


@pytest.fixture(scope="module")
def sqlite_backup(tmp_path_factory: pytest.TempPathFactory) -> Made:
    folder = tmp_path_factory.mktemp("row-index-sqlite")
    return _make(f"sqlite:///{folder / 'aris3.db'}", folder)


@pytest.fixture(scope="module")
def postgres_backup(tmp_path_factory: pytest.TempPathFactory, postgres_admin: sa.Engine) -> Iterator[Made]:
    name = f"aris3nb_test_{uuid.uuid4().hex[:12]}"
    with postgres_admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    url = postgres_admin.url.set(drivername="postgresql+psycopg", database=name).render_as_string(hide_password=False)
    try:
        yield _make(url, tmp_path_factory.mktemp("row-index-postgres"))
    finally:
        with postgres_admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=["sqlite", "postgresql"])
def made(request: pytest.FixtureRequest) -> Made:
    if request.param == "postgresql":
        request.applymarker(pytest.mark.postgres)
        return request.getfixturevalue("postgres_backup")
    return request.getfixturevalue("sqlite_backup")


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return load_settings(artifacts={"dir": tmp_path}, backup={"drill_enabled": True})


# --- forging the backup's own data, as an attacker would ------------------------------------------


def reseal(manifest: Path) -> None:
    """Recompute every listed file's size and SHA-256, then the manifest's own digest."""
    document = json.loads(manifest.read_text())
    for entry in document["files"]:
        data = (manifest.parent / entry["path"]).read_bytes()
        entry["size"], entry["sha256"] = len(data), hashlib.sha256(data).hexdigest()
    document["manifest_digest"] = manifest_digest(document)
    manifest.write_text(json.dumps(document))


def forge(
    manifest: Path,
    table: str,
    sqlite_statements: list[str],
    edit_lines: Callable[[list[list[str]], list[str]], list[list[str]]],
) -> None:
    """Change ``table`` in the backup's own data, then reseal (so that validation passes)."""
    folder = manifest.parent
    if (folder / "database" / "aris3.sqlite3").exists():
        conn = sqlite3.connect(folder / "database" / "aris3.sqlite3", isolation_level=None)
        conn.execute("PRAGMA journal_mode=DELETE")
        for statement in sqlite_statements:
            conn.execute(statement)
        conn.close()
    else:
        dump = folder / "database" / "dump"
        listing = subprocess.run(["pg_restore", "-l", str(dump)], capture_output=True, text=True, check=True).stdout
        number = re.search(rf"^(\d+); \d+ \d+ TABLE DATA \S+ {table} ", listing, flags=re.MULTILINE)
        assert number, listing
        path = dump / f"{number[1]}.dat.gz"
        text = gzip.decompress(path.read_bytes()).decode()
        body, _, _ = text.partition("\\.\n")
        rows = [line.split("\t") for line in body.splitlines()]
        path.write_bytes(
            gzip.compress(
                (
                    "".join("\t".join(r) + "\n" for r in edit_lines(rows, _columns(manifest, table))) + "\\.\n\n\n"
                ).encode()
            )
        )
    reseal(manifest)
    assert validate_backup(manifest).ok, "the forger's backup passes validation"


def _columns(manifest: Path, table: str) -> list[str]:
    """The table's columns in order, as the dump's COPY lines hold them."""
    dump = manifest.parent / "database" / "dump"
    script = subprocess.run(
        ["pg_restore", "--data-only", f"--table={table}", "-f", "-", str(dump)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    header = re.search(r"^COPY \S+ \((.*)\) FROM stdin;$", script, flags=re.MULTILINE)
    assert header
    return [c.strip().strip('"') for c in header[1].split(",")]


def set_column(
    rows: list[list[str]], columns: list[str], where: Callable[[dict[str, str]], bool], column: str, value: str
) -> list[list[str]]:
    for row in rows:
        if where(dict(zip(columns, row, strict=True))):
            row[columns.index(column)] = value
    return rows


def drill_fails(manifest: Path, settings: Settings, made: Made) -> dict[str, Any]:
    with pytest.raises(DrillFailed) as failed:
        restore_verify(manifest, settings=settings, server_url=made.url)
    return json.loads(Path(failed.value.report_path).read_text())


def diff_of(report: dict[str, Any], table: str) -> dict[str, Any]:
    return next(d for d in report["diff"] if d["table"] == table)


# --- the index itself -------------------------------------------------------------------------------


def test_the_index_is_in_the_manifest_and_holds_every_row(made: Made) -> None:
    manifest = read_manifest(made.folder)
    listed = {f["path"]: f for f in manifest.files}
    assert listed[ROW_INDEX_FILE]["role"] == "index"
    assert manifest.document["row_index"] == {
        "path": ROW_INDEX_FILE,
        "format": "aris3nb.row_index",
        "version": 1,
        "digest_bytes": 8,
        "rows": sum(t["rows"] for t in manifest.tables),
    }
    stock = next(t for t in manifest.tables if t["name"] == "stock_items")
    record = read_record(made.folder / ROW_INDEX_FILE, stock["chunks"][0]["index"])
    assert record.count == SCALE
    if made.engine == "sqlite":
        assert isinstance(record, ChunkRows) and record.key_list()[1233] == [1234]
        assert len(record.digests) == 8 * SCALE
    else:  # a sketch is smaller than 3,000 rows' digests: a fixed size, whatever the rows
        assert isinstance(record, ChunkSketch) and record.keyed and record.capacity == sketch.CAPACITY
        assert stock["chunks"][0]["index"][1] == 5 + sketch.record_size(8) < 8 * SCALE
    sales = next(t for t in manifest.tables if t["name"] == "sales")
    assert isinstance(read_record(made.folder / ROW_INDEX_FILE, sales["chunks"][0]["index"]), ChunkRows)
    assert (stock.get("digest_method") in ("rows", "row-sha256")) == (made.engine == "sqlite")
    tags = next(t for t in manifest.tables if t["name"] == "line_tags")
    assert tags["key"] == ["stock_item_id", "tag"]
    keys = read_record(made.folder / ROW_INDEX_FILE, tags["chunks"][0]["index"]).key_list()
    assert [k[1] for k in keys] == ["promo", "window", "promo", "damaged"]
    log = next(t for t in manifest.tables if t["name"] == "scan_log")
    assert log["key"] == (["rowid"] if made.engine == "sqlite" else [])


def test_a_changed_index_file_is_invalid(made: Made, tmp_path: Path) -> None:
    manifest = made.copy(tmp_path)
    index = manifest.parent / ROW_INDEX_FILE
    data = bytearray(index.read_bytes())
    data[-3] ^= 0x01
    index.write_bytes(bytes(data))
    problems = validate_backup(manifest).problems
    assert len(problems) == 1 and problems[0].startswith(f"file {ROW_INDEX_FILE!r} has changed")
    done = clifork.run(["backup", "validate", str(manifest)], timeout=60)
    assert done.returncode == 1 and "INVALID" in done.stdout and ROW_INDEX_FILE in done.stdout


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        (
            lambda d: d["tables"][0]["chunks"][0].update(index=[16, 10**9]),
            "chunk 0: 'index' is not an [offset, length] inside the row index",
        ),
        (
            lambda d: d["tables"][0]["chunks"][0].update(index=[3, 5]),
            "chunk 0: 'index' is not an [offset, length] inside the row index",
        ),
        (
            lambda d: d["tables"][0].update(digest_method="md5"),
            "tables.alembic_version.digest_method: Input should be 'rows' or 'row-sha256'",
        ),
        (lambda d: d.pop("row_index"), "has an 'index' record but the manifest has no 'row_index'"),
        (lambda d: d["row_index"].update(version=2), "row_index.version: Input should be 1"),
        (
            lambda d: d["row_index"].update(path="index/elsewhere.bin"),
            "the row index 'index/elsewhere.bin' is not a listed file",
        ),
    ],
)
def test_a_manifest_whose_index_entries_do_not_fit_is_invalid(
    sqlite_backup: Made, tmp_path: Path, change: Callable[[dict[str, Any]], Any], problem: str
) -> None:
    manifest = sqlite_backup.copy(tmp_path)
    document = json.loads(manifest.read_text())
    change(document)
    document["manifest_digest"] = manifest_digest(document)
    manifest.write_text(json.dumps(document))
    problems = validate_backup(manifest).problems
    assert any(problem in p for p in problems), problems


def test_a_pristine_copy_drills_pass(made: Made, tmp_path: Path, settings: Settings) -> None:
    report, _ = restore_verify(made.copy(tmp_path), settings=settings, server_url=made.url)
    assert report.status == "PASS" and report.diff == []


# --- a forger's changes, named by key -----------------------------------------------------------


def test_one_changed_row_is_named_by_key_with_its_restored_values(
    made: Made, tmp_path: Path, settings: Settings
) -> None:
    manifest = made.copy(tmp_path)
    forge(
        manifest,
        "stock_items",
        ["UPDATE stock_items SET sku = 'FORGED-1234' WHERE id = 1234"],
        lambda rows, cols: set_column(rows, cols, lambda r: r["id"] == "1234", "sku", "FORGED-1234"),
    )
    report = drill_fails(manifest, settings, made)
    stock = diff_of(report, "stock_items")
    assert stock["counts"] == {"changed": 1, "missing": 0, "extra": 0}
    [changed] = stock["changed"]
    assert changed["key"] == [1234]
    assert changed["restored"]["id"] == 1234 and changed["restored"]["sku"] == "FORGED-1234"
    assert re.fullmatch(r"[0-9a-f]{16}", changed["recorded_digest"])
    assert changed["restored_digest"] != changed["recorded_digest"]
    # The backup's data holds the forged row too: its values are not the recorded ones.
    assert changed["recorded"] is None and "changed after it was made" in changed["backup_data"]
    assert stock["ranges_differing"] == 1 and stock["ranges"][0]["rows_found"] == stock["ranges"][0]["rows_recorded"]
    assert "stock_items id=1234" in report["reason"]
    assert stock["missing"] == [] and stock["extra"] == []


def test_a_deleted_row_is_missing(made: Made, tmp_path: Path, settings: Settings) -> None:
    manifest = made.copy(tmp_path)
    forge(
        manifest,
        "stock_items",
        ["DELETE FROM stock_items WHERE id = 2345"],
        lambda rows, cols: [r for r in rows if r[cols.index("id")] != "2345"],
    )
    stock = diff_of(drill_fails(manifest, settings, made), "stock_items")
    assert stock["counts"] == {"changed": 0, "missing": 1, "extra": 0}
    [missing] = stock["missing"]
    assert missing["key"] == [2345] and missing["restored"] is None and missing["restored_digest"] is None
    assert re.fullmatch(r"[0-9a-f]{16}", missing["recorded_digest"])
    assert "removed after the backup was made" in missing["backup_data"]
    assert stock["rows_found"] == stock["rows_recorded"] - 1


def test_an_inserted_row_is_extra(made: Made, tmp_path: Path, settings: Settings) -> None:
    manifest = made.copy(tmp_path)

    def add(rows: list[list[str]], cols: list[str]) -> list[list[str]]:
        row = list(rows[4])
        row[cols.index("id")], row[cols.index("sku")], row[cols.index("epc")] = "9999", "INSERTED", "E-INSERTED"
        return [*rows, row]

    forge(
        manifest,
        "stock_items",
        [
            (
                "INSERT INTO stock_items SELECT 9999, tenant_id, store_id, 'INSERTED', description, 'E-INSERTED', "
                "status, location_code, cost_price, sale_price, created_at, updated_at, sellable "
                "FROM stock_items WHERE id = 5"
            )
        ],
        add,
    )
    stock = diff_of(drill_fails(manifest, settings, made), "stock_items")
    assert stock["counts"] == {"changed": 0, "missing": 0, "extra": 1}
    [extra] = stock["extra"]
    assert extra["key"] == [9999] and extra["restored"]["sku"] == "INSERTED"
    assert extra["recorded_digest"] is None and re.fullmatch(r"[0-9a-f]{16}", extra["restored_digest"])
    assert "added to the backup after it was made" in extra["backup_data"]


def forge_by_uuid(made: Made, where: Path, table: str, query: str, column: str) -> tuple[Path, str, tuple]:
    """Set ``column`` to FORGED in the row of ``table`` whose UUID ``query``'s first column
    gives, in a copy of the backup's own data (resealed); the copy's manifest, the key as
    text, and the row ``query`` read."""
    engine = create_engine(made.url)
    with engine.connect() as conn:
        row = tuple(conn.exec_driver_sql(query).one())
    engine.dispose()
    text = row[0].hex if isinstance(row[0], uuid.UUID) else str(row[0])
    manifest = made.copy(where)
    forge(
        manifest,
        table,
        [f"UPDATE {table} SET {column} = 'FORGED' WHERE id = '{text}'"],
        lambda rows, cols: set_column(
            rows, cols, lambda r: r["id"].replace("-", "") == text.replace("-", ""), column, "FORGED"
        ),
    )
    return manifest, text, row


def test_a_uuid_key_is_named(made: Made, tmp_path: Path, settings: Settings) -> None:
    query = "SELECT id FROM sales ORDER BY id LIMIT 1 OFFSET 7"
    manifest, text, _ = forge_by_uuid(made, tmp_path, "sales", query, "status")
    [changed] = diff_of(drill_fails(manifest, settings, made), "sales")["changed"]
    assert changed["key"][0].replace("-", "") == text.replace("-", "") and changed["restored"]["status"] == "FORGED"


def test_secret_columns_are_masked_in_the_diff(made: Made, tmp_path: Path, settings: Settings) -> None:
    """A forged user: the diff names the row with its restored and recorded values, but never
    its password hash (a column named like a secret), on either engine, in the report file."""
    query = "SELECT id, password_hash FROM users ORDER BY id LIMIT 1"
    manifest, _, (_, hashed) = forge_by_uuid(made, tmp_path, "users", query, "full_name")
    report = drill_fails(manifest, settings, made)
    [changed] = diff_of(report, "users")["changed"]
    assert changed["restored"]["full_name"] == "FORGED" and changed["restored"]["password_hash"] == "***"
    assert hashed not in json.dumps(report)


def test_restore_verify_shows_a_failed_drills_report_as_it_shows_a_passing_one(
    sqlite_backup: Made, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`backup restore-verify` of a forged backup: --json prints the report (FAIL, the diff, the
    report's path), text prints the check table; both end with the reason's line, exit 1."""
    from aris3nb import cli
    from aris3nb.cli import _common

    manifest = sqlite_backup.copy(tmp_path)
    forge(
        manifest,
        "stock_items",
        ["UPDATE stock_items SET sku = 'FORGED' WHERE id = 1234"],
        lambda rows, cols: rows,
    )
    monkeypatch.setenv("OPS_ENABLE_BACKUP_DRILL", "true")
    monkeypatch.setenv("OPS_ARTIFACTS_DIR", str(tmp_path / "artifacts"))
    monkeypatch.delenv("DATABASE_URL", raising=False)
    _common.settings.cache_clear()  # the CLI reads its settings once a process: read these
    for args in (["--json"], []):
        with pytest.raises(SystemExit) as exited:
            try:
                cli.main(["backup", "restore-verify", str(manifest), *args])
            finally:
                _common.settings.cache_clear()  # nor keep them for the tests after this one
        assert exited.value.code == 1
        out, err = capsys.readouterr()
        assert err.count("\n") == 1 and "drill of row_index FAILED" in err, err
        if args:
            document = json.loads(out)
            assert document["status"] == "FAIL" and Path(document["report_path"]).is_file()
            assert diff_of(document, "stock_items")["changed"][0]["key"] == [1234]
        else:
            assert "FAIL  tables match the manifest" in out and "drill FAIL: RTO" in out, out


def test_a_composite_key_is_named(made: Made, tmp_path: Path, settings: Settings) -> None:
    manifest = made.copy(tmp_path)
    forge(
        manifest,
        "line_tags",
        ["UPDATE line_tags SET note = 'forged' WHERE stock_item_id = 1234 AND tag = 'promo'"],
        lambda rows, cols: set_column(rows, cols, lambda r: r["stock_item_id"] == "1234", "note", "forged"),
    )
    tags = diff_of(drill_fails(manifest, settings, made), "line_tags")
    [changed] = tags["changed"]
    assert tags["key"] == ["stock_item_id", "tag"]
    assert changed["key"] in ([1234, "promo"], ["1234", "promo"]) and changed["restored"]["note"] == "forged"


def test_a_table_without_a_key_is_named_honestly(made: Made, tmp_path: Path, settings: Settings) -> None:
    """SQLite: rows are named by rowid. PostgreSQL: nothing names a row but its content, so a
    changed row is one recorded row missing and one restored row extra, each by digest."""
    manifest = made.copy(tmp_path)
    forge(
        manifest,
        "scan_log",
        ["UPDATE scan_log SET reader = 'gate-9' WHERE epc = 'E2'"],
        lambda rows, cols: set_column(rows, cols, lambda r: r["epc"] == "E2", "reader", "gate-9"),
    )
    log = diff_of(drill_fails(manifest, settings, made), "scan_log")
    if made.engine == "sqlite":
        assert log["key"] == ["rowid"] and log["counts"] == {"changed": 1, "missing": 0, "extra": 0}
        assert log["changed"][0]["key"] == [3] and log["changed"][0]["restored"]["reader"] == "gate-9"
    else:
        assert log["key"] == [] and log["counts"] == {"changed": 0, "missing": 1, "extra": 1}
        [missing], [extra] = log["missing"], log["extra"]
        assert missing["key"] is None and re.fullmatch(r"[0-9a-f]{16}", missing["recorded_digest"])
        assert extra["key"] is None and extra["restored"]["reader"] == "gate-9" and extra["restored"]["epc"] == "E2"
        assert "without a primary key" in extra["backup_data"]


def test_a_row_the_restore_changed_shows_the_recorded_values(
    made: Made, tmp_path: Path, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The backup's data is intact (its row matches the recorded digest) but the restored
    copy differs: the diff shows the recorded values beside the restored ones."""
    manifest = made.copy(tmp_path)
    if made.engine == "sqlite":
        from aris3nb.backup import sqlite as sqlite_module

        real_copy = sqlite_module.scratch_copy_ahead

        @contextlib.contextmanager
        def faulty_copy(backup_file: Path) -> Iterator[Callable[[], Path]]:
            with real_copy(backup_file) as ready:

                def changed() -> Path:
                    conn = sqlite3.connect(ready(), isolation_level=None)
                    conn.execute("UPDATE stock_items SET sale_price = 0.5 WHERE id = 1234")
                    conn.close()
                    return ready()

                yield changed

        monkeypatch.setattr(sqlite_module, "scratch_copy_ahead", faulty_copy)
    else:
        real_restore = postgres.restore

        def faulty_restore(dump_dir: Path, target_url: str, deadline: Any, *, clean: bool) -> None:
            real_restore(dump_dir, target_url, deadline, clean=clean)
            engine = create_engine(target_url)
            with engine.begin() as conn:
                conn.exec_driver_sql("UPDATE stock_items SET sale_price = 0.5 WHERE id = 1234")
            engine.dispose()

        monkeypatch.setattr(postgres, "restore", faulty_restore)
    [changed] = diff_of(drill_fails(manifest, settings, made), "stock_items")["changed"]
    assert changed["key"] == [1234]
    assert float(changed["restored"]["sale_price"]) == 0.5
    assert changed["recorded"]["id"] == 1234 and float(changed["recorded"]["sale_price"]) != 0.5
    assert {k: v for k, v in changed["recorded"].items() if k != "sale_price"} == {
        k: v for k, v in changed["restored"].items() if k != "sale_price"
    }
    assert "the restore changed it" in changed["backup_data"]


def test_many_changed_rows_are_capped_and_counted(made: Made, tmp_path: Path, settings: Settings) -> None:
    manifest = made.copy(tmp_path)
    forge(
        manifest,
        "stock_items",
        ["UPDATE stock_items SET description = 'bulk' WHERE id % 100 = 7"],
        lambda rows, cols: set_column(rows, cols, lambda r: int(r["id"]) % 100 == 7, "description", "bulk"),
    )
    stock = diff_of(drill_fails(manifest, settings, made), "stock_items")
    assert stock["counts"] == {"changed": 30, "missing": 0, "extra": 0}
    assert len(stock["changed"]) == drill.DIFF_ROWS == stock["shown_per_kind"]
    assert [c["key"] for c in stock["changed"]] == [[n * 100 + 7] for n in range(drill.DIFF_ROWS)]


# --- backups made before the index ------------------------------------------------------------------


def test_a_backup_without_an_index_still_drills_and_diffs_by_range(
    made: Made, tmp_path: Path, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(digest, "WRITE_ROW_INDEX", False)
    old = create_backup(
        made.url,
        "before_the_index",
        settings=load_settings(artifacts={"dir": tmp_path / "old"}),
        exports_dir=made.exports,
    )
    document = old.manifest
    assert "row_index" not in document and not any(f["path"] == ROW_INDEX_FILE for f in document["files"])
    assert not any("index" in c or "digest_method" in t for t in document["tables"] for c in t["chunks"])
    monkeypatch.setattr(digest, "WRITE_ROW_INDEX", True)  # the code of today drills yesterday's backup
    report, _ = restore_verify(old.manifest_path, settings=settings, server_url=made.url)
    assert report.status == "PASS"
    forge(
        old.manifest_path,
        "stock_items",
        ["UPDATE stock_items SET sku = 'X' WHERE id = 1234"],
        lambda rows, cols: set_column(rows, cols, lambda r: r["id"] == "1234", "sku", "X"),
    )
    stock = diff_of(drill_fails(old.manifest_path, settings, made), "stock_items")
    assert "changed" not in stock and stock["ranges_differing"] == 1
    assert 0 < len(stock["ranges"][0]["restored_sample"]) <= drill.SAMPLE_ROWS


# --- PostgreSQL: sketches ------------------------------------------------------------------------


def _pg_backup(made: Made, where: Path, name: str, monkeypatch: pytest.MonkeyPatch, chunk_rows: int) -> Path:
    """A backup of the module's PostgreSQL source cut into chunks of ``chunk_rows`` rows."""
    real = postgres.digest_table

    def digest_table(*args: Any, **kwargs: Any) -> digest.TableDigest:
        return real(*args, chunk_rows=chunk_rows, **kwargs)

    with monkeypatch.context() as patched:
        patched.setattr(postgres, "digest_table", digest_table)
        made_now = create_backup(
            made.url, name, settings=load_settings(artifacts={"dir": where}), exports_dir=made.exports
        )
    return made_now.manifest_path


@pytest.mark.postgres
def test_rows_are_named_across_a_tables_sketches(
    postgres_backup: Made, tmp_path: Path, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Chunks of 1,000 rows (8 kB of per-row digests, a 7 kB sketch): every chunk of
    stock_items is a sketch; one changed, one deleted and one inserted row, in two chunks, are
    named by key with their restored values (the inserted one below every key: chunk 0)."""
    manifest = _pg_backup(postgres_backup, tmp_path / "made", "sketches", monkeypatch, 1_000)
    stock = next(t for t in json.loads(manifest.read_text())["tables"] if t["name"] == "stock_items")
    assert [c["rows"] for c in stock["chunks"]] == [1_000, 1_000, 1_000, 0]
    records = [read_record(manifest.parent / ROW_INDEX_FILE, c["index"]) for c in stock["chunks"]]
    assert [type(r).__name__ for r in records] == ["ChunkSketch"] * 3 + ["ChunkRows"]

    def edit(rows: list[list[str]], cols: list[str]) -> list[list[str]]:
        rows = set_column(rows, cols, lambda r: r["id"] == "1234", "sku", "FORGED-1234")
        rows = [r for r in rows if r[cols.index("id")] != "1500"]
        added = list(rows[1_400])
        added[cols.index("id")], added[cols.index("sku")], added[cols.index("epc")] = "0", "INSERTED", "E-NEW"
        return [*rows, added]

    forge(manifest, "stock_items", [], edit)
    report = drill_fails(manifest, settings, postgres_backup)
    diff = diff_of(report, "stock_items")
    assert diff["counts"] == {"changed": 1, "missing": 1, "extra": 1}
    assert [r["chunk"] for r in diff["ranges"]] == [0, 1] and "unnamed_chunks" not in diff
    [changed], [missing], [extra] = diff["changed"], diff["missing"], diff["extra"]
    assert changed["key"] == [1234] and changed["restored"]["sku"] == "FORGED-1234"
    assert re.fullmatch(r"[0-9a-f]{16}", changed["recorded_digest"]) and changed["restored_digest"]
    assert changed["recorded_digest"] != changed["restored_digest"]
    assert missing["key"] == [1500] and missing["restored"] is None and missing["restored_digest"] is None
    assert re.fullmatch(r"[0-9a-f]{16}", missing["recorded_digest"])
    assert "removed after the backup was made" in missing["backup_data"]
    assert extra["key"] == [0] and extra["restored"]["sku"] == "INSERTED" and extra["recorded_digest"] is None
    assert "stock_items id=1234 and 2 more rows" in report["reason"]


@pytest.mark.postgres
def test_more_differences_than_a_sketch_names_are_reported_unnamed(
    postgres_backup: Made, tmp_path: Path, settings: Settings
) -> None:
    """300 changed rows in one 3,000-row chunk: beyond its sketch's capacity. The drill fails
    on the digests as always, names only rows it is certain of, and says that the chunk's rows
    are not all named."""
    manifest = postgres_backup.copy(tmp_path)
    forge(
        manifest,
        "stock_items",
        [],
        lambda rows, cols: set_column(rows, cols, lambda r: int(r["id"]) % 10 == 3, "description", "bulk"),
    )
    report = drill_fails(manifest, settings, postgres_backup)
    assert report["status"] == "FAIL"
    stock = diff_of(report, "stock_items")
    [unnamed] = stock["unnamed_chunks"]
    assert unnamed["chunk"] == 0 and unnamed["rows_recorded"] == unnamed["rows_found"] == SCALE
    assert unnamed["capacity"] == sketch.CAPACITY and unnamed["after_key"] is None and unnamed["up_to_key"] is None
    assert unnamed["rows_named"] == sum(stock["counts"].values()) < 300
    assert unnamed["rows_unnamed_at_least"] >= 1
    assert stock["counts"]["missing"] == stock["counts"]["extra"] == 0  # nothing named wrongly
    assert all(row["key"][0] % 10 == 3 for row in stock["changed"])
    assert "NOT ALL ROWS NAMED in 1 key range of stock_items" in report["reason"]
    assert "its sketch names up to 48 a range" in report["reason"]


@pytest.mark.postgres
def test_a_backup_of_per_row_records_only_is_drilled_as_before(
    postgres_backup: Made, tmp_path: Path, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Backups made before sketches hold per-row records for every chunk: their drills name
    rows as they always did."""
    monkeypatch.setattr(digest, "WRITE_SKETCHES", False)
    old = create_backup(
        postgres_backup.url,
        "before_sketches",
        settings=load_settings(artifacts={"dir": tmp_path / "old"}),
        exports_dir=postgres_backup.exports,
    )
    monkeypatch.setattr(digest, "WRITE_SKETCHES", True)
    stock = next(t for t in old.manifest["tables"] if t["name"] == "stock_items")
    record = read_record(old.path / ROW_INDEX_FILE, stock["chunks"][0]["index"])
    assert isinstance(record, ChunkRows) and len(record.digests) == 8 * SCALE
    forge(
        old.manifest_path,
        "stock_items",
        [],
        lambda rows, cols: set_column(rows, cols, lambda r: int(r["id"]) % 10 == 3, "description", "bulk"),
    )
    diff = diff_of(drill_fails(old.manifest_path, settings, postgres_backup), "stock_items")
    assert diff["counts"] == {"changed": 300, "missing": 0, "extra": 0} and "unnamed_chunks" not in diff
    assert [c["key"] for c in diff["changed"]] == [[n * 10 + 3] for n in range(drill.DIFF_ROWS)]


@pytest.mark.postgres
def test_the_native_and_the_python_line_hash_make_the_same_index(
    postgres_backup: Made, tmp_path: Path, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The per-line SHA-256 and integer keys in C (``_linehash``) or in Python: the same chunk
    digests and the same row index, byte for byte; a backup made natively is drilled in Python
    and names the forged row."""
    pytest.importorskip("aris3nb.backup._linehash", reason="the native line hash is not built here")
    monkeypatch.setattr(digest, "USE_NATIVE", False)
    python_made = create_backup(
        postgres_backup.url,
        "python_lines",
        settings=load_settings(artifacts={"dir": tmp_path / "python"}),
        exports_dir=postgres_backup.exports,
    )
    native_manifest = read_manifest(postgres_backup.folder / "manifest.json")
    assert python_made.manifest["tables"] == native_manifest.tables
    assert (python_made.path / ROW_INDEX_FILE).read_bytes() == (postgres_backup.folder / ROW_INDEX_FILE).read_bytes()

    manifest = postgres_backup.copy(tmp_path)
    forge(
        manifest, "stock_items", [], lambda rows, cols: set_column(rows, cols, lambda r: r["id"] == "1234", "sku", "X")
    )
    diff = diff_of(drill_fails(manifest, settings, postgres_backup), "stock_items")
    assert diff["counts"] == {"changed": 1, "missing": 0, "extra": 0} and diff["changed"][0]["key"] == [1234]
