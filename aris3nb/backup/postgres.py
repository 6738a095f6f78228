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
import hashlib
import json
import re
import shutil
import subprocess
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, cast

import psycopg
import sqlalchemy as sa
from psycopg import sql

from aris3nb.backup import pg_sessions
from aris3nb.backup.digest import (
    ROW_DIGEST_BYTES,
    Deadline,
    KeysOf,
    RangeReader,
    RowIndexWriter,
    TableDigest,
    digest_ranges,
    digest_table,
    native,
)
from aris3nb.core.db import create_engine, database_errors, parse_database_url
from aris3nb.core.errors import BackupError, DatabaseUnavailable, DeadlineExceeded
from aris3nb.core.redact import redact_text, redact_url, url_password

DUMP_DIR = "database/dump"
DUMP_JOBS = 2
SCRATCH_PREFIX = "aris3nb_drill_"
_BLOCK_ROWS = 5_000
#: Settings that make COPY's text output the same in every session.
_CANONICAL_SESSION = (
    "SET TIME ZONE 'UTC'",
    "SET DateStyle = 'ISO, YMD'",
    "SET IntervalStyle = 'postgres'",
    "SET extra_float_digits = 1",
    "SET bytea_output = 'hex'",
)


def _driver(conn: sa.Connection) -> psycopg.Connection[Any]:
    """The psycopg connection under a SQLAlchemy one (COPY and identifiers need it)."""
    driver = conn.connection.driver_connection
    if driver is None:
        raise BackupError("the PostgreSQL connection was closed under aris3nb")
    return cast("psycopg.Connection[Any]", driver)


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise BackupError(f"{name} is not installed or not on PATH; install the PostgreSQL client tools (15 or newer)")
    return path


def tool_version(name: str) -> str:
    done = subprocess.run([_tool(name), "--version"], capture_output=True, text=True, timeout=30, check=False)
    return done.stdout.strip()


def libpq_target(url: str, name: str | None = None) -> tuple[str, dict[str, str]]:
    """A libpq URI without the password, and the environment that carries it (and, when
    given, the ``application_name`` of the tool's sessions)."""
    env = pg_sessions.tool_environment(url, name or pg_sessions.session_name("tool"))
    bare = pg_sessions.without_password(url)[0].set(drivername="postgresql").render_as_string(hide_password=False)
    return bare, env


def run_tool(
    args: list[str], url: str, deadline: Deadline, doing: str, *, lock_timeout_sec: float = pg_sessions.LOCK_TIMEOUT_SEC
) -> None:
    """Run a PostgreSQL client tool within the deadline and the lock wait allowed; when it
    fails or is stopped, none of its server sessions is left. A failure says what it printed."""
    name = pg_sessions.session_name(args[0].rsplit("/", 1)[-1])
    _, env = libpq_target(url, name)
    with tempfile.TemporaryFile("w+") as errors:  # a file, not a pipe: a chatty tool never blocks on it
        process = subprocess.Popen(
            args, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=errors, text=True
        )
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
    rows = conn.execute(
        sa.text("SELECT tablename FROM pg_tables WHERE schemaname = :s ORDER BY tablename"), {"s": schema}
    )
    return [r[0] for r in rows]


def table_key(conn: sa.Connection, schema: str, table: str) -> list[str]:
    rows = conn.execute(
        sa.text(
            "SELECT a.attname FROM pg_index i JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, n) ON true "
            "JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum "
            "WHERE i.indrelid = CAST(:t AS regclass) AND i.indisprimary ORDER BY k.n"
        ),
        {"t": sql.Identifier(schema, table).as_string(_driver(conn))},
    )
    return [r[0] for r in rows]


def _unescape_copy(field: bytes) -> Any:
    if field == b"\\N":
        return None
    text = field.decode()
    if "\\" not in text:
        return text
    return re.sub(r"\\(.)", lambda m: {"t": "\t", "n": "\n", "r": "\r", "\\": "\\"}.get(m[1], m[1]), text)


