"""The disk fills while a backup is written. Two ways to make it fill, both real:

* a file-size limit on the process (``RLIMIT_FSIZE``, with SIGXFSZ ignored as Python does
  by default, so a write past the limit fails with EFBIG); tools that aris3nb starts get
  SIGXFSZ back at its default (``subprocess`` restores it), so pg_dump dies of it instead;
* a small tmpfs mounted over ``backups/`` (real ENOSPC), where the machine lets the tests
  mount one (root); skipped otherwise, with the reason.

Whatever fills, the run fails with one line naming what it was writing, exits 1, and
leaves nothing under the final name and no temporary folder behind.
"""

from __future__ import annotations

import contextlib
import os
import resource
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import clifork
import pytest
from faultkit import ARIS3NB, Run, Source, cli_env

NAME = "pre_deploy_20261128_0800"


def run_with_file_size_limit(limit: int, args: list[str], artifacts: Path) -> Run:
    def limit_file_size() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    done = subprocess.run(
        [ARIS3NB, *args],
        env=cli_env(artifacts),
        preexec_fn=limit_file_size,
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )
    return Run(done.returncode, done.stdout, done.stderr)


@contextlib.contextmanager
def small_filesystem(folder: Path, size: str) -> Iterator[None]:
    folder.mkdir(parents=True, exist_ok=True)
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size},mode=0700", "tmpfs", str(folder)], capture_output=True, text=True
    )
    if mounted.returncode != 0:
        pytest.skip(
            f"cannot mount a tmpfs here ({mounted.stderr.strip() or 'not permitted'}); "
            "the file-size-limit tests cover this scenario"
        )
    try:
        yield
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=True)


def create_args(source: Source) -> list[str]:
    return ["backup", "create", "--name", NAME, "--database-url", source.url, "--exports-dir", str(source.exports)]


def assert_nothing_kept(artifacts: Path) -> None:
    backups = artifacts / "backups"
    assert not backups.exists() or list(backups.iterdir()) == [], list(backups.iterdir())


def test_the_database_copy_outgrows_the_file_size_limit(big_sqlite: Source, artifacts: Path) -> None:
    done = run_with_file_size_limit(4_000_000, create_args(big_sqlite), artifacts)
    assert done.returncode == 1
    line = done.failed_line
    assert "SQLite online backup" in line and "SQLITE_IOERR_WRITE" in line and "database/aris3.sqlite3" in line, line
    assert_nothing_kept(artifacts)


def test_an_export_file_outgrows_the_file_size_limit(small_sqlite: Source, artifacts: Path) -> None:
    """The database fits, an export file does not: the copy of the export fails."""
    (small_sqlite.exports / "large_export.csv").write_bytes(os.urandom(3_000_000))
    done = run_with_file_size_limit(2_000_000, create_args(small_sqlite), artifacts)
    assert done.returncode == 1, done.stderr
    line = done.failed_line
    assert "while copying export files" in line and "File too large" in line and "large_export.csv" in line, line
    assert_nothing_kept(artifacts)


@pytest.mark.postgres
def test_pg_dump_outgrows_the_file_size_limit(big_postgres: Source, artifacts: Path) -> None:
    done = run_with_file_size_limit(100_000, create_args(big_postgres), artifacts)
    assert done.returncode == 1
    # Whichever writer reaches the limit first says so: pg_dump (its dump) or aris3nb (the row index).
    line = done.failed_line
    assert line.startswith(("FAILED: pg_dump failed", "FAILED: backup 'pre_deploy_")) and "File too large" in line, line
    assert_nothing_kept(artifacts)


@pytest.mark.parametrize("what", ["database", "exports"])
def test_a_full_filesystem_sqlite(what: str, artifacts: Path, request: pytest.FixtureRequest) -> None:
    source: Source = request.getfixturevalue("big_sqlite" if what == "database" else "small_sqlite")
    if what == "exports":
        (source.exports / "large_export.csv").write_bytes(os.urandom(3_000_000))
    with small_filesystem(artifacts / "backups", "2m"):
        done = Run(*_run(create_args(source), artifacts))
        assert done.returncode == 1
        line = done.failed_line
        assert ("database or disk is full" if what == "database" else "No space left on device") in line, line
        assert_nothing_kept(artifacts)


@pytest.mark.postgres
def test_a_full_filesystem_postgresql(big_postgres: Source, artifacts: Path) -> None:
    with small_filesystem(artifacts / "backups", "600k"):
        done = Run(*_run(create_args(big_postgres), artifacts))
        assert done.returncode == 1
        assert "No space left on device" in done.failed_line, (
            done.failed_line
        )  # pg_dump or the row index, whichever hit it
        assert_nothing_kept(artifacts)


def _run(args: list[str], artifacts: Path) -> tuple[int, str, str]:
    done = clifork.run([*args], env=cli_env(artifacts), timeout=120)
    return done.returncode, done.stdout, done.stderr
