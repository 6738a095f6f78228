"""The playbook's phases, declared once: one module per phase (its notebook, parameters,
requirement and rollback triggers as data, and the library steps its notebook calls), and
this registry, in playbook order, that the runner iterates.

A new phase is one module with a ``PHASE`` and one notebook, and its line below.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from aris3nb.phases import deploy, drill, post_deploy, pre_deploy, rollback
from aris3nb.phases.base import Phase, Trigger, TriggerRule, evaluate

#: Every phase, in playbook order.
PHASES: tuple[Phase, ...] = (pre_deploy.PHASE, deploy.PHASE, post_deploy.PHASE, drill.PHASE, rollback.PHASE)
PHASE_BY_NAME: dict[str, Phase] = {phase.name: phase for phase in PHASES}
#: What ``aris3nb run`` runs when no phase is named; the rollback follows when a trigger fires.
DEFAULT_PHASES: tuple[str, ...] = ("pre_deploy", "deploy", "post_deploy", "drill")
ROLLBACK = rollback.PHASE.name

__all__ = [
    "DEFAULT_PHASES",
    "PHASES",
    "PHASE_BY_NAME",
    "ROLLBACK",
    "Phase",
    "Trigger",
    "TriggerRule",
    "evaluate_triggers",
]


def evaluate_triggers(documents: Iterable[Mapping[str, Any]]) -> list[Trigger]:
    """The rollback triggers fired by a run's phase results (``phase``, ``status``,
    ``verdict``, ``reasons``, ``checks`` with ``name``/``status``/``detail``)."""
    return evaluate(PHASES, documents)
