"""The smoke check with real pytest subprocesses: a red area names itself, and a hanging
test is killed at the timeout; a target profile's area rules (marker, glob, substring) map a
suite's tests. (The playbook's own smoke target, green in every area, is run by the whole
gate in test_gate_run.py; a profile's suite in its target's own venv in test_gate_profile.py.)"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
from defusedxml import ElementTree

from aris3nb.core.checks import Status
from aris3nb.gate.smoke import (
    OTHER_AREA,
    SmokeRun,
    SmokeSetupError,
    area_classifier,
    judge_smoke,
    junit_node_id,
    marked_node_ids,
    run_pytest,
)

MIXED = """
import time

def test_login(record_property):
    record_property("area", "auth")

def test_checkout(record_property):
    record_property("area", "pos")
    assert 2 + 2 == 5, "the till is wrong"

def test_export(record_property):
    record_property("area", "exports")
"""

HANGING = """
import time

def test_hangs(record_property):
    record_property("area", "stock")
    time.sleep(60)
"""


def smoke(folder: Path, source: str, timeout: float = 60):  # type: ignore[no-untyped-def]
    (folder / "test_fake_smoke.py").write_text(source)
    run = run_pytest("test_fake_smoke.py", cwd=folder, timeout_sec=timeout, env=dict(os.environ))
    return run, judge_smoke(run, timeout_sec=timeout, secrets=[])


def test_a_red_area_fails_naming_it_with_pytests_counts(tmp_path: Path) -> None:
    run, outcome = smoke(tmp_path, MIXED)
    assert run.returncode == 1
    assert outcome.status is Status.FAIL
    assert outcome.detail.startswith("red area: pos — 1 failed, 2 passed in ")
    assert outcome.evidence["areas"]["pos"]["failing_tests"] == ["test_fake_smoke::test_checkout"]
    assert outcome.evidence["areas"]["auth"]["status"] == "green"


def test_a_hanging_smoke_is_killed_at_the_timeout(tmp_path: Path) -> None:
    started = time.monotonic()
    run, outcome = smoke(tmp_path, HANGING, timeout=3)
    assert time.monotonic() - started < 10
    assert run.returncode is None
    assert outcome.status is Status.FAIL and outcome.detail == "pytest did not finish within 3 s and was killed"


MARKED = """
import pytest


@pytest.mark.login
def test_token(): pass


class TestShelf:
    def test_listing(self): pass


@pytest.mark.parametrize("n", [1, 2])
def test_checkout_total(n): assert n < 2, "the till is wrong"


