"""``aris3nb evidence verify|keygen`` as an auditor runs them: exit 0 with a short summary, 1
with one line per problem, 2 with one ``FAILED:`` line for input it cannot use; never a
traceback. Most run in-process through ``aris3nb.cli.main``; the last ones run the installed
console script."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import clifork
import pytest

from aris3nb.cli import main
from aris3nb.evidence.bundle import EVIDENCE_NAME, SIGNATURE_NAME, generate_signing_key, seal_run

ARIS3NB = str(Path(sys.executable).with_name("aris3nb"))


def run_id(index: int) -> str:
    return f"20261128T09{index:02d}00Z-{index:06x}"


def sealed_run(runs: Path, index: int, key: Path | None = None) -> Path:
    """A run with a notebook, its HTML page and a nested JSON file, sealed."""
    folder = runs / run_id(index)
    (folder / "post_deploy").mkdir(parents=True)
    (folder / "03-post_deploy.ipynb").write_text('{"cells": []}')
    (folder / "03-post_deploy.html").write_text("<html></html>")
    (folder / "post_deploy" / "integrity_report.json").write_text('{"verdict": "PASS"}')
    seal_run(
        folder,
        {
            "run_id": folder.name,
            "started_at": "2026-11-28T09:00:00.000Z",
            "finished_at": "2026-11-28T09:00:10.000Z",
            "duration_sec": 10.0,
            "verdict": "PASS",
            "decision": "GO",
            "exit_code": 0,
            "target": {"mode": "embedded"},
            "parameters": {},
            "phases": [],
            "metrics": {},
            "code": {},
            "tools": {},
        },
        signing_key=key,
    )
    return folder


def cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, list[str], str]:
    """Exit code, standard output lines and standard error of ``aris3nb ARGS``, in-process."""
    with pytest.raises(SystemExit) as exited:
        main(list(args))
    captured = capsys.readouterr()
    assert "Traceback" not in captured.out + captured.err
    return exited.value.code or 0, captured.out.splitlines(), captured.err


def assert_one_failed_line(err: str, *fragments: str) -> None:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("FAILED: "), err
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


@pytest.fixture
def runs(tmp_path: Path) -> Path:
    (tmp_path / "runs").mkdir()
    return tmp_path / "runs"


@pytest.fixture
def key(tmp_path: Path) -> Path:
    generate_signing_key(tmp_path / "keys" / "release.pem")
    return tmp_path / "keys" / "release.pem"


def test_a_good_chain_exits_0_with_a_short_summary(runs: Path, key: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for index in range(3):
        sealed_run(runs, index, key)
    code, out, err = cli(capsys, "evidence", "verify", str(runs), "--public-key", f"{key}.pub")
    assert code == 0 and err == ""
    assert out[0] == f"VALID: chain of 3 runs in {runs}: 9 files match, every link holds"
    assert all(run_id(i) in "\n".join(out) for i in range(3))
    assert "good, by the given public key sha256:" in out[1]
    assert out[-1].startswith(f"  head: {run_id(2)} sha256:")


def test_an_unsigned_newest_run_makes_the_chain_headline_say_unprotected(
    runs: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for index in range(2):
        sealed_run(runs, index)
    code, out, _ = cli(capsys, "evidence", "verify", str(runs))
    assert code == 0 and out[0].startswith(f"VALID FILES, UNPROTECTED HEAD: chain of 2 runs in {runs}")
    assert f"the newest run's evidence.json ({run_id(1)}) is protected by nothing" in out[0]
    assert cli(capsys, "evidence", "verify", str(runs), "--strict")[0] == 1
    code, out, _ = cli(capsys, "evidence", "verify", str(runs), "--json")
    document = json.loads("".join(out))
    assert code == 0 and document["passed"] is True, "the same verdict in JSON as in text"
    assert f"the newest run's evidence.json ({run_id(1)}) is protected by nothing" in document["unprotected"]


def test_a_single_run_is_verified_from_its_folder_or_its_evidence_json(
    runs: Path, key: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = sealed_run(runs, 0, key)
    for path in (folder, folder / EVIDENCE_NAME):
        code, out, _ = cli(capsys, "evidence", "verify", str(path))
        assert code == 0
        assert out[0] == f"VALID: run {folder.name}: 3 files, 45 bytes match evidence.json"
        assert "key embedded in evidence.json, sha256:" in out[1] and "not who signed it" in out[1]


def test_json_output_carries_the_facts(runs: Path, capsys: pytest.CaptureFixture[str]) -> None:
    sealed_run(runs, 0)
    sealed_run(runs, 1)
    (runs / run_id(2)).mkdir()
    code, out, _ = cli(capsys, "evidence", "verify", str(runs), "--json")
    document = json.loads("\n".join(out))
    assert code == 0
    assert (document["kind"], document["passed"], document["valid"], document["length"]) == ("chain", True, True, 2)
    assert document["incomplete"] == [run_id(2)] and len(document["warnings"]) == 2  # and the unsigned head
    assert document["head"]["run_id"] == run_id(1) and document["runs"][1]["previous"]["run_id"] == run_id(0)


def test_an_incomplete_run_is_a_warning_unless_strict(runs: Path, capsys: pytest.CaptureFixture[str]) -> None:
    sealed_run(runs, 0)
    (runs / run_id(1)).mkdir()
    code, out, _ = cli(capsys, "evidence", "verify", str(runs))
    assert code == 0 and any(
        line.startswith(f"  warning: run {run_id(1)} has no evidence.json (incomplete run") for line in out
    )
    code, out, _ = cli(capsys, "evidence", "verify", str(runs), "--strict")
    assert code == 1 and out[0].startswith("INVALID") and out[1].startswith(f"  - run {run_id(1)} has no evidence.json")


def test_an_unsigned_unlinked_run_is_said_unprotected_and_fails_strict(
    runs: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = sealed_run(runs, 0)
    code, out, _ = cli(capsys, "evidence", "verify", str(folder))
    assert code == 0 and out[0].startswith(f"VALID FILES, UNPROTECTED evidence.json: run {folder.name}")
    assert "protected only by a signature or by the next run's link" in out[0]
    code, out, _ = cli(capsys, "evidence", "verify", str(folder), "--strict")
    assert code == 1
    later = sealed_run(runs, 1)
    code, out, _ = cli(capsys, "evidence", "verify", str(folder), "--strict")
    assert code == 0 and out[0].startswith(f"VALID: run {folder.name}"), "the next run's link protects it now"
    document = json.loads((folder / EVIDENCE_NAME).read_text())
    document["verdict"] = "PASS"  # edited after sealing: the next run's link no longer holds
    (folder / EVIDENCE_NAME).write_text(json.dumps(document))
    code, out, _ = cli(capsys, "evidence", "verify", str(folder))
    assert code == 1 and out[0].startswith(f"INVALID: run {folder.name}"), "detected: not merely unprotected"
    assert f"the next run '{later.name}'" in out[1] and "changed after that run was sealed" in out[1]


def test_tampering_exits_1_with_one_line_per_problem(runs: Path, capsys: pytest.CaptureFixture[str]) -> None:
    first, middle, last = (sealed_run(runs, i) for i in range(3))
    (first / "03-post_deploy.html").write_text("<html>edited</html>")
    (first / ".added").write_text("x")
    for path in sorted(middle.rglob("*"), reverse=True):
        path.rmdir() if path.is_dir() else path.unlink()
    middle.rmdir()
    code, out, err = cli(capsys, "evidence", "verify", str(runs))
    assert code == 1 and err == ""
    assert out == [
        f"INVALID: chain of 2 runs in {runs} (3 problems)",
        f"  - run {first.name}: file '03-post_deploy.html' has changed: it is 19 bytes, evidence.json says 13",
        f"  - run {first.name}: unlisted file '.added': added after the run was sealed",
        (
            f"  - run {last.name}: names run {middle.name} as its previous run, but run {middle.name} is missing "
            f"(deleted?); before it is run {first.name}"
        ),
        (
            f"  warning: the newest run {last.name} is unsigned and no later run links it: its evidence.json "
            "(verdicts, parameters) is protected by nothing yet; sign runs (--signing-key) "
            "or record the head's digest elsewhere"
        ),
    ]


def test_signature_problems_exit_1(runs: Path, key: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    signed, unsigned = sealed_run(runs, 0, key), sealed_run(runs, 1)
    other = generate_signing_key(tmp_path / "other.pem")
    code, out, _ = cli(capsys, "evidence", "verify", str(signed), "--public-key", str(other))
    assert code == 1 and "not by the given public key" in out[1]
    code, out, _ = cli(capsys, "evidence", "verify", str(unsigned), "--public-key", f"{key}.pub")
    assert code == 1 and "the run is not signed, but a public key" in out[1]
    text = (signed / EVIDENCE_NAME).read_text()
    (signed / EVIDENCE_NAME).write_text(text.replace('"verdict": "PASS"', '"verdict": "PASS_WITH_WARNINGS"'))
    code, out, _ = cli(capsys, "evidence", "verify", str(signed))
    assert code == 1 and out[1].startswith(f"  - bad signature: {SIGNATURE_NAME} does not match evidence.json")


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ('{"format": "aris3nb.evidence", "version": 1, ', "is not valid JSON"),
        (
            '{"format": "aris3nb.evidence", "version": 9}',
            "has aris3nb.evidence version 9; this aris3nb reads version 1",
        ),
    ],
)
def test_unusable_evidence_exits_2_in_one_line(
    runs: Path, text: str, fragment: str, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = sealed_run(runs, 0)
    (folder / EVIDENCE_NAME).write_text(text)
    code, out, err = cli(capsys, "evidence", "verify", str(folder))
    assert code == 2 and out == []
    assert_one_failed_line(err, fragment)


def test_unusable_paths_and_keys_exit_2_in_one_line(
    runs: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = sealed_run(runs, 0)
    cases = [
        (["evidence", "verify", str(tmp_path / "nowhere")], "no such file or folder"),
        (["evidence", "verify", str(folder), "--public-key", str(tmp_path / "missing.pub")], "no key file at"),
        (["evidence", "verify", str(folder / "03-post_deploy.html")], "is not an evidence.json, a run folder"),
        (["evidence", "verify", str(tmp_path / "keys")], "no such file or folder"),
    ]
    (runs / run_id(1)).mkdir()
    cases.append((["evidence", "verify", str(runs / run_id(1))], "has no evidence.json: the run was never sealed"))
    for args, fragment in cases:
        code, out, err = cli(capsys, *args)
        assert code == 2, (args, out, err)
        assert_one_failed_line(err, fragment)


def test_keygen_creates_a_pair_and_refuses_to_overwrite(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    private = tmp_path / "release.pem"
    code, out, _ = cli(capsys, "evidence", "keygen", str(private), "--json")
    document = json.loads("\n".join(out))
    assert code == 0 and document["public_key"] == f"{private}.pub" and document["key_id"].startswith("sha256:")
    assert private.stat().st_mode & 0o077 == 0
    code, out, err = cli(capsys, "evidence", "keygen", str(private))
    assert code == 2
    assert_one_failed_line(err, "already exists; keys are never overwritten")


def test_the_console_script_verifies_and_fails_without_a_traceback(runs: Path, key: Path) -> None:
    folder = sealed_run(runs, 0, key)
    done = clifork.run(["evidence", "verify", str(runs), "--public-key", f"{key}.pub"], timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    (folder / "03-post_deploy.ipynb").write_text('{"cells": [1]}')
    done = clifork.run(["evidence", "verify", str(folder)], timeout=60)
    assert done.returncode == 1 and "file '03-post_deploy.ipynb' has changed" in done.stdout
    (folder / EVIDENCE_NAME).write_text("{")
    done = clifork.run(["evidence", "verify", str(folder)], timeout=60)
    assert done.returncode == 2 and done.stderr.startswith("FAILED: ") and len(done.stderr.splitlines()) == 1
    assert "Traceback" not in done.stdout + done.stderr


@pytest.mark.parametrize("url", ["http://example.com/runs", "https://user:s3cret@example.com/runs", "gs://bucket/runs"])
def test_a_url_of_another_kind_is_refused_by_its_scheme_never_read_as_a_folder(
    url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = cli(capsys, "evidence", "verify", url)
    assert code == 2
    assert_one_failed_line(err, f"{url.split('://')[0]}:// is not a place evidence is kept", "s3://BUCKET")
    assert "s3cret" not in err and "no such file" not in err


def test_the_chains_end_is_said_anchored_only_where_the_bucket_locks_its_head() -> None:
    from types import SimpleNamespace

    from aris3nb.cli.evidence import _kept

    assert _kept(SimpleNamespace(head_kept="locked")).startswith("the store's head below anchors it")
    assert "can be removed" in _kept(SimpleNamespace(head_kept="versioned"))
    unlocked = _kept(SimpleNamespace(head_kept="unlocked"))
    assert "carries no retention" in unlocked and "can be removed" in unlocked and "anchors" not in unlocked
    assert "record it elsewhere" in _kept(SimpleNamespace(head_kept="none")) and "anchors" not in _kept(None)
