"""Phase 4, the rollback: what it does once a trigger fired (each phase declares its own
triggers: ``aris3nb.phases``).

Procedure, each step a check whose result is also appended to the rollback log (JSON
lines): declare NO-GO and write the deploy-freeze marker; run the revert command (none by
default; its exit code and output are recorded; none when this run deployed nothing); restore,
only when confirmed (a safety backup of the target is taken first), the backup the run's
deploy phase made — nothing when the triggers fired before it was taken (nothing was deployed) — or, for a rollback the
operator runs alone, the newest valid backup made from the target (``backup.catalog``);
then /health, /ready and smoke again against the target.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import shlex
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aris3nb.backup.catalog import choose_backup
from aris3nb.backup.restore import RestoreResult, append_rollback_log, discarded_rows, restore_backup
from aris3nb.core.checks import CheckResult, Outcome, Registry, Verdict, failed, passed, skipped, verdict_of, warned
from aris3nb.core.errors import NoBackup, UsageError
from aris3nb.core.files import write_json_evidence
from aris3nb.core.ids import utc_text
from aris3nb.core.redact import command_secrets, redact_text, redact_url
from aris3nb.core.settings import Settings
from aris3nb.phases.base import Phase
from aris3nb.targets.profile import LoadedProfile

PHASE = Phase(
    name="rollback",
    notebook="05-rollback.ipynb",
    title="Rollback: NO-GO, revert, restore, verify",
    parameters=(
        "run_id",
        "base_url",
        "database_url",
        "pytest_target",
        "triggers",
        "confirm_restore",
        "manifest",
        "no_restore_reason",
        "no_revert_reason",
        "terminate_sessions",
        "profile",
    ),
)

#: The gate checks run again once the rollback is done.
VERIFY_CHECKS = ("smoke", "http.health", "http.ready")
REVERT_OUTPUT_LIMIT = 20_000


@dataclass(frozen=True)
class RollbackOptions:
    run_id: str
    triggers: tuple[str, ...]
    database_url: str | None = None  # default DATABASE_URL
    base_url: str | None = None  # default ARIS3_BASE_URL
    pytest_target: str | None = None
    confirm_restore: bool = False
    #: The backup to restore: in a playbook run, the one its deploy phase made. None, and no
    #: ``no_restore_reason``: the newest valid backup of the target (an operator's rollback).
    manifest: Path | str | None = None
    #: Why nothing is to be restored (the triggers fired before this run's backup was taken,
    #: or the backup itself failed its drill): NO-GO and the freeze stand, the data is untouched.
    no_restore_reason: str | None = None
    #: Why the app is not reverted: this run deployed nothing (every trigger fired before its
    #: deploy phase made its backup), so the running release is not the one to undo.
    no_revert_reason: str | None = None
    terminate_sessions: bool = False
    #: The revert command (--revert-command / OPS_REVERT_COMMAND); None: the profile's
    #: ``rollback.revert_command`` (with its ``revert_timeout_sec``), run in the target's root.
    revert_command: str | None = None
    revert_timeout_sec: float = 300.0
    #: The target profile (None: the reference, which has no revert command of its own).
    profile: LoadedProfile | None = None
    #: The last stable release, for a profile's revert command that names ``{release}``.
    release: str | None = None


@dataclass
class _RollbackContext:
    options: RollbackOptions
    settings: Settings
    restored: RestoreResult | None = None
    files: dict[str, str] = field(default_factory=dict)


@dataclass
class RollbackReport:
    """The rollback's steps and checks; the run it belongs to is NO-GO whatever they say."""

    results: list[CheckResult]
    restored: RestoreResult | None
    freeze_marker: Path
    verify_summary: Path  # the gate summary of the checks after the rollback

    @property
    def verdict(self) -> Verdict:
        return verdict_of(self.results, strict=False)


ROLLBACK_STEPS: Registry[_RollbackContext] = Registry()


def _log(ctx: _RollbackContext, action: str, **entry: Any) -> None:
    append_rollback_log(ctx.settings, {"action": action, "run_id": ctx.options.run_id, **entry})


