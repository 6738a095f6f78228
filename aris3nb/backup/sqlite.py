"""SQLite backups: the online backup API copies the database in one consistent snapshot;
digests are computed from that copy, so counts, digests and the backup agree by
construction. Restores go to a temporary file (a drill) or replace a target file (a
rollback). The source is only ever opened read-only.
"""

from __future__ import annotations

import binascii
import concurrent.futures
import contextlib
import hashlib
import json
import os
import queue
import re
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aris3nb.backup import digest as digest_module
from aris3nb.backup import rowhash
from aris3nb.backup.digest import (
    CHUNK_ROWS,
    FOLD_BYTES,
    ROW_DIGEST_BYTES,
    ROWS_METHOD,
    ChunkRows,
    Deadline,
    RowIndexWriter,
    TableDigest,
    fold_row_digests,
    index_prefixes,
    table_digest_of,
)
from aris3nb.core.db import sqlite_path
from aris3nb.core.errors import BackupError, DatabaseUnavailable, DeadlineExceeded
from aris3nb.core.stale import sweep

DATABASE_FILE = "database/aris3.sqlite3"
#: The temporary folders drills, restores and digests make (a killed run's are swept).
SCRATCH_PATTERN = re.compile(r"^aris3nb-(?:drill|digest)-pid(?P<pid>\d+)-[a-z0-9_]+$")


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


@contextlib.contextmanager
def connect(path: Path, deadline: Deadline) -> Iterator[sqlite3.Connection]:
    """A read-only connection whose statements are interrupted once ``deadline`` passes."""
    uri = f"{path.resolve().as_uri()}?mode=ro"
    try:
        conn = sqlite3.connect(uri, uri=True, timeout=BUSY_TIMEOUT_SEC, isolation_level=None)
    except sqlite3.Error as exc:
        raise DatabaseUnavailable(f"cannot open SQLite database {path}: {exc}") from exc
    if deadline.stops():
        conn.set_progress_handler(lambda: 1 if deadline.expired() else 0, 10_000)
    try:
        yield conn
    except sqlite3.OperationalError as exc:
        if "interrupted" in str(exc) and deadline.expired():
            raise DeadlineExceeded(f"timeout: a statement on {path.name} ran past the deadline") from exc
        raise
    finally:
        conn.close()


def mmap_bytes(path: Path) -> int:
    """How much of ``path`` a checking connection maps into memory: all of it. Reading pages
    through the map instead of one read() each makes ``integrity_check``, whose index lookups
    jump across the file, about a third faster (14.2 s → 9.2 s for a 2,000,000-row table).
    Only for files a drill or a backup owns and reads; SQLite caps it at its build's limit."""
    try:
        return path.stat().st_size
    except OSError:
        return 0


def table_names(conn: sqlite3.Connection) -> list[str]:
    rows = conn.execute(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name"
    )
    return [r[0] for r in rows]


def table_key(conn: sqlite3.Connection, table: str) -> list[str]:
    """The primary key columns in key order, or the rowid for a table without one."""
    info = conn.execute(f"PRAGMA table_info({_ident(table)})").fetchall()
    key = [row[1] for row in sorted((r for r in info if r[5]), key=lambda r: r[5])]
    return key or ["rowid"]


def _key_range(key: list[str], lower: Sequence[Any] | None, upper: Sequence[Any] | None) -> tuple[str, str, list[Any]]:
    """The key columns, and the WHERE clause and parameters of ``lower < key <= upper``."""
    keys = ", ".join(_ident(k) if k != "rowid" else "rowid" for k in key)
    marks = ", ".join("?" for _ in key)
    where, params = [], []
    if lower is not None:
        where.append(f"({keys}) > ({marks})")
        params += list(lower)
    if upper is not None:
        where.append(f"({keys}) <= ({marks})")
        params += list(upper)
    return keys, (" WHERE " + " AND ".join(where)) if where else "", params


def sample_rows(
    path: Path, table: str, key: list[str], lower: Sequence[Any] | None, upper: Sequence[Any] | None, limit: int
) -> list[dict[str, Any]]:
    """The first ``limit`` rows with ``lower < key <= upper``, as column -> value."""
    with connect(path, Deadline(None)) as conn:
        keys, where, params = _key_range(key, lower, upper)
        cursor = conn.execute(f"SELECT * FROM {_ident(table)}{where} ORDER BY {keys} LIMIT {int(limit)}", params)
        names = [d[0] for d in cursor.description]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


