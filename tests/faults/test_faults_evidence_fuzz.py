"""Hostile evidence, fuzzed with hypothesis: reading ``evidence.json`` (``read_evidence``) and
verifying runs (``verify_run``, ``verify_chain``, ``aris3nb evidence verify``) given random bytes,
truncated and bit-flipped files, real documents mutated field by field, run folders changed
under an intact ``evidence.json``, listed paths that try to leave the run (``..``, absolute,
NUL, very long, Unicode look-alikes, lone surrogates) with a symbolic link pointing outside,
runs folders whose entries only look like runs, and run folders holding files with any name.

Every example starts from a real chain of two sealed runs (the second signed), made once with
``seal_run``; no playbook runs here. What must hold, for every input:

* nothing but an ``Aris3nbError`` escapes: ``EvidenceUnreadable`` (exit 2, one line), or a
  verification whose problems are one line each (exit 1); the command agrees with the library;
* verification never passes for a run whose folder differs from the files ``evidence.json``
  lists (an oracle independent of aris3nb re-hashes the folder), and a chain never passes once
  any byte of a sealed ``evidence.json`` changed (its successor's link or its signature covers
  every byte);
* verification only reads, and only inside the folder it was given; it writes nothing: an
  audit hook (PEP 578) records every file opened, folder listed and change attempted;
* a folder not named like a run id (an ASCII pattern written here, independently of aris3nb)
  never takes a place in the chain;
* sealing a folder with files of any name either seals it so that it verifies, or refuses in
  one line (``EvidenceSealRefused``), and reads nothing outside it.

EXAMPLES sets the examples per property; the count actually run is printed at the end of the
session (and by ``--hypothesis-show-statistics``).
"""

from __future__ import annotations

import base64
import contextlib
import copy
import hashlib
import json
import os
import re
import shutil
import stat
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from faultkit import SUMMARY
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from aris3nb.cli import main
from aris3nb.core.errors import Aris3nbError, EvidenceInvalid, EvidenceSealRefused, EvidenceUnreadable
from aris3nb.evidence.attest import ATTESTATION_NAME
from aris3nb.evidence.bundle import (
    EVIDENCE_NAME,
    SIGNATURE_NAME,
    ChainVerification,
    Verification,
    generate_signing_key,
    read_evidence,
    seal_run,
    verify_chain,
    verify_path,
    verify_run,
)

EXAMPLES = 150
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.function_scoped_fixture],
)
#: What a run id is (docs/FORMAT.md §7.1), written here independently of aris3nb.
RUN_ID_ORACLE = re.compile(r"[0-9]{8}T[0-9]{6}Z-[0-9a-f]{6}")
FIRST, SECOND = "20261128T090000Z-00a0b0", "20261128T090500Z-00c0d0"
ROOT = Path(__file__).resolve().parents[2]
#: Examples run, per property (printed at the end of the session).
COUNTS: dict[str, int] = {}


def counted(name: str) -> None:
    COUNTS[name] = COUNTS.get(name, 0) + 1


@pytest.fixture(scope="module", autouse=True)
def _report_counts() -> Iterator[None]:
    yield
    if COUNTS:
        SUMMARY.append(
            f"evidence fuzzing: {sum(COUNTS.values())} examples run "
            f"({', '.join(f'{name} {count}' for name, count in COUNTS.items())})"
        )


# --- the real chain every example starts from ---------------------------------------------------


def runner_body(run_id: str) -> dict[str, Any]:
    """The runner's fields, as the runner writes them (opaque to the bundle)."""
    return {
        "run_id": run_id,
        "started_at": "2026-11-28T09:00:00.000Z",
        "finished_at": "2026-11-28T09:01:00.000Z",
        "duration_sec": 60.0,
        "verdict": "FAIL",
        "decision": "NO-GO",
        "exit_code": 1,
        "interrupted": False,
        "target": {"mode": "embedded", "base_url": "http://127.0.0.1:41873", "database_url": "sqlite:///x"},
        "parameters": {"phases": "default", "strict": False},
        "phases": [
            {
                "phase": "pre_deploy",
                "status": "dead_kernel",
                "verdict": "FAIL",
                "reasons": ["the kernel died while a cell ran"],
                "notebook": "01-pre_deploy.ipynb",
                "html": "01-pre_deploy.html",
            }
        ],
        "metrics": {"latency_p95_ms": {"health": 1.5}},
        "code": {"aris3nb_version": "0.1.0"},
        "tools": {"python": "3.11"},
    }


