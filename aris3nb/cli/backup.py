"""The backup commands: ``aris3nb backup create|validate|restore-verify|restore|forget``."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from aris3nb.cli._common import (
    DatabaseUrlOption,
    EmbeddedOption,
    JsonOption,
    RetainDaysOption,
    RetentionModeOption,
    TargetOption,
    database_url,
    err,
    out,
    say,
    settings,
    target_profile,
)
from aris3nb.core.errors import DrillFailed, UsageError

if TYPE_CHECKING:
    from aris3nb.storage.s3 import Repository

STORAGE_HELP = (
    "OPS_ARTIFACTS_DIR may be s3://BUCKET[/PREFIX], a repository on S3-compatible object storage: "
    "endpoint, region and credentials only from AWS_ENDPOINT_URL, AWS_DEFAULT_REGION, AWS_ACCESS_KEY_ID "
    "and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE (never shown). A missing bucket or refused credentials: "
    "exit 2 before anything is written; the store failing midway: exit 1, one line with the cause."
)
backup_app = typer.Typer(
    help=f"Create, validate, drill and restore backups. {STORAGE_HELP}",
    no_args_is_help=True,
)
ManifestArgument = Annotated[
    str,
    typer.Argument(
        help="A backup's manifest.json (or its folder); or s3://BUCKET[/PREFIX]/backups/NAME[/manifest.json], "
        "or NAME when OPS_ARTIFACTS_DIR is s3://.",
        show_default=False,
        metavar="MANIFEST",
    ),
]
TimeoutOption = Annotated[
    float | None,
    typer.Option(
        "--timeout", help="Seconds before the operation gives up; default OPS_BACKUP_TIMEOUT_SEC.", metavar="SECONDS"
    ),
]


def register(app: typer.Typer) -> None:
    """Add the backup commands to the ``aris3nb`` application."""
    app.add_typer(backup_app, name="backup")


def _print_json(document: object) -> None:
    out.print_json(json.dumps(document, default=str))


def _warn_repository(repository: Repository, json_output: bool) -> None:
    """The repository's warnings (no Object Lock, no versioning) as ``WARN`` lines."""
    if not json_output:
        for warning in repository.warnings:
            say(f"WARN  {warning}")


@backup_app.command("create")
def create(
    name: Annotated[
        str, typer.Option("--name", help="Backup name, a plain slug such as pre_deploy_20261128_0800.", metavar="NAME")
    ],
    database_url_option: DatabaseUrlOption = None,
    exports_dir: Annotated[
        Path | None,
        typer.Option(
            help="Export files to include. Default: the target profile's "
            "exports folder; for the reference ARIS3_EXPORTS_DIR, else the "
            "embedded one.",
            metavar="DIR",
        ),
    ] = None,
    timeout: TimeoutOption = None,
    retain_days: RetainDaysOption = None,
    retention_mode: RetentionModeOption = None,
    target: TargetOption = None,
    embedded: EmbeddedOption = False,
    json_output: JsonOption = False,
) -> None:
    """Back up the database and its export files under OPS_ARTIFACTS_DIR/backups/NAME.

    With OPS_ARTIFACTS_DIR=s3://BUCKET[/PREFIX] the backup is made in a temporary local folder
    and uploaded to backups/NAME/ (manifest last); AWS_ENDPOINT_URL, AWS_ACCESS_KEY_ID,
    AWS_SECRET_ACCESS_KEY, AWS_DEFAULT_REGION or AWS_PROFILE say where and who. A bucket
    without Object Lock is a WARN line (exit 2 with --retain-days).

    Environment: DATABASE_URL, OPS_ARTIFACTS_DIR, ARIS3_EXPORTS_DIR (or the profile's exports
    folder), OPS_BACKUP_TIMEOUT_SEC, OPS_LOCK_TIMEOUT_SEC, OPS_RETAIN_DAYS, OPS_RETENTION_MODE.
    Exit 0 kept (warnings printed); 1 failed, nothing kept (or the name is taken, or the store
    failed midway); 2 bad input (name, URL, an unwritable OPS_ARTIFACTS_DIR, a missing bucket,
    refused credentials, retention on a bucket without Object Lock).
    """
    from aris3nb.backup import profiles
    from aris3nb.backup.create import create_backup
    from aris3nb.storage import artifacts

    profile = target_profile(target, embedded)
    current = settings()
    if exports_dir is None and profiles.is_reference(profile):
        exports_dir = current.resolved_exports_dir()
    show = not json_output and err.is_terminal
    with err.status("backing up…", spinner="dots") if show else contextlib.nullcontext() as status:

        def progress(stage: str) -> None:
            if status is not None:  # the spinner, when shown
                status.update(stage)

        options: dict[str, Any] = {
            "exports_dir": exports_dir,
            "timeout_sec": timeout,
            "profile": profile,
            "progress": progress,
        }
        if current.artifacts.repository_url:
            result, remote = artifacts.create_remote(
                current,
                database_url(database_url_option),
                name,
                retain_days=retain_days,
                retention_mode=retention_mode,
                **options,
            )
            where, manifest_where = remote.repository.url(remote.key), remote.url
            _warn_repository(remote.repository, json_output)
        else:
            if retain_days is not None or retention_mode is not None:
                raise UsageError("--retain-days and --retention-mode need OPS_ARTIFACTS_DIR=s3://BUCKET[/PREFIX]")
            result = create_backup(database_url(database_url_option), name, settings=current, **options)
            where, manifest_where = str(result.path), str(result.manifest_path)
    tables = result.manifest["tables"]
    summary = {
        "backup": where,
        "manifest": manifest_where,
        "name": name,
        "tables": len(tables),
        "rows": sum(t["rows"] for t in tables),
        "files": len(result.manifest["files"]),
        "duration_sec": result.manifest["durations_sec"]["total"],
        "stale_temporaries_removed": result.stale_removed,
        "profile": profile.as_evidence(),
        "warnings": result.warnings,
    }
    if json_output:
        _print_json(summary)
    else:
        say(
            f"backup {name}: {summary['tables']} tables, {summary['rows']:,} rows, {summary['files']} files "
            f"in {summary['duration_sec']:.1f} s -> {manifest_where}"
        )
        for warning in result.warnings:
            say(f"WARN  {warning}")
        for name in result.stale_removed:
            say(f"removed {name}: the temporary folder of a backup whose process is gone")


