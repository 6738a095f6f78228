"""The whole gate, as release engineers run it: the playbook's command line verbatim from
the repository root (a real process), the embedded default target, the JSON summary, and
bad input refused with exit 2 before anything runs."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa

from aris3nb import migrate
from aris3nb.core.settings import load_settings
from aris3nb.gate import GATE_SUMMARY_VERSION, GateOptions, Status, run_gate
from aris3nb.gate.smoke import AREAS

REPO_ROOT = Path(__file__).resolve().parents[2]
SMOKE_TARGET = "tests/smoke/test_post_merge_readiness.py"
SECRET = "Gate-Secret-4821"


def gate_process(*args: str, env: dict[str, str], timeout: float = 180) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "scripts/release_readiness_gate.py", *args],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=False,
        timeout=timeout,
        env={**os.environ, **env},
    )


def assert_no_leak(text: str) -> None:
    assert SECRET not in text and "Traceback" not in text


@pytest.mark.slow
@pytest.mark.postgres
def test_the_embedded_gate_passes_every_check_on_both_engines(
    tmp_path: Path, postgres_admin: sa.Engine, postgres_url: str, monkeypatch: pytest.MonkeyPatch, prove_backup
) -> None:
    monkeypatch.setenv("ARIS3_SMOKE_PASSWORD", SECRET)
    migrate.upgrade(postgres_url)
    prove_backup(postgres_url, tmp_path / "artifacts")  # a target released before: backed up and drilled
    settings = load_settings(artifacts={"dir": tmp_path / "artifacts"})
    report = run_gate(
        GateOptions(
            pytest_target=SMOKE_TARGET,
            database_url=postgres_url,
            workdir=REPO_ROOT,
            postgres_url=postgres_admin.url.render_as_string(hide_password=False),
        ),
        settings,
    )
    statuses = {r.name: r.status for r in report.results}
    assert statuses.pop("git") in (Status.PASS, Status.WARN), "the checkout may be dirty while it is being worked on"
    assert set(statuses.values()) == {Status.PASS}, {r.name: r.detail for r in report.results}
    smoke = next(r for r in report.results if r.name == "smoke")
    assert list(smoke.evidence["areas"]) == list(AREAS)
    assert report.exit_code == 0

    summary = json.loads(report.summary_path.read_text())
    assert summary["version"] == GATE_SUMMARY_VERSION and summary["run_id"] == report.run_id
    assert report.summary_path.name == f"gate_summary_{report.run_id}.json"
    assert stat.S_IMODE(report.summary_path.stat().st_mode) == 0o600
    assert stat.S_IMODE(report.summary_path.parent.stat().st_mode) == 0o700
    for name in ("smoke_output", "smoke_junit"):
        assert (report.summary_path.parent / summary["files"][name]).is_file()
    latency = {c["name"]: c["evidence"] for c in summary["checks"] if c["name"].startswith("latency.")}
    assert set(latency) == {"latency.health", "latency.stock", "latency.reports", "latency.exports"}
    assert all(len(e["samples_ms"]) >= 200 for e in latency.values())
    assert latency["latency.health"]["budget_ms"] == 120
    assert "embedded reference service" in summary["inputs"]["live_target"]
    for path in report.summary_path.parent.iterdir():
        assert_no_leak(path.read_text())


@pytest.mark.slow
def test_the_playbook_gate_command_runs_verbatim_from_the_repository_root(tmp_path: Path) -> None:
    done = gate_process(
        "--pytest-target",
        SMOKE_TARGET,
        "--json",
        env={"OPS_ARTIFACTS_DIR": str(tmp_path), "ARIS3_SMOKE_PASSWORD": SECRET},
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    summary = json.loads(done.stdout)
    assert summary["verdict"] in ("PASS", "PASS_WITH_WARNINGS") and summary["exit_code"] == 0
    written = tmp_path / "gate" / f"gate_summary_{summary['run_id']}.json"
    assert json.loads(written.read_text()) == summary
    assert_no_leak(done.stdout + done.stderr)


def test_a_failing_gate_exits_1_with_one_line_and_keeps_its_summary(tmp_path: Path) -> None:
    down = f"http://ops:{SECRET}@127.0.0.1:1"
    done = gate_process(
        "--base-url",
        down,
        "--database-url",
        f"postgresql://postgres:{SECRET}@127.0.0.1:1/aris3",
        env={"OPS_ARTIFACTS_DIR": str(tmp_path), "OPS_GATE_HTTP_TIMEOUT_SEC": "1"},
        timeout=120,
    )
    assert done.returncode == 1, done.stderr
    assert done.stderr.strip().splitlines()[-1].startswith("FAILED: release readiness gate: FAIL (")
    assert "target.schema" in done.stderr and "http.health" in done.stderr
    assert_no_leak(done.stdout + done.stderr)
    [summary_file] = (tmp_path / "gate").glob("gate_summary_*.json")
    summary = json.loads(summary_file.read_text())
    target = next(c for c in summary["checks"] if c["name"] == "target.schema")
    assert target["status"] == "FAIL" and "unavailable" in target["detail"]
    assert_no_leak(summary_file.read_text())


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (
            ["--pytest-target", "tests/smoke/no_such_test.py"],
            "pytest target 'tests/smoke/no_such_test.py' does not exist",
        ),
        (["--base-url", f"http://ops:{SECRET}@"], "malformed base URL"),
        (["--budget", "checkout=100"], "--budget 'checkout=100'"),
        (
            ["--check", "http.health", "--check", "latency.checkout"],
            "unknown gate check latency.checkout; known: git, deploy.freeze, ",
        ),
    ],
)  # more bad input, refused by the same validation: tests/unit/test_gate_options.py
def test_bad_usage_exits_2_before_anything_runs(tmp_path: Path, args: list[str], fragment: str) -> None:
    done = gate_process(*args, env={"OPS_ARTIFACTS_DIR": str(tmp_path)}, timeout=60)
    assert done.returncode == 2, (done.stdout, done.stderr)
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("FAILED: ") and fragment in lines[0], lines
    assert_no_leak(done.stdout + done.stderr)
    assert not (tmp_path / "gate").exists(), "nothing judged, nothing written"


def test_check_runs_only_the_checks_named_and_the_summary_names_the_profile(tmp_path: Path) -> None:
    done = gate_process("--check", "deploy.freeze", "--json", env={"OPS_ARTIFACTS_DIR": str(tmp_path)}, timeout=60)
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert [c["name"] for c in summary["checks"]] == ["deploy.freeze"] and summary["verdict"] == "PASS"
    assert summary["inputs"]["checks"] == ["deploy.freeze"]
    assert summary["inputs"]["profile"] == {"name": "reference", "path": None, "sha256": None}


@pytest.mark.slow
def test_warnings_pass_unless_strict(tmp_path: Path) -> None:
    """Outside a git checkout the git check warns, and one latency sample is inconclusive
    (WARN, never PASS): the embedded gate then passes with warnings, which --strict refuses."""
    env = {
        **os.environ,
        "OPS_ARTIFACTS_DIR": str(tmp_path / "artifacts"),
        "OPS_GATE_LATENCY_SAMPLES": "1",
        "OPS_GATE_LATENCY_WARMUP": "0",
    }
    aris3nb = str(Path(sys.executable).with_name("aris3nb"))
    for strict, code, verdict in ((False, 0, "PASS_WITH_WARNINGS"), (True, 1, "FAIL")):
        done = subprocess.run(
            [aris3nb, "gate", "--json", *(["--strict"] * strict)],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            check=False,
            timeout=120,
            env=env,
        )
        assert done.returncode == code, done.stderr
        summary = json.loads(done.stdout)
        assert (summary["verdict"], summary["strict"]) == (verdict, strict)
        assert {c["status"] for c in summary["checks"]} == {"PASS", "WARN", "SKIP"}
        assert summary["checks"][0]["detail"] == f"not a git checkout: {tmp_path} is not a git checkout"
        if strict:
            assert done.stderr.startswith("FAILED: release readiness gate: FAIL (git, latency.health")


def test_help_lists_and_explains_the_commands() -> None:
    aris3nb = str(Path(sys.executable).with_name("aris3nb"))
    top = subprocess.run([aris3nb, "--help"], capture_output=True, text=True, check=False, timeout=60)
    assert "gate" in top.stdout and "integrity" in top.stdout
    for command in ("gate", "integrity"):
        done = subprocess.run(
            [aris3nb, command, "--help"],
            capture_output=True,
            text=True,
            check=False,
            timeout=60,
            env={**os.environ, "COLUMNS": "200"},
        )
        assert done.returncode == 0 and "--database-url" in done.stdout and "--strict" in done.stdout
