"""The checks registry, the verdict rules and the evidence files every judge shares."""

from __future__ import annotations

import json
import re
import stat
from pathlib import Path

import pytest

from aris3nb.cli.present import results_table
from aris3nb.core.checks import (
    Registry,
    Status,
    Verdict,
    blocking_checks,
    exit_code_of,
    failed,
    passed,
    run_check,
    skipped,
    verdict_of,
    warned,
)
from aris3nb.core.errors import DatabaseUnavailable
from aris3nb.core.files import write_json_evidence
from aris3nb.core.ids import new_run_id
from aris3nb.core.report import scrub


def results(*statuses: Status) -> list:
    registry: Registry[None] = Registry()
    makers = {Status.PASS: passed, Status.WARN: warned, Status.FAIL: failed, Status.SKIP: skipped}
    for number, status in enumerate(statuses):
        registry.add(f"c{number}", lambda _ctx, s=status: makers[s](f"{s} detail"))
    return registry.run(None)


def test_registry_runs_checks_in_order_with_name_duration_and_evidence() -> None:
    registry: Registry[dict] = Registry()

    @registry.register("first")
    def first(ctx: dict) -> object:
        """Why the first property matters.

        More text."""
        return passed("fine", value=ctx["value"])

    registry.add("second", lambda ctx: warned("meh"))
    seen = []
    out = registry.run({"value": 7}, on_result=seen.append)
    assert [r.name for r in out] == ["first", "second"] == [r.name for r in seen]
    assert out[0].status is Status.PASS and out[0].evidence == {"value": 7} and out[0].duration_sec >= 0
    assert next(iter(registry)).why == "Why the first property matters."
    with pytest.raises(ValueError, match="already registered"):
        registry.add("first", first)


def test_a_crashing_check_is_a_fail_with_its_error_never_a_warning() -> None:
    def boom(_ctx: object) -> object:
        raise ZeroDivisionError("division by zero")

    result = run_check("boom", boom, None)
    assert result.status is Status.FAIL
    assert result.detail == "check crashed: ZeroDivisionError: division by zero"
    assert result.evidence["error"] == "ZeroDivisionError" and result.evidence["traceback"]

    def expected(_ctx: object) -> object:
        raise DatabaseUnavailable("cannot connect: database postgresql://u:***@h/db is unavailable")

    result = run_check("db", expected, None)
    assert result.status is Status.FAIL and result.detail.startswith("cannot connect")
    assert "traceback" not in result.evidence

    result = run_check("wrong type", lambda _ctx: "PASS", None)
    assert result.status is Status.FAIL and "returned str" in result.detail


@pytest.mark.parametrize(
    ("statuses", "strict", "verdict", "code"),
    [
        ((Status.PASS, Status.SKIP), False, Verdict.PASS, 0),
        ((Status.PASS, Status.WARN), False, Verdict.PASS_WITH_WARNINGS, 0),
        ((Status.PASS, Status.WARN), True, Verdict.FAIL, 1),
        ((Status.WARN, Status.FAIL), False, Verdict.FAIL, 1),
        ((Status.SKIP,), True, Verdict.PASS, 0),
        ((), False, Verdict.PASS, 0),
    ],
)
def test_verdict_and_exit_code(statuses: tuple, strict: bool, verdict: Verdict, code: int) -> None:
    found = results(*statuses)
    assert verdict_of(found, strict=strict) is verdict
    assert exit_code_of(verdict) == code


def test_blocking_checks_are_the_failures_and_under_strict_the_warnings() -> None:
    found = results(Status.PASS, Status.WARN, Status.FAIL, Status.SKIP)
    assert [r.name for r in blocking_checks(found, strict=False)] == ["c2"]
    assert [r.name for r in blocking_checks(found, strict=True)] == ["c1", "c2"]


def test_run_ids_sort_by_time_and_differ() -> None:
    first, second = new_run_id(), new_run_id()
    assert re.fullmatch(r"\d{8}T\d{6}Z-[0-9a-f]{6}", first)
    assert first != second


def test_scrub_masks_url_passwords_and_known_secrets_everywhere() -> None:
    document = {
        "url": "postgresql://u:hunter2@h/db",
        "nested": [{"token": "abc.def.ghi", "n": 3}],
        "text with hunter2": None,
    }
    clean = scrub(document, ["abc.def.ghi", "hunter2", None])
    dumped = json.dumps(clean)
    assert "hunter2" not in dumped and "abc.def.ghi" not in dumped
    assert clean["url"] == "postgresql://u:***@h/db" and clean["nested"][0]["n"] == 3


def test_evidence_files_are_owner_only_and_complete(tmp_path: Path) -> None:
    folder = tmp_path / "artifacts" / "gate"
    path = write_json_evidence(folder, "x.json", {"a": 1})
    assert json.loads(path.read_text()) == {"a": 1}
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert [p.name for p in folder.iterdir()] == ["x.json"], "no temporary file left behind"


def test_the_table_has_status_check_duration_and_detail() -> None:
    table = results_table(results(Status.PASS, Status.FAIL), title="t")
    assert [c.header for c in table.columns] == ["status", "check", "duration", "detail"]
    assert table.row_count == 2
