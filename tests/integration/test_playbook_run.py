"""`aris3nb run`, the main job, end to end as a user runs it: the embedded default, a real
PostgreSQL target with passwords in every place a user can put them, a confirmed rollback,
and a headless re-run of one phase."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import clifork
import nbformat
import pytest
from sqlalchemy.engine import make_url

from aris3nb import migrate
from aris3nb.evidence.render import remote_references
from aris3nb.reference.seed import seed_database

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]


def aris3nb(*args: str, env: dict[str, str] | None = None, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "OPS_ENABLE_BACKUP_DRILL")}
    return clifork.run(list(args), cwd=ROOT, timeout=timeout, env={**base, **(env or {})})


def only_run(out: Path) -> Path:
    runs = sorted((out / "runs").iterdir())
    assert len(runs) == 1, runs
    return runs[0]


def evidence_of(run_dir: Path) -> dict:
    return json.loads((run_dir / "evidence.json").read_text())


@pytest.fixture(scope="module")
def embedded_run(
    embedded_go_run: tuple[Path, subprocess.CompletedProcess[str]],
) -> tuple[Path, subprocess.CompletedProcess[str]]:
    """The main job on the embedded default (the session's one run, tests/conftest.py): only
    read; a test that runs again into its artifacts folder does so in a copy of its own."""
    return embedded_go_run


def test_the_main_job_runs_every_phase_into_a_verifiable_bundle(embedded_run) -> None:
    out, done = embedded_run
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Traceback" not in done.stderr
    run_dir = only_run(out)
    document = evidence_of(run_dir)
    assert document["decision"] == "GO" and document["exit_code"] == 0
    assert [(p["phase"], p["status"]) for p in document["phases"]] == [
        ("pre_deploy", "completed"),
        ("deploy", "completed"),
        ("post_deploy", "completed"),
        ("drill", "completed"),
    ]
    assert set(document["metrics"]["latency_p95_ms"]) == {"health", "stock", "reports", "exports"}
    assert document["metrics"]["drill_rto_sec"] > 0 and document["metrics"]["backup_bytes"] > 0
    assert document["target"]["mode"] == "embedded"
    for phase in document["phases"]:
        executed = nbformat.read(run_dir / phase["notebook"], as_version=4)
        assert executed.metadata["aris3nb"]["status"] == "completed"
        assert "aris3nb-banner" in executed.cells[0].metadata["tags"]
        page = (run_dir / phase["html"]).read_text()
        assert remote_references(page) == []
        assert "aris3nb-banner" in page
        assert 'src="data:image/png;base64,' in page or phase["phase"] == "deploy", "charts embedded"
    for kept in ("pre_deploy/result.json", "deploy/manifest.json", "post_deploy/latency.png", "drill/drill_rto.png"):
        assert (run_dir / kept).is_file(), kept
    assert any(p.name.startswith("drill_report_") for p in (run_dir / "drill").iterdir())
    assert any(p.name.endswith(".junit.xml") for p in (run_dir / "post_deploy").iterdir())
    # One id: the reports the phases wrote are named after the run, straight in its folder.
    run_id = run_dir.name
    for report in ("pre_deploy/gate_summary", "post_deploy/gate_summary", "post_deploy/integrity_report"):
        written = run_dir / f"{report}_{run_id}.json"
        assert json.loads(written.read_text())["run_id"] == run_id, report
    assert not (out / "gate").exists() and not (out / "integrity").exists(), "no copy under another run id"
    assert (out / "index.html").is_file() and run_dir.name in (out / "index.html").read_text()
    assert not list(Path("/tmp").glob("aris3nb-run-embedded-*")), "the embedded target is removed afterwards"


def test_the_bundle_verifies_and_any_tampering_is_named(embedded_run, tmp_path: Path) -> None:
    out, _ = embedded_run
    run_dir = only_run(out)
    verified = aris3nb("evidence", "verify", str(run_dir))
    assert verified.returncode == 0, verified.stdout + verified.stderr
    copy = tmp_path / run_dir.name
    shutil.copytree(run_dir, copy)
    page = copy / "03-post_deploy.html"
    data = bytearray(page.read_bytes())
    data[len(data) // 2] ^= 1
    page.write_bytes(bytes(data))
    tampered = aris3nb("evidence", "verify", str(copy))
    assert tampered.returncode == 1
    assert "03-post_deploy.html" in tampered.stdout + tampered.stderr


def test_a_phase_runs_again_headlessly_with_the_same_parameters_and_signed(embedded_run, tmp_path: Path) -> None:
    out = tmp_path / "artifacts"
    shutil.copytree(embedded_run[0], out)
    first = only_run(out)
    key, other = tmp_path / "signing.pem", tmp_path / "other.pem"
    assert aris3nb("evidence", "keygen", str(key)).returncode == 0
    assert aris3nb("evidence", "keygen", str(other)).returncode == 0
    again = aris3nb("run", "--out", str(out), "--rerun", first.name, "--phase", "deploy", "--signing-key", str(key))
    assert again.returncode == 0, again.stdout + again.stderr
    rerun = max((out / "runs").iterdir())
    document = evidence_of(rerun)
    assert document["parameters"]["rerun_of"] == first.name
    assert [p["phase"] for p in document["phases"]] == ["deploy"]
    assert document["previous"]["run_id"] == first.name, "the runs form a chain"
    assert document["signature"]["algorithm"] == "ed25519"
    assert aris3nb("evidence", "verify", str(out / "runs")).returncode == 0
    assert aris3nb("evidence", "verify", str(rerun), "--public-key", f"{key}.pub").returncode == 0
    assert aris3nb("evidence", "verify", str(rerun), "--public-key", f"{other}.pub").returncode == 1

    unsigned = aris3nb("run", "--out", str(out), "--rerun", first.name, "--phase", "deploy")
    assert unsigned.returncode == 0, unsigned.stdout + unsigned.stderr
    assert f"warning: this run is not signed, but the run before it ({rerun.name}) is" in unsigned.stderr


def test_a_run_that_links_to_a_run_no_longer_verifying_says_so(embedded_run, tmp_path: Path) -> None:
    """A file added to a sealed run (a notebook re-run where it lies, say): the next run still
    links to it as it was sealed, and says that it does not verify, naming the file."""
    out = tmp_path / "artifacts"
    shutil.copytree(embedded_run[0], out)
    first = only_run(out)
    (first / "artifacts" / "drills").mkdir(parents=True)
    (first / "artifacts" / "drills" / "drill_report_x.json").write_text("{}")
    done = aris3nb("run", "--out", str(out), "pre_deploy")
    assert done.returncode == 0, done.stdout + done.stderr
    [warning] = [line for line in done.stderr.splitlines() if "does not verify" in line]
    assert warning.startswith(f"warning: the run before this one, {first.name}, does not verify (1 problem, e.g. ")
    assert "artifacts/drills/drill_report_x.json" in warning and f"aris3nb evidence verify {first}" in warning


def test_a_rerun_takes_only_a_run_id_and_only_a_run_that_verifies(embedded_run, tmp_path: Path) -> None:
    out = tmp_path / "artifacts"
    shutil.copytree(embedded_run[0], out)
    first = only_run(out)  # the main job's run
    for path_like in (f"../../../other/art/runs/{first.name}", str(first), "20261129T000000Z-zzzzzz"):
        done = aris3nb("run", "--out", str(out), "--rerun", path_like, "--phase", "pre_deploy")
        assert done.returncode == 2 and "run id" in done.stderr and "Traceback" not in done.stderr, done.stderr
    copy = tmp_path / "art"
    shutil.copytree(out, copy)
    page = copy / "runs" / first.name / "01-pre_deploy.html"
    page.write_bytes(page.read_bytes() + b"<!-- changed -->")
    done = aris3nb("run", "--out", str(copy), "--rerun", first.name, "--phase", "pre_deploy")
    assert done.returncode == 1 and "does not verify" in done.stderr, done.stdout + done.stderr

    copy = tmp_path / "art2"  # evidence.json itself edited, once a later run links it
    shutil.copytree(out, copy)
    assert aris3nb("run", "--out", str(copy), "--rerun", first.name, "--phase", "deploy").returncode == 0
    evidence = copy / "runs" / first.name / "evidence.json"
    document = json.loads(evidence.read_text())
    document["parameters"]["pytest_target"] = "/tmp/always_passes.py"
    evidence.write_text(json.dumps(document, indent=2))
    runs_before = sorted(p.name for p in (copy / "runs").iterdir())
    done = aris3nb("run", "--out", str(copy), "--rerun", first.name, "--phase", "pre_deploy")
    assert done.returncode == 1 and "changed after it was sealed" in done.stderr, done.stdout + done.stderr
    assert sorted(p.name for p in (copy / "runs").iterdir()) == runs_before, "nothing was run"


def test_a_confirmed_rollback_reverts_restores_verifies_and_logs(tmp_path: Path) -> None:
    done = aris3nb(
        "run",
        "deploy",
        "rollback",
        "--yes",
        "--out",
        str(tmp_path),
        "--revert-command",
        "echo reverted-to-stable-release",
    )
    assert done.returncode == 1, done.stdout + done.stderr  # a rollback is a NO-GO
    assert "NO-GO" in done.stdout and "Traceback" not in done.stderr
    document = evidence_of(only_run(tmp_path))
    rollback = document["phases"][-1]
    assert (rollback["phase"], rollback["status"], rollback["verdict"]) == ("rollback", "completed", "PASS")
    statuses = {c["name"]: c["status"] for c in rollback["checks"]}
    assert statuses["rollback.no_go"] == statuses["rollback.revert"] == statuses["rollback.restore"] == "PASS"
    assert statuses["smoke"] == statuses["http.ready"] == "PASS"
    assert json.loads((tmp_path / "DEPLOY_FREEZE.json").read_text())["run_id"] == document["run_id"]
    log = [json.loads(line) for line in (tmp_path / "rollback_log.jsonl").read_text().splitlines()]
    actions = [(entry["action"], entry.get("status")) for entry in log]
    assert ("no_go", None) in actions and ("revert", "PASS") in actions and ("restore", "RESTORED") in actions
    assert any("reverted-to-stable-release" in entry.get("output", "") for entry in log)
    assert (only_run(tmp_path) / "rollback" / "rollback_log.jsonl").is_file()
    frozen = aris3nb("gate", "--json", env={"OPS_ARTIFACTS_DIR": str(tmp_path)})
    assert frozen.returncode == 1, "no release while the freeze stands"
    freeze = next(c for c in json.loads(frozen.stdout)["checks"] if c["name"] == "deploy.freeze")
    assert freeze["status"] == "FAIL" and "DEPLOY_FREEZE.json" in freeze["detail"]


def test_an_unconfirmed_rollback_restores_nothing_and_says_so(tmp_path: Path) -> None:
    done = aris3nb("run", "deploy", "rollback", "--out", str(tmp_path))
    assert done.returncode == 1
    rollback = evidence_of(only_run(tmp_path))["phases"][-1]
    assert rollback["verdict"] == "PASS_WITH_WARNINGS"
    restore = next(c for c in rollback["checks"] if c["name"] == "rollback.restore")
    assert restore["status"] == "WARN" and "--yes" in restore["detail"]


@pytest.mark.postgres
def test_no_secret_reaches_any_file_or_output(postgres_url: str, tmp_path: Path, prove_backup) -> None:
    """A whole playbook on PostgreSQL, rollback included, with recognisable secrets in the
    URL, the environment and the service's keys: none of them in any file produced."""
    secrets = {
        "url password": "Url-Pa55word-7f3c9e",
        "smoke password": "Smoke-Pa55word-51d2",
        "seed password": "Seed-Pa55word-a8b0",
        "secret key": "Signing-Key-0123456789abcdef0123456789abcdef",
    }
    exports = tmp_path / "exports"
    migrate.upgrade(postgres_url)
    seed_database(
        postgres_url,
        scale=300,
        exports_dir=exports,
        seed_password=secrets["seed password"],
        smoke_password=secrets["smoke password"],
    )
    url = make_url(postgres_url).set(password=secrets["url password"]).render_as_string(hide_password=False)
    out = tmp_path / "artifacts"
    prove_backup(postgres_url, out, exports)  # released before: a fresh backup and a passing drill of it
    env = {
        "ARIS3_SMOKE_PASSWORD": secrets["smoke password"],
        "ARIS3_SEED_PASSWORD": secrets["seed password"],
        "ARIS3_SECRET_KEY": secrets["secret key"],
        "ARIS3_EXPORTS_DIR": str(exports),
        "OPS_ENABLE_BACKUP_DRILL": "true",
        # Where the secrets go is what is judged: the latency checks sample as little as they can
        # (their verdict, inconclusive, is no part of this test's; every phase still runs all of its checks).
        "OPS_GATE_LATENCY_SAMPLES": "1",
        "OPS_GATE_LATENCY_WARMUP": "0",
    }
    done = aris3nb(
        "run",
        "pre_deploy",
        "deploy",
        "post_deploy",
        "drill",
        "rollback",
        "--yes",
        "--database-url",
        url,
        "--out",
        str(out),
        "--revert-command",
        f"echo {url}",
        env=env,
    )
    assert done.returncode == 1, done.stdout + done.stderr  # the rollback makes it NO-GO
    document = evidence_of(only_run(out))
    assert [p["status"] for p in document["phases"]] == ["completed"] * 5, document["phases"]
    assert document["target"]["database_url"].count("***") == 1
    produced = [path for path in out.rglob("*") if path.is_file()]
    assert len(produced) > 20
    for name, secret in secrets.items():
        for path in produced:
            assert secret.encode() not in path.read_bytes(), f"the {name} is in {path}"
        assert secret not in done.stdout + done.stderr, f"the {name} is in the terminal output"