def test_unmapped(): pass
"""


def test_a_profiles_rules_map_tests_by_marker_glob_and_substring_and_a_red_area_names_itself(tmp_path: Path) -> None:
    """The profile path of the smoke check, with an interpreter given (here aris3nb's own, so
    no target venv is needed): ids carrying a marker listed by ``--collect-only -m``, the
    JUnit test cases turned back into node ids, each test counted in every area whose rule it matches."""
    (tmp_path / "pytest.ini").write_text(
        "[pytest]\naddopts = --strict-markers\nmarkers =\n    login: the login\n    unused: no test has it\n"
    )
    (tmp_path / "smoke").mkdir()
    (tmp_path / "smoke" / "test_marked.py").write_text(MARKED)
    env = dict(os.environ)
    args = [arg for plugin in ("schemathesis", "hypothesispytest", "nbval", "anyio") for arg in ("-p", f"no:{plugin}")]
    marked = marked_node_ids(
        "login", "smoke", python=sys.executable, cwd=tmp_path, env=env, timeout_sec=60, pytest_args=args
    )
    assert marked == {"smoke/test_marked.py::test_token"}
    assert (
        marked_node_ids(
            "unused", "smoke", python=sys.executable, cwd=tmp_path, env=env, timeout_sec=60, pytest_args=args
        )
        == set()
    )
    with pytest.raises(
        SmokeSetupError,
        match=r"listing the tests marked 'logn' \(pytest --collect-only -m logn\) "
        r"exited 4: ERROR: Unknown marker",
    ):
        marked_node_ids("logn", "smoke", python=sys.executable, cwd=tmp_path, env=env, timeout_sec=60, pytest_args=args)
    rules = [
        SimpleNamespace(area="auth", match=[], marker="login"),
        SimpleNamespace(area="stock", match=["smoke/*::TestShelf::*"], marker=None),
        SimpleNamespace(area="pos", match=["test_checkout_total["], marker=None),
    ]
    run = run_pytest("smoke", cwd=tmp_path, timeout_sec=60, env=env, python=sys.executable, pytest_args=args)
    outcome = judge_smoke(run, timeout_sec=60, secrets=[], classify=area_classifier(rules, {"login": marked}))
    assert outcome.status is Status.FAIL and outcome.detail.startswith("red area: pos — 1 failed, 4 passed in ")
    areas = outcome.evidence["areas"]
    assert areas["pos"]["failing_tests"] == ["smoke/test_marked.py::test_checkout_total[2]"]
    assert {name: counts["passed"] for name, counts in areas.items()} == {
        "auth": 1,
        "stock": 1,
        "pos": 1,
        OTHER_AREA: 1,
    }


def test_a_marker_that_is_no_marker_name_is_refused_before_pytest_runs(tmp_path: Path) -> None:
    with pytest.raises(SmokeSetupError, match="'not a marker' is not a pytest marker name"):
        marked_node_ids("not a marker", ".", python=sys.executable, cwd=tmp_path, env={}, timeout_sec=5)


def test_junit_test_cases_become_node_ids() -> None:
    def node(**attributes: str) -> str:
        return junit_node_id(
            ElementTree.fromstring("<testcase " + " ".join(f'{k}="{v}"' for k, v in attributes.items()) + " />")
        )

    assert (
        node(classname="smoke.test_s.TestA", name="test_b[x.y]", file="smoke/test_s.py")
        == "smoke/test_s.py::TestA::test_b[x.y]"
    )
    assert node(classname="test_s", name="test_c", file="test_s.py") == "test_s.py::test_c"
    assert node(classname="a.B", name="test_d") == "a.B::test_d", "no file (xunit2): classname::name"


def test_a_test_counts_in_every_area_whose_rule_it_matches() -> None:
    """A checkout test that also reads the report and exports it covers three areas; a test no
    rule matches is (other); the totals still count each test once."""
    rules = [
        SimpleNamespace(area=area, match=[pattern], marker=None)
        for area, pattern in (("pos", "*pos_*"), ("reports", "*reports*"), ("exports", "*exports*"))
    ]
    classify = area_classifier(rules, {})
    assert classify("t.py::test_pos_checkout_and_reports_exports") == ("pos", "reports", "exports")
    assert classify("t.py::test_login") == (OTHER_AREA,)
    xml = (
        '<testsuite><testcase classname="t" name="test_pos_checkout_and_reports_exports" file="t.py"/>'
        '<testcase classname="t" name="test_login" file="t.py"/></testsuite>'
    )
    run = SmokeRun(0, "2 passed in 0.1s", xml, 0.1)
    outcome = judge_smoke(run, timeout_sec=60, secrets=[], classify=classify)
    assert outcome.evidence["totals"]["passed"] == 2
    assert {n: c["passed"] for n, c in outcome.evidence["areas"].items()} == {
        "pos": 1,
        "reports": 1,
        "exports": 1,
        OTHER_AREA: 1,
    }
    assert outcome.status is Status.WARN and "auth, stock, transfers" in outcome.detail


TIMED_SUITE = """
import os, time

def test_records_when_it_ran(record_property):
    record_property("area", "auth")
    with open(os.environ["SUITE_LOG"], "w") as log:
        log.write(str(time.time()))
    assert os.environ.get("SUITE_RED") != "1", "the till is wrong"
