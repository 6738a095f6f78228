"""The integrity check on a target that is not aris3nb's reference: the foreign ARIS3-like
target of tests/targets/foreign, migrated and seeded by its own code in its own venv, on real
SQLite and PostgreSQL, checked with its profile's [[integrity.sql]] and [[integrity.files]].

Clean data passes; each inconsistency its README plants is found, naming the row; export files
changed, missing or extra are named; a missing column makes a check NOT APPLICABLE; and the
built-in reference set on this schema is NOT APPLICABLE throughout — warnings with reasons,
none crashing, none a business FAIL.
"""

from __future__ import annotations

import dataclasses
import re
import shutil
import tomllib
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import foreign_target as ft  # tests/targets/foreign_target.py (tests/conftest.py puts it on sys.path)
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url

from aris3nb.core.checks import Status, Verdict
from aris3nb.core.db import create_engine
from aris3nb.integrity import INTEGRITY_CHECKS, IntegrityOptions, IntegrityReport, checks_from_toml, run_integrity_check

pytestmark = pytest.mark.slow  # the target's venv: 25-45 s once per machine (kept under VENV_CACHE)

TARGETS = Path(__file__).resolve().parents[1] / "targets"
VENV_CACHE = ft.VENV_CACHE
SCALE = 40
SCRATCH_PREFIX = "aris3nb_test_"


PROFILE = tomllib.loads(ft.PROFILE.read_text())
SELECTION = checks_from_toml(PROFILE["integrity"], base_dir=ft.ROOT)
SEVERITY = {check.name: check.severity for check in (*SELECTION.sql, *SELECTION.files)}


def planted_inconsistencies() -> dict[str, tuple[str, set[str]]]:
    """README's "Planting inconsistencies": per check, its SQL and the other checks it trips."""
    text = (ft.ROOT / "README.md").read_text().split("## Planting inconsistencies", 1)[1]
    plants = {}
    for name, body in re.findall(r"^### (\S+)\n(.*?)(?=^### |\Z)", text, flags=re.MULTILINE | re.DOTALL):
        sql = re.search(r"```sql\n(.*?)```", body, flags=re.DOTALL)
        assert sql is not None, name
        prose = re.sub(r"```.*?```", "", body, flags=re.DOTALL)
        plants[name] = (sql.group(1).strip().rstrip(";"), set(re.findall(r"`(\w+)`", prose)) & set(SEVERITY))
    return plants


PLANTS = planted_inconsistencies()

#: For some plants, the row the finding must name: (query run before planting, sample column).
NAMED_ROW = {
    "receipt_tenders_cover_total": (
        (
            "SELECT t.receipt_id FROM receipt_tenders t JOIN receipts r ON r.receipt_id = "
            "t.receipt_id WHERE r.receipt_state = 'SETTLED' AND t.tender_kind = 'CARD' "
            "ORDER BY r.receipt_no, t.tender_id LIMIT 1"
        ),
        "receipt_id",
    ),
    "sold_units_match_settled_receipts": (
        ("SELECT unit_id FROM inventory_units WHERE unit_state = 'ON_HAND' ORDER BY rfid_tag LIMIT 1"),
        "unit_id",
    ),
    "ended_shift_count_matches_entries": (
        ("SELECT shift_id FROM till_shifts WHERE shift_state = 'ENDED' ORDER BY started_on, shift_id LIMIT 1"),
        "shift_id",
    ),
    "consignment_events_cover_phase": (
        ("SELECT consignment_id FROM consignments WHERE phase = 'DELIVERED' ORDER BY opened_on LIMIT 1"),
        "consignment_id",
    ),
    "finished_export_is_recorded": (
        ("SELECT export_id FROM report_exports WHERE export_state = 'DONE' ORDER BY file_name LIMIT 1"),
        "export_id",
    ),
    "export_files_match_digest": (
        ("SELECT export_id FROM report_exports WHERE export_state = 'DONE' ORDER BY file_name LIMIT 1"),
        "export_id",
    ),
}


@dataclass(frozen=True)
class Target:
    url: str
    exports_dir: Path


def key(value: Any) -> str:
    """A UUID however an engine spells it (SQLite: 32 hex digits; PostgreSQL: with hyphens)."""
    return str(value).replace("-", "").lower()


def _pg_url(admin: sa.Engine, name: str) -> str:
    return make_url(admin.url).set(database=name).render_as_string(hide_password=False)


