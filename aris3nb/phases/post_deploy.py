"""Phase 3, post-deploy: critical smoke per area, the critical endpoints and their p95 (the
gate's live checks, ``POST_DEPLOY_CHECKS``), and the post-go-live integrity check, strict."""

from __future__ import annotations

from pathlib import Path

from aris3nb.core.errors import UsageError
from aris3nb.core.settings import Settings
from aris3nb.integrity import IntegrityOptions, IntegrityReport, run_integrity_check
from aris3nb.phases.base import Phase, TriggerRule
from aris3nb.targets.profile import LoadedProfile, load_target_profile

PHASE = Phase(
    name="post_deploy",
    notebook="03-post_deploy.ipynb",
    title="Post-deploy: smoke, critical endpoints, latency, integrity",
    parameters=("base_url", "database_url", "pytest_target", "strict", "budgets_ms", "exports_dir", "profile"),
    requires="deploy",
    quiet=True,
    triggers=(
        TriggerRule("not_ready", checks=("http.ready", "target.schema")),
        TriggerRule("smoke_red", checks=("smoke",)),
    ),
)

#: The gate's checks the post-deploy phase runs against the deployed service.
POST_DEPLOY_CHECKS = (
    "target.schema",
    "smoke",
    "http.health",
    "http.ready",
    "latency.health",
    "latency.stock",
    "latency.reports",
    "latency.exports",
)


def post_deploy_checks(profile: LoadedProfile | None = None) -> tuple[str, ...]:
    """The gate's live checks for the target: ``POST_DEPLOY_CHECKS`` for the reference, the
    same with the profile's own endpoints' latency checks otherwise."""
    if profile is None or profile.is_reference:
        return POST_DEPLOY_CHECKS
    from aris3nb.gate.runner import gate_checks

    latency = [name for name in gate_checks(profile).names() if name.startswith("latency.")]
    return (*POST_DEPLOY_CHECKS[:4], *latency)


def post_deploy_integrity(
    database_url: str | None,
    exports_dir: Path | str | None,
    settings: Settings,
    profile: LoadedProfile | None = None,
    *,
    run_id: str | None = None,
    folder: Path | None = None,
) -> IntegrityReport:
    """The post-go-live integrity check, strict as the playbook runs it (warnings fail), on
    ``database_url`` (default DATABASE_URL), with the invariants the target's profile selects."""
    database_url = database_url or settings.target.database_url
    if not database_url:
        raise UsageError("the integrity check needs the target database: give --database-url (or DATABASE_URL)")
    profile = profile or load_target_profile(None)
    exports = Path(exports_dir) if exports_dir else (profile.exports_dir() or settings.resolved_exports_dir())
    options = IntegrityOptions(
        database_url=database_url,
        exports_dir=exports,
        strict=True,
        idempotency_max_age_sec=settings.integrity.idempotency_max_age_sec,
        statement_timeout_sec=settings.integrity.statement_timeout_sec,
    ).for_profile(profile)
    return run_integrity_check(options, artifacts_dir=settings.artifacts.dir, run_id=run_id, folder=folder)
