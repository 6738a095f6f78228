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
