"""Content digests of tables, in chunks of key ranges, and the row index that names rows.

A table's rows are read in primary-key order and cut into chunks of ``CHUNK_ROWS`` rows,
each with the last key it holds and a digest. Every row also gets a **row digest**, and the
first ``ROW_DIGEST_BYTES`` of each, with the row's key, go into the backup's **row index**
(``ROW_INDEX_FILE``), written in the same pass over the same snapshot as the chunk digests:

- SQLite (``sqlite.row_statement``): a row digest is the sqlite3 shell's SHA3-256 of the
  row's ``json_array`` (a BLOB value as ``{"blob": "<hex>"}``); a chunk digest is the
  SHA-256 of its rows' digests (their first ``FOLD_BYTES`` each, in key order). Backups made
  before the row index (no ``digest_method`` in their table entries) used the shell's
  ``sha3_query`` of the chunk's SELECT (``sqlite.chunk_statement``), still verified so.
- PostgreSQL: a chunk digest is the SHA-256 of the chunk's ``COPY`` text, and a row digest
  the SHA-256 of its row's line of that text (streamed through ``digest_table`` /
  ``digest_ranges`` here), so old and new backups share the chunk digests. Each line's
  SHA-256 and a one-integer key are computed in C (``_linehash.c``, built with aris3nb like
  ``_rowhash.c``; ``line_digests``) or, where it is not built, in Python: the same bytes.

The table digest is the SHA-256 of the chunk digests in order, so chunks can be digested
independently, in parallel. Ranges are contiguous: chunk *i* holds the keys above chunk
*i-1*'s last key up to its own; the last chunk has no upper bound, so every key falls in
exactly one chunk. A drill recomputes digests over the *manifest's* key ranges; in a chunk
whose digest differs it compares row digests with the index, key by key, and so names the
changed, missing and extra rows (``compare_rows``) without a copy of the source.

On PostgreSQL a chunk whose per-row record would be larger gets a **sketch** instead (kind
4, ``aris3nb.backup.sketch``): a fixed-size invertible Bloom lookup table of its rows (key,
first ``sketch.DIGEST_BYTES`` of the row digest), which names up to about
``sketch.CAPACITY`` differing rows of the chunk and says when there are more than it can
name (``RowDifferences.unnamed``). A compressed dump is about 40 bytes a row: 8 bytes of
digest per row would add a fifth to it; a sketch is a fixed 6.9 kB a chunk for an integer
key (13 kB for a UUID), 1.4 (2.6) bytes a row at 5,000 rows a chunk.

The index file is the magic ``INDEX_MAGIC`` then one record per chunk, at the offset and
length the manifest's chunk entry records (``"index": [offset, length]``)::

    u8 kind | u32 rows | keys | rows x ROW_DIGEST_BYTES row digests, in key order
    kind 0 (one integer key column):  i64 first key | u8 width | rows-1 key deltas of
                                      `width` bytes each (width 0: every delta is 1)
    kind 1 (any other key):           u32 length | zlib(JSON list of each row's key values)
    kind 2 (no key: PostgreSQL):      nothing; such rows are named by their digest
    kind 3 (one UUID text column):    u8 form (0: 32 hex digits, 1: 8-4-4-4-12 with dashes) |
                                      16 bytes per key
    kind 4 (a sketch, PostgreSQL):    the sketch (aris3nb.backup.sketch) instead of keys and
                                      digests; written when smaller than the chunk's kind 0-3 record
"""

from __future__ import annotations

import hashlib
import json
import re
import struct
import threading
import time
import zlib
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from aris3nb.core.errors import BackupError, DeadlineExceeded
from aris3nb.core.settings import check_timeout_sec

try:  # the per-line SHA-256 and integer keys in C (_linehash.c; optional: Python computes the same)
    from aris3nb.backup import _linehash
except ImportError:  # pragma: no cover -- not built on this machine
    _linehash = None  # type: ignore[assignment]

