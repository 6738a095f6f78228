"""aris3nb — the ARIS3 Recovery Playbook as executable, auditable evidence notebooks.

The public API is the names in ``__all__``; notebooks import only these. Heavy parts
(backups, gate, integrity) load on first use, so ``import aris3nb`` and the CLI start fast.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from aris3nb.core.errors import Aris3nbError

if TYPE_CHECKING:  # loaded on first use, as the rest: a smoke run imports only the constants it reads (~0.2 s)
    from aris3nb.core.settings import Settings, load_settings

__version__ = "0.1.0"

_LAZY = {
    "DeployOptions": "aris3nb.phases.deploy",
    "GateOptions": "aris3nb.gate",
    "IntegrityOptions": "aris3nb.integrity",
    "POST_DEPLOY_CHECKS": "aris3nb.phases.post_deploy",
    "RollbackOptions": "aris3nb.phases.rollback",
    "RunOptions": "aris3nb.evidence.runner",
    "deploy": "aris3nb.phases.deploy",
    "drill": "aris3nb.phases.drill",
    "post_deploy_integrity": "aris3nb.phases.post_deploy",
    "run_playbook": "aris3nb.evidence.runner",
    "run_rollback": "aris3nb.phases.rollback",
    "smoke_target": "aris3nb.phases.inputs",
    "round_trip_server": "aris3nb.phases.inputs",
    "load_target_profile": "aris3nb.targets.profile",
    "post_deploy_checks": "aris3nb.phases.post_deploy",
    "start_phase": "aris3nb.evidence.display",
    "create_backup": "aris3nb.backup.create",
    "restore_backup": "aris3nb.backup.restore",
    "restore_verify": "aris3nb.backup.drill",
    "run_gate": "aris3nb.gate",
    "run_integrity_check": "aris3nb.integrity",
    "validate_backup": "aris3nb.backup.manifest",
    "Settings": "aris3nb.core.settings",
    "load_settings": "aris3nb.core.settings",
}

__all__ = [
    "POST_DEPLOY_CHECKS",
    "Aris3nbError",
    "DeployOptions",
    "GateOptions",
    "IntegrityOptions",
    "RollbackOptions",
    "RunOptions",
    "Settings",
    "__version__",
    "create_backup",
    "deploy",
    "drill",
    "load_settings",
    "load_target_profile",
    "post_deploy_checks",
    "post_deploy_integrity",
    "restore_backup",
    "restore_verify",
    "round_trip_server",
    "run_gate",
    "run_integrity_check",
    "run_playbook",
    "run_rollback",
    "smoke_target",
    "start_phase",
    "validate_backup",
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'aris3nb' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
