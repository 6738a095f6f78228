"""The playbook's deploy-time steps as library calls the phase notebooks make.

The pre-deploy phase is the gate (``run_gate``) and the post-deploy phase the gate's live
checks (``POST_DEPLOY_CHECKS``) plus the integrity check; what only the deploy and drill
phases need lives here: ``deploy`` (backup before deploying, validate its manifest,
/health and /ready reachable) and ``drill`` (the restore drill, its report kept whether it
passed or not). ``resolve_url`` turns a notebook's redacted URL parameter back into the
real one from the environment, so no password is ever a notebook parameter.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import json
import os
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aris3nb.backup.catalog import Choice, choose_backup
from aris3nb.backup.create import BackupResult, create_backup, schema_tables_at
from aris3nb.backup.drill import read_drill_report, restore_verify
from aris3nb.backup.manifest import Validation, validate_backup
from aris3nb.core.checks import CheckResult, Outcome, Registry, Status, Verdict, failed, passed, verdict_of
from aris3nb.core.errors import BackupExists, DrillFailed, UsageError
from aris3nb.core.redact import MASK, redact_text, redact_url
from aris3nb.core.settings import Settings
from aris3nb.evidence.display import URLS_FILE_ENV
from aris3nb.gate import http
from aris3nb.integrity import IntegrityOptions, IntegrityReport, run_integrity_check

#: The playbook's smoke suite in this checkout: what a phase notebook runs when it is given none.
DEFAULT_SMOKE_TARGET = Path(__file__).resolve().parents[1] / "tests" / "smoke" / "test_post_merge_readiness.py"


def smoke_target(given: str | None) -> str:
    """The smoke target a phase notebook runs: the one given, else the playbook's own suite
    (an absolute path, so the notebook runs the same from any folder)."""
    return given or str(DEFAULT_SMOKE_TARGET)


#: The gate's checks the post-deploy phase runs against the deployed service.
POST_DEPLOY_CHECKS = ("target.schema", "smoke", "http.health", "http.ready",
                      "latency.health", "latency.stock", "latency.reports", "latency.exports")


def resolve_url(url: str | None) -> str | None:
    """The real URL behind ``url`` when its password was masked (``***``).

    Candidates are the URLs the runner handed the kernel (``ARIS3NB_URLS_FILE``) and, when a
    notebook is re-run by hand, ``DATABASE_URL`` and ``ARIS3_BASE_URL``; the one whose
    redacted form equals ``url`` is it. ``UsageError`` when none does.
    """
    if url is None or f":{MASK}@" not in url:
        return url
    candidates: list[str] = []
    if os.environ.get(URLS_FILE_ENV):
        with contextlib.suppress(OSError, ValueError):
            candidates += json.loads(Path(os.environ[URLS_FILE_ENV]).read_text(encoding="utf-8"))
    candidates += [os.environ[name] for name in ("DATABASE_URL", "ARIS3_BASE_URL") if os.environ.get(name)]
    for candidate in candidates:
        if url in (redact_url(candidate), redact_text(candidate)):
            return candidate
    raise UsageError(f"{url} has its password masked: set DATABASE_URL (or ARIS3_BASE_URL) to the real URL "
                     "to run this notebook again")


@dataclass(frozen=True)
class DeployOptions:
    database_url: str | None
    base_url: str | None
    backup_name: str | None = None  # default: pre_deploy_YYYYMMDD_HHMM (UTC, now)
    exports_dir: Path | str | None = None
    http_timeout_sec: float = 10.0


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
    exports = Path(ctx.options.exports_dir) if ctx.options.exports_dir else ctx.settings.resolved_exports_dir()
    name = base
    for attempt in range(1, 6):
        try:
            ctx.backup = create_backup(ctx.options.database_url, name, settings=ctx.settings, exports_dir=exports,
                                       purpose="pre_deploy")
            break
        except BackupExists:  # another run took the name this minute: a name, not an unsafe release
            if attempt == 5:
                raise
            name = f"{base}_{secrets.token_hex(2)}"
    assert ctx.backup is not None
    manifest = ctx.backup.manifest
    rows = sum(table["rows"] for table in manifest["tables"])
    size = sum(entry["size"] for entry in manifest["files"])
    return passed(f"{name}: {len(manifest['tables'])} tables, {rows:,} rows, {size:,} bytes",
                  path=str(ctx.backup.path), tables=len(manifest["tables"]), rows=rows, bytes=size)


@DEPLOY_CHECKS.register("backup.manifest")
def _check_manifest(ctx: _DeployContext) -> Outcome:
    """The backup's manifest is consistent: every file present with its size and SHA-256."""
    if ctx.backup is None:
        return failed("no backup to validate (backup.create failed)")
    ctx.validation = validate_backup(ctx.backup.manifest_path, schema_tables_at)
    if not ctx.validation.ok:
        return failed(f"{len(ctx.validation.problems)} problem(s): {ctx.validation.problems[0]}",
                      problems=ctx.validation.problems)
    return passed(f"valid: {ctx.validation.files_checked} files, {ctx.validation.bytes_checked:,} bytes re-hashed")


