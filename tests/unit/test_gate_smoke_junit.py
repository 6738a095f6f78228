"""The smoke check's judgement from pytest's exit code, its count line and the JUnit XML
report's per-test ``area`` properties."""

from __future__ import annotations

from pathlib import Path

import pytest

from aris3nb.core.checks import Status
from aris3nb.core.errors import UsageError
from aris3nb.gate.smoke import AREAS, SmokeRun, areas_from_junit, check_pytest_target, count_line, judge_smoke


def case(area: str | None, name: str, outcome: str = "passed") -> str:
    props = f'<properties><property name="area" value="{area}" /></properties>' if area else ""
    inner = {
        "passed": "",
        "failed": '<failure message="assert 1 == 2">trace</failure>',
        "error": '<error message="fixture broke">trace</error>',
        "skipped": '<skipped message="no" />',
    }[outcome]
    return f'<testcase classname="tests.smoke.T" name="{name}" time="0.1">{props}{inner}</testcase>'


def junit(*cases: str) -> str:
    return (
        f'<?xml version="1.0" encoding="utf-8"?><testsuites><testsuite name="pytest" tests="{len(cases)}">'
        f"{''.join(cases)}</testsuite></testsuites>"
    )


def all_green() -> str:
    return junit(*(case(area, f"test_{area}") for area in AREAS))


def run(returncode: int | None, xml: str | None, output: str = "") -> SmokeRun:
    return SmokeRun(returncode, output, xml, 1.0)


def test_areas_are_counted_from_the_junit_properties() -> None:
    areas = areas_from_junit(
        junit(
            case("auth", "a"),
            case("auth", "b", "failed"),
            case("pos", "c", "error"),
            case("pos", "d", "skipped"),
            case(None, "e"),
        )
    )
    assert (areas["auth"].passed, areas["auth"].failed) == (1, 1)
    assert (areas["pos"].errors, areas["pos"].skipped, areas["pos"].red) == (1, 1, True)
    assert areas["(no area)"].passed == 1
    assert areas["auth"].failing_tests == ["tests.smoke.T::b"]


@pytest.mark.parametrize(
    ("output", "line"),
    [
        ("....\n18 passed in 1.03s\n", "18 passed in 1.03s"),
        ("F.\nFAILED x\n1 failed, 17 passed, 2 warnings in 1.20s\n", "1 failed, 17 passed, 2 warnings in 1.20s"),
        ("===== 3 passed, 1 skipped in 0.50s =====\n", "3 passed, 1 skipped in 0.50s"),
        ("no tests ran in 0.01s\n", None),
    ],
)
def test_count_line(output: str, line: str | None) -> None:
    assert count_line(output) == line


def test_all_areas_green_passes_with_pytests_count_line() -> None:
    outcome = judge_smoke(run(0, all_green(), "......\n6 passed in 0.90s\n"), timeout_sec=60, secrets=[])
    assert outcome.status is Status.PASS and outcome.detail == "6 passed in 0.90s"
    assert set(outcome.evidence["areas"]) == set(AREAS)


def test_one_red_area_fails_naming_it() -> None:
    xml = junit(*(case(a, f"test_{a}", "failed" if a == "pos" else "passed") for a in AREAS))
    outcome = judge_smoke(run(1, xml, "1 failed, 5 passed in 1.00s"), timeout_sec=60, secrets=[])
    assert outcome.status is Status.FAIL
    assert outcome.detail == "red area: pos — 1 failed, 5 passed in 1.00s"
    assert outcome.evidence["areas"]["pos"]["failing_tests"] == ["tests.smoke.T::test_pos"]


def test_a_missing_area_warns_and_no_passing_test_fails() -> None:
    partial = junit(case("auth", "a"))
    assert judge_smoke(run(0, partial), timeout_sec=60, secrets=[]).status is Status.WARN
    skipped_only = junit(case("auth", "a", "skipped"))
    assert judge_smoke(run(0, skipped_only), timeout_sec=60, secrets=[]).status is Status.FAIL


def test_timeout_missing_report_and_bad_exit_codes_fail() -> None:
    assert "killed" in judge_smoke(run(None, None), timeout_sec=5, secrets=[]).detail
    outcome = judge_smoke(run(4, None, "ERROR: file or directory not found: x"), timeout_sec=5, secrets=[])
    assert outcome.status is Status.FAIL and "usage error" in outcome.detail
    assert judge_smoke(run(3, all_green()), timeout_sec=5, secrets=[]).status is Status.FAIL
    assert judge_smoke(run(0, "<not xml"), timeout_sec=5, secrets=[]).status is Status.FAIL


def test_known_secrets_are_masked_in_the_kept_output() -> None:
    outcome = judge_smoke(
        run(1, None, "AssertionError: password hunter2-wrong refused"), timeout_sec=5, secrets=["hunter2"]
    )
    assert "hunter2" not in outcome.evidence["output_tail"]


def test_a_target_that_does_not_exist_is_a_usage_error(tmp_path: Path) -> None:
    (tmp_path / "test_x.py").write_text("")
    assert check_pytest_target("test_x.py::TestA", tmp_path) == "test_x.py::TestA"
    with pytest.raises(UsageError, match="'nope.py' does not exist") as caught:
        check_pytest_target("nope.py", tmp_path)
    assert caught.value.exit_code == 2


def test_the_playbooks_own_suite_starts_without_the_installed_plugins_and_another_with_them(tmp_path) -> None:
    """The shipped suite needs no plugin: it starts without the entry points (each would be
    imported and assertion-rewritten); a suite of the operator's keeps them."""
    from aris3nb.gate.smoke import SKIPPED_PLUGINS, _plugins, is_own_suite
    from aris3nb.resources import DATA_ROOT, SMOKE_SUITE

    own, env = _plugins(is_own_suite(str(SMOKE_SUITE), tmp_path), {"X": "1"})
    assert env == {"X": "1", "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"} and own == []
    assert is_own_suite("tests/smoke/test_post_merge_readiness.py::TestAuth", DATA_ROOT)
    (tmp_path / "test_mine.py").write_text("def test_x(): pass\n")
    other, env = _plugins(is_own_suite("test_mine.py", tmp_path), {"X": "1"})
    assert env == {"X": "1"} and other == list(SKIPPED_PLUGINS)
    assert not is_own_suite("test_mine.py", tmp_path)