def _key_range(
    key: list[str], lower: Sequence[Any] | None, upper: Sequence[Any] | None
) -> tuple[sql.Composable, sql.Composable]:
    """The key columns, and the WHERE clause of ``lower < key <= upper`` (keys as literals:
    COPY takes no parameters; their text form is cast by the comparison)."""
    keys = sql.SQL(", ").join(sql.Identifier(k) for k in key)

    def bound(op: str, values: Sequence[Any]) -> sql.Composable:
        return sql.SQL("({}) {} ({})").format(keys, sql.SQL(op), sql.SQL(", ").join(sql.Literal(v) for v in values))

    where = ([bound(">", lower)] if lower is not None else []) + ([bound("<=", upper)] if upper is not None else [])
    return keys, (sql.SQL(" WHERE ") + sql.SQL(" AND ").join(where)) if where else sql.SQL("")


def range_reader(conn: sa.Connection, schema: str, table: str, key: list[str]) -> RangeReader:
    raw = _driver(conn)
    table_id = sql.Identifier(schema, table)
    width = len(key)

    def read(
        lower: Sequence[Any] | None, upper: Sequence[Any] | None, limit: int | None
    ) -> Iterator[tuple[list[bytes], list[Any]]]:
        keys, where = _key_range(key, lower, upper)
        if key:
            query = sql.SQL("SELECT {keys}, t.* FROM {table} AS t{where} ORDER BY {keys}").format(
                keys=keys, table=table_id, where=where
            )
        else:  # no key to page on: all rows, in the order of their text form
            query = sql.SQL("SELECT t.* FROM {table} AS t ORDER BY t::text").format(table=table_id)
        if limit:
            query += sql.SQL(" LIMIT {}").format(sql.Literal(limit))
        with raw.cursor() as cursor, cursor.copy(sql.SQL("COPY ({}) TO STDOUT").format(query)) as copy:
            rows: list[bytes] = []
            for row in copy:
                rows.append(bytes(row))
                if len(rows) == _BLOCK_ROWS:
                    yield rows, _key_of(rows[-1], width)
                    rows = []
            if rows:
                yield rows, _key_of(rows[-1], width)

    return read


def keys_reader(conn: sa.Connection, schema: str, table: str, key: list[str]) -> KeysOf | None:
    """How the row index reads the keys of a block's ``COPY`` lines (each starts with the
    key columns): one integer column as integers, any other key as its text values; None
    for a table without a key (its rows are named by their digest)."""
    if not key:
        return None
    width = len(key)
    types: dict[str, str] = dict(
        conn.execute(
            sa.text(
                "SELECT a.attname, a.atttypid::regtype::text FROM pg_attribute a "
                "WHERE a.attrelid = CAST(:t AS regclass) AND a.attnum > 0 AND NOT a.attisdropped"
            ),
            {"t": sql.Identifier(schema, table).as_string(_driver(conn))},
        ).all()
    )
    if width == 1 and types.get(key[0]) in ("smallint", "integer", "bigint"):
        import numpy as np  # only backups and drills need it: imported when used

        def integers(lines: list[bytes]) -> Any:
            fast = native()
            if fast is not None:
                return np.frombuffer(fast.leading_integers(lines), dtype="<i8")
            return np.fromstring(
                b",".join([line.partition(b"\t")[0] for line in lines]).decode(), dtype=np.int64, sep=","
            )

        return integers

    def texts(lines: list[bytes]) -> list[list[Any]]:
        return [[_unescape_copy(f) for f in line.split(b"\t", width)[:width]] for line in lines]

    return texts


