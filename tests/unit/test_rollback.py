"""Rollback triggers, as the playbook lists them, from a run's phase results."""

from __future__ import annotations

from aris3nb.phases import evaluate_triggers


def phase(name: str, verdict: str = "PASS", status: str = "completed", **failing: str) -> dict:
    checks = [
        {"name": check.replace("__", "."), "status": "FAIL", "detail": detail} for check, detail in failing.items()
    ]
    return {"phase": name, "status": status, "verdict": verdict, "checks": checks, "reasons": list(failing.values())}


def kinds(*phases: dict) -> list[tuple[str, str]]:
    return [(t.kind, t.phase) for t in evaluate_triggers(phases)]


def test_a_green_run_triggers_nothing() -> None:
    assert kinds(phase("pre_deploy"), phase("deploy"), phase("post_deploy"), phase("drill")) == []


def test_each_trigger_of_the_playbook() -> None:
    assert kinds(phase("pre_deploy", "FAIL", "failed", latency__health="p95 over")) == [("gate_fail", "pre_deploy")]
    assert kinds(phase("deploy", "FAIL", "failed", http__ready="503")) == [("not_ready", "deploy")]
    assert kinds(phase("post_deploy", "FAIL", "failed", target__schema="database unavailable")) == [
        ("not_ready", "post_deploy")
    ]
    assert kinds(phase("post_deploy", "FAIL", "failed", smoke="red area: pos")) == [("smoke_red", "post_deploy")]
    assert kinds(phase("drill", "FAIL", "failed", **{"manifest valid": "1 problem"})) == [("drill_fail", "drill")]
    assert kinds(phase("deploy", "FAIL", "failed", backup__manifest="sha256 differs")) == [
        ("manifest_inconsistent", "deploy")
    ]


def test_a_phase_that_did_not_complete_triggers_and_a_skipped_one_does_not() -> None:
    assert kinds(phase("post_deploy", "FAIL", "timeout")) == [("phase_incomplete", "post_deploy")]
    assert kinds(phase("post_deploy", "FAIL", "dead_kernel")) == [("phase_incomplete", "post_deploy")]
    assert kinds(phase("drill", None, "skipped")) == []


def test_a_failure_outside_the_triggers_is_no_go_but_no_rollback() -> None:
    assert kinds(phase("post_deploy", "FAIL", "failed", **{"stock.totals": "off by 2"})) == []


def test_not_restoring_is_a_skip_only_when_nothing_was_deployed(tmp_path) -> None:
    """Nothing deployed: nothing to undo (SKIP, as the revert: no work done is never a PASS).
    Deployed over a backup that is not to be trusted: right not to restore it, but the data is
    not rolled back (WARN)."""
    from aris3nb.core.checks import Status
    from aris3nb.core.settings import load_settings
    from aris3nb.phases.rollback import RollbackOptions, _restore, _RollbackContext

    settings = load_settings(artifacts={"dir": tmp_path})
    refused = "this run's backup b is not to be trusted (drill_fail)"
    deployed = _RollbackContext(RollbackOptions("run_1", ("drill_fail",), no_restore_reason=refused), settings)
    assert _restore(deployed).status is Status.WARN
    nothing = RollbackOptions("run_1", ("gate_fail",), no_restore_reason="nothing deployed", no_revert_reason="same")
    assert _restore(_RollbackContext(nothing, settings)).status is Status.SKIP
