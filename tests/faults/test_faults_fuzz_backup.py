"""Hostile backups, fuzzed with hypothesis: the manifest reader and validator
(``read_manifest``, ``validate_backup``) and the drill report reader (``read_drill_report``)
given random bytes, truncated and bit-flipped files, and real documents mutated field by
field (types, paths, digests, names), with and without a recomputed manifest digest.

What must hold, for every input:

* nothing but an ``Aris3nbError`` ever escapes (a ``ManifestUnreadable``, exit 2), or the
  validator returns its list of problems;
* validation never passes when a file of the backup differs from what the manifest lists
  (an independent oracle re-hashes the folder), nor for a document other than the one the
  digest was computed over;
* validation only reads, and only inside the backup folder: an audit hook (PEP 578) records
  every file opened and folder listed, and any write, anywhere, while it runs.

The number of examples per property is set by EXAMPLES; `pytest --hypothesis-show-statistics`
prints how many ran.
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import json
import os
import shutil
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aris3nb import migrate
from aris3nb.backup.create import create_backup, schema_tables_at
from aris3nb.backup.drill import read_drill_report, restore_verify
from aris3nb.backup.manifest import MANIFEST_NAME, Validation, manifest_digest, validate_backup
from aris3nb.core.errors import Aris3nbError, DrillFailed, ManifestUnreadable
from aris3nb.core.files import canonical_json
from aris3nb.core.settings import load_settings

EXAMPLES = 300
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=False,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


# --- the real backup every example starts from ------------------------------------------------


@pytest.fixture(scope="module")
def pristine(small_sqlite_template: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real, valid backup (SQLite, seeded, with export files), made once."""
    folder = tmp_path_factory.mktemp("fuzz-backup")
    source = folder / "source"
    shutil.copytree(small_sqlite_template, source)
    made = create_backup(
        f"sqlite:///{source / 'aris3.db'}",
        "fuzz_base",
        settings=load_settings(artifacts={"dir": folder / "artifacts"}),
        exports_dir=source / "exports",
    )
    assert validate_backup(made.path, schema_tables_at).ok
    return made.path


