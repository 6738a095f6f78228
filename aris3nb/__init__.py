"""aris3nb — the ARIS3 Recovery Playbook as executable, auditable evidence notebooks.

The public API is the names in ``__all__``; notebooks import only these. Heavy parts
(backups, gate, integrity) load on first use, so ``import aris3nb`` and the CLI start fast.
"""

from __future__ import annotations

import importlib
from typing import Any

from aris3nb.config import Settings, load_settings
from aris3nb.errors import Aris3nbError

__version__ = "0.1.0"

_LAZY = {
    "GateOptions": "aris3nb.gate",
    "IntegrityOptions": "aris3nb.integrity",
    "create_backup": "aris3nb.backup.create",
    "restore_backup": "aris3nb.backup.restore",
    "restore_verify": "aris3nb.backup.drill",
    "run_gate": "aris3nb.gate",
    "run_integrity_check": "aris3nb.integrity",
    "validate_backup": "aris3nb.backup.manifest",
}

__all__ = [
    "Aris3nbError",
    "GateOptions",
    "IntegrityOptions",
    "Settings",
    "__version__",
    "create_backup",
    "load_settings",
    "restore_backup",
    "restore_verify",
    "run_gate",
    "run_integrity_check",
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