"""


def _gate_with_smoke(tmp_path: Path, checks: tuple[str, ...], *, red: bool = False) -> tuple[dict, float, float]:  # type: ignore[type-arg]
    """A gate of ``checks`` whose single-head check takes 3 s, with a one-test suite that notes
    when it ran: the results by name, when the gate started and when the test ran."""
    from aris3nb.core.checks import passed
    from aris3nb.core.settings import load_settings
    from aris3nb.gate import GateOptions, run_gate
    from aris3nb.gate import runner as gate_runner

    (tmp_path / "suite").mkdir(exist_ok=True)
    (tmp_path / "suite" / "test_timed.py").write_text(TIMED_SUITE)
    log = tmp_path / "ran.log"
    settings = load_settings(artifacts={"dir": tmp_path / "artifacts"})
    options = GateOptions(
        pytest_target="suite/test_timed.py", base_url="http://127.0.0.1:9", workdir=tmp_path, checks=checks
    )

    def slow_single_head(*args: object, **kwargs: object):  # type: ignore[no-untyped-def]
        time.sleep(3)
        return passed("one head")

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SUITE_LOG", str(log))
        patch.setenv("SUITE_RED", "1" if red else "0")
        patch.setattr(gate_runner.migrations, "judge_single_head", slow_single_head)
        gate_started = time.time()
        report = run_gate(options, settings)
    return {r.name: r for r in report.results}, gate_started, float(log.read_text())


def test_the_smoke_suite_runs_beside_the_checks_before_it_and_is_judged_as_ever(tmp_path: Path) -> None:
    """The smoke run starts before the checks that run beside it: its test ran while the (3 s)
    single-head check was still running; the smoke check waits for it in its turn, keeps its
    report, and judges it as ever (a red test is a FAIL naming its area)."""
    checks = ("git", "migrations.single_head", "smoke")
    results, gate_started, test_ran = _gate_with_smoke(tmp_path, checks)
    smoke = results["smoke"]
    assert smoke.status is Status.WARN and smoke.detail.startswith("1 passed"), smoke.detail  # 5 areas not covered
    assert test_ran < gate_started + 3, "the suite ran while the single-head check did"
    assert smoke.evidence["ran_beside"] == ["git", "migrations.single_head"]
    assert (tmp_path / "artifacts" / "gate" / smoke.evidence["junit_file"]).is_file()

    red, _, _ = _gate_with_smoke(tmp_path, checks, red=True)
    assert red["smoke"].status is Status.FAIL and "red area: auth" in red["smoke"].detail


def test_the_smoke_suite_starts_in_its_turn_when_nothing_runs_before_it(tmp_path: Path) -> None:
    results, gate_started, test_ran = _gate_with_smoke(tmp_path, ("smoke",))
    assert results["smoke"].detail.startswith("1 passed") and "ran_beside" not in results["smoke"].evidence
    results, gate_started, test_ran = _gate_with_smoke(tmp_path, ("migrations.single_head", "smoke", "http.health"))
    assert "ran_beside" in results["smoke"].evidence and results["http.health"].status is Status.FAIL


def test_the_playbooks_own_suite_runs_under_its_own_configuration_in_a_checkout(tmp_path: Path) -> None:
    """In a checkout the playbook's suite is not run under the repository's pytest configuration:
    its test ids are its own folder's (as installed), and the development suite's conftest (which
    imports SQLAlchemy) is not loaded. A service that refuses every connection: the suite's
    session fixture errors, and its JUnit report still names each test."""
    from aris3nb.resources import PACKAGED, SMOKE_SUITE

    assert not PACKAGED, "this test reads the checkout's suite"
    probe = tmp_path / "probe.py"  # imported as the suite starts: says whether SQLAlchemy was loaded
    probe.write_text("import atexit, sys\natexit.register(lambda: print('SQLALCHEMY', 'sqlalchemy' in sys.modules))\n")
    env = {
        **os.environ,
        "ARIS3_SMOKE_BASE_URL": "http://127.0.0.1:9",
        "ARIS3_SMOKE_PASSWORD": "not-used",
        "PYTHONPATH": os.pathsep.join(filter(None, [str(tmp_path), os.environ.get("PYTHONPATH")])),
        "PYTEST_ADDOPTS": "-p probe",
    }
    run = run_pytest(f"{SMOKE_SUITE}::TestAuth", cwd=tmp_path, timeout_sec=60, env=env)
    assert run.junit_xml is not None, run.output
    classnames = {case.get("classname") for case in ElementTree.fromstring(run.junit_xml).iter("testcase")}
    assert classnames == {"test_post_merge_readiness.TestAuth"}, classnames
    assert "SQLALCHEMY False" in run.output, run.output[-2000:]
