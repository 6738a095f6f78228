"""What a playbook phase is, declared once: its name, its notebook, its title, the
parameters its notebook's ``parameters`` cell declares, the phase it requires, whether it
measures latency (nothing else may run meanwhile), and its rollback triggers as data.

A trigger rule names a kind (as the playbook names it) and what fires it: the phase's
verdict FAILing, or one of the named checks FAILing. A phase that did not complete (error,
timeout, dead kernel, interruption) proved nothing and fires ``phase_incomplete`` whatever
its rules say.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Trigger:
    """One reason to roll back: its kind (as the playbook names it), the phase it came from."""

    kind: str
    phase: str
    reason: str

    def __str__(self) -> str:
        return f"{self.kind} ({self.phase}): {self.reason}"


@dataclass(frozen=True)
class TriggerRule:
    """Fires ``kind`` when the phase's verdict is FAIL (``on_verdict_fail``) or when one of
    ``checks`` FAILed. ``label`` opens the reason of a verdict trigger."""

    kind: str
    checks: tuple[str, ...] = ()
    on_verdict_fail: bool = False
    label: str = ""

    def fire(self, phase: str, document: Mapping[str, Any]) -> list[Trigger]:
        failed = [c for c in document.get("checks") or [] if c.get("status") == "FAIL"]
        if self.on_verdict_fail:
            if document.get("verdict") != "FAIL":
                return []
            if self.label:
                names = ", ".join(c["name"] for c in failed) or "see its checks"
                return [Trigger(self.kind, phase, f"{self.label} ({names})")]
            return [Trigger(self.kind, phase, "; ".join(document.get("reasons") or []) or f"the {phase} phase FAILed")]
        return [
            Trigger(self.kind, phase, f"{c['name']}: {c.get('detail')}") for c in failed if c.get("name") in self.checks
        ]


@dataclass(frozen=True)
class Phase:
    """One phase of the playbook, as the runner schedules it and the notebook declares it."""

    name: str
    notebook: str  # the file under notebooks/
    title: str
    parameters: tuple[str, ...]  # exactly the names of the notebook's parameters cell
    requires: str | None = None  # the phase that must have passed for this one to run in a sequence
    quiet: bool = False  # it measures latency: nothing else of the runner's runs meanwhile
    triggers: tuple[TriggerRule, ...] = ()


#: Statuses of a phase that ran to its end (its checks judged it).
FINISHED = ("completed", "failed")


def triggers_of(phase: Phase, document: Mapping[str, Any]) -> list[Trigger]:
    """The rollback triggers one phase's result fires."""
    status = document.get("status")
    if status in ("skipped", None):
        return []
    if status not in FINISHED:
        return [Trigger("phase_incomplete", phase.name, f"the {phase.name} phase ended {status}: it proved nothing")]
    return [trigger for rule in phase.triggers for trigger in rule.fire(phase.name, document)]


def evaluate(phases: Iterable[Phase], documents: Iterable[Mapping[str, Any]]) -> list[Trigger]:
    """The triggers a run's phase results fire, in playbook order."""
    by_name = {phase.name: phase for phase in phases}
    return [
        t for document in documents if (p := by_name.get(str(document.get("phase")))) for t in triggers_of(p, document)
    ]