CHUNK_ROWS = 5_000
#: Bytes of each row digest kept in the row index (see docs/FORMAT.md 5 for why 8).
ROW_DIGEST_BYTES = 8
#: Bytes of each SQLite row digest that its chunk digest is computed over.
FOLD_BYTES = 16
#: The index file, relative to the backup folder.
ROW_INDEX_FILE = "index/row_digests.bin"
INDEX_MAGIC = b"ARIS3NB-ROWIDX\x00\x01"
#: ``digest_method`` of a SQLite table whose chunk digests fold its row digests.
ROWS_METHOD = "rows"
#: Written by ``backup create``; bench/row_index_cost.py turns it off to measure what the
#: index costs (a backup without it is what older versions made: chunk digests only).
WRITE_ROW_INDEX = True
#: Sketches (kind 4) are written for the chunks they are smaller for; off, every chunk gets
#: per-row digests, as backups made before sketches (tests drill such backups with it).
WRITE_SKETCHES = True

KEYS_INTEGER, KEYS_JSON, KEYS_NONE, KEYS_UUID = 0, 1, 2, 3
#: A record that is a set-reconciliation sketch of the chunk's rows, not per-row digests.
KIND_SKETCH = 4
#: Bytes of each PostgreSQL row digest a sketch holds (``sketch.DIGEST_BYTES``).
SKETCH_DIGEST_BYTES = 16
_RECORD_HEAD = struct.Struct("<BI")
_INT_HEAD = struct.Struct("<qB")
_JSON_HEAD = struct.Struct("<I")
#: The largest record a reader accepts: rows of a chunk (a keyless table is one chunk).
MAX_RECORD_BYTES = 1 << 30


@dataclass(frozen=True)
class Deadline:
    """A moment after which long operations stop; ``None`` seconds means never. ``abandoned``:
    once set, the work's result is no longer wanted, and it stops as if the deadline had passed."""

    at: float | None
    abandoned: threading.Event | None = field(default=None, compare=False)

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
        if self.abandoned is not None and self.abandoned.is_set():
            return True
        return self.at is not None and time.monotonic() >= self.at

    def stops(self) -> bool:
        """Whether anything can stop work under this deadline (a time, or abandoning it)."""
        return self.at is not None or self.abandoned is not None

    def check(self, doing: str) -> None:
        if self.expired():
            raise DeadlineExceeded(f"timeout: the deadline passed while {doing}")


@dataclass
class ChunkRows:
    """The rows of one chunk as the row index sees them: their keys and their row digests'
    first ``ROW_DIGEST_BYTES``, in key order. Keys are ``integers`` (a numpy array, for one
    integer key column: cheap to read and to encode) or ``keys`` (each row's key values);
    a table without a key has neither. ``wide`` (PostgreSQL) holds the row digests' first
    ``SKETCH_DIGEST_BYTES`` too: what a sketch of the chunk is made of and compared with."""

    keys: list[list[Any]] | None
    digests: bytes
    integers: Any = None
    wide: bytes | None = None

    @property
    def count(self) -> int:
        return len(self.digests) // ROW_DIGEST_BYTES

    @property
    def keyed(self) -> bool:
        return self.keys is not None or self.integers is not None

    def key_list(self) -> list[list[Any]] | None:
        if self.keys is None and self.integers is not None:
            self.keys = [[int(v)] for v in self.integers]
        return self.keys

    def digest_at(self, number: int) -> bytes:
        return self.digests[number * ROW_DIGEST_BYTES : (number + 1) * ROW_DIGEST_BYTES]


@dataclass
class TableDigest:
    """A table's key columns, row count, digest and chunks, as the manifest records them.

    ``method`` is the ``digest_method`` (None: the engine's original chunk digests).
    ``rows_of`` holds, after a drill's pass, the rows of each chunk whose digest differs
    from the manifest's (chunk number -> rows), so that the diff needs no second pass."""

    name: str
    key: list[str]
    rows: int = 0
    digest: str = ""
    chunks: list[dict[str, Any]] = field(default_factory=list)
    method: str | None = None
    rows_of: dict[int, ChunkRows] = field(default_factory=dict, compare=False, repr=False)

    def as_manifest_entry(self) -> dict[str, Any]:
        entry = {"name": self.name, "key": self.key, "rows": self.rows, "digest": self.digest, "chunks": self.chunks}
        if self.method:
            entry["digest_method"] = self.method
        return entry


#: Reads the rows with ``lower < key <= upper`` (None: unbounded) in key order, at most
#: ``limit`` of them, and yields blocks ``(lines, last_key)``: ``lines`` are the rows' lines,
#: each ending in a newline, and ``last_key`` the key of the block's last row.
RangeReader = Callable[
    [Sequence[Any] | None, Sequence[Any] | None, int | None], Iterator[tuple[list[bytes], list[Any]]]
]
#: The keys of a block's lines, for the row index: each a list of key values, or (one
#: integer key column) a numpy array of them.
KeysOf = Callable[[list[bytes]], Any]


