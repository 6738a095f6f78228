"""The service's database plumbing: its engine, its sessions, and the readiness probe.

On SQLite, SQLAlchemy (not the sqlite3 driver) emits BEGIN, so every request runs in one
real transaction; requests that write start theirs with ``BEGIN IMMEDIATE``. Writers then
queue on the database lock (``busy_timeout``) at their first statement instead of failing
with "database is locked" when two of them try to upgrade a read lock at once, and a
check-then-write inside one request is never interleaved with another writer's.

The service never creates a SQLite file: a missing database is an unavailable one. The
readiness probe has its own engine with short timeouts, so ``/ready`` answers quickly
even when the database is locked or unreachable.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic.runtime.migration import MigrationContext
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import NullPool

from aris3nb.core.db import create_engine

#: Execution option carried by connections of write transactions.
_WRITER_OPTION = "aris3_writer"
PROBE_TIMEOUT_SEC = 2


def _sqlite_uri(database: str, mode: str) -> str:
    return f"{Path(database).absolute().as_uri()}?mode={mode}"


def _open_existing_sqlite_only(engine: Engine, mode: str) -> None:
    @sa.event.listens_for(engine, "do_connect")
    def _connect(dialect: Any, conn_rec: Any, cargs: list[Any], cparams: dict[str, Any]) -> None:
        cargs[0] = _sqlite_uri(cargs[0], mode)
        cparams["uri"] = True


def create_service_engine(database_url: str) -> Engine:
    """The engine requests run on (see the module docstring for its SQLite behaviour)."""
    engine = create_engine(database_url)
    if engine.dialect.name == "sqlite":
        _open_existing_sqlite_only(engine, "rw")

        @sa.event.listens_for(engine, "connect")
        def _driver_leaves_transactions_to_us(dbapi_connection: Any, _record: Any) -> None:
            dbapi_connection.isolation_level = None

        @sa.event.listens_for(engine, "begin")
        def _begin(conn: sa.Connection) -> None:
            writer = conn.get_execution_options().get(_WRITER_OPTION, False)
            conn.exec_driver_sql("BEGIN IMMEDIATE" if writer else "BEGIN")

    return engine


def locked(query: sa.Select[Any]) -> sa.Select[Any]:
    """``query`` locking its rows until commit, so a state transition cannot race another.

    ``FOR NO KEY UPDATE`` on PostgreSQL: keys never change, and a plain ``FOR UPDATE`` would
    also block every insert whose foreign key points at the locked row. SQLite has no row
    locks; its writers are already serialised by ``BEGIN IMMEDIATE``.
    """
    return query.with_for_update(key_share=True)


@dataclass(frozen=True)
class SessionFactories:
    """Sessions for reading requests and for writing ones (same pool, different BEGIN)."""

    engine: Engine
    reader: sessionmaker[Session]
    writer: sessionmaker[Session]

    @classmethod
    def for_engine(cls, engine: Engine) -> SessionFactories:
        return cls(
            engine=engine,
            reader=sessionmaker(engine, expire_on_commit=False),
            writer=sessionmaker(engine.execution_options(**{_WRITER_OPTION: True}), expire_on_commit=False),
        )

    def read_connection(self) -> sa.Connection:
        """A connection of its own for a long streamed read (it never begins as a writer)."""
        return self.engine.connect()


@dataclass(frozen=True)
class Readiness:
    """What the readiness probe found: ``code`` is None when the service is ready."""

    code: str | None
    message: str
    current_revision: str | None = None
    expected_revision: str | None = None


class ReadinessProbe:
    """Checks that the database answers and is migrated to the code's head revision."""

    def __init__(self, database_url: str, head: str) -> None:
        self.head = head
        self._engine = create_engine(database_url, poolclass=NullPool)
        if self._engine.dialect.name == "sqlite":
            _open_existing_sqlite_only(self._engine, "ro")

            @sa.event.listens_for(self._engine, "connect")
            def _short_busy_wait(dbapi_connection: Any, _record: Any) -> None:
                dbapi_connection.execute(f"PRAGMA busy_timeout={PROBE_TIMEOUT_SEC * 1000}")
        else:

            @sa.event.listens_for(self._engine, "do_connect")
            def _short_connect(dialect: Any, conn_rec: Any, cargs: list[Any], cparams: dict[str, Any]) -> None:
                cparams["connect_timeout"] = PROBE_TIMEOUT_SEC
                cparams["options"] = f"-c statement_timeout={PROBE_TIMEOUT_SEC * 1000}"

    def check(self) -> Readiness:
        try:
            with self._engine.connect() as conn:
                revision = MigrationContext.configure(conn).get_current_revision()
        except sa.exc.DBAPIError as exc:
            reason = type(exc.orig).__name__ if exc.orig is not None else type(exc).__name__
            return Readiness("DB_UNAVAILABLE", f"the database does not answer ({reason})")
        if revision != self.head:
            return Readiness(
                "SCHEMA_NOT_AT_HEAD",
                f"the database schema is at revision {revision or 'none'}, the service needs {self.head}",
                current_revision=revision,
                expected_revision=self.head,
            )
        return Readiness(None, "ready", current_revision=revision, expected_revision=self.head)

    def dispose(self) -> None:
        self._engine.dispose()
