"""The check reports as models: the gate summary (docs/FORMAT.md §6.2) and the integrity report
(§6.3), which open with the same fields (``aris3nb.core.report.check_report_head``). That
``verdict``, ``exit_code``, ``counts`` and ``blocking_checks`` agree with ``checks`` is semantics,
checked where they are computed (``aris3nb.core.checks``), not here.
"""

from __future__ import annotations

from typing import Any, Literal

from aris3nb.formats.common import (
    CheckResult,
    Document,
    Engine,
    NonNegativeInt,
    Omittable,
    ProfileRef,
    Record,
    RunId,
    Seconds,
    StatusCounts,
    Text,
    UtcMillis,
    Verdict,
    Version1,
)


class CheckReportHead(Document):
    """The fields every check report opens with (section 6.2's top-level fields)."""

    version: Version1
    run_id: RunId
    """The file is named after it."""
    started_at: UtcMillis
    finished_at: UtcMillis
    duration_sec: Seconds
    verdict: Verdict
    """``strict`` already applied."""
    strict: bool
    exit_code: Literal[0, 1]
    """0 for PASS and PASS_WITH_WARNINGS, 1 for FAIL."""
    counts: StatusCounts
    blocking_checks: list[str]
    """Names of the checks that make the verdict FAIL (WARN ones too when strict)."""
    checks: list[CheckResult]
    """In the order the checks ran."""


# -- gate_summary_<run_id>.json -----------------------------------------------------------


class GateInputs(Document):
    """What the gate run looked at (passwords masked)."""

    checks: Literal["all"] | list[str]
    """``"all"``, or the names of the checks this run was limited to."""
    pytest_target: str | None
    base_url: str | None
    """``null``: the embedded service."""
    live_target: str | None
    """The target the live checks reached, or ``null`` if none got that far."""
    database_url: str | None
    postgres_url: str | None
    workdir: str
    budgets_ms: dict[str, float]
    latency_samples: NonNegativeInt
    latency_warmup: NonNegativeInt
    min_latency_samples: NonNegativeInt
    latency_deadline_sec: float
    http_timeout_sec: float
    smoke_timeout_sec: float
    smoke_username: str | None
    rpo_budget_sec: float
    drill_max_age_days: float
    profile: ProfileRef


class GateCode(Document):
    """The code the gate judged."""

    aris3nb_version: str
    python: str
    migration_heads: list[str] | None
    """The heads of the target's code; ``null`` when they cannot be read."""
    target: dict[str, Any]
    """The target's code revision: ``git_commit``, ``git_dirty``, ``alembic_head`` (``alembic_head_error``)."""


class GateFiles(Record):
    """File names, relative to the summary's folder."""

    summary: Text
    smoke_output: Omittable[Text] = None
    """When the smoke check ran."""
    smoke_junit: Omittable[Text] = None
    """When the smoke check ran."""


class GateSummary(CheckReportHead):
    """``gate_summary_<run_id>.json``, version 1 (docs/FORMAT.md §6.2): the release readiness gate's report."""

    format: Literal["aris3nb.gate_summary"]
    inputs: GateInputs
    code: GateCode
    files: GateFiles


# -- integrity_report_<run_id>.json -------------------------------------------------------


class NotApplicable(Record):
    """The checks that were not applicable (a table or column they need is absent)."""

    count: NonNegativeInt
    checks: list[str]


class IntegritySelection(Record):
    """What ran."""

    builtin: list[str]
    """Built-in invariant sets."""
    sql: list[str]
    """Declarative SQL checks' names."""
    files: list[str]
    """Declarative file checks' names."""
    plugins: list[str]
    """Entry point names of the group ``aris3nb.invariants``."""


class IntegrityInputs(Document):
    """What the integrity run looked at (password masked)."""

    database_url: str
    engine: Engine
    read_only: str
    """How the connection was made read-only."""
    exports_dir: str
    idempotency_max_age_sec: float
    statement_timeout_sec: float
    sample_limit: NonNegativeInt
    selection: IntegritySelection
    profile: ProfileRef


class IntegrityFiles(Record):
    report: Text


class IntegrityReport(CheckReportHead):
    """``integrity_report_<run_id>.json``, version 1 (docs/FORMAT.md §6.3): the post-go-live
    integrity check's report."""

    format: Literal["aris3nb.integrity_report"]
    not_applicable: NotApplicable
    inputs: IntegrityInputs
    files: IntegrityFiles
