"""The main job (``aris3nb run``): the playbook's phase notebooks, run into an evidence bundle."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from aris3nb.cli._common import (
    EmbeddedOption,
    JsonOption,
    RetainDaysOption,
    RetentionModeOption,
    TargetOption,
    err,
    out,
    run_outcome,
    say,
    settings,
    table_console,
    target_profile,
)
from aris3nb.cli.present import first_reasons
from aris3nb.core.errors import Aris3nbError, RunFailed, UsageError
from aris3nb.core.settings import EMBEDDED_SCALE, is_repository_url

PHASE_STYLES = {
    "completed": "green",
    "failed": "bold red",
    "error": "bold red",
    "timeout": "bold red",
    "dead_kernel": "bold red",
    "interrupted": "bold red",
    "skipped": "dim",
}
VERDICT_STYLES = {
    "PASS": "bold green",
    "PASS_WITH_WARNINGS": "bold yellow",
    "FAIL": "bold red",
    "INTERRUPTED": "bold magenta",
}


def run(
    phases: Annotated[
        list[str] | None,
        typer.Argument(
            help="Phases to run, in playbook order: pre_deploy deploy post_deploy drill rollback. Default: the first "
            "four, then rollback when a trigger fires.",
            show_default=False,
            metavar="PHASES",
        ),
    ] = None,
    base_url: Annotated[
        str | None,
        typer.Option(
            "--base-url",
            help="Probe this deployed service instead of serving one (its database: --database-url or "
            "DATABASE_URL, needed for the backup, the drill and the integrity check).",
            show_default=False,
            metavar="URL",
        ),
    ] = None,
    database_url: Annotated[
        str | None,
        typer.Option(
            "--database-url",
            help="The target database. Given alone, the reference service is served over it for the "
            "run. Default: DATABASE_URL; neither given: the embedded default (a fresh SQLite database, migrated and "
            "seeded, served on a free loopback port, removed afterwards).",
            show_default=False,
            metavar="URL",
        ),
    ] = None,
    out_dir: Annotated[
        str | None,
        typer.Option(
            "--out",
            help="Artifacts folder (the bundle goes to OUT/runs/<run_id>/), or s3://BUCKET[/PREFIX]: the run is "
            "staged in a temporary folder, linked to the bucket's newest sealed run, then pushed (evidence.json "
            "last) and runs/HEAD.json moved to it. Default: OPS_ARTIFACTS_DIR.",
            show_default=False,
            metavar="DIR|URL",
        ),
    ] = None,
    retain_days: RetainDaysOption = None,
    retention_mode: RetentionModeOption = None,
    strict: Annotated[bool, typer.Option("--strict", help="Warnings fail too (NO-GO, exit 1).")] = False,
    yes: Annotated[
        bool,
        typer.Option(
            "--yes",
            help="Confirm that a rollback may restore into the target database: the backup this run's deploy "
            "phase made, and only when a trigger fired after it (a rollback run alone: --manifest, else the newest "
            "valid backup made from the target).",
        ),
    ] = False,
    manifest: Annotated[
        Path | None,
        typer.Option(
            "--manifest",
            help="The backup the drill (run without deploy) or a rollback run alone takes, instead of the "
            "newest backup made from the target.",
            show_default=False,
            metavar="PATH",
        ),
    ] = None,
    terminate_sessions: Annotated[
        bool,
        typer.Option(
            "--terminate-sessions",
            help="Let a rollback restore end other sessions that hold locks or transactions on "
            "the target (PostgreSQL; each one is logged). Without it such sessions refuse the restore.",
        ),
    ] = False,
    revert_command: Annotated[
        str | None,
        typer.Option(
            "--revert-command",
            help="Command a rollback runs to revert the app (recorded with its output). "
            "Default: OPS_REVERT_COMMAND; none: the step is skipped.",
            show_default=False,
            metavar="COMMAND",
        ),
    ] = None,
    budget: Annotated[
        list[str] | None,
        typer.Option(
            "--budget",
            help="A p95 budget NAME=MS (health, stock, reports, exports); repeatable.",
            show_default=False,
            metavar="NAME=MS",
        ),
    ] = None,
    pytest_target: Annotated[
        str | None,
        typer.Option(
            "--pytest-target",
            help="The smoke tests. Default: the profile's [smoke] suite, else the playbook's own.",
            show_default=False,
            metavar="PATH[::TEST]",
        ),
    ] = None,
    exports_dir: Annotated[
        Path | None,
        typer.Option(
            "--exports-dir",
            help="The service's export files (backed up beside the database, checked by the integrity "
            "check). Default: the profile's [backup] exports folder, else ARIS3_EXPORTS_DIR.",
            show_default=False,
            metavar="DIR",
        ),
    ] = None,
    cell_timeout: Annotated[
        float | None,
        typer.Option(
            "--cell-timeout",
            min=0.001,
            help="Seconds a notebook cell may run before the phase is stopped (timeout). "
            "Default: OPS_CELL_TIMEOUT_SEC, else 600.",
            show_default=False,
            metavar="SECONDS",
        ),
    ] = None,
    scale: Annotated[
        int, typer.Option(min=0, help="Stock rows seeded into the embedded default.", metavar="ROWS")
    ] = EMBEDDED_SCALE,
    signing_key: Annotated[
        Path | None,
        typer.Option(
            "--signing-key",
            help="Sign evidence.json with this Ed25519 private key (PEM; see `aris3nb evidence keygen`).",
            show_default=False,
            metavar="PATH",
        ),
    ] = None,
    rerun: Annotated[
        str | None,
        typer.Option(
            "--rerun",
            help="Run one phase of an earlier run again (with --phase), with its parameters, against a fresh "
            "target of the same kind.",
            show_default=False,
            metavar="RUN_ID",
        ),
    ] = None,
    rerun_phase: Annotated[
        str | None, typer.Option("--phase", help="The phase --rerun runs.", show_default=False, metavar="PHASE")
    ] = None,
    public_key: Annotated[
        Path | None,
        typer.Option(
            "--public-key",
            help="With --rerun: the run must be signed by this Ed25519 public key (PEM).",
            show_default=False,
            metavar="PATH",
        ),
    ] = None,
    target: TargetOption = None,
    embedded: EmbeddedOption = False,
    json_output: JsonOption = False,
) -> None:
    """Run the ARIS3 Recovery Playbook as notebooks and seal the evidence bundle.

    With an s3:// artifacts place (--out or OPS_ARTIFACTS_DIR; AWS_ENDPOINT_URL, AWS_ACCESS_KEY_ID,
    AWS_SECRET_ACCESS_KEY, AWS_DEFAULT_REGION or AWS_PROFILE say where and who) a run that could
    not be pushed keeps its staging folder and names it (exit 1).

    Exit 0: GO (PASS, or PASS_WITH_WARNINGS without --strict); 1: NO-GO (a phase failed, did not
    complete, or a rollback trigger fired), or the store failed; 2: bad usage (a missing bucket,
    refused credentials, retention asked of a bucket without Object Lock); 130: interrupted (the
    bundle of what ran is still sealed, and pushed).
    """
    from aris3nb.evidence.forks import early_fork_server

    current = settings()
    # The kernels' fork server warms up while the runner's modules load (about 1 s of a run).
    with early_fork_server(current) as fork_server:
        from aris3nb.evidence.runner import RunOptions, rerun_options, run_playbook
        from aris3nb.gate.runner import parse_budgets
        from aris3nb.phases import PHASES

        profile = target_profile(target, embedded)
        remote_url = out_dir if is_repository_url(out_dir) else (None if out_dir else current.artifacts.repository_url)
        if remote_url is None and (retain_days is not None or retention_mode is not None):
            raise UsageError(
                "--retain-days and --retention-mode need --out s3://BUCKET[/PREFIX] (or OPS_ARTIFACTS_DIR)"
            )
        if remote_url is not None and rerun:
            raise UsageError("--rerun reads a run of a local artifacts folder: give --out DIR (not s3://)")
        options = RunOptions(
            phases=tuple(phases or ()),
            base_url=base_url,
            database_url=database_url,
            out=Path(out_dir) if out_dir and remote_url is None else None,
            strict=strict,
            confirm_restore=yes,
            revert_command=revert_command,
            manifest=manifest,
            terminate_sessions=terminate_sessions,
            exports_dir=exports_dir,
            budgets_ms=parse_budgets(budget),
            pytest_target=pytest_target,
            cell_timeout_sec=cell_timeout,
            scale=scale,
            signing_key=signing_key,
            profile=profile,
        )
        if rerun_phase and rerun_phase not in (known := [phase.name for phase in PHASES]):
            raise UsageError(f"--phase {rerun_phase!r} is not a phase of the playbook: {', '.join(known)}")
        if rerun_phase and not rerun:
            raise UsageError(f"--phase is for --rerun RUN_ID; to run phases, name them: aris3nb run {rerun_phase}")
        if rerun:
            if not rerun_phase or phases:
                raise UsageError("--rerun RUN_ID needs --phase PHASE (and no PHASE arguments)")
            options = rerun_options(current, rerun, rerun_phase, options, public_key=public_key)
        display = Progress(
            SpinnerColumn(),
            TextColumn("{task.description}"),
            TextColumn("{task.fields[cell]}"),
            TimeElapsedColumn(),
            console=err,
            disable=json_output or not err.is_terminal,
        )
        task = display.add_task("starting the target", cell="", total=None)
        started = time.monotonic()

        def on_phase(name: str, title: str) -> None:
            display.update(task, description=title, cell="")
            if not err.is_terminal and not json_output:
                err.print(f"[{time.monotonic() - started:6.1f} s] {title}", markup=False, highlight=False)

        with display:
            keywords: dict[str, Any] = {
                "fork_server": fork_server,
                "on_phase": on_phase,
                "on_cell": lambda i, n: display.update(task, cell=f"cell {i}/{n}"),
            }
            if remote_url is None:
                result = run_playbook(options, current, **keywords)
                document = json.loads(result.evidence_path.read_text(encoding="utf-8"))
                where: dict[str, str | None] = {
                    "bundle": str(result.run_dir),
                    "evidence": str(result.evidence_path),
                    "index": str(result.index_path) if result.index_path else None,
                }
                warnings = list(result.warnings)
            else:
                from aris3nb.storage.runs import run_on_store

                stored = run_on_store(
                    remote_url, options, current, retain_days=retain_days, mode=retention_mode, **keywords
                )
                result, document, warnings = stored.result, stored.document, stored.warnings
                pushed = stored.pushed
                where = {"bundle": pushed.run_url, "evidence": pushed.evidence_url, "index": pushed.index_url}
    sealed = [w for w in document.get("warnings") or [] if w not in warnings]  # e.g. its lock overdue
    warnings = sealed + warnings
    if json_output:
        summary = {
            key: document[key]
            for key in ("run_id", "verdict", "decision", "exit_code", "phases", "triggers", "metrics")
        }
        out.print_json(json.dumps({**summary, **where, "backups_forgotten": result.forgotten, "warnings": warnings}))
    else:
        _print_summary(document, str(where["bundle"]), where["index"])
        if result.forgotten:
            say(
                f"removed {len(result.forgotten)} older backup{'' if len(result.forgotten) == 1 else 's'} of the "
                f"embedded default (it keeps its newest {current.artifacts.embedded_keep_last}: OPS_EMBEDDED_KEEP_LAST)"
            )
    for warning in warnings:
        err.print(f"warning: {warning}", markup=False, highlight=False, soft_wrap=True)
    if document["parameters"].get("rerun_warning"):
        err.print(
            f"warning: {document['parameters']['rerun_warning']} (verdict at best PASS_WITH_WARNINGS)",
            markup=False,
            highlight=False,
            soft_wrap=True,
        )
    if result.index_problem:  # the bundle is sealed and valid, but the artifacts folder is in trouble
        raise Aris3nbError(f"run {result.run_id} sealed ({result.decision}), but {result.index_problem}")
    if result.exit_code:
        raise RunFailed(
            f"run {result.run_id}: {run_outcome(result.decision, result.verdict)}; bundle {where['bundle']}",
            where["bundle"],
            result.exit_code,
        )


def _print_summary(document: dict[str, Any], run_dir: str, index_path: str | None) -> None:
    table = Table(title=f"playbook run {document['run_id']}")
    for column in ("phase", "status", "verdict", "duration", "reasons"):
        table.add_column(column, overflow="fold", no_wrap=column != "reasons")
    for phase in document["phases"]:
        table.add_row(
            phase["phase"],
            Text(phase["status"], style=PHASE_STYLES.get(phase["status"], "")),
            Text(phase["verdict"] or "-", style=VERDICT_STYLES.get(phase["verdict"] or "", "")),
            f"{phase['duration_sec']:.1f} s",
            Text("\n".join(first_reasons(phase["reasons"], 5))),
        )
    table_console().print(table)
    for trigger in document.get("triggers") or []:
        say(f"rollback trigger: {trigger['kind']} ({trigger['phase']}): {trigger['reason']}")
    if document["decision"] == "INTERRUPTED":
        line = Text("INTERRUPTED ", style="bold magenta")
        line.append(
            f"after {document['duration_sec']:.1f} s: stopped before the playbook finished, so neither GO nor "
            "a verdict; what ran is sealed",
            style="",
        )
    else:
        line = Text(f"{document['decision']} ", style="bold green" if document["decision"] == "GO" else "bold red")
        line.append(f"verdict {document['verdict']} in {document['duration_sec']:.1f} s", style="")
    out.print(line)
    say(f"evidence: {run_dir} (check it: aris3nb evidence verify {run_dir})")
    if index_path is not None:
        say(f"index:    {index_path}")


def register(app: typer.Typer) -> None:
    app.command("run")(run)
