"""The row index's sketch (kind 4): it names the rows that differ, exactly, up to its capacity,
and beyond it says so rather than name a wrong row.

Rows are built as the PostgreSQL digests build them: a row digest is the SHA-256 of the row's
``COPY`` line (key columns first), keys an integer array or lists of text values.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from typing import Any

import numpy as np
import pytest

from aris3nb.backup import digest, sketch
from aris3nb.backup.digest import ChunkRows, ChunkSketch, compare_rows, decode_record, encode_record

ROWS = 5_000


def chunk(keys: list[Any], values: list[str], *, integer: bool = True) -> ChunkRows:
    """A chunk's rows as ``digest._LineDigests`` gives them: keys, 8- and 16-byte digests."""
    lines = [
        ("\t".join(str(v) for v in (k if isinstance(k, list) else [k])) + f"\t{value}\n").encode()
        for k, value in zip(keys, values, strict=True)
    ]
    wide = b"".join(hashlib.sha256(line).digest()[: sketch.DIGEST_BYTES] for line in lines)
    prefixes = digest.index_prefixes(wide, sketch.DIGEST_BYTES)
    if integer:
        return ChunkRows(None, prefixes, np.array(keys, dtype=np.int64), wide=wide)
    return ChunkRows([k if isinstance(k, list) else [k] for k in keys], prefixes, wide=wide)


def integer_keys(count: int = ROWS, first: int = 1) -> list[int]:
    return list(range(first, first + count))


def uuid_keys(count: int = ROWS) -> list[str]:
    return sorted(str(uuid.UUID(int=(n * 0x9E3779B97F4A7C15) % (1 << 128))) for n in range(1, count + 1))


