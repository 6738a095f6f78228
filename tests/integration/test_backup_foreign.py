"""Backups, drills and the rollback's revert on a target that is not aris3nb's reference: the
foreign ARIS3-like target of tests/targets/foreign, migrated and seeded by its own code in its
own venv, on real SQLite and PostgreSQL, judged with its profile (aris3nb.toml).

A backup at the target's own revision validates (its tables come from the target's migrations;
``request_keys`` is left out, as the profile says) and drills PASS: the restored copy upgraded
by the target's Alembic, checked with the profile's [integrity] checks, its RPO read from the
profile's sources. A revision the target's history does not know is a warning, not INVALID. A
row changed in the backup, every digest recomputed, passes the digests and FAILs the drill's
business invariants. A missing exports folder is a warning. The profile's revert command runs
in the target's root.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import re
import shutil
import sqlite3
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import clifork
import foreign_target as ft  # tests/targets/foreign_target.py (tests/conftest.py puts it on sys.path)
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url

from aris3nb import cli
from aris3nb.backup import profiles
from aris3nb.backup import sqlite as sqlite_backup
from aris3nb.backup.create import create_backup
from aris3nb.backup.digest import ROW_INDEX_FILE, Deadline, RowIndexWriter
from aris3nb.backup.drill import INTEGRITY_CHECK, RPO_SOURCES, read_drill_report, restore_verify
from aris3nb.backup.manifest import manifest_digest, validate_backup
from aris3nb.core.checks import Status
from aris3nb.core.db import create_engine
from aris3nb.core.errors import DrillFailed
from aris3nb.core.settings import Settings, load_settings
from aris3nb.phases.deploy import DeployOptions, deploy
from aris3nb.phases.rollback import ROLLBACK_STEPS, RollbackOptions, _RollbackContext
from aris3nb.targets.profile import LoadedProfile, load_profile

pytestmark = pytest.mark.slow  # the target's venv: 25-45 s once per machine (kept under VENV_CACHE)

TARGETS = Path(__file__).resolve().parents[1] / "targets"
VENV_CACHE = ft.VENV_CACHE
SCALE = 8
ARIS3NB = str(Path(sys.executable).with_name("aris3nb"))
SCRATCH_PREFIX = "aris3nb_test_"
#: A revision of upstream ARIS3's history: unknown to the foreign target's migrations.
UPSTREAM_REVISION = "0037_s12_reports_cost_snapshot"
#: README's "receipt_tenders_cover_total" plant: a settled receipt's card tender 100 short.
PLANT = (
    "UPDATE receipt_tenders SET amount_minor = amount_minor - 100 WHERE tender_id = ("
    "SELECT t.tender_id FROM receipt_tenders t JOIN receipts r ON r.receipt_id = t.receipt_id "
    "WHERE r.receipt_state = 'SETTLED' AND t.tender_kind = 'CARD' ORDER BY r.receipt_no, t.tender_id LIMIT 1)"
)


def write_profile(folder: Path, python: Path, exports_dir: Path, *, rpo: str | None = None) -> LoadedProfile:
    """A copy of the target's aris3nb.toml in ``folder``: its root the target's (absolute), the
    interpreter and exports folder given; ``rpo`` replaces its [[rpo.sources]] tables."""
    text = ft.PROFILE.read_text(encoding="utf-8")
    for key, value in (("root", ft.ROOT), ("python", python), ("exports_dir", exports_dir)):
        text, found = re.subn(rf'^{key} = ".*"$', f'{key} = "{value}"', text, count=1, flags=re.M)
        assert found == 1, key
    if rpo is not None:
        text = text.split("[[rpo.sources]]", 1)[0] + rpo
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "aris3nb.toml").write_text(text, encoding="utf-8")
    return load_profile(folder / "aris3nb.toml")


@dataclass(frozen=True)
class Made:
    """A seeded foreign database, its profile, and a clean backup of it."""

    engine: str
    url: str
    exports: Path
    profile: LoadedProfile
    settings: Settings
    manifest: Path


def _pg_url(admin: sa.Engine, name: str) -> str:
    return make_url(admin.url).set(database=name).render_as_string(hide_password=False)


def _execute(url: str, sql: str) -> None:
    engine = create_engine(url)
    try:
        with engine.begin() as conn:
            assert conn.execute(sa.text(sql)).rowcount == 1
    finally:
        engine.dispose()


@pytest.fixture(scope="module")
def foreign_python() -> Path:
    return ft.ensure_venv(VENV_CACHE)


@pytest.fixture(scope="module")
def foreign_sqlite(foreign_python: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Path]:
    folder = tmp_path_factory.mktemp("foreign-sqlite")
    url = f"sqlite:///{folder / 'foreign.db'}"
    ft.migrate(foreign_python, url)
    ft.seed(foreign_python, url, SCALE, folder / "exports")
    return url, folder / "exports"


@pytest.fixture(autouse=True)
def _no_exports_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FOREIGN_EXPORTS_DIR", raising=False)  # the profile's exports_dir_env would win


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def made(
    request: pytest.FixtureRequest, foreign_python: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Made]:
    folder = tmp_path_factory.mktemp(f"foreign-{request.param}")
    settings = load_settings(artifacts={"dir": folder / "artifacts"}, backup={"drill_enabled": True})
    name = None
    if request.param == "sqlite":
        url, exports = request.getfixturevalue("foreign_sqlite")
    else:
        admin: sa.Engine = request.getfixturevalue("postgres_admin")
        name = f"{SCRATCH_PREFIX}foreign_{uuid.uuid4().hex[:8]}"
        with admin.connect() as conn:
            conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
        url, exports = _pg_url(admin, name), folder / "exports"
        ft.migrate(foreign_python, url, widen_version_table=True)
        ft.seed(foreign_python, url, SCALE, exports)
    try:
        profile = write_profile(folder / "profile", foreign_python, exports)
        manifest = create_backup(url, "pre_deploy_foreign", settings=settings, profile=profile).manifest_path
        yield Made(request.param, url, exports, profile, settings, manifest)
    finally:
        if name is not None:
            with request.getfixturevalue("postgres_admin").connect() as conn:
                conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def copy_backup(made: Made, name: str, change: Any = None) -> Path:
    """The clean backup copied under ``name`` (its manifest renamed and re-sealed, as a forger
    would), with ``change(document, folder)`` applied first."""
    folder = made.manifest.parent.with_name(name)
    shutil.copytree(made.manifest.parent, folder)
    path = folder / "manifest.json"
    document = json.loads(path.read_text())
    document["name"] = name
    if change is not None:
        change(document, folder)
    document["manifest_digest"] = manifest_digest(document)
    path.write_text(json.dumps(document))
    return path


def drill(made: Made, manifest: Path, **kwargs: Any):  # type: ignore[no-untyped-def]
    return restore_verify(manifest, settings=made.settings, server_url=made.url, **kwargs)


def test_a_backup_at_the_foreign_revision_validates_and_drills(made: Made) -> None:
    document = json.loads(made.manifest.read_text())
    tables = {t["name"] for t in document["tables"]}
    assert document["alembic_revision"] == ft.HEAD
    assert document["profile"]["name"] == "foreign" and document["source"]["profile"] == "foreign"
    assert document["profile"]["sha256"] == f"sha256:{made.profile.sha256}"
    assert document["excluded_tables"] == ["request_keys"] and "request_keys" not in tables
    assert set(document["schema_tables"]) == tables | {"request_keys"}
    assert {"receipts", "consignment_items", "activity_journal", "alembic_version"} <= tables
    assert document["warnings"] == [] and document["exports"]["files"] == 6
    assert sum(1 for f in document["files"] if f["role"] == "export") == 6

    validation = validate_backup(made.manifest, profiles.schema_tables_for(made.profile))
    assert validation.ok and validation.warnings == [], (validation.problems, validation.warnings)

    report, path = drill(made, made.manifest, profile=made.profile)
    checks = {c.name: c for c in report.checks}
    assert report.status == "PASS", report.reason
    assert list(checks) == [
        "manifest valid",
        "RPO within budget",
        "revision matches",
        "tables match the manifest",
        "constraints hold",
        "upgrades to head",
        INTEGRITY_CHECK,
        "RTO within budget",
    ]
    assert all(c.status == "PASS" for c in report.checks), [(c.name, c.detail) for c in report.checks]
    assert checks["upgrades to head"].evidence == {
        "from": ft.HEAD,
        "to": ft.HEAD,
        "head": ft.HEAD,
        "profile": "foreign",
    }
    assert checks["upgrades to head"].detail == f"already at head {ft.HEAD}: nothing to upgrade (head of foreign)"
    integrity = checks[INTEGRITY_CHECK].evidence
    assert (
        integrity["counts"]["PASS"] == 17 and integrity["counts"]["FAIL"] == 0 and Path(integrity["report"]).is_file()
    )
    integrity_report = json.loads(Path(integrity["report"]).read_text())
    # a PASS over tables without rows is counted apart in the drill's line, as its own detail says
    vacuous = sum(1 for r in integrity_report["checks"] if r["status"] == "PASS" and "(vacuous: " in r["detail"])
    assert integrity["vacuous"] == vacuous
    assert (f"17 passed ({vacuous} only vacuously" in checks[INTEGRITY_CHECK].detail) == bool(vacuous)
    assert integrity_report["inputs"]["profile"] == made.profile.as_evidence(), "the profile whose checks ran"
    assert report.warnings == []
    assert report.rpo["sources"] == [
        "receipts.issued_on",
        "consignment_events.happened_on",
        "till_entries.booked_on",
        "report_exports.generated_on",
        "inventory_units.changed_on",
    ]
    assert report.rpo["newest_business_timestamp"]
    written = read_drill_report(path)
    assert written["profile"] == made.profile.as_evidence() and written["status"] == "PASS"


def test_an_unknown_revision_is_a_warning_not_invalid(made: Made) -> None:
    manifest = copy_backup(made, "upstream_revision", lambda d, _: d.update(alembic_revision=UPSTREAM_REVISION))
    validation = validate_backup(manifest, profiles.schema_tables_for(made.profile))
    assert validation.ok, validation.problems
    assert len(validation.warnings) == 1 and UPSTREAM_REVISION in validation.warnings[0], validation.warnings
    assert "compared with the live schema recorded at backup time" in validation.warnings[0]

    # The recorded live schema still counts: a table of it missing from the backup is a problem.
    def drop_receipts(document: dict[str, Any], _folder: Path) -> None:
        document.update(
            alembic_revision=UPSTREAM_REVISION, tables=[t for t in document["tables"] if t["name"] != "receipts"]
        )

    problems = validate_backup(
        copy_backup(made, "upstream_missing", drop_receipts), profiles.schema_tables_for(made.profile)
    ).problems
    assert problems == ["table 'receipts' of the live schema recorded at backup time is not in the backup"]


def test_backup_validate_passes_the_profile_and_prints_its_warnings(
    made: Made, capsys: pytest.CaptureFixture[str]
) -> None:
    manifest = copy_backup(made, "cli_upstream", lambda d, _: d.update(alembic_revision=UPSTREAM_REVISION))
    assert made.profile.path is not None
    for args in (["--json"], []):
        with pytest.raises(SystemExit) as exited:
            cli.main(["backup", "validate", str(manifest), "--target", str(made.profile.path), *args])
        assert exited.value.code == 0
        out = capsys.readouterr().out
        if args:
            document = json.loads(out)
            assert document["valid"] is True and document["profile"] == made.profile.as_evidence()
            assert len(document["warnings"]) == 1 and UPSTREAM_REVISION in document["warnings"][0]
        else:
            assert out.startswith(f"VALID: {manifest} (") and "with 1 warning" in out
            assert f"WARN alembic revision '{UPSTREAM_REVISION}' is unknown" in out
    artifacts = made.manifest.parents[2] / "cli-artifacts"
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "FOREIGN_EXPORTS_DIR")}
    done = clifork.run(
        [
            "backup",
            "create",
            "--name",
            "cli_made",
            "--database-url",
            made.url,
            "--target",
            str(made.profile.path),
            "--json",
        ],
        env={**env, "OPS_ARTIFACTS_DIR": str(artifacts)},
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert summary["profile"]["name"] == "foreign" and summary["warnings"] == []
    written = json.loads((artifacts / "backups" / "cli_made" / "manifest.json").read_text())
    assert written["excluded_tables"] == ["request_keys"] and written["exports"] == {
        "dir": str(made.exports),
        "files": 6,
    }


def _forge_sqlite(document: dict[str, Any], folder: Path) -> None:
    """Change a row in the backup's SQLite file, then recompute everything a manifest seals:
    the table digests and row index (as a backup computes them), the files' sizes and SHA-256."""
    database = folder / sqlite_backup.DATABASE_FILE
    conn = sqlite3.connect(database)
    with conn:
        assert conn.execute(PLANT).rowcount == 1
    conn.close()
    index = RowIndexWriter(folder / ROW_INDEX_FILE)
    try:
        digests = sqlite_backup.table_digests(
            database, Deadline(None), index=index, exclude=frozenset({"request_keys"})
        )
    finally:
        index.close()
    document["tables"] = [digests[t].as_manifest_entry() for t in sorted(digests)]
    document["row_index"]["rows"] = index.rows
    for entry in document["files"]:
        data = (folder / entry["path"]).read_bytes()
        entry.update(size=len(data), sha256=hashlib.sha256(data).hexdigest())


