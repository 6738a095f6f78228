"""PostgreSQL backups with the real tools: ``pg_dump`` (directory format, parallel jobs)
reads a snapshot that aris3nb exported from a read-only REPEATABLE READ transaction, and
the same transaction computes every table's digest while pg_dump runs; so a concurrent
writer can never make counts, digests and dump disagree. Drills restore with
``pg_restore`` into a database created for the drill and always dropped afterwards.

Passwords reach the tools through ``PGPASSWORD`` in their environment, never their
command line; what the tools print is scrubbed before it is shown.
"""

from __future__ import annotations

import contextlib
import re
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import psycopg
import sqlalchemy as sa
from psycopg import sql

from aris3nb.backup import pg_sessions
from aris3nb.backup.digest import Deadline, RangeReader, TableDigest, digest_ranges, digest_table
from aris3nb.core.db import create_engine, database_errors, parse_database_url
from aris3nb.core.errors import BackupError, DatabaseUnavailable, DeadlineExceeded
from aris3nb.core.redact import redact_text, redact_url, url_password

DUMP_DIR = "database/dump"
DUMP_JOBS = 2
SCRATCH_PREFIX = "aris3nb_drill_"
_BLOCK_ROWS = 5_000
#: Settings that make COPY's text output the same in every session.
_CANONICAL_SESSION = ("SET TIME ZONE 'UTC'", "SET DateStyle = 'ISO, YMD'", "SET IntervalStyle = 'postgres'",
                      "SET extra_float_digits = 1", "SET bytea_output = 'hex'")


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise BackupError(f"{name} is not installed or not on PATH; install the PostgreSQL client tools (15 or newer)")
    return path


def tool_version(name: str) -> str:
    done = subprocess.run([_tool(name), "--version"], capture_output=True, text=True, timeout=30)
    return done.stdout.strip()


def libpq_target(url: str, name: str | None = None) -> tuple[str, dict[str, str]]:
    """A libpq URI without the password, and the environment that carries it (and, when
    given, the ``application_name`` of the tool's sessions)."""
    parsed = parse_database_url(url)
    env = pg_sessions.tool_environment(url, name or pg_sessions.session_name("tool"))
    bare = parsed.set(drivername="postgresql", password=None).render_as_string(hide_password=False)
    return bare, env


def run_tool(args: list[str], url: str, deadline: Deadline, doing: str, *,
             lock_timeout_sec: float = pg_sessions.LOCK_TIMEOUT_SEC) -> None:
    """Run a PostgreSQL client tool within the deadline and the lock wait allowed; when it
    fails or is stopped, none of its server sessions is left. A failure says what it printed."""
    name = pg_sessions.session_name(args[0].rsplit("/", 1)[-1])
    _, env = libpq_target(url, name)
    with tempfile.TemporaryFile("w+") as errors:  # a file, not a pipe: a chatty tool never blocks on it
        process = subprocess.Popen(args, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                   stderr=errors, text=True)
        watch = pg_sessions.ToolWatch(process, url, name, doing, lock_timeout_sec)
        try:
            watch.wait(deadline.remaining)
        except BaseException:
            watch.give_up()
            raise
        errors.seek(0)
        stderr = errors.read()
    if process.returncode != 0:
        pg_sessions.end_sessions_named(url, name)
        raise BackupError(f"{doing} failed (exit {process.returncode}): {_tool_message(stderr, url)}")


def _tool_message(stderr: str, url: str) -> str:
    lines = [line.strip() for line in stderr.strip().splitlines() if line.strip()]
    errors = [line for line in lines if "error" in line.lower() or "fatal" in line.lower()] or lines
    return redact_text(" | ".join(errors[:3]) or "no message", [url_password(url)])[:600]


