"""Fixtures of the fault suite: seeded databases big enough for a backup to be caught
mid-way (made once per session, copied per test). The helpers are in ``faultkit``."""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from faultkit import PAD_POSTGRES, PAD_ROWS, PAD_SQLITE, SEED_SCALE, SUMMARY, Source, database_url_named

from aris3nb import migrate
from aris3nb.core.db import create_engine
from aris3nb.reference.seed import seed_database


def _seeded_sqlite(folder: Path, pad_rows: int) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    url = f"sqlite:///{folder / 'aris3.db'}"
    migrate.upgrade(url)
    seed_database(url, scale=SEED_SCALE, exports_dir=folder / "exports")
    if pad_rows:
        engine = create_engine(url)
        with engine.begin() as conn:
            conn.exec_driver_sql(PAD_SQLITE.format(rows=pad_rows))
        engine.dispose()
    return folder


@pytest.fixture(scope="session")
def big_sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _seeded_sqlite(tmp_path_factory.mktemp("big-sqlite"), PAD_ROWS)


@pytest.fixture(scope="session")
def small_sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _seeded_sqlite(tmp_path_factory.mktemp("small-sqlite"), 0)


def _copy(template: Path, target: Path) -> Source:
    shutil.copytree(template, target)
    return Source(f"sqlite:///{target / 'aris3.db'}", target / "exports")


@pytest.fixture
def big_sqlite(big_sqlite_template: Path, tmp_path: Path) -> Source:
    """A seeded SQLite database of tens of MB (a copy of the session's template)."""
    return _copy(big_sqlite_template, tmp_path / "source")


@pytest.fixture
def small_sqlite(small_sqlite_template: Path, tmp_path: Path) -> Source:
    """A seeded SQLite database of under 1 MB, with export files."""
    return _copy(small_sqlite_template, tmp_path / "source")


@pytest.fixture
def artifacts(tmp_path: Path) -> Path:
    return tmp_path / "artifacts"


@pytest.fixture(scope="session")
def big_postgres_template(
    postgres_admin: sa.Engine, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, Path]]:
    """A seeded, padded PostgreSQL database used only as a template, and its export files."""
    name = f"aris3nb_test_faults_tpl_{uuid.uuid4().hex[:8]}"
    with postgres_admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    exports = tmp_path_factory.mktemp("big-postgres") / "exports"
    try:
        url = database_url_named(name)
        migrate.upgrade(url)
        seed_database(url, scale=SEED_SCALE, exports_dir=exports)
        engine = create_engine(url)
        with engine.begin() as conn:
            conn.exec_driver_sql(PAD_POSTGRES.format(rows=PAD_ROWS))
        engine.dispose()
        yield name, exports
    finally:
        with postgres_admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def big_postgres(
    big_postgres_template: tuple[str, Path], postgres_admin: sa.Engine, tmp_path: Path
) -> Iterator[Source]:
    """A fresh copy (CREATE DATABASE ... TEMPLATE) of the padded PostgreSQL database."""
    template, exports = big_postgres_template
    name = f"aris3nb_test_{uuid.uuid4().hex[:12]}"
    with postgres_admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
    shutil.copytree(exports, tmp_path / "exports")
    try:
        yield Source(database_url_named(name), tmp_path / "exports")
    finally:
        with postgres_admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """What the fuzzing tried, in numbers (hypothesis' own: --hypothesis-show-statistics)."""
    for line in SUMMARY:
        terminalreporter.write_line(line)
