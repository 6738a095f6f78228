"""Phase 2, deploy: the backup before deploying (``pre_deploy_YYYYMMDD_HHMM``), its manifest
validated, /health and /ready reachable. The backup it makes is the run's own: the drill
drills it and a rollback restores it, and nothing older (its path travels as the phase's fact).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aris3nb import migrate
from aris3nb.backup import profiles
from aris3nb.backup.create import BackupResult, create_backup
from aris3nb.backup.manifest import Validation, validate_backup
from aris3nb.core.checks import CheckResult, Outcome, Registry, Verdict, failed, passed, verdict_of, warned
from aris3nb.core.errors import Aris3nbError, BackupExists
from aris3nb.core.settings import Settings
from aris3nb.core.words import listed
from aris3nb.gate import http
from aris3nb.phases.base import Phase, TriggerRule
from aris3nb.targets.profile import LoadedProfile

PHASE = Phase(
    name="deploy",
    notebook="02-deploy.ipynb",
    title="Deploy: backup, manifest, health and ready",
    parameters=("base_url", "database_url", "backup_name", "exports_dir", "profile"),
    requires="pre_deploy",
    triggers=(
        TriggerRule("not_ready", checks=("http.ready", "target.schema")),
        TriggerRule("manifest_inconsistent", checks=("backup.create", "backup.manifest")),
    ),
)


@dataclass(frozen=True)
class DeployOptions:
    database_url: str | None
    base_url: str | None
    backup_name: str | None = None  # default: pre_deploy_YYYYMMDD_HHMM (UTC, now)
    exports_dir: Path | str | None = None  # None: the profile's exports folder (the reference: ARIS3_EXPORTS_DIR)
    http_timeout_sec: float = 10.0
    profile: LoadedProfile | None = None  # the target profile; None: the reference


@dataclass
class DeployReport:
    """The deploy phase's checks, and the backup it took (``None`` if that failed)."""

    results: list[CheckResult]
    backup: BackupResult | None
    validation: Validation | None

    @property
    def verdict(self) -> Verdict:
        return verdict_of(self.results, strict=False)

    @property
    def facts(self) -> dict[str, Any]:
        """What the run needs to know of this phase: the backup it made (the drill drills it,
        the rollback restores it and nothing older)."""
        return {"backup_manifest": str(self.backup.manifest_path) if self.backup is not None else None}


@dataclass
class _DeployContext:
    options: DeployOptions
    settings: Settings
    backup: BackupResult | None = None
    validation: Validation | None = None


DEPLOY_CHECKS: Registry[_DeployContext] = Registry()


@DEPLOY_CHECKS.register("backup.create")
def _check_backup(ctx: _DeployContext) -> Outcome:
    """A backup is taken before deploying: without one there is nothing to roll back to."""
    if not ctx.options.database_url:
        return failed("no database URL given (--database-url or DATABASE_URL): nothing to back up")
    base = ctx.options.backup_name or f"pre_deploy_{dt.datetime.now(dt.UTC):%Y%m%d_%H%M}"
    profile = ctx.options.profile
    exports = (
        Path(ctx.options.exports_dir)
        if ctx.options.exports_dir
        else ctx.settings.resolved_exports_dir()
        if profiles.is_reference(profile)
        else None
    )
    name = base
    for attempt in range(1, 6):
        try:
            ctx.backup = create_backup(
                ctx.options.database_url,
                name,
                settings=ctx.settings,
                exports_dir=exports,
                purpose="pre_deploy",
                profile=profile,
            )
            break
        except BackupExists:  # another run took the name this minute: a name, not an unsafe release
            if attempt == 5:
                raise
            name = f"{base}_{secrets.token_hex(2)}"
    assert ctx.backup is not None
    manifest = ctx.backup.manifest
    rows = sum(table["rows"] for table in manifest["tables"])
    size = sum(entry["size"] for entry in manifest["files"])
    detail = f"{name}: {len(manifest['tables'])} tables, {rows:,} rows, {size:,} bytes"
    evidence = {"path": str(ctx.backup.path), "tables": len(manifest["tables"]), "rows": rows, "bytes": size}
    if ctx.backup.warnings:
        return warned(f"{detail}; {'; '.join(ctx.backup.warnings)}", warnings=ctx.backup.warnings, **evidence)
    return passed(detail, **evidence)


@DEPLOY_CHECKS.register("backup.manifest")
def _check_manifest(ctx: _DeployContext) -> Outcome:
    """The backup's manifest is consistent: every file present with its size and SHA-256."""
    if ctx.backup is None:
        return failed("no backup to validate (backup.create failed)")
    profile = ctx.options.profile
    ctx.validation = validate_backup(ctx.backup.manifest_path, profiles.schema_tables_for(profile))
    if not ctx.validation.ok:
        return failed(
            listed(ctx.validation.problems),
            problems=ctx.validation.problems,
            warnings=ctx.validation.warnings,
        )
    if ctx.validation.warnings:
        return warned(
            f"valid: {ctx.validation.files_checked} files, {ctx.validation.bytes_checked:,} bytes re-hashed; "
            f"{'; '.join(ctx.validation.warnings)}",
            warnings=ctx.validation.warnings,
        )
    return passed(f"valid: {ctx.validation.files_checked} files, {ctx.validation.bytes_checked:,} bytes re-hashed")


@DEPLOY_CHECKS.register("http.health")
def _check_health(ctx: _DeployContext) -> Outcome:
    """The deployed process answers: /health is 200 ok."""
    if not ctx.options.base_url:
        return failed("no base URL given: nothing to probe")
    profile = ctx.options.profile
    with http.new_client(ctx.options.base_url, ctx.options.http_timeout_sec) as client:
        if not profiles.is_reference(profile):
            assert profile is not None
            return http.probe_service_health(client, profile.profile.service.health)
        return http.probe_health(client)


@DEPLOY_CHECKS.register("http.ready")
def _check_ready(ctx: _DeployContext) -> Outcome:
    """The deployed service can serve: /ready is 200 (database reachable, schema at head)."""
    if not ctx.options.base_url:
        return failed("no base URL given: nothing to probe")
    profile = ctx.options.profile
    if not profiles.is_reference(profile):
        from aris3nb.targets.code import head_revision

        assert profile is not None
        head, head_error = None, None
        try:
            head = head_revision(profile)
        except Aris3nbError as exc:
            head_error = str(exc)
        with http.new_client(ctx.options.base_url, ctx.options.http_timeout_sec) as client:
            return http.probe_service_ready(
                client, profile.profile.service.ready, expected_revision=head, head_error=head_error
            )
    with http.new_client(ctx.options.base_url, ctx.options.http_timeout_sec) as client:
        return http.probe_ready(client, expected_revision=migrate.head_revision())


def deploy(options: DeployOptions, settings: Settings) -> DeployReport:
    """The deploy phase's checks; a failing one is in the verdict, never raised. URLs not
    given are DATABASE_URL's and ARIS3_BASE_URL's."""
    options = dataclasses.replace(
        options,
        database_url=options.database_url or settings.target.database_url,
        base_url=options.base_url or settings.target.base_url,
    )
    context = _DeployContext(options, settings)
    results = DEPLOY_CHECKS.run(context)
    return DeployReport(results, context.backup, context.validation)