def sample_rows(
    url: str, table: str, key: list[str], lower: Sequence[Any] | None, upper: Sequence[Any] | None, limit: int
) -> list[dict[str, Any]]:
    """The first ``limit`` rows with ``lower < key <= upper``, as column -> value."""
    with (
        _read_only_snapshot(url, Deadline.after(60), "sample rows") as conn,
        _driver(conn).cursor() as cursor,
    ):
        keys, where = _key_range(key, lower, upper)
        cursor.execute(
            sql.SQL("SELECT * FROM {table}{where} ORDER BY {keys} LIMIT {limit}").format(
                table=sql.Identifier(current_schema(conn), table), where=where, keys=keys, limit=sql.Literal(limit)
            )
        )
        names = [d.name for d in cursor.description or []]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def _key_tokens(keys_of: KeysOf | None, lines: list[bytes]) -> list[str]:
    """Each line's key as the row index writes it (JSON of the key values)."""
    if keys_of is None or not lines:
        return []
    keys = keys_of(lines)
    values = [[int(v)] for v in keys] if not isinstance(keys, list) else keys
    return [json.dumps(k, ensure_ascii=False) for k in values]


def _in_keys(key: list[str], keys: list[list[Any]]) -> sql.Composable:
    columns = sql.SQL(", ").join(sql.Identifier(k) for k in key)
    tuples = sql.SQL(", ").join(sql.SQL("({})").format(sql.SQL(", ").join(sql.Literal(v) for v in k)) for k in keys)
    return sql.SQL("({}) IN ({})").format(columns, tuples)


