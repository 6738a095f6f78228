"""The release readiness gate: its checks, in order, and the run that turns them into a
verdict, a table for people and a JSON summary written to the artifacts folder.

Checks, in the order they run (each a small function registered in ``GATE_CHECKS``)::

    git                              branch and clean tree (dirty: WARN, FAIL under --strict)
    deploy.freeze                    no deploy freeze left by a rollback (OPS_ARTIFACTS_DIR/DEPLOY_FREEZE.json)
    migrations.single_head           exactly one Alembic head
    migrations.round_trip.sqlite     upgrade → downgrade base → upgrade on a disposable SQLite file
    migrations.round_trip.postgresql the same in a scratch PostgreSQL database (--postgres-url)
    target.schema                    the target database at head, equal to the models (--database-url)
    backup.freshness                 the target's newest valid backup within the RPO budget (OPS_RPO_BUDGET_SEC)
    drill.freshness                  a passing drill of a backup of the target within OPS_DRILL_MAX_AGE_DAYS
    smoke                            the pytest target, per area, against the live target
    http.health, http.ready          /health and /ready of the live target
    latency.health, .stock, .reports, .exports   p95 of each endpoint within its budget

The live target is ``--base-url``, or else the reference service started by the gate over
a freshly migrated and seeded temporary SQLite database, stopped when the gate ends.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import json
import math
import os
import platform
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa

from aris3nb import __version__, migrate
from aris3nb.core.checks import CheckResult, Outcome, Registry, failed, passed, skipped, verdict_of
from aris3nb.core.db import parse_database_url
from aris3nb.core.errors import UsageError
from aris3nb.core.files import write_json_evidence, write_text_evidence
from aris3nb.core.ids import new_run_id
from aris3nb.core.redact import redact_text, redact_url, url_password
from aris3nb.core.report import CheckReport, check_report_head, read_json_evidence, scrub
from aris3nb.gate import freshness, git, http, migrations, smoke
from aris3nb.gate.settings import MIN_LATENCY_SAMPLES, GateSettings

GATE_SUMMARY_FORMAT = "aris3nb.gate_summary"
GATE_SUMMARY_VERSION = 1
GATE_FOLDER = "gate"

#: Budget name → (path, needs the smoke account's token).
LATENCY_ENDPOINTS: dict[str, tuple[str, bool]] = {
    "health": ("/health", False),
    "stock": ("/aris3/stock", True),
    "reports": ("/aris3/reports/overview", True),
    "exports": ("/aris3/exports", True),
}


@dataclass(frozen=True)
class GateOptions:
    """What one gate run looks at. ``None`` means: not given (the check is skipped, or the
    embedded default is used for the live target)."""

    pytest_target: str | None = None
    base_url: str | None = None
    database_url: str | None = None
    postgres_url: str | None = None
    strict: bool = False
    budgets_ms: Mapping[str, float] = field(default_factory=dict)  # overrides, by budget name
    workdir: Path | None = None  # the checkout judged by `git`, and where the pytest target is; default: cwd
    script_location: Path | None = None  # another Alembic script directory (tests); default: ARIS3's
    metadata: sa.MetaData | None = None  # the models the schema must equal; default: ARIS3's
    checks: tuple[str, ...] | None = None  # run only these checks (in registry order); default: all


@dataclass(frozen=True)
class LiveTarget:
    base_url: str
    description: str
    facts: dict[str, Any] = field(default_factory=dict)


class GateReport(CheckReport):
    """The gate's run; its document is the gate summary."""

    @property
    def summary(self) -> dict[str, Any]:
        return self.document

    @property
    def summary_path(self) -> Path:
        return self.path


class _Cached:
    """A value computed once, or the error computing it raised, raised again on each use."""

    def __init__(self, compute: Callable[[], Any]) -> None:
        self._compute = compute
        self._value: Any = None
        self._error: Exception | None = None
        self._done = False

    def get(self) -> Any:
        if not self._done:
            self._done = True
            try:
                self._value = self._compute()
            except Exception as exc:  # noqa: BLE001 -- kept, and raised again to every caller
                self._error = exc
        if self._error is not None:
            raise self._error
        return self._value


