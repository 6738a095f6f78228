"""Content digests of tables, in chunks of key ranges.

A table's rows are read in primary-key order and cut into chunks of ``CHUNK_ROWS`` rows,
each with the last key it holds and a digest the engine computes (SQLite: the sqlite3
shell's ``sha3_query`` of the chunk's SELECT, see ``sqlite.chunk_statement``; PostgreSQL:
SHA-256 of the chunk's ``COPY`` text, streamed through ``digest_table``/``digest_ranges``
here). The table digest is the SHA-256 of the chunk digests in order, so chunks can be
digested independently, in parallel.

The chunks make a drill diff precise: a drill recomputes digests over the *manifest's* key
ranges, so a changed, missing or extra row shows up as the one range it falls in. Ranges
are contiguous: chunk *i* holds the keys above chunk *i-1*'s last key up to its own; the
last chunk has no upper bound, so every key falls in exactly one chunk.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from aris3nb.core.errors import DeadlineExceeded
from aris3nb.core.settings import check_timeout_sec

CHUNK_ROWS = 5_000


@dataclass(frozen=True)
class Deadline:
    """A moment after which long operations stop; ``None`` seconds means never."""

    at: float | None

    @classmethod
    def after(cls, seconds: float | None) -> Deadline:
        """A deadline ``seconds`` from now; a value that is not a finite number of seconds up
        to ``MAX_TIMEOUT_SEC`` is bad input (exit 2), never an overflow deep inside a tool."""
        if seconds is None:
            return cls(None)
        return cls(time.monotonic() + check_timeout_sec(seconds, "a timeout"))

    def remaining(self) -> float | None:
        return None if self.at is None else max(0.0, self.at - time.monotonic())

    def expired(self) -> bool:
        return self.at is not None and time.monotonic() >= self.at

    def check(self, doing: str) -> None:
        if self.expired():
            raise DeadlineExceeded(f"timeout: the deadline passed while {doing}")


@dataclass
class TableDigest:
    """A table's key columns, row count, digest and chunks, as the manifest records them."""

    name: str
    key: list[str]
    rows: int = 0
    digest: str = ""
    chunks: list[dict[str, Any]] = field(default_factory=list)

    def as_manifest_entry(self) -> dict[str, Any]:
        return {"name": self.name, "key": self.key, "rows": self.rows, "digest": self.digest, "chunks": self.chunks}


#: Reads the rows with ``lower < key <= upper`` (None: unbounded) in key order, at most
#: ``limit`` of them, and yields blocks ``(rows, data, last_key)``: ``data`` is the rows'
#: lines, each ending in a newline, and ``last_key`` the key of the block's last row.
RangeReader = Callable[[Sequence[Any] | None, Sequence[Any] | None, int | None], Iterator[tuple[int, bytes, list[Any]]]]


def table_digest_of(chunks: list[dict[str, Any]]) -> str:
    """``sha256:`` of the chunks' digests (raw bytes, in key order)."""
    return "sha256:" + hashlib.sha256(b"".join(bytes.fromhex(c["digest"]) for c in chunks)).hexdigest()


def digest_table(name: str, key: list[str], read: RangeReader, deadline: Deadline,
                 chunk_rows: int = CHUNK_ROWS) -> TableDigest:
    """Digest a whole table, cutting it into chunks of ``chunk_rows`` rows (keyset paging)."""
    result = TableDigest(name=name, key=key)
    lower: list[Any] | None = None
    while True:
        deadline.check(f"digesting table {name}")
        chunk = hashlib.sha256()
        count, last = 0, None
        # A table without a key is one chunk: there is nothing to page on.
        for rows, data, last in read(lower, None, chunk_rows if key else None):
            chunk.update(data)
            count += rows
        final = not key or count < chunk_rows
        result.chunks.append({"last_key": None if final else last, "rows": count, "digest": chunk.hexdigest()})
        result.rows += count
        if final:
            break
        lower = last
    result.digest = table_digest_of(result.chunks)
    return result


def digest_ranges(name: str, key: list[str], chunks: list[dict[str, Any]], read: RangeReader,
                  deadline: Deadline) -> TableDigest:
    """Digest a table over the key ranges of recorded ``chunks`` (as a drill does)."""
    result = TableDigest(name=name, key=key)
    lower: list[Any] | None = None
    for recorded in chunks or [{"last_key": None}]:
        deadline.check(f"digesting table {name}")
        upper = recorded.get("last_key")
        chunk = hashlib.sha256()
        count = 0
        for rows, data, _last in read(lower, upper, None):
            chunk.update(data)
            count += rows
        result.chunks.append({"last_key": upper, "rows": count, "digest": chunk.hexdigest()})
        result.rows += count
        lower = upper
    result.digest = table_digest_of(result.chunks)
    return result


def differing_ranges(recorded: list[dict[str, Any]], found: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The key ranges whose rows or digest differ: ``{after_key, up_to_key, rows_recorded, rows_found}``."""
    ranges = []
    lower = None
    for was, now in zip(recorded, found, strict=True):
        if was.get("digest") != now["digest"] or was.get("rows") != now["rows"]:
            ranges.append({"after_key": lower, "up_to_key": was.get("last_key"),
                           "rows_recorded": was.get("rows"), "rows_found": now["rows"]})
        lower = was.get("last_key")
    return ranges