def _rows_with_digests(
    cursor: psycopg.Cursor[Any], source: sql.Composable, key: list[str], keys_of: KeysOf | None, where: sql.Composable
) -> dict[str, tuple[dict[str, Any], bytes]]:
    """The rows of ``source`` that ``where`` selects, by key token: values and row digest
    (the first bytes of the SHA-256 of the row's ``COPY`` line, as the backup computed it)."""
    keys = sql.SQL(", ").join(sql.Identifier(k) for k in key)
    query = sql.SQL("SELECT {keys}, t.* FROM {source} AS t WHERE {where} ORDER BY {keys}").format(
        keys=keys, source=source, where=where
    )
    with cursor.copy(sql.SQL("COPY ({}) TO STDOUT").format(query)) as copy:
        lines = [bytes(line) for line in copy]
    cursor.execute(
        sql.SQL("SELECT t.* FROM {source} AS t WHERE {where} ORDER BY {keys}").format(
            source=source, where=where, keys=keys
        )
    )
    names = [d.name for d in cursor.description or []]
    values = [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
    return {
        token: (row, hashlib.sha256(line).digest()[:ROW_DIGEST_BYTES])
        for token, line, row in zip(_key_tokens(keys_of, lines), lines, values, strict=True)
    }


def rows_by_key(url: str, table: str, keys: list[list[Any]]) -> dict[str, tuple[dict[str, Any], bytes]]:
    """The rows of ``table`` with the given keys (as the row index holds them), by key token,
    each with its values and its row digest."""
    with (
        _read_only_snapshot(url, Deadline.after(120), "read the rows the drill names") as conn,
        _driver(conn).cursor() as cursor,
    ):
        schema = current_schema(conn)
        key = table_key(conn, schema, table)
        keys = [k for k in keys if len(k) == len(key)]
        if not key or not keys:
            return {}
        return _rows_with_digests(
            cursor, sql.Identifier(schema, table), key, keys_reader(conn, schema, table, key), _in_keys(key, keys)
        )


def rows_by_digest(url: str, table: str, digests: set[bytes]) -> dict[bytes, dict[str, Any]]:
    """Rows of a table without a key whose row digest is one of ``digests`` (their values as
    text, as ``COPY`` writes them): such rows have nothing else to be found by."""
    found: dict[bytes, dict[str, Any]] = {}
    with (
        _read_only_snapshot(url, Deadline.after(300), "read the rows the drill names") as conn,
        _driver(conn).cursor() as cursor,
    ):
        schema = current_schema(conn)
        columns = [
            r[0]
            for r in conn.execute(
                sa.text(
                    "SELECT attname FROM pg_attribute WHERE attrelid = CAST(:t AS regclass) AND attnum > 0 "
                    "AND NOT attisdropped ORDER BY attnum"
                ),
                {"t": sql.Identifier(schema, table).as_string(cursor)},
            )
        ]
        query = sql.SQL("COPY (SELECT t.* FROM {} AS t ORDER BY t::text) TO STDOUT").format(
            sql.Identifier(schema, table)
        )
        with cursor.copy(query) as copy:
            for line in copy:
                digest = hashlib.sha256(bytes(line)).digest()[:ROW_DIGEST_BYTES]
                if digest in digests and digest not in found:
                    fields = bytes(line).rstrip(b"\n").split(b"\t")
                    found[digest] = dict(zip(columns, [_unescape_copy(f) for f in fields], strict=False))
    return found


#: Key column types whose text form is the same in every session: a key of these types is
#: found in the dump's data by its text (a timestamp key would depend on the time zone).
_STABLE_KEY_TYPES = {"smallint", "integer", "bigint", "uuid", "text", "character varying", "character", "numeric"}


def dump_rows_by_key(
    dump_dir: Path, url: str, table: str, keys: list[list[Any]], deadline: Deadline
) -> dict[str, tuple[dict[str, Any], bytes]]:
    """The rows with the given keys as the backup's own dump holds them, by key token, each
    with its values and its row digest computed as the backup computed it.

    ``pg_restore --data-only --table`` reads the table's data out of the dump; the lines
    whose key is wanted are loaded into a temporary table of the drill's scratch database
    (``url``: never the source) shaped like the table, and read back as the digests read
    the table: in the canonical session, as ``COPY`` text. A row of the dump whose digest
    is the one recorded in the row index is the recorded row."""
    engine = create_engine(url, poolclass=sa.NullPool)
    try:
        with engine.connect() as conn:
            _session(conn, deadline, pg_sessions.session_name("drill-diff"), pg_sessions.LOCK_TIMEOUT_SEC)
            schema = current_schema(conn)
            key = table_key(conn, schema, table)
            raw = _driver(conn)
            types: dict[str, str] = dict(
                conn.execute(
                    sa.text(
                        "SELECT attname, atttypid::regtype::text FROM pg_attribute "
                        "WHERE attrelid = CAST(:t AS regclass) AND attnum > 0 AND NOT attisdropped"
                    ),
                    {"t": sql.Identifier(schema, table).as_string(raw)},
                ).all()
            )
            if not key or any(types.get(k) not in _STABLE_KEY_TYPES for k in key):
                return {}
            wanted = {tuple(str(v) for v in k) for k in keys if len(k) == len(key)}
            columns, lines = _dump_lines(dump_dir, url, schema, table, key, wanted, deadline)
            if not lines:
                return {}
            temporary = sql.Identifier("aris3nb_backup_rows")
            with raw.cursor() as cursor:
                cursor.execute(
                    sql.SQL("CREATE TEMPORARY TABLE {} (LIKE {})").format(temporary, sql.Identifier(schema, table))
                )
                with cursor.copy(
                    sql.SQL("COPY {} ({}) FROM STDIN").format(
                        temporary, sql.SQL(", ").join(sql.Identifier(c) for c in columns)
                    )
                ) as copy:
                    for line in lines:
                        copy.write(line)
                found = _rows_with_digests(
                    cursor, temporary, key, keys_reader(conn, schema, table, key), sql.SQL("true")
                )
            conn.rollback()
            return found
    except (sa.exc.DBAPIError, psycopg.Error) as exc:
        raise BackupError(f"could not read {table}'s rows from the backup's dump: {_driver_message(exc)}") from exc
    finally:
        engine.dispose()


_COPY_HEADER = re.compile(rb"^COPY (?P<table>.+?) \((?P<columns>.*)\) FROM stdin;$")


def _dump_lines(
    dump_dir: Path, url: str, schema: str, table: str, key: list[str], wanted: set[tuple[str, ...]], deadline: Deadline
) -> tuple[list[str], list[bytes]]:
    """The dump's column list of ``table`` and its data lines whose key text is ``wanted``."""
    args = [_tool("pg_restore"), "--data-only", f"--schema={schema}", f"--table={table}", "--file=-", str(dump_dir)]
    columns: list[str] = []
    lines: list[bytes] = []
    with tempfile.TemporaryFile("w+") as errors:
        # Reading a dump into a file (stdout) connects to no server: no password, no session.
        process = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=errors)
        assert process.stdout is not None
        try:
            positions: list[int] = []
            in_data = False
            for number, line in enumerate(process.stdout):
                if not in_data:
                    header = _COPY_HEADER.match(line.rstrip(b"\n"))
                    if header:
                        columns = [_unquote_ident(c.strip()) for c in header["columns"].decode().split(",")]
                        positions = [columns.index(k) for k in key]
                        in_data = True
                    continue
                if line == b"\\.\n":
                    break
                fields = line.rstrip(b"\n").split(b"\t", max(positions) + 1)
                if tuple(str(_unescape_copy(fields[p])) for p in positions) in wanted:
                    lines.append(line)
                if number % 65_536 == 0:
                    deadline.check(f"reading {table} from the backup's dump")
            process.stdout.close()
            process.wait(timeout=deadline.remaining())
        except subprocess.TimeoutExpired as exc:
            raise DeadlineExceeded(f"timeout: reading {table} from the backup's dump ran past the deadline") from exc
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
        if process.returncode not in (0, None) and not lines:
            errors.seek(0)
            raise BackupError(f"pg_restore could not read {table} from the dump: {_tool_message(errors.read(), url)}")
    return columns, lines


