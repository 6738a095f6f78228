"""Small refusals of the backup commands: a renamed backup, a drill of nothing, a timeout out of range."""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import clifork
import pytest

from aris3nb import migrate
from aris3nb.backup.create import create_backup, schema_tables_at
from aris3nb.backup.manifest import validate_backup
from aris3nb.core.settings import load_settings

ARIS3NB = str(Path(sys.executable).with_name("aris3nb"))


def cli(*args: str, artifacts: Path, **env: str) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    return clifork.run(list(args), timeout=120, env={**base, "OPS_ARTIFACTS_DIR": str(artifacts), **env})


@pytest.fixture
def made(tmp_path: Path) -> tuple[str, Path]:
    url = f"sqlite:///{tmp_path / 'aris3.db'}"
    migrate.upgrade(url)
    result = create_backup(url, "original", settings=load_settings(artifacts={"dir": tmp_path / "artifacts"}))
    return url, result.path


def test_a_backup_copied_under_another_name_is_invalid(made: tuple[str, Path]) -> None:
    _, folder = made
    copy = folder.with_name("renamed")
    shutil.copytree(folder, copy)
    problems = validate_backup(copy, schema_tables_at).problems
    assert len(problems) == 1 and "'renamed'" in problems[0] and "'original'" in problems[0], problems


def test_a_drill_of_a_missing_manifest_is_bad_input(tmp_path: Path) -> None:
    done = cli(
        "backup",
        "restore-verify",
        str(tmp_path / "nowhere" / "manifest.json"),
        artifacts=tmp_path,
        OPS_ENABLE_BACKUP_DRILL="true",
    )
    assert done.returncode == 2, done.stderr
    assert done.stderr.startswith("FAILED: ") and len(done.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize("value", ["inf", "nan", "1e9", "0"])
def test_a_timeout_out_of_range_is_bad_input(made: tuple[str, Path], tmp_path: Path, value: str) -> None:
    url, _ = made
    done = cli(
        "backup",
        "create",
        "--name",
        "again",
        "--database-url",
        url,
        "--timeout",
        value,
        artifacts=tmp_path / "artifacts",
    )
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in done.stderr, done.stderr
    assert not (tmp_path / "artifacts" / "backups" / "again").exists()


def test_a_database_the_reference_does_not_know_names_the_way_to_its_own_profile(tmp_path: Path) -> None:
    """Run from a folder with no profile, a backup of a database at a revision the bundled
    reference does not know fails, and says how to judge it by its own profile instead."""
    url = f"sqlite:///{tmp_path / 'theirs.db'}"
    migrate.upgrade(url)
    with sqlite3.connect(tmp_path / "theirs.db") as conn:
        conn.execute("UPDATE alembic_version SET version_num = '0037_s12_reports_cost_snapshot'")
    elsewhere = tmp_path / "ops"
    elsewhere.mkdir()
    done = clifork.run(
        ["backup", "create", "--name", "manual_1", "--database-url", url],
        timeout=120,
        cwd=elsewhere,
        env={**os.environ, "OPS_ARTIFACTS_DIR": str(tmp_path / "artifacts")},
    )
    assert done.returncode == 1, done.stdout + done.stderr
    said = done.stdout + done.stderr
    assert "'0037_s12_reports_cost_snapshot' is unknown to aris3nb's reference ARIS3" in said, said
    assert "give --target PATH to its aris3nb.toml, written by `aris3nb init`" in said, said
    assert "Traceback" not in said
