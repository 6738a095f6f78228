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
    registry_of,
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
INTEGRITY_CHECKS: Registry[IntegrityContext] = registry_of(builtin_set("reference"))

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