def composite_keys(count: int = ROWS) -> list[list[str]]:
    return [[str(n // 4), f"tag-{n % 4}"] for n in range(count)]


KEYS = {
    "integer": (integer_keys, True),
    "uuid": (uuid_keys, False),
    "composite": (composite_keys, False),
}


def recorded(keys: list[Any], values: list[str], *, integer: bool) -> ChunkSketch:
    record = encode_record(chunk(keys, values, integer=integer))
    assert record[0] == digest.KIND_SKETCH
    was = decode_record(record)
    assert isinstance(was, ChunkSketch) and was.count == len(keys)
    return was


def key_of(key: Any) -> list[Any]:
    return key if isinstance(key, list) else [key]


def named(differences: digest.RowDifferences) -> dict[str, list[str]]:
    return {
        kind: [json.dumps(row[0]) for row in getattr(differences, kind)] for kind in ("changed", "missing", "extra")
    }


def expect(changed: list[Any] = (), missing: list[Any] = (), extra: list[Any] = ()) -> dict[str, list[str]]:
    return {
        "changed": [json.dumps(key_of(k)) for k in changed],
        "missing": [json.dumps(key_of(k)) for k in missing],
        "extra": [json.dumps(key_of(k)) for k in extra],
    }


# --- the record ---------------------------------------------------------------------------------------


def test_a_sketch_round_trips_through_its_bytes() -> None:
    rows = chunk(integer_keys(), [f"v{n}" for n in range(ROWS)])
    elements = sketch.elements(rows.integers, rows.wide)
    body = sketch.build(elements)
    assert len(body) == sketch.record_size(8) == 5 + 192 * 36
    assert sketch.parse(body).to_bytes() == body
    was = decode_record(encode_record(rows))
    assert isinstance(was, ChunkSketch) and was.count == ROWS and was.keyed and was.capacity == sketch.CAPACITY


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        (lambda b: b[:-1], "bytes; its head says"),
        (lambda b: b"\x07" + b[1:], "key form 7"),
        (lambda b: b[:1] + b"\x10\x00" + b[3:], "key width 16"),
        (lambda b: b[:3] + b"\x00\x00" + b[5:], "0 cells per sub-table"),
    ],
)
def test_a_damaged_sketch_is_refused(body: Any, problem: str) -> None:
    rows = chunk(integer_keys(), ["v"] * ROWS)
    good = sketch.build(sketch.elements(rows.integers, rows.wide))
    with pytest.raises(ValueError, match=problem):
        sketch.parse(body(good))


def test_the_record_is_chosen_by_size() -> None:
    """A sketch has a fixed size: a small chunk keeps its exact per-row record, a big one gets
    the sketch; rows without 16-byte digests (SQLite) always keep per-row records."""
    small = chunk(integer_keys(100), ["v"] * 100)
    assert encode_record(small)[0] == digest.KEYS_INTEGER
    big = chunk(integer_keys(), ["v"] * ROWS)
    assert len(encode_record(big)) == 5 + sketch.record_size(8) < len(digest._rows_record(big))
    sqlite_like = ChunkRows(None, big.digests, big.integers)
    assert encode_record(sqlite_like)[0] == digest.KEYS_INTEGER
    assert decode_record(encode_record(sqlite_like)).digests == big.digests
    uuids = chunk(uuid_keys(), ["v"] * ROWS, integer=False)
    assert encode_record(uuids)[0] == digest.KIND_SKETCH
    assert len(encode_record(uuids)) == 5 + sketch.record_size(40)  # ["8-4-4-4-12"] is 40 bytes of JSON
    keyless = ChunkRows(None, big.digests, wide=big.wide)
    assert decode_record(encode_record(keyless)).keyed is False


def test_a_key_longer_than_a_sketch_holds_keeps_per_row_digests() -> None:
    keys = [f"{n:06d}" + "x" * 300 for n in range(ROWS)]
    rows = chunk(keys, ["v"] * ROWS, integer=False)
    assert sketch.elements(rows.key_list(), rows.wide) is None
    assert encode_record(rows)[0] == digest.KEYS_JSON


# --- naming the rows -------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", KEYS)
def test_no_difference_names_nothing(kind: str) -> None:
    make, integer = KEYS[kind]
    keys, values = make(), [f"v{n}" for n in range(ROWS)]
    differences = compare_rows(recorded(keys, values, integer=integer), chunk(keys, values, integer=integer))
    assert not differences and differences.unnamed == 0


@pytest.mark.parametrize("kind", KEYS)
def test_one_changed_one_missing_one_extra_row_are_named(kind: str) -> None:
    make, integer = KEYS[kind]
    keys, values = make(), [f"v{n}" for n in range(ROWS)]
    was = recorded(keys[:-1], values[:-1], integer=integer)  # the last key is inserted after
    now_values = list(values)
    now_values[1233] = "forged"
    now_keys = keys[:2344] + keys[2345:]
    now_values = now_values[:2344] + now_values[2345:]
    now = chunk(now_keys, now_values, integer=integer)
    differences = compare_rows(was, now)
    assert named(differences) == expect([keys[1233]], [keys[2344]], [keys[-1]])
    assert differences.unnamed == 0
    [(key, was_digest, now_digest)] = differences.changed
    assert was_digest == chunk([keys[1233]], [values[1233]], integer=integer).digests  # 8 bytes, as per-row
    assert now_digest == now.digest_at(1233) and len(now_digest) == digest.ROW_DIGEST_BYTES
    assert differences.missing[0][1] == chunk([keys[2344]], [values[2344]], integer=integer).digests
    assert differences.extra[0][2] == now.digest_at(len(now_keys) - 1)


@pytest.mark.parametrize("kind", KEYS)
@pytest.mark.parametrize("change", ["changed", "missing", "extra", "mixed"])
def test_capacity_many_differences_are_named_exactly(kind: str, change: str) -> None:
    make, integer = KEYS[kind]
    keys, values = make(), [f"v{n}" for n in range(ROWS)]
    differing = list(range(7, ROWS, ROWS // sketch.CAPACITY))[: sketch.CAPACITY]
    assert len(differing) == sketch.CAPACITY
    kinds = {
        n: ["changed", "missing", "extra"][i % 3] if change == "mixed" else change for i, n in enumerate(differing)
    }
    recorded_rows = [n for n in range(ROWS) if kinds.get(n) != "extra"]
    restored_rows = [n for n in range(ROWS) if kinds.get(n) != "missing"]
    was = recorded([keys[n] for n in recorded_rows], [values[n] for n in recorded_rows], integer=integer)
    now_values = [values[n] + ("*" if kinds.get(n) == "changed" else "") for n in restored_rows]
    differences = compare_rows(was, chunk([keys[n] for n in restored_rows], now_values, integer=integer))
    assert differences.unnamed == 0
    assert named(differences) == expect(
        *([keys[n] for n in differing if kinds[n] == kind] for kind in ("changed", "missing", "extra"))
    )


@pytest.mark.parametrize("kind", KEYS)
def test_beyond_capacity_the_rest_is_unnamed_and_nothing_is_named_wrongly(kind: str) -> None:
    make, integer = KEYS[kind]
    keys, values = make(), [f"v{n}" for n in range(ROWS)]
    for many, seed in ((150, 1), (400, 2), (1_000, 3)):
        rng = np.random.default_rng(seed)
        differing = set(rng.choice(ROWS, many, replace=False).tolist())
        kinds = {n: ["changed", "missing", "extra"][n % 3] for n in differing}
        recorded_rows = [n for n in range(ROWS) if kinds.get(n) != "extra"]
        restored_rows = [n for n in range(ROWS) if kinds.get(n) != "missing"]
        was = recorded([keys[n] for n in recorded_rows], [values[n] for n in recorded_rows], integer=integer)
        now_values = [values[n] + ("*" if kinds.get(n) == "changed" else "") for n in restored_rows]
        differences = compare_rows(was, chunk([keys[n] for n in restored_rows], now_values, integer=integer))
        assert differences.unnamed >= 1, many
        truth = expect(
            *([keys[n] for n in sorted(differing) if kinds[n] == k] for k in ("changed", "missing", "extra"))
        )
        for change, rows in named(differences).items():
            assert set(rows) <= set(truth[change]), (many, change)
        assert sum(len(v) for v in named(differences).values()) + differences.unnamed <= many


def test_a_restored_key_longer_than_the_sketch_holds_is_extra() -> None:
    """A hostile restored row whose key is longer than any recorded one cannot be a recorded
    row: it is named extra directly (it is not squeezed into the sketch's key width)."""
    keys, values = uuid_keys(), [f"v{n}" for n in range(ROWS)]
    was = recorded(keys, values, integer=False)
    assert was.sketch.width == 40
    long_key = keys[10] + "-" + "f" * 500
    now = chunk([*keys, long_key], [*values, "hostile"], integer=False)
    differences = compare_rows(was, now)
    assert named(differences) == expect(extra=[long_key]) and differences.unnamed == 0
    assert differences.extra[0][2] == now.digest_at(ROWS)


def test_a_restored_key_of_another_type_is_extra_and_the_recorded_ones_missing() -> None:
    keys, values = integer_keys(200, first=1), ["v"] * 200
    rows = chunk(keys + integer_keys(4_800, first=1_000), ["v"] * ROWS)
    was = decode_record(encode_record(rows))
    assert isinstance(was, ChunkSketch)
    texts = chunk([str(k) for k in keys[:3]], values[:3], integer=False)  # the key is text now
    restored = ChunkRows(
        [*texts.key_list(), *[[k] for k in rows.integers[3:].tolist()]],
        texts.digests + rows.digests[3 * 8 :],
        wide=texts.wide + rows.wide[3 * 16 :],
    )
    differences = compare_rows(was, restored)
    assert named(differences) == expect(missing=keys[:3], extra=[[str(k)] for k in keys[:3]])


def test_a_table_without_a_key_is_named_by_digest() -> None:
    values = [f"row {n}" for n in range(ROWS)]
    lines = [f"{v}\n".encode() for v in values]
    wide = b"".join(hashlib.sha256(line).digest()[:16] for line in lines)
    was = decode_record(encode_record(ChunkRows(None, digest.index_prefixes(wide, 16), wide=wide)))
    assert isinstance(was, ChunkSketch) and not was.keyed
    changed = wide[: 16 * 9] + hashlib.sha256(b"row 9 changed\n").digest()[:16] + wide[16 * 10 :]
    differences = compare_rows(was, ChunkRows(None, digest.index_prefixes(changed, 16), wide=changed))
    assert differences.changed == [] and differences.unnamed == 0
    assert [d for _, d, _ in differences.missing] == [wide[16 * 9 : 16 * 9 + 8]]
    assert [d for _, _, d in differences.extra] == [changed[16 * 9 : 16 * 9 + 8]]


def test_restored_rows_without_sketch_digests_are_unnamed_not_matched() -> None:
    rows = chunk(integer_keys(), ["v"] * ROWS)
    was = decode_record(encode_record(rows))
    differences = compare_rows(was, ChunkRows(None, rows.digests, rows.integers))
    assert differences.unnamed >= 1 and not (differences.changed or differences.missing or differences.extra)


def test_a_restored_table_that_lost_its_key_is_unnamed() -> None:
    rows = chunk(integer_keys(), ["v"] * ROWS)
    was = decode_record(encode_record(rows))
    values = ["changed"] + ["v"] * (ROWS - 1)
    now = chunk(integer_keys(), values)
    differences = compare_rows(was, ChunkRows(None, now.digests, wide=now.wide))
    assert differences.unnamed >= 1 and not (differences.changed or differences.missing or differences.extra)


def test_the_capacity_figures_hold() -> None:
    """The module's figures, on fewer trials: well inside capacity every trial decodes."""
    assert sketch.named_in_full(sketch.CAPACITY // 2, "changed", 50) == 1.0
    assert sketch.named_in_full(sketch.CAPACITY // 2, "mixed", 50) == 1.0
    assert sketch.named_in_full(4 * sketch.CAPACITY, "missing", 20) == 0.0  # far beyond it: never in full


@pytest.mark.parametrize(
    "keys",
    [
        [["3f2a0000-0000-4000-8000-000000000001"], ["b"], ["é ü 東京"]],
        [["1234", "promo"], ["1234", "window"]],
        [['say "hi"'], ["plain"]],  # a quote: escaped, so every key goes through the JSON encoder
        [["back\\slash"], ["tab\there"], ["new\nline"], ["\x7f"]],
        [[1234, "promo"], ["1", "a"]],  # not all text
    ],
)
def test_key_bytes_are_the_compact_json_of_the_key(keys: list[list[Any]]) -> None:
    assert sketch._json_keys(keys) == [json.dumps(k, separators=(",", ":"), ensure_ascii=False).encode() for k in keys]