def _unquote_ident(name: str) -> str:
    return name[1:-1].replace('""', '"') if len(name) >= 2 and name[0] == name[-1] == '"' else name


def _key_of(line: bytes, width: int) -> list[Any]:
    return [_unescape_copy(f) for f in line.rstrip(b"\n").split(b"\t")[:width]]


def _digests(
    conn: sa.Connection,
    deadline: Deadline,
    recorded: dict[str, dict[str, Any]] | None,
    index: RowIndexWriter | None = None,
    exclude: frozenset[str] = frozenset(),
) -> dict[str, TableDigest]:
    """Every table's digests (but those in ``exclude``); with ``index`` (a backup) each
    chunk's row digests and keys go to it; with ``recorded`` (a drill) the rows of a chunk
    that differs are kept."""
    digests = {}
    schema = current_schema(conn)
    for table in table_names(conn, schema):
        if table in exclude:
            continue
        key = table_key(conn, schema, table)
        read = range_reader(conn, schema, table, key)
        if recorded is not None and table in recorded:
            chunks = recorded[table].get("chunks") or []
            keys_of = keys_reader(conn, schema, table, key) if any(c.get("index") for c in chunks) else None
            digests[table] = digest_ranges(table, key, chunks, read, deadline, keys_of=keys_of)
        else:
            keys_of = keys_reader(conn, schema, table, key) if index is not None else None
            digests[table] = digest_table(table, key, read, deadline, index=index, keys_of=keys_of)
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
def _read_only_snapshot(
    url: str,
    deadline: Deadline,
    action: str,
    *,
    name: str | None = None,
    lock_timeout_sec: float = pg_sessions.LOCK_TIMEOUT_SEC,
) -> Iterator[sa.Connection]:
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
                    raise DeadlineExceeded(
                        f"timeout: a statement ran past the deadline while trying to {action}"
                    ) from exc
                if _is_lock_timeout(exc):
                    raise BackupError(
                        f"could not {action}: a lock was not granted within {lock_timeout_sec:g} s "
                        f"(nothing was written); in the way: {_in_the_way(url, name)}"
                    ) from exc
                raise
            except BaseException:
                # Stopped mid-statement (Ctrl-C, SIGTERM in a COPY): the connection is in no state
                # to be rolled back or reset by the pool (which would log a traceback); it is
                # closed as it is, and the session ended below.
                with contextlib.suppress(Exception):
                    conn.invalidate()
                raise
            finally:
                # Read-only: nothing to lose. On a connection that died, the rollback's own
                # error ("the connection is lost") must not replace the server's reason.
                if not conn.invalidated:
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


