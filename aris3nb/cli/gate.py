"""The gate and the integrity check commands (``aris3nb gate``, ``aris3nb integrity``)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from aris3nb.cli._common import (
    DatabaseUrlOption,
    EmbeddedOption,
    JsonOption,
    TargetOption,
    database_url,
    err,
    out,
    say,
    table_console,
    target_profile,
)
from aris3nb.cli.present import STATUS_STYLES, results_table, verdict_text
from aris3nb.core.checks import CheckResult, Verdict
from aris3nb.core.errors import GateFailed, IntegrityFailed
from aris3nb.core.report import CheckReport
from aris3nb.core.words import count

#: Width of the table when the output is not a terminal (CI logs): wide enough for one line per check.

StrictOption = Annotated[bool, typer.Option("--strict", help="Warnings fail too (exit 1).")]


def _progress(result: CheckResult) -> None:
    """One line per finished check on an interactive terminal, while the rest still run."""
    if err.is_terminal:
        err.print(
            f"[{STATUS_STYLES[result.status]}]{result.status:<4}[/] {result.name} ({result.duration_sec:.2f} s)",
            highlight=False,
        )


def _blocking_message(what: str, verdict: Verdict, names: list[str]) -> str:
    return f"{what}: {verdict} ({', '.join(names) or 'no check passed'})"


def gate(
    pytest_target: Annotated[
        str | None,
        typer.Option(
            "--pytest-target",
            help="Smoke tests to run (PATH or PATH::NODE), e.g. tests/smoke/test_post_merge_readiness.py; "
            "a path that does not exist is a usage error (exit 2). Not given: the smoke check is skipped.",
            show_default=False,
            metavar="PATH[::TEST]",
        ),
    ] = None,
    base_url: Annotated[
        str | None,
        typer.Option(
            "--base-url",
            help="The live service to probe, e.g. https://aris3.example.internal. Not given: the gate "
            "starts the reference service over a fresh, seeded temporary SQLite database.",
            show_default=False,
            metavar="URL",
        ),
    ] = None,
    target_database_url: Annotated[
        str | None,
        typer.Option(
            "--database-url",
            help="The target environment's database, which must be at the code's head revision and "
            "equal to the models (read only). Default: DATABASE_URL; neither given: the check is skipped.",
            show_default=False,
            metavar="URL",
        ),
    ] = None,
    postgres_url: Annotated[
        str | None,
        typer.Option(
            "--postgres-url",
            help="A PostgreSQL server (postgresql://USER@HOST/DB) on which to create, round-trip and drop "
            "a scratch database aris3nb_gate_<hex>. Not given: the PostgreSQL round trip is skipped.",
            show_default=False,
            metavar="URL",
        ),
    ] = None,
    budget: Annotated[
        list[str] | None,
        typer.Option(
            "--budget",
            help="A p95 budget NAME=MS; repeatable. NAME: health, stock, reports, exports for the reference "
            "(defaults: OPS_GATE_BUDGET_*_MS), or the name of one of the target profile's [[service.endpoints]] "
            "(default: its p95_ms).",
            show_default=False,
            metavar="NAME=MS",
        ),
    ] = None,
    check: Annotated[
        list[str] | None,
        typer.Option(
            "--check",
            help="Run only this check (repeatable), e.g. http.ready; an unknown name is a usage error (exit 2) "
            "listing the checks of the target's profile. Default: every check.",
            show_default=False,
            metavar="CHECK",
        ),
    ] = None,
    strict: StrictOption = False,
    target: TargetOption = None,
    embedded: EmbeddedOption = False,
    json_output: JsonOption = False,
) -> None:
    """Release readiness gate: git, migrations (single head, round trip, target at head),
    per-area smoke, /health and /ready, p95 latency — as the target's profile describes its
    service and smoke suite. Exit 0 on PASS or PASS_WITH_WARNINGS,
    1 on FAIL (or on warnings with --strict), 2 on bad usage. The JSON summary is always
    written to OPS_ARTIFACTS_DIR/gate/gate_summary_<run_id>.json.
    """
    from aris3nb.core.settings import load_settings
    from aris3nb.gate import GateOptions, run_gate
    from aris3nb.gate.runner import latency_names, parse_budgets

    loaded = target_profile(target, embedded)
    options = GateOptions(
        pytest_target=pytest_target,
        base_url=base_url,
        database_url=target_database_url,
        postgres_url=postgres_url,
        strict=strict,
        budgets_ms=parse_budgets(budget, known=latency_names(loaded)),
        checks=tuple(check) if check else None,
        profile=loaded,
    )
    report = run_gate(options, load_settings(), on_result=_progress)
    _show(report, "release readiness gate", "summary", GateFailed, json_output=json_output)


def integrity(
    database_url_option: DatabaseUrlOption = None,
    exports_dir: Annotated[
        Path | None,
        typer.Option(
            "--exports-dir",
            help="Folder of the export files. Default: ARIS3_EXPORTS_DIR, else the embedded default's.",
            show_default=False,
            metavar="DIR",
        ),
    ] = None,
    idempotency_max_age_sec: Annotated[
        float | None,
        typer.Option(
            "--idempotency-max-age-sec",
            min=0.001,
            help="Idempotency records in progress longer than this WARN. "
            "Default: OPS_INTEGRITY_IDEMPOTENCY_MAX_AGE_SEC (900).",
            show_default=False,
            metavar="SECONDS",
        ),
    ] = None,
    strict: StrictOption = False,
    target: TargetOption = None,
    embedded: EmbeddedOption = False,
    json_output: JsonOption = False,
) -> None:
    """Post-go-live integrity check: ARIS3's invariants (revision, stock, transfers, POS, cash,
    exports, idempotency, tenancy) on a read-only connection. Exit 0 on PASS or
    PASS_WITH_WARNINGS, 1 on FAIL (or on warnings with --strict), 2 when the database cannot
    be opened. The JSON report is written to OPS_ARTIFACTS_DIR/integrity/.
    """
    from aris3nb.core.settings import load_settings
    from aris3nb.integrity import IntegrityOptions, run_integrity_check

    loaded = target_profile(target, embedded)
    settings = load_settings()
    options = IntegrityOptions(
        database_url=database_url(database_url_option),
        exports_dir=exports_dir or loaded.exports_dir() or settings.resolved_exports_dir(),
        strict=strict,
        idempotency_max_age_sec=idempotency_max_age_sec or settings.integrity.idempotency_max_age_sec,
        statement_timeout_sec=settings.integrity.statement_timeout_sec,
    ).for_profile(loaded)
    report = run_integrity_check(options, artifacts_dir=settings.artifacts.dir, on_result=_progress)
    _show(
        report,
        "integrity check",
        "report",
        IntegrityFailed,
        json_output=json_output,
        title="post-go-live integrity check",
    )


def _show(
    report: CheckReport,
    what: str,
    document_label: str,
    failure: type[GateFailed | IntegrityFailed],
    *,
    json_output: bool,
    title: str | None = None,
) -> None:
    """Print a finished run (its JSON document, or the table, verdict and file), then raise
    ``failure`` naming the blocking checks when the verdict fails."""
    if json_output:
        out.print_json(json.dumps(report.document))
    else:
        table_console().print(results_table(report.results, title=f"{title or what} {report.run_id}"))
        out.print(verdict_text("verdict", report.verdict, strict=report.strict))
        not_applicable = (report.document.get("not_applicable") or {}).get("checks") or []
        if not_applicable:
            say(
                f"{count(len(not_applicable), 'check')} not applicable here (WARN; --strict fails them): "
                f"{', '.join(map(str, not_applicable))}"
            )
        say(f"{document_label}: {report.path}")
    if report.exit_code:
        names = [result.name for result in report.blocking]
        raise failure(_blocking_message(what, report.verdict, names), names)


def register(app: typer.Typer) -> None:
    """Add this module's commands to the ``aris3nb`` application."""
    app.command("gate")(gate)
    app.command("integrity")(integrity)
