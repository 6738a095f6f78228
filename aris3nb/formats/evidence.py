"""The run's documents as models: a phase's result (docs/FORMAT.md §7.5, the notebook output
``application/vnd.aris3nb.phase-result+json`` and ``<phase>/result.json``) and ``evidence.json``
(§7.2, the runner's fields of §7.5). What the bundle verifies beyond shape — ``run_id`` naming its
folder, the listed files on disk, the chain's links, the signature, and which verdict, decision
and exit code go together (``aris3nb.evidence.bundle.check_structure``) — stays there.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import StringConstraints

from aris3nb.formats.common import (
    Digest,
    Document,
    NonNegativeInt,
    Omittable,
    ProfileRef,
    Record,
    RunId,
    RunVerdict,
    Seconds,
    Text,
    UtcMillis,
    Verdict,
    Version1,
)

#: How a phase ended (section 7.5), judged once in ``aris3nb.evidence.marks``.
PhaseStatus = Literal["completed", "failed", "error", "timeout", "dead_kernel", "interrupted", "skipped"]
#: The rollback triggers' kinds (section 7.5).
TriggerKind = Literal["gate_fail", "not_ready", "smoke_red", "drill_fail", "manifest_inconsistent", "phase_incomplete"]
#: Base64 (standard alphabet, padded) of a raw 32-byte Ed25519 public key.
PUBLIC_KEY = r"^[A-Za-z0-9+/]{43}=$"


# -- the phase result ---------------------------------------------------------------------


class PhaseCheck(Record):
    """A check a phase concluded with: its name, status and detail (no duration or evidence)."""

    name: Text
    status: Literal["PASS", "WARN", "FAIL", "SKIP"]
    detail: str


class PhaseMetrics(Document):
    """The numbers a phase measured (each only where it measured it)."""

    latency_p95_ms: dict[str, float | None] | None = None
    drill_rto_sec: float | None = None
    backup_bytes: NonNegativeInt | None = None


class PhaseResult(Document):
    """A phase's result, version 1 (docs/FORMAT.md §7.5): what a phase notebook concludes with."""

    format: Literal["aris3nb.phase_result"]
    version: Version1
    phase: Text
    verdict: Verdict
    reasons: list[str]
    """The blocking checks (``name: detail``); the warning checks when the verdict is ``PASS_WITH_WARNINGS``."""
    checks: list[PhaseCheck]
    metrics: PhaseMetrics
    facts: dict[str, Any]
    kept: list[str]
    """The evidence files the notebook copied into its phase folder."""


# -- evidence.json ------------------------------------------------------------------------


class RunTarget(Document):
    """What the run was played against (password masked)."""

    mode: Literal["embedded", "database", "base_url"] | None
    """``null`` when no target was set up."""
    description: str | None = None
    base_url: str | None
    database_url: str | None


class Trigger(Record):
    """A rollback trigger that fired."""

    kind: TriggerKind
    phase: Text
    reason: str


class FailedCell(Document):
    """The cell that did not complete, in the executed notebook."""

    index: NonNegativeInt | None
    """Its position in the executed notebook (after the marks were put in)."""
    id: str | None
    execution_count: int | None


class RunPhase(Document):
    """One phase of the run, in order."""

    phase: Text
    title: str
    status: PhaseStatus
    verdict: RunVerdict | None
    """``null`` for a phase never executed."""
    reasons: list[str]
    notebook: str | None
    """File name in the run folder; ``null`` for a phase never executed."""
    html: str | None
    duration_sec: Seconds
    started_at: UtcMillis | None = None
    failed_cell: FailedCell | None = None
    parameters: Omittable[dict[str, Any]] = None
    """As injected into the notebook: literals, never a secret."""
    checks: Omittable[list[PhaseCheck]] = None
    metrics: Omittable[PhaseMetrics] = None


class RunMetrics(Document):
    """The numbers tracked across runs; ``null`` when not measured."""

    latency_p95_ms: dict[str, float | None] | None
    drill_rto_sec: float | None
    backup_bytes: NonNegativeInt | None


class RunCode(Document):
    """aris3nb's code that made the run: its version and the checkout's git state (``null`` outside one)."""

    aris3nb_version: str
    commit: str | None
    branch: str | None
    dirty: bool | None


class PreviousRun(Record):
    """The sealed run just before this one in the chain."""

    run_id: RunId
    digest: Digest
    """The digest of that run's ``evidence.json`` bytes when this run was sealed."""


class Signature(Record):
    """The Ed25519 signature of ``evidence.json``'s bytes, kept in ``evidence.json.sig``."""

    algorithm: Literal["ed25519"]
    public_key: Annotated[str, StringConstraints(pattern=PUBLIC_KEY)]
    key_id: Digest
    """``sha256:`` of the raw 32-byte public key: what a person compares."""
    file: Literal["evidence.json.sig"]


class EvidenceFile(Record):
    """A regular file of the run folder (every one but ``evidence.json`` and its signature)."""

    path: Text
    """Relative POSIX path."""
    size: NonNegativeInt
    sha256: Digest
    """A digest, ``sha256:`` prefix included (the manifest's files: bare hex)."""


class SealedRun(Document):
    """``evidence.json`` as the bundle reads it (docs/FORMAT.md §7.2): its own fields (``previous``,
    ``signature``, ``files``) in full, and of the runner's the run id and the outcome it checks
    together; the runner's other fields must be there, but the bundle keeps them as they are and
    does not judge them (``Evidence`` describes them), so that every sealed run stays verifiable."""

    format: Literal["aris3nb.evidence"]
    version: Version1
    run_id: RunId
    """Equal to the name of the folder that holds the file."""
    started_at: Any
    finished_at: Any
    duration_sec: Any
    verdict: RunVerdict
    decision: Literal["GO", "NO-GO", "INTERRUPTED"]
    exit_code: Literal[0, 1, 130]
    target: Any
    parameters: Any
    phases: Any
    metrics: Any
    code: Any
    tools: Any
    previous: PreviousRun | None
    """``null`` for the first sealed run of the runs folder."""
    signature: Signature | None
    """``null``: unsigned."""
    files: list[EvidenceFile]
    """Sorted by path."""


class Evidence(SealedRun):
    """``evidence.json``, version 1 (docs/FORMAT.md §7.2, §7.5): a sealed run. The fields from
    ``run_id`` to ``tools`` are the runner's; ``previous``, ``signature`` and ``files`` the bundle's."""

    started_at: UtcMillis
    finished_at: UtcMillis
    duration_sec: Seconds
    interrupted: Omittable[bool] = None
    target: RunTarget
    parameters: dict[str, Any]
    """The run's options, secrets masked."""
    profile: Omittable[ProfileRef] = None
    warnings: Omittable[list[Text]] = None
    """What the run could not guarantee besides its phases (its bucket run lock lost or not
    renewed within its lease); each makes the verdict at best ``PASS_WITH_WARNINGS``."""
    triggers: Omittable[list[Trigger]] = None
    phases: list[RunPhase]
    metrics: RunMetrics
    code: RunCode
    tools: dict[str, str | None]