@pytest.fixture(scope="session")
def foreign_python() -> Path:
    return ft.ensure_venv(VENV_CACHE)


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def template(
    request: pytest.FixtureRequest, foreign_python: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Target]:
    """The target's database, migrated and seeded by the target's own code once per engine."""
    folder = tmp_path_factory.mktemp("foreign-template")
    if request.param == "sqlite":
        url = f"sqlite:///{folder / 'foreign.db'}"
        ft.migrate(foreign_python, url)
        ft.seed(foreign_python, url, SCALE, folder / "exports")
        yield Target(url, folder / "exports")
        return
    admin: sa.Engine = request.getfixturevalue("postgres_admin")
    name = f"{SCRATCH_PREFIX}foreign_{uuid.uuid4().hex[:8]}"
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    try:
        ft.migrate(foreign_python, _pg_url(admin, name), widen_version_table=True)
        ft.seed(foreign_python, _pg_url(admin, name), SCALE, folder / "exports")
        yield Target(_pg_url(admin, name), folder / "exports")
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def target(template: Target, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Target]:
    """A copy of the seeded target (database and export files) a test may corrupt."""
    exports = tmp_path / "exports"
    shutil.copytree(template.exports_dir, exports)
    if template.url.startswith("sqlite"):
        shutil.copyfile(make_url(template.url).database, tmp_path / "foreign.db")
        yield Target(f"sqlite:///{tmp_path / 'foreign.db'}", exports)
        return
    admin: sa.Engine = request.getfixturevalue("postgres_admin")
    name = f"{SCRATCH_PREFIX}{uuid.uuid4().hex[:12]}"
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}" TEMPLATE "{make_url(template.url).database}"')
    try:
        yield Target(_pg_url(admin, name), exports)
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def check(target: Target, tmp_path: Path, *, strict: bool = True, **options: Any) -> IntegrityReport:
    base = IntegrityOptions(target.url, target.exports_dir, strict=strict).with_selection(SELECTION)
    return run_integrity_check(dataclasses.replace(base, **options), artifacts_dir=tmp_path / "artifacts")


def query(url: str, sql: str) -> Any:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return conn.execute(sa.text(sql)).scalar_one()
    finally:
        engine.dispose()


def execute(url: str, sql: str) -> None:
    engine = create_engine(url)
    try:
        with engine.begin() as conn:
            assert conn.execute(sa.text(sql)).rowcount != 0, f"the plant changed nothing: {sql}"
    finally:
        engine.dispose()


def not_passing(report: IntegrityReport) -> dict[str, Status]:
    return {r.name: r.status for r in report.results if r.status is not Status.PASS}


def test_clean_data_passes_every_profile_check(target: Target, tmp_path: Path) -> None:
    report = check(target, tmp_path)
    assert not_passing(report) == {}, [(r.name, r.detail) for r in report.results if r.status is not Status.PASS]
    assert report.verdict is Verdict.PASS and len(report.results) == 17
    assert [r.name for r in report.results] == [c.name for c in SELECTION.sql] + ["export_files_match_digest"]
    files = report.results[-1]
    assert files.evidence["checked"] == 6 and files.evidence["extra"] == 0


@pytest.mark.parametrize("plant", list(PLANTS))
def test_each_planted_inconsistency_is_found_naming_the_row(target: Target, tmp_path: Path, plant: str) -> None:
    sql, also_trips = PLANTS[plant]
    probe = NAMED_ROW.get(plant)
    expected_row = key(query(target.url, probe[0])) if probe else None
    execute(target.url, sql)
    report = check(target, tmp_path)
    found = not_passing(report)
    expected_status = Status.FAIL if SEVERITY[plant] == "error" else Status.WARN
    assert found.get(plant) is expected_status, found
    assert set(found) <= {plant} | also_trips, f"{plant} tripped {sorted(set(found) - {plant} - also_trips)} as well"
    assert report.verdict is Verdict.FAIL, "strict: a warning fails the run too"
    result = next(r for r in report.results if r.name == plant)
    first = result.evidence["sample"][0]
    assert result.evidence["offending"] >= 1 and "; first: " in result.detail
    assert result.detail.split("; first: ", 1)[1].startswith(f"{next(iter(first))}=")
    if probe:
        assert key(first[probe[1]]) == expected_row, (first, expected_row)


