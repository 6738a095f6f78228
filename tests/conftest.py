"""Shared fixtures: scratch SQLite files and scratch PostgreSQL databases.

PostgreSQL is found through ARIS3_TEST_POSTGRES_URL (default: the local server,
postgresql://postgres@127.0.0.1:5432/postgres). When it cannot be reached, tests that need
it are skipped with the reason, unless ARIS3_REQUIRE_POSTGRES=1 (as CI sets it), which turns
the skip into a failure.
"""

from __future__ import annotations

import atexit
import os
import shutil
import sys
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url

from aris3nb.core.redact import redact_url

POSTGRES_URL = os.environ.get("ARIS3_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
REQUIRE_POSTGRES = os.environ.get("ARIS3_REQUIRE_POSTGRES", "").lower() in ("1", "true", "yes")
SCRATCH_PREFIX = "aris3nb_test_"


def _a_temporary_folder_per_worker() -> None:
    """Under pytest-xdist (``-n``), each worker gets its own temporary folder (TMPDIR, inherited
    by every process it starts), removed when it ends: the tests that look in the temporary
    folder for what a killed process left, or that a rerun swept it, then see only their own
    worker's processes. The foreign targets' venv cache stays shared (it is built under a lock)."""
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    if not worker or os.environ.get("ARIS3NB_TESTS_WORKER_TMPDIR"):
        return  # not a worker, or a pytest a worker started (nbval's, the smoke suite's): its TMPDIR is set
    shared = Path(tempfile.gettempdir())
    os.environ.setdefault("ARIS3NB_TARGET_VENV_CACHE", str(shared / "aris3nb-target-venvs"))
    own = tempfile.mkdtemp(prefix=f"tests-{worker}-", dir=shared)
    os.environ["TMPDIR"] = os.environ["ARIS3NB_TESTS_WORKER_TMPDIR"] = own
    tempfile.tempdir = own
    atexit.register(shutil.rmtree, own, ignore_errors=True)


_a_temporary_folder_per_worker()
# The foreign test targets' driver (tests/targets/foreign_target.py), imported by the tests that use it.
sys.path.insert(0, str(Path(__file__).resolve().parent / "targets"))


def _admin_engine() -> sa.Engine:
    url = make_url(POSTGRES_URL).set(drivername="postgresql+psycopg")
    return sa.create_engine(
        url, isolation_level="AUTOCOMMIT", connect_args={"connect_timeout": 5}, poolclass=sa.NullPool
    )


@pytest.fixture(scope="session")
def postgres_admin() -> Iterator[sa.Engine]:
    """An AUTOCOMMIT engine on the test server's maintenance database."""
    engine = _admin_engine()
    try:
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
    except sa.exc.OperationalError as exc:
        reason = f"PostgreSQL at {redact_url(POSTGRES_URL)} is unreachable: {str(exc.orig).strip().splitlines()[0]}"
        if REQUIRE_POSTGRES:
            pytest.fail(f"{reason} (ARIS3_REQUIRE_POSTGRES is set, so this is a failure)", pytrace=False)
        pytest.skip(reason)
    yield engine
    engine.dispose()


@pytest.fixture
def postgres_url(postgres_admin: sa.Engine) -> Iterator[str]:
    """The URL of a new, empty PostgreSQL database, dropped after the test."""
    name = f"{SCRATCH_PREFIX}{uuid.uuid4().hex[:12]}"
    with postgres_admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    url = make_url(POSTGRES_URL).set(drivername="postgresql+psycopg", database=name)
    yield url.render_as_string(hide_password=False)
    with postgres_admin.connect() as conn:
        conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """The URL of a SQLite file that does not exist yet."""
    return f"sqlite:///{tmp_path / 'aris3.db'}"


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest) -> str:
    """An empty database of each engine in turn."""
    if request.param == "postgresql":
        request.applymarker(pytest.mark.postgres)
        return request.getfixturevalue("postgres_url")
    return request.getfixturevalue("sqlite_url")


@pytest.fixture(scope="session")
def prove_backup():
    """A function that makes a fresh backup of a target and a passing drill of it in an
    artifacts folder, as an operator does before a first release: the gate's backup.freshness
    and drill.freshness then PASS for that target (they FAIL for a target never backed up)."""
    from aris3nb.backup.create import create_backup
    from aris3nb.backup.drill import restore_verify
    from aris3nb.core.settings import load_settings

    def prove(database_url: str, artifacts: Path, exports_dir: Path | None = None, name: str = "proven") -> Path:
        settings = load_settings(artifacts={"dir": artifacts}, backup={"drill_enabled": True})
        made = create_backup(database_url, name, settings=settings, exports_dir=exports_dir)
        restore_verify(made.manifest_path, settings=settings, server_url=database_url)
        return made.manifest_path

    return prove


@pytest.fixture(scope="session")
def store() -> Iterator[Any]:
    """A real S3-protocol server (moto's, tests/targets/s3server.py) on loopback for the session."""
    import s3server  # only the storage tests pay for importing moto

    with s3server.MotoS3() as running:
        yield running
