"""PostgreSQL going away: a session killed mid-backup and mid-drill (``pg_terminate_backend``
from another connection, on the backend found in pg_stat_activity), a server that does not
answer, a role or database that does not exist, a wrong password."""

from __future__ import annotations

import json
import socket
import threading
import time
import uuid
from pathlib import Path

import psycopg
import pytest
import sqlalchemy as sa
from faultkit import Run, Source, database_name, databases_like, run_cli, wait_for_no_sessions
from sqlalchemy.engine import make_url

from aris3nb import migrate

pytestmark = pytest.mark.postgres

PASSWORD = "Pg-Secret-4417"


def with_password(url: str, password: str = PASSWORD) -> str:
    return make_url(url).set(drivername="postgresql", password=password).render_as_string(hide_password=False)


class Terminator:
    """Kills, once, the first active session matching ``database LIKE`` / application (a regular
    expression: aris3nb names each operation's sessions) / ``query LIKE`` (polled every few ms)
    while a command runs; remembers what it killed."""

    def __init__(self, admin: sa.Engine, database_like: str, application: str, query_like: str = "%") -> None:
        self.admin, self.params = admin, {"d": database_like, "a": application, "q": query_like}
        self.killed: list[tuple[int, str, str]] = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        with self.admin.connect() as conn:
            while not self.stop.is_set() and not self.killed:
                rows = conn.execute(
                    sa.text(
                        "SELECT pid, datname, left(query, 80) FROM pg_stat_activity WHERE datname LIKE :d "
                        "AND application_name ~ :a AND state = 'active' AND query LIKE :q"
                    ),
                    self.params,
                ).all()
                for pid, datname, query in rows[:1]:
                    if conn.execute(sa.text("SELECT pg_terminate_backend(:p)"), {"p": pid}).scalar():
                        self.killed.append((pid, datname, query))
                time.sleep(0.002)

    def __enter__(self) -> Terminator:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(10)


def backup_args(source: Source, name: str) -> list[str]:
    return [
        "backup",
        "create",
        "--name",
        name,
        "--database-url",
        with_password(source.url),
        "--exports-dir",
        str(source.exports),
    ]


# --- killed mid-backup -------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize(
    ("application", "cause"),
    [
        (r"^aris3nb-backup-\d+-[0-9a-f]+$", "lost the connection to postgresql://postgres:***@"),  # the snapshot holder
        (r"^aris3nb-backup-.*-pg_dump$", "pg_dump failed (exit 1): pg_dump: error: "),  # one of pg_dump's
    ],
)
def test_a_session_killed_mid_backup_fails_it_with_the_cause(
    application: str, cause: str, big_postgres: Source, artifacts: Path, postgres_admin: sa.Engine
) -> None:
    database = database_name(big_postgres.url)
    with Terminator(postgres_admin, database, application, "COPY%") as terminator:
        done = run_cli(backup_args(big_postgres, "killed_session"), artifacts)
    assert terminator.killed, "the session was never caught mid-COPY"
    assert done.returncode == 1
    line = done.failed_line
    assert cause in line, line
    if "pg_dump" not in application:  # the driver says the one or the other, as the kill lands
        assert "while trying to back up the database: " in line
        assert line.endswith("terminating connection due to administrator command") or (
            "server closed the connection unexpectedly" in line
        ), line
    assert PASSWORD not in done.stdout + done.stderr
    assert list((artifacts / "backups").iterdir()) == [], "no backup, no temporary folder"
    assert not wait_for_no_sessions(postgres_admin, database), "no session of the failed run is left"
    again = run_cli(backup_args(big_postgres, "killed_session"), artifacts)
    assert again.returncode == 0, again.stderr


# --- killed mid-drill --------------------------------------------------------------------


@pytest.fixture
def drilled_backup(big_postgres: Source, artifacts: Path) -> tuple[str, Path]:
    name = f"drill_{uuid.uuid4().hex[:10]}"  # other suites drill on this server at the same time
    done = run_cli(backup_args(big_postgres, name), artifacts)
    assert done.returncode == 0, done.stderr
    return name, artifacts / "backups" / name / "manifest.json"


@pytest.mark.slow
@pytest.mark.parametrize(
    ("application", "query", "cause"),
    [
        ("^aris3nb-pg_restore-", "%", "pg_restore failed"),  # while restoring
        ("^aris3nb-read-", "COPY%", "while trying to digest the tables"),  # while verifying
    ],
)
def test_a_session_killed_mid_drill_fails_it_and_the_scratch_database_is_dropped(
    application: str,
    query: str,
    cause: str,
    drilled_backup: tuple[str, Path],
    big_postgres: Source,
    artifacts: Path,
    postgres_admin: sa.Engine,
) -> None:
    name, manifest = drilled_backup
    server = with_password(big_postgres.url)
    with Terminator(postgres_admin, f"aris3nb_drill_{name}%", application, query) as terminator:
        done = run_cli(
            ["backup", "restore-verify", str(manifest), "--database-url", server],
            artifacts,
            OPS_ENABLE_BACKUP_DRILL="true",
        )
    assert terminator.killed, "the drill's session was never caught"
    assert done.returncode == 1
    line = done.failed_line
    assert f"drill of {name} FAILED: " in line and cause in line, line
    assert PASSWORD not in done.stdout + done.stderr
    reports = sorted((artifacts / "drills" / name).glob("drill_report_*.json"))
    assert len(reports) == 1
    report = json.loads(reports[0].read_text())
    assert report["status"] == "FAIL" and cause in report["reason"] and PASSWORD not in reports[0].read_text()
    assert databases_like(postgres_admin, f"aris3nb_drill_{name}%") == [], "the scratch database was dropped"