class GateContext:
    """What the checks of one run share: options, settings, the live target, its client."""

    def __init__(self, options: GateOptions, settings: GateSettings, run_id: str, stack: contextlib.ExitStack) -> None:
        self.options = options
        self.settings = settings
        self.run_id = run_id
        self.stack = stack
        self.workdir = (options.workdir or Path.cwd()).absolute()
        self.folder = settings.ops_artifacts_dir / GATE_FOLDER
        self.files: dict[str, str] = {}
        self.live_description: str | None = None  # set once a check has reached the live target
        self.budgets = {**settings.budgets_ms(), **options.budgets_ms}
        self.secrets: list[str | None] = [
            settings.smoke_password.get_secret_value(), settings.seed_password.get_secret_value(),
            settings.secret_key.get_secret_value() if settings.secret_key else None,
            *(url_password(u) for u in (options.database_url, settings.database_url, options.postgres_url) if u),
            httpx.URL(options.base_url).password if options.base_url else None,
        ]
        self._target = _Cached(self._resolve_target)
        self._client = _Cached(lambda: stack.enter_context(
            http.new_client(self.live_target().base_url, settings.http_timeout_sec)))
        self._auth = _Cached(self._log_in)

    @property
    def target_database_url(self) -> str | None:
        return self.options.database_url or self.settings.database_url

    def live_target(self) -> LiveTarget:
        return self._target.get()

    def client(self) -> httpx.Client:
        return self._client.get()

    def auth_headers(self) -> dict[str, str]:
        return self._auth.get()

    def _log_in(self) -> dict[str, str]:
        token = http.log_in(self.client(), self.settings.smoke_username, self.settings.smoke_password.get_secret_value())
        self.secrets.append(token)
        return {"Authorization": f"Bearer {token}"}

    def _resolve_target(self) -> LiveTarget:
        if self.options.base_url:
            self.live_description = f"{redact_text(self.options.base_url)} (--base-url)"
            return LiveTarget(self.options.base_url, self.live_description)
        self.live_description = "embedded reference service (failed to start)"
        target = self._start_embedded()
        self.live_description = target.description
        return target

    def _start_embedded(self) -> LiveTarget:
        from aris3nb.targets.embedded import embedded_target

        made = self.stack.enter_context(embedded_target(self.settings, purpose="gate"))
        return LiveTarget(str(made.base_url), f"embedded reference service at {made.base_url} (SQLite, scale {made.scale})",
                          made.facts)


GATE_CHECKS: Registry[GateContext] = Registry()


@GATE_CHECKS.register("git")
def check_git(ctx: GateContext) -> Outcome:
    """The release is the committed code of a known branch: a dirty tree is WARN (FAIL when strict)."""
    return git.judge_git(ctx.workdir, strict=ctx.options.strict)