def test_a_planted_state_names_the_column_and_value(target: Target, tmp_path: Path) -> None:
    execute(target.url, PLANTS["known_states"][0])
    result = next(r for r in check(target, tmp_path).results if r.name == "known_states")
    assert result.evidence["sample"] == [{"column_name": "receipts.receipt_state", "value": "PAID", "rows_with_it": 1}]
    assert result.detail == "1 offending row; first: column_name=receipts.receipt_state, value=PAID, rows_with_it=1"


def test_export_files_changed_missing_or_extra_are_named(target: Target, tmp_path: Path) -> None:
    files = sorted(p.relative_to(target.exports_dir).as_posix() for p in target.exports_dir.rglob("*") if p.is_file())
    changed = "smoke-retail/daily_takings_20250303.csv"
    assert changed in files and len(files) == 6
    with (target.exports_dir / changed).open("ab") as stream:
        stream.write(b"tampered\n")
    missing = next(f for f in files if f != changed)
    (target.exports_dir / missing).unlink()
    (target.exports_dir / "smoke-retail" / "stray.csv").write_text("no row vouches for me\n")
    report = check(target, tmp_path)
    assert not_passing(report) == {"export_files_match_digest": Status.FAIL}
    result = report.results[-1]
    problems = {row["file_name"]: row["problem"] for row in result.evidence["sample"]}
    assert problems[missing] == "file missing"
    assert problems[changed].startswith("size ")
    assert problems["smoke-retail/stray.csv"] == "extra file: no row vouches for it"
    assert (result.evidence["offending"], result.evidence["extra"]) == (3, 1)
    assert all("export_id" in row for row in result.evidence["sample"] if not row["problem"].startswith("extra"))


def test_a_missing_column_makes_its_check_not_applicable_not_a_fail(target: Target, tmp_path: Path) -> None:
    execute(target.url, "ALTER TABLE till_shifts DROP COLUMN counted_minor")
    report = check(target, tmp_path, strict=False)
    assert not_passing(report) == {"ended_shift_count_matches_entries": Status.WARN}
    result = next(r for r in report.results if r.name == "ended_shift_count_matches_entries")
    assert result.detail == "not applicable: needs till_shifts.counted_minor, absent here"
    assert result.evidence == {"not_applicable": True, "missing": ["till_shifts.counted_minor"]}
    assert report.verdict is Verdict.PASS_WITH_WARNINGS
    assert report.document["not_applicable"] == {"count": 1, "checks": ["ended_shift_count_matches_entries"]}


def test_a_check_query_cannot_write(target: Target, tmp_path: Path) -> None:
    writer = {
        "name": "writer",
        "severity": "error",
        "requires": ["activity_journal"],
        "query": "WITH gone AS (DELETE FROM activity_journal RETURNING 1 AS x) SELECT x FROM gone",
    }
    before = query(target.url, "SELECT count(*) FROM activity_journal")
    report = check(target, tmp_path, sql_checks=(writer,), file_checks=())
    assert report.results[0].status is Status.FAIL and report.results[0].detail.startswith(
        "the query of writer failed: "
    )
    assert query(target.url, "SELECT count(*) FROM activity_journal") == before > 0


def test_the_reference_set_is_not_applicable_here_and_never_crashes(target: Target, tmp_path: Path) -> None:
    report = check(target, tmp_path, strict=False, builtin=("reference",), sql_checks=(), file_checks=())
    assert [r.name for r in report.results] == INTEGRITY_CHECKS.names()
    for result in report.results:
        assert result.status is Status.WARN and result.detail.startswith("not applicable: "), (
            result.name,
            result.detail,
        )
        assert result.evidence["not_applicable"] is True
        assert (
            "failed" not in result.detail and "no such" not in result.detail and "does not exist" not in result.detail
        )
    assert report.document["not_applicable"] == {"count": 16, "checks": INTEGRITY_CHECKS.names()}
    assert report.document["counts"] == {"PASS": 0, "WARN": 16, "FAIL": 0, "SKIP": 0}
    assert report.verdict is Verdict.PASS_WITH_WARNINGS
    details = {r.name: r.detail for r in report.results}
    assert details["schema.revision"].startswith(f"not applicable: the database is at revision {ft.HEAD}, ")
    assert details["pos.lines_sum_to_total"] == "not applicable: needs sales, sale_lines, absent here"
    strict = check(target, tmp_path, builtin=("reference",), sql_checks=(), file_checks=())
    assert strict.verdict is Verdict.FAIL and [r.name for r in strict.blocking] == INTEGRITY_CHECKS.names()
