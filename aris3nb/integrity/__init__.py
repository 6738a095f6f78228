"""The post-go-live integrity check: business invariants verified read-only on a live
database, each naming the offending rows (at most ``SAMPLE_LIMIT``) when it fails.

    invariants   what an invariant is (name, requires, function), the live schema, NOT APPLICABLE
    reference    the built-in ``reference`` set: the bundled reference schema's rules
    declarative  SQL and file checks given as data (a profile's [[integrity.sql]] / [[integrity.files]])
    plugins      invariants from entry points of the group ``aris3nb.invariants``
    files        export files against their records
    runner       options, the read-only snapshot, the run and its JSON report
"""

from __future__ import annotations

import importlib
import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from aris3nb.core.checks import Registry
    from aris3nb.integrity.declarative import FileCheck, IntegritySelection, SqlCheck, checks_from_toml
    from aris3nb.integrity.invariants import (
        BUILTIN_SETS,
        IntegrityContext,
        Invariant,
        InvariantSet,
        builtin_set,
        is_not_applicable,
        not_applicable,
    )
    from aris3nb.integrity.plugins import ENTRY_POINT_GROUP
    from aris3nb.integrity.runner import (
        INTEGRITY_FOLDER,
        INTEGRITY_REPORT_FORMAT,
        INTEGRITY_REPORT_VERSION,
        IntegrityOptions,
        IntegrityReport,
        read_integrity_report,
        read_only_snapshot,
        run_integrity_check,
    )

    #: The reference set as a check registry (its names, in the order they run).
    INTEGRITY_CHECKS: Registry[IntegrityContext]

# Loaded on first use: a target profile needs only ``declarative``'s models, so reading one
# (every backup command does) does not pay for the runner, the schema comparison and the
# contract's models (~0.5 s of imports).
_LAZY = {
    "BUILTIN_SETS": "aris3nb.integrity.invariants",
    "ENTRY_POINT_GROUP": "aris3nb.integrity.plugins",
    "INTEGRITY_FOLDER": "aris3nb.integrity.runner",
    "INTEGRITY_REPORT_FORMAT": "aris3nb.integrity.runner",
    "INTEGRITY_REPORT_VERSION": "aris3nb.integrity.runner",
    "FileCheck": "aris3nb.integrity.declarative",
    "IntegrityContext": "aris3nb.integrity.invariants",
    "IntegrityOptions": "aris3nb.integrity.runner",
    "IntegrityReport": "aris3nb.integrity.runner",
    "IntegritySelection": "aris3nb.integrity.declarative",
    "Invariant": "aris3nb.integrity.invariants",
    "InvariantSet": "aris3nb.integrity.invariants",
    "SqlCheck": "aris3nb.integrity.declarative",
    "builtin_set": "aris3nb.integrity.invariants",
    "checks_from_toml": "aris3nb.integrity.declarative",
    "is_not_applicable": "aris3nb.integrity.invariants",
    "not_applicable": "aris3nb.integrity.invariants",
    "read_integrity_report": "aris3nb.integrity.runner",
    "read_only_snapshot": "aris3nb.integrity.runner",
    "run_integrity_check": "aris3nb.integrity.runner",
}


def __getattr__(name: str) -> Any:
    if name == "INTEGRITY_CHECKS":
        from aris3nb.integrity.invariants import builtin_set, registry_of

        value: Any = registry_of(builtin_set("reference"))
    elif name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
    else:
        raise AttributeError(f"module 'aris3nb.integrity' has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    """The public names, the private ones and the submodules loaded (not the helpers imported here)."""
    own = {name for name in globals() if name.startswith("_") or f"{__name__}.{name}" in sys.modules}
    return sorted(own | set(__all__))


__all__ = [
    "BUILTIN_SETS",
    "ENTRY_POINT_GROUP",
    "INTEGRITY_CHECKS",
    "INTEGRITY_FOLDER",
    "INTEGRITY_REPORT_FORMAT",
    "INTEGRITY_REPORT_VERSION",
    "FileCheck",
    "IntegrityContext",
    "IntegrityOptions",
    "IntegrityReport",
    "IntegritySelection",
    "Invariant",
    "InvariantSet",
    "SqlCheck",
    "builtin_set",
    "checks_from_toml",
    "is_not_applicable",
    "not_applicable",
    "read_integrity_report",
    "read_only_snapshot",
    "run_integrity_check",
]
