"""Untrusted input refused, in one honest line: real ``aris3nb`` processes given hostile
database URLs, unusable artifacts folders, out-of-range timeouts and a service that answers
an HTML page for every path.

Each case checks the exit code (2: the command could not act on its input; 1 only for a
check that ran and failed), one ``FAILED:`` line on standard error and no traceback, and —
for the URLs — that no fragment of the password is in standard output, standard error, or
any file (name or content) under OPS_ARTIFACTS_DIR. Every command here fails before doing
real work, so each case takes about a second.
"""

from __future__ import annotations

import contextlib
import errno
import http.server
import json
import os
import re
import socket
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from faultkit import Run, database_url_named, run_cli

from aris3nb import migrate
from aris3nb.backup.create import create_backup
from aris3nb.cli._common import failure_exit_code, os_error_failure
from aris3nb.core.errors import Aris3nbError, BackupError
from aris3nb.core.settings import load_settings
from aris3nb.reference.seed import seed_database

#: Hostile URLs (unencoded delimiters in the password) and the fragments of the password
#: that must never be shown: before, ``u:***@ss:w/o%rd#x?y z@...`` was printed, and with
#: ``Sekr3t@tail`` the name ``tail@127.0.0.1`` was printed and sent to the resolver.
HOSTILE = {
    "delimiters": (
        "postgresql://u:Sekr3t@ss:w/o%rd#x?y z@127.0.0.1:5432/db",
        ["Sekr3t", "ss:w", "o%rd", "x?y z", "y z@"],
    ),
    "second-at": ("postgresql://u:Sekr3t@tail@127.0.0.1:5432/db", ["Sekr3t", re.compile(r"(?<![a-z])tail(?![a-z])")]),
}


def leaked(fragments: list[str | re.Pattern[str]], text: str) -> list[str]:
    return [str(f) for f in fragments if (f.search(text) if isinstance(f, re.Pattern) else f in text)]


def everything_under(folder: Path) -> str:
    """Every file's name and content under ``folder``, as one text to search."""
    if not folder.exists():
        return ""
    parts = []
    for path in sorted(folder.rglob("*")):
        parts.append(str(path.relative_to(folder)))
        if path.is_file() and not path.is_symlink():
            parts.append(path.read_bytes().decode("utf-8", errors="replace"))
    return "\n".join(parts)


def assert_one_line(done: Run, exit_code: int = 2) -> str:
    assert done.returncode == exit_code, (done.returncode, done.stdout, done.stderr)
    return done.failed_line  # exactly one non-empty line on stderr, FAILED: ..., no traceback