@ROLLBACK_STEPS.register("rollback.no_go")
def _declare_no_go(ctx: _RollbackContext) -> Outcome:
    """NO-GO is declared and deploys are frozen before anything else is touched."""
    marker = {
        "declared_at": utc_text(dt.datetime.now(dt.UTC)),
        "run_id": ctx.options.run_id,
        "triggers": list(ctx.options.triggers),
        "lift": f"remove {ctx.settings.artifacts.show(ctx.settings.artifacts.freeze_marker)} once the cause is "
        "understood and fixed",
    }
    path = write_json_evidence(
        ctx.settings.artifacts.freeze_marker.parent, ctx.settings.artifacts.freeze_marker.name, marker
    )
    _log(ctx, "no_go", triggers=list(ctx.options.triggers), freeze_marker=str(path))
    return passed(
        f"NO-GO declared; deploys frozen ({path})", freeze_marker=str(path), triggers=list(ctx.options.triggers)
    )


def _profile_revert(ctx: _RollbackContext) -> tuple[list[str], Path] | str | None:
    """The profile's ``rollback.revert_command`` as argv with its placeholders filled, and the
    folder it runs in (the target's root); a reason when it cannot be filled; None when the
    profile names none."""
    profile = ctx.options.profile
    if profile is None or not profile.profile.rollback.revert_command:
        return None
    target = profile.profile.target
    python = target.python or sys.executable
    if target.python and ("/" in target.python or "\\" in target.python):
        candidate = Path(target.python).expanduser()
        python = str(candidate if candidate.is_absolute() else profile.root / candidate)
    values = {"python": python, "root": str(profile.root)}
    if ctx.options.release:
        values["release"] = ctx.options.release
    argv = []
    for arg in profile.profile.rollback.revert_command:
        try:
            argv.append(arg.format_map(values))
        except KeyError as exc:
            name = exc.args[0]
            if name == "release":
                return (
                    "the profile's revert command names {release}: give the last stable release to revert to "
                    "(the rollback's release option)"
                )
            return (
                f"the profile's revert command names an unknown placeholder {{{name}}} (known: python, root, release)"
            )
        except (ValueError, IndexError) as exc:
            return f"the profile's revert command argument {arg!r} is not a valid template: {exc}"
    return argv, profile.root


@ROLLBACK_STEPS.register("rollback.revert")
def _revert(ctx: _RollbackContext) -> Outcome:
    """The app goes back to its last stable release, by the configured revert command (or,
    when none is given, the profile's ``rollback.revert_command``, run in the target's root)."""
    if ctx.options.no_revert_reason:
        _log(ctx, "revert", status="NOT_REVERTED", reason=ctx.options.no_revert_reason)
        return skipped(f"nothing reverted: {ctx.options.no_revert_reason}")
    command = ctx.options.revert_command
    timeout = ctx.options.revert_timeout_sec
    cwd: Path | None = None
    argv: list[str] | None = None
    if not command:
        from_profile = _profile_revert(ctx)
        if isinstance(from_profile, str):
            _log(ctx, "revert", status="FAILED", error=from_profile)
            return failed(f"revert command could not start: {from_profile}")
        if from_profile is not None:
            argv, cwd = from_profile
            command = shlex.join(argv)
            assert ctx.options.profile is not None
            timeout = ctx.options.profile.profile.rollback.revert_timeout_sec
    secrets = command_secrets(command or "")
    shown = redact_text(command or "", secrets)
    if not command:
        _log(ctx, "revert", status="SKIPPED")
        return skipped(
            "no revert command configured (--revert-command / OPS_REVERT_COMMAND, or the profile's "
            "rollback.revert_command)"
        )
    try:
        argv = argv if argv is not None else shlex.split(command)
        run = subprocess.run(
            argv, capture_output=True, text=True, timeout=timeout, cwd=cwd, check=False, stdin=subprocess.DEVNULL
        )
    except subprocess.TimeoutExpired:
        _log(ctx, "revert", command=shown, status="TIMEOUT")
        return failed(f"revert command timed out after {timeout:.0f} s: {shown}", command=shown)
    except (OSError, ValueError) as exc:
        _log(ctx, "revert", command=shown, status="FAILED", error=redact_text(str(exc), secrets))
        return failed(f"revert command could not start: {redact_text(str(exc), secrets)}", command=shown)
    output = redact_text((run.stdout + run.stderr)[-REVERT_OUTPUT_LIMIT:], secrets)
    status = "PASS" if run.returncode == 0 else "FAIL"
    _log(ctx, "revert", command=shown, exit_code=run.returncode, status=status, output=output)
    evidence = {
        "command": shown,
        "exit_code": run.returncode,
        "output": output,
        "cwd": str(cwd) if cwd is not None else None,
    }
    if run.returncode != 0:
        return failed(f"revert command exited {run.returncode}: {shown}", **evidence)
    return passed(f"revert command exited 0: {shown}", **evidence)