@backup_app.command("validate")
def validate(
    manifest: ManifestArgument,
    target: TargetOption = None,
    embedded: EmbeddedOption = False,
    json_output: JsonOption = False,
) -> None:
    """Check every file, size, digest and path of a backup against its manifest, and its tables
    against the target's schema at its revision (the profile's migrations).

    On s3:// (see `aris3nb backup --help`) every object is checked against the manifest's
    size and SHA-256 as it is downloaded; one that differs is a problem naming it.

    Exit 0 VALID (warnings printed); 1 INVALID, every problem named (or the store failed);
    2 a manifest missing, empty or not JSON, a missing bucket or refused credentials.
    """
    from aris3nb.backup import profiles
    from aris3nb.backup.manifest import validate_backup
    from aris3nb.storage import artifacts

    profile = target_profile(target, embedded)
    current = settings()
    if artifacts.is_remote(manifest, current):
        result, remote = artifacts.validate_remote(manifest, current, profiles.schema_tables_for(profile))
        shown = remote.url
        _warn_repository(remote.repository, json_output)
    else:
        result = validate_backup(Path(manifest), profiles.schema_tables_for(profile))
        shown = str(result.manifest.path)
    document = {
        "manifest": shown,
        "valid": result.ok,
        "problems": result.problems,
        "warnings": result.warnings,
        "files_checked": result.files_checked,
        "bytes_checked": result.bytes_checked,
        "profile": profile.as_evidence(),
    }
    if json_output:
        _print_json(document)
    elif result.ok:
        say(
            f"VALID: {shown} ({result.files_checked} files, {result.bytes_checked:,} bytes)"
            + (
                f" with {len(result.warnings)} warning{'' if len(result.warnings) == 1 else 's'}"
                if result.warnings
                else ""
            )
        )
    else:
        say(f"INVALID: {shown} ({len(result.problems)} problem{'' if len(result.problems) == 1 else 's'})")
        for problem in result.problems:
            say(f"  - {problem}")
    if not json_output:
        for warning in result.warnings:
            say(f"  WARN {warning}")
    if not result.ok:
        raise typer.Exit(1)