#: How many sqlite3 shells digest chunks side by side (one per core of the machine).
SHELLS = 2
#: How long a connection, the shells' included, waits for a lock another holds (a service
#: writing to its database; a shell beside it recovering a copy's write-ahead log) before
#: it fails with "database is locked".
BUSY_TIMEOUT_SEC = 15


def chunk_bounds(
    conn: sqlite3.Connection, table: str, key: list[str], chunk_rows: int = CHUNK_ROWS
) -> list[list[Any] | None]:
    """The last key of every chunk of ``chunk_rows`` rows, then None for the open last chunk.

    Each bound is one index walk of ``chunk_rows`` entries inside SQLite, so the chunks can
    then be digested independently, in parallel.
    """
    bounds: list[list[Any] | None] = []
    lower: Sequence[Any] | None = None
    while True:
        keys, where, params = _key_range(key, lower, None)
        row = conn.execute(
            f"SELECT {keys} FROM {_ident(table)}{where} ORDER BY {keys} LIMIT 1 OFFSET {chunk_rows - 1}", params
        ).fetchone()
        if row is None:
            bounds.append(None)
            return bounds
        bounds.append(list(row))
        lower = row


def _literal(value: Any) -> str:
    """An SQLite literal for a key value (keys are embedded in the digested statement's text)."""
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return str(int(value))
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, bytes):
        return f"X'{value.hex()}'"
    return "'" + str(value).replace("'", "''") + "'"


def chunk_statement(table: str, key: list[str], lower: Sequence[Any] | None, upper: Sequence[Any] | None) -> str:
    """The statement whose one result row is a chunk's row count and digest.

    The digest is SQLite's own ``sha3_query`` (SHA3-256 over the statement's text and every
    value of its result, with types): computed in C, and recomputable by anyone with the
    sqlite3 shell from this text alone.
    """
    keys, where = _range_where(key, lower, upper)
    select = f"SELECT * FROM {_ident(table)}{where} ORDER BY {keys}"
    return f"SELECT (SELECT count(*) FROM {_ident(table)}{where}), lower(hex(sha3_query({_literal(select)})));"


def _sqlite3_shell() -> str:
    shell = shutil.which("sqlite3")
    if shell is None:
        raise BackupError("the sqlite3 shell is not installed (it computes SQLite content digests): install sqlite3")
    return shell


def table_columns(conn: sqlite3.Connection, table: str) -> list[str]:
    """The table's columns in their order (the order of ``SELECT *``)."""
    return [row[1] for row in conn.execute(f"PRAGMA table_info({_ident(table)})").fetchall()]


def integer_key(conn: sqlite3.Connection, table: str, key: list[str]) -> bool:
    """Whether the key is the rowid (or its alias, an ``INTEGER PRIMARY KEY``): always integers."""
    if key == ["rowid"]:
        return True
    if len(key) != 1:
        return False
    declared = {row[1]: str(row[2]).upper() for row in conn.execute(f"PRAGMA table_info({_ident(table)})")}
    if declared.get(key[0]) != "INTEGER":
        return False
    try:  # a WITHOUT ROWID table has no rowid to alias
        conn.execute(f"SELECT rowid FROM {_ident(table)} LIMIT 0")
    except sqlite3.OperationalError:
        return False
    return True


def row_encoding(columns: list[str], key: list[str], *, blob_safe: bool = False) -> str:
    """The SQL text of a row's ``json_array``: its columns in table order (the rowid first
    when the rowid is the key); ``blob_safe`` writes a BLOB value as ``{"blob": "<hex>"}``
    (``json_array`` refuses blobs), which gives the same text for every row without one."""

    def value(column: str) -> str:
        name = _ident(column)
        return (
            f"CASE WHEN typeof({name}) = 'blob' THEN json_object('blob', lower(hex({name}))) ELSE {name} END"
            if blob_safe
            else name
        )

    values = ([value("rowid") if not blob_safe else "rowid"] if key == ["rowid"] else []) + [value(c) for c in columns]
    return f"json_array({', '.join(values)})"


def row_values(columns: list[str], key: list[str]) -> list[str]:
    """The SQL of a row's values in digest order: its columns in table order, the rowid
    first when the rowid is the key (what ``row_encoding`` and the native row hash digest)."""
    return (["rowid"] if key == ["rowid"] else []) + [_ident(c) for c in columns]