# --- not reachable, not allowed ------------------------------------------------------------


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def check_refused(done: Run, *fragments: str) -> None:
    assert done.returncode == 2, done.stdout + done.stderr
    line = done.failed_line
    for fragment in fragments:
        assert fragment in line, line
    assert PASSWORD not in done.stdout + done.stderr


@pytest.mark.slow
def test_an_unreachable_server_is_exit_2_for_every_command(postgres_url: str, artifacts: Path, tmp_path: Path) -> None:
    url = f"postgresql://aris3:{PASSWORD}@127.0.0.1:{closed_port()}/aris3"
    started = time.monotonic()
    check_refused(
        run_cli(["backup", "create", "--name", "unreachable", "--database-url", url], artifacts),
        "is unavailable",
        "aris3:***@127.0.0.1",
    )
    assert not (artifacts / "backups").exists() or list((artifacts / "backups").iterdir()) == []
    # A drill and a restore of a PostgreSQL backup need that server too: a real backup to try them with.
    migrate.upgrade(postgres_url)
    made = run_cli(["backup", "create", "--name", "for_refusals", "--database-url", postgres_url], tmp_path / "made")
    assert made.returncode == 0, made.stderr
    manifest = tmp_path / "made" / "backups" / "for_refusals" / "manifest.json"
    check_refused(
        run_cli(
            ["backup", "restore-verify", str(manifest), "--database-url", url],
            artifacts,
            OPS_ENABLE_BACKUP_DRILL="true",
        ),
        "cannot create the drill's scratch database",
        "is unavailable",
    )
    report = json.loads(next((artifacts / "drills" / "for_refusals").glob("drill_report_*.json")).read_text())
    assert report["status"] == "FAIL" and "is unavailable" in report["reason"], "the report is kept"
    check_refused(
        run_cli(["backup", "restore", str(manifest), "--target-url", url, "--yes"], artifacts), "is unavailable"
    )
    assert time.monotonic() - started < 30, "a refused connection is not waited on"


@pytest.mark.parametrize("what", ["role", "database"])
def test_a_role_or_database_that_does_not_exist_is_exit_2(what: str, postgres_url: str, artifacts: Path) -> None:
    url = make_url(postgres_url).set(drivername="postgresql", password=PASSWORD)
    url = url.set(username="aris3nb_no_such_role") if what == "role" else url.set(database="aris3nb_no_such_db")
    done = run_cli(
        ["backup", "create", "--name", "refused", "--database-url", url.render_as_string(hide_password=False)],
        artifacts,
    )
    check_refused(done, f'{what} "aris3nb_no_such_{"role" if what == "role" else "db"}" does not exist')


def test_a_wrong_password_is_refused_or_trusted_and_never_shown(
    postgres_url: str, postgres_admin: sa.Engine, artifacts: Path
) -> None:
    """What this server does with a wrong password depends on pg_hba.conf. A server that
    checks passwords refuses it: exit 2, without the password. A server that trusts
    loopback connections (as the test machine's does: ``host all all 127.0.0.1/32 trust``)
    accepts any password: the backup then succeeds, and the password still appears in
    no output and no file."""
    migrate.upgrade(postgres_url)
    role = f"aris3nb_test_pw_{uuid.uuid4().hex[:8]}"
    with postgres_admin.connect() as conn:
        conn.exec_driver_sql(f"CREATE ROLE {role} LOGIN PASSWORD 'Right-Pass-1'")
        conn.exec_driver_sql(f'GRANT ALL ON DATABASE "{database_name(postgres_url)}" TO {role}')
        conn.exec_driver_sql(f"GRANT pg_read_all_data TO {role}")
    try:
        wrong = make_url(postgres_url).set(drivername="postgresql", username=role, password=PASSWORD)
        try:
            psycopg.connect(wrong.render_as_string(hide_password=False), connect_timeout=5).close()
            trusted = True
        except psycopg.OperationalError as exc:
            assert "password authentication failed" in str(exc)
            trusted = False
        done = run_cli(
            [
                "backup",
                "create",
                "--name",
                "wrong_password",
                "--database-url",
                wrong.render_as_string(hide_password=False),
            ],
            artifacts,
        )
        everything = (
            done.stdout
            + done.stderr
            + "".join(p.read_bytes().decode(errors="replace") for p in artifacts.rglob("*") if p.is_file())
        )
        assert PASSWORD not in everything
        if trusted:
            assert done.returncode == 0, done.stderr
            assert (
                "wrong_password" in done.stdout
                and role not in (artifacts / "backups" / "wrong_password" / "manifest.json").read_text()
            )
        else:
            check_refused(done, "password authentication failed", f"{role}:***@")
    finally:
        with postgres_admin.connect() as conn:
            conn.exec_driver_sql(f'REVOKE ALL ON DATABASE "{database_name(postgres_url)}" FROM {role}')
            conn.exec_driver_sql(f"DROP ROLE IF EXISTS {role}")