def table_digest_of(chunks: list[dict[str, Any]]) -> str:
    """``sha256:`` of the chunks' digests (raw bytes, in key order)."""
    return "sha256:" + hashlib.sha256(b"".join(bytes.fromhex(c["digest"]) for c in chunks)).hexdigest()


def fold_row_digests(prefixes: bytes) -> str:
    """A SQLite chunk digest: SHA-256 (hex) of its rows' digests, ``FOLD_BYTES`` each, in key order."""
    return hashlib.sha256(prefixes).hexdigest()


def index_prefixes(prefixes: bytes, width: int = FOLD_BYTES) -> bytes:
    """The first ``ROW_DIGEST_BYTES`` of each ``width``-byte row digest in ``prefixes``."""
    if width == ROW_DIGEST_BYTES:
        return prefixes
    import numpy as np  # only backups and drills need it: imported when used

    return np.frombuffer(prefixes, np.uint8).reshape(-1, width)[:, :ROW_DIGEST_BYTES].tobytes()


#: Set to False to compute line digests and integer keys in Python (tests, bench).
USE_NATIVE = True


def native() -> Any:
    """The native per-line module, or None (not built here, or turned off by ``USE_NATIVE``)."""
    return _linehash if USE_NATIVE else None


def line_digests(lines: list[bytes], width: int) -> bytes:
    """The first ``width`` bytes of each line's SHA-256, concatenated."""
    fast = native()
    if fast is not None:
        return bytes(fast.digests(lines, width))
    sha = hashlib.sha256
    return b"".join([sha(line).digest()[:width] for line in lines])


class _LineDigests:
    """Row digests of a block's lines (``SKETCH_DIGEST_BYTES`` each: per-row records keep
    the first ``ROW_DIGEST_BYTES`` of them), and their keys, collected for one chunk."""

    def __init__(self, keys_of: KeysOf | None) -> None:
        self.keys_of = keys_of
        self.digests: list[bytes] = []
        self.keys: list[Any] = []

    def add(self, lines: list[bytes]) -> None:
        self.digests.append(line_digests(lines, SKETCH_DIGEST_BYTES))
        if self.keys_of is not None:
            self.keys.append(self.keys_of(lines))

    def rows(self) -> ChunkRows:
        wide = b"".join(self.digests)
        digests = index_prefixes(wide, SKETCH_DIGEST_BYTES)
        if self.keys_of is None:
            return ChunkRows(None, digests, wide=wide)
        if self.keys and not isinstance(self.keys[0], list):  # integers, as numpy arrays
            import numpy as np  # only backups and drills need it: imported when used

            return ChunkRows(None, digests, np.concatenate(self.keys), wide=wide)
        return ChunkRows([key for block in self.keys for key in block], digests, wide=wide)


def digest_table(
    name: str,
    key: list[str],
    read: RangeReader,
    deadline: Deadline,
    chunk_rows: int = CHUNK_ROWS,
    *,
    index: RowIndexWriter | None = None,
    keys_of: KeysOf | None = None,
) -> TableDigest:
    """Digest a whole table, cutting it into chunks of ``chunk_rows`` rows (keyset paging);
    with ``index``, each chunk's row digests and keys are written to it."""
    result = TableDigest(name=name, key=key)
    lower: list[Any] | None = None
    while True:
        deadline.check(f"digesting table {name}")
        chunk = hashlib.sha256()
        rows = _LineDigests(keys_of) if index is not None else None
        count, last = 0, None
        # A table without a key is one chunk: there is nothing to page on.
        for lines, chunk_last in read(lower, None, chunk_rows if key else None):
            last = chunk_last  # read after the loop: the key of the chunk's last row
            chunk.update(b"".join(lines))
            count += len(lines)
            if rows is not None:
                rows.add(lines)
        final = not key or count < chunk_rows
        entry: dict[str, Any] = {"last_key": None if final else last, "rows": count, "digest": chunk.hexdigest()}
        if index is not None and rows is not None:
            entry["index"] = index.add(rows.rows())
        result.chunks.append(entry)
        result.rows += count
        if final:
            break
        lower = last
    result.digest = table_digest_of(result.chunks)
    return result


