"""The smoke check with real pytest subprocesses: a red area names itself, and a hanging
test is killed at the timeout. (The playbook's own smoke target, green in every area, is
run by the whole gate in test_gate_run.py.)"""

from __future__ import annotations

import os
import time
from pathlib import Path

from aris3nb.core.checks import Status
from aris3nb.gate.smoke import judge_smoke, run_pytest

MIXED = '''
import time

def test_login(record_property):
    record_property("area", "auth")

def test_checkout(record_property):
    record_property("area", "pos")
    assert 2 + 2 == 5, "the till is wrong"

def test_export(record_property):
    record_property("area", "exports")
'''

HANGING = '''
import time

def test_hangs(record_property):
    record_property("area", "stock")
    time.sleep(60)
'''


def smoke(folder: Path, source: str, timeout: float = 60):  # type: ignore[no-untyped-def]
    (folder / "test_fake_smoke.py").write_text(source)
    run = run_pytest("test_fake_smoke.py", cwd=folder, timeout_sec=timeout, env=dict(os.environ))
    return run, judge_smoke(run, timeout_sec=timeout, secrets=[])


def test_a_red_area_fails_naming_it_with_pytests_counts(tmp_path: Path) -> None:
    run, outcome = smoke(tmp_path, MIXED)
    assert run.returncode == 1
    assert outcome.status is Status.FAIL
    assert outcome.detail.startswith("red area(s): pos — 1 failed, 2 passed in ")
    assert outcome.evidence["areas"]["pos"]["failing_tests"] == ["test_fake_smoke::test_checkout"]
    assert outcome.evidence["areas"]["auth"]["status"] == "green"


def test_a_hanging_smoke_is_killed_at_the_timeout(tmp_path: Path) -> None:
    started = time.monotonic()
    run, outcome = smoke(tmp_path, HANGING, timeout=3)
    assert time.monotonic() - started < 10
    assert run.returncode is None
    assert outcome.status is Status.FAIL and outcome.detail == "pytest did not finish within 3 s and was killed"