def _session(conn: sa.Connection, deadline: Deadline, name: str, lock_timeout_sec: float) -> None:
    """Canonical output, this operation's ``application_name``, and every wait bounded:
    statements by the deadline, lock waits by ``lock_timeout_sec`` (never beyond it)."""
    for statement in _CANONICAL_SESSION:
        conn.exec_driver_sql(statement)
    conn.execute(sa.text("SELECT set_config('application_name', :name, false)"), {"name": name})
    remaining = deadline.remaining()
    if remaining is not None:
        conn.exec_driver_sql(f"SET statement_timeout = {max(1, int(remaining * 1000))}")
    conn.exec_driver_sql(f"SET lock_timeout = {pg_sessions.lock_timeout_ms(lock_timeout_sec, remaining)}")


def current_schema(conn: sa.Connection) -> str:
    """The schema the database's tables are found in: the first of the session's
    ``search_path`` that exists (``public`` unless the target says otherwise)."""
    return str(conn.exec_driver_sql("SELECT current_schema()").scalar_one() or "public")


def table_names(conn: sa.Connection, schema: str) -> list[str]:
    rows = conn.execute(sa.text("SELECT tablename FROM pg_tables WHERE schemaname = :s ORDER BY tablename"), {"s": schema})
    return [r[0] for r in rows]


def table_key(conn: sa.Connection, schema: str, table: str) -> list[str]:
    rows = conn.execute(sa.text(
        "SELECT a.attname FROM pg_index i JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, n) ON true "
        "JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum "
        "WHERE i.indrelid = CAST(:t AS regclass) AND i.indisprimary ORDER BY k.n"
    ), {"t": sql.Identifier(schema, table).as_string(conn.connection.driver_connection)})
    return [r[0] for r in rows]


def _unescape_copy(field: bytes) -> Any:
    if field == b"\\N":
        return None
    text = field.decode()
    if "\\" not in text:
        return text
    return re.sub(r"\\(.)", lambda m: {"t": "\t", "n": "\n", "r": "\r", "\\": "\\"}.get(m[1], m[1]), text)


def _key_range(key: list[str], lower: Sequence[Any] | None, upper: Sequence[Any] | None) -> tuple[sql.Composable, sql.Composable]:
    """The key columns, and the WHERE clause of ``lower < key <= upper`` (keys as literals:
    COPY takes no parameters; their text form is cast by the comparison)."""
    keys = sql.SQL(", ").join(sql.Identifier(k) for k in key)

    def bound(op: str, values: Sequence[Any]) -> sql.Composable:
        return sql.SQL("({}) {} ({})").format(keys, sql.SQL(op), sql.SQL(", ").join(sql.Literal(v) for v in values))

    where = ([bound(">", lower)] if lower is not None else []) + ([bound("<=", upper)] if upper is not None else [])
    return keys, (sql.SQL(" WHERE ") + sql.SQL(" AND ").join(where)) if where else sql.SQL("")


def range_reader(conn: sa.Connection, schema: str, table: str, key: list[str]) -> RangeReader:
    raw = conn.connection.driver_connection
    table_id = sql.Identifier(schema, table)
    width = len(key)

    def read(lower: Sequence[Any] | None, upper: Sequence[Any] | None, limit: int | None) -> Iterator[tuple[int, bytes, list[Any]]]:
        keys, where = _key_range(key, lower, upper)
        if key:
            query = sql.SQL("SELECT {keys}, t.* FROM {table} AS t{where} ORDER BY {keys}").format(
                keys=keys, table=table_id, where=where)
        else:  # no key to page on: all rows, in the order of their text form
            query = sql.SQL("SELECT t.* FROM {table} AS t ORDER BY t::text").format(table=table_id)
        if limit:
            query += sql.SQL(" LIMIT {}").format(sql.Literal(limit))
        with raw.cursor() as cursor, cursor.copy(sql.SQL("COPY ({}) TO STDOUT").format(query)) as copy:
            rows: list[bytes] = []
            for row in copy:
                rows.append(bytes(row))
                if len(rows) == _BLOCK_ROWS:
                    yield len(rows), b"".join(rows), _key_of(rows[-1], width)
                    rows = []
            if rows:
                yield len(rows), b"".join(rows), _key_of(rows[-1], width)

    return read


