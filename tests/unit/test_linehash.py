"""The native per-line work of the PostgreSQL row index and its Python twin agree.

``digest.line_digests`` (each COPY line's SHA-256 prefix) and the integer keys the row index
reads from each line's first field are computed in C where ``_linehash`` is built and in
Python elsewhere; a backup made one way is drilled the other way, so the bytes must match
for any line, and a line that does not start with an integer key must be refused, never
read as some other number.
"""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from aris3nb.backup import digest

linehash = pytest.importorskip("aris3nb.backup._linehash", reason="the native line hash is not built here")

LINES = st.lists(st.binary(max_size=300), max_size=40)
INT64 = st.integers(min_value=-(2**63), max_value=2**63 - 1)


@given(lines=LINES, width=st.integers(min_value=1, max_value=32))
def test_native_and_python_line_digests_agree(lines: list[bytes], width: int) -> None:
    expected = b"".join(hashlib.sha256(line).digest()[:width] for line in lines)
    assert linehash.digests(lines, width) == expected
    with pytest.MonkeyPatch.context() as monkeypatch:
        monkeypatch.setattr(digest, "USE_NATIVE", False)
        assert digest.line_digests(lines, width) == expected
    assert digest.line_digests(lines, width) == expected


@given(keys=st.lists(INT64, max_size=40), rest=st.binary(max_size=30).filter(lambda b: b"\n" not in b))
def test_leading_integers_reads_every_int64(keys: list[int], rest: bytes) -> None:
    lines = [b"%d\t%s\n" % (key, rest) for key in keys]
    assert np.frombuffer(linehash.leading_integers(lines), dtype="<i8").tolist() == keys


def test_a_key_alone_on_its_line_is_read() -> None:
    assert np.frombuffer(linehash.leading_integers([b"7\n", b"-3"]), dtype="<i8").tolist() == [7, -3]


@pytest.mark.parametrize(
    "line",
    [
        b"\\N\tx\n",
        b"\tx\n",
        b"-\tx\n",
        b"12a\tx\n",
        b" 12\tx\n",
        b"9223372036854775808\tx\n",
        b"-9223372036854775809\t",
    ],
)
def test_a_line_without_an_integer_key_is_refused(line: bytes) -> None:
    with pytest.raises(ValueError, match="line 1 does not start with an integer key"):
        linehash.leading_integers([b"1\tok\n", line])


def test_only_bytes_are_hashed() -> None:
    with pytest.raises(TypeError, match="each line must be bytes"):
        linehash.digests([b"a", "b"], 16)
    with pytest.raises(ValueError, match="width must be 1 to 32"):
        linehash.digests([b"a"], 33)
