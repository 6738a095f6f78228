"""What a run records: each phase's run (status, verdict, reasons, parameters, timing, the
failed cell, its result) and the run's outcome."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aris3nb.core.checks import Verdict
from aris3nb.phases import Phase, Trigger


@dataclass
class PhaseRun:
    phase: Phase
    status: str = "skipped"
    verdict: str | None = None
    reasons: list[str] = field(default_factory=list)
    parameters: dict[str, Any] = field(default_factory=dict)
    started_at: str | None = None
    duration_sec: float = 0.0
    failed_cell: dict[str, Any] | None = None
    result: dict[str, Any] | None = None

    def as_document(self, notebook: bool) -> dict[str, Any]:
        stem = Path(self.phase.notebook).stem
        return {
            "phase": self.phase.name,
            "title": self.phase.title,
            "status": self.status,
            "verdict": self.verdict,
            "reasons": self.reasons,
            "notebook": f"{stem}.ipynb" if notebook else None,
            "html": f"{stem}.html" if notebook else None,
            "started_at": self.started_at,
            "duration_sec": round(self.duration_sec, 3),
            "failed_cell": self.failed_cell,
            "parameters": self.parameters,
            "checks": (self.result or {}).get("checks", []),
            "metrics": (self.result or {}).get("metrics", {}),
        }


@dataclass
class RunResult:
    run_id: str
    run_dir: Path
    verdict: Verdict
    decision: str
    exit_code: int
    phases: list[PhaseRun]
    triggers: list[Trigger]
    evidence_path: Path
    index_path: Path | None
    index_problem: str | None = None
    #: The embedded default's older backups removed after this run (OPS_EMBEDDED_KEEP_LAST).
    forgotten: list[str] = field(default_factory=list)
    #: What the operator should know about the sealed run that its verdict does not say (an
    #: unsigned run after a signed one; the embedded default's retention that could not run).
    warnings: list[str] = field(default_factory=list)
