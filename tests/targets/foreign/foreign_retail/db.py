"""Database URLs, engines and the Alembic revision the database is at.

The service, the seed command and ``migrations/env.py`` all read the URL from
``FOREIGN_DATABASE_URL`` unless one is passed. ``postgresql://`` URLs are served by
psycopg 3.
"""

from __future__ import annotations

import os
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import make_url

DATABASE_URL_ENV = "FOREIGN_DATABASE_URL"
ROOT = Path(__file__).resolve().parent.parent
ALEMBIC_INI = ROOT / "alembic.ini"
#: Wide enough for every revision id of this history (and upstream ARIS3's).
WIDE_VERSION_NUM = 128


class ConfigurationError(RuntimeError):
    """A setting the target needs is missing or unusable."""


def database_url(explicit: str | None = None) -> str:
    url = explicit or os.environ.get(DATABASE_URL_ENV)
    if not url:
        raise ConfigurationError(f"no database URL: pass --database-url or set {DATABASE_URL_ENV}")
    return url


def normalize_url(url: str) -> sa.URL:
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed


def create_engine(url: str) -> sa.Engine:
    parsed = normalize_url(url)
    if parsed.get_backend_name() == "sqlite":
        engine = sa.create_engine(parsed, connect_args={"check_same_thread": False, "timeout": 30})

        @sa.event.listens_for(engine, "connect")
        def _foreign_keys_on(dbapi_connection, _record) -> None:
            dbapi_connection.execute("PRAGMA foreign_keys=ON")

        return engine
    return sa.create_engine(parsed, pool_pre_ping=True, connect_args={"connect_timeout": 5})


def current_revision(connection: sa.Connection) -> str | None:
    """The revision in ``alembic_version``, or None when the table is absent or empty."""
    if not sa.inspect(connection).has_table("alembic_version"):
        return None
    return connection.execute(sa.text("SELECT version_num FROM alembic_version")).scalar()


def head_revision() -> str:
    """The newest revision of this code's history (read from the scripts, not hard-coded)."""
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(Config(str(ALEMBIC_INI))).get_current_head()


def widen_version_table(connection: sa.Connection) -> str:
    """Create or widen ``alembic_version.version_num`` to hold this history's long revision ids.

    Alembic creates the column as VARCHAR(32); every revision id here after the first is longer,
    so a fresh PostgreSQL upgrade fails at the second revision ("value too long for type
    character varying(32)"), exactly like upstream ARIS3. SQLite does not enforce the width.
    Returns what it did, for the caller to print.
    """
    width = WIDE_VERSION_NUM
    if not sa.inspect(connection).has_table("alembic_version"):
        connection.exec_driver_sql(
            f"CREATE TABLE alembic_version (version_num VARCHAR({width}) NOT NULL, "
            "CONSTRAINT alembic_version_pkc PRIMARY KEY (version_num))"
        )
        return f"created alembic_version with version_num VARCHAR({width})"
    if connection.dialect.name == "sqlite":
        return "alembic_version exists; SQLite does not enforce VARCHAR widths"
    column = next(c for c in sa.inspect(connection).get_columns("alembic_version") if c["name"] == "version_num")
    length = getattr(column["type"], "length", None)
    if length is not None and length < width:
        connection.exec_driver_sql(f"ALTER TABLE alembic_version ALTER COLUMN version_num TYPE VARCHAR({width})")
        return f"widened alembic_version.version_num from VARCHAR({length}) to VARCHAR({width})"
    return f"alembic_version.version_num is already VARCHAR({length})"