def sample_rows(url: str, table: str, key: list[str], lower: Sequence[Any] | None, upper: Sequence[Any] | None,
                limit: int) -> list[dict[str, Any]]:
    """The first ``limit`` rows with ``lower < key <= upper``, as column -> value."""
    with _read_only_snapshot(url, Deadline.after(60), "sample rows") as conn, \
            conn.connection.driver_connection.cursor() as cursor:
        keys, where = _key_range(key, lower, upper)
        cursor.execute(sql.SQL("SELECT * FROM {table}{where} ORDER BY {keys} LIMIT {limit}").format(
            table=sql.Identifier(current_schema(conn), table), where=where, keys=keys, limit=sql.Literal(limit)))
        names = [d.name for d in cursor.description or []]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def _key_of(line: bytes, width: int) -> list[Any]:
    return [_unescape_copy(f) for f in line.rstrip(b"\n").split(b"\t")[:width]]


def _digests(conn: sa.Connection, deadline: Deadline, recorded: dict[str, dict[str, Any]] | None) -> dict[str, TableDigest]:
    digests = {}
    schema = current_schema(conn)
    for table in table_names(conn, schema):
        key = table_key(conn, schema, table)
        read = range_reader(conn, schema, table, key)
        if recorded is not None and table in recorded:
            digests[table] = digest_ranges(table, key, recorded[table].get("chunks") or [], read, deadline)
        else:
            digests[table] = digest_table(table, key, read, deadline)
    return digests


def _is_statement_timeout(exc: BaseException) -> bool:
    cause = exc.orig if isinstance(exc, sa.exc.DBAPIError) else exc
    return isinstance(cause, psycopg.errors.QueryCanceled)


def _is_lock_timeout(exc: BaseException) -> bool:
    cause = exc.orig if isinstance(exc, sa.exc.DBAPIError) else exc
    return isinstance(cause, psycopg.errors.LockNotAvailable)


def _in_the_way(url: str, besides: str | None = None) -> str:
    """The other sessions that hold locks or an open transaction (not the operation's own,
    ``besides``), for an error message."""
    try:
        found = [s for s in pg_sessions.other_sessions(url, besides=besides) if s.in_the_way]
    except Exception:  # noqa: BLE001 -- only the message's detail: the lock timeout is the error
        return "(the sessions could not be listed)"
    return "; ".join(str(s) for s in found) or "a session that has since ended"


@contextlib.contextmanager
def _read_only_snapshot(url: str, deadline: Deadline, action: str, *, name: str | None = None,
                        lock_timeout_sec: float = pg_sessions.LOCK_TIMEOUT_SEC) -> Iterator[sa.Connection]:
    """One read-only REPEATABLE READ transaction whose statements stop at the deadline and
    whose lock waits stop at ``lock_timeout_sec``; a statement cancelled by the deadline is
    a ``DeadlineExceeded``, a lock not granted in time a ``BackupError`` naming the sessions
    in the way, any other driver error is translated by ``database_errors``. Failing to
    connect is ``DatabaseUnavailable`` (exit 2); losing the connection once connected is a
    ``BackupError`` (exit 1): the operation ran, and failed, with the server's reason.

    The session is called ``name`` (its operation's ``application_name``); when the block
    fails, every session of that name left on the server is ended before this returns."""
    name = name or pg_sessions.session_name("read")
    engine = create_engine(url, isolation_level="REPEATABLE READ", poolclass=sa.NullPool)
    connected = False
    try:
        with database_errors(url, action), engine.connect() as conn:
            connected = True
            conn.exec_driver_sql("SET TRANSACTION READ ONLY")
            _session(conn, deadline, name, lock_timeout_sec)
            try:
                yield conn
            except (sa.exc.DBAPIError, psycopg.Error) as exc:
                if _is_statement_timeout(exc):
                    raise DeadlineExceeded(f"timeout: a statement ran past the deadline while trying to {action}") from exc
                if _is_lock_timeout(exc):
                    raise BackupError(f"could not {action}: a lock was not granted within {lock_timeout_sec:g} s "
                                      f"(nothing was written); in the way: {_in_the_way(url, name)}") from exc
                raise
            finally:
                # Read-only: nothing to lose. On a connection that died, the rollback's own
                # error ("the connection is lost") must not replace the server's reason.
                with contextlib.suppress(sa.exc.DBAPIError, psycopg.Error):
                    conn.rollback()
    except DatabaseUnavailable as exc:
        if not connected:
            raise
        reason = redact_text(_driver_message(exc.__cause__ or exc), [url_password(url)])
        raise BackupError(f"lost the connection to {redact_url(url)} while trying to {action}: {reason}") from exc
    except BaseException:
        engine.dispose()
        if connected:
            with contextlib.suppress(Exception):  # the server gone too: nothing of ours is left on it
                pg_sessions.end_sessions_named(url, name)
        raise
    finally:
        engine.dispose()


