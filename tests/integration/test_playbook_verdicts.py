"""No GO without the playbook done, and no rollback that restores what this release did not
break: `aris3nb run` on a real PostgreSQL target, as an operator runs it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import clifork
import pytest
import sqlalchemy as sa

from aris3nb import migrate
from aris3nb.core.db import create_engine
from aris3nb.reference.seed import seed_database

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

ARIS3NB = str(Path(sys.executable).with_name("aris3nb"))
ROOT = Path(__file__).resolve().parents[2]


def aris3nb(*args: str, out: Path, **env: str) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "OPS_ENABLE_BACKUP_DRILL")}
    return clifork.run(
        list(args), cwd=ROOT, timeout=600, env={**base, "OPS_ARTIFACTS_DIR": str(out), "COLUMNS": "300", **env}
    )


@pytest.fixture
def target(postgres_url: str, tmp_path: Path) -> str:
    migrate.upgrade(postgres_url)
    seed_database(postgres_url, scale=200, exports_dir=tmp_path / "exports")
    return postgres_url


def newer_rows(url: str) -> int:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return int(conn.exec_driver_sql("SELECT count(*) FROM audit_events WHERE action = 'NEWER'").scalar_one())
    finally:
        engine.dispose()


def write_business_row(url: str) -> None:
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO audit_events (action, entity_type, entity_id, details, created_at) "
                "VALUES ('NEWER', 'test', '1', '{}', now())"
            )
        )
    engine.dispose()


def only_run(out: Path) -> dict:
    runs = sorted((out / "runs").iterdir())
    assert len(runs) == 1, runs
    return json.loads((runs[0] / "evidence.json").read_text())


def test_a_pre_deploy_fail_with_yes_restores_nothing(target: str, tmp_path: Path) -> None:
    """The gate FAILs before anything is deployed: NO-GO and the freeze; the app is not
    reverted, and the database — with a row written after an older backup — is left exactly as
    it is."""
    out = tmp_path / "artifacts"
    made = aris3nb(
        "backup",
        "create",
        "--name",
        "old_1",
        "--database-url",
        target,
        "--exports-dir",
        str(tmp_path / "exports"),
        out=out,
    )
    assert made.returncode == 0, made.stderr
    time.sleep(0.05)
    write_business_row(target)
    assert newer_rows(target) == 1

    done = aris3nb(
        "run",
        "--database-url",
        target,
        "--yes",
        "--budget",
        "health=0.001",
        "--revert-command",
        f"touch {tmp_path / 'reverted'}",
        out=out,
        OPS_ENABLE_BACKUP_DRILL="true",
        ARIS3_EXPORTS_DIR=str(tmp_path / "exports"),
    )
    assert done.returncode == 1, done.stdout + done.stderr
    assert "Traceback" not in done.stderr
    document = only_run(out)
    assert document["decision"] == "NO-GO"
    assert [t["phase"] for t in document["triggers"]] == ["pre_deploy"]
    rollback = next(p for p in document["phases"] if p["phase"] == "rollback")
    revert = next(c for c in rollback["checks"] if c["name"] == "rollback.revert")
    assert revert["status"] == "SKIP" and "nothing reverted" in revert["detail"], revert
    assert not (tmp_path / "reverted").exists(), "the running release, not this run's, was reverted"
    restore = next(c for c in rollback["checks"] if c["name"] == "rollback.restore")
    assert restore["status"] == "SKIP", "no work was done: never a PASS"
    assert "nothing restored" in restore["detail"] and "nothing was deployed" in restore["detail"], restore
    assert newer_rows(target) == 1, "the row written after old_1 is still there"
    assert [p.name for p in (out / "backups").iterdir()] == ["old_1"], "no restore began: no safety backup either"
    assert (out / "DEPLOY_FREEZE.json").is_file()
    log = [json.loads(line) for line in (out / "rollback_log.jsonl").read_text().splitlines()]
    assert ("restore", "NOTHING_TO_RESTORE") in [(e["action"], e.get("status")) for e in log]
    # The failed phase's notebook and page say why in one line, not with a traceback of aris3nb.
    run_dir = next((out / "runs").iterdir())
    errors = [
        output
        for cell in json.loads((run_dir / "01-pre_deploy.ipynb").read_text())["cells"]
        for output in cell.get("outputs", [])
        if output.get("output_type") == "error"
    ]
    assert [e["ename"] for e in errors] == ["PhaseFailed"]
    assert errors[0]["traceback"] == [f"PhaseFailed: {errors[0]['evalue']}"] and "latency" in errors[0]["evalue"]
    page = (run_dir / "01-pre_deploy.html").read_text()
    assert "most recent call last" not in page and "display.py" not in page
    assert not any(e.get("status") == "RESTORED" for e in log)


def test_a_corrupt_newest_backup_fails_the_drill_by_name_and_is_never_passed_over(target: str, tmp_path: Path) -> None:
    out = tmp_path / "artifacts"
    for name in ("older_good", "newest_bad"):
        made = aris3nb("backup", "create", "--name", name, "--database-url", target, out=out)
        assert made.returncode == 0, made.stderr
        time.sleep(0.05)
    dump = out / "backups" / "newest_bad" / "database" / "dump"
    victim = next(p for p in sorted(dump.iterdir()) if p.name != "toc.dat")
    victim.write_bytes(victim.read_bytes() + b"x")

    done = aris3nb("run", "drill", "--database-url", target, out=out, OPS_ENABLE_BACKUP_DRILL="true")
    assert done.returncode == 1, done.stdout + done.stderr
    document = only_run(out)
    assert document["decision"] == "NO-GO"
    drill = next(p for p in document["phases"] if p["phase"] == "drill")
    assert drill["verdict"] == "FAIL"
    failed = [c for c in drill["checks"] if c["status"] == "FAIL"]
    assert failed and "manifest valid" == failed[0]["name"] and victim.name in failed[0]["detail"], failed
    notebook = (sorted((out / "runs").iterdir())[0] / "04-drill.ipynb").read_text()
    assert "drilled newest_bad: the newest backup of" in notebook


def test_a_named_backup_of_another_database_is_never_a_go_for_the_target(target: str, tmp_path: Path) -> None:
    """`run drill --manifest` of a SQLite database's backup, the target a PostgreSQL one: the
    drill would pass on its own data and prove nothing about the target. NO-GO, naming why."""
    out = tmp_path / "artifacts"
    other = f"sqlite:///{tmp_path / 'other.db'}"
    migrate.upgrade(other)
    made = aris3nb("backup", "create", "--name", "other_db", "--database-url", other, out=out)
    assert made.returncode == 0, made.stderr
    manifest = out / "backups" / "other_db"  # its folder: named as a manifest is, refused the same

    done = aris3nb(
        "run", "drill", "--database-url", target, "--manifest", str(manifest), out=out, OPS_ENABLE_BACKUP_DRILL="true"
    )
    assert done.returncode == 1, done.stdout + done.stderr
    document = only_run(out)
    assert document["decision"] == "NO-GO"
    drill = next(p for p in document["phases"] if p["phase"] == "drill")
    assert drill["verdict"] == "FAIL"
    assert any("backup other_db was not made from the target" in reason for reason in drill["reasons"]), drill
    assert not (out / "drills" / "other_db").exists(), "nothing was drilled"


def test_naming_a_disabled_drill_is_refused_before_anything_runs(target: str, tmp_path: Path) -> None:
    out = tmp_path / "artifacts"
    for phases in (["drill"], []):  # named, or in the default sequence
        done = aris3nb("run", *phases, "--database-url", target, out=out)
        assert done.returncode == 2, done.stdout + done.stderr
        lines = done.stderr.strip().splitlines()
        assert len(lines) == 1 and "OPS_ENABLE_BACKUP_DRILL=true" in lines[0], done.stderr
        assert not (out / "runs").exists(), "nothing ran"


def test_phase_without_rerun_says_how_to_name_phases(tmp_path: Path) -> None:
    done = aris3nb("run", "--phase", "drill", out=tmp_path)
    assert done.returncode == 2
    assert "aris3nb run drill" in done.stderr and "Traceback" not in done.stderr