@ROLLBACK_STEPS.register("rollback.restore")
def _restore(ctx: _RollbackContext) -> Outcome:
    """The backup this release was deployed over is restored, only when confirmed (a safety
    backup comes first), and only one made from the target; nothing when nothing was deployed."""
    options = ctx.options
    if options.no_restore_reason:
        _log(ctx, "restore", status="NOTHING_TO_RESTORE", reason=options.no_restore_reason)
        said = f"nothing restored: {options.no_restore_reason}"
        if options.no_revert_reason:  # nothing was deployed: there is nothing to undo (as the revert says)
            return skipped(said, restore="none", reason=options.no_restore_reason)
        # Deployed, but its backup is not to be trusted: right not to restore it, yet the data is
        # not rolled back — a person must act, never a plain PASS.
        return warned(said, restore="none", reason=options.no_restore_reason)
    if options.manifest:
        manifest, reason = Path(options.manifest), "the backup this run's deploy phase made (or the one named)"
        selection: dict[str, Any] = {"manifest": str(manifest), "reason": reason}
    else:
        try:
            choice = choose_backup(
                ctx.settings, str(options.database_url), require_valid=True, purpose="restore", profile=options.profile
            )
        except NoBackup as exc:
            _log(ctx, "restore", status="NO_BACKUP", error=str(exc))
            return failed(str(exc))
        assert choice.manifest is not None
        manifest, reason, selection = choice.manifest, choice.reason, choice.as_evidence()
    if not options.confirm_restore:
        _log(ctx, "restore", backup=str(manifest), status="NOT_CONFIRMED", selection=selection)
        return warned(
            f"not restored: confirm with --yes (or the confirm_restore parameter) to restore "
            f"{manifest.parent.name} ({reason})",
            backup=str(manifest),
            selection=selection,
        )
    _log(ctx, "restore", backup=str(manifest), status="CHOSEN", selection=selection)
    ctx.restored = restore_backup(
        manifest,
        str(options.database_url),
        settings=ctx.settings,
        confirmed=True,
        terminate_sessions=options.terminate_sessions,
        profile=options.profile,
    )
    said = (
        f"restored {ctx.restored.backup} ({reason}) into {redact_url(str(options.database_url))} in "
        f"{ctx.restored.duration_sec:.1f} s; {discarded_rows(ctx.restored.discarded)} discarded, kept in the "
        f"safety backup {ctx.restored.safety_backup.name}"
    )
    evidence = {
        "backup": str(manifest),
        "safety_backup": str(ctx.restored.safety_backup),
        "selection": selection,
        "discarded": ctx.restored.discarded,
        "warnings": ctx.restored.warnings,
    }
    if ctx.restored.warnings:  # the database is back, but not all of what it refers to
        return warned(f"{said}; but {'; '.join(ctx.restored.warnings)}", **evidence)
    return passed(said, **evidence)


def run_rollback(options: RollbackOptions, settings: Settings) -> RollbackReport:
    """Run the rollback procedure; the checks after it are the gate's ``VERIFY_CHECKS``
    against the target. A failing step is in the verdict, never raised."""
    from aris3nb.gate import GateOptions, run_gate

    if not options.triggers:
        raise UsageError("a rollback needs at least one trigger (the reason it happens)")
    options = dataclasses.replace(
        options,
        database_url=options.database_url or settings.target.database_url,
        base_url=options.base_url or settings.target.base_url,
    )
    if not options.database_url or not options.base_url:
        raise UsageError(
            "a rollback needs the target's database and service: give database_url and base_url "
            "(or DATABASE_URL and ARIS3_BASE_URL)"
        )
    context = _RollbackContext(options, settings)
    results = ROLLBACK_STEPS.run(context)
    gate_options = GateOptions(checks=VERIFY_CHECKS, base_url=options.base_url, pytest_target=options.pytest_target)
    if options.profile is not None:
        gate_options = dataclasses.replace(gate_options, profile=options.profile)
    verify = run_gate(gate_options, settings)
    results += verify.results
    report = RollbackReport(results, context.restored, settings.artifacts.freeze_marker, verify.path)
    _log(context, "verify", verdict=str(verify.verdict), gate_summary=str(verify.path))
    return report