def table_digests(
    url: str, deadline: Deadline, recorded: dict[str, dict[str, Any]] | None = None
) -> dict[str, TableDigest]:
    """Digest every table of ``url`` in one read-only snapshot (over the recorded chunks'
    key ranges when ``recorded`` is given, keeping the rows of a chunk that differs)."""
    with _read_only_snapshot(url, deadline, "digest the tables") as conn:
        return _digests(conn, deadline, recorded)


def snapshot_dump(
    url: str,
    folder: Path,
    deadline: Deadline,
    read_snapshot: Any,
    *,
    lock_timeout_sec: float = pg_sessions.LOCK_TIMEOUT_SEC,
    index: RowIndexWriter | None = None,
    exclude: frozenset[str] = frozenset(),
    on_file: Callable[[Path], None] | None = None,
) -> tuple[dict[str, TableDigest], Any]:
    """pg_dump the database into ``folder/database/dump`` and digest it, in one snapshot;
    the digests' pass writes each chunk's row digests and keys to ``index`` when given.
    The rows of the tables in ``exclude`` are neither dumped nor digested (their schema is).

    ``on_file(path)``, when given, is told each table's data file as soon as pg_dump has
    written and closed it (its ``finished item N TABLE DATA`` line, ``--verbose``), while the
    dump goes on — from a watching thread, so it must hand the file on, not work on it there.
    The other files (``toc.dat``, written last; large objects) are whole once pg_dump exits.

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
    with _read_only_snapshot(
        url, deadline, "back up the database", name=name, lock_timeout_sec=lock_timeout_sec
    ) as conn:
        schema = current_schema(conn)
        tables = table_names(conn, schema)
        if tables:
            conn.exec_driver_sql(
                sql.SQL("LOCK TABLE {} IN ACCESS SHARE MODE")
                .format(sql.SQL(", ").join(sql.Identifier(schema, t) for t in tables))
                .as_string(_driver(conn))
            )
        snapshot_id = conn.exec_driver_sql("SELECT pg_export_snapshot()").scalar_one()
        wait_ms = pg_sessions.lock_timeout_ms(lock_timeout_sec, deadline.remaining())
        args = [
            _tool("pg_dump"),
            "--format=directory",
            f"--jobs={DUMP_JOBS}",
            f"--snapshot={snapshot_id}",
            f"--lock-wait-timeout={wait_ms}",
            "--no-password",
            f"--file={target}",
            f"--dbname={bare}",
        ]
        args += [f"--exclude-table-data={_pattern(schema)}.{_pattern(t)}" for t in sorted(set(exclude) & set(tables))]
        if on_file is not None:
            args.append("--verbose")
            env = {**env, "LC_MESSAGES": "C"}  # the line read below is pg_dump's own, untranslated
        # Named: the watcher opens it again (its own offset; the parent's is pg_dump's too).
        with tempfile.NamedTemporaryFile("w+", prefix="aris3nb-pg_dump-", suffix=".log") as errors:
            # restore_signals=False: SIGXFSZ stays ignored, as in this process, so a file-size
            # limit is an error pg_dump reports ("File too large"), not a signal that kills one
            # of its workers without a word ("a worker process died unexpectedly").
            process = subprocess.Popen(
                args,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=errors,
                text=True,
                restore_signals=False,
            )
            watch = _FinishedFiles(errors.name, target, process, on_file) if on_file is not None else None
            try:
                digests = _digests(conn, deadline, None, index, frozenset(exclude))
                extra = {**read_snapshot(conn), "schema": schema}
                process.wait(timeout=deadline.remaining())
            except subprocess.TimeoutExpired as exc:
                raise DeadlineExceeded(
                    "timeout: pg_dump ran past the deadline; its server sessions were ended"
                ) from exc
            finally:
                if process.poll() is None:
                    process.kill()
                    process.wait()
                if watch is not None:
                    watch.join()
            errors.seek(0)
            stderr = errors.read()
        if process.returncode != 0:
            if "canceling statement due to statement timeout" in stderr:  # how --lock-wait-timeout ends
                raise BackupError(
                    f"pg_dump could not take its table locks within {wait_ms / 1000:g} s (nothing was "
                    f"written; a migration or another lock holder is in the way: {_in_the_way(url, name)})"
                )
            raise BackupError(f"pg_dump failed (exit {process.returncode}): {_tool_message(stderr, url)}")
    return digests, extra


#: pg_dump's leader says so of each table's data file it has from a worker. Its processes share
#: one standard error and each message is several writes (the program's name, a space, the
#: text), so another process's message may come between: before "finished item" a line may
#: hold any mix of "pg_dump:" and spaces. Anchored there, a table's name never matches.
_FINISHED = re.compile(r"^(?:pg_dump:|[ \t])*finished item (\d+) TABLE DATA ", re.MULTILINE)


class _FinishedFiles:
    """Watches what pg_dump prints (into ``stderr_path``, a file: a chatty tool never blocks
    on it) and tells ``on_file`` each table data file it has finished (``<dump id>.dat``, with
    its compression's suffix), once, while it runs."""

    def __init__(self, stderr_path: str, target: Path, process: subprocess.Popen[str], on_file: Any) -> None:
        self.stderr_path, self.target, self.process, self.on_file = stderr_path, target, process, on_file
        self.told: set[str] = set()
        self.thread = threading.Thread(target=self._watch, name="aris3nb-pg_dump-files", daemon=True)
        self.thread.start()

    def _watch(self) -> None:
        with open(self.stderr_path, encoding="utf-8", errors="replace") as text:
            pending = ""
            while True:
                ended = self.process.poll() is not None  # read once more after it ended
                pending += text.read()
                complete, _, pending = pending.rpartition("\n")
                for item in _FINISHED.findall(complete):
                    for path in sorted(self.target.glob(f"{item}.dat*")):
                        if path.name not in self.told:
                            self.told.add(path.name)
                            self.on_file(path)
                if ended:
                    return
                time.sleep(0.05)

    def join(self) -> None:
        self.thread.join()


def _pattern(name: str) -> str:
    """A name as a pg_dump pattern that matches it alone: double-quoted (which makes ``*``,
    ``?`` and ``.`` literal), its double quotes doubled."""
    return '"' + name.replace('"', '""') + '"'


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
            conn.exec_driver_sql(
                f"COMMENT ON DATABASE \"{name}\" IS 'aris3nb drill scratch: disposable, dropped after the drill'"
            )
        try:
            yield with_search_path(parsed.set(database=name).render_as_string(hide_password=False), schema)
        finally:
            with database_errors(server_url, "drop the drill's scratch database"), admin.connect() as conn:
                conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        admin.dispose()


def restore(
    dump_dir: Path,
    target_url: str,
    deadline: Deadline,
    *,
    clean: bool,
    lock_timeout_sec: float = pg_sessions.LOCK_TIMEOUT_SEC,
) -> None:
    """pg_restore a dump into ``target_url``; ``clean`` drops the objects it restores first,
    all in one transaction (a rollback restore: a failure leaves the target as it was);
    otherwise parallel (a drill's empty scratch). A lock wait longer than ``lock_timeout_sec``
    or the deadline stops it and ends its server sessions."""
    bare, _ = libpq_target(target_url)
    args = [
        _tool("pg_restore"),
        "--no-owner",
        "--no-privileges",
        "--exit-on-error",
        "--no-password",
        f"--dbname={bare}",
    ]
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
