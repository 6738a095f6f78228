"""No PostgreSQL client tool aris3nb starts carries the password on its command line, which
every local user can read (``ps``, ``/proc/<pid>/cmdline``) while the tool runs.

A role with a password owns a database of its own; a real backup (pg_dump), a real drill
(pg_restore into a scratch database) and a real restore (pg_restore --clean) of it run while
a thread samples the command line of every process aris3nb starts. The server trusts every
connection, so the tools' success does not prove the password reached them: the unit tests
of ``libpq_target`` check the environment that carries it."""

from __future__ import annotations

import datetime as dt
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

import psutil
import pytest
import sqlalchemy as sa

from aris3nb import migrate
from aris3nb.backup.create import create_backup
from aris3nb.backup.drill import restore_verify
from aris3nb.backup.restore import restore_backup
from aris3nb.contract import models as m
from aris3nb.core.db import create_engine
from aris3nb.core.settings import Settings, load_settings
from aris3nb.reference.seed import seed_database

pytestmark = pytest.mark.postgres

SCRATCH_PREFIX = "aris3nb_test_"

#: Characters that a URL must percent-encode, so that its encoded form is looked for too.
PASSWORD = f"Pw-{uuid.uuid4().hex}-@/:"


@dataclass
class Sampler:
    """Reads the command line of every descendant of this process, every few milliseconds."""

    seen: dict[int, list[str]] = field(default_factory=dict)
    _stop: threading.Event = field(default_factory=threading.Event)

    def _sample(self) -> None:
        me = psutil.Process()
        while not self._stop.is_set():
            for child in me.children(recursive=True):
                try:
                    self.seen.setdefault(child.pid, child.cmdline())
                except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
                    continue
            time.sleep(0.001)

    def __enter__(self) -> Sampler:
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def tools(self) -> set[str]:
        # argv[1] too: a tool started through an interpreter (Debian's pg_wrapper is Perl)
        return {Path(arg).name for argv in self.seen.values() for arg in argv[:2]}


@pytest.fixture
def role_url(postgres_admin: sa.Engine) -> Iterator[str]:
    """A database owned by a new role that logs in with a password (and may create the
    drill's scratch databases); both dropped afterwards."""
    suffix = uuid.uuid4().hex[:10]
    role, database = f"{SCRATCH_PREFIX}role_{suffix}", f"{SCRATCH_PREFIX}{suffix}"
    with postgres_admin.connect() as conn:
        conn.exec_driver_sql(f"CREATE ROLE \"{role}\" LOGIN CREATEDB PASSWORD '{PASSWORD}'")
        conn.exec_driver_sql(f'CREATE DATABASE "{database}" OWNER "{role}"')
    server = postgres_admin.url
    url = f"postgresql+psycopg://{role}:{quote(PASSWORD, safe='')}@{server.host}:{server.port or 5432}/{database}"
    try:
        yield url
    finally:
        with postgres_admin.connect() as conn:
            drills = conn.execute(
                sa.text("SELECT datname FROM pg_database WHERE datdba = (SELECT oid FROM pg_roles WHERE rolname = :r)"),
                {"r": role},
            ).scalars()
            for name in [*drills, database]:
                conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            conn.exec_driver_sql(f'DROP ROLE IF EXISTS "{role}"')


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return load_settings(
        artifacts={"dir": tmp_path / "artifacts"},
        backup={"drill_enabled": True},
        target={"exports_dir": tmp_path / "exports"},
    )


def test_no_client_tool_has_the_password_on_its_command_line(role_url: str, settings: Settings) -> None:
    migrate.upgrade(role_url)
    seed_database(role_url, scale=600, exports_dir=settings.resolved_exports_dir())
    with Sampler() as sampler:
        manifest = create_backup(
            role_url, "pre_deploy_20261130_0800", settings=settings, exports_dir=settings.resolved_exports_dir()
        ).manifest_path
        report, _ = restore_verify(manifest, settings=settings, server_url=role_url)
        engine = create_engine(role_url)
        with engine.begin() as conn:
            conn.execute(
                sa.insert(m.AuditEvent.__table__),
                [
                    {"action": "AFTER", "entity_type": "test", "entity_id": str(n), "details": {}}
                    | {"created_at": dt.datetime.now(dt.UTC)}
                    for n in range(4)
                ],
            )
        engine.dispose()
        said: list[str] = []
        restore_backup(manifest, role_url, settings=settings, confirmed=True, announce=said.append)

    assert report.status == "PASS", "the backup reached through the role drills"
    assert {"pg_dump", "pg_restore"} <= sampler.tools(), f"the tools were not seen running: {sampler.tools()}"
    secrets = (PASSWORD, quote(PASSWORD, safe=""))
    leaked = [argv for argv in sampler.seen.values() if any(s in arg for arg in argv for s in secrets)]
    assert not leaked, "a client tool had the password on its command line"
    dbname = [arg for argv in sampler.seen.values() for arg in argv if arg.startswith("--dbname=")]
    assert dbname and all(arg.startswith("--dbname=postgresql://") for arg in dbname)
    assert "at least 4 rows written or changed after the backup" in said[0]