def fill_run(folder: Path, seed: int) -> None:
    """What a run leaves: notebook, page, nested JSON, a chart, a hidden file, a non-ASCII name."""
    (folder / "pre_deploy" / "charts").mkdir(parents=True)
    (folder / "exports").mkdir()
    (folder / "01-pre_deploy.ipynb").write_text(json.dumps({"cells": [], "nbformat": 4, "seed": seed}))
    (folder / "01-pre_deploy.html").write_text(f"<html><body>run {seed}: résumé</body></html>")
    (folder / "pre_deploy" / "result.json").write_text(json.dumps({"verdict": "FAIL", "seed": seed}))
    (folder / "pre_deploy" / "charts" / "latency.png").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 3)
    (folder / ".hidden").write_text("hidden files are evidence too")
    (folder / "exports" / "résumé é.csv").write_text("a,b\n1,2\n")
    (folder / "empty.txt").write_bytes(b"")


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A runs folder: FIRST (unsigned), then SECOND (signed, linking to FIRST)."""
    base = tmp_path_factory.mktemp("evidence-fuzz")
    key = base / "keys" / "signing.pem"
    generate_signing_key(key)
    runs = base / "runs"
    for seed, (run_id, signing_key) in enumerate(((FIRST, None), (SECOND, key))):
        folder = runs / run_id
        folder.mkdir(parents=True)
        fill_run(folder, seed)
        seal_run(folder, runner_body(run_id), signing_key=signing_key)
    assert verify_chain(runs).passes(strict=True)
    return runs


@contextlib.contextmanager
def copy_of(pristine: Path) -> Iterator[Path]:
    """A scratch copy of the runs folder, beside an ``outside`` folder the hostile inputs aim at."""
    with tempfile.TemporaryDirectory(prefix="aris3nb-evidence-fuzz-") as scratch:
        runs = Path(scratch) / "runs"
        shutil.copytree(pristine, runs, symlinks=True)
        outside = Path(scratch) / "outside"
        outside.mkdir()
        (outside / "secret.txt").write_bytes(b"not part of any run\n")
        yield runs


# --- the audit hook: what verification touches -------------------------------------------------

_CHANGES = {
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
_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND


class Watch:
    """Files opened, folders listed and changes attempted while ``watching`` (PEP 578 events)."""

    current: Watch | None = None

    def __init__(self) -> None:
        self.read: list[str] = []
        self.changed: list[str] = []

    @staticmethod
    def hook(event: str, args: tuple[Any, ...]) -> None:
        watch = Watch.current
        if watch is None:
            return
        if event == "open" and isinstance(args[0], (str, bytes, os.PathLike)):
            mode, flags = args[1] or "", args[2] if len(args) > 2 and isinstance(args[2], int) else 0
            writes = any(c in str(mode) for c in "wax+") or bool(flags & _WRITE_FLAGS)
            (watch.changed if writes else watch.read).append(os.fsdecode(args[0]))
        elif event in ("os.scandir", "os.listdir") and args and isinstance(args[0], (str, bytes, os.PathLike)):
            watch.read.append(os.fsdecode(args[0]))
        elif event in _CHANGES:
            watch.changed.append(f"{event} {args!r}")

    @contextlib.contextmanager
    def watching(self) -> Iterator[Watch]:
        Watch.current = self
        try:
            yield self
        finally:
            Watch.current = None

    def read_outside(self, folder: Path) -> list[str]:
        """What was read outside ``folder`` (resolved), other than Python's own files."""
        allowed = [os.path.realpath(folder), *_PROGRAM_FILES]
        return [
            p
            for p in self.read
            if not any(os.path.realpath(p) == a or os.path.realpath(p).startswith(a + os.sep) for a in allowed)
        ]


_PROGRAM_FILES = [os.path.realpath(p) for p in (ROOT / "aris3nb", sys.prefix, sys.base_prefix)]
sys.addaudithook(Watch.hook)  # hooks cannot be removed; this one is idle unless a test is watching


Result = Verification | ChainVerification | EvidenceUnreadable


