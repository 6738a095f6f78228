"""pytest-alembic's standard checks of the reference migrations, on real SQLite and PostgreSQL:
one head, an upgrade from nothing to head, the migrated schema equal to the models, every
revision down and up again one at a time, and each downgrade undoing exactly its upgrade.

The checks are pytest-alembic's own functions, imported below, so pytest collects them here once
per engine (``database_url``). Its plugin is blocked in pyproject.toml (``-p no:pytest_alembic``);
the ``alembic_runner`` fixture is imported from it too. What is particular to these migrations
(short revision ids, the data backfills, the ``alembic`` command line, an unknown revision) is in
test_migrations.py; the gate's own runtime round trip is aris3nb/gate/migrations.py.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from alembic.config import Config
from pytest_alembic.plugin.fixtures import alembic_runner  # noqa: F401 -- the fixture the checks take
from pytest_alembic.runner import MigrationContext
from pytest_alembic.tests import (  # noqa: F401 -- collected by pytest from this module
    test_model_definitions_match_ddl,
    test_single_head_revision,
    test_up_down_consistency,
    test_upgrade,
)
from pytest_alembic.tests.experimental import downgrade_leaves_no_trace

from aris3nb import migrate
from aris3nb.core.db import create_engine


@pytest.fixture
def alembic_config() -> Config:
    """The migrations as the library runs them (aris3nb.resources' copy, no logging setup)."""
    return migrate.alembic_config()


@pytest.fixture
def alembic_engine(database_url: str) -> Iterator[sa.Connection]:
    """A connection, not an engine: migrations/env.py migrates through the connection it is
    handed in ``config.attributes``, as aris3nb.migrate hands it one."""
    engine = create_engine(database_url, create_sqlite_parent=True)
    try:
        with engine.connect() as connection:
            yield connection
    finally:
        engine.dispose()


# PostgreSQL only: the check runs each upgrade and downgrade inside a savepoint it rolls back,
# and on SQLite migrations/env.py commits (to turn foreign keys off before batch table rebuilds),
# which ends the savepoint under it.
@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_downgrade_leaves_no_trace(
    alembic_runner: MigrationContext,  # noqa: F811 -- the imported fixture, by name
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """pytest-alembic's experimental check, unchanged but for what env.py is handed: the check
    wraps its connection to look like an engine (``connect()`` returning it), and env.py takes a
    connection as it is (Alembic's connection-sharing recipe), so it gets the connection itself."""
    monkeypatch.setattr(downgrade_leaves_no_trace, "WrappingConnection", lambda connection: connection)
    downgrade_leaves_no_trace.test_downgrade_leaves_no_trace(alembic_runner)