def _driver_message(exc: BaseException) -> str:
    """The server's words in a driver error: its lines joined, SQLAlchemy's trailer dropped."""
    cause = exc.orig if isinstance(exc, sa.exc.DBAPIError) and exc.orig is not None else exc
    lines = [line.strip() for line in str(cause).splitlines() if line.strip()]
    return " | ".join(lines[:2])[:300] or type(cause).__name__


def table_digests(url: str, deadline: Deadline, recorded: dict[str, dict[str, Any]] | None = None) -> dict[str, TableDigest]:
    """Digest every table of ``url`` in one read-only snapshot."""
    with _read_only_snapshot(url, deadline, "digest the tables") as conn:
        return _digests(conn, deadline, recorded)


def snapshot_dump(url: str, folder: Path, deadline: Deadline, read_snapshot: Any, *,
                  lock_timeout_sec: float = pg_sessions.LOCK_TIMEOUT_SEC) -> tuple[dict[str, TableDigest], Any]:
    """pg_dump the database into ``folder/database/dump`` and digest it, in one snapshot.

    ``read_snapshot(conn)`` reads whatever else the manifest needs (revision, schema) in the
    same snapshot; its result is returned beside the digests.

    No wait can close a cycle outside the server's sight: the snapshot session takes every
    table's ACCESS SHARE lock before it exports the snapshot (so no ALTER can change a table
    under it), pg_dump waits at most ``lock_timeout_sec`` for its own locks (a migration
    queued meanwhile makes it fail fast, never wait on us forever), and every session of the
    backup — ours and pg_dump's, one ``application_name`` — is ended when it gives up.
    """
    target = folder / DUMP_DIR
    target.parent.mkdir(parents=True, exist_ok=True)
    name = pg_sessions.session_name("backup")
    bare, env = libpq_target(url, f"{name}-pg_dump")  # ended with the backup's own sessions (a prefix)
    with _read_only_snapshot(url, deadline, "back up the database", name=name, lock_timeout_sec=lock_timeout_sec) as conn:
        schema = current_schema(conn)
        tables = table_names(conn, schema)
        if tables:
            conn.exec_driver_sql(sql.SQL("LOCK TABLE {} IN ACCESS SHARE MODE").format(
                sql.SQL(", ").join(sql.Identifier(schema, t) for t in tables)).as_string(conn.connection.driver_connection))
        snapshot_id = conn.exec_driver_sql("SELECT pg_export_snapshot()").scalar_one()
        wait_ms = pg_sessions.lock_timeout_ms(lock_timeout_sec, deadline.remaining())
        args = [_tool("pg_dump"), "--format=directory", f"--jobs={DUMP_JOBS}", f"--snapshot={snapshot_id}",
                f"--lock-wait-timeout={wait_ms}", "--no-password", f"--file={target}", f"--dbname={bare}"]
        with tempfile.TemporaryFile("w+") as errors:
            process = subprocess.Popen(args, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                       stderr=errors, text=True)
            try:
                digests = _digests(conn, deadline, None)
                extra = {**read_snapshot(conn), "schema": schema}
                process.wait(timeout=deadline.remaining())
            except subprocess.TimeoutExpired as exc:
                raise DeadlineExceeded("timeout: pg_dump ran past the deadline; its server sessions were ended") from exc
            finally:
                if process.poll() is None:
                    process.kill()
                    process.wait()
            errors.seek(0)
            stderr = errors.read()
        if process.returncode != 0:
            if "canceling statement due to statement timeout" in stderr:  # how --lock-wait-timeout ends
                raise BackupError(f"pg_dump could not take its table locks within {wait_ms / 1000:g} s (nothing was "
                                  f"written; a migration or another lock holder is in the way: {_in_the_way(url, name)})")
            raise BackupError(f"pg_dump failed (exit {process.returncode}): {_tool_message(stderr, url)}")
    return digests, extra


