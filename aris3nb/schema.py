"""Reading a database's schema without changing it: snapshots that can be compared,
the differences between the migrated schema and the models, what a ``downgrade base``
left behind, and read-only engines for checks that must only look.

The gate's migrations round trip, its target-schema check and the integrity check all
read through here; the tests of the migrations use the same snapshot.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy.engine import URL, Engine

from aris3nb.contract.models import Base
from aris3nb.core.db import create_engine, database_errors, parse_database_url
from aris3nb.targets.probe import describe as describe_difference  # noqa: F401 -- one description, in and out of process

#: Tables Alembic itself keeps; not part of the ARIS3 schema.
ALEMBIC_TABLES = frozenset({"alembic_version"})


def schema_snapshot(url: str | URL) -> dict[str, Any]:
    """Tables, columns (type, nullability, server default), primary, foreign and unique keys,
    indexes and check constraints, as reflected; equal snapshots mean the same schema."""
    engine = create_engine(url)
    try:
        with database_errors(url, "read the schema"):
            return _snapshot(sa.inspect(engine))
    finally:
        engine.dispose()


def _snapshot(inspector: sa.Inspector) -> dict[str, Any]:
    snapshot: dict[str, Any] = {}
    for table in sorted(inspector.get_table_names()):
        pk = inspector.get_pk_constraint(table)
        snapshot[table] = {
            "columns": [
                (c["name"], str(c["type"]), c["nullable"], _text(c.get("default")))
                for c in inspector.get_columns(table)
            ],
            "pk": pk["constrained_columns"],
            "pk_name": pk.get("name"),
            "fks": _sorted(
                [
                    (fk["name"], tuple(fk["constrained_columns"]), fk["referred_table"], tuple(fk["referred_columns"]))
                    for fk in inspector.get_foreign_keys(table)
                ]
            ),
            "indexes": _sorted(
                [(ix["name"], tuple(ix["column_names"]), bool(ix["unique"])) for ix in inspector.get_indexes(table)]
            ),
            "uniques": _sorted(
                [(u["name"], tuple(u["column_names"])) for u in inspector.get_unique_constraints(table)]
            ),
            "checks": _sorted(
                [(ck.get("name") or "", _text(ck.get("sqltext"))) for ck in inspector.get_check_constraints(table)]
            ),
        }
    return snapshot


def _sorted(items: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    """Sorted by their text: SQLite reports unnamed constraints (name None) beside named ones."""
    return sorted(items, key=repr)


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


def snapshot_digest(snapshot: dict[str, Any]) -> str:
    """SHA-256 of a snapshot's canonical JSON: two runs can be compared by this alone."""
    canonical = json.dumps(snapshot, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def snapshot_differences(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    """What differs between two snapshots, one line per table part."""
    lines = [f"table {t} only in the first snapshot" for t in sorted(set(before) - set(after))]
    lines += [f"table {t} only in the second snapshot" for t in sorted(set(after) - set(before))]
    for table in sorted(set(before) & set(after)):
        for part in before[table]:
            if before[table][part] != after[table].get(part):
                lines.append(f"{table}.{part}: {before[table][part]!r} != {after[table].get(part)!r}")
    return lines


def model_differences(url: str | URL, metadata: sa.MetaData = Base.metadata) -> list[Any]:
    """Alembic's comparison of the database's schema with ``metadata`` (types compared too);
    empty when they agree."""
    engine = create_engine(url)
    try:
        with database_errors(url, "compare the schema with the models"), engine.connect() as conn:
            return compare_with_models(conn, metadata)
    finally:
        engine.dispose()


def compare_with_models(conn: sa.Connection, metadata: sa.MetaData = Base.metadata) -> list[Any]:
    """``model_differences`` on an open connection (a read-only one, for a target database)."""
    context = MigrationContext.configure(conn, opts={"compare_type": True})
    return list(compare_metadata(context, metadata))


def leftover_schema_objects(url: str | URL) -> list[str]:
    """What a database still holds of a schema (tables other than Alembic's, views, and on
    PostgreSQL sequences and enum types); empty after a complete ``downgrade base``."""
    engine = create_engine(url)
    try:
        with database_errors(url, "list the schema's objects"):
            inspector = sa.inspect(engine)
            found = [f"table {t}" for t in sorted(set(inspector.get_table_names()) - ALEMBIC_TABLES)]
            found += [f"view {v}" for v in sorted(inspector.get_view_names())]
            if engine.dialect.name == "postgresql":
                found += [f"sequence {s}" for s in sorted(inspector.get_sequence_names())]
                found += [f"type {e['name']}" for e in inspector.get_enums()]  # type: ignore[attr-defined]
            return found
    finally:
        engine.dispose()


def read_only_engine(url: str | URL, *, statement_timeout_sec: float | None = None) -> Engine:
    """An engine that cannot write, by construction.

    SQLite: the file is opened with ``mode=ro`` (a missing file is an error, never created),
    and every connection reads inside one explicit transaction, so a sequence of reads sees
    one snapshot; a statement running past ``statement_timeout_sec`` is interrupted.
    PostgreSQL: every transaction is ``READ ONLY`` (``default_transaction_read_only``) and
    ``REPEATABLE READ``, with a server-side ``statement_timeout``.
    """
    parsed = parse_database_url(url)
    if parsed.get_backend_name() == "sqlite":
        path = Path(parsed.database or "")
        engine = create_engine(parsed, poolclass=sa.NullPool)
        _sqlite_read_only(engine, path, statement_timeout_sec)
        return engine
    options = "-c default_transaction_read_only=on"
    if statement_timeout_sec is not None:
        options += f" -c statement_timeout={int(statement_timeout_sec * 1000)}"
    engine = create_engine(parsed, poolclass=sa.NullPool, isolation_level="REPEATABLE READ")

    @sa.event.listens_for(engine, "do_connect")
    def _read_only_session(dialect: Any, conn_rec: Any, cargs: list[Any], cparams: dict[str, Any]) -> None:
        cparams["options"] = options

    return engine


def _sqlite_read_only(engine: Engine, path: Path, statement_timeout_sec: float | None) -> None:
    @sa.event.listens_for(engine, "do_connect")
    def _open_read_only(dialect: Any, conn_rec: Any, cargs: list[Any], cparams: dict[str, Any]) -> None:
        cargs[0] = f"{path.absolute().as_uri()}?mode=ro"
        cparams["uri"] = True

    @sa.event.listens_for(engine, "connect")
    def _we_begin(dbapi_connection: Any, record: Any) -> None:
        # The driver would run each SELECT in its own implicit transaction; BEGIN is ours.
        dbapi_connection.isolation_level = None
        if statement_timeout_sec is not None:
            deadline = record.info.setdefault(_DEADLINE, [math.inf])
            # Called every few thousand steps of the running statement; non-zero interrupts it.
            dbapi_connection.set_progress_handler(lambda: int(time.monotonic() > deadline[0]), 10_000)

    @sa.event.listens_for(engine, "begin")
    def _begin(conn: sa.Connection) -> None:
        conn.exec_driver_sql("BEGIN")

    if statement_timeout_sec is not None:

        @sa.event.listens_for(engine, "before_cursor_execute")
        def _start_clock(conn: sa.Connection, *_args: Any) -> None:
            conn.connection.info[_DEADLINE][0] = time.monotonic() + statement_timeout_sec


_DEADLINE = "aris3nb_statement_deadline"