@pytest.fixture(scope="module")
def postgres_backup(postgres_admin: sa.Engine, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A small, real PostgreSQL backup (its folder), for drills that need a server URL."""
    import uuid

    name = f"aris3nb_test_hostile_{uuid.uuid4().hex[:8]}"
    with postgres_admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    folder = tmp_path_factory.mktemp("hostile-pg")
    try:
        url = database_url_named(name)
        migrate.upgrade(url)
        seed_database(url, scale=20, exports_dir=folder / "exports")
        result = create_backup(
            url,
            "pg_source",
            settings=load_settings(artifacts={"dir": folder / "artifacts"}),
            exports_dir=folder / "exports",
        )
        yield result.path
    finally:
        with postgres_admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _commands(url: str) -> dict[str, tuple[list[str], dict[str, str]]]:
    drill = {"OPS_ENABLE_BACKUP_DRILL": "true"}
    return {
        "backup create": (["backup", "create", "--name", "x", "--database-url", url], {}),
        "backup create (DATABASE_URL)": (["backup", "create", "--name", "x"], {"DATABASE_URL": url}),
        "gate --database-url": (["gate", "--json", "--database-url", url], {}),
        "gate --postgres-url": (["gate", "--json", "--postgres-url", url], {}),
        "integrity": (["integrity", "--database-url", url], {}),
        "backup restore": (["backup", "restore", "NO_SUCH_BACKUP", "--target-url", url, "--yes"], {}),
        "db upgrade": (["db", "upgrade", "--database-url", url], {}),
        "run": (["run", "--database-url", url], {}),
        "run drill": (["run", "drill"], {**drill, "DATABASE_URL": url}),
    }


@pytest.mark.parametrize("command", list(_commands("")))
@pytest.mark.parametrize("hostile", list(HOSTILE))
def test_a_hostile_url_is_refused_without_showing_the_password(hostile: str, command: str, tmp_path: Path) -> None:
    url, fragments = HOSTILE[hostile]
    args, env = _commands(url)[command]
    artifacts = tmp_path / "artifacts"
    done = run_cli(args, artifacts, timeout=60, **env)
    line = assert_one_line(done)
    if command != "backup restore":  # restore reads its manifest first: refused as missing, one line, exit 2
        assert "cannot parse the database URL" in line and "percent-encode" in line, line
    assert not leaked(fragments, done.stdout + done.stderr + everything_under(artifacts))


@pytest.mark.postgres
@pytest.mark.parametrize("hostile", list(HOSTILE))
def test_a_drill_refuses_a_hostile_server_url_and_its_report_holds_no_fragment(
    hostile: str, postgres_backup: Path, tmp_path: Path
) -> None:
    url, fragments = HOSTILE[hostile]
    artifacts = tmp_path / "artifacts"
    for args, env in (
        (["backup", "restore-verify", str(postgres_backup), "--database-url", url], {}),
        (["backup", "restore-verify", str(postgres_backup)], {"DATABASE_URL": url}),
    ):
        done = run_cli(args, artifacts, timeout=60, OPS_ENABLE_BACKUP_DRILL="true", **env)
        line = assert_one_line(done)
        assert "percent-encode" in line
        assert not leaked(fragments, done.stdout + done.stderr + everything_under(artifacts))
    reports = list(artifacts.rglob("drill_report_*.json"))
    assert reports, "the refused drill still leaves its report"
    assert all(json.loads(r.read_text())["status"] == "FAIL" for r in reports)


def test_a_percent_encoded_password_is_not_refused(tmp_path: Path) -> None:
    """The same password, encoded, gets past parsing: the command fails later, on the
    (unreachable) server, and still shows no part of it."""
    done = run_cli(
        ["integrity", "--database-url", "postgresql://u:Sekr3t%40tail@127.0.0.1:1/db"], tmp_path / "artifacts"
    )
    line = assert_one_line(done)
    assert "cannot parse" not in line and "127.0.0.1" in line and "u:***@127.0.0.1:1/db" in line, line
    assert "Sekr3t" not in done.stdout + done.stderr + everything_under(tmp_path / "artifacts")


# --- unusable artifacts folders ---------------------------------------------------------


COMMANDS_WRITING_ARTIFACTS = {
    "backup create": lambda db: ["backup", "create", "--name", "x", "--database-url", db],
    # The gate and the integrity check prove the place writable before any check runs.
    "gate --json": lambda db: ["gate", "--json", "--database-url", db],
    "integrity": lambda db: ["integrity", "--database-url", db],
    "integrity (embedded default)": lambda db: ["integrity"],
    "run": lambda db: ["run", "pre_deploy", "--database-url", db],
}


@pytest.fixture(scope="module")
def sqlite_db(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A migrated, empty SQLite database (the commands fail on the artifacts folder first)."""
    url = f"sqlite:///{tmp_path_factory.mktemp('hostile-sqlite') / 'aris3.db'}"
    migrate.upgrade(url)
    return url


@contextlib.contextmanager
def read_only_folder(folder: Path) -> Iterator[None]:
    """``folder`` made read-only for this process. Root writes through file modes, so as root
    a read-only tmpfs is mounted there instead (skipped where mounting is not permitted)."""
    folder.mkdir(parents=True)
    if os.geteuid() != 0:
        folder.chmod(0o555)
        try:
            yield
        finally:
            folder.chmod(0o755)
        return
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "ro,size=64k", "tmpfs", str(folder)], capture_output=True, text=True, check=False
    )
    if mounted.returncode != 0:
        pytest.skip(
            f"running as root and cannot mount a read-only tmpfs ({mounted.stderr.strip() or 'not permitted'}); "
            "the file-in-the-way case covers this boundary"
        )
    try:
        yield
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=True)


@pytest.mark.parametrize("command", list(COMMANDS_WRITING_ARTIFACTS))
@pytest.mark.parametrize("place", ["a file", "a read-only folder", "a file under it"])
def test_an_unusable_artifacts_folder_is_one_line_and_exit_2(
    command: str, place: str, sqlite_db: str, tmp_path: Path
) -> None:
    artifacts = tmp_path / "artifacts"
    args = COMMANDS_WRITING_ARTIFACTS[command](sqlite_db)
    if place == "a file":
        artifacts.write_text("not a folder")
        done = run_cli(args, artifacts, timeout=60)
    elif place == "a file under it":  # OPS_ARTIFACTS_DIR/<file>/...: a file in the way one level down
        (tmp_path / "blocker").write_text("not a folder")
        done = run_cli(args, tmp_path / "blocker" / "artifacts", timeout=60)
    else:
        with read_only_folder(artifacts):
            done = run_cli(args, artifacts, timeout=60)
    line = assert_one_line(done)
    reason = {
        "a file": "Not a directory",
        "a file under it": "Not a directory",
        "a read-only folder": ("Read-only file system" if os.geteuid() == 0 else "Permission denied"),
    }[place]
    assert reason in line and "cannot" in line, line
    if command.startswith(("gate", "integrity")):
        assert "nothing was checked" in line and "OPS_ARTIFACTS_DIR" in line, line