def digest_ranges(
    name: str,
    key: list[str],
    chunks: list[dict[str, Any]],
    read: RangeReader,
    deadline: Deadline,
    *,
    keys_of: KeysOf | None = None,
) -> TableDigest:
    """Digest a table over the key ranges of recorded ``chunks`` (as a drill does); where a
    chunk's digest differs and the backup has its row index record, read that range again
    for its rows (a drill that passes pays nothing for the index)."""
    result = TableDigest(name=name, key=key)
    lower: list[Any] | None = None
    for number, recorded in enumerate(chunks or [{"last_key": None}]):
        deadline.check(f"digesting table {name}")
        upper = recorded.get("last_key")
        chunk = hashlib.sha256()
        count = 0
        for lines, _last in read(lower, upper, None):
            chunk.update(b"".join(lines))
            count += len(lines)
        result.chunks.append({"last_key": upper, "rows": count, "digest": chunk.hexdigest()})
        if recorded.get("index") is not None and (
            chunk.hexdigest() != recorded.get("digest") or count != recorded.get("rows")
        ):
            rows = _LineDigests(keys_of)
            for lines, _last in read(lower, upper, None):
                rows.add(lines)
            result.rows_of[number] = rows.rows()
        result.rows += count
        lower = upper
    result.digest = table_digest_of(result.chunks)
    return result


def differing_ranges(recorded: list[dict[str, Any]], found: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The key ranges whose rows or digest differ: ``{chunk, after_key, up_to_key, rows_recorded, rows_found}``."""
    ranges = []
    lower = None
    for number, (was, now) in enumerate(zip(recorded, found, strict=True)):
        if was.get("digest") != now["digest"] or was.get("rows") != now["rows"]:
            ranges.append(
                {
                    "chunk": number,
                    "after_key": lower,
                    "up_to_key": was.get("last_key"),
                    "rows_recorded": was.get("rows"),
                    "rows_found": now["rows"],
                }
            )
        lower = was.get("last_key")
    return ranges


# --- the row index file ----------------------------------------------------------------------


class RowIndexWriter:
    """Appends chunk records to the row index file; ``add`` returns ``[offset, length]``
    for the manifest's chunk entry. Records may come in any order (two shells digest
    chunks side by side): the manifest, not the file's order, says which chunk is where."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        self._file: BinaryIO = open(path, "wb")  # noqa: SIM115 -- closed by close(), also on failure
        self._file.write(INDEX_MAGIC)
        self.offset = len(INDEX_MAGIC)
        self.rows = 0

    def add(self, rows: ChunkRows) -> list[int]:
        record = encode_record(rows)
        self._file.write(record)
        where = [self.offset, len(record)]
        self.offset += len(record)
        self.rows += rows.count
        return where

    def close(self) -> None:
        self._file.close()


def encode_record(rows: ChunkRows) -> bytes:
    """One chunk's record: its keys, compactly (see the module's docstring), then its digests;
    or, for rows with ``wide`` digests (PostgreSQL), their sketch when that is smaller."""
    if not (WRITE_SKETCHES and rows.wide is not None and rows.count):
        return _rows_record(rows)
    from aris3nb.backup import sketch  # numpy: only backups and drills need it

    # A per-row record holds ROW_DIGEST_BYTES a row besides its keys; a sketch is of a fixed
    # size. Each is computed only when the other might be the smaller.
    smallest_sketch = _RECORD_HEAD.size + sketch.record_size(8 if rows.keyed else 0)
    record = None
    if _RECORD_HEAD.size + rows.count * ROW_DIGEST_BYTES < smallest_sketch:
        record = _rows_record(rows)
        if len(record) <= smallest_sketch:
            return record
    elements = sketch.elements(_sketch_keys(rows), rows.wide)
    if elements is None:  # a key too long for a sketch
        return record or _rows_record(rows)
    size = _RECORD_HEAD.size + sketch.record_size(elements.width)
    if size >= _RECORD_HEAD.size + rows.count * ROW_DIGEST_BYTES:
        record = record or _rows_record(rows)
        if size >= len(record):
            return record
    return _RECORD_HEAD.pack(KIND_SKETCH, rows.count) + sketch.build(elements)


def _sketch_keys(rows: ChunkRows) -> Any:
    """The rows' keys as a sketch takes them: integers (a numpy array), key lists, or None."""
    if rows.integers is not None:
        return rows.integers
    return rows.key_list() if rows.keyed else None


