"""The release readiness gate: checks registry and verdict (``checks``), git, migrations
round trip, live HTTP probes and latency, per-area smoke, and the run that ties them
together (``runner``). ``aris3nb gate`` and ``scripts/release_readiness_gate.py`` call
``run_gate``; the integrity check and the backup drill reuse ``checks`` and ``report``.
"""

from __future__ import annotations

import importlib
from typing import Any

# Loaded on first use: the modules that only need ``checks`` or ``report`` (the drill, the
# evidence runner) do not pay for the HTTP client and numpy the live checks need.
_LAZY = {
    "GATE_CHECKS": "aris3nb.gate.runner",
    "GATE_SUMMARY_VERSION": "aris3nb.gate.runner",
    "CheckResult": "aris3nb.core.checks",
    "GateOptions": "aris3nb.gate.runner",
    "GateReport": "aris3nb.gate.runner",
    "Outcome": "aris3nb.core.checks",
    "Registry": "aris3nb.core.checks",
    "Status": "aris3nb.core.checks",
    "Verdict": "aris3nb.core.checks",
    "read_gate_summary": "aris3nb.gate.runner",
    "run_gate": "aris3nb.gate.runner",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'aris3nb.gate' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
