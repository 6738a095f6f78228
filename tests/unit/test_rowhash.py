"""The native row hash (the sqlite3 shell's loadable extension) and its Python twin agree.

Every SQLite value type, TEXT beyond ASCII, empty and zero-filled BLOBs, extreme integers and
reals: the shell's ``aris3nb_row_sha256`` and ``rowhash.encode_typed_row`` + SHA-256 give the
same digest for every row, so a backup made with one is verified by the other.
"""

from __future__ import annotations

import hashlib
import sqlite3
import struct
import subprocess
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aris3nb.backup import rowhash

VALUES = st.one_of(
    st.none(),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.floats(allow_nan=False),
    st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=40),
    st.binary(max_size=40),
)
ROWS = st.lists(st.tuples(VALUES, VALUES, VALUES), min_size=1, max_size=12)


def native_digests(database: Path) -> list[str]:
    extension = rowhash.extension()
    assert extension is not None, "the native row hash is not built: reinstall aris3nb with a C compiler"
    out = subprocess.run(
        ["sqlite3", "-batch", "-noheader", str(database)],
        input=f"{rowhash.load_command(extension)}\nSELECT hex({rowhash.FUNCTION}(rowid, a, b, c)) FROM t;",
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return out.split()


def python_digests(database: Path) -> list[str]:
    conn = sqlite3.connect(database)
    conn.text_factory = bytes
    rows = conn.execute("SELECT 'integer', rowid, typeof(a), a, typeof(b), b, typeof(c), c FROM t ORDER BY rowid")
    digests = []
    for row in rows:
        pairs = [(row[n] if isinstance(row[n], str) else row[n].decode(), row[n + 1]) for n in range(0, len(row), 2)]
        digests.append(rowhash.row_digest(rowhash.encode_typed_row(pairs), 16).hex().upper())
    conn.close()
    return digests


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=ROWS)
def test_the_shell_and_python_agree_on_every_value_type(tmp_path: Path, rows: list[tuple]) -> None:
    database = tmp_path / "values.db"
    database.unlink(missing_ok=True)
    conn = sqlite3.connect(database)
    conn.execute("CREATE TABLE t (a, b, c)")  # no affinity: every value keeps its own type
    conn.executemany("INSERT INTO t VALUES (?, ?, ?)", rows)
    conn.commit()
    conn.close()
    assert native_digests(database) == python_digests(database)


def test_the_encoding_is_the_documented_one() -> None:
    """One row by hand, byte by byte, as docs/FORMAT.md section 5 writes it."""
    encoded = rowhash.encode_typed_row([("integer", 1), ("text", b"a"), ("null", None), ("real", 2.5), ("blob", b"\0")])
    assert encoded == (
        b"I" + struct.pack(">q", 1) + b"T\0\0\0\x01a" + b"N" + b"F" + struct.pack(">d", 2.5) + b"B\0\0\0\x01\0"
    )
    assert rowhash.row_digest(encoded, 16) == hashlib.sha256(encoded).digest()[:16]


def test_a_changed_value_or_type_changes_the_digest() -> None:
    base = rowhash.row_digest(rowhash.encode_typed_row([("integer", 1), ("text", b"1")]), 16)
    assert base != rowhash.row_digest(rowhash.encode_typed_row([("integer", 1), ("text", b"2")]), 16)
    assert base != rowhash.row_digest(rowhash.encode_typed_row([("integer", 1), ("blob", b"1")]), 16)
    assert base != rowhash.row_digest(rowhash.encode_typed_row([("text", b"1"), ("integer", 1)]), 16)
    # Lengths are encoded: moving a byte from one TEXT to the next changes the digest.
    assert rowhash.row_digest(rowhash.encode_typed_row([("text", b"ab"), ("text", b"c")]), 16) != rowhash.row_digest(
        rowhash.encode_typed_row([("text", b"a"), ("text", b"bc")]), 16
    )


def test_turned_off_it_is_not_used(monkeypatch) -> None:
    monkeypatch.setattr(rowhash, "USE_NATIVE", False)
    assert rowhash.extension() is None


def test_the_load_command_quotes_the_path() -> None:
    assert rowhash.load_command(Path('/a b/"x".so')) == '.load "/a b/\\"x\\".so" sqlite3_rowhash_init'