def server_version(conn: sa.Connection) -> str:
    return str(conn.exec_driver_sql("SHOW server_version").scalar_one())


def with_search_path(url: str, schema: str | None) -> str:
    """``url`` whose sessions find their tables in ``schema`` (the source's schema, where a
    restored copy has them too); unchanged for ``public``."""
    parsed = parse_database_url(url)
    if not schema or schema == "public":
        return parsed.render_as_string(hide_password=False)
    return parsed.update_query_dict({"options": f"-csearch_path={schema}"}).render_as_string(hide_password=False)


@contextlib.contextmanager
def scratch_database(server_url: str, label: str, schema: str | None = None) -> Iterator[str]:
    """A new database on the server of ``server_url``, dropped afterwards whatever happens;
    its URL finds tables in ``schema``."""
    parsed = parse_database_url(server_url)
    slug = re.sub(r"[^a-z0-9_]", "_", label.lower())[:24]
    name = f"{SCRATCH_PREFIX}{slug}_{uuid.uuid4().hex[:8]}"
    admin_url = parsed.set(database="postgres", query={})
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT", poolclass=sa.NullPool)
    try:
        with database_errors(server_url, "create the drill's scratch database"), admin.connect() as conn:
            conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
            conn.exec_driver_sql(f"COMMENT ON DATABASE \"{name}\" IS 'aris3nb drill scratch: disposable, dropped after the drill'")
        try:
            yield with_search_path(parsed.set(database=name).render_as_string(hide_password=False), schema)
        finally:
            with database_errors(server_url, "drop the drill's scratch database"), admin.connect() as conn:
                conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        admin.dispose()


def restore(dump_dir: Path, target_url: str, deadline: Deadline, *, clean: bool,
            lock_timeout_sec: float = pg_sessions.LOCK_TIMEOUT_SEC) -> None:
    """pg_restore a dump into ``target_url``; ``clean`` drops the objects it restores first,
    all in one transaction (a rollback restore: a failure leaves the target as it was);
    otherwise parallel (a drill's empty scratch). A lock wait longer than ``lock_timeout_sec``
    or the deadline stops it and ends its server sessions."""
    bare, _ = libpq_target(target_url)
    args = [_tool("pg_restore"), "--no-owner", "--no-privileges", "--exit-on-error", "--no-password", f"--dbname={bare}"]
    args += ["--clean", "--if-exists", "--single-transaction"] if clean else [f"--jobs={DUMP_JOBS}"]
    run_tool([*args, str(dump_dir)], target_url, deadline, "pg_restore", lock_timeout_sec=lock_timeout_sec)


def structural_problems(url: str, deadline: Deadline) -> list[str]:
    """Constraints that are not validated, and foreign keys the tables do not satisfy."""
    with _read_only_snapshot(url, deadline, "check constraints") as conn:
        rows = conn.exec_driver_sql(
            "SELECT conrelid::regclass::text, conname FROM pg_constraint "
            "WHERE connamespace = current_schema()::regnamespace AND NOT convalidated ORDER BY 1, 2"
        ).all()
        return [f"constraint {name} on {table} is not validated" for table, name in rows]
