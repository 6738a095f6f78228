"""A chunk's rows as a set-reconciliation sketch: an invertible Bloom lookup table (IBLT).

A row index record that keeps 8 bytes of digest per row costs a fifth of a compressed
PostgreSQL dump (about 40 bytes a row). A sketch costs a fixed size per chunk, whatever its
row count, and still names the rows that differ, as long as there are not too many: it is
sized by how many differing rows a drill should name in a chunk (``CAPACITY``), not by the
table. ``digest.encode_record`` writes one for a chunk whenever it is smaller than the
chunk's per-row record (so small tables and chunks stay exact).

Terms. An **element** is one row: ``(key bytes, row digest)``, the row digest the first
``DIGEST_BYTES`` (16) of the SHA-256 of the row's ``COPY`` line (which holds the key
columns, so the digest binds the key). Key bytes: one integer key column as its 8-byte
little-endian int64 (``FORM_INTEGER``); any other key as the compact JSON of its values list,
UTF-8 (``FORM_JSON``); a table without a key has none (``FORM_NONE``). They are zero-padded
to the record's key width ``W``: the longest key of the chunk, rounded up to a multiple of 8
(the xors run on 64-bit words); a key longer than ``MAX_KEY_BYTES`` means the chunk keeps
its per-row record.

A sketch is ``HASHES`` (3) sub-tables of ``CELLS_PER_TABLE`` cells; every element is added
to one cell of each, at a position mixed from its digest (splitmix64's finaliser on the two
64-bit halves, with different constants). A cell holds the count of its elements, the xor
of their key bytes, of their digests, and of their **check** (another mix of the digest).
Subtracting the sketch of the restored chunk's rows from the recorded one leaves the rows
that differ: those only in the backup with count +1, those only in the restored copy with
-1. A cell is **pure** when its count is ±1 and its check xor is the check of its digest xor:
it holds exactly one element, which is read off and removed from its three cells, which
may make others pure (peeling). When no cell is pure and some is not empty, peeling has
stalled: the rest cannot be named (``SketchDifference.unnamed``), and the caller says so.

A changed row is two elements (its recorded version, its restored version), but costs about
one: a recorded element read whose key a restored row holds makes that restored row the
other half of the change, removed at once without waiting for a pure cell. Capacity,
measured with ``named_in_full`` (random integer keys and digests, 192 cells, 4,000 trials
per figure, seed 0; 2026-11-29): the share of chunks whose differing rows are all named

=================== ===== ===== ===== ===== ===== ===== ===== ===== ===== ===== =====
rows differing          8    16    24    32    40    48    56    64    80    96   128
=================== ===== ===== ===== ===== ===== ===== ===== ===== ===== ===== =====
changed (%)         99.98 99.98 99.90 99.80 99.70 99.50 99.48 99.23 98.58 81.25  0.00
missing (%)         99.98 99.98 99.90 99.83 99.70 99.50 99.50 99.28 98.58 98.25 96.60
mixed, a third each 99.98 99.98 99.90 99.80 99.70 99.50 99.48 99.25 98.58 98.23 75.25
=================== ===== ===== ===== ===== ===== ===== ===== ===== ===== ===== =====

(extra rows are missing ones seen from the other side), so ``CAPACITY`` = 48 differing rows:
named in full with probability 99.5 % whatever their kind. What fails below it is mostly two
elements that share all three cells (about 1/64**3 per pair: 0.02 % of chunks with 8 rows
differing); past about 1.2 elements per cell (two per changed row) peeling stalls outright.
A stalled sketch still names the rows it read when what they are is certain (see
``digest.compare_rows``), never a wrong one: an element is read only from a cell whose
64-bit check matches, at the position its digest gives, and one read from the restored side
must be one of the restored rows.

Record body (after the index record's ``u8 kind | u32 rows``), little-endian::

    u8 key form | u16 W | u16 cells per sub-table (s) | i32 count x 3s | W bytes key xor x 3s |
    16 bytes digest xor x 3s | u64 check xor x 3s
"""

from __future__ import annotations

import json
import re
import struct
from dataclasses import dataclass, field
from typing import Any

import numpy as np

#: Bytes of a row digest in a sketch element (the row index's per-row records keep 8).
DIGEST_BYTES = 16
HASHES = 3
#: Cells per sub-table: 3 x 64 = 192 cells, 36 bytes each for an integer key (68 for a UUID).
CELLS_PER_TABLE = 64
#: Differing rows of a chunk that its sketch names in full with high probability (module docstring).
CAPACITY = 48
#: The longest key (its JSON, in bytes) a sketch holds; a chunk with a longer one keeps per-row digests.
MAX_KEY_BYTES = 256
FORM_INTEGER, FORM_JSON, FORM_NONE = 0, 1, 2
_HEAD = struct.Struct("<BHH")
#: The most cells per sub-table a reader accepts (a record is bounded whatever it says).
MAX_CELLS_PER_TABLE = 1 << 14

