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
import subprocess
import sys
import tempfile
import uuid
from collections import OrderedDict
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


#: Seconds each of the longest test files takes (its tests' setup, call and teardown summed, as
#: ``--durations=0`` lists them under CI's command, 2 workers, a slow machine, 2026-12-01). Only
#: the order in which ``--dist loadfile`` hands files to the workers reads them
#: (``pytest_xdist_make_scheduler`` below): a figure that is stale, or a file missing here, costs
#: balance between the workers, never a result. A file not listed weighs ``SECONDS_PER_UNLISTED_TEST`` per test.
FILE_SECONDS = {
    "tests/integration/test_playbook_foreign.py": 123,
    "tests/integration/test_playbook_run.py": 117,
    "tests/faults/test_faults_evidence_run.py": 111,
    "tests/integration/test_run_s3.py": 100,
    "tests/integration/test_backup.py": 95,
    "tests/integration/test_papermill_engine.py": 84,
    "tests/faults/test_faults_evidence_fuzz.py": 78,
    "tests/browser/test_browser_evidence.py": 75,
    "tests/integration/test_backup_s3.py": 74,
    "tests/integration/test_runner_status.py": 61,
    "tests/faults/test_faults_recovery.py": 52,
    "tests/integration/test_run_lock_s3.py": 51,
    "tests/notebooks/test_notebooks.py": 48,
    "tests/integration/test_seed.py": 48,
    "tests/integration/test_gate_run.py": 48,
    "tests/integration/test_playbook_verdicts.py": 44,
    "tests/integration/test_installed_wheel.py": 42,
    "tests/integration/test_integrity.py": 39,
    "tests/faults/test_faults_fuzz_backup.py": 35,
    "tests/integration/test_integrity_cli.py": 34,
    "tests/integration/test_backup_row_index.py": 33,
    "tests/integration/test_kernel_forks.py": 30,
    "tests/faults/test_faults_backup_kill.py": 30,
    "tests/integration/test_service_live_smoke.py": 29,
    "tests/faults/test_faults_evidence_html.py": 27,
    "tests/integration/test_gate_smoke.py": 24,
    "tests/integration/test_backup_foreign.py": 24,
    "tests/integration/test_gate_profile.py": 23,
    "tests/faults/test_faults_restore.py": 23,
    "tests/integration/test_gate_freshness_databases.py": 21,
    "tests/integration/test_cli.py": 21,
    "tests/integration/test_warm_probe.py": 20,
    "tests/integration/test_integrity_foreign.py": 20,
}
SECONDS_PER_UNLISTED_TEST = 0.1


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """``--dist loadfile``, the longest files first (``FILE_SECONDS``). xdist's own order (files
    with the most tests first) hands out the long files of few tests last (a whole playbook on a
    foreign target: 2 tests, 90 s), where one worker runs them while the other has nothing left
    to do; longest first, the short files come last and even the workers out. The files that
    read the session's one ``embedded_go_run`` go to one worker together, as one unit."""
    if config.getvalue("dist") != "loadfile":
        return None
    from xdist.scheduler import LoadFileScheduling

    class LongestFileFirst(LoadFileScheduling):
        ordered = False

        def _split_scope(self, nodeid: str) -> str:
            path = super()._split_scope(nodeid)
            return EMBEDDED_GO_RUN_SCOPE if path in EMBEDDED_GO_RUN_FILES else path

        def _assign_work_unit(self, node: Any) -> None:
            if not self.ordered:  # the first call: the queue holds every file, none handed out yet
                self.workqueue = OrderedDict(sorted(self.workqueue.items(), key=lambda unit: -_seconds(*unit)))
                self.ordered = True
            super()._assign_work_unit(node)

    return LongestFileFirst(config, log)


#: The files whose tests read the session's one ``embedded_go_run``: one work unit, one worker.
EMBEDDED_GO_RUN_FILES = ("tests/integration/test_playbook_run.py", "tests/browser/test_browser_evidence.py")
EMBEDDED_GO_RUN_SCOPE = " + ".join(EMBEDDED_GO_RUN_FILES)


def _seconds(scope: str, tests: dict[str, bool]) -> float:
    files = EMBEDDED_GO_RUN_FILES if scope == EMBEDDED_GO_RUN_SCOPE else (scope,)
    listed = [FILE_SECONDS[path] for path in files if path in FILE_SECONDS]
    return sum(listed) if listed else SECONDS_PER_UNLISTED_TEST * len(tests)


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


@pytest.fixture(scope="session")
def embedded_go_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, subprocess.CompletedProcess[str]]:
    """``aris3nb run`` on the embedded default, the README's first line, as a user runs it (the
    installed command, from the repository root), made once a session: its artifacts folder and
    how the command ended. The folder holds that one run and is only read: a test that runs again
    into it, or changes a file, does so in a copy of its own. The tests that read it
    (tests/integration/test_playbook_run.py, tests/browser/test_browser_evidence.py) are handed
    to one worker (``EMBEDDED_GO_RUN_FILES``), so the run is made once."""
    out = tmp_path_factory.mktemp("embedded-go-run")
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "OPS_ENABLE_BACKUP_DRILL")}
    done = subprocess.run(
        [str(Path(sys.executable).with_name("aris3nb")), "run", "--out", str(out)],
        capture_output=True,
        text=True,
        cwd=Path(__file__).resolve().parents[1],
        timeout=600,
        check=False,
        env=env,
    )
    return out, done