@DEPLOY_CHECKS.register("http.health")
def _check_health(ctx: _DeployContext) -> Outcome:
    """The deployed process answers: /health is 200 ok."""
    if not ctx.options.base_url:
        return failed("no base URL given: nothing to probe")
    with http.new_client(ctx.options.base_url, ctx.options.http_timeout_sec) as client:
        return http.probe_health(client)


@DEPLOY_CHECKS.register("http.ready")
def _check_ready(ctx: _DeployContext) -> Outcome:
    """The deployed service can serve: /ready is 200 (database reachable, schema at head)."""
    if not ctx.options.base_url:
        return failed("no base URL given: nothing to probe")
    with http.new_client(ctx.options.base_url, ctx.options.http_timeout_sec) as client:
        return http.probe_ready(client)


def deploy(options: DeployOptions, settings: Settings) -> DeployReport:
    """The deploy phase's checks; a failing one is in the verdict, never raised. URLs not
    given are DATABASE_URL's and ARIS3_BASE_URL's."""
    options = dataclasses.replace(options, database_url=options.database_url or settings.database_url,
                                  base_url=options.base_url or settings.base_url)
    context = _DeployContext(options, settings)
    results = DEPLOY_CHECKS.run(context)
    return DeployReport(results, context.backup, context.validation)


@dataclass(frozen=True)
class DrillOutcome:
    """A finished drill: its report (passed or failed), where it was written, and how its
    backup was chosen (None: it was named)."""

    report: dict[str, Any]
    path: Path
    choice: Choice | None = None

    @property
    def selection(self) -> str:
        """Which backup was drilled and why, for people."""
        if self.choice is None:
            return f"drilled {self.report.get('backup')}: the backup named for this drill"
        passed_over = "".join(f"\n  passed over {c}" for c in self.choice.passed_over)
        return f"drilled {self.report.get('backup')}: {self.choice.reason}{passed_over}"

    @property
    def passed(self) -> bool:
        return self.report.get("status") == "PASS"

    @property
    def results(self) -> list[CheckResult]:
        """The drill's checks; a drill stopped before a check could fail (a timeout) adds one saying why."""
        results = [CheckResult(c["name"], Status(c["status"]), c["detail"], c["duration_sec"], c.get("evidence") or {})
                   for c in self.report.get("checks") or []]
        if not self.passed and not any(r.status is Status.FAIL for r in results):
            results.append(CheckResult("drill", Status.FAIL, str(self.report.get("reason")),
                                       float((self.report.get("rto_sec") or {}).get("total") or 0)))
        return results


def drill(manifest_path: Path | str | None, settings: Settings, *, server_url: str | None = None,
          database_url: str | None = None) -> DrillOutcome:
    """Run the restore drill on ``manifest_path`` and return its report, also when it failed
    (the report says why); a drill that could not start at all (disabled, no backup,
    unreadable manifest) raises.

    Without a manifest, the newest backup of ``database_url`` (default DATABASE_URL) is
    drilled whatever its state:
    an invalid newest backup FAILs the drill naming its problems, it is never passed over
    for an older one. ``NoBackup`` lists every backup found and why none was of the target.
    """
    choice = None
    database_url = database_url or settings.database_url
    if manifest_path is None:
        if not database_url:
            raise UsageError("no backup named to drill, and no target database whose newest backup to drill: "
                             "give the manifest, or the target's database URL")
        choice = choose_backup(settings, database_url, require_valid=False, purpose="drill")
        manifest_path = choice.manifest
    try:
        _, path = restore_verify(Path(str(manifest_path)), settings=settings, server_url=server_url)
    except DrillFailed as exc:
        path = exc.report_path
    return DrillOutcome(read_drill_report(path), path, choice)


def post_deploy_integrity(database_url: str | None, exports_dir: Path | str | None, settings: Settings) -> IntegrityReport:
    """The post-go-live integrity check, strict as the playbook runs it (warnings fail), on
    ``database_url`` (default DATABASE_URL)."""
    database_url = database_url or settings.database_url
    if not database_url:
        raise UsageError("the integrity check needs the target database: give --database-url (or DATABASE_URL)")
    exports = Path(exports_dir) if exports_dir else settings.resolved_exports_dir()
    return run_integrity_check(IntegrityOptions(database_url=database_url, exports_dir=exports, strict=True),
                               artifacts_dir=settings.ops_artifacts_dir)