def _range_where(key: list[str], lower: Sequence[Any] | None, upper: Sequence[Any] | None) -> tuple[str, str]:
    keys = ", ".join(_ident(k) if k != "rowid" else "rowid" for k in key)
    clauses = []
    if lower is not None:
        clauses.append(f"({keys}) > ({', '.join(_literal(v) for v in lower)})")
    if upper is not None:
        clauses.append(f"({keys}) <= ({', '.join(_literal(v) for v in upper)})")
    return keys, (" WHERE " + " AND ".join(clauses)) if clauses else ""


def row_statement(
    table: str,
    key: list[str],
    columns: list[str],
    lower: Sequence[Any] | None,
    upper: Sequence[Any] | None,
    *,
    number: int = 0,
    integer: bool = False,
    blob_safe: bool = False,
    native: bool = False,
) -> str:
    """The statement whose one result row is a chunk's number, row count, row digests and keys.

    Each row digest is the sqlite3 shell's ``sha3`` (SHA3-256) of the row's ``json_array``
    (``row_encoding``), of which the first ``FOLD_BYTES`` are output, in key order, as hex;
    the chunk digest is the SHA-256 of those bytes (``fold_row_digests``). The keys follow:
    for an integer key its first value, a colon and, unless every key is the one before
    plus one, all of them (``1:1,2,5``); else a JSON array of the keys (of each row's key
    values, for a key of several columns). ``native``: the row digests are the native row
    hash's (``rowhash``), already ``FOLD_BYTES`` long, and the extension's aggregates write
    the same digests' hex and integer keys in C (the same text; ``rowhash.HEX_AGGREGATE``).
    """
    keys, where = _range_where(key, lower, upper)
    aliases = [f"k{n}" for n in range(len(key))]
    selected = ", ".join(f"{_ident(k) if k != 'rowid' else 'rowid'} AS {a}" for k, a in zip(key, aliases, strict=True))
    listed = (
        f"{rowhash.INTEGER_KEYS}(k0)"
        if integer and native
        else "min(k0) || ':' || CASE WHEN max(k0) - min(k0) + 1 = count(*) THEN '' ELSE group_concat(k0) END"
        if integer
        else "json_group_array(k0)"
        if len(key) == 1
        else f"json_group_array(json_array({', '.join(aliases)}))"
    )
    digest = (
        f"{rowhash.FUNCTION}({', '.join(row_values(columns, key))})"
        if native
        else f"substr(sha3({row_encoding(columns, key, blob_safe=blob_safe)}), 1, {FOLD_BYTES})"
    )
    digests = f"{rowhash.HEX_AGGREGATE}(d)" if native else "hex(group_concat(d, ''))"
    return (
        f"SELECT {int(number)}, count(*), {digests}, {listed} FROM "
        f"(SELECT {selected}, {digest} AS d FROM {_ident(table)}{where} ORDER BY {keys});"
    )


