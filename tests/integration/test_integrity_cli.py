"""The integrity check as operators run it: the playbook's command line verbatim from the
repository root, ``aris3nb integrity``, exit codes, and a database the smoke suite has just
exercised over HTTP."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from aris3nb import migrate
from aris3nb.core.db import create_engine
from aris3nb.core.settings import load_settings
from aris3nb.reference.seed import seed_database
from aris3nb.reference.server import running_server

REPO_ROOT = Path(__file__).resolve().parents[2]
SECRET = "Integrity-Pw-5150"
SMOKE_PASSWORD = "integrity-cli-smoke"


def run(command: list[str], env: dict[str, str], timeout: float = 120) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("ARIS3_SMOKE_", "DATABASE_URL"))}
    return subprocess.run(
        command, cwd=REPO_ROOT, capture_output=True, text=True, check=False, timeout=timeout, env={**clean, **env}
    )


def playbook_line(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return run([sys.executable, "scripts/post_go_live_integrity_check.py", *args], env)


def aris3nb(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return run([str(Path(sys.executable).with_name("aris3nb")), "integrity", *args], env)


@pytest.fixture
def seeded(sqlite_url: str, tmp_path: Path) -> dict[str, str]:
    migrate.upgrade(sqlite_url)
    seed_database(sqlite_url, scale=500, exports_dir=tmp_path / "exports")
    return {
        "DATABASE_URL": sqlite_url,
        "ARIS3_EXPORTS_DIR": str(tmp_path / "exports"),
        "OPS_ARTIFACTS_DIR": str(tmp_path / "artifacts"),
    }


def test_the_playbook_line_passes_on_sound_data_and_keeps_its_report(seeded: dict[str, str], tmp_path: Path) -> None:
    done = playbook_line("--strict", env=seeded)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "verdict: PASS" in done.stdout and "tenancy.store_tenant" in done.stdout
    [report] = (tmp_path / "artifacts" / "integrity").glob("integrity_report_*.json")
    document = json.loads(report.read_text())
    assert (document["format"], document["version"], document["verdict"]) == ("aris3nb.integrity_report", 1, "PASS")


def test_a_violated_invariant_exits_1_naming_it(seeded: dict[str, str]) -> None:
    engine = create_engine(seeded["DATABASE_URL"])
    with engine.begin() as conn:
        conn.exec_driver_sql("UPDATE transfers SET status = 'LOST' WHERE id = (SELECT id FROM transfers LIMIT 1)")
    engine.dispose()
    done = aris3nb("--json", env=seeded)
    assert done.returncode == 1
    document = json.loads(done.stdout)
    assert document["verdict"] == "FAIL" and document["blocking_checks"] == ["transfers.known_states"]
    assert done.stderr.strip() == "FAILED: integrity check: FAIL (transfers.known_states)"


def test_options_override_the_environment(seeded: dict[str, str], tmp_path: Path) -> None:
    done = aris3nb(
        "--database-url",
        seeded["DATABASE_URL"],
        "--exports-dir",
        str(tmp_path / "elsewhere"),
        "--json",
        env={"OPS_ARTIFACTS_DIR": seeded["OPS_ARTIFACTS_DIR"]},
    )
    assert done.returncode == 1
    assert json.loads(done.stdout)["blocking_checks"] == ["exports.files_match"]


def test_on_another_schema_the_reference_rules_are_not_applicable_not_crashes(tmp_path: Path) -> None:
    """A database of another ARIS3-like codebase: each reference rule is NOT APPLICABLE, a
    warning naming what it needs (none crashes on a missing table); --strict fails the run on
    them, naming them."""
    path = tmp_path / "other.db"
    with sqlite3.connect(path) as db:
        db.executescript(
            "CREATE TABLE merchants (merchant_id TEXT PRIMARY KEY, handle TEXT);"
            "CREATE TABLE receipts (receipt_id TEXT PRIMARY KEY, gross_minor INTEGER);"
            "CREATE TABLE alembic_version (version_num VARCHAR(64) PRIMARY KEY);"
            "INSERT INTO alembic_version VALUES ('fr0007_account_outlet_grants_and_unit_shelves');"
        )
    env = {"DATABASE_URL": f"sqlite:///{path}", "OPS_ARTIFACTS_DIR": str(tmp_path / "artifacts")}
    done = aris3nb("--json", env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    document = json.loads(done.stdout)
    assert document["verdict"] == "PASS_WITH_WARNINGS" and document["counts"]["WARN"] == 16
    assert document["not_applicable"]["count"] == 16
    assert all(
        c["detail"].startswith("not applicable: ") and c["evidence"]["not_applicable"] for c in document["checks"]
    )
    assert "failed" not in done.stdout and "no such table" not in done.stdout
    stock = next(c for c in document["checks"] if c["name"] == "stock.known_status")
    assert stock["detail"] == "not applicable: needs stock_items, absent here"
    strict = playbook_line("--strict", env=env)
    assert strict.returncode == 1 and "not applicable: needs sales, sale_lines, absent here" in strict.stdout
    assert strict.stderr.strip().startswith("FAILED: integrity check: FAIL (schema.revision, stock.known_status, ")


@pytest.mark.parametrize(
    ("url", "fragment"),
    [
        (
            f"postgresql://postgres:{SECRET}@127.0.0.1:1/aris3",
            "postgresql://postgres:***@127.0.0.1:1/aris3 is unavailable",
        ),
        ("sqlite:////nonexistent-folder/aris3.db", "does not exist"),
        ("not a url", "cannot parse database URL"),
    ],
)
def test_an_unusable_database_exits_2_in_one_line_without_the_password(url: str, fragment: str, tmp_path: Path) -> None:
    done = playbook_line("--strict", "--database-url", url, env={"OPS_ARTIFACTS_DIR": str(tmp_path)})
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("FAILED: ") and fragment in lines[0], lines
    assert SECRET not in done.stdout + done.stderr and "Traceback" not in done.stderr
    assert not (tmp_path / "integrity").exists()


@pytest.mark.slow
def test_sound_after_the_smoke_suite_wrote_to_it_over_http(database_url: str, tmp_path: Path) -> None:
    """The post-deploy sequence: smoke against the live service, then the integrity check."""
    migrate.upgrade(database_url)
    seed_database(database_url, scale=300, exports_dir=tmp_path / "exports", smoke_password=SMOKE_PASSWORD)
    with running_server(database_url, load_settings(target={"exports_dir": tmp_path / "exports"})) as base_url:
        smoke = run(
            [
                sys.executable,
                "-m",
                "pytest",
                "-q",
                "-p",
                "no:cacheprovider",
                "tests/smoke/test_post_merge_readiness.py",
            ],
            env={"ARIS3_SMOKE_BASE_URL": base_url, "ARIS3_SMOKE_PASSWORD": SMOKE_PASSWORD},
            timeout=300,
        )
    assert smoke.returncode == 0, smoke.stdout[-3000:]
    done = playbook_line(
        "--strict",
        "--database-url",
        database_url,
        "--exports-dir",
        str(tmp_path / "exports"),
        env={"OPS_ARTIFACTS_DIR": str(tmp_path / "artifacts")},
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_a_file_that_is_not_a_database_exits_2_once(tmp_path: Path) -> None:
    """Not one FAIL per invariant, each saying "file is not a database": the database cannot be
    opened (exit 2), said once, and nothing is written."""
    path = tmp_path / "notes.db"
    path.write_text("these are notes, not a database\n" * 20)
    done = playbook_line("--database-url", f"sqlite:///{path}", env={"OPS_ARTIFACTS_DIR": str(tmp_path / "art")})
    assert done.returncode == 2, done.stdout + done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0] == f"FAILED: cannot open sqlite:///{path}: file is not a database", lines
    assert not (tmp_path / "art").exists(), "nothing written: the check of the place left nothing behind"