@GATE_CHECKS.register("deploy.freeze")
def check_deploy_freeze(ctx: GateContext) -> Outcome:
    """No release while a rollback's NO-GO stands: the freeze is lifted by a person, on purpose."""
    marker = ctx.settings.freeze_marker
    if not marker.exists():
        return passed("no deploy freeze")
    try:
        declared = json.loads(marker.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        declared = {}
    return failed(f"deploys are frozen since {declared.get('declared_at', '?')} by run {declared.get('run_id', '?')}: "
                  f"{'; '.join(declared.get('triggers') or []) or 'see the marker'}; remove {marker} to lift it",
                  marker=str(marker), declared=declared)


@GATE_CHECKS.register("migrations.single_head")
def check_single_head(ctx: GateContext) -> Outcome:
    """Exactly one Alembic head: two would make ``upgrade head`` ambiguous."""
    return migrations.judge_single_head(ctx.options.script_location)


@GATE_CHECKS.register("migrations.round_trip.sqlite")
def check_round_trip_sqlite(ctx: GateContext) -> Outcome:
    """Every downgrade really undoes its upgrade, and the migrations build the models' schema (SQLite)."""
    return migrations.round_trip_on_sqlite(script_location=ctx.options.script_location, metadata=ctx.options.metadata)


@GATE_CHECKS.register("migrations.round_trip.postgresql")
def check_round_trip_postgres(ctx: GateContext) -> Outcome:
    """The same round trip on PostgreSQL, the engine real environments run on."""
    if not ctx.options.postgres_url:
        return skipped("no --postgres-url given")
    return migrations.round_trip_on_postgres(ctx.options.postgres_url, script_location=ctx.options.script_location,
                                             metadata=ctx.options.metadata)


@GATE_CHECKS.register("target.schema")
def check_target_schema(ctx: GateContext) -> Outcome:
    """The target database is at the code's head and equal to the models; drift is FAIL."""
    url = ctx.target_database_url
    if not url:
        return skipped("no --database-url given (nor DATABASE_URL)")
    return migrations.judge_target_schema(url, script_location=ctx.options.script_location,
                                          metadata=ctx.options.metadata)


@GATE_CHECKS.register("backup.freshness")
def check_backup_freshness(ctx: GateContext) -> Outcome:
    """What a restore would lose is bounded: the target's newest valid backup is within the RPO budget."""
    return freshness.judge_backup_freshness(ctx.settings, ctx.target_database_url, base_url=ctx.options.base_url,
                                            budget_sec=ctx.settings.rpo_budget_sec)


@GATE_CHECKS.register("drill.freshness")
def check_drill_freshness(ctx: GateContext) -> Outcome:
    """A backup is known to restore only once drilled: a backup of the target passed a drill recently."""
    return freshness.judge_drill_freshness(ctx.settings, ctx.target_database_url, base_url=ctx.options.base_url,
                                           max_age_days=ctx.settings.drill_max_age_days)


@GATE_CHECKS.register("smoke")
def check_smoke(ctx: GateContext) -> Outcome:
    """Every critical area (auth, stock, transfers, POS, reports, exports) passes its smoke."""
    target = ctx.options.pytest_target
    if not target:
        return skipped("no --pytest-target given")
    live = ctx.live_target()
    env = {**os.environ, "ARIS3_SMOKE_BASE_URL": live.base_url, "ARIS3_SMOKE_USERNAME": ctx.settings.smoke_username,
           "ARIS3_SMOKE_PASSWORD": ctx.settings.smoke_password.get_secret_value()}
    run = smoke.run_pytest(target, cwd=ctx.workdir, timeout_sec=ctx.settings.smoke_timeout_sec, env=env)
    outcome = smoke.judge_smoke(run, timeout_sec=ctx.settings.smoke_timeout_sec, secrets=ctx.secrets)
    log_name = f"smoke_{ctx.run_id}.log"
    write_text_evidence(ctx.folder, log_name, redact_text(run.output, ctx.secrets))
    ctx.files["smoke_output"] = log_name
    outcome.evidence.update(target=target, against=live.description, output_file=log_name)
    if run.junit_xml is not None:
        junit_name = f"smoke_{ctx.run_id}.junit.xml"
        write_text_evidence(ctx.folder, junit_name, redact_text(run.junit_xml, ctx.secrets))
        ctx.files["smoke_junit"] = junit_name
        outcome.evidence["junit_file"] = junit_name
    return outcome


@GATE_CHECKS.register("http.health")
def check_health(ctx: GateContext) -> Outcome:
    """The process answers: /health is 200 ok."""
    outcome = http.probe_health(ctx.client())
    outcome.evidence.update(target=ctx.live_target().description, target_facts=ctx.live_target().facts)
    return outcome


@GATE_CHECKS.register("http.ready")
def check_ready(ctx: GateContext) -> Outcome:
    """The service can serve: /ready is 200 (database reachable, schema at head)."""
    return http.probe_ready(ctx.client(), expected_revision=migrate.head_revision())


def _latency_check(name: str, path: str, authenticated: bool) -> Callable[[GateContext], Outcome]:
    def check(ctx: GateContext) -> Outcome:
        plan = http.LatencyPlan(path=path, budget_ms=ctx.budgets[name], samples=ctx.settings.latency_samples,
                                warmup=ctx.settings.latency_warmup, deadline_sec=ctx.settings.latency_deadline_sec,
                                min_samples=MIN_LATENCY_SAMPLES)
        headers = ctx.auth_headers() if authenticated else None
        return http.measure_latency(ctx.client(), plan, headers)

    check.__doc__ = (f"The p95 latency of GET {path} is within its budget, measured over at least "
                     f"{MIN_LATENCY_SAMPLES} samples after a warm-up.")
    return check


for _name, (_path, _authenticated) in LATENCY_ENDPOINTS.items():
    GATE_CHECKS.add(f"latency.{_name}", _latency_check(_name, _path, _authenticated))


def validate_options(options: GateOptions) -> GateOptions:
    """Refuse, before anything runs, input the gate cannot act on (exit 2)."""
    workdir = (options.workdir or Path.cwd()).absolute()
    if not workdir.is_dir():
        raise UsageError(f"working folder {workdir} does not exist")
    base_url = http.parse_base_url(options.base_url) if options.base_url is not None else None
    if options.pytest_target is not None:
        smoke.check_pytest_target(options.pytest_target, workdir)
    for url in (options.database_url, options.postgres_url):
        if url is not None:
            parse_database_url(url)
    if options.postgres_url is not None and parse_database_url(options.postgres_url).get_backend_name() != "postgresql":
        raise UsageError(f"--postgres-url must be a postgresql:// URL, not {redact_url(options.postgres_url)}")
    if options.checks is not None:
        unknown_checks = sorted(set(options.checks) - set(GATE_CHECKS.names()))
        if unknown_checks or not options.checks:
            raise UsageError(f"unknown gate check(s) {', '.join(unknown_checks) or '(none given)'}; "
                             f"known: {', '.join(GATE_CHECKS.names())}")
    unknown = sorted(set(options.budgets_ms) - set(LATENCY_ENDPOINTS))
    if unknown:
        raise UsageError(f"unknown latency budget(s) {', '.join(unknown)}; known: {', '.join(LATENCY_ENDPOINTS)}")
    if any(not math.isfinite(value) or value <= 0 for value in options.budgets_ms.values()):
        raise UsageError("latency budgets must be positive numbers of milliseconds")
    return dataclasses.replace(options, base_url=base_url, workdir=workdir)


def run_gate(options: GateOptions, settings: GateSettings,
             on_result: Callable[[CheckResult], None] | None = None) -> GateReport:
    """Run every gate check and write the JSON summary; never raises for a failing check
    (the verdict says it), only ``UsageError`` for input it cannot act on."""
    if options.base_url is None and settings.base_url:  # ARIS3_BASE_URL names the live target
        options = dataclasses.replace(options, base_url=settings.base_url)
    options = validate_options(options)
    if options.database_url is None and settings.database_url:
        parse_database_url(settings.database_url)  # DATABASE_URL names the target: refuse it unparseable too
    run_id = new_run_id()
    started = dt.datetime.now(dt.UTC)
    with contextlib.ExitStack() as stack:
        ctx = GateContext(options, settings, run_id, stack)
        results = GATE_CHECKS.run(ctx, on_result, only=options.checks)
    finished = dt.datetime.now(dt.UTC)
    verdict = verdict_of(results, strict=options.strict)
    summary_name = f"gate_summary_{run_id}.json"
    document = {
        **check_report_head(GATE_SUMMARY_FORMAT, GATE_SUMMARY_VERSION, run_id, started, finished, results,
                            strict=options.strict),
        "inputs": _inputs(ctx),
        "code": {"aris3nb_version": __version__, "python": platform.python_version(),
                 "migration_heads": _heads_or_none(options.script_location)},
        "checks": [result.to_dict() for result in results],
        "files": {"summary": summary_name, **ctx.files},
    }
    document = scrub(document, ctx.secrets)
    try:
        path = write_json_evidence(ctx.folder, summary_name, document)
    except OSError as exc:
        raise UsageError(f"cannot write the gate summary under {ctx.folder}: {exc.strerror or exc}; "
                         "check OPS_ARTIFACTS_DIR") from exc
    return GateReport(run_id, verdict, options.strict, results, document, path)


def _heads_or_none(script_location: Path | None) -> list[str] | None:
    try:
        return migrations.heads(script_location)
    except Exception:  # noqa: BLE001 -- already reported as the migrations.single_head check
        return None


def _inputs(ctx: GateContext) -> dict[str, Any]:
    options, settings = ctx.options, ctx.settings
    return {
        "checks": list(options.checks) if options.checks is not None else "all",
        "pytest_target": options.pytest_target,
        "base_url": redact_text(options.base_url) if options.base_url else None,
        "live_target": ctx.live_description,
        "database_url": redact_url(ctx.target_database_url) if ctx.target_database_url else None,
        "postgres_url": redact_url(options.postgres_url) if options.postgres_url else None,
        "workdir": str(ctx.workdir),
        "budgets_ms": ctx.budgets,
        "latency_samples": settings.latency_samples,
        "latency_warmup": settings.latency_warmup,
        "min_latency_samples": MIN_LATENCY_SAMPLES,
        "latency_deadline_sec": settings.latency_deadline_sec,
        "http_timeout_sec": settings.http_timeout_sec,
        "smoke_timeout_sec": settings.smoke_timeout_sec,
        "smoke_username": settings.smoke_username,
        "rpo_budget_sec": settings.rpo_budget_sec,
        "drill_max_age_days": settings.drill_max_age_days,
    }


def read_gate_summary(path: Path) -> dict[str, Any]:
    """A gate summary written by ``run_gate``; unknown formats and versions are refused."""
    return read_json_evidence(path, format_name=GATE_SUMMARY_FORMAT, versions=[GATE_SUMMARY_VERSION])


def parse_budgets(items: list[str] | None) -> dict[str, float]:
    """``["stock=250", "health=100"]`` → ``{"stock": 250.0, "health": 100.0}``; ``UsageError`` otherwise."""
    budgets: dict[str, float] = {}
    for item in items or []:
        name, sep, value = item.partition("=")
        try:
            budgets[name.strip()] = float(value)
        except ValueError:
            sep = ""
        if not sep or name.strip() not in LATENCY_ENDPOINTS:
            raise UsageError(f"--budget {item!r}: expected NAME=MILLISECONDS with NAME one of {', '.join(LATENCY_ENDPOINTS)}")
        if not (math.isfinite(budgets[name.strip()]) and budgets[name.strip()] > 0):  # inf: a check that cannot fail
            raise UsageError(f"--budget {item!r}: the budget must be a finite number of milliseconds above 0")
    return budgets