def _chunk_rows(text: bytes, integer: bool, prefixes: bytes) -> ChunkRows:
    """A chunk's keys (as ``row_statement`` lists them) with its row digests."""
    digests = index_prefixes(prefixes)
    if integer:
        import numpy as np  # only backups and drills need it: imported when used

        first, _, listed = text.partition(b":")
        if listed:
            integers = np.fromstring(listed, dtype=np.int64, sep=",")
        elif first:  # consecutive keys from the first: nothing else to read
            integers = np.arange(int(first), int(first) + len(digests) // ROW_DIGEST_BYTES, dtype=np.int64)
        else:
            integers = np.zeros(0, dtype=np.int64)
        rows = ChunkRows(None, digests, integers)
    else:
        keys = json.loads(text) if text else []
        rows = ChunkRows([k if isinstance(k, list) else [k] for k in keys], digests)
    if (len(rows.integers) if rows.integers is not None else len(rows.keys or [])) != rows.count:
        raise BackupError(f"the sqlite3 shell listed {rows.count} row digests but other keys: {text[:80]!r}")
    return rows


#: A JSON function refusing a BLOB value: the chunk is digested again with blob_safe.
_BLOB_REFUSED = "JSON cannot hold BLOB values"


def _run_shells(
    path: Path,
    statements: list[str],
    deadline: Deadline,
    take: Any,
    *,
    yield_cpu: bool = False,
    preamble: list[str] | None = None,
) -> list[str]:
    """Run the numbered ``statements`` in up to SHELLS read-only sqlite3 shells side by side
    (each shell's script starting with the ``preamble`` lines: dot-commands); each result line
    goes to ``take(fields)`` as it comes (the output is never held whole). Returns the
    shells' error lines (a statement that failed printed no line)."""
    groups = [statements[i::SHELLS] for i in range(SHELLS)] if len(statements) >= SHELLS else [statements]
    lines: queue.Queue[list[bytes] | None] = queue.Queue(maxsize=64)
    sweep(Path(tempfile.gettempdir()), SCRATCH_PATTERN)
    with tempfile.TemporaryDirectory(prefix=f"aris3nb-digest-pid{os.getpid()}-") as folder:
        processes: list[subprocess.Popen[bytes]] = []
        errors = []
        readers = []
        try:
            for number, group in enumerate(groups):
                script = Path(folder) / f"chunks_{number}.sql"
                busy = f".timeout {round(BUSY_TIMEOUT_SEC * 1000)}"
                script.write_text("\n".join([busy, *(preamble or []), *group]) + "\n")
                error_file = open(Path(folder) / f"errors_{number}.txt", "w+")  # noqa: SIM115 -- closed below
                errors.append(error_file)
                with script.open() as stdin:  # a file, not a pipe: nothing to deadlock on
                    command = [
                        _sqlite3_shell(),
                        "-readonly",
                        "-batch",
                        "-noheader",
                        "-list",
                        "-mmap",
                        str(mmap_bytes(path)),
                        str(path),
                    ]
                    nice = shutil.which("nice") if yield_cpu else None
                    processes.append(
                        subprocess.Popen(
                            [nice, "-n", "10", *command] if nice else command,
                            stdin=stdin,
                            stdout=subprocess.PIPE,
                            stderr=error_file,
                            bufsize=1 << 20,
                        )
                    )
            for process in processes:
                reader = threading.Thread(target=_read_lines, args=(process, lines), daemon=True)
                reader.start()
                readers.append(reader)
            running = len(readers)
            while running:
                remaining = deadline.remaining()
                if remaining is not None and remaining <= 0:
                    raise DeadlineExceeded(f"timeout: digesting {path.name} ran past the deadline")
                try:
                    fields = lines.get(timeout=min(remaining, 1.0) if remaining is not None else 1.0)
                except queue.Empty:
                    continue
                if fields is None:
                    running -= 1
                else:
                    take(fields)
            for process in processes:
                process.wait(timeout=deadline.remaining())
        except subprocess.TimeoutExpired as exc:
            raise DeadlineExceeded(f"timeout: digesting {path.name} ran past the deadline") from exc
        finally:
            for process in processes:
                if process.poll() is None:
                    process.kill()
                    process.wait()
            while any(reader.is_alive() for reader in readers):  # a reader stuck on a full queue, after a failure
                with contextlib.suppress(queue.Empty):
                    lines.get(timeout=0.1)
            problems = []
            for error_file in errors:
                error_file.seek(0)
                problems += [line.strip() for line in error_file.read().splitlines() if line.strip()]
                error_file.close()
    return problems


def _read_lines(process: subprocess.Popen[bytes], lines: queue.Queue[list[bytes] | None]) -> None:
    assert process.stdout is not None
    try:
        for line in process.stdout:
            lines.put(line.rstrip(b"\n").split(b"|", 3))
    finally:
        lines.put(None)


#: The ``digest_method`` values whose chunk digests fold row digests (an index is possible).
ROW_METHODS = (ROWS_METHOD, rowhash.ROW_SHA256_METHOD)


@dataclass
class _Plan:
    """How one table is digested: its key, the upper bounds of its chunks, and its method."""

    table: str
    key: list[str]
    uppers: list[list[Any] | None]
    method: str | None
    columns: list[str]
    integer: bool
    recorded: dict[str, Any] | None


def _plans(
    path: Path, deadline: Deadline, recorded: dict[str, dict[str, Any]] | None, exclude: frozenset[str] = frozenset()
) -> list[_Plan]:
    plans = []
    with connect(path, deadline) as conn:
        for table in table_names(conn):
            if table in exclude:
                continue
            key = table_key(conn, table)
            was = recorded.get(table) if recorded is not None else None
            if was is not None:
                uppers = [c.get("last_key") for c in was.get("chunks") or []] or [None]
                method = was.get("digest_method") if was.get("digest_method") in ROW_METHODS else None
            elif recorded is not None or digest_module.WRITE_ROW_INDEX:
                uppers = chunk_bounds(conn, table, key)
                method = rowhash.ROW_SHA256_METHOD if rowhash.extension() else ROWS_METHOD
            else:
                uppers, method = chunk_bounds(conn, table, key), None
            plans.append(
                _Plan(table, key, uppers, method, table_columns(conn, table), integer_key(conn, table, key), was)
            )
    return plans


def table_digests(
    path: Path,
    deadline: Deadline,
    recorded: dict[str, dict[str, Any]] | None = None,
    *,
    yield_cpu: bool = False,
    index: RowIndexWriter | None = None,
    exclude: frozenset[str] = frozenset(),
) -> dict[str, TableDigest]:
    """Digest every table (but those in ``exclude``), over the recorded chunks' key ranges
    and by their method when ``recorded`` is given (a drill: the rows of a chunk that
    differs are kept in ``rows_of``), else over fresh chunks of ``CHUNK_ROWS`` rows, writing
    each chunk's row digests and keys to ``index`` when given. ``path`` must not change
    meanwhile: it is a backup copy or a drill's scratch copy."""
    plans = _plans(path, deadline, recorded, frozenset(exclude))
    chunks = [
        (plan, number, lower, upper)
        for plan in plans
        for number, (lower, upper) in enumerate(zip([None, *plan.uppers[:-1]], plan.uppers, strict=True))
    ]

    native = rowhash.extension()

    def statement(at: int, blob_safe: bool = False) -> str:
        plan, _number, lower, upper = chunks[at]
        if plan.method in ROW_METHODS:
            return row_statement(
                plan.table,
                plan.key,
                plan.columns,
                lower,
                upper,
                number=at,
                integer=plan.integer,
                blob_safe=blob_safe,
                native=plan.method == rowhash.ROW_SHA256_METHOD,
            )
        return f"SELECT {at}, " + chunk_statement(plan.table, plan.key, lower, upper).removeprefix("SELECT ")

    results: dict[int, dict[str, Any]] = {}

    def take(fields: list[bytes]) -> None:
        at = int(fields[0])
        plan, number, _lower, upper = chunks[at]
        entry: dict[str, Any] = {"last_key": upper, "rows": int(fields[1])}
        if plan.method not in ROW_METHODS:
            entry["digest"] = fields[2].decode()
            results[at] = entry
            return
        prefixes = binascii.a2b_hex(fields[2])
        entry["digest"] = fold_row_digests(prefixes)
        was = (plan.recorded.get("chunks") or [{}])[number] if plan.recorded is not None else None
        if index is not None and was is None:
            entry["index"] = index.add(_chunk_rows(fields[3], plan.integer, prefixes))
        elif (
            was is not None
            and was.get("index") is not None
            and (entry["digest"] != was.get("digest") or entry["rows"] != was.get("rows"))
        ):
            entry["rows_found"] = _chunk_rows(fields[3], plan.integer, prefixes)
        results[at] = entry

    in_python = [at for at, c in enumerate(chunks) if c[0].method == rowhash.ROW_SHA256_METHOD and native is None]
    if in_python:  # a backup made with the native row hash, drilled where it is not built
        with connect(path, deadline) as conn:
            for at in in_python:
                plan, _number, lower, upper = chunks[at]
                take(_python_row_digests(conn, plan, at, lower, upper))
    in_shells = [statement(at) for at in range(len(chunks)) if at not in results]
    preamble = [rowhash.load_command(native)] if native is not None else []
    problems = _run_shells(path, in_shells, deadline, take, yield_cpu=yield_cpu, preamble=preamble)
    refused = [at for at in range(len(chunks)) if at not in results]
    if refused and all(
        _BLOB_REFUSED in problem for problem in problems if problem.startswith(("Error", "Parse error"))
    ):
        # A BLOB value where json_array refuses one: those chunks again, blobs written as hex.
        problems = _run_shells(
            path,
            [statement(at, blob_safe=True) for at in refused],
            deadline,
            take,
            yield_cpu=yield_cpu,
            preamble=preamble,
        )
    if any(at not in results for at in range(len(chunks))):
        raise BackupError(f"the sqlite3 shell could not digest {path.name}: {'; '.join(problems[:3]) or 'no output'}")
    digests: dict[str, TableDigest] = {}
    at = 0
    for plan in plans:
        found = TableDigest(name=plan.table, key=plan.key, method=plan.method)
        for number in range(len(plan.uppers)):
            entry = results[at]
            rows_found = entry.pop("rows_found", None)
            if rows_found is not None:
                found.rows_of[number] = rows_found
            found.chunks.append(entry)
            at += 1
        found.rows = sum(c["rows"] for c in found.chunks)
        found.digest = table_digest_of(found.chunks)
        digests[plan.table] = found
    return digests


def _python_row_digests(
    conn: sqlite3.Connection, plan: _Plan, at: int, lower: Sequence[Any] | None, upper: Sequence[Any] | None
) -> list[bytes]:
    """A chunk's fields as ``row_statement(native=True)`` makes the shell print them,
    computed here with ``rowhash``'s Python twin of the native row hash."""
    values = row_values(plan.columns, plan.key)
    keys_sql, where, params = _key_range(plan.key, lower, upper)
    key_at = [values.index("rowid" if k == "rowid" else _ident(k)) for k in plan.key]
    typed = ", ".join(f"typeof({v}), {v}" for v in values)
    digests, keys = bytearray(), []
    conn.text_factory = bytes  # TEXT as its stored UTF-8 bytes: what the native hash reads
    try:
        for row in conn.execute(f"SELECT {typed} FROM {_ident(plan.table)}{where} ORDER BY {keys_sql}", params):
            pairs = [(row[n].decode(), row[n + 1]) for n in range(0, len(row), 2)]
            digests += rowhash.row_digest(rowhash.encode_typed_row(pairs), FOLD_BYTES)
            key_pairs = [pairs[n] for n in key_at]
            keys.append([v.decode("utf-8", "surrogateescape") if k == "text" else v for k, v in key_pairs])
    finally:
        conn.text_factory = str
    if plan.integer:
        first = keys[0][0] if keys else ""
        consecutive = not keys or keys[-1][0] - keys[0][0] + 1 == len(keys)
        listed = f"{first}:" + ("" if consecutive else ",".join(str(k[0]) for k in keys))
    else:
        listed = json.dumps([k if len(plan.key) > 1 else k[0] for k in keys], ensure_ascii=False)
    return [str(at).encode(), str(len(keys)).encode(), digests.hex().encode(), listed.encode()]


def rows_by_key(
    path: Path, table: str, keys: list[list[Any]], *, immutable: bool = False, method: str | None = ROWS_METHOD
) -> dict[str, tuple[dict[str, Any], bytes]]:
    """The rows of ``table`` with the given keys, by the key's JSON: each row's columns and
    its row digest by the table's ``digest_method`` (first ``ROW_DIGEST_BYTES``): the native
    row hash's for ``row-sha256``, else the SHA3-256 of its ``json_array`` as the shell
    computes it. ``immutable`` opens a file nothing may write to (a backup's own copy)
    without locks, so that reading it leaves no journal, WAL or shared-memory file."""
    uri = f"{path.resolve().as_uri()}?{'immutable=1' if immutable else 'mode=ro'}"
    try:
        conn = sqlite3.connect(uri, uri=True, timeout=BUSY_TIMEOUT_SEC, isolation_level=None)
    except sqlite3.Error as exc:
        raise DatabaseUnavailable(f"cannot open SQLite database {path}: {exc}") from exc
    found: dict[str, tuple[dict[str, Any], bytes]] = {}
    try:
        key = table_key(conn, table)
        columns = table_columns(conn, table)
        keys_sql, _where, _params = _key_range(key, None, None)
        condition = f" WHERE ({keys_sql}) = ({', '.join('?' for _ in key)})"
        for values in keys:
            if len(values) != len(key):
                continue
            conn.text_factory = bytes  # the text exactly as SQLite holds it (what the shell hashed)
            if method == rowhash.ROW_SHA256_METHOD:
                typed = ", ".join(f"typeof({v}), {v}" for v in row_values(columns, key))
                row_found = conn.execute(f"SELECT {typed} FROM {_ident(table)}{condition}", list(values)).fetchone()
                if row_found is None:
                    continue
                pairs = [(row_found[n].decode(), row_found[n + 1]) for n in range(0, len(row_found), 2)]
                digest = rowhash.row_digest(rowhash.encode_typed_row(pairs), ROW_DIGEST_BYTES)
            else:
                encoded = conn.execute(
                    f"SELECT {row_encoding(columns, key, blob_safe=True)} FROM {_ident(table)}{condition}", list(values)
                ).fetchone()
                if encoded is None:
                    continue
                digest = hashlib.sha3_256(encoded[0]).digest()[:ROW_DIGEST_BYTES]
            conn.text_factory = str
            cursor = conn.execute(f"SELECT * FROM {_ident(table)}{condition}", list(values))
            row = cursor.fetchone()
            names = [d[0] for d in cursor.description]
            found[json.dumps(list(values), ensure_ascii=False)] = (dict(zip(names, row, strict=True)), digest)
    except sqlite3.Error as exc:
        raise BackupError(f"cannot read rows of {table} in {path.name}: {exc}") from exc
    finally:
        conn.close()
    return found


def snapshot_copy(source_url: str, target: Path, deadline: Deadline) -> None:
    """Copy the source database into ``target`` with the online backup API (read-only source)."""
    source = sqlite_path(source_url)
    if not source.is_file():
        raise DatabaseUnavailable(f"no SQLite database at {source}")
    target.parent.mkdir(parents=True, exist_ok=True)
    with connect(source, deadline) as src:
        dst = sqlite3.connect(target)
        try:
            # All pages in one step: the copy is one consistent snapshot of the source.
            src.backup(dst, pages=-1)
        except sqlite3.Error as exc:
            raise BackupError(f"SQLite online backup of {source} failed: {exc}{_writing_hint(exc, target)}") from exc
        finally:
            dst.close()
    os.chmod(target, 0o600)


def empty_tables(copy: Path, tables: frozenset[str]) -> None:
    """Delete every row of ``tables`` in a backup's own copy (never the source): their rows
    are left out of the backup, their schema stays. ``secure_delete`` overwrites the freed
    pages, so the rows are not left in the file either."""
    conn = sqlite3.connect(copy, isolation_level=None)
    try:
        present = set(table_names(conn))
        conn.execute("PRAGMA foreign_keys=OFF")
        conn.execute("PRAGMA secure_delete=ON")
        conn.execute("BEGIN IMMEDIATE")
        for table in sorted(tables & present):
            conn.execute(f"DELETE FROM {_ident(table)}")
        conn.execute("COMMIT")
    except sqlite3.Error as exc:
        raise BackupError(f"cannot leave the excluded tables out of the backup's copy: {exc}") from exc
    finally:
        conn.close()


#: SQLite's codes for a write that the disk refused (full, over a size limit, I/O error).
_WRITE_FAILURES = {
    "SQLITE_FULL",
    "SQLITE_IOERR_WRITE",
    "SQLITE_IOERR_FSYNC",
    "SQLITE_IOERR_TRUNCATE",
    "SQLITE_IOERR_DIR_FSYNC",
    "SQLITE_IOERR_SHORT_READ",
}


def _writing_hint(exc: sqlite3.Error, target: Path) -> str:
    """Where SQLite failed, when it was writing the copy: "disk I/O error" alone reads as
    if the source were damaged."""
    name = getattr(exc, "sqlite_errorname", None)
    if name not in _WRITE_FAILURES:
        return f" ({name})" if name else ""
    try:
        free = f"{shutil.disk_usage(target.parent).free / 1e6:,.1f} MB free there"
    except OSError:
        free = "free space unknown"
    return f" ({name} writing the copy {target}: the disk may be full or a file size limit reached; {free})"


def server_version() -> str:
    return sqlite3.sqlite_version


def shell_version() -> str:
    """The sqlite3 shell's version line (the shell computes the content digests)."""
    done = subprocess.run([_sqlite3_shell(), "--version"], capture_output=True, text=True, timeout=30, check=False)
    return done.stdout.strip()


@contextlib.contextmanager
def scratch_copy_ahead(backup_file: Path) -> Iterator[Callable[[], Path]]:
    """A disposable copy of the backup's database file, made on a thread of its own from now
    on, so that other work (the drill's validation) goes on meanwhile; ``ready()`` waits for it
    and gives its path (raising what the copy raised). Removed afterwards whatever happens, the
    copy waited for first (and, should this process be killed, by the next drill or restore:
    see ``_stale``)."""
    sweep(Path(tempfile.gettempdir()), SCRATCH_PATTERN)
    folder = Path(tempfile.mkdtemp(prefix=f"aris3nb-drill-pid{os.getpid()}-"))
    try:
        os.chmod(folder, 0o700)
        target = folder / "restored.sqlite3"
        with concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="sqlite-copy") as pool:  # waits on leaving
            copying = pool.submit(shutil.copyfile, backup_file, target)

            def ready() -> Path:
                copying.result()
                return target

            yield ready
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@contextlib.contextmanager
def scratch_copy(backup_file: Path) -> Iterator[Path]:
    """A disposable copy of the backup's database file (``scratch_copy_ahead``, waited for)."""
    with scratch_copy_ahead(backup_file) as ready:
        yield ready()


