"""The native row hash's aggregates print exactly what the SQL they replace prints.

``row_statement(native=True)`` writes a chunk's row digests with ``aris3nb_row_sha256_hex``
and its integer keys with ``aris3nb_integer_keys`` (C, to spare the sqlite3 shell work); the
chunk digests and the row index are computed from that text, so it must be the text of
``hex(group_concat(d, ''))`` and of ``min(k) || ':' || CASE ... group_concat(k) END``, byte
for byte, for every chunk: empty, one row, consecutive keys, keys with gaps, negative keys.
Input they cannot stand for is an error, never a plausible text.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aris3nb.backup import rowhash
from aris3nb.backup.sqlite import row_statement

SQL_KEYS = "min(k0) || ':' || CASE WHEN max(k0) - min(k0) + 1 = count(*) THEN '' ELSE group_concat(k0) END"


def shell(database: Path, sql: str, *, check: bool = True) -> subprocess.CompletedProcess[str]:
    extension = rowhash.extension()
    assert extension is not None, "the native row hash is not built: reinstall aris3nb with a C compiler"
    return subprocess.run(
        ["sqlite3", "-batch", "-noheader", "-list", str(database)],
        input=f"{rowhash.load_command(extension)}\n{sql}\n",
        capture_output=True,
        text=True,
        check=check,
    )


def table_of(tmp_path: Path, keys: list[int]) -> Path:
    database = tmp_path / "keys.db"
    database.unlink(missing_ok=True)
    rows = ", ".join(f"({k}, 'v{k}', {k}.5, x'{k & 0xFF:02x}')" for k in keys)
    script = "CREATE TABLE t (id INTEGER PRIMARY KEY, a TEXT, b REAL, c BLOB);" + (
        f"INSERT INTO t VALUES {rows};" if keys else ""
    )
    subprocess.run(["sqlite3", str(database), script], check=True)
    return database


KEYS = st.lists(st.integers(min_value=-(2**62), max_value=2**62), max_size=40, unique=True).map(sorted) | st.builds(
    lambda start, size: list(range(start, start + size)), st.integers(-50, 50), st.integers(0, 30)
)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(keys=KEYS)
def test_the_aggregates_print_what_the_sql_prints(tmp_path: Path, keys: list[int]) -> None:
    database = table_of(tmp_path, keys)
    inner = f"(SELECT id AS k0, {rowhash.FUNCTION}(id, a, b, c) AS d FROM t ORDER BY id)"
    native = shell(database, f"SELECT {rowhash.HEX_AGGREGATE}(d), {rowhash.INTEGER_KEYS}(k0) FROM {inner};").stdout
    plain = shell(database, f"SELECT hex(group_concat(d, '')), {SQL_KEYS} FROM {inner};").stdout
    assert native == plain
    assert len(native.split("|")[0]) == 32 * len(keys)


@pytest.mark.parametrize(
    ("keys", "lower", "upper"),
    [([], None, None), ([7], None, None), (list(range(1, 60)), [10], [40]), ([1, 2, 5, 9, 10, 11], None, [10])],
)
def test_a_native_chunk_statement_prints_what_the_sql_form_prints(
    tmp_path: Path, keys: list[int], lower: list[int] | None, upper: list[int] | None
) -> None:
    database = table_of(tmp_path, keys)
    statement = row_statement("t", ["id"], ["id", "a", "b", "c"], lower, upper, number=3, integer=True, native=True)
    sql_form = statement.replace(f"{rowhash.HEX_AGGREGATE}(d)", "hex(group_concat(d, ''))").replace(
        f"{rowhash.INTEGER_KEYS}(k0)", SQL_KEYS
    )
    assert sql_form != statement
    assert shell(database, statement).stdout == shell(database, sql_form).stdout


@pytest.mark.parametrize(
    ("sql", "error"),
    [
        (f"SELECT {rowhash.HEX_AGGREGATE}(x'00ff') FROM t;", "not a 16-byte BLOB"),
        (f"SELECT {rowhash.HEX_AGGREGATE}(a) FROM t;", "not a 16-byte BLOB"),
        (f"SELECT {rowhash.INTEGER_KEYS}(k0) FROM (SELECT id AS k0 FROM t ORDER BY id DESC);", "ascending order"),
        (f"SELECT {rowhash.INTEGER_KEYS}(a) FROM t;", "ascending order"),
    ],
)
def test_what_the_aggregates_cannot_stand_for_is_an_error(tmp_path: Path, sql: str, error: str) -> None:
    database = table_of(tmp_path, [1, 2, 3])
    done = shell(database, sql, check=False)
    assert error in done.stderr and not done.stdout.strip()