def _rows_record(rows: ChunkRows) -> bytes:
    """The per-row record (kinds 0-3)."""
    if len(rows.digests) % ROW_DIGEST_BYTES:
        raise ValueError("row digests are not whole")
    count = rows.count
    if not rows.keyed:
        return _RECORD_HEAD.pack(KEYS_NONE, count) + rows.digests
    integers = _integer_keys(rows)
    if integers is not None:
        return _RECORD_HEAD.pack(KEYS_INTEGER, count) + integers + rows.digests
    keys = rows.key_list() or []
    if len(keys) != count:
        raise ValueError(f"{len(keys)} keys for {count} row digests")
    uuids = _uuid_keys(keys)
    if uuids is not None:
        return _RECORD_HEAD.pack(KEYS_UUID, count) + uuids + rows.digests
    packed = zlib.compress(json.dumps(keys, separators=(",", ":"), ensure_ascii=False).encode(), 1)
    return _RECORD_HEAD.pack(KEYS_JSON, count) + _JSON_HEAD.pack(len(packed)) + packed + rows.digests


def _integer_keys(rows: ChunkRows) -> bytes | None:
    """Keys of one integer column, strictly increasing, as a first key and deltas; else None."""
    import numpy as np  # only backups and drills need it: imported when used

    if rows.integers is not None:
        array = np.asarray(rows.integers, dtype=np.int64)
    else:
        keys = rows.keys or []
        if not keys or any(len(k) != 1 or type(k[0]) is not int or not -(2**63) <= k[0] < 2**63 for k in keys):
            return None
        array = np.array([k[0] for k in keys], dtype=np.int64)
    if len(array) != rows.count or not len(array):
        return None
    deltas = np.diff(array)
    if len(deltas) and int(deltas.min()) < 1:
        return None  # not strictly increasing: not what a key order gives
    largest = int(deltas.max()) if len(deltas) else 1
    if largest == 1:
        return _INT_HEAD.pack(int(array[0]), 0)
    width = next(w for w in (1, 2, 4, 8) if largest < 1 << (8 * w))
    return _INT_HEAD.pack(int(array[0]), width) + deltas.astype(_WIDTHS[width]).tobytes()


_WIDTHS = {1: "<u1", 2: "<u2", 4: "<u4", 8: "<u8"}


def _uuid_keys(keys: list[list[Any]]) -> bytes | None:
    """Keys of one text column that are all UUIDs written one way (SQLite's 32 hex digits,
    PostgreSQL's dashed form), as 16 bytes each; else None."""
    if not keys or any(len(k) != 1 or type(k[0]) is not str for k in keys):
        return None
    texts = [k[0] for k in keys]
    form = 0 if len(texts[0]) == 32 else 1 if len(texts[0]) == 36 else None
    if form is None:
        return None
    joined = "".join(texts).replace("-", "") if form else "".join(texts)
    if len(joined) != 32 * len(texts):
        return None
    try:
        packed = bytes.fromhex(joined)
    except ValueError:
        return None
    if _uuid_texts(form, packed) != texts:  # upper case, dashes elsewhere: not this form exactly
        return None
    return bytes([form]) + packed


def _uuid_texts(form: int, packed: bytes) -> list[str]:
    texts = [packed[n : n + 16].hex() for n in range(0, len(packed), 16)]
    return texts if form == 0 else [f"{t[:8]}-{t[8:12]}-{t[12:16]}-{t[16:20]}-{t[20:]}" for t in texts]


@dataclass
class ChunkSketch:
    """A chunk's record of kind 4: its row count and its sketch (``sketch.Sketch``)."""

    count: int
    sketch: Any

    @property
    def keyed(self) -> bool:
        from aris3nb.backup import sketch

        return bool(self.sketch.form != sketch.FORM_NONE)

    @property
    def capacity(self) -> int:
        return int(self.sketch.capacity)


def read_record(path: Path, where: Sequence[Any]) -> ChunkRows | ChunkSketch:
    """The chunk record at ``where`` (``[offset, length]``) of the index file; a record that
    does not decode is a ``BackupError`` naming the file (the manifest covers the file's
    SHA-256, so this means a file that validation would refuse, or a reader's bug)."""
    try:
        offset, length = (int(where[0]), int(where[1]))
        if offset < len(INDEX_MAGIC) or not 0 < length <= MAX_RECORD_BYTES:
            raise ValueError(f"record [{offset}, {length}] is out of bounds")
        with open(path, "rb") as handle:
            if handle.read(len(INDEX_MAGIC)) != INDEX_MAGIC:
                raise ValueError("it does not start with the row index magic (version 1)")
            handle.seek(offset)
            data = handle.read(length)
        if len(data) != length:
            raise ValueError(f"record [{offset}, {length}] runs past the end of the file")
        return decode_record(data)
    except (OSError, ValueError, TypeError, IndexError, struct.error, zlib.error) as exc:
        raise BackupError(f"row index {path.name}: {exc}") from exc