def _approximate_rows(conn: sqlite3.Connection, table: str) -> int:
    """The largest rowid: a size estimate read from the end of the b-tree, not a scan."""
    try:
        return int(conn.execute(f"SELECT COALESCE(MAX(rowid), 0) FROM {_ident(table)}").fetchone()[0])
    except sqlite3.OperationalError:  # a WITHOUT ROWID table
        return 0


def structural_problems(path: Path, deadline: Deadline) -> list[str]:
    """What SQLite's integrity and foreign key checks report (empty when sound).

    The whole ``integrity_check`` is split so that two cores share it: ``quick_check`` over
    the file (pages, freelist, records, constraints) plus ``integrity_check`` of each table
    and its indexes (whether every index matches its table), largest table first; together
    they check what one ``integrity_check`` does.
    """
    with connect(path, deadline) as conn:
        sizes = {t: _approximate_rows(conn, t) for t in table_names(conn)}
    pragmas = [f"integrity_check({_ident(t)})" for t in sorted(sizes, key=lambda t: -sizes[t])]
    pragmas[1:1] = ["quick_check", "foreign_key_check"]

    def run(pragma: str) -> list[str]:
        with connect(path, deadline) as conn:
            conn.execute(f"PRAGMA mmap_size={mmap_bytes(path)}")
            rows = conn.execute(f"PRAGMA {pragma}").fetchmany(50)
        if pragma == "foreign_key_check":
            return [
                f"foreign key broken: {table} row {rowid} points to a missing {parent} row"
                for table, rowid, parent, _fk in rows
            ]
        return [f"{pragma}: {row[0]}" for row in rows if row[0] != "ok"]

    with concurrent.futures.ThreadPoolExecutor(2, thread_name_prefix="sqlite-check") as pool:
        return [problem for found in pool.map(run, pragmas) for problem in found]


