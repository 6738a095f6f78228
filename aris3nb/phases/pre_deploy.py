"""Phase 1, pre-deploy: the release readiness gate (``aris3nb.gate.run_gate``) on the target.
A FAIL here means nothing is deployed: it triggers NO-GO and the freeze, never a restore."""

from __future__ import annotations

from aris3nb.phases.base import Phase, TriggerRule

PHASE = Phase(
    name="pre_deploy",
    notebook="01-pre_deploy.ipynb",
    title="Pre-deploy: release readiness gate",
    parameters=("base_url", "database_url", "pytest_target", "strict", "budgets_ms", "profile"),
    quiet=True,
    triggers=(
        TriggerRule("gate_fail", on_verdict_fail=True, label="release readiness gate FAIL"),
        TriggerRule("not_ready", checks=("http.ready", "target.schema")),
    ),
)
