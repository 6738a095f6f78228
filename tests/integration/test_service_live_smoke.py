"""The smoke suite's live mode, proven: the playbook's smoke target runs as a subprocess,
exactly as release engineers run it, over real HTTP against a running reference service
(SQLite and PostgreSQL) — twice against the same database, since it must be repeatable.
"""

from __future__ import annotations

import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from collections import Counter
from pathlib import Path

import pytest

from aris3nb import migrate
from aris3nb.core.settings import load_settings
from aris3nb.reference.seed import seed_database
from aris3nb.reference.server import running_server

REPO_ROOT = Path(__file__).resolve().parents[2]
SMOKE_TARGET = "tests/smoke/test_post_merge_readiness.py"
SMOKE_PASSWORD = "live-smoke-pass"
AREAS = {"auth", "stock", "transfers", "pos", "reports", "exports"}


def _run_smoke(base_url: str, junit: Path) -> subprocess.CompletedProcess[str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("ARIS3_SMOKE_")}
    env.update({"ARIS3_SMOKE_BASE_URL": base_url, "ARIS3_SMOKE_PASSWORD": SMOKE_PASSWORD})
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", SMOKE_TARGET, "-p", "no:cacheprovider", f"--junitxml={junit}"],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def _areas(junit: Path) -> Counter[str]:
    cases = ET.parse(junit).getroot().iter("testcase")
    return Counter(prop.get("value") for case in cases for prop in case.iter("property") if prop.get("name") == "area")


@pytest.mark.slow
def test_the_smoke_target_passes_live_and_repeatably(database_url, tmp_path):
    url = database_url
    migrate.upgrade(url)
    seed_database(url, scale=300, exports_dir=tmp_path / "exports", smoke_password=SMOKE_PASSWORD)
    with running_server(url, load_settings(target={"exports_dir": tmp_path / "exports"})) as base_url:
        for run in (1, 2):
            junit = tmp_path / f"smoke-{run}.xml"
            result = _run_smoke(base_url, junit)
            assert result.returncode == 0, f"run {run}:\n{result.stdout[-4000:]}\n{result.stderr[-2000:]}"
            assert "skipped" not in result.stdout, result.stdout[-2000:]
            areas = _areas(junit)
            assert set(areas) == AREAS, areas


def test_the_smoke_suite_refuses_an_account_outside_the_smoke_tenant(tmp_path, sqlite_url):
    migrate.upgrade(sqlite_url)
    seed_database(sqlite_url, scale=100, exports_dir=tmp_path / "exports", seed_password="demo-pass-123")
    env = {key: value for key, value in os.environ.items() if not key.startswith("ARIS3_SMOKE_")}
    with running_server(sqlite_url, load_settings(target={"exports_dir": tmp_path / "exports"})) as base_url:
        env.update(
            {
                "ARIS3_SMOKE_BASE_URL": base_url,
                "ARIS3_SMOKE_USERNAME": "northwind.admin",
                "ARIS3_SMOKE_PASSWORD": "demo-pass-123",
            }
        )
        result = subprocess.run(
            [sys.executable, "-m", "pytest", "-q", SMOKE_TARGET, "-p", "no:cacheprovider"],
            cwd=REPO_ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
    assert result.returncode != 0
    assert "only writes to the smoke tenant" in result.stdout + result.stderr
