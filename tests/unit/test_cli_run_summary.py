"""The run's summary table in a log (not a terminal): wide enough that a reason stays on one line."""

from __future__ import annotations

import pytest

from aris3nb.cli.run import _print_summary

REASON = "git: not a git checkout: /builds/ops/aris3 is not a git checkout (the gate judges it)"


def test_a_reason_is_one_line_of_a_ci_log(capsys: pytest.CaptureFixture[str]) -> None:
    document = {
        "run_id": "20261130T070500Z-ab12cd",
        "decision": "GO",
        "verdict": "PASS_WITH_WARNINGS",
        "duration_sec": 9.5,
        "phases": [
            {
                "phase": "pre_deploy",
                "status": "completed",
                "verdict": "PASS_WITH_WARNINGS",
                "duration_sec": 9.2,
                "reasons": [REASON],
            },
        ],
    }
    _print_summary(document, "/tmp/runs/20261130T070500Z-ab12cd", None)
    printed = capsys.readouterr().out
    assert any(REASON in line for line in printed.splitlines()), printed


def test_a_phase_with_more_reasons_than_shown_says_how_many_more(capsys: pytest.CaptureFixture[str]) -> None:
    """Six FAILs, five shown: the sixth is counted, never silently dropped from the table."""
    reasons = [f"latency.e{i}: GET http://127.0.0.1:8799/e{i}: cannot connect" for i in range(6)]
    document = {
        "run_id": "20261203T071017Z-46c777",
        "decision": "NO-GO",
        "verdict": "FAIL",
        "duration_sec": 49.0,
        "phases": [
            {"phase": "pre_deploy", "status": "failed", "verdict": "FAIL", "duration_sec": 28.0, "reasons": reasons}
        ],
    }
    _print_summary(document, "/tmp/runs/20261203T071017Z-46c777", None)
    printed = capsys.readouterr().out
    assert all(any(reason in line for line in printed.splitlines()) for reason in reasons[:5]), printed
    assert "… and 1 more (evidence.json)" in printed and reasons[5] not in printed