_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
#: Constants that make the three positions and the check different functions of the digest.
_K = tuple(np.uint64(c) for c in (0x9E3779B97F4A7C15, 0xD1B54A32D192ED03, 0x8CB92BA72F3D8DD7, 0xA0761D6478BD642F))
_SHIFTS = (np.uint64(30), np.uint64(27), np.uint64(31))
_JSON = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode


def _mix(x: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser, on an array of uint64 (wrapping arithmetic)."""
    x = x ^ (x >> _SHIFTS[0])
    x = x * _M1
    x = x ^ (x >> _SHIFTS[1])
    x = x * _M2
    return x ^ (x >> _SHIFTS[2])


def _check(lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    return _mix(_mix(hi ^ _K[3]) ^ lo)


def _positions(lo: np.ndarray, hi: np.ndarray, per_table: int) -> np.ndarray:
    """Each element's cell in each sub-table, as indices into all cells: shape (n, HASHES)."""
    s = np.uint64(per_table)
    return np.stack(
        (
            (_mix(lo ^ _K[0]) % s).astype(np.int64),
            (_mix(hi ^ _K[1]) % s).astype(np.int64) + per_table,
            (_mix(_mix(lo ^ _K[2]) ^ hi) % s).astype(np.int64) + 2 * per_table,
        ),
        axis=1,
    )


@dataclass
class Elements:
    """Rows as sketch elements: ``words`` holds, per row, its key (``width`` bytes as 64-bit
    words), its digest (two words) and its check; ``fits`` says which rows' keys fit ``width``
    (a restored row whose key does not is named directly: it cannot be a recorded one)."""

    form: int
    width: int
    words: np.ndarray
    fits: np.ndarray

    @property
    def key_words(self) -> int:
        return self.width // 8


def _key_form(keys: Any) -> int:
    if keys is None:
        return FORM_NONE
    return FORM_INTEGER if isinstance(keys, np.ndarray) else FORM_JSON


def _json_keys(keys: Any) -> list[bytes]:
    """Each key's compact JSON. Keys of text values (PostgreSQL's) that need no escaping are
    joined as text in one go: a JSON encoder call per row costs more than the row's SHA-256."""
    if isinstance(keys, np.ndarray):
        return [b"[%d]" % v for v in keys.tolist()]
    values = None
    if all(len(key) == 1 and type(key[0]) is str for key in keys):
        values = [key[0] for key in keys]
    elif all(key and all(type(v) is str for v in key) for key in keys):
        values = ['","'.join(key) for key in keys]
    if values and not _ESCAPED.search("".join(values)):  # no quote, backslash or control character
        return ('["' + '"]\n["'.join(values) + '"]').encode().split(b"\n")
    return [_JSON(k).encode() for k in keys]


#: What JSON escapes in a string (with ensure_ascii off): the fast path above takes none of it.
_ESCAPED = re.compile(r'["\\\x00-\x1f]')


def _integer_keys(keys: Any) -> tuple[np.ndarray, np.ndarray]:
    """Keys as int64, and which of them are one integer (restored keys may be of another type)."""
    if isinstance(keys, np.ndarray):
        return keys.astype(np.int64), np.ones(len(keys), dtype=bool)
    fit = [len(k) == 1 and type(k[0]) is int and -(2**63) <= k[0] < 2**63 for k in keys]
    integers = np.array([k[0] if ok else 0 for k, ok in zip(keys, fit, strict=True)], dtype=np.int64)
    return integers, np.array(fit, dtype=bool).reshape(-1)


def elements(keys: Any, digests: bytes, form: int | None = None, width: int | None = None) -> Elements | None:
    """The rows' elements. ``keys``: a numpy array (one integer key column), a list of each
    row's key values, or None (no key); ``digests``: ``DIGEST_BYTES`` per row. ``form`` and
    ``width`` are the recorded sketch's, for restored rows; without them, the rows' own (None:
    a key is longer than ``MAX_KEY_BYTES``)."""
    count = len(digests) // DIGEST_BYTES
    if len(digests) != count * DIGEST_BYTES or (keys is not None and len(keys) != count):
        raise ValueError(f"{len(digests)} digest bytes for {count if keys is None else len(keys)} keys")
    form = _key_form(keys) if form is None else form
    fits = np.ones(count, dtype=bool)
    if form == FORM_NONE:
        width, key_words = 0, np.zeros((count, 0), dtype=np.uint64)
    elif form == FORM_INTEGER:
        if keys is None:
            raise ValueError("the recorded chunk has keys, the restored one none")
        width = 8
        integers, fits = _integer_keys(keys)
        key_words = integers.view(np.uint64).reshape(count, 1)
    else:
        if keys is None:
            raise ValueError("the recorded chunk has keys, the restored one none")
        texts = _json_keys(keys)
        lengths = np.fromiter(map(len, texts), dtype=np.int64, count=count)
        longest = int(lengths.max()) if count else 0
        if width is None:
            if longest > MAX_KEY_BYTES:
                return None
            width = max(8, -(-longest // 8) * 8)
        fits = lengths <= width
        if not fits.all():
            texts = [t if ok else b"" for t, ok in zip(texts, fits.tolist(), strict=True)]
        padded = np.array(texts, dtype=f"S{width}") if count else np.zeros(0, dtype=f"S{width}")
        key_words = padded.view("<u8").reshape(count, width // 8).astype(np.uint64)
    halves = np.frombuffer(digests, dtype="<u8").reshape(count, 2).astype(np.uint64)
    check = _check(halves[:, 0], halves[:, 1]).reshape(count, 1)
    return Elements(form, width, np.concatenate((key_words, halves, check), axis=1), fits)


def record_size(width: int, per_table: int = CELLS_PER_TABLE) -> int:
    """Bytes of a sketch's record body for keys ``width`` bytes wide."""
    return _HEAD.size + HASHES * per_table * (4 + width + DIGEST_BYTES + 8)


@dataclass
class Sketch:
    """A sketch's cells: ``counts`` (int64) and ``words`` (key, digest and check xors)."""

    form: int
    width: int
    per_table: int
    counts: np.ndarray
    words: np.ndarray

    @property
    def capacity(self) -> int:
        """The differing rows it names in full with high probability (``CAPACITY`` at its size)."""
        return CAPACITY * self.per_table // CELLS_PER_TABLE

    def add(self, items: np.ndarray, signs: np.ndarray | int) -> None:
        """Add (+1) or remove (-1) elements, given as rows of words."""
        if not len(items):
            return
        where = _positions(items[:, -3], items[:, -2], self.per_table)
        weights = np.repeat(np.broadcast_to(signs, len(items)), HASHES).astype(np.float64)
        self.counts += np.rint(np.bincount(where.ravel(), weights, len(self.counts))).astype(np.int64)
        for j in range(HASHES):
            np.bitwise_xor.at(self.words, where[:, j], items)

    def to_bytes(self) -> bytes:
        key = self.width // 8
        return b"".join(
            (
                _HEAD.pack(self.form, self.width, self.per_table),
                self.counts.astype("<i4").tobytes(),
                self.words[:, :key].astype("<u8").tobytes(),
                self.words[:, key : key + 2].astype("<u8").tobytes(),
                self.words[:, key + 2].astype("<u8").tobytes(),
            )
        )


def _empty(form: int, width: int, per_table: int) -> Sketch:
    cells = HASHES * per_table
    return Sketch(
        form,
        width,
        per_table,
        np.zeros(cells, dtype=np.int64),
        np.zeros((cells, width // 8 + 3), dtype=np.uint64),
    )


def build(rows: Elements, per_table: int = CELLS_PER_TABLE) -> bytes:
    """The record body of a sketch holding every row of ``rows``."""
    sketch = _empty(rows.form, rows.width, per_table)
    sketch.add(rows.words, 1)
    return sketch.to_bytes()


def parse(body: bytes) -> Sketch:
    """A record body back into its cells; ``ValueError`` when it is not a sketch's."""
    form, width, per_table = _HEAD.unpack_from(body, 0)
    if form not in (FORM_INTEGER, FORM_JSON, FORM_NONE):
        raise ValueError(f"sketch key form {form} is not 0, 1 or 2")
    expected = {FORM_INTEGER: 8, FORM_NONE: 0}.get(form)
    if (expected is not None and width != expected) or width % 8 or width > MAX_KEY_BYTES:
        raise ValueError(f"sketch key width {width} does not fit key form {form}")
    if not 0 < per_table <= MAX_CELLS_PER_TABLE:
        raise ValueError(f"sketch of {per_table} cells per sub-table")
    if len(body) != record_size(width, per_table):
        raise ValueError(f"sketch of {len(body)} bytes; its head says {record_size(width, per_table)}")
    cells = HASHES * per_table
    at = _HEAD.size
    counts = np.frombuffer(body, "<i4", cells, at).astype(np.int64)
    at += 4 * cells
    keys = np.frombuffer(body, "<u8", cells * width // 8, at).reshape(cells, width // 8)
    at += cells * width
    digests = np.frombuffer(body, "<u8", 2 * cells, at).reshape(cells, 2)
    at += 16 * cells
    checks = np.frombuffer(body, "<u8", cells, at).reshape(cells, 1)
    words = np.concatenate((keys, digests, checks), axis=1).astype(np.uint64)
    return Sketch(form, width, per_table, counts, words)


# --- comparing a sketch with the restored rows ------------------------------------------------------

Element = tuple[list[Any] | None, bytes]


@dataclass
class SketchDifference:
    """The rows only in the backup and only in the restored chunk, each ``(key, digest)``
    (``DIGEST_BYTES``; key None for a table without one). ``unrecordable``: restored rows
    whose key is longer than the sketch's width or not of its form (so never a recorded
    row: only in the restored chunk, named without the sketch). ``unnamed``: 0 when these
    are every difference; else at least that many elements could not be read (peeling
    stalled, or what it read was not consistent with the restored rows), and the lists hold
    only what was read."""

    recorded_only: list[Element] = field(default_factory=list)
    found_only: list[Element] = field(default_factory=list)
    unrecordable: list[Element] = field(default_factory=list)
    unnamed: int = 0


def _key_of(form: int, words: np.ndarray) -> list[Any] | None:
    """An element's key back from its key words; ``ValueError`` when it is not a key."""
    if form == FORM_NONE:
        return None
    if form == FORM_INTEGER:
        return [int(words[:1].astype("<u8").view("<i8")[0])]
    key = json.loads(words.astype("<u8").tobytes().rstrip(b"\x00").decode())
    if not isinstance(key, list):
        raise ValueError("a sketch key is not a list of values")
    return key


class _Restored:
    """The restored rows that fit the sketch, found by digest and (a keyed chunk) by key
    words. Built only for a drill's differing chunk: a few thousand rows at most."""

    def __init__(self, found: Elements) -> None:
        self.found = found
        key_words = found.key_words
        rows = np.flatnonzero(found.fits).tolist()
        self.key_words = key_words
        self.by_digest = {found.words[n, key_words : key_words + 2].tobytes(): n for n in rows}
        self.by_key = {found.words[n, :key_words].tobytes(): n for n in rows} if key_words else {}

    def holds(self, item: np.ndarray) -> int | None:
        """The restored row that is this element, if any."""
        number = self.by_digest.get(item[self.key_words : self.key_words + 2].tobytes())
        if number is None or not np.array_equal(self.found.words[number], item):
            return None
        return number


def difference(recorded: Sketch | bytes, found_keys: Any, found_digests: bytes) -> SketchDifference:
    """The rows that differ between a recorded sketch and a chunk's restored rows (keys as
    ``elements`` takes them, ``DIGEST_BYTES`` of digest each; keys None when the restored
    table has no key, and then a keyed sketch names nothing)."""
    sketch = parse(recorded) if isinstance(recorded, (bytes, bytearray, memoryview)) else recorded
    sketch = Sketch(sketch.form, sketch.width, sketch.per_table, sketch.counts.copy(), sketch.words.copy())
    result = SketchDifference()
    if sketch.form == FORM_NONE:
        found_keys = None
    elif found_keys is None:  # the restored table lost its key: its rows cannot be matched by key
        result.unnamed = 1  # the chunk's digest differs: at least one row, which is all that is known
        return result
    found = elements(found_keys, found_digests, sketch.form, sketch.width)
    assert found is not None  # a recorded width is given: every key either fits it or is flagged
    key_words = sketch.width // 8
    listed = _key_list(found_keys)
    for number in np.flatnonzero(~found.fits).tolist():  # longer than any recorded key: not recorded
        digest = found.words[number, key_words : key_words + 2].astype("<u8").tobytes()
        result.unrecordable.append((listed[number] if listed else None, digest))
    restored = _Restored(found)
    sketch.add(found.words[found.fits], -1)
    items, signs = _peel(sketch, restored)
    if sketch.counts.any() or sketch.words.any():  # each element left is in one cell of each sub-table
        occupied = (sketch.counts != 0) | sketch.words.any(axis=1)
        result.unnamed = max(1, *(int(np.count_nonzero(part)) for part in np.split(occupied, HASHES)))
    for item, sign in zip(items, signs, strict=True):
        digest = item[key_words : key_words + 2].astype("<u8").tobytes()
        if (sign > 0) == (restored.holds(item) is not None):  # a recorded row restored as is, or a
            result.unnamed += 1  # restored one that is not there: not an element (a damaged record)
            continue
        try:
            key = _key_of(sketch.form, item[:key_words])
        except (ValueError, UnicodeError):
            result.unnamed += 1
            continue
        (result.recorded_only if sign > 0 else result.found_only).append((key, digest))
    return result


def _key_list(keys: Any) -> list[list[Any]] | None:
    if keys is None:
        return None
    return [[int(v)] for v in keys.tolist()] if isinstance(keys, np.ndarray) else list(keys)


#: At most this many elements read per cell: peeling ends whatever a record holds.
_PEEL_BOUND = 4


def _peel(sketch: Sketch, restored: _Restored) -> tuple[list[np.ndarray], list[int]]:
    """Read off pure cells until none is left, removing each element read; the elements and
    their signs (+1: only in the backup, -1: only in the restored rows).

    A recorded element read whose key a restored row holds (with another digest: the same
    digest would have cancelled) is a changed row: that restored row is the other half of
    the change, certainly not recorded (a chunk holds a key once), so it is removed too
    without waiting for a pure cell. A changed row thus costs about one element, not two."""
    cells = len(sketch.counts)
    items: list[np.ndarray] = []
    signs: list[int] = []
    removed: set[int] = set()  # restored rows read or paired
    while len(items) <= _PEEL_BOUND * cells:
        words = sketch.words
        pure = (np.abs(sketch.counts) == 1) & (_check(words[:, -3], words[:, -2]) == words[:, -1])
        where = np.flatnonzero(pure)
        found = words[where]
        # A pure cell holds an element only at a position its digest gives.
        positions = _positions(found[:, -3], found[:, -2], sketch.per_table)
        at_home = positions[np.arange(len(where)), where // sketch.per_table] == where
        where, found = where[at_home], found[at_home]
        if not len(where):
            break
        _unique, first = np.unique(found, axis=0, return_index=True)  # pure in several cells at once
        where, found = where[first], found[first]
        round_signs = sketch.counts[where].copy()
        sketch.add(found, -round_signs)
        items.extend(found)
        signs.extend(round_signs.tolist())
        read = list(zip(found, round_signs.tolist(), strict=True))
        removed.update(n for item, sign in read if sign < 0 and (n := restored.holds(item)) is not None)
        partners = []
        for item, sign in read:
            number = restored.by_key.get(item[: restored.key_words].tobytes()) if sign > 0 else None
            if number is not None and number not in removed and restored.holds(item) is None:
                removed.add(number)
                partners.append(number)
        if partners:
            halves = restored.found.words[partners]
            sketch.add(halves, 1)
            items.extend(halves)
            signs.extend([-1] * len(partners))
    return items, signs


def named_in_full(rows: int, kind: str, trials: int, *, per_table: int = CELLS_PER_TABLE, seed: int = 0) -> float:
    """The share of ``trials`` chunks with ``rows`` differing rows of ``kind`` (``changed``,
    ``missing``, ``extra``, or ``mixed``: a third of each) whose differences a sketch names in
    full, with random integer keys and digests: the module's figures. The rows both sides
    hold cancel exactly in the subtraction (counts and xors), so a chunk of only its
    differing rows decodes as the whole chunk does."""
    rng = np.random.default_rng(seed)
    named = 0
    for _trial in range(trials):
        keys = rng.choice(1 << 40, rows, replace=False).astype(np.int64)
        digests = np.frombuffer(rng.bytes(DIGEST_BYTES * rows), np.uint8).reshape(rows, DIGEST_BYTES)
        again = np.frombuffer(rng.bytes(DIGEST_BYTES * rows), np.uint8).reshape(rows, DIGEST_BYTES)
        changed, missing = {"changed": (rows, 0), "missing": (0, rows), "extra": (0, 0)}.get(
            kind, (rows // 3, rows // 3)
        )
        gone = slice(changed, changed + missing)  # recorded only
        new = slice(changed + missing, rows)  # restored only
        recorded_keys = np.concatenate((keys[:changed], keys[gone]))
        recorded = np.concatenate((digests[:changed], digests[gone]))
        found_keys = np.concatenate((keys[:changed], keys[new]))
        found = np.concatenate((again[:changed], digests[new]))
        result = difference(build(_elements(recorded_keys, recorded.tobytes()), per_table), found_keys, found.tobytes())
        named += not result.unnamed and len(result.recorded_only) + len(result.found_only) == rows + changed
    return named / trials


def _elements(keys: Any, digests: bytes) -> Elements:
    rows = elements(keys, digests)
    if rows is None:
        raise ValueError("a key is longer than a sketch holds")
    return rows