def decode_record(data: bytes) -> ChunkRows | ChunkSketch:
    kind, count = _RECORD_HEAD.unpack_from(data, 0)
    at = _RECORD_HEAD.size
    keys: list[list[Any]] | None
    if kind == KIND_SKETCH:
        from aris3nb.backup import sketch  # numpy: only backups and drills need it

        return ChunkSketch(count, sketch.parse(data[at:]))
    if kind == KEYS_NONE:
        keys = None
    elif kind == KEYS_INTEGER:
        import numpy as np  # only backups and drills need it: imported when used

        first, width = _INT_HEAD.unpack_from(data, at)
        at += _INT_HEAD.size
        steps = max(count - 1, 0)
        if width == 0:
            deltas = np.ones(steps, dtype=np.int64)
        elif width in _WIDTHS:
            deltas = np.frombuffer(data, _WIDTHS[width], steps, at).astype(np.int64)
            at += width * steps
        else:
            raise ValueError(f"key width {width} is not 0, 1, 2, 4 or 8")
        integers = np.concatenate((np.array([first], dtype=np.int64), first + np.cumsum(deltas)))[:count]
        digests = data[at:]
        if len(digests) != count * ROW_DIGEST_BYTES:
            raise ValueError(f"record holds {len(digests)} digest bytes for {count} rows")
        return ChunkRows(None, digests, integers)
    elif kind == KEYS_UUID:
        form = data[at]
        if form not in (0, 1):
            raise ValueError(f"UUID key form {form} is not 0 or 1")
        keys = [[text] for text in _uuid_texts(form, data[at + 1 : at + 1 + 16 * count])]
        at += 1 + 16 * count
    elif kind == KEYS_JSON:
        (size,) = _JSON_HEAD.unpack_from(data, at)
        at += _JSON_HEAD.size
        keys = json.loads(zlib.decompress(data[at : at + size]))
        at += size
        if not isinstance(keys, list) or len(keys) != count or not all(isinstance(k, list) for k in keys):
            raise ValueError("its keys are not a list of one key per row")
    else:
        raise ValueError(f"record kind {kind} is unknown")
    digests = data[at:]
    if len(digests) != count * ROW_DIGEST_BYTES:
        raise ValueError(f"record holds {len(digests)} digest bytes for {count} rows")
    return ChunkRows(keys, digests)


# --- naming the rows that differ ----------------------------------------------------------------


@dataclass
class RowDifferences:
    """Rows of a chunk that differ from the index: each ``(key, recorded digest, restored
    digest)``; a missing row has no restored digest, an extra one no recorded digest. For
    a table without a key, the key is None and rows are matched by digest."""

    changed: list[tuple[list[Any] | None, bytes, bytes]] = field(default_factory=list)
    missing: list[tuple[list[Any] | None, bytes, None]] = field(default_factory=list)
    extra: list[tuple[list[Any] | None, None, bytes]] = field(default_factory=list)
    #: Rows that differ and are not named (a sketch holding more differences than it can
    #: name): 0 when the lists are every difference, else a lower bound on the rest.
    unnamed: int = 0

    def __bool__(self) -> bool:
        return bool(self.changed or self.missing or self.extra or self.unnamed)


def _key_token(key: list[Any] | None) -> str:
    # Both sides come from the same encoding (the engine's, through JSON), so equal keys
    # have equal JSON; ints stay ints (a float would merge keys beyond 2**53).
    return json.dumps(key, ensure_ascii=False)


