"""Which database a backup came from, and whether a target is that database.

A manifest's ``source`` records the engine, the server (host and port as the URL named
them, and PostgreSQL's ``system_identifier`` where the role may read it), the database,
the schema its tables live in, and the SQLite file's resolved path. Restores, the drill a
rollback relies on and the rollback itself compare it with the live target: a backup of
another database is never chosen, and restoring one by name needs a second confirmation.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import sqlalchemy as sa

from aris3nb.core.db import create_engine, database_errors, engine_name, parse_database_url, sqlite_path

#: The fields of ``source`` that say *which* database (``server_version`` is only a fact).
IDENTITY_FIELDS = ("engine", "system_identifier", "server", "database", "schema", "path")


def postgres_identity(conn: sa.Connection) -> dict[str, Any]:
    """The live PostgreSQL database's identity, read on ``conn`` (any transaction state
    that allows a plain SELECT; nothing fails the transaction)."""
    identity: dict[str, Any] = {
        "database": conn.exec_driver_sql("SELECT current_database()").scalar_one(),
        "schema": conn.exec_driver_sql("SELECT current_schema()").scalar_one() or "public",
        "system_identifier": None,
    }
    # pg_control_system() may be revoked from the role: ask first, so no error aborts the snapshot.
    if conn.exec_driver_sql("SELECT has_function_privilege('pg_control_system()', 'EXECUTE')").scalar_one():
        identity["system_identifier"] = str(
            conn.exec_driver_sql("SELECT system_identifier FROM pg_control_system()").scalar_one()
        )
    return identity


def server_of(url: str) -> str:
    """``host:port`` of a PostgreSQL URL as it names them (defaults filled in)."""
    parsed = parse_database_url(url)
    return f"{parsed.host or 'localhost'}:{parsed.port or 5432}"


def describe(url: str) -> dict[str, Any]:
    """The identity of the database at ``url``, as a manifest's ``source`` records it."""
    engine = engine_name(url)
    if engine == "sqlite":
        path = sqlite_path(url)
        return {"engine": "sqlite", "database": path.name, "path": str(Path(path).resolve()), "schema": "main"}
    db = create_engine(url, poolclass=sa.NullPool)
    try:
        with database_errors(url, "read which database the target is"), db.connect() as conn:
            identity = postgres_identity(conn)
    finally:
        db.dispose()
    return {"engine": "postgresql", "server": server_of(url), **identity}


def mismatch(recorded: dict[str, Any], live: dict[str, Any]) -> str | None:
    """Why a backup whose ``source`` is ``recorded`` is not of the database ``live``
    describes, or None when it is. A source that records too little to tell is a mismatch."""
    if recorded.get("engine") != live.get("engine"):
        return f"it is of a {recorded.get('engine')} database, the target is {live.get('engine')}"
    if live["engine"] == "sqlite":
        if not recorded.get("path"):
            return "it does not record which SQLite file it came from (made by an older aris3nb)"
        if recorded["path"] != live["path"]:
            return f"it is of the SQLite file {recorded['path']}, the target is {live['path']}"
        return None
    if not recorded.get("server"):
        return "it does not record which server it came from (made by an older aris3nb)"
    if recorded.get("database") != live.get("database"):
        return f"it is of the database {recorded.get('database')!r}, the target is {live.get('database')!r}"
    if (recorded.get("schema") or "public") != (live.get("schema") or "public"):
        return f"its tables are in schema {recorded.get('schema')!r}, the target's in {live.get('schema')!r}"
    ours, theirs = recorded.get("system_identifier"), live.get("system_identifier")
    if ours and theirs:
        if ours != theirs:
            return f"it is of another PostgreSQL cluster (system identifier {ours}, the target's {theirs})"
    elif recorded.get("server") != live.get("server"):
        return f"it is of the server {recorded.get('server')}, the target is {live.get('server')}"
    return None


def label(source: dict[str, Any]) -> str:
    """A short, password-free name of a source for messages."""
    if source.get("engine") == "sqlite":
        return f"sqlite {source.get('path') or source.get('database')}"
    schema = source.get("schema")
    return f"postgresql {source.get('server', '?')}/{source.get('database')}" + (
        f" (schema {schema})" if schema and schema != "public" else ""
    )