@pytest.fixture(scope="module")
def drill_report(pristine: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A real drill report (of a drill that failed on a forged table digest: it has a diff)."""
    folder = tmp_path_factory.mktemp("fuzz-drill") / pristine.name  # a backup's folder bears its name
    shutil.copytree(pristine, folder)
    document = json.loads((folder / MANIFEST_NAME).read_text())
    stock = next(t for t in document["tables"] if t["name"] == "stock_items")
    stock["chunks"][0]["digest"] = "0" * 64
    stock["digest"] = "sha256:" + hashlib.sha256(bytes(32)).hexdigest()
    document["manifest_digest"] = manifest_digest(document)
    (folder / MANIFEST_NAME).write_text(json.dumps(document))
    settings_ = load_settings(artifacts={"dir": folder.parent / "artifacts"}, backup={"drill_enabled": True})
    with pytest.raises(DrillFailed) as failed:
        restore_verify(folder, settings=settings_)
    report = read_drill_report(Path(failed.value.report_path))
    assert report["diff"], "a report with every section filled"
    return report


@contextlib.contextmanager
def copy_of(pristine: Path) -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="aris3nb-fuzz-") as scratch:
        folder = Path(scratch) / pristine.name
        shutil.copytree(pristine, folder, symlinks=True)
        yield folder


# --- the audit hook: what validation touches ---------------------------------------------------

_WRITES = {
    "os.remove",
    "os.unlink",
    "os.rename",
    "os.replace",
    "os.mkdir",
    "os.rmdir",
    "os.symlink",
    "os.link",
    "os.chmod",
    "os.chown",
    "os.truncate",
    "os.utime",
    "shutil.rmtree",
    "shutil.copyfile",
    "shutil.move",
}


class Touches:
    """Files opened, folders listed and writes attempted while ``watching``."""

    active: Touches | None = None

    def __init__(self) -> None:
        self.read: list[str] = []
        self.written: list[str] = []

    @staticmethod
    def hook(event: str, args: tuple[Any, ...]) -> None:
        current = Touches.active
        if current is None:
            return
        if event == "open":
            path, mode = args[0], args[1] or "r"
            if isinstance(path, (str, bytes, os.PathLike)):
                (current.written if any(c in str(mode) for c in "wax+") else current.read).append(os.fsdecode(path))
        elif (
            event in ("os.scandir", "os.listdir", "os.walk") and args and isinstance(args[0], (str, bytes, os.PathLike))
        ):
            current.read.append(os.fsdecode(args[0]))
        elif event in _WRITES:
            current.written.append(f"{event} {args!r}")

    @contextlib.contextmanager
    def watching(self) -> Iterator[Touches]:
        Touches.active = self
        try:
            yield self
        finally:
            Touches.active = None

    def outside(self, folder: Path) -> list[str]:
        """What was read outside ``folder``, but for aris3nb's own code (its migrations,
        which say what tables a revision has, and the Python installation)."""
        allowed = [os.path.realpath(folder), *PROGRAM_FILES]
        return [
            p
            for p in self.read
            if not any(os.path.realpath(p) == a or os.path.realpath(p).startswith(a + os.sep) for a in allowed)
        ]


ROOT = Path(__file__).resolve().parents[2]
PROGRAM_FILES = [
    os.path.realpath(p)
    for p in (ROOT / "migrations", ROOT / "alembic.ini", ROOT / "aris3nb", sys.prefix, sys.base_prefix)
]


sys.addaudithook(Touches.hook)  # hooks cannot be removed; this one is idle unless a test is watching


def validate_watched(folder: Path, schema_tables: Any = None) -> Validation | ManifestUnreadable:
    """Validate ``folder``; return the validation or the one error allowed, and check that
    it read only inside the folder and wrote nothing."""
    touches = Touches()
    result: Validation | ManifestUnreadable
    with touches.watching():
        try:
            result = validate_backup(folder, schema_tables)
        except ManifestUnreadable as exc:
            result = exc
        except Aris3nbError as exc:  # any other typed error is a defect of validation too
            pytest.fail(f"validate_backup raised {type(exc).__name__}: {exc}")
    assert not touches.written, f"validation wrote: {touches.written}"
    assert not touches.outside(folder), f"validation read outside the backup: {touches.outside(folder)}"
    if isinstance(result, Validation):
        for problem in result.problems:
            assert isinstance(problem, str) and "\n" not in problem
    return result


def files_match(folder: Path, document: dict[str, Any]) -> bool:
    """The oracle: the folder holds exactly the listed files (regular files, no links on
    the way), each of the listed size and SHA-256. Computed without aris3nb."""
    listed = {}
    for entry in document.get("files") or []:
        if not isinstance(entry, dict) or not isinstance(entry.get("path"), str):
            return False
        listed[entry["path"]] = entry
    found = {}
    for root, dirs, files in os.walk(folder):
        for name in dirs + files:
            path = Path(root) / name
            relative = path.relative_to(folder).as_posix()
            if path.is_symlink():
                return False
            if path.is_file() and relative != MANIFEST_NAME:
                data = path.read_bytes()
                found[relative] = (len(data), hashlib.sha256(data).hexdigest())
    return set(found) == set(listed) and all(
        found[p] == (listed[p].get("size"), listed[p].get("sha256")) for p in found
    )


SCHEMA_AT_HEAD: dict[str, set[str]] = {}


@pytest.fixture(scope="module", autouse=True)
def _schemas_known_before_watching() -> None:
    """``schema_tables_at`` migrates a throwaway SQLite file (in the temporary folder) the
    first time it meets a revision, then remembers it: meet every known revision before
    any validation is watched, so that what is watched is validation itself."""
    for revision in _known_revisions():
        schema_tables_at(revision)
    head = migrate.head_revision()
    SCHEMA_AT_HEAD[head] = set(schema_tables_at(head) or ())


def _known_revisions() -> list[str]:
    from alembic.script import ScriptDirectory

    return [script.revision for script in ScriptDirectory.from_config(migrate.alembic_config()).walk_revisions()]


def schema_tables_pure(revision: str | None) -> set[str] | None:
    """``schema_tables_at`` for the head revision only: no Alembic at all while watched."""
    if revision is None:
        return set()  # never migrated: no tables
    return SCHEMA_AT_HEAD.get(revision) if isinstance(revision, str) else None


# --- strategies ----------------------------------------------------------------------------------

LOOKALIKES = ["ехроrts", "ｅｘｐｏｒｔｓ", "exports\u200b", "database\u2215dump", "..\u2215x", "\uff0e\uff0e/x"]
HOSTILE_PATHS = st.one_of(
    st.sampled_from(
        [
            "..",
            "../outside.csv",
            "../../etc/passwd",
            "/etc/passwd",
            "exports/../../x",
            "exports/./a.csv",
            "exports//a.csv",
            "exports/",
            "a\\..\\b",
            "x\x00y",
            "",
            ".",
            "manifest.json",
            "database",
            "a" * 300,
            "/".join(["d"] * 2000),
            "exports/" + "é" * 200,
            *LOOKALIKES,
            "link_out/secret.txt",
            "link_out",
            "database/aris3.sqlite3/x",
        ]
    ),
    st.text(min_size=1, max_size=40),
    st.lists(
        st.sampled_from(["..", ".", "exports", "database", "x", "", "link_out", "ехроrts"]), min_size=1, max_size=6
    ).map("/".join),
)
SURROGATES = st.sampled_from(["\ud800", "\udfff", "a\udc80b"])
TEXT = st.one_of(st.text(max_size=30), SURROGATES, st.sampled_from(LOOKALIKES))
JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | TEXT
    | HOSTILE_PATHS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(TEXT, inner, max_size=3),
    max_leaves=6,
)


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every place in a JSON document, as a path of keys and indexes."""
    found = [prefix]
    if isinstance(node, dict):
        for key, value in node.items():
            found += _paths(value, (*prefix, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            found += _paths(value, (*prefix, index))
    return found


def _at(document: Any, path: tuple[Any, ...]) -> Any:
    for step in path:
        document = document[step]
    return document


@st.composite
def mutated(draw: st.DrawFn, original: dict[str, Any]) -> dict[str, Any]:
    """``original`` with one to three random edits: a value replaced (any JSON value, a
    hostile path, a near miss of the same type), a key removed or added, an element
    duplicated or removed."""
    document = copy.deepcopy(original)
    for _ in range(draw(st.integers(1, 3))):
        places = _paths(document)
        path = draw(st.sampled_from(places[1:] if len(places) > 1 else places))
        if not path:
            continue
        parent, last = _at(document, path[:-1]), path[-1]
        value = parent[last]
        edit = draw(st.sampled_from(["replace", "near", "remove", "add", "duplicate"]))
        if edit == "replace":
            parent[last] = draw(JSON_VALUES)
        elif edit == "near":
            parent[last] = draw(_near(value))
        elif edit == "remove":
            del parent[last]
        elif edit == "add" and isinstance(parent, dict):
            parent[draw(TEXT)] = draw(JSON_VALUES)
        elif edit == "duplicate" and isinstance(parent, list):
            parent.insert(last, copy.deepcopy(value))
    return document


def _near(value: Any) -> st.SearchStrategy[Any]:
    """A value of the same kind that differs a little."""
    if isinstance(value, bool):
        return st.just(not value)
    if isinstance(value, int):
        return st.sampled_from([value + 1, value - 1, -value - 1, str(value), float(value) + 0.5, True])
    if isinstance(value, str):
        return st.one_of(
            HOSTILE_PATHS,
            st.sampled_from(
                [
                    value[:-1],
                    value + "x",
                    value.upper(),
                    value + "\x00",
                    "../" + value,
                    "/" + value,
                    value.replace("a", "а"),
                ]
            ),
        )
    return JSON_VALUES


def write_document(folder: Path, document: Any, *, reseal: bool) -> None:
    if reseal and isinstance(document, dict):
        with contextlib.suppress(UnicodeEncodeError, ValueError, TypeError):
            document["manifest_digest"] = manifest_digest(document)
    (folder / MANIFEST_NAME).write_text(json.dumps(document))  # ensure_ascii: surrogates survive as \\ud800


def _same(a: Any, b: Any) -> bool:
    try:
        return canonical_json(a) == canonical_json(b)
    except (UnicodeEncodeError, ValueError, TypeError):
        return False


# --- properties -----------------------------------------------------------------------------------


@FUZZ
@given(data=st.binary(max_size=4096))
def test_random_bytes_are_refused_in_one_line(pristine: Path, data: bytes) -> None:
    with copy_of(pristine) as folder:
        (folder / MANIFEST_NAME).write_bytes(data)
        result = validate_watched(folder, schema_tables_pure)
        assert isinstance(result, ManifestUnreadable) or not result.ok
        if isinstance(result, ManifestUnreadable):
            assert "\n" not in str(result)


@FUZZ
@given(data=st.data())
def test_truncated_or_bit_flipped_manifests_never_validate_as_something_else(
    pristine: Path, data: st.DataObject
) -> None:
    original = (pristine / MANIFEST_NAME).read_bytes()
    cut = data.draw(st.integers(0, len(original)), label="cut")
    damaged = bytearray(original[:cut] if data.draw(st.booleans(), label="truncate") else original)
    for _ in range(data.draw(st.integers(0, 3), label="flips")):
        if damaged:
            at = data.draw(st.integers(0, len(damaged) - 1), label="at")
            damaged[at] ^= 1 << data.draw(st.integers(0, 7), label="bit")
    with copy_of(pristine) as folder:
        (folder / MANIFEST_NAME).write_bytes(bytes(damaged))
        result = validate_watched(folder, schema_tables_pure)
        if isinstance(result, Validation) and result.ok:
            # Only a change the digest does not cover (JSON whitespace) may still validate.
            assert _same(result.manifest.document, json.loads(original)), "a changed manifest validated"


@FUZZ
@given(data=st.data())
def test_a_mutated_manifest_without_its_digest_recomputed_never_validates(pristine: Path, data: st.DataObject) -> None:
    original = json.loads((pristine / MANIFEST_NAME).read_text())
    document = data.draw(mutated(original), label="document")
    with copy_of(pristine) as folder:
        write_document(folder, document, reseal=False)
        result = validate_watched(folder, schema_tables_at)
        if isinstance(result, Validation) and result.ok:
            assert _same(document, original), "an edited manifest validated"


@FUZZ
@given(data=st.data())
def test_a_forged_manifest_validates_only_if_it_describes_the_files_exactly(
    pristine: Path, data: st.DataObject
) -> None:
    """The forger recomputes the manifest digest after editing (the digest detects
    accidents, not forgers): validation may then pass, but only for a manifest whose files
    list is exactly the folder's content, and only with a well-formed document."""
    original = json.loads((pristine / MANIFEST_NAME).read_text())
    document = data.draw(mutated(original), label="document")
    with copy_of(pristine) as folder:
        write_document(folder, document, reseal=True)
        result = validate_watched(folder, schema_tables_at)
        if isinstance(result, Validation) and result.ok:
            assert files_match(folder, result.manifest.document), (
                "validated a manifest that does not describe the files"
            )
            assert result.manifest.document["name"] and result.manifest.document["version"] == 1


@FUZZ
@given(data=st.data(), paths=st.lists(HOSTILE_PATHS, min_size=1, max_size=4))
def test_hostile_paths_never_validate_and_never_lead_outside(
    pristine: Path, data: st.DataObject, paths: list[str]
) -> None:
    """Forged entries with hostile paths (``..``, absolute, NUL, very long, look-alikes),
    with a symbolic link in the folder pointing outside it (to a file whose size and
    SHA-256 the entry gives, so only the link itself can give it away)."""
    original = json.loads((pristine / MANIFEST_NAME).read_text())
    with copy_of(pristine) as folder:
        outside = folder.parent / "outside"
        outside.mkdir()
        secret = outside / "secret.txt"
        secret.write_bytes(b"not part of the backup\n")
        size, digest = len(secret.read_bytes()), hashlib.sha256(secret.read_bytes()).hexdigest()
        if data.draw(st.booleans(), label="link a folder"):
            (folder / "link_out").symlink_to(outside, target_is_directory=True)
        else:
            (folder / "link_out").symlink_to(secret)
        document = copy.deepcopy(original)
        for path in paths:
            document["files"].insert(
                data.draw(st.integers(0, len(document["files"])), label="at"),
                {"path": path, "size": size, "sha256": digest, "role": "export"},
            )
        write_document(folder, document, reseal=data.draw(st.booleans(), label="reseal"))
        result = validate_watched(folder, schema_tables_pure)
        assert isinstance(result, ManifestUnreadable) or not result.ok, "a hostile path validated"
        if isinstance(result, Validation) and "link_out" in paths:
            assert any("link_out" in p for p in result.problems)


@FUZZ
@given(data=st.data())
def test_a_changed_file_never_validates(pristine: Path, data: st.DataObject) -> None:
    """The manifest intact, the folder changed: a byte flipped, a file cut, grown,
    removed, replaced by a link to an identical copy outside, or a file added."""
    entries = json.loads((pristine / MANIFEST_NAME).read_text())["files"]
    entry = data.draw(st.sampled_from(entries), label="file")
    change = data.draw(
        st.sampled_from(["flip", "truncate", "append", "remove", "link", "extra", "extra_link"]), label="change"
    )
    with copy_of(pristine) as folder:
        target = folder / entry["path"]
        content = target.read_bytes()
        if change == "flip" and content:
            at = data.draw(st.integers(0, len(content) - 1), label="at")
            target.write_bytes(content[:at] + bytes([content[at] ^ 0x01]) + content[at + 1 :])
        elif change == "truncate" or (change == "flip" and not content):
            target.write_bytes(content[:-1] if content else b"x")
        elif change == "append":
            target.write_bytes(content + data.draw(st.binary(min_size=1, max_size=16), label="tail"))
        elif change == "remove":
            target.unlink()
        elif change == "link":
            twin = folder.parent / "twin"
            twin.write_bytes(content)
            target.unlink()
            target.symlink_to(twin)
        elif change == "extra":
            (
                target.parent / data.draw(st.sampled_from(["extra.csv", ".hidden", "ехроrt.csv"]), label="name")
            ).write_bytes(b"x")
        else:
            (target.parent / "extra_link").symlink_to("/etc/hostname")
        result = validate_watched(folder, schema_tables_pure)
        assert isinstance(result, Validation) and not result.ok, f"{change} of {entry['path']} validated"


@FUZZ
@given(data=st.binary(max_size=2048))
def test_drill_report_reader_refuses_random_bytes(data: bytes) -> None:
    with tempfile.TemporaryDirectory(prefix="aris3nb-fuzz-") as scratch:
        path = Path(scratch) / "drill_report_x.json"
        path.write_bytes(data)
        _read_report_or_refusal(path)


@FUZZ
@given(data=st.data())
def test_drill_report_reader_takes_only_what_its_readers_can_use(
    drill_report: dict[str, Any], data: st.DataObject
) -> None:
    document = data.draw(mutated(drill_report), label="report")
    with tempfile.TemporaryDirectory(prefix="aris3nb-fuzz-") as scratch:
        path = Path(scratch) / "drill_report_x.json"
        path.write_text(json.dumps(document))
        report = _read_report_or_refusal(path)
        if report is not None:  # what a reader of a report relies on (docs/FORMAT.md 5.2)
            assert report["status"] in ("PASS", "FAIL") and report["version"] == 1
            for check in report["checks"]:
                assert check["status"] in ("PASS", "FAIL") and isinstance(check["name"], str)
                assert isinstance(check["detail"], str) and float(check["duration_sec"]) >= float("-inf")
            json.dumps(report, ensure_ascii=False, allow_nan=False).encode()


def _read_report_or_refusal(path: Path) -> dict[str, Any] | None:
    touches = Touches()
    with touches.watching():
        try:
            report = read_drill_report(path)
        except ManifestUnreadable as exc:
            assert "\n" not in str(exc)
            report = None
    assert not touches.written and not touches.outside(path.parent)
    return report


# --- what the fuzzing found, pinned --------------------------------------------------------------

FOUND = {
    # crashed the validator (TypeError, AttributeError, OSError, UnicodeEncodeError, AssertionError)
    "a files entry that is not an object": (lambda d: d["files"].append("exports/x.csv"), False),
    "an alembic_revision that is a list": (lambda d: d.update(alembic_revision=["0005_stock_sellable"]), False),
    "a table name that is a list": (lambda d: d["tables"].append({"name": ["x"]}), False),
    "a path under a file": (
        lambda d: d["files"].append(
            {"path": "database/aris3.sqlite3/x", "size": 1, "sha256": "0" * 64, "role": "database"}
        ),
        True,
    ),
    "a name too long for the filesystem": (
        lambda d: d["files"].append({"path": "a" * 300, "size": 1, "sha256": "0" * 64, "role": "export"}),
        True,
    ),
    "a lone surrogate": (lambda d: d["tools"].update(note="\ud800"), False),
    "an empty alembic_revision": (lambda d: d.update(alembic_revision=""), True),
    # validated although the format forbids them
    "a symbolic alembic_revision": (lambda d: d.update(alembic_revision="head"), True),
    "a relative alembic_revision": (lambda d: d.update(alembic_revision="0004_exports_idempotency@+1"), True),
    "a name that is a path": (lambda d: d.update(name="../../etc"), True),
    "a name ending in a newline": (lambda d: d.update(name=d["name"] + "\n"), True),
    "a chunk digest ending in a newline": (
        lambda d: d["tables"][0]["chunks"][0].update(digest=d["tables"][0]["chunks"][0]["digest"] + "\n"),
        True,
    ),
    "a chunk digest that is not hex": (lambda d: d["tables"][0]["chunks"][0].update(digest="zz"), True),
    # a drill compares chunk by chunk: a chunk digest changed alone went unseen (a trial found it)
    "a chunk digest changed alone": (lambda d: d["tables"][0]["chunks"][0].update(digest="0" * 64), True),
    "a key that is not a list": (lambda d: d["tables"][0].update(key="version_num"), True),
    "a file listed twice": (lambda d: d["files"].append(dict(d["files"][0])), True),
}


@pytest.mark.parametrize("what", list(FOUND))
def test_documents_the_fuzzing_found_are_refused(what: str, pristine: Path) -> None:
    change, reseal = FOUND[what]
    document = json.loads((pristine / MANIFEST_NAME).read_text())
    change(document)
    with copy_of(pristine) as folder:
        write_document(folder, document, reseal=reseal)
        result = validate_watched(folder, schema_tables_at)
        assert isinstance(result, ManifestUnreadable) or not result.ok, f"{what} validated"


@pytest.mark.parametrize("where", ["manifest\x00.json", "a" * 5000, "backup/manifest.json/x"])
def test_hostile_manifest_paths_are_refused_in_one_line(where: str, pristine: Path) -> None:
    with copy_of(pristine) as folder, pytest.raises(ManifestUnreadable) as refused:
        validate_backup(folder.parent / where)
    assert "\n" not in str(refused.value)


@pytest.mark.parametrize(
    "text",
    [
        "[" * 100_000 + "]" * 100_000,  # RecursionError
        '{"format": "aris3nb.drill.report", "format_version": 1, "status": "PASS", "checks": [], "x": NaN}',
        '{"format": "aris3nb.drill.report", "format_version": 1.0, "status": "PASS", "checks": [], "backup": "b"}',
        '{"format": "aris3nb.drill.report", "format_version": true, "status": "PASS", "checks": [], "backup": "b"}',
        '{"format": "aris3nb.drill.report", "format_version": 1, "status": "PASS", "checks": [7], "backup": "b"}',
        '{"format": "aris3nb.drill.report", "format_version": 1, "status": "PASS", "checks": [{"name": "x", '
        '"status": "MAYBE", "detail": "", "duration_sec": 0}], "backup": "b"}',
    ],
)
def test_drill_reports_the_fuzzing_found_are_refused(text: str, tmp_path: Path) -> None:
    path = tmp_path / "drill_report_found.json"
    path.write_text(text)
    with pytest.raises(ManifestUnreadable):
        read_drill_report(path)