def verify_watched(path: Path, inside: Path) -> Result:
    """``verify_path(path)``, or the one error it may raise; checks that it read only inside
    ``inside``, changed nothing, and said each problem in one line."""
    watch = Watch()
    result: Result
    with watch.watching():
        try:
            result = verify_path(path)
        except EvidenceUnreadable as exc:
            result = exc
        except Aris3nbError as exc:  # any other typed error is a defect of verification too
            pytest.fail(f"verify_path raised {type(exc).__name__}: {exc}")
    assert not watch.changed, f"verification changed: {watch.changed}"
    assert not watch.read_outside(inside), f"verification read outside {inside}: {watch.read_outside(inside)}"
    if isinstance(result, EvidenceUnreadable):
        lines = [str(result)]
    else:
        lines = [*result.problems, *getattr(result, "warnings", [])]
    assert all(isinstance(line, str) and "\n" not in line for line in lines), lines
    return result


def passes(result: Result) -> bool:
    return not isinstance(result, EvidenceUnreadable) and result.passes()


def command_agrees(path: Path, result: Result, capsys: pytest.CaptureFixture[str]) -> None:
    """``aris3nb evidence verify PATH`` in-process, as text and with ``--json``: exit 0, 1 or 2
    as the library judged, its report or JSON on standard output, or one ``FAILED:`` line;
    never a traceback."""
    for options in ([], ["--json"]):
        capsys.readouterr()
        with pytest.raises(SystemExit) as exited:
            main(["evidence", "verify", str(path), *options])
        code = exited.value.code or 0
        out, err = capsys.readouterr()
        assert "Traceback" not in out + err
        if isinstance(result, EvidenceUnreadable):
            assert code == 2, (code, out, err)
            lines = err.strip().splitlines()
            assert len(lines) == 1 and lines[0].startswith("FAILED: "), err
            continue
        # The command also checks a run's evidence.json against the link the next run holds to it.
        linked_change = "differs from the digest the next run" in out
        assert code == (0 if result.passes() else 1) or (linked_change and code == 1), (code, out, err)
        if options:
            assert json.loads(out)["passed"] is (code == 0)
        elif code == 0:
            assert out.startswith(("VALID: ", "VALID FILES, UNPROTECTED evidence.json: ")), out
        else:
            assert out.startswith("INVALID: ") or linked_change, out


def files_match(run_dir: Path, document: Any) -> bool:
    """The oracle: the run folder holds exactly the listed files, regular files with no link
    on the way, each of the listed size and SHA-256. Computed without aris3nb."""
    if not isinstance(document, dict) or not isinstance(document.get("files"), list):
        return False
    listed: dict[str, Any] = {}
    for entry in document["files"]:
        if not isinstance(entry, dict) or not isinstance(entry.get("path"), str) or entry["path"] in listed:
            return False
        listed[entry["path"]] = entry
    found: dict[str, tuple[int, str]] = {}
    for root, folders, names in os.walk(run_dir):
        for name in folders + names:
            path = Path(root) / name
            relative = path.relative_to(run_dir).as_posix()
            if path.is_symlink() or not (path.is_dir() or path.is_file()):
                return False
            if path.is_file() and relative not in (EVIDENCE_NAME, SIGNATURE_NAME, ATTESTATION_NAME):
                data = path.read_bytes()
                found[relative] = (len(data), "sha256:" + hashlib.sha256(data).hexdigest())
    return set(found) == set(listed) and all(
        found[p] == (listed[p].get("size"), listed[p].get("sha256")) for p in found
    )


# --- strategies ----------------------------------------------------------------------------------

LOOKALIKE_PATHS = [
    "ｅｘｐｏｒｔｓ/résumé é.csv",
    "ехроrts/résumé é.csv",
    "pre_deploy\u2215result.json",
    "..\u2215secret.txt",
    "\uff0e\uff0e/outside/secret.txt",
    "pre_deploy/result.json\u200b",
    "exports/re\u0301sume\u0301 e\u0301.csv",
]
HOSTILE_PATHS = st.one_of(
    st.sampled_from(
        [
            "..",
            "../outside/secret.txt",
            "../../outside/secret.txt",
            "/etc/passwd",
            "pre_deploy/../../outside/secret.txt",
            "pre_deploy/./result.json",
            "pre_deploy//result.json",
            "pre_deploy/",
            "a\\..\\b",
            "x\x00y",
            "",
            ".",
            EVIDENCE_NAME,
            SIGNATURE_NAME,
            "link_out",
            "link_out/secret.txt",
            "pre_deploy/result.json/x",
            "a" * 300,
            "a" * 300 + "/x",
            "/".join(["d"] * 2000),
            "\ud800",
            "\udcff/x",
            "exports/\udc80.csv",
            *LOOKALIKE_PATHS,
        ]
    ),
    st.text(min_size=1, max_size=40),
    st.lists(
        st.sampled_from(["..", ".", "", "pre_deploy", "exports", "link_out", "ехроrts", "\ud800"]),
        min_size=1,
        max_size=5,
    ).map("/".join),
)
TEXT = st.one_of(st.text(max_size=30), st.sampled_from(["\ud800", "a\udc80b", *LOOKALIKE_PATHS]))
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


