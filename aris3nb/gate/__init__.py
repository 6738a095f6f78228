"""The release readiness gate: checks registry and verdict (``checks``), git, migrations
round trip, live HTTP probes and latency, per-area smoke, and the run that ties them
together (``runner``). ``aris3nb gate`` and ``scripts/release_readiness_gate.py`` call
``run_gate``; the integrity check and the backup drill reuse ``checks`` and ``report``.
"""

from aris3nb.gate.checks import CheckResult, Outcome, Registry, Status, Verdict
from aris3nb.gate.runner import (
    GATE_CHECKS,
    GATE_SUMMARY_VERSION,
    GateOptions,
    GateReport,
    read_gate_summary,
    run_gate,
)
from aris3nb.gate.settings import GateSettings, load_gate_settings

__all__ = [
    "GATE_CHECKS",
    "GATE_SUMMARY_VERSION",
    "CheckResult",
    "GateOptions",
    "GateReport",
    "GateSettings",
    "Outcome",
    "Registry",
    "Status",
    "Verdict",
    "load_gate_settings",
    "read_gate_summary",
    "run_gate",
]