def compare_rows(recorded: ChunkRows | ChunkSketch, found: ChunkRows) -> RowDifferences:
    """The rows that differ between a chunk's recorded index record and its restored rows."""
    if isinstance(recorded, ChunkSketch):
        return _compare_sketch(recorded, found)
    differences = RowDifferences()
    recorded_keys, found_keys = recorded.key_list(), found.key_list()
    if recorded_keys is None or found_keys is None:
        counted_was = Counter(recorded.digest_at(n) for n in range(recorded.count))
        counted_now = Counter(found.digest_at(n) for n in range(found.count))
        differences.missing = [(None, d, None) for d in sorted((counted_was - counted_now).elements())]
        differences.extra = [(None, None, d) for d in sorted((counted_now - counted_was).elements())]
        return differences
    restored = {_key_token(k): (k, found.digest_at(n)) for n, k in enumerate(found_keys)}
    for number, key in enumerate(recorded_keys):
        digest = recorded.digest_at(number)
        now = restored.pop(_key_token(key), None)
        if now is None:
            differences.missing.append((key, digest, None))
        elif now[1] != digest:
            differences.changed.append((now[0], digest, now[1]))
    differences.extra = [(key, None, digest) for key, digest in restored.values()]
    return differences


def _compare_sketch(recorded: ChunkSketch, found: ChunkRows) -> RowDifferences:
    """The rows a sketch and the restored rows differ in, named as ``compare_rows`` names them
    (digests shortened to ``ROW_DIGEST_BYTES``, as per-row records hold them): a key read on
    both sides is a changed row, on the recorded side only a missing one, on the restored
    side only an extra one. When the sketch could not be read in full, a restored row read
    without its recorded half might be a changed row as well as an extra one: it is left
    unnamed (counted in ``unnamed``), never named as either."""
    from aris3nb.backup import sketch

    wide = found.wide if found.wide is not None else (b"" if not found.count else None)
    if wide is None:  # restored rows without sketch digests: nothing to compare the sketch with
        return RowDifferences(unnamed=max(1, abs(recorded.count - found.count)))
    try:
        result = sketch.difference(recorded.sketch, _sketch_keys(found), wide)
    except ValueError as exc:  # restored rows that are not rows of a chunk: a reader's bug
        raise BackupError(f"the restored rows do not fit the row index's sketch: {exc}") from exc
    differences = RowDifferences()
    if not recorded.keyed or not found.keyed:
        differences.missing = sorted((None, d[:ROW_DIGEST_BYTES], None) for _, d in result.recorded_only)
        differences.extra = sorted(
            (None, None, d[:ROW_DIGEST_BYTES]) for _, d in result.found_only + result.unrecordable
        )
        differences.unnamed = result.unnamed
        return differences
    keys = found.key_list() or []
    position = {_key_token(k): n for n, k in enumerate(keys)}
    recorded_keys = {_key_token(k) for k, _ in result.recorded_only}
    for key, digest in result.recorded_only:
        number = position.get(_key_token(key))
        if number is None:
            differences.missing.append((key, digest[:ROW_DIGEST_BYTES], None))
        else:
            differences.changed.append((keys[number], digest[:ROW_DIGEST_BYTES], found.digest_at(number)))
    unpaired = 0
    for key, digest in result.found_only:
        token = _key_token(key)
        if token in recorded_keys:
            continue  # the restored half of a changed row
        if result.unnamed:
            unpaired += 1  # extra, or changed with its recorded half among the unnamed
            continue
        differences.extra.append((key, None, digest[:ROW_DIGEST_BYTES]))
    differences.extra += [(key, None, digest[:ROW_DIGEST_BYTES]) for key, digest in result.unrecordable]
    differences.changed.sort(key=lambda row: position[_key_token(row[0])])
    differences.extra.sort(key=lambda row: position.get(_key_token(row[0]), len(keys)))
    differences.missing = _in_key_order(differences.missing)
    if result.unnamed:  # each row is at most two elements (its recorded and restored versions)
        differences.unnamed = max(1, unpaired, -(-(result.unnamed + unpaired) // 2))
    return differences


def _in_key_order(rows: list[Any]) -> list[Any]:
    """Rows a sketch names as missing, in key order as near as their values tell (it does not
    keep their places): value by value, numbers (and integers in text, PostgreSQL's form of
    an integer key column) before other text, which sorts by code point."""

    def order(row: Any) -> list[tuple[int, Any]]:
        return [
            (0, value)
            if isinstance(value, int) and not isinstance(value, bool)
            else (0, int(value))
            if isinstance(value, str) and _INTEGER_TEXT.fullmatch(value)
            else (1, str(value))
            for value in row[0]
        ]

    return sorted(rows, key=order)


_INTEGER_TEXT = re.compile(r"-?[0-9]{1,30}")