#: Pages a restore copies per step of SQLite's backup API (4 MiB at 4 kB pages); the deadline
#: is checked between steps, and the whole copy is one transaction on the target.
RESTORE_STEP_PAGES = 1024


def restore_in_place(restored: Path, target_url: str, deadline: Deadline) -> None:
    """Copy ``restored`` into the target database through SQLite's online backup API.

    The copy is one write transaction on the target, under SQLite's own locks and journal: a
    service that has the file open sees the restored data on its next read and keeps writing
    into the same file (a file renamed into place would leave it reading, and writing, the old
    one, deleted), and a copy stopped part way (an error, the deadline, a kill) is rolled back,
    leaving the target as it was. A target that is missing or not a SQLite database (nothing
    can be using it as one) is replaced by a copy instead (``replace_database``)."""
    target = sqlite_path(target_url)
    if not _is_database(target):
        replace_database(restored, target_url)
        return

    def step(status: int, remaining: int, total: int) -> None:
        sys.audit("aris3nb.sqlite.restore_step", str(target), remaining, total)
        if deadline.expired():
            raise DeadlineExceeded(f"timeout: restoring into {target.name} ran past the deadline (rolled back)")

    with contextlib.ExitStack() as stack:
        try:
            source = stack.enter_context(
                contextlib.closing(sqlite3.connect(f"{restored.resolve().as_uri()}?mode=ro", uri=True))
            )
            destination = stack.enter_context(contextlib.closing(sqlite3.connect(target, timeout=BUSY_TIMEOUT_SEC)))
            source.backup(destination, pages=RESTORE_STEP_PAGES, progress=step, sleep=0.1)
        except sqlite3.Error as exc:
            raise BackupError(f"could not copy the backup into {target} (rolled back): {exc}") from exc


def _is_database(path: Path) -> bool:
    """Whether ``path`` is a file that SQLite opens as a database (its header, not its name)."""
    try:
        with open(path, "rb") as handle:
            return handle.read(16) == b"SQLite format 3\x00"
    except OSError:
        return False


def replace_database(restored: Path, target_url: str) -> None:
    """Put ``restored`` in place of the target file, atomically (same folder, then rename)."""
    target = sqlite_path(target_url)
    staging = target.with_name(f".{target.name}.restoring")
    try:
        shutil.copyfile(restored, staging)
        os.chmod(staging, 0o600)
        with open(staging, "rb") as handle:
            os.fsync(handle.fileno())
    except OSError:
        staging.unlink(missing_ok=True)  # a half-written copy must not stay beside the target
        raise
    for suffix in ("-wal", "-shm", "-journal"):
        Path(f"{target}{suffix}").unlink(missing_ok=True)
    os.replace(staging, target)
