"""What the fault tests share: the ``aris3nb`` command as a real process (plain, or killed
at a chosen point by kill_at.py), the seeded databases they break, and views of the
PostgreSQL server's sessions and databases.

Every fault test breaks one thing on purpose and then checks three things: the exit code,
the one-line message, and the state left behind (see docs/RELIABILITY.md).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import clifork
import sqlalchemy as sa
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parents[2]
ARIS3NB = str(Path(sys.executable).with_name("aris3nb"))
KILL_AT = str(Path(__file__).with_name("kill_at.py"))
SEED_SCALE = 600
#: Rows of ~1 KB added to audit_events so that copies, dumps and digests take long
#: enough to be caught in the middle (tens of MB; a fraction of a second to back up).
PAD_ROWS = 30_000
PAD_SQLITE = (
    "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {rows}) "
    "INSERT INTO audit_events (tenant_id, actor_id, action, entity_type, entity_id, trace_id, details, created_at) "
    "SELECT NULL, NULL, 'PAD', 'pad', CAST(i AS TEXT), NULL, json_object('pad', hex(randomblob(500))), "
    "'2026-01-01 00:00:00.000000' FROM n"
)
PAD_POSTGRES = (
    "INSERT INTO audit_events (tenant_id, actor_id, action, entity_type, entity_id, trace_id, details, created_at) "
    "SELECT NULL, NULL, 'PAD', 'pad', i::text, NULL, "
    "json_build_object('pad', repeat(md5(i::text || random()::text), 30)), "
    "'2026-01-01' FROM generate_series(1, {rows}) i"
)


#: Lines the fuzzing tests leave for the end of the run (counts of what they tried).
SUMMARY: list[str] = []


@dataclass
class Run:
    """A finished ``aris3nb`` process."""

    returncode: int
    stdout: str
    stderr: str

    @property
    def failed_line(self) -> str:
        """The one ``FAILED: ...`` line an expected failure prints (asserted to be alone)."""
        lines = [line for line in self.stderr.splitlines() if line.strip()]
        assert len(lines) == 1 and lines[0].startswith("FAILED: "), self.stderr
        assert "Traceback" not in self.stderr + self.stdout
        return lines[0]


def cli_env(artifacts: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    env.update(OPS_ARTIFACTS_DIR=str(artifacts), COLUMNS="400", **extra)
    return env


def run_cli(args: list[str], artifacts: Path, timeout: float = 120, **extra: str) -> Run:
    """``aris3nb ARGS`` as a process of its own with OPS_ARTIFACTS_DIR=artifacts (forked warm:
    ``tests/targets/clifork.py``)."""
    done = clifork.run(args, env=cli_env(artifacts, **extra), timeout=timeout)
    return Run(done.returncode, done.stdout, done.stderr)


def run_killed_at(point: str, args: list[str], artifacts: Path, timeout: float = 120, **extra: str) -> dict:
    """``aris3nb ARGS`` killed (SIGKILL, whole process group) at ``point`` by kill_at.py;
    returns what the harness saw when it fired."""
    marker = artifacts.parent / f"killed_at_{point}_{uuid.uuid4().hex[:6]}.json"
    process = subprocess.Popen(
        [sys.executable, KILL_AT, point, str(marker), "--", *args],
        env=cli_env(artifacts, **extra),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        stdout, stderr = process.communicate(timeout=timeout)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    assert process.returncode == -signal.SIGKILL, (
        f"not killed at {point}: exit {process.returncode}\n{stdout}\n{stderr}"
    )
    assert marker.is_file(), f"killed, but not by the harness at {point}"
    return json.loads(marker.read_text())


def tree(folder: Path) -> list[str]:
    """Every path under ``folder`` (relative), sorted: the state a test compares."""
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*")) if folder.exists() else []


@dataclass
class Source:
    """A seeded database for one test: its URL and its export files."""

    url: str
    exports: Path

    @property
    def path(self) -> Path:
        return Path(self.url.removeprefix("sqlite:///"))


# --- PostgreSQL -----------------------------------------------------------------------


def postgres_server_url() -> str:
    return os.environ.get("ARIS3_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")


def database_url_named(name: str) -> str:
    return (
        make_url(postgres_server_url())
        .set(drivername="postgresql+psycopg", database=name)
        .render_as_string(hide_password=False)
    )


def sessions_on(admin: sa.Engine, database: str) -> list[tuple[int, str, str]]:
    """(pid, application_name, query) of every other session on ``database``."""
    with admin.connect() as conn:
        return [
            tuple(r)
            for r in conn.execute(
                sa.text(
                    "SELECT pid, application_name, query FROM pg_stat_activity "
                    "WHERE datname = :d AND pid <> pg_backend_pid()"
                ),
                {"d": database},
            )
        ]


def wait_for_no_sessions(admin: sa.Engine, database: str, seconds: float = 10) -> list[tuple[int, str, str]]:
    """Wait until nothing is connected to ``database`` (the server notices a dead client
    at once, but ends its backend a moment later); returns what is still there."""
    deadline = time.monotonic() + seconds
    while (left := sessions_on(admin, database)) and time.monotonic() < deadline:
        time.sleep(0.05)
    return left


def databases_like(admin: sa.Engine, pattern: str) -> list[str]:
    with admin.connect() as conn:
        return [
            r[0] for r in conn.execute(sa.text("SELECT datname FROM pg_database WHERE datname LIKE :p"), {"p": pattern})
        ]


def database_name(url: str) -> str:
    return str(make_url(url).database)