def places(node: Any, at: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    """Every place of a JSON document, as the keys and indexes leading to it."""
    yield at
    children = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
    for key, child in children:
        yield from places(child, (*at, key))


def near(value: Any) -> st.SearchStrategy[Any]:
    """A value of the same kind that differs a little (the edits a forger would try)."""
    if isinstance(value, bool):
        return st.just(not value)
    if isinstance(value, int):
        return st.sampled_from([value + 1, value - 1, -1, str(value), float(value), True, 2**64])
    if isinstance(value, str):
        lookalike = value.replace("0", "０").replace("e", "е").replace("T", "Т")
        return st.one_of(
            HOSTILE_PATHS,
            st.sampled_from(
                [
                    value[:-1],
                    value + "x",
                    value.upper(),
                    value + "\n",
                    value + "\x00",
                    "../" + value,
                    "/" + value,
                    lookalike,
                ]
            ),
        )
    return JSON_VALUES


@st.composite
def edited(draw: st.DrawFn, original: dict[str, Any]) -> dict[str, Any]:
    """``original`` with one to three edits: a value replaced by any JSON value or a near
    miss, a key removed or added, a list element duplicated or removed."""
    document = copy.deepcopy(original)
    for _ in range(draw(st.integers(1, 3))):
        where = draw(st.sampled_from(list(places(document))[1:]))
        parent = document
        for step in where[:-1]:
            parent = parent[step]
        last = where[-1]
        edit = draw(st.sampled_from(["replace", "near", "remove", "add", "duplicate"]))
        if edit == "replace":
            parent[last] = draw(JSON_VALUES)
        elif edit == "near":
            parent[last] = draw(near(parent[last]))
        elif edit == "remove":
            del parent[last]
        elif edit == "add" and isinstance(parent, dict):
            parent[draw(TEXT)] = draw(JSON_VALUES)
        elif edit == "duplicate" and isinstance(parent, list):
            parent.insert(last, copy.deepcopy(parent[last]))
    return document


def write_json(path: Path, document: Any) -> None:
    """As seal_run writes it; a lone surrogate that UTF-8 cannot hold goes in as a JSON escape."""
    try:
        path.write_text(json.dumps(document, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    except UnicodeEncodeError:
        path.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")


RUN = st.sampled_from([FIRST, SECOND])


# --- properties -----------------------------------------------------------------------------------


@pytest.mark.slow
@FUZZ
@given(data=st.binary(max_size=4096), run_id=RUN)
def test_random_bytes_as_evidence_json_are_refused_in_one_line(
    pristine: Path, data: bytes, run_id: str, capsys: pytest.CaptureFixture[str]
) -> None:
    counted("random bytes")
    with copy_of(pristine) as runs:
        run_dir = runs / run_id
        (run_dir / EVIDENCE_NAME).write_bytes(data)
        result = verify_watched(run_dir, run_dir)
        assert not passes(result)
        command_agrees(run_dir, result, capsys)
        with pytest.raises((EvidenceUnreadable, EvidenceInvalid)) as refused:
            read_evidence(run_dir)
        assert "\n" not in str(refused.value)


@pytest.mark.slow
@FUZZ
@given(data=st.data(), run_id=RUN)
def test_a_damaged_evidence_json_never_passes_in_its_chain(pristine: Path, data: st.DataObject, run_id: str) -> None:
    """Truncated, bit-flipped: every byte of FIRST is covered by SECOND's link, every byte of
    SECOND by its signature, so the chain passes only if no byte changed."""
    counted("damaged bytes")
    original = (pristine / run_id / EVIDENCE_NAME).read_bytes()
    damaged = bytearray(
        original[: data.draw(st.integers(0, len(original)), label="cut")]
        if data.draw(st.booleans(), label="truncate")
        else original
    )
    for _ in range(data.draw(st.integers(0, 3), label="flips")):
        if damaged:
            damaged[data.draw(st.integers(0, len(damaged) - 1), label="at")] ^= 1 << data.draw(st.integers(0, 7))
    with copy_of(pristine) as runs:
        (runs / run_id / EVIDENCE_NAME).write_bytes(bytes(damaged))
        result = verify_watched(runs, runs)
        assert not passes(result) or bytes(damaged) == original, "a changed evidence.json passed in its chain"
        if run_id == SECOND:  # signed: the run alone fails too
            assert not passes(verify_watched(runs / run_id, runs / run_id)) or bytes(damaged) == original


@pytest.mark.slow
@FUZZ
@given(data=st.data(), run_id=RUN)
def test_an_edited_evidence_json_passes_only_for_the_files_it_describes(
    pristine: Path, data: st.DataObject, run_id: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Fields replaced, removed, added, duplicated, near misses of the right type. Alone, an
    unsigned run may still verify (its verdict is not something its own files can prove), but
    only when its files list is exactly the folder; in its chain, never."""
    counted("edited documents")
    original = json.loads((pristine / run_id / EVIDENCE_NAME).read_text())
    document = data.draw(edited(original), label="document")
    with copy_of(pristine) as runs:
        run_dir = runs / run_id
        write_json(run_dir / EVIDENCE_NAME, document)
        changed = (run_dir / EVIDENCE_NAME).read_bytes() != (pristine / run_id / EVIDENCE_NAME).read_bytes()
        alone = verify_watched(run_dir, run_dir)
        if passes(alone):
            assert files_match(run_dir, document), "verified a document that does not describe the folder"
            assert run_id == FIRST or not changed, "a signed evidence.json changed and still verified"
        command_agrees(run_dir, alone, capsys)
        assert not passes(verify_watched(runs, runs)) or not changed, "an edited evidence.json passed in its chain"


CHANGES = [
    "flip",
    "truncate",
    "append",
    "remove",
    "link_to_copy",
    "folder_for_file",
    "extra_file",
    "extra_link",
    "extra_fifo",
    "linked_folder",
]
EXTRA_NAMES = [
    "extra.csv",
    ".hidden2",
    "ехроrt.csv",
    "x" * 255,
    "new\nline",
    b"bad\xffname",
    "evidence.json.tmp",
    "pre_deploy/evidence.json",
    "pre_deploy/evidence.json.sig",
    "résumé é.csv",
]


@pytest.mark.slow
@FUZZ
@given(data=st.data(), run_id=RUN, change=st.sampled_from(CHANGES))
def test_a_changed_added_or_removed_file_never_verifies(
    pristine: Path, data: st.DataObject, run_id: str, change: str
) -> None:
    """evidence.json intact, the folder changed: a byte flipped, a file cut, grown, removed,
    replaced by a link to an identical copy outside or by a folder, a file, link or FIFO
    added (hidden, look-alike, 255 characters, a newline, not UTF-8), a folder replaced by a
    link to an identical copy outside."""
    counted("changed folders")
    entries = json.loads((pristine / run_id / EVIDENCE_NAME).read_text())["files"]
    relative = data.draw(st.sampled_from([e["path"] for e in entries]), label="file")
    with copy_of(pristine) as runs:
        run_dir = runs / run_id
        outside = runs.parent / "outside"
        target = run_dir / relative
        content = target.read_bytes()
        named = relative
        if change == "flip" and content:
            at = data.draw(st.integers(0, len(content) - 1), label="at")
            flipped = content[at] ^ (1 << data.draw(st.integers(0, 7), label="bit"))
            target.write_bytes(content[:at] + bytes([flipped]) + content[at + 1 :])
        elif change in ("flip", "truncate"):
            target.write_bytes(content[:-1] if content else b"\0")
        elif change == "append":
            target.write_bytes(content + data.draw(st.binary(min_size=1, max_size=8), label="tail"))
        elif change == "remove":
            target.unlink()
        elif change == "link_to_copy":
            (outside / "twin").write_bytes(content)
            target.unlink()
            target.symlink_to(outside / "twin")
        elif change == "folder_for_file":
            target.unlink()
            target.mkdir()
        elif change == "linked_folder" and "/" in relative:
            folder = run_dir / relative.split("/")[0]
            shutil.copytree(folder, outside / "copy")
            shutil.rmtree(folder)
            folder.symlink_to(outside / "copy", target_is_directory=True)
            named = relative.split("/")[0]
        else:
            name = data.draw(st.sampled_from(EXTRA_NAMES), label="name")
            extra = os.path.join(os.fsencode(target.parent), name if isinstance(name, bytes) else os.fsencode(name))
            assume(not os.path.lexists(extra))  # an addition, not a replacement
            os.makedirs(os.path.dirname(extra), exist_ok=True)
            if change in ("extra_link", "linked_folder"):
                os.symlink(b"/etc/hostname", extra)
            elif change == "extra_fifo":
                os.mkfifo(extra)
            else:
                Path(os.fsdecode(extra)).write_bytes(b"added after sealing")
            named = Path(os.fsdecode(extra)).relative_to(run_dir).as_posix()
        result = verify_watched(run_dir, run_dir)
        assert isinstance(result, Verification) and not result.ok, f"{change} of {relative} verified"
        assert any(repr(named) in problem or named in problem for problem in result.problems), result.problems
        assert not passes(verify_watched(runs, runs))


@pytest.mark.slow
@FUZZ
@given(data=st.data(), paths=st.lists(HOSTILE_PATHS, min_size=1, max_size=4), run_id=RUN)
def test_hostile_listed_paths_never_verify_and_never_lead_outside(
    pristine: Path, data: st.DataObject, paths: list[str], run_id: str
) -> None:
    """Entries forged with hostile paths, each claiming the size and SHA-256 of a file outside
    the run, sometimes with a symbolic link in the run pointing at it (or at its folder), so
    that only the path itself can give the forgery away."""
    counted("hostile paths")
    with copy_of(pristine) as runs:
        run_dir = runs / run_id
        outside = runs.parent / "outside"
        secret = (outside / "secret.txt").read_bytes()
        link = data.draw(st.sampled_from([None, "file", "folder"]), label="link")
        if link:
            (run_dir / "link_out").symlink_to(outside / "secret.txt" if link == "file" else outside)
        document = json.loads((run_dir / EVIDENCE_NAME).read_text())
        for path in paths:
            entry = {"path": path, "size": len(secret), "sha256": "sha256:" + hashlib.sha256(secret).hexdigest()}
            document["files"].insert(data.draw(st.integers(0, len(document["files"])), label="at"), entry)
        if data.draw(st.booleans(), label="absolute path of the secret"):
            document["files"].append({**document["files"][-1], "path": str(outside / "secret.txt")})
        write_json(run_dir / EVIDENCE_NAME, document)
        result = verify_watched(run_dir, run_dir)
        assert not passes(result), f"hostile paths {paths!r} verified"
        if link and isinstance(result, Verification):
            assert any("link_out" in problem for problem in result.problems), result.problems


LOOKALIKE_RUN_IDS = [
    "２０２６１１２８T０９１０００Z-00e0f0",  # fullwidth digits
    "٢٠٢٦١١٢٨T٠٩١٠٠٠Z-00e0f0",  # Arabic-Indic digits
    "20261128T091000Z-00e0f0\n",
    "20261128Т091000Z-00e0f0",  # Cyrillic Т
    "20261128T091000Ζ-00e0f0",  # Greek Zeta
    "20261128T091000Z‐00e0f0",  # a hyphen that is not '-'
    "20261128T091000Z-00E0F0",
    "20261128T091000Z-00e0f0 ",
    "20261128t091000z-00e0f0",
    "20261128T091000Z-00e0f00",
]


@pytest.mark.slow
@FUZZ
@given(
    data=st.data(),
    name=st.one_of(st.sampled_from(LOOKALIKE_RUN_IDS), st.text(min_size=1, max_size=30)),
    kind=st.sampled_from(["copy", "empty", "file", "link_outside", "link_inside"]),
)
def test_entries_that_only_look_like_runs_never_join_the_chain(
    pristine: Path, data: st.DataObject, name: str, kind: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """An entry of the runs folder under a hostile or look-alike name: a copy of a sealed run,
    an empty folder, a file, a link to a run outside or to one inside. Not named like a run
    id: ignored. Named like one: a run, and a link or a file in its place is a problem."""
    assume(name not in (".", "..") and "/" not in name and "\x00" not in name)
    counted("run folder names")
    with copy_of(pristine) as runs:
        outside = runs.parent / "outside"
        shutil.copytree(runs / SECOND, outside / "run")
        entry = runs / name
        try:
            if kind == "copy":
                shutil.copytree(runs / SECOND, entry)
            elif kind == "empty":
                entry.mkdir()
            elif kind == "file":
                entry.write_text("{}")
            else:
                entry.symlink_to(outside / "run" if kind == "link_outside" else runs / FIRST, target_is_directory=True)
        except OSError:  # a name this filesystem will not hold (too long)
            return
        result = verify_watched(runs, runs)
        looks_like_a_run = bool(RUN_ID_ORACLE.fullmatch(entry.name))
        assert isinstance(result, ChainVerification), result
        taken = {run.run_dir.name for run in result.runs} | set(result.incomplete)
        assert taken - {FIRST, SECOND} <= ({entry.name} if looks_like_a_run else set()), taken
        if not looks_like_a_run:
            assert result.passes(strict=True), result.problems + result.warnings
        elif kind != "empty":
            assert not result.ok, f"{kind} named {entry.name!r} passed"
        command_agrees(runs, result, capsys)


FILE_NAMES = st.one_of(
    st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="/\x00"), min_size=1, max_size=40),
    st.binary(min_size=1, max_size=20).filter(lambda b: b"/" not in b and b"\x00" not in b),
    st.sampled_from(["..x", ".hidden", "ехроrts", "new\nline", "a" * 255, "\u202eevil", "evidence.json.tmp", "\\"]),
)


@pytest.mark.slow
@FUZZ
@given(
    names=st.lists(FILE_NAMES, min_size=1, max_size=4),
    nest=st.lists(st.sampled_from(["pre_deploy", "ｐｒｅ", "..a", "new\nfolder"]), max_size=2),
)
def test_any_file_names_are_sealed_faithfully_or_refused_in_one_line(names: list[str | bytes], nest: list[str]) -> None:
    """A notebook may leave files of any name in its run folder: sealing records them so that
    the run verifies (the oracle agrees), or refuses in one line; it reads nothing outside its
    runs folder (which it lists for the link) and writes only inside the run."""
    counted("sealed names")
    with tempfile.TemporaryDirectory(prefix="aris3nb-evidence-fuzz-") as scratch:
        run_dir = Path(scratch) / "runs" / FIRST
        folder = run_dir.joinpath(*nest)
        folder.mkdir(parents=True)
        for name in names:
            raw = name if isinstance(name, bytes) else os.fsencode(name)
            with contextlib.suppress(OSError), open(os.path.join(os.fsencode(folder), raw), "xb") as made:
                made.write(raw)  # (suppressed: too long for this filesystem, or a duplicate)
        watch = Watch()
        with watch.watching():
            try:
                sealed = seal_run(run_dir, runner_body(FIRST))
            except EvidenceSealRefused as exc:
                assert "\n" not in str(exc)
                sealed = None
        assert not watch.read_outside(run_dir.parent), "sealing reads its runs folder (the link), nothing else"
        assert all(str(run_dir) in change for change in watch.changed), f"sealing changed outside: {watch.changed}"
        if sealed is not None:
            result = verify_run(run_dir)
            assert result.ok, result.problems
            assert files_match(run_dir, json.loads(sealed.read_text()))
        else:
            assert not (run_dir / EVIDENCE_NAME).exists()


# --- what the fuzzing found, pinned --------------------------------------------------------------


def _previous_without_digest(runs: Path) -> Result:
    path = runs / SECOND / EVIDENCE_NAME
    document = json.loads(path.read_text())
    del document["previous"]["digest"]
    write_json(path, document)
    return verify_chain(runs)


def _listed(path: str) -> Any:
    def change(runs: Path) -> Result:
        evidence = runs / FIRST / EVIDENCE_NAME
        document = json.loads(evidence.read_text())
        document["files"].append({"path": path, "size": 1, "sha256": "sha256:" + "0" * 64})
        write_json(evidence, document)
        return verify_run(runs / FIRST)

    return change


def _file_named(name: bytes) -> Any:
    def change(runs: Path) -> Result:
        folder = runs.parent / "elsewhere" / "20261128T091000Z-00e0f0"
        folder.mkdir(parents=True)
        with open(os.path.join(os.fsencode(folder), name), "wb") as made:
            made.write(b"x")
        with pytest.raises(EvidenceSealRefused) as refused:
            seal_run(folder, runner_body(folder.name))
        assert "not valid UTF-8" in str(refused.value) and not (folder / EVIDENCE_NAME).exists()
        return verify_chain(runs)

    return change


def _run_named(name: str) -> Any:
    def change(runs: Path) -> Result:
        shutil.copytree(runs / SECOND, runs / name)
        unsealed = runs.parent / "elsewhere" / name
        unsealed.mkdir(parents=True)
        with pytest.raises(EvidenceSealRefused):  # and no run can be sealed under that name
            seal_run(unsealed, runner_body(name))
        return verify_chain(runs)

    return change


def _without_previous(runs: Path) -> Result:
    path = runs / SECOND / EVIDENCE_NAME
    document = json.loads(path.read_text())
    del document["previous"]
    write_json(path, document)
    return verify_chain(runs)


FOUND = {
    # crashed verification (KeyError, OSError, UnicodeEncodeError) instead of naming a problem
    "a link without its digest": (_previous_without_digest, "recorded None"),
    "no link at all": (_without_previous, "evidence.json: previous: Field required"),
    "a listed path with a name too long": (_listed("a" * 300 + "/x"), "File name too long"),
    "a listed path with a lone surrogate": (
        _listed("\ud800/x"),
        "path: Input should be a valid string, unable to parse",
    ),
    # crashed sealing (UnicodeEncodeError): the runner would end in a traceback, unsealed
    "a file whose name is not UTF-8": (_file_named(b"bad\xffname.txt"), None),
    # took a place in the chain (look-alike digits, a trailing newline): now not runs at all
    "a run id in fullwidth digits": (_run_named(LOOKALIKE_RUN_IDS[0]), None),
    "a run id in Arabic-Indic digits": (_run_named(LOOKALIKE_RUN_IDS[1]), None),
    "a run id ending in a newline": (_run_named(LOOKALIKE_RUN_IDS[2]), None),
}


@pytest.mark.parametrize("what", list(FOUND))
def test_inputs_the_fuzzing_found_are_handled(what: str, pristine: Path) -> None:
    change, problem = FOUND[what]
    with copy_of(pristine) as runs:
        result = change(runs)
        if problem is None:
            assert result.passes(strict=True), result.problems + result.warnings
            assert [run.run_dir.name for run in result.runs] == [FIRST, SECOND]
        else:
            assert not result.ok and any(problem in p for p in result.problems), result.problems


@pytest.mark.parametrize(
    "run_id",
    [
        pytest.param("\udc80", id="escaped-byte"),
        pytest.param("\ud800", id="lone-surrogate"),
        pytest.param("２０２６", id="fullwidth"),
    ],
)
def test_a_value_no_output_can_carry_is_reported_not_fatal(
    run_id: str, pristine: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Found by the fuzzing: a run_id holding an escaped lone surrogate made the command
    crash while printing the problem (text) or the JSON report, instead of exiting 1."""
    with copy_of(pristine) as runs:
        path = runs / FIRST / EVIDENCE_NAME
        document = json.loads(path.read_text())
        document["run_id"] = run_id
        write_json(path, document)
        result = verify_watched(runs / FIRST, runs / FIRST)
        assert not passes(result)
        command_agrees(runs / FIRST, result, capsys)
        command_agrees(runs, verify_watched(runs, runs), capsys)


@pytest.mark.parametrize("path", ["run\x00/evidence.json", "\ud800/evidence.json", "a" * 5000])
def test_an_unusable_path_to_evidence_json_is_refused_in_one_line(path: str) -> None:
    with pytest.raises(EvidenceUnreadable) as refused:
        read_evidence(Path(path))
    assert "\n" not in str(refused.value)


def test_a_signature_that_is_not_the_signers_is_named(pristine: Path) -> None:
    """The signed run's signature replaced by a valid-looking one of the same length."""
    with copy_of(pristine) as runs:
        (runs / SECOND / SIGNATURE_NAME).write_text(base64.b64encode(bytes(64)).decode() + "\n")
        result = verify_run(runs / SECOND)
        assert not result.ok and any("bad signature" in p for p in result.problems)
        assert stat.S_ISREG((runs / SECOND / SIGNATURE_NAME).lstat().st_mode)