@backup_app.command("restore-verify")
def restore_verify_command(
    manifest: ManifestArgument,
    database_url_option: DatabaseUrlOption = None,
    timeout: Annotated[
        float | None, typer.Option("--timeout", help="Seconds; default OPS_DRILL_TIMEOUT_SEC.", metavar="SECONDS")
    ] = None,
    target: TargetOption = None,
    embedded: EmbeddedOption = False,
    retain_days: RetainDaysOption = None,
    retention_mode: RetentionModeOption = None,
    json_output: JsonOption = False,
) -> None:
    """The restore drill: restore into a disposable database, verify, upgrade; writes
    drill_report_<timestamp>.json (PostgreSQL drills create their scratch database on the
    server of --database-url).

    Environment: OPS_ENABLE_BACKUP_DRILL must be true (drills are refused otherwise);
    DATABASE_URL, OPS_ARTIFACTS_DIR, OPS_DRILL_TIMEOUT_SEC (the deadline), OPS_RPO_BUDGET_SEC,
    OPS_RTO_BUDGET_SEC. On s3:// (see `aris3nb backup --help`) the backup is downloaded,
    every byte checked against the manifest, and the report uploaded to drills/NAME/ (locked
    for --retain-days / OPS_RETAIN_DAYS, as a backup's objects are). Exit 0
    PASS; 1 FAIL (the report says why; an object that differs is named); 2 drills disabled, an
    unreadable manifest, no server to drill on, a missing bucket or refused credentials.
    """
    from aris3nb.backup import profiles
    from aris3nb.backup.drill import read_drill_report, restore_verify
    from aris3nb.storage import artifacts

    profile = target_profile(target, embedded)
    current = settings()
    url = database_url(database_url_option) if database_url_option or current.target.database_url else None
    options: dict[str, Any] = {
        "server_url": url,
        "timeout_sec": timeout,
        "profile": None if profiles.is_reference(profile) else profile,
    }
    path: Path | str
    failed: DrillFailed | None = None
    try:
        if artifacts.is_remote(manifest, current):
            report, path, remote = artifacts.restore_verify_remote(
                manifest, current, retain_days=retain_days, retention_mode=retention_mode, **options
            )
            _warn_repository(remote.repository, json_output)
        else:
            if retain_days is not None or retention_mode is not None:
                raise UsageError("--retain-days and --retention-mode apply to a backup on s3://BUCKET[/PREFIX]")
            report, path = restore_verify(Path(manifest), settings=current, **options)
        document = report.as_document()
    except DrillFailed as exc:  # the drill ran and failed: its report is shown like a passing one's
        failed, path = exc, exc.report_path
        document = exc.document if exc.document is not None else read_drill_report(Path(path))
    if json_output:
        _print_json({**document, "report_path": str(path)})
    else:
        for check in document.get("checks") or []:
            say(f"{check['status']:<4}  {check['name']:<26} {check['detail']}")
        for warning in document.get("warnings") or []:
            say(f"WARN  {warning['name']:<26} {warning['detail']}")
        total = (document.get("rto_sec") or {}).get("total") or 0
        say(f"drill {document.get('status')}: RTO {total:.1f} s; report {path}")
    if failed is not None:
        raise failed  # and its reason, one line on stderr, exit 1


@backup_app.command("restore")
def restore(
    manifest: ManifestArgument,
    target_url: Annotated[
        str, typer.Option("--target-url", help="The database to overwrite with the backup.", metavar="URL")
    ],
    yes: Annotated[bool, typer.Option("--yes", help="Confirm that the target is to be overwritten.")] = False,
    allow_other_source: Annotated[
        bool,
        typer.Option(
            "--allow-other-source",
            help="Confirm, besides --yes, restoring a backup that was made from another database "
            "than the target (refused otherwise; logged).",
        ),
    ] = False,
    terminate_sessions: Annotated[
        bool,
        typer.Option(
            "--terminate-sessions",
            help="End other sessions that hold locks or transactions on the target (PostgreSQL; "
            "refused otherwise; each one logged).",
        ),
    ] = False,
    timeout: TimeoutOption = None,
    target: TargetOption = None,
    embedded: EmbeddedOption = False,
    json_output: JsonOption = False,
) -> None:
    """Rollback restore into TARGET, after a safety backup of it; logged to rollback_log.jsonl.

    Only a backup made from the target is restored (--allow-other-source for another one);
    on PostgreSQL, sessions holding locks or transactions on the target refuse it
    (--terminate-sessions), and every lock wait is bounded. A failed restore leaves the
    target as it was. Environment: OPS_ARTIFACTS_DIR, OPS_BACKUP_TIMEOUT_SEC,
    OPS_LOCK_TIMEOUT_SEC. On s3:// (see `aris3nb backup --help`) the backup is downloaded and
    verified first; the safety backup and the rollback log go to the repository. Exit 0
    restored; 1 refused or failed; 2 bad input (no --yes, unreadable manifest, a missing
    bucket or refused credentials).
    """
    from aris3nb.backup import profiles
    from aris3nb.backup.restore import restore_backup
    from aris3nb.storage import artifacts

    profile = target_profile(target, embedded)
    current = settings()
    options: dict[str, Any] = {
        "confirmed": yes,
        "timeout_sec": timeout,
        "allow_other_source": allow_other_source,
        "terminate_sessions": terminate_sessions,
        "announce": say if not json_output else (lambda line: None),
        "profile": None if profiles.is_reference(profile) else profile,
    }
    if artifacts.is_remote(manifest, current):
        if not yes:  # refused before anything is downloaded, as locally before anything is read
            raise UsageError("restoring overwrites the target database: confirm with --yes")
        result, safety = artifacts.restore_remote(manifest, target_url, current, **options)
    else:
        result = restore_backup(Path(manifest), target_url, settings=current, **options)
        safety = str(result.safety_backup)
    document = {
        "target": result.target,
        "backup": result.backup,
        "safety_backup": safety,
        "duration_sec": round(result.duration_sec, 3),
        "discarded": result.discarded,
        "other_source": result.other_source,
        "warnings": result.warnings,
    }
    if json_output:
        _print_json(document)
    else:
        say(
            f"restored {result.backup} into {result.target} in {result.duration_sec:.1f} s "
            f"(safety backup of the previous state: {safety})"
        )