def test_serve_embedded_refuses_a_symlinked_embedded_folder(tmp_path: Path) -> None:
    artifacts, elsewhere = tmp_path / "artifacts", tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / ".aris3nb-embedded").write_text("a marker, so only the link protects this folder")
    (elsewhere / "precious.txt").write_text("keep me")
    artifacts.mkdir()
    (artifacts / "embedded").symlink_to(elsewhere)
    with socket.socket() as probe:  # a port free now, so that the refusal is about the folder
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    done = run_cli(["serve", "--embedded", "--port", str(port)], artifacts, timeout=30)
    line = assert_one_line(done)
    assert "symbolic link" in line and str(artifacts / "embedded") in line
    assert (elsewhere / "precious.txt").read_text() == "keep me" and (artifacts / "embedded").is_symlink()


def test_the_boundary_translates_os_errors_once() -> None:
    """An ``OSError`` that escapes the library: exit 2 when the place is unusable, 1 for a
    full disk (it ran and failed); the message is one line, masked."""
    denied = os_error_failure(PermissionError(errno.EACCES, "Permission denied", "/srv/postgresql://u:pw@h/x"))
    assert str(denied) == "cannot write /srv/postgresql://u:***@h/x: Permission denied"
    assert failure_exit_code(denied) == 2
    full = os_error_failure(OSError(errno.ENOSPC, "No space left on device"))
    assert str(full) == "cannot write: No space left on device" and failure_exit_code(full) == 1
    wrapped = BackupError("cannot create the backups folder /x/backups: Not a directory")
    wrapped.__cause__ = NotADirectoryError(errno.ENOTDIR, "Not a directory", "/x/backups")
    assert failure_exit_code(wrapped) == 2
    ran_out = BackupError("backup 'x' failed while copying: No space left on device")
    ran_out.__cause__ = OSError(errno.ENOSPC, "No space left on device")
    assert failure_exit_code(ran_out) == 1 and failure_exit_code(Aris3nbError("x")) == 1


# --- out-of-range timeouts --------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "value", "command"),
    [
        ("OPS_DRILL_TIMEOUT_SEC", "inf", ["backup", "restore-verify", "NO_SUCH"]),
        ("OPS_DRILL_TIMEOUT_SEC", "nan", ["run", "drill"]),
        ("OPS_DRILL_TIMEOUT_SEC", "1e9", ["backup", "restore-verify", "NO_SUCH"]),
        ("OPS_DRILL_TIMEOUT_SEC", "-1", ["gate", "--json"]),
        ("OPS_BACKUP_TIMEOUT_SEC", "1e9", ["backup", "create", "--name", "x"]),
        ("OPS_BACKUP_TIMEOUT_SEC", "inf", ["run", "drill"]),
        ("OPS_GATE_HTTP_TIMEOUT_SEC", "nan", ["gate", "--json"]),
        ("OPS_INTEGRITY_STATEMENT_TIMEOUT_SEC", "1e9", ["integrity"]),
    ],
)
def test_an_out_of_range_timeout_is_one_line_and_exit_2(
    name: str, value: str, command: list[str], tmp_path: Path
) -> None:
    artifacts = tmp_path / "artifacts"
    done = run_cli(command, artifacts, timeout=60, OPS_ENABLE_BACKUP_DRILL="true", **{name: value})
    line = assert_one_line(done)
    assert line.startswith(f"FAILED: invalid settings: {name}: must be"), line
    assert not artifacts.exists(), "nothing is written before the settings are read"


# --- a service that answers HTML for every path -----------------------------------------


class _NginxPage(http.server.BaseHTTPRequestHandler):
    body = b"<!DOCTYPE html>\n<html><head><title>Welcome to nginx!</title></head><body>It works</body></html>\n"

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(self.body)))
        self.end_headers()
        self.wfile.write(self.body)

    def log_message(self, *args: object) -> None:
        pass


def test_the_gate_fails_ready_against_an_html_page_for_every_path(tmp_path: Path) -> None:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _NginxPage)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        base_url = f"http://127.0.0.1:{server.server_address[1]}"
        done = run_cli(
            ["gate", "--json", "--base-url", base_url],
            tmp_path / "artifacts",
            timeout=120,
            OPS_GATE_LATENCY_SAMPLES="5",
            OPS_GATE_LATENCY_WARMUP="0",
        )
    finally:
        server.shutdown()
        server.server_close()
    assert done.returncode == 1, done.stderr
    checks = {c["name"]: c for c in json.loads(done.stdout)["checks"]}
    for name in ("http.health", "http.ready"):
        assert checks[name]["status"] == "FAIL", checks[name]
        assert "without the documented JSON body" in checks[name]["detail"]
        assert "text/html, body starts '<!DOCTYPE html>" in checks[name]["detail"]
