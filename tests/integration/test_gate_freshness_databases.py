"""Freshness on real databases (SQLite and PostgreSQL): real backups and real drills, judged
by the gate as release engineers run it (``aris3nb gate --database-url ... --json``), with
stale ones made by a small budget and a short wait, never by editing a manifest; and the
embedded default's throwaway target, which has no backup before its run's deploy phase."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from aris3nb import migrate
from aris3nb.backup.create import create_backup
from aris3nb.backup.drill import restore_verify
from aris3nb.core.checks import Status
from aris3nb.core.db import engine_name
from aris3nb.core.settings import load_settings
from aris3nb.gate import GateOptions, run_gate

REPO_ROOT = Path(__file__).resolve().parents[2]
ARIS3NB = str(Path(sys.executable).with_name("aris3nb"))
FRESHNESS = ("backup.freshness", "drill.freshness")


def judged(artifacts: Path, url: str, **backup: object) -> dict[str, object]:
    """The freshness checks of a gate run on ``url``, by name (``backup``: settings of that group)."""
    report = run_gate(
        GateOptions(database_url=url, checks=FRESHNESS, workdir=REPO_ROOT),
        load_settings(artifacts={"dir": artifacts}, backup=backup),
    )
    return {result.name: result for result in report.results}


def test_stale_and_fresh_backups_and_drills_on_both_engines(tmp_path: Path, database_url: str) -> None:
    artifacts = tmp_path / "artifacts"
    migrate.upgrade(database_url)

    never = judged(artifacts, database_url)
    assert never["backup.freshness"].status is Status.FAIL, "a target never backed up must not pass"
    assert "no valid backup of " in never["backup.freshness"].detail
    assert "backups found: none" in never["backup.freshness"].detail
    assert never["drill.freshness"].status is Status.FAIL

    settings = load_settings(artifacts={"dir": artifacts}, backup={"drill_enabled": True})
    made = create_backup(database_url, "pre_deploy_fresh", settings=settings)
    restore_verify(
        made.manifest_path,
        settings=settings,
        server_url=database_url if engine_name(database_url) == "postgresql" else None,
    )
    fresh = judged(artifacts, database_url)
    assert fresh["backup.freshness"].status is Status.PASS, fresh["backup.freshness"].detail
    assert fresh["backup.freshness"].detail.startswith("newest valid backup pre_deploy_fresh is ")
    assert fresh["backup.freshness"].detail.endswith(" old, budget 24 h")
    assert fresh["drill.freshness"].status is Status.PASS, fresh["drill.freshness"].detail
    assert fresh["drill.freshness"].detail.endswith(" old, max age 7 days")
    assert 0 <= fresh["drill.freshness"].evidence["age_sec"] < 120

    time.sleep(2)  # the backup and the drill are now 2 s old: stale for a 1 s budget, a 0.864 s max age
    env = {
        **os.environ,
        "OPS_ARTIFACTS_DIR": str(artifacts),
        "OPS_RPO_BUDGET_SEC": "1",
        "OPS_GATE_LATENCY_SAMPLES": "1",
        "OPS_GATE_LATENCY_WARMUP": "0",
    }
    done = subprocess.run(
        [ARIS3NB, "gate", "--database-url", database_url, "--json"],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    assert done.returncode == 1, done.stdout[-2000:] + done.stderr[-2000:]
    summary = json.loads(done.stdout)
    assert summary["blocking_checks"] == ["backup.freshness"], summary["blocking_checks"]
    backup = next(c for c in summary["checks"] if c["name"] == "backup.freshness")
    assert backup["status"] == "FAIL" and ", budget 1 s: older than the RPO budget" in backup["detail"]
    assert backup["evidence"]["age_sec"] >= 2 and summary["inputs"]["rpo_budget_sec"] == 1

    stale_drill = judged(artifacts, database_url, drill_max_age_days=0.00001)
    assert stale_drill["drill.freshness"].status is Status.FAIL
    assert "max age 0.9 s: older than OPS_DRILL_MAX_AGE_DAYS" in stale_drill["drill.freshness"].detail
    assert stale_drill["backup.freshness"].status is Status.PASS


@pytest.mark.parametrize("in_memory", [True, False], ids=["memory-folder", "temporary-folder"])
def test_the_embedded_defaults_throwaway_target_skips_with_its_reason(tmp_path: Path, in_memory: bool) -> None:
    """`aris3nb run`'s embedded target, as its pre-deploy gate sees it: no backup yet (the deploy
    phase makes the first), so both checks SKIP, saying why: the run can still be GO. Its folder
    is in the memory folder when there is one (OPS_MEMORY_DIR), else in the temporary folder."""
    from aris3nb.targets.embedded import embedded_target

    memory = tmp_path / "memory"
    memory.mkdir()
    settings = load_settings(artifacts={"dir": tmp_path / "artifacts"})
    settings = settings.updated(artifacts={"memory_dir": memory if in_memory else None})
    with embedded_target(settings, scale=0, purpose="run") as made:
        folder = Path(made.database_url.removeprefix("sqlite:///")).parent
        assert folder.parent == (memory if in_memory else Path(tempfile.gettempdir()))
        assert made.facts["database"] == "temporary SQLite file" + (" in memory" if in_memory else "")
        report = run_gate(
            GateOptions(database_url=made.database_url, base_url=made.base_url, checks=FRESHNESS, workdir=REPO_ROOT),
            settings,
        )
    assert [r.status for r in report.results] == [Status.SKIP, Status.SKIP], [r.detail for r in report.results]
    assert all("no real target" in r.detail and "throwaway" in r.detail for r in report.results)
    assert report.exit_code == 0