def _keep(rule: str, what: str) -> Any:
    return typer.Option(
        f"--keep-{rule}", help=f"Keep the newest backup of each of the last N {what} (-1: all).", metavar="N"
    )


@backup_app.command("forget")
def forget_command(
    keep_last: Annotated[
        int, typer.Option("--keep-last", help="Keep the N newest backups (-1: all).", metavar="N")
    ] = 0,
    keep_hourly: Annotated[int, _keep("hourly", "hours that have one")] = 0,
    keep_daily: Annotated[int, _keep("daily", "days that have one")] = 0,
    keep_weekly: Annotated[int, _keep("weekly", "ISO weeks that have one")] = 0,
    keep_monthly: Annotated[int, _keep("monthly", "months that have one")] = 0,
    keep_yearly: Annotated[int, _keep("yearly", "years that have one")] = 0,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Say what would be removed; remove nothing.")] = False,
    target: TargetOption = None,
    embedded: EmbeddedOption = False,
    json_output: JsonOption = False,
) -> None:
    """Remove the backups a retention policy does not keep (restic's forget semantics).

    The policy applies to each target's backups apart (safety backups apart from the
    others); periods are UTC days, ISO weeks, months and years of each backup's created_at.
    Never removed, whatever the policy: the newest valid backup of each target, the backup
    the last GO run drilled, a backup whose manifest cannot be read. Prints every backup,
    kept or removed, with the reasons. Environment: OPS_ARTIFACTS_DIR. On s3:// (see
    `aris3nb backup --help`) every version of a removed backup's objects is deleted, manifest
    first; a backup under Object Lock stays, "under lock until" its date. Exit 0 done (or the
    dry run shown); 1 the store failed; 2 no --keep-* count given, or a count below -1, a
    missing bucket or refused credentials.
    """
    from aris3nb.backup import profiles
    from aris3nb.backup.retention import Forgotten, Policy, drilled_by_go_runs, forget
    from aris3nb.evidence.runner import RUNS_DIRNAME
    from aris3nb.storage import artifacts

    policy = Policy(keep_last, keep_hourly, keep_daily, keep_weekly, keep_monthly, keep_yearly)
    profile = target_profile(target, embedded)
    current = settings()
    chosen = None if profiles.is_reference(profile) else profile
    result: Forgotten
    if current.artifacts.repository_url:
        result, repository = artifacts.forget_remote(current, policy, dry_run=dry_run, profile=chosen)
        _warn_repository(repository, json_output)
    else:
        result = forget(
            current,
            policy,
            dry_run=dry_run,
            drilled=drilled_by_go_runs(current.artifacts.dir / RUNS_DIRNAME),
            profile=chosen,
        )
    if json_output:
        _print_json(result.as_evidence())
        return
    say(f"policy: keep {policy.describe()}{' (dry run: nothing removed)' if dry_run else ''}")
    group = None
    for entry in sorted(result.entries, key=lambda e: e.group):  # each target once, newest first within it
        if entry.group != group:
            group = entry.group
            say(f"{group}:")
        verb = "keep  " if entry.keep else ("would remove" if dry_run else "removed")
        say(f"  {verb:<12} {entry.name}  {entry.created_at}  {'; '.join(entry.reasons)}")
    kept, removed = len(result.kept), len(result.to_remove)
    say(f"{kept} backup{'' if kept == 1 else 's'} kept, {removed} {'would be ' if dry_run else ''}removed")
    for name, objects in sorted(getattr(result, "partial", {}).items()):
        say(
            f"left alone: backups/{name}/ holds {objects} object{'' if objects == 1 else 's'} but no manifest (a "
            f"backup killed part way, or one being made; never restored): `backup create --name {name}` removes "
            "them once they are stale"
        )
