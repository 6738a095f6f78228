"""The evidence bundle: sealing a run folder, and verification catching every kind of tampering
(a changed, removed or added file, a link, an edited evidence.json, a broken chain, a foreign
key), each problem naming what it is about. Real files in tmp_path, real keys."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import stat
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from aris3nb.core.errors import EvidenceInvalid, EvidenceSealRefused, EvidenceUnreadable, SigningKeyError
from aris3nb.evidence.bundle import (
    BUNDLE_FIELDS,
    EVIDENCE_NAME,
    SIGNATURE_NAME,
    ChainVerification,
    Verification,
    digest_of_file,
    generate_signing_key,
    key_id,
    load_public_key,
    read_evidence,
    seal_run,
    verify_chain,
    verify_path,
    verify_run,
)

FORMAT_DOC = Path(__file__).resolve().parents[2] / "docs" / "FORMAT.md"
NOTEBOOK = "01-pre_deploy.ipynb"
PAGE = "01-pre_deploy.html"
NESTED_JSON = "pre_deploy/gate/gate_summary.json"
CHART = "post_deploy/charts/latency_p95.png"


def run_id(index: int) -> str:
    """Run ids in time order: 20261128T090000Z-000000, 20261128T090100Z-000001, ..."""
    return f"20261128T09{index:02d}00Z-{index:06x}"


def body(rid: str, **changes: object) -> dict:
    """What the runner passes to seal_run (opaque to the bundle but for run_id)."""
    return {
        "run_id": rid,
        "started_at": "2026-11-28T09:00:00.000Z",
        "finished_at": "2026-11-28T09:01:30.000Z",
        "duration_sec": 90.0,
        "verdict": "PASS",
        "decision": "GO",
        "exit_code": 0,
        "target": {"mode": "embedded", "base_url": "http://127.0.0.1:8000"},
        "parameters": {"strict": False},
        "phases": [{"phase": "pre_deploy", "status": "completed", "verdict": "PASS"}],
        "metrics": {"latency_p95_ms": {"health": 3.2}},
        "code": {"aris3nb_version": "0.1.0"},
        "tools": {"python": "3.11"},
        **changes,
    }


def make_run(runs: Path, index: int) -> Path:
    """A run folder holding each kind of file a run leaves: notebook, HTML, nested JSON, PNG."""
    folder = runs / run_id(index)
    (folder / "pre_deploy" / "gate").mkdir(parents=True)
    (folder / "post_deploy" / "charts").mkdir(parents=True)
    (folder / NOTEBOOK).write_text(json.dumps({"cells": [], "nbformat": 4, "run": index}))
    (folder / PAGE).write_text(f"<html><body>run {index} — résumé</body></html>")
    (folder / NESTED_JSON).write_text(json.dumps({"verdict": "PASS", "checks": [1, 2, 3]}))
    (folder / CHART).write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4)
    return folder


def sealed_run(runs: Path, index: int, key: Path | None = None) -> Path:
    folder = make_run(runs, index)
    seal_run(folder, body(folder.name), signing_key=key)
    return folder


@pytest.fixture
def runs(tmp_path: Path) -> Path:
    folder = tmp_path / "runs"
    folder.mkdir()
    return folder


@pytest.fixture
def key(tmp_path: Path) -> Path:
    """A signing key (its public key is ``key.pem.pub``)."""
    generate_signing_key(tmp_path / "keys" / "key.pem")
    return tmp_path / "keys" / "key.pem"


def public(key: Path) -> Path:
    return key.with_name(key.name + ".pub")


def flip_one_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))


def edit_evidence(folder: Path, **changes: object) -> None:
    """Rewrite evidence.json as a forger would, keeping its formatting."""
    path = folder / EVIDENCE_NAME
    document = json.loads(path.read_text())
    document.update(changes)
    path.write_text(json.dumps(document, indent=2, ensure_ascii=False) + "\n")


def only_problem(result: Verification | ChainVerification) -> str:
    assert len(result.problems) == 1, result.problems
    return result.problems[0]


# -- sealing ------------------------------------------------------------------------------


def test_a_sealed_run_lists_every_file_and_verifies(runs: Path) -> None:
    folder = make_run(runs, 0)
    (folder / ".hidden").write_text("a hidden file is evidence too")
    path = seal_run(folder, body(folder.name))
    document = read_evidence(path)
    assert (document["format"], document["version"], document["run_id"]) == ("aris3nb.evidence", 1, folder.name)
    assert [f["path"] for f in document["files"]] == sorted([".hidden", NOTEBOOK, PAGE, NESTED_JSON, CHART])
    chart = next(f for f in document["files"] if f["path"] == CHART)
    assert chart["size"] == (folder / CHART).stat().st_size and chart["sha256"] == digest_of_file(folder / CHART)
    assert document["previous"] is None and document["signature"] is None
    assert stat.S_IMODE(path.stat().st_mode) == 0o600 and stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert list(folder.glob(".evidence.json*")) == []  # no temporary file left behind
    result = verify_run(folder)
    assert result.ok, result.problems
    assert (result.run_id, result.files_checked, result.signed, result.digest) == (
        folder.name,
        5,
        False,
        digest_of_file(path),
    )


def test_the_runners_fields_come_first_and_are_kept_as_given(runs: Path) -> None:
    folder = make_run(runs, 0)
    given = body(
        folder.name,
        target={"mode": "url", "base_url": "https://aris3.example"},
        verdict="FAIL",
        decision="NO-GO",
        exit_code=1,
    )
    document = read_evidence(seal_run(folder, given))
    assert list(document) == ["format", "version", *given, "previous", "signature", "files"]
    assert {k: document[k] for k in given} == given


def test_each_run_links_to_the_sealed_run_before_it(runs: Path) -> None:
    first, second = sealed_run(runs, 0), sealed_run(runs, 1)
    make_run(runs, 2)  # incomplete: never sealed, so not a link
    (runs / "index.html").write_text("not a run")
    third = sealed_run(runs, 3)
    assert read_evidence(second)["previous"] == {"run_id": first.name, "digest": digest_of_file(first / EVIDENCE_NAME)}
    assert read_evidence(third)["previous"] == {"run_id": second.name, "digest": digest_of_file(second / EVIDENCE_NAME)}
    chain = verify_chain(runs)
    assert chain.ok and chain.problems == [], chain.problems
    assert len(chain.runs) == 3 and chain.head is not None and chain.head.run_id == third.name
    assert chain.incomplete == [run_id(2)]
    assert chain.warnings[0] == (
        f"run {run_id(2)} has no evidence.json (incomplete run: still running, or it "
        "crashed); its files are covered by no digest"
    )
    assert chain.warnings[1:] == [] or "is unsigned and no later run links it" in chain.warnings[1]
    assert chain.passes() and not chain.passes(strict=True)


def test_sealing_refuses_a_symbolic_link(runs: Path, tmp_path: Path) -> None:
    folder = make_run(runs, 0)
    (tmp_path / "outside.txt").write_text("not part of the run")
    (folder / "pre_deploy" / "linked.txt").symlink_to(tmp_path / "outside.txt")
    with pytest.raises(EvidenceSealRefused, match=r"'pre_deploy/linked.txt' is a symbolic link"):
        seal_run(folder, body(folder.name))
    assert not (folder / EVIDENCE_NAME).exists()


def test_sealing_refuses_a_special_file(runs: Path) -> None:
    folder = make_run(runs, 0)
    os.mkfifo(folder / "pipe")
    with pytest.raises(EvidenceSealRefused, match=r"'pipe' is not a regular file or folder"):
        seal_run(folder, body(folder.name))


@pytest.mark.parametrize(
    ("document", "fragment"),
    [
        ({"run_id": "20261128T090000Z-ffffff"}, "does not name its folder"),
        ({"format": "mine"}, "carries format, which the bundle writes itself"),
        ({"metrics": float("nan")}, "not plain JSON"),
    ],
)
def test_sealing_refuses_a_body_it_cannot_seal_faithfully(runs: Path, document: dict, fragment: str) -> None:
    folder = make_run(runs, 0)
    with pytest.raises(EvidenceSealRefused, match=re.escape(fragment)):
        seal_run(folder, body(folder.name, **document))


def test_sealing_refuses_a_body_missing_a_field_and_a_folder_not_named_like_a_run(runs: Path) -> None:
    folder = make_run(runs, 0)
    document = body(folder.name)
    del document["decision"]
    with pytest.raises(EvidenceSealRefused, match="the document has no decision"):
        seal_run(folder, document)
    (runs / "my-run").mkdir()
    with pytest.raises(EvidenceSealRefused, match="must look like 20261128T094500Z-a1b2c3"):
        seal_run(runs / "my-run", body("my-run"))


def test_a_sealed_run_is_never_sealed_again(runs: Path) -> None:
    folder = sealed_run(runs, 0)
    before = (folder / EVIDENCE_NAME).read_bytes()
    with pytest.raises(EvidenceSealRefused, match="is sealed already"):
        seal_run(folder, body(folder.name, verdict="FAIL", decision="NO-GO", exit_code=1))
    assert (folder / EVIDENCE_NAME).read_bytes() == before


# -- tampering with one run -----------------------------------------------------------------


@pytest.mark.parametrize("relative", [NOTEBOOK, PAGE, NESTED_JSON, CHART])
def test_one_changed_byte_in_any_kind_of_file_is_named(runs: Path, relative: str) -> None:
    folder = sealed_run(runs, 0)
    flip_one_byte(folder / relative)
    problem = only_problem(verify_run(folder))
    assert problem.startswith(f"file {relative!r} has changed: its SHA-256 is sha256:")


def test_a_file_of_another_size_is_named(runs: Path) -> None:
    folder = sealed_run(runs, 0)
    with (folder / CHART).open("ab") as chart:
        chart.write(b"\x00")
    assert only_problem(verify_run(folder)).startswith(f"file {CHART!r} has changed: it is ")


@pytest.mark.parametrize("relative", [NOTEBOOK, NESTED_JSON])
def test_a_removed_file_is_named(runs: Path, relative: str) -> None:
    folder = sealed_run(runs, 0)
    (folder / relative).unlink()
    assert only_problem(verify_run(folder)) == f"file {relative!r} is missing (removed after the run was sealed)"


@pytest.mark.parametrize("relative", ["extra.html", ".hidden", "new_folder/deeper/more.json", "pre_deploy/.gate.swp"])
def test_an_added_file_is_named(runs: Path, relative: str) -> None:
    folder = sealed_run(runs, 0)
    (folder / relative).parent.mkdir(parents=True, exist_ok=True)
    (folder / relative).write_text("added later")
    assert only_problem(verify_run(folder)) == f"unlisted file {relative!r}: added after the run was sealed"


def test_an_added_symbolic_link_is_named_and_not_followed(runs: Path, tmp_path: Path) -> None:
    folder = sealed_run(runs, 0)
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text("outside the run")
    (folder / "post_deploy" / "elsewhere").symlink_to(outside)
    (folder / "notes.txt").symlink_to(outside / "secret.txt")
    result = verify_run(folder)
    assert sorted(result.problems) == sorted(
        f"symbolic link {name!r} in the run folder (not followed); a run holds regular files only"
        for name in ("notes.txt", "post_deploy/elsewhere")
    )


def test_a_listed_file_replaced_by_a_link_or_reached_through_one_is_named(runs: Path, tmp_path: Path) -> None:
    folder = sealed_run(runs, 0)
    copy = tmp_path / "copy.html"
    copy.write_bytes((folder / PAGE).read_bytes())
    (folder / PAGE).unlink()
    (folder / PAGE).symlink_to(copy)
    charts = folder / "post_deploy" / "charts"
    charts.rename(tmp_path / "charts")
    charts.symlink_to(tmp_path / "charts")
    result = verify_run(folder)
    assert f"file {PAGE!r} is a symbolic link; a run folder holds regular files only" in result.problems
    assert f"file {CHART!r} lies under a symbolic link; a run folder holds regular folders only" in result.problems
    assert result.files_checked == 2  # the notebook and the nested JSON, never the files behind links


@pytest.mark.parametrize(
    ("path", "reason"),
    [
        ("../outside.txt", "contains '..'"),
        ("/etc/hostname", "absolute"),
        ("pre_deploy/../../x", "contains '..'"),
    ],
)
def test_an_unsafe_listed_path_is_named_and_never_opened(runs: Path, path: str, reason: str) -> None:
    folder = sealed_run(runs, 0)
    document = json.loads((folder / EVIDENCE_NAME).read_text())
    edit_evidence(folder, files=[*document["files"], {"path": path, "size": 1, "sha256": "sha256:" + "0" * 64}])
    assert only_problem(verify_run(folder)) == f"file {path!r}: unsafe path ({reason})"


def test_a_run_moved_to_another_folder_name_is_named(runs: Path) -> None:
    folder = sealed_run(runs, 0)
    moved = folder.rename(runs / run_id(7))
    assert only_problem(verify_run(moved)) == (
        f"field 'run_id' is {run_id(0)!r}, but the run folder is {run_id(7)!r}: evidence.json was moved or edited"
    )


# -- signatures ---------------------------------------------------------------------------


def test_a_signed_run_verifies_with_its_public_key_and_reports_the_key_id(runs: Path, key: Path) -> None:
    folder = sealed_run(runs, 0, key)
    signature = folder / SIGNATURE_NAME
    assert stat.S_IMODE(signature.stat().st_mode) == 0o600
    assert len(base64.b64decode(signature.read_text().strip(), validate=True)) == 64
    block = read_evidence(folder)["signature"]
    expected_id = "sha256:" + hashlib.sha256(base64.b64decode(block["public_key"])).hexdigest()
    assert block == {
        "algorithm": "ed25519",
        "public_key": block["public_key"],
        "key_id": expected_id,
        "file": SIGNATURE_NAME,
    }
    embedded_only = verify_run(folder)
    assert embedded_only.ok and embedded_only.signed and not embedded_only.key_trusted
    assert embedded_only.key_id == expected_id
    trusted = verify_run(folder, public_key=public(key))
    assert trusted.ok and trusted.key_trusted and trusted.key_id == expected_id


def test_an_edited_signed_evidence_json_has_a_bad_signature(runs: Path, key: Path) -> None:
    folder = sealed_run(runs, 0, key)
    edit_evidence(folder, verdict="FAIL", decision="NO-GO", exit_code=1)
    for result in (verify_run(folder), verify_run(folder, public_key=public(key))):
        assert only_problem(result).startswith(f"bad signature: {SIGNATURE_NAME} does not match evidence.json")


def test_an_altered_or_missing_signature_file_is_named(runs: Path, key: Path) -> None:
    folder = sealed_run(runs, 0, key)
    signature = folder / SIGNATURE_NAME
    raw = bytearray(base64.b64decode(signature.read_text()))
    raw[0] ^= 0x01
    signature.write_text(base64.b64encode(bytes(raw)).decode() + "\n")
    assert only_problem(verify_run(folder)).startswith("bad signature")
    signature.write_text("not base64!\n")
    assert only_problem(verify_run(folder)) == f"signature file {SIGNATURE_NAME} is not base64 text"
    signature.unlink()
    assert only_problem(verify_run(folder)) == (
        f"signature file {SIGNATURE_NAME} is missing, but evidence.json says the run is signed"
    )


def test_a_run_signed_by_another_key_fails_against_the_trusted_one(runs: Path, key: Path, tmp_path: Path) -> None:
    other = generate_signing_key(tmp_path / "other.pem")
    folder = sealed_run(runs, 0, key)
    assert only_problem(verify_run(folder, public_key=other)) == (
        f"the run is signed by key {key_id(load_public_key(public(key)))}, "
        f"not by the given public key {key_id(load_public_key(other))}"
    )


def test_an_unsigned_run_fails_when_a_public_key_is_given(runs: Path, key: Path) -> None:
    folder = sealed_run(runs, 0)
    assert only_problem(verify_run(folder, public_key=public(key))).startswith(
        "the run is not signed, but a public key (sha256:"
    )


def test_a_signature_added_to_an_unsigned_run_is_named(runs: Path) -> None:
    folder = sealed_run(runs, 0)
    (folder / SIGNATURE_NAME).write_text(base64.b64encode(bytes(64)).decode() + "\n")
    assert only_problem(verify_run(folder)).startswith(
        f"{SIGNATURE_NAME} is present but evidence.json records no signature"
    )


# -- the chain ----------------------------------------------------------------------------


def test_an_edited_older_evidence_json_breaks_the_next_runs_link(runs: Path) -> None:
    first, second = sealed_run(runs, 0), sealed_run(runs, 1)
    sealed_run(runs, 2)
    edit_evidence(first, verdict="FAIL", decision="NO-GO", exit_code=1)
    assert verify_run(first).ok  # unsigned: only the next run can tell
    problem = only_problem(verify_chain(runs))
    assert problem.startswith(f"run {second.name}: its link to run {first.name} does not match")
    assert problem.endswith(f"run {first.name}'s evidence.json was changed after run {second.name} was sealed")


def test_a_run_deleted_from_the_middle_is_named_with_its_successor(runs: Path) -> None:
    first, middle, last = sealed_run(runs, 0), sealed_run(runs, 1), sealed_run(runs, 2)
    for path in sorted(middle.rglob("*"), reverse=True):
        path.rmdir() if path.is_dir() else path.unlink()
    middle.rmdir()
    assert only_problem(verify_chain(runs)) == (
        f"run {last.name}: names run {middle.name} as its previous run, but run {middle.name} is missing "
        f"(deleted?); before it is run {first.name}"
    )


def test_a_removed_evidence_json_in_the_middle_is_named(runs: Path) -> None:
    sealed_run(runs, 0)
    middle, last = sealed_run(runs, 1), sealed_run(runs, 2)
    (middle / EVIDENCE_NAME).unlink()
    chain = verify_chain(runs)
    assert only_problem(chain).startswith(
        f"run {last.name}: names run {middle.name} as its previous run, but run {middle.name} has no evidence.json"
    )
    assert chain.incomplete == [middle.name]


def test_a_run_put_in_between_afterwards_is_named(runs: Path) -> None:
    first = sealed_run(runs, 0)
    last = sealed_run(runs, 5)
    inserted = sealed_run(runs, 3)  # sealed after run 5, though its id sorts before it
    assert read_evidence(inserted)["previous"]["run_id"] == first.name
    assert only_problem(verify_chain(runs)) == (
        f"run {last.name}: names run {first.name} as its previous run, but the sealed run just before it is "
        f"run {inserted.name}: runs were reordered, or one was put in afterwards"
    )


def test_a_link_removed_from_a_run_is_named(runs: Path) -> None:
    first, second = sealed_run(runs, 0), sealed_run(runs, 1)
    edit_evidence(second, previous=None)
    assert only_problem(verify_chain(runs)).startswith(
        f"run {second.name}: records no previous run, but run {first.name} comes before it"
    )


def test_every_problem_of_every_run_is_reported_with_its_run(runs: Path, key: Path) -> None:
    first, second = sealed_run(runs, 0, key), sealed_run(runs, 1, key)
    flip_one_byte(first / NOTEBOOK)
    (second / PAGE).unlink()
    (runs / run_id(2)).write_text("a file named like a run")
    chain = verify_chain(runs, public_key=public(key))
    assert [p.split(":")[0] for p in chain.problems] == [f"run {first.name}", f"run {second.name}", f"run {run_id(2)}"]
    assert all(run.key_trusted for run in chain.runs)


def test_a_malformed_evidence_json_in_a_chain_is_that_runs_problem(runs: Path) -> None:
    first, second = sealed_run(runs, 0), sealed_run(runs, 1)
    (first / EVIDENCE_NAME).write_text("{truncated")
    chain = verify_chain(runs)
    assert chain.problems[0].startswith(f"run {first.name}: ") and "is not valid JSON" in chain.problems[0]
    assert chain.problems[1].startswith(f"run {second.name}: its link to run {first.name} does not match")
    assert len(chain.problems) == 2


# -- reading ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("{not json", "is not valid JSON"),
        ("", "is not valid JSON"),
        ('{"format": "aris3nb.backup.manifest", "version": 1}', "is not an aris3nb.evidence document"),
        (
            '{"format": "aris3nb.evidence", "version": 2}',
            "has aris3nb.evidence version 2; this aris3nb reads version 1",
        ),
        ('{"format": "aris3nb.evidence", "version": true}', "version True"),
        ('{"format": "aris3nb.evidence", "version": 1, "x": NaN}', "is not valid JSON"),
    ],
)
def test_an_unreadable_evidence_json_is_a_one_line_usage_error(runs: Path, text: str, fragment: str) -> None:
    folder = sealed_run(runs, 0)
    (folder / EVIDENCE_NAME).write_text(text)
    for read in (read_evidence, verify_run, verify_path):
        with pytest.raises(EvidenceUnreadable, match=re.escape(fragment)) as caught:
            read(folder)
        assert caught.value.exit_code == 2 and "\n" not in str(caught.value)


def test_a_missing_field_is_listed_by_the_reader(runs: Path) -> None:
    folder = sealed_run(runs, 0)
    document = json.loads((folder / EVIDENCE_NAME).read_text())
    del document["files"], document["verdict"]
    document["previous"] = {"run_id": "later", "digest": "md5:1"}
    (folder / EVIDENCE_NAME).write_text(json.dumps(document))
    with pytest.raises(EvidenceInvalid) as caught:
        read_evidence(folder / EVIDENCE_NAME)
    assert caught.value.problems == [
        "evidence.json: verdict: Field required",
        "evidence.json: previous.run_id: String should match pattern '^[0-9]{8}T[0-9]{6}Z-[0-9a-f]{6}$'",
        "evidence.json: previous.digest: String should match pattern '^sha256:[0-9a-f]{64}$'",
        "evidence.json: files: Field required",
    ]
    assert caught.value.exit_code == 1


def test_a_symbolic_link_as_evidence_json_is_refused(runs: Path, tmp_path: Path) -> None:
    folder = sealed_run(runs, 0)
    (folder / EVIDENCE_NAME).rename(tmp_path / "elsewhere.json")
    (folder / EVIDENCE_NAME).symlink_to(tmp_path / "elsewhere.json")
    with pytest.raises(EvidenceUnreadable, match="is a symbolic link"):
        verify_run(folder)


def test_verify_path_understands_a_run_its_evidence_and_a_runs_folder(runs: Path, tmp_path: Path) -> None:
    folder = sealed_run(runs, 0)
    assert isinstance(verify_path(folder), Verification)
    assert isinstance(verify_path(folder / EVIDENCE_NAME), Verification)
    assert isinstance(verify_path(runs), ChainVerification)
    unsealed = make_run(runs, 1)
    with pytest.raises(EvidenceUnreadable, match="has no evidence.json: the run was never sealed"):
        verify_path(unsealed)
    with pytest.raises(EvidenceUnreadable, match="no such file or folder"):
        verify_path(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(EvidenceUnreadable, match="holds no run folders"):
        verify_path(tmp_path / "empty")


# -- keys ---------------------------------------------------------------------------------


def test_keygen_writes_an_owner_only_key_and_never_overwrites(tmp_path: Path) -> None:
    private = tmp_path / "keys" / "signing.pem"
    public_path = generate_signing_key(private)
    assert public_path == tmp_path / "keys" / "signing.pem.pub"
    assert stat.S_IMODE(private.stat().st_mode) == 0o600
    assert private.read_text().startswith("-----BEGIN PRIVATE KEY-----")
    assert public_path.read_text().startswith("-----BEGIN PUBLIC KEY-----")
    before = private.read_bytes()
    with pytest.raises(SigningKeyError, match="already exists; keys are never overwritten"):
        generate_signing_key(private)
    assert private.read_bytes() == before
    public_path.rename(tmp_path / "other.pub")
    (tmp_path / "keys" / "fresh.pem.pub").write_text("in the way")
    with pytest.raises(SigningKeyError, match="fresh.pem.pub already exists"):
        generate_signing_key(tmp_path / "keys" / "fresh.pem")
    assert not (tmp_path / "keys" / "fresh.pem").exists()


def test_unusable_key_files_are_one_line_usage_errors(runs: Path, key: Path, tmp_path: Path) -> None:
    folder = sealed_run(runs, 0, key)
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    rsa_public = tmp_path / "rsa.pub"
    rsa_public.write_bytes(
        rsa_key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    garbage = tmp_path / "garbage.pub"
    garbage.write_text("hello")
    cases = [
        (tmp_path / "missing.pub", "no key file at"),
        (rsa_public, "not Ed25519"),
        (garbage, "is not a PEM public key"),
        (key, "is a private key; give the public key"),
    ]
    for path, fragment in cases:
        with pytest.raises(SigningKeyError, match=re.escape(fragment)) as caught:
            verify_run(folder, public_key=path)
        assert caught.value.exit_code == 2
    rsa_private = tmp_path / "rsa.pem"
    rsa_private.write_bytes(
        rsa_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    unsealed = make_run(runs, 1)
    with pytest.raises(SigningKeyError, match="not Ed25519"):
        seal_run(unsealed, body(unsealed.name), signing_key=rsa_private)
    assert not (unsealed / EVIDENCE_NAME).exists()


# -- the format documentation ---------------------------------------------------------------


def documented_blocks() -> tuple[str, str, str]:
    """The evidence.json example of docs/FORMAT.md §7 (its exact text), its signature, its public key."""
    section = FORMAT_DOC.read_text().split("## 7. Evidence bundle", 1)[1]
    [example] = [b for b in re.findall(r"```json\n(.*?)```", section, flags=re.DOTALL) if '"aris3nb.evidence"' in b]
    signature = re.search(r"```\n([A-Za-z0-9+/=]{86,88})\n```", section).group(1)
    public_pem = re.search(
        r"(-----BEGIN PUBLIC KEY-----\n.*?\n-----END PUBLIC KEY-----\n)", section, flags=re.DOTALL
    ).group(1)
    return example, signature, public_pem


def test_the_documented_example_is_read_by_the_real_reader_and_its_signature_holds(runs: Path, tmp_path: Path) -> None:
    example, signature, public_pem = documented_blocks()
    document = json.loads(example)
    folder = runs / document["run_id"]
    folder.mkdir()
    (folder / EVIDENCE_NAME).write_text(example)
    read = read_evidence(folder / EVIDENCE_NAME)
    assert read["previous"]["run_id"] < read["run_id"] and len(read["files"]) > 5
    (tmp_path / "release.pem.pub").write_text(public_pem)
    trusted = load_public_key(tmp_path / "release.pem.pub")
    trusted.verify(base64.b64decode(signature), example.encode())  # raises if the doc's bytes were edited
    assert (
        read["signature"]["public_key"]
        == base64.b64encode(trusted.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)).decode()
    )


def test_the_documented_example_has_the_shape_seal_run_writes(runs: Path) -> None:
    example, _, _ = documented_blocks()
    documented = json.loads(example)
    folder = make_run(runs, 0)
    real = read_evidence(
        seal_run(folder, {k: v for k, v in documented.items() if k not in BUNDLE_FIELDS} | {"run_id": folder.name})
    )
    assert list(real) == list(documented)
    assert list(real["files"][0]) == list(documented["files"][0])
    assert example == json.dumps(documented, indent=2, ensure_ascii=False) + "\n"  # the stable formatting


@pytest.mark.parametrize(
    ("verdict", "decision", "exit_code"),
    [("PASS", "INTERRUPTED", 130), ("FAIL", "GO", 0), ("PASS", "GO", 1), ("PASS", "MAYBE", 0)],
)
def test_an_outcome_the_runner_never_writes_is_a_problem(
    runs: Path, verdict: str, decision: str, exit_code: int
) -> None:
    folder = sealed_run(runs, 0)
    edit_evidence(folder, verdict=verdict, decision=decision, exit_code=exit_code)
    assert any("decision" in problem for problem in verify_run(folder).problems)
