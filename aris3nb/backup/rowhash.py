"""SQLite row digests by SHA-256 of a binary encoding: the native row hash and its Python twin.

A SQLite backup's row digests (``digest_method`` ``ROW_SHA256_METHOD``) are the first
``FOLD_BYTES`` of the SHA-256 of each row's canonical encoding (docs/FORMAT.md section 5):
for each value in column order one type byte then its bytes — ``N`` (NULL), ``I`` + 8 bytes
big-endian (INTEGER), ``F`` + 8 bytes big-endian IEEE 754 (REAL), ``T`` + a 4-byte big-endian
length + the UTF-8 bytes (TEXT), ``B`` + length + bytes (BLOB).

The sqlite3 shell computes them with ``aris3nb_row_sha256``, a loadable extension built from
``_rowhash.c`` when aris3nb is installed (OpenSSL's SHA-256; optional: a machine without a C
compiler or OpenSSL's headers installs without it). It is about twice as fast as the shell's
``sha3_query`` of the same rows, where ``sha3(json_array(...))`` (the older ``rows`` method)
is slower than both. Without the extension, backups use the older method, and a drill of a
backup made with this one computes the same digests here, in Python (slower, same result).
"""

from __future__ import annotations

import importlib.machinery
import struct
from collections.abc import Iterable
from functools import cache
from hashlib import sha256
from pathlib import Path
from typing import Any

#: ``digest_method`` of a SQLite table whose chunk digests fold these row digests.
ROW_SHA256_METHOD = "row-sha256"
#: The SQL function the extension defines, and its entry point.
FUNCTION = "aris3nb_row_sha256"
#: Its aggregates: a chunk's row digests as one hex text (``hex(group_concat(d, ''))``), and a
#: chunk's integer keys as ``row_statement`` lists them; both in C, to spare the shell work.
HEX_AGGREGATE = "aris3nb_row_sha256_hex"
INTEGER_KEYS = "aris3nb_integer_keys"
ENTRY_POINT = "sqlite3_rowhash_init"
#: Set to False to make backups as if the extension were not built (tests, bench).
USE_NATIVE = True

_INTEGER = struct.Struct(">cq")
_REAL = struct.Struct(">cd")
_LENGTH = struct.Struct(">cI")


@cache
def _built() -> Path | None:
    folder = Path(__file__).parent
    for suffix in importlib.machinery.EXTENSION_SUFFIXES:
        candidate = folder / f"_rowhash{suffix}"
        if candidate.is_file():
            return candidate
    return None


def extension() -> Path | None:
    """The built extension, or None (not built here, or turned off by ``USE_NATIVE``)."""
    return _built() if USE_NATIVE else None


def load_command(path: Path) -> str:
    """The sqlite3 shell's dot-command that loads the extension at ``path``."""
    quoted = str(path).replace("\\", "\\\\").replace('"', '\\"')
    return f'.load "{quoted}" {ENTRY_POINT}'


def encode_typed_row(values: Iterable[tuple[str, Any]]) -> bytes:
    """A row's canonical encoding from ``(typeof(value), value)`` pairs, the way SQLite
    stores them (TEXT and BLOB both arrive as bytes under ``text_factory = bytes``)."""
    parts = []
    for kind, value in values:
        if kind == "null":
            parts.append(b"N")
        elif kind == "integer":
            parts.append(_INTEGER.pack(b"I", value))
        elif kind == "real":
            parts.append(_REAL.pack(b"F", value))
        else:
            data = value.encode("utf-8", "surrogatepass") if isinstance(value, str) else bytes(value)
            parts.append(_LENGTH.pack(b"T" if kind == "text" else b"B", len(data)) + data)
    return b"".join(parts)


def row_digest(encoded: bytes, width: int) -> bytes:
    """The first ``width`` bytes of the SHA-256 of a row's encoding."""
    return sha256(encoded).digest()[:width]
