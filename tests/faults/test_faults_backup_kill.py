"""``aris3nb backup create`` killed with SIGKILL (the whole process group, as an OOM killer
or a lost container would) at each stage of its write ordering: nothing appears under the
final name, nothing the killed run left validates as a backup, the next run succeeds and
removes the dead run's temporary folder, and says so."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import sqlalchemy as sa
from faultkit import Source, database_name, run_cli, run_killed_at, wait_for_no_sessions

from aris3nb.backup.create import schema_tables_at
from aris3nb.backup.manifest import validate_backup
from aris3nb.core.errors import ManifestUnreadable

NAME = "pre_deploy_20261128_0800"


def create_args(source: Source) -> list[str]:
    return ["backup", "create", "--name", NAME, "--database-url", source.url, "--exports-dir", str(source.exports)]


def check_killed_state(artifacts: Path, seen: dict) -> Path:
    """After the kill: only a temporary folder of the dead process, which is not a backup."""
    backups = artifacts / "backups"
    entries = sorted(p.name for p in backups.iterdir())
    assert NAME not in entries, "nothing may appear under the final name"
    assert len(entries) == 1 and entries[0].startswith(f".tmp-{NAME}-pid{seen['pid']}-"), entries
    temporary = backups / entries[0]
    if not (temporary / "manifest.json").exists():
        with pytest.raises(ManifestUnreadable, match="no manifest"):
            validate_backup(temporary)
        done = run_cli(["backup", "validate", str(temporary)], artifacts)
        assert done.returncode == 2 and "no manifest" in done.failed_line
    return temporary


def check_rerun_sweeps(source: Source, artifacts: Path, temporary: Path, **extra: str) -> None:
    done = run_cli(create_args(source), artifacts, **extra)
    assert done.returncode == 0, done.stderr
    assert f"removed {temporary.name}: the temporary folder of a backup whose process is gone" in done.stdout
    assert [p.name for p in (artifacts / "backups").iterdir()] == [NAME], "the dead run's folder is gone"
    validation = validate_backup(artifacts / "backups" / NAME, schema_tables_at)
    assert validation.ok, validation.problems


@pytest.mark.slow
@pytest.mark.parametrize("point", ["copy", "digest", "seal", "rename"])
def test_sqlite_backup_killed_mid_way(point: str, big_sqlite: Source, artifacts: Path) -> None:
    # A temporary folder of its own: another aris3nb on the machine sweeps a dead process's
    # folders from the shared one (rightly), which would race this test's look at them.
    scratch = artifacts.parent / "tmp"
    scratch.mkdir(exist_ok=True)
    seen = run_killed_at(
        point,
        create_args(big_sqlite),
        artifacts,
        FAULT_SOURCE_SIZE=str(big_sqlite.path.stat().st_size),
        TMPDIR=str(scratch),
    )
    temporary = check_killed_state(artifacts, seen)
    copy = temporary / "database" / "aris3.sqlite3"
    if point == "copy":
        assert 0 < seen["copy_bytes"] < seen["source_bytes"], seen
        assert copy.stat().st_size < big_sqlite.path.stat().st_size, "killed before the copy was complete"
    elif point == "digest":
        assert seen["sqlite3_shells"] >= 1, seen
        scripts = list(scratch.glob(f"aris3nb-digest-pid{seen['pid']}-*"))
        assert scripts, "the killed run's digest scripts are left in the temporary folder..."
    elif point == "seal":
        assert seen["hashing"].endswith(".sqlite3") or "/exports/" in seen["hashing"]
    if point == "rename":
        # The manifest is written last: once it exists, the folder is a complete backup
        # whose only missing step is its rename; the next run still removes it.
        assert seen["manifest_written"]
        assert_complete_but_unnamed(temporary)
    else:
        assert not (temporary / "manifest.json").exists()
    check_rerun_sweeps(big_sqlite, artifacts, temporary, TMPDIR=str(scratch))
    assert not list(scratch.glob(f"aris3nb-*-pid{seen['pid']}-*")), "...until the next run"


def assert_complete_but_unnamed(temporary: Path) -> None:
    """Every file matches the manifest; the one problem left is the missing rename (a folder is
    a backup only under the name its manifest gives)."""
    problems = validate_backup(temporary, schema_tables_at).problems
    assert len(problems) == 1 and "copied or renamed" in problems[0], problems


@pytest.mark.slow
@pytest.mark.postgres
@pytest.mark.parametrize("point", ["dump", "seal", "rename"])
def test_postgresql_backup_killed_mid_way(
    point: str, big_postgres: Source, artifacts: Path, postgres_admin: sa.Engine
) -> None:
    seen = run_killed_at(point, create_args(big_postgres), artifacts)
    temporary = check_killed_state(artifacts, seen)
    if point == "dump":
        assert seen["pg_dump_running"] and seen["data_files"] >= 1, seen
    assert not wait_for_no_sessions(postgres_admin, database_name(big_postgres.url)), (
        "the killed run's sessions (its snapshot, pg_dump's workers) end with it"
    )
    if point == "rename":
        assert_complete_but_unnamed(temporary)
    check_rerun_sweeps(big_postgres, artifacts, temporary)


def test_a_dead_runs_folder_is_swept_even_when_its_pid_was_reused(small_sqlite: Source, artifacts: Path) -> None:
    """In a container every run can get the same pid (often 1): the pid of a dead run's
    temporary folder may belong to a live process, even to the sweeping run itself.
    A folder last changed before the process now holding its pid started cannot be that
    process's; a folder changed since may be, and is left alone."""
    backups = artifacts / "backups"
    backups.mkdir(parents=True)
    stale, live = [], backups / f".tmp-other-pid{os.getpid()}-liverun"
    for pid in (1, os.getppid()):  # live processes, both older than the folders below
        folder = backups / f".tmp-{NAME}-pid{pid}-deadrun"
        (folder / "database").mkdir(parents=True)
        (folder / "database" / "aris3.sqlite3").write_bytes(b"partial")
        for path in (folder / "database" / "aris3.sqlite3", folder / "database", folder):
            os.utime(path, (1_000_000_000, 1_000_000_000))  # 2001: before any live process
        stale.append(folder.name)
    live.mkdir()  # made just now by this (live) process: may be a backup in progress
    done = run_cli(create_args(small_sqlite), artifacts)
    assert done.returncode == 0, done.stderr
    for name in stale:
        assert f"removed {name}: the temporary folder of a backup whose process is gone" in done.stdout
    assert sorted(p.name for p in backups.iterdir()) == sorted([live.name, NAME])
    assert json.loads((backups / NAME / "manifest.json").read_text())["name"] == NAME