def test_a_changed_row_with_recomputed_digests_fails_the_drills_invariants(
    made: Made, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    if made.engine == "sqlite":
        manifest = copy_backup(made, "forged_row", _forge_sqlite)
    else:  # a forger who re-dumps: the same row changed in a copy of the source, backed up afresh
        admin: sa.Engine = request.getfixturevalue("postgres_admin")
        name = f"{SCRATCH_PREFIX}forged_{uuid.uuid4().hex[:8]}"
        with admin.connect() as conn:
            conn.exec_driver_sql(f'CREATE DATABASE "{name}" TEMPLATE "{make_url(made.url).database}"')
        try:
            _execute(_pg_url(admin, name), PLANT)
            manifest = create_backup(
                _pg_url(admin, name), "forged_row", settings=made.settings, profile=made.profile
            ).manifest_path
        finally:
            with admin.connect() as conn:
                conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    assert validate_backup(manifest, profiles.schema_tables_for(made.profile)).ok
    with pytest.raises(DrillFailed, match="receipt_tenders_cover_total") as failed:
        drill(made, manifest, profile=made.profile)
    report = read_drill_report(Path(failed.value.report_path))
    statuses = {c["name"]: c["status"] for c in report["checks"]}
    assert statuses["tables match the manifest"] == "PASS", "the digests were recomputed: they agree"
    assert [n for n, s in statuses.items() if s == "FAIL"] == [INTEGRITY_CHECK]
    failing = next(c for c in report["checks"] if c["name"] == INTEGRITY_CHECK)["evidence"]["failing"]
    assert [f["name"] for f in failing] == ["receipt_tenders_cover_total"]


def test_a_missing_exports_folder_and_rpo_sources_are_warnings(
    foreign_sqlite: tuple[str, Path], foreign_python: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url, exports = foreign_sqlite
    rpo = (
        '[[rpo.sources]]\ntable = "receipts"\ncolumn = "settled_on_nowhere"\n\n'
        '[[rpo.sources]]\ntable = "no_such"\ncolumn = "at"\n'
    )
    profile = write_profile(tmp_path / "profile", foreign_python, exports, rpo=rpo)
    settings = load_settings(artifacts={"dir": tmp_path / "artifacts"}, backup={"drill_enabled": True})
    missing = tmp_path / "no-exports-here"
    monkeypatch.setenv("FOREIGN_EXPORTS_DIR", str(missing))  # the profile's exports_dir_env: it wins
    result = create_backup(url, "no_exports", settings=settings, profile=profile)
    expected = f"exports folder {missing} does not exist: 0 files copied"
    assert result.warnings == [expected] and result.manifest["warnings"] == [expected]
    assert not [f for f in result.manifest["files"] if f["role"] == "export"]
    with pytest.raises(DrillFailed) as failed:  # its export rows vouch for files it does not hold
        restore_verify(result.manifest_path, settings=settings, profile=profile)
    assert "the backup was made without its export files: give backup create --exports-dir" in str(failed.value)
    assert "give --exports-dir" not in str(failed.value), "restore-verify has no such option"

    monkeypatch.delenv("FOREIGN_EXPORTS_DIR")
    manifest = create_backup(url, "with_exports", settings=settings, profile=profile).manifest_path
    report, _ = restore_verify(manifest, settings=settings, profile=profile)
    assert report.status == "PASS"
    assert report.warnings == [
        {
            "name": RPO_SOURCES,
            "detail": "RPO source receipts.settled_on_nowhere: column receipts.settled_on_nowhere is not "
            "in the restored copy; it was not read",
        },
        {
            "name": RPO_SOURCES,
            "detail": "RPO source no_such.at: table no_such is not in the restored copy; it was not read",
        },
    ]
    assert report.rpo["newest_business_timestamp"] is None

    none_declared = dataclasses.replace(
        profile,
        profile=profile.profile.model_copy(update={"rpo": profile.profile.rpo.model_copy(update={"sources": []})}),
    )
    report, _ = restore_verify(manifest, settings=settings, profile=none_declared)
    assert report.status == "PASS" and [w["name"] for w in report.warnings] == [RPO_SOURCES]
    assert report.warnings[0]["detail"].startswith("no business timestamp sources declared")
    assert report.rpo["newest_business_timestamp_note"] == "no business timestamp sources declared"


def test_the_deploy_phase_backs_up_and_probes_with_the_profile(
    foreign_sqlite: tuple[str, Path], foreign_python: Path, tmp_path: Path
) -> None:
    url, exports = foreign_sqlite
    profile = write_profile(tmp_path / "profile", foreign_python, exports)
    settings = load_settings(artifacts={"dir": tmp_path / "artifacts"})
    with ft.serve(foreign_python, url, exports_dir=exports) as base_url:
        report = deploy(
            DeployOptions(database_url=url, base_url=base_url, backup_name="pre_deploy_x", profile=profile), settings
        )
    found = {r.name: r for r in report.results}
    assert {name: r.status for name, r in found.items()} == {
        "backup.create": Status.PASS,
        "backup.manifest": Status.PASS,
        "http.health": Status.PASS,
        "http.ready": Status.PASS,
    }, {n: r.detail for n, r in found.items()}
    assert found["http.ready"].evidence["expected_revision"] == ft.HEAD
    assert report.backup is not None and report.backup.manifest["profile"]["name"] == "foreign"
    assert report.backup.manifest["exports"] == {"dir": str(exports), "files": 6}
    missing = tmp_path / "gone"
    again = deploy(
        DeployOptions(
            database_url=url, base_url=None, backup_name="pre_deploy_y", exports_dir=missing, profile=profile
        ),
        settings,
    )
    created = next(r for r in again.results if r.name == "backup.create")
    assert (
        created.status is Status.WARN and f"exports folder {missing} does not exist: 0 files copied" in created.detail
    )


def test_the_profiles_revert_command_runs_in_the_targets_root(
    foreign_python: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    profile = write_profile(tmp_path / "profile", foreign_python, tmp_path / "exports")
    settings = load_settings(artifacts={"dir": tmp_path / "artifacts"})

    def revert(**options: Any):  # type: ignore[no-untyped-def]
        context = _RollbackContext(
            RollbackOptions(run_id="run_1", triggers=("drill_fail",), profile=profile, **options), settings
        )
        return ROLLBACK_STEPS.run(context, only=["rollback.revert"])[0]

    monkeypatch.delenv("FOREIGN_REVERT_FAIL", raising=False)
    done = revert(release="2.4.0")
    assert done.status is Status.PASS, done.detail
    assert done.evidence["command"] == f"{foreign_python} -m foreign_retail revert --to 2.4.0"
    assert (
        done.evidence["cwd"] == str(ft.ROOT) and "reverted foreign_retail to release 2.4.0" in done.evidence["output"]
    )
    monkeypatch.setenv("FOREIGN_REVERT_FAIL", "1")
    assert revert(release="2.4.0").status is Status.FAIL
    no_release = revert()
    assert no_release.status is Status.FAIL and "{release}" in no_release.detail
    given = revert(revert_command="true")  # --revert-command / OPS_REVERT_COMMAND win over the profile's
    assert given.status is Status.PASS and given.evidence["command"] == "true" and given.evidence["cwd"] is None
    log = [json.loads(line) for line in (settings.artifacts.dir / "rollback_log.jsonl").read_text().splitlines()]
    assert [entry["status"] for entry in log] == ["PASS", "FAIL", "FAILED", "PASS"]
