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

That is the list for the built-in reference profile. A run judges its target with
``GateOptions.profile`` (a target profile, ``aris3nb.toml``), and ``gate_checks(profile)`` is
the list it runs: the same checks, in the same order, but

* ``http.health`` and ``http.ready`` read the profile's ``[service.health]`` and
  ``[service.ready]`` (paths, JSON pointers, expected values; the revision is compared with
  the target's code head only where the service reports one);
* the latency checks are the profile's ``[[service.endpoints]]``, one ``latency.<name>``
  each (its query, expected status and p95 budget; authenticated as ``[service.login]``
  says), or one ``latency`` WARN when it declares none;
* ``smoke`` runs the profile's ``[smoke]`` suite (or ``--pytest-target``) with the target's
  own interpreter in its root, telling it the live base URL and the smoke account through
  the variables ``[service.smoke_account]`` names, and maps its tests to the areas by the
  ``[[smoke.areas]]`` rules;
* the migration checks and ``target.schema`` FAIL for a profile whose code is not
  aris3nb's reference (``[target] python`` set): they do not read a foreign Alembic history yet.

The live target is ``--base-url``, or else (built-in reference profile only) the reference
service started by the gate over a freshly migrated and seeded temporary SQLite database,
stopped when the gate ends.

The reference smoke suite (a pytest subprocess) starts with the gate, before the checks that
neither load the service nor time it (``BESIDE_SMOKE``: git, the freeze, the migrations on their
disposable databases, the target's schema, the catalogs), and runs beside them; the smoke check
waits for it in its turn (its evidence names the checks it ran beside). /health, /ready and the
latency sampling come after it, with nothing else running.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import importlib
import json
import math
import os
import platform
import shutil
import sys
import time
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa

from aris3nb import __version__, migrate
from aris3nb.core.checks import (
    CheckFunction,
    CheckResult,
    Outcome,
    Registry,
    Status,
    failed,
    passed,
    skipped,
    verdict_of,
    warned,
)
from aris3nb.core.db import parse_database_url
from aris3nb.core.errors import Aris3nbError, ProbeFailed, UsageError
from aris3nb.core.files import require_writable_folder, write_json_evidence, write_text_evidence
from aris3nb.core.ids import RUN_ID_PATTERN, new_run_id
from aris3nb.core.redact import redact_text, redact_url, url_password
from aris3nb.core.report import CheckReport, check_report_head, read_json_evidence, scrub
from aris3nb.core.settings import MIN_LATENCY_SAMPLES, Settings
from aris3nb.core.stale import owner_is_gone
from aris3nb.gate import freshness, git, http, migrations, smoke
from aris3nb.targets.profile import REFERENCE, Endpoint, LoadedProfile
from aris3nb.targets.revision import cached_code_revision

#: Names the folder of a playbook run's kernels still booting (a file each, holding its process
#: id, removed once it has booted: ``aris3nb.evidence.kernels``). The latency checks wait for it
#: to empty before they sample: no kernel boots while latency is sampled.
BOOTING_ENV = "ARIS3NB_BOOTING_DIR"
#: The longest the latency checks wait for kernels to finish booting (then they sample, and say so).
BOOTING_WAIT_SEC = 120.0

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
    profile: LoadedProfile = field(default_factory=lambda: LoadedProfile(REFERENCE, None, None))  # the target's
    #: The run the gate belongs to (a playbook run's one id): its summary and files are named
    #: after it. Default: a run id of its own.
    run_id: str | None = None
    #: Where the summary and its files are written (a phase's folder of the run's bundle).
    #: Default: OPS_ARTIFACTS_DIR/gate.
    folder: Path | None = None


def is_builtin_reference(loaded: LoadedProfile) -> bool:
    """The built-in reference profile (the bundled double): the gate's original contract."""
    return loaded.path is None and loaded.profile == REFERENCE


def runs_reference_code(loaded: LoadedProfile) -> bool:
    """Whether the target's code is aris3nb's reference (no interpreter of its own)."""
    return loaded.profile.target.python is None


def target_python(loaded: LoadedProfile) -> str:
    """The target's own interpreter (``[target] python``: a path, absolute or relative to the
    target's root, or a command name on PATH, as ``aris3nb.targets.code`` reads it); aris3nb's
    own when the profile names none. One that does not exist fails the check that runs it."""
    python = loaded.profile.target.python
    if python is None:
        return sys.executable
    if "/" not in python:
        return shutil.which(python) or python
    path = Path(python).expanduser()
    return str(path if path.is_absolute() else loaded.root / path)


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

    def __init__(self, options: GateOptions, settings: Settings, run_id: str, stack: contextlib.ExitStack) -> None:
        self.options = options
        self.settings = settings
        self.run_id = run_id
        self.stack = stack
        self.profile = options.profile
        self.reference = is_builtin_reference(options.profile)
        self.workdir = default_workdir(options)
        self.folder = options.folder or settings.artifacts.dir / GATE_FOLDER
        self.files: dict[str, str] = {}
        self.live_description: str | None = None  # set once a check has reached the live target
        self.budgets = {**default_budgets(options.profile, settings), **options.budgets_ms}
        account = options.profile.profile.service.smoke_account
        self.secrets: list[str | None] = [
            settings.service.smoke_password.get_secret_value(),
            settings.service.seed_password.get_secret_value(),
            settings.service.secret_key.get_secret_value() if settings.service.secret_key else None,
            *(url_password(u) for u in (options.database_url, settings.target.database_url, options.postgres_url) if u),
            httpx.URL(options.base_url).password if options.base_url else None,
            os.environ.get(account.password_env) if account is not None and not self.reference else None,
        ]
        self._target = _Cached(self._resolve_target)
        self._client = _Cached(
            lambda: stack.enter_context(http.new_client(self.live_target().base_url, settings.gate.http_timeout_sec))
        )
        self._auth = _Cached(self._log_in)
        self._booted = _Cached(lambda: wait_for_kernels_booted(os.environ.get(BOOTING_ENV)))
        #: The smoke run started before the checks that run beside it (``start_smoke_early``).
        self.early_smoke: smoke.PytestRun | None = None
        self.early_smoke_beside: list[str] = []
        #: The target's backups that backup.freshness found not to validate, by name (drill.freshness).
        self.backups_not_valid: dict[str, str] = {}

    @property
    def target_database_url(self) -> str | None:
        return self.options.database_url or self.settings.target.database_url

    def live_target(self) -> LiveTarget:
        return self._target.get()

    def client(self) -> httpx.Client:
        return self._client.get()

    def auth_headers(self) -> dict[str, str]:
        return self._auth.get()

    def kernels_booted(self) -> dict[str, Any]:
        """Once the run's kernels booting have booted (``BOOTING_ENV``): what the latency
        checks' evidence says of the wait; nothing outside a playbook run."""
        return self._booted.get()

    def smoke_account(self) -> tuple[str | None, str | None, tuple[str, str]]:
        """Username, password (None when unset) and the variables they come from: those the
        profile's ``[service.smoke_account]`` names, else ARIS3_SMOKE_USERNAME / ARIS3_SMOKE_PASSWORD."""
        account = self.profile.profile.service.smoke_account
        if self.reference or account is None:
            return (
                self.settings.service.smoke_username,
                self.settings.service.smoke_password.get_secret_value(),
                ("ARIS3_SMOKE_USERNAME", "ARIS3_SMOKE_PASSWORD"),
            )
        return (
            os.environ.get(account.username_env) or None,
            os.environ.get(account.password_env) or None,
            (account.username_env, account.password_env),
        )

    def _log_in(self) -> dict[str, str]:
        if self.reference:
            token = http.log_in(
                self.client(),
                self.settings.service.smoke_username,
                self.settings.service.smoke_password.get_secret_value(),
            )
            self.secrets.append(token)
            return {"Authorization": f"Bearer {token}"}
        login = self.profile.profile.service.login
        if login is None:
            raise ProbeFailed(f"the profile {self.profile.label} has no [service.login]")
        username, password, variables = self.smoke_account()
        if not (username and password):
            unset = [name for name, value in zip(variables, (username, password), strict=True) if not value]
            raise ProbeFailed(f"cannot log in: {' and '.join(unset)} (the smoke account's variables) not set")
        token = http.log_in_service(
            self.client(), login, username, password, account_hint=f" (check {' / '.join(variables)})"
        )
        self.secrets.append(token)
        return http.service_auth_header(login, token)

    def _resolve_target(self) -> LiveTarget:
        if self.options.base_url:
            self.live_description = f"{redact_text(self.options.base_url)} (--base-url)"
            return LiveTarget(self.options.base_url, self.live_description)
        if not self.reference:  # the embedded service is the reference double: not this target
            raise Aris3nbError(
                f"no --base-url (nor ARIS3_BASE_URL) for the target of profile {self.profile.label}: "
                "aris3nb starts only the reference service itself"
            )
        self.live_description = "embedded reference service (failed to start)"
        target = self._start_embedded()
        self.live_description = target.description
        return target

    def _start_embedded(self) -> LiveTarget:
        from aris3nb.targets.embedded import embedded_target

        made = self.stack.enter_context(embedded_target(self.settings, purpose="gate"))
        return LiveTarget(
            str(made.base_url),
            f"embedded reference service at {made.base_url} (SQLite, scale {made.scale})",
            made.facts,
        )


def wait_for_kernels_booted(
    folder: str | None,
    timeout_sec: float = BOOTING_WAIT_SEC,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> dict[str, Any]:
    """Wait until no kernel of the run is booting: ``folder`` (``BOOTING_ENV``) holds no file of a
    live process. A file whose process is gone (a kernel dead while booting) does not count; at
    ``timeout_sec`` the sampling goes ahead, the kernels still booting named in the evidence."""
    if not folder:
        return {}
    started = clock()
    booting = _booting(Path(folder))
    while booting and clock() - started < timeout_sec:
        sleep(0.05)
        booting = _booting(Path(folder))
    evidence: dict[str, Any] = {"waited_for_kernels_booting_sec": round(clock() - started, 3)}
    if booting:
        evidence["kernels_still_booting"] = booting
    return evidence


def _booting(folder: Path) -> list[str]:
    try:
        markers = sorted(folder.iterdir())
    except OSError:
        return []
    alive = []
    for marker in markers:
        try:
            pid = int(marker.read_text().strip() or 0)
        except (OSError, ValueError):
            continue  # removed meanwhile: booted
        if pid and owner_is_gone(pid, marker):
            continue  # its kernel died booting (its pid gone, or reused since): nothing boots any more
        alive.append(marker.name)
    return alive


def default_workdir(options: GateOptions) -> Path:
    """The checkout judged (``git``) and where a ``--pytest-target`` is: ``options.workdir``,
    else the target's root for a profile of another code, else the current folder."""
    if options.workdir is not None:
        return options.workdir.absolute()
    return Path.cwd().absolute() if is_builtin_reference(options.profile) else options.profile.root


def default_budgets(loaded: LoadedProfile, settings: Settings) -> dict[str, float]:
    """The p95 budget of each latency check, by name: the reference's OPS_GATE_BUDGET_*
    settings, or a profile's ``p95_ms`` of each ``[[service.endpoints]]``."""
    if is_builtin_reference(loaded):
        return settings.gate.budgets_ms()
    return {endpoint.name: endpoint.p95_ms for endpoint in loaded.profile.service.endpoints}


GATE_CHECKS: Registry[GateContext] = Registry()


def _code_profile(ctx: GateContext) -> LoadedProfile | None:
    """The profile whose code the migration checks judge: None for aris3nb's reference (or
    another script directory the tests give), the target's own (its interpreter) otherwise."""
    return None if runs_reference_code(ctx.profile) or ctx.options.script_location is not None else ctx.profile


@GATE_CHECKS.register("git")
def check_git(ctx: GateContext) -> Outcome:
    """The release is the committed code of a known branch: a dirty tree is WARN (FAIL when strict)."""
    return git.judge_git(ctx.workdir, strict=ctx.options.strict)


@GATE_CHECKS.register("deploy.freeze")
def check_deploy_freeze(ctx: GateContext) -> Outcome:
    """No release while a rollback's NO-GO stands: the freeze is lifted by a person, on purpose."""
    marker = ctx.settings.artifacts.freeze_marker
    if not marker.exists():
        return passed("no deploy freeze")
    try:
        declared = json.loads(marker.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        declared = {}
    return failed(
        f"deploys are frozen since {declared.get('declared_at', '?')} by run {declared.get('run_id', '?')}: "
        f"{'; '.join(declared.get('triggers') or []) or 'see the marker'}; remove "
        f"{ctx.settings.artifacts.show(marker)} to lift it",
        marker=str(marker),
        declared=declared,
    )


@GATE_CHECKS.register("migrations.single_head")
def check_single_head(ctx: GateContext) -> Outcome:
    """Exactly one Alembic head: two would make ``upgrade head`` ambiguous."""
    return migrations.judge_single_head(ctx.options.script_location, profile=_code_profile(ctx))


@GATE_CHECKS.register("migrations.round_trip.sqlite")
def check_round_trip_sqlite(ctx: GateContext) -> Outcome:
    """Every downgrade really undoes its upgrade, and the migrations build the models' schema (SQLite)."""
    return migrations.round_trip_on_sqlite(
        script_location=ctx.options.script_location,
        metadata=ctx.options.metadata,
        profile=_code_profile(ctx),
        memory_dir=ctx.settings.artifacts.memory_dir,
    )


@GATE_CHECKS.register("migrations.round_trip.postgresql")
def check_round_trip_postgres(ctx: GateContext) -> Outcome:
    """The same round trip on PostgreSQL, the engine real environments run on."""
    if not ctx.options.postgres_url:
        return skipped("no --postgres-url given")
    return migrations.round_trip_on_postgres(
        ctx.options.postgres_url,
        script_location=ctx.options.script_location,
        metadata=ctx.options.metadata,
        profile=_code_profile(ctx),
    )


@GATE_CHECKS.register("target.schema")
def check_target_schema(ctx: GateContext) -> Outcome:
    """The target database is at the code's head and equal to the models; drift is FAIL."""
    url = ctx.target_database_url
    if not url:
        return skipped("no --database-url given (nor DATABASE_URL)")
    return migrations.judge_target_schema(
        url, script_location=ctx.options.script_location, metadata=ctx.options.metadata, profile=_code_profile(ctx)
    )


@GATE_CHECKS.register("backup.freshness")
def check_backup_freshness(ctx: GateContext) -> Outcome:
    """What a restore would lose is bounded: the target's newest valid backup is within the RPO budget."""
    outcome = freshness.judge_backup_freshness(
        ctx.settings,
        ctx.target_database_url,
        base_url=ctx.options.base_url,
        budget_sec=ctx.settings.backup.rpo_budget_sec,
        profile=ctx.profile,
    )
    ctx.backups_not_valid = dict(outcome.evidence.get("not_valid") or {})
    return outcome


@GATE_CHECKS.register("drill.freshness")
def check_drill_freshness(ctx: GateContext) -> Outcome:
    """A backup is known to restore only once drilled: a backup of the target passed a drill recently."""
    return freshness.judge_drill_freshness(
        ctx.settings,
        ctx.target_database_url,
        base_url=ctx.options.base_url,
        max_age_days=ctx.settings.backup.drill_max_age_days,
        not_valid=ctx.backups_not_valid,
    )


@GATE_CHECKS.register("smoke")
def check_smoke(ctx: GateContext) -> Outcome:
    """Every critical area (auth, stock, transfers, POS, reports, exports) passes its smoke."""
    if not ctx.reference:
        return _profile_smoke(ctx)
    target = ctx.options.pytest_target
    if not target:
        return skipped("no --pytest-target given")
    live = ctx.live_target()
    started, ctx.early_smoke = ctx.early_smoke, None
    run = (started or _start_reference_smoke(ctx, target, live)).wait()
    outcome = smoke.judge_smoke(run, timeout_sec=ctx.settings.gate.smoke_timeout_sec, secrets=ctx.secrets)
    if started is not None:
        outcome.evidence["ran_beside"] = ctx.early_smoke_beside
    return _kept(ctx, run, outcome, target, live.description)


def _start_reference_smoke(ctx: GateContext, target: str, live: LiveTarget) -> smoke.PytestRun:
    env = {
        **os.environ,
        "ARIS3_SMOKE_BASE_URL": live.base_url,
        "ARIS3_SMOKE_USERNAME": ctx.settings.service.smoke_username,
        "ARIS3_SMOKE_PASSWORD": ctx.settings.service.smoke_password.get_secret_value(),
    }
    return smoke.start_pytest(target, cwd=ctx.workdir, timeout_sec=ctx.settings.gate.smoke_timeout_sec, env=env)


#: The checks that may run while the smoke suite runs: they neither load the live service nor
#: time anything it does (git, the freeze marker, the migrations on their own disposable
#: databases, the target's schema and the catalogs read). Everything after the smoke check
#: (/health, /ready and the latency sampling) runs only once it is over.
BESIDE_SMOKE = frozenset(
    {
        "git",
        "deploy.freeze",
        "migrations.single_head",
        "migrations.round_trip.sqlite",
        "migrations.round_trip.postgresql",
        "target.schema",
        "backup.freshness",
        "drill.freshness",
    }
)


def start_smoke_early(ctx: GateContext, registry: Registry[GateContext], only: Collection[str] | None) -> None:
    """Start the reference smoke suite (a pytest subprocess) before the checks that run beside
    it (``BESIDE_SMOKE``), when one of them is to run: the migrations' round trip and the rest
    take no longer than the suite then. The smoke check waits for it in its turn and judges it
    as always; a run that ends early has it killed (``ctx.stack``)."""
    names = [name for name in registry.names() if only is None or name in only]
    if not ctx.reference or not ctx.options.pytest_target or "smoke" not in names:
        return
    before = names[: names.index("smoke")]
    if not before or not set(before) <= BESIDE_SMOKE:
        return
    try:
        live = ctx.live_target()
    except Exception:  # noqa: BLE001 -- kept by the cache: the smoke check meets it again in its turn
        return
    ctx.early_smoke = _start_reference_smoke(ctx, ctx.options.pytest_target, live)
    ctx.early_smoke_beside = before
    ctx.stack.callback(ctx.early_smoke.close)


def _profile_smoke(ctx: GateContext) -> Outcome:
    """The profile's smoke suite, in the target's interpreter and root, judged by its area rules."""
    loaded, timeout = ctx.profile, ctx.settings.gate.smoke_timeout_sec
    declared = loaded.profile.smoke
    target = _smoke_target(ctx)
    if target is None:
        return warned(f"no smoke ran: no --pytest-target given and the profile {loaded.label} has no [smoke]")
    live = ctx.live_target()
    python = target_python(loaded)
    env = dict(os.environ)
    if python != sys.executable:  # aris3nb's environment is not the target's
        for name in ("VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME"):
            env.pop(name, None)
    if not (declared and declared.pass_database_url):  # never the production URL to a test suite, unasked
        env.pop(loaded.profile.target.database_url_env, None)
    env.update(declared.env if declared else {})
    account = loaded.profile.service.smoke_account
    username, password, variables = ctx.smoke_account()
    note = None
    against = live.description  # what the suite was told to test, as the evidence names it
    if account is None:
        env.update(
            ARIS3_SMOKE_BASE_URL=live.base_url, ARIS3_SMOKE_USERNAME=username or "", ARIS3_SMOKE_PASSWORD=password or ""
        )
        note = (
            "the profile has no [service.smoke_account]: the suite was given ARIS3_SMOKE_BASE_URL, which it may "
            "not read, so it may not have tested the live service"
        )
        against = f"{live.description}, given as ARIS3_SMOKE_BASE_URL, which the suite may not read"
    else:
        if not (username and password):
            unset = [name for name, value in zip(variables, (username, password), strict=True) if not value]
            return failed(
                f"the smoke account is not set: {' and '.join(unset)} (named by the profile's "
                "[service.smoke_account]) must hold it",
                target=target,
                python=python,
            )
        if account.base_url_env:
            env[account.base_url_env] = live.base_url
        else:
            note = (
                "the profile's [service.smoke_account] has no base_url_env: the suite was not told the live base "
                "URL, so it did not test the live service"
            )
            against = f"not the live service ({redact_text(live.base_url)}): the suite was not told its URL"
    pytest_args = list(declared.pytest_args) if declared else []
    rules = list(declared.areas) if declared else []
    marked: dict[str, set[str]] = {}
    try:
        for marker in dict.fromkeys(rule.marker for rule in rules if rule.marker):
            assert marker is not None
            marked[marker] = smoke.marked_node_ids(
                marker, target, python=python, cwd=loaded.root, env=env, timeout_sec=timeout, pytest_args=pytest_args
            )
    except smoke.SmokeSetupError as exc:
        return failed(redact_text(str(exc), ctx.secrets), target=target, python=python, against=against)
    run = smoke.run_pytest(
        target, cwd=loaded.root, timeout_sec=timeout, env=env, python=python, pytest_args=pytest_args
    )
    outcome = smoke.judge_smoke(
        run,
        timeout_sec=timeout,
        secrets=ctx.secrets,
        classify=smoke.area_classifier(rules, marked),
        strict=ctx.options.strict,
    )
    outcome.evidence.update(
        python=run.python,
        root=str(loaded.root),
        area_rules=len(rules),
        marked_tests={marker: len(ids) for marker, ids in marked.items()},
    )
    if note is not None and outcome.status is Status.PASS:
        outcome = warned(f"{outcome.detail}; {note}", **outcome.evidence)
    elif note is not None:
        outcome.evidence["note"] = note
    return _kept(ctx, run, outcome, target, against)


def _smoke_target(ctx: GateContext) -> str | None:
    """The pytest target of a profile's smoke: ``--pytest-target`` (relative to the working
    folder), else the profile's ``[smoke] path`` (relative to the target's root)."""
    if ctx.options.pytest_target:
        path, sep, node = ctx.options.pytest_target.partition("::")
        return str((ctx.workdir / path).resolve()) + sep + node
    declared = ctx.profile.profile.smoke
    return declared.path if declared is not None else None


def _kept(ctx: GateContext, run: smoke.SmokeRun, outcome: Outcome, target: str, against: str) -> Outcome:
    """The smoke run's output and JUnit report kept beside the summary (secrets masked);
    ``against``: the service the suite was told to test, as the evidence names it."""
    log_name = f"smoke_{ctx.run_id}.log"
    write_text_evidence(ctx.folder, log_name, redact_text(run.output, ctx.secrets))
    ctx.files["smoke_output"] = log_name
    outcome.evidence.update(target=target, against=against, output_file=log_name)
    if run.junit_xml is not None:
        junit_name = f"smoke_{ctx.run_id}.junit.xml"
        write_text_evidence(ctx.folder, junit_name, redact_text(run.junit_xml, ctx.secrets))
        ctx.files["smoke_junit"] = junit_name
        outcome.evidence["junit_file"] = junit_name
    return outcome


@GATE_CHECKS.register("http.health")
def check_health(ctx: GateContext) -> Outcome:
    """The process answers: /health is 200 ok."""
    if ctx.reference:
        outcome = http.probe_health(ctx.client())
    else:
        outcome = http.probe_service_health(ctx.client(), ctx.profile.profile.service.health)
    outcome.evidence.update(target=ctx.live_target().description, target_facts=ctx.live_target().facts)
    return outcome


@GATE_CHECKS.register("http.ready")
def check_ready(ctx: GateContext) -> Outcome:
    """The service can serve: /ready is 200 (database reachable, schema at head)."""
    if ctx.reference:
        return http.probe_ready(ctx.client(), expected_revision=migrate.head_revision())
    ready = ctx.profile.profile.service.ready
    head, head_error = _target_head(ctx.profile) if ready.revision_pointer else (None, None)
    return http.probe_service_ready(ctx.client(), ready, expected_revision=head, head_error=head_error)


def _target_head(loaded: LoadedProfile) -> tuple[str | None, str | None]:
    """The head revision of the target's code and None, or None and why it cannot be read
    (``aris3nb.targets.code.head_revision``, where the target's migrations are read)."""
    try:
        head_revision = importlib.import_module("aris3nb.targets.code").head_revision
    except (ImportError, AttributeError) as exc:
        return None, f"aris3nb.targets.code.head_revision is not available: {exc}"
    try:
        head = head_revision(loaded)
    except Exception as exc:  # noqa: BLE001 -- whatever went wrong, the comparison cannot be made: said, not raised
        return None, f"{type(exc).__name__}: {str(exc).strip() or 'no message'}"
    if not isinstance(head, str) or not head:
        return None, f"it answered {head!r}"
    return head, None


def _latency_check(name: str, path: str, authenticated: bool) -> CheckFunction[GateContext]:
    def check(ctx: GateContext) -> Outcome:
        plan = http.LatencyPlan(
            path=path,
            budget_ms=ctx.budgets[name],
            samples=ctx.settings.gate.latency_samples,
            warmup=ctx.settings.gate.latency_warmup,
            deadline_sec=ctx.settings.gate.latency_deadline_sec,
            min_samples=MIN_LATENCY_SAMPLES,
        )
        headers = ctx.auth_headers() if authenticated else None
        booted = ctx.kernels_booted()
        outcome = http.measure_latency(ctx.client(), plan, headers)
        outcome.evidence.update(booted)
        return outcome

    check.__doc__ = (
        f"The p95 latency of GET {path} is within its budget, measured over at least "
        f"{MIN_LATENCY_SAMPLES} samples after a warm-up."
    )
    return check


for _name, (_path, _authenticated) in LATENCY_ENDPOINTS.items():
    GATE_CHECKS.add(f"latency.{_name}", _latency_check(_name, _path, _authenticated))

#: The reference's latency checks, which a profile's endpoints replace.
_REFERENCE_LATENCY = frozenset(f"latency.{name}" for name in LATENCY_ENDPOINTS)


def _endpoint_check(endpoint: Endpoint) -> CheckFunction[GateContext]:
    def check(ctx: GateContext) -> Outcome:
        if endpoint.auth and ctx.profile.profile.service.login is None:
            return failed(
                f"GET {endpoint.path} needs the smoke account's token, but the profile {ctx.profile.label} "
                "has no [service.login]",
                path=endpoint.path,
            )
        plan = http.LatencyPlan(
            path=endpoint.path,
            budget_ms=ctx.budgets[endpoint.name],
            samples=ctx.settings.gate.latency_samples,
            warmup=ctx.settings.gate.latency_warmup,
            deadline_sec=ctx.settings.gate.latency_deadline_sec,
            min_samples=MIN_LATENCY_SAMPLES,
            params=dict(endpoint.params),
            status=endpoint.status,
        )
        headers = ctx.auth_headers() if endpoint.auth else None
        booted = ctx.kernels_booted()
        outcome = http.measure_latency(ctx.client(), plan, headers)
        outcome.evidence.update(booted)
        return outcome

    check.__doc__ = (
        f"The p95 latency of GET {endpoint.path} (the profile's endpoint {endpoint.name!r}, answering "
        f"{endpoint.status}) is within its budget, measured over at least {MIN_LATENCY_SAMPLES} samples "
        "after a warm-up."
    )
    return check


def check_no_endpoints(ctx: GateContext) -> Outcome:
    """A profile without critical endpoints measures no latency: said, never a silent pass."""
    return warned(
        f"the profile {ctx.profile.label} declares no [[service.endpoints]]: no latency was measured",
        profile=ctx.profile.as_evidence(),
    )


def gate_checks(loaded: LoadedProfile) -> Registry[GateContext]:
    """The checks a run with this profile runs, in order: ``GATE_CHECKS`` for the built-in
    reference; for another profile the same, with its endpoints' latency checks in place of
    the reference's (``UsageError`` for two endpoints of one name)."""
    if is_builtin_reference(loaded):
        return GATE_CHECKS
    registry: Registry[GateContext] = Registry()
    for check in GATE_CHECKS:
        if check.name not in _REFERENCE_LATENCY:
            registry.add(check.name, check.function)
    endpoints = loaded.profile.service.endpoints
    names = [endpoint.name for endpoint in endpoints]
    twice = sorted({name for name in names if names.count(name) > 1})
    if twice:
        raise UsageError(f"the profile {loaded.label} declares [[service.endpoints]] {', '.join(twice)} more than once")
    for endpoint in endpoints:
        registry.add(f"latency.{endpoint.name}", _endpoint_check(endpoint))
    if not endpoints:
        registry.add("latency", check_no_endpoints)
    return registry


def latency_names(loaded: LoadedProfile) -> list[str]:
    """The names a ``--budget NAME=MS`` may give for this profile."""
    if is_builtin_reference(loaded):
        return list(LATENCY_ENDPOINTS)
    return [endpoint.name for endpoint in loaded.profile.service.endpoints]


def validate_options(options: GateOptions) -> GateOptions:
    """Refuse, before anything runs, input the gate cannot act on (exit 2)."""
    workdir = default_workdir(options)
    if not workdir.is_dir():
        raise UsageError(f"working folder {workdir} does not exist")
    if options.run_id is not None and not RUN_ID_PATTERN.match(options.run_id):
        raise UsageError(f"{options.run_id[:80]!r} is not a run id (YYYYMMDDTHHMMSSZ-xxxxxx)")
    base_url = http.parse_base_url(options.base_url) if options.base_url is not None else None
    if options.pytest_target is not None:
        smoke.check_pytest_target(options.pytest_target, workdir)
    loaded = options.profile
    declared = loaded.profile.smoke
    if options.pytest_target is None and declared is not None and not is_builtin_reference(loaded):
        try:
            smoke.check_pytest_target(declared.path, loaded.root)
        except UsageError as exc:
            raise UsageError(f"the profile {loaded.label}: [smoke] path: {exc}") from exc
    for url in (options.database_url, options.postgres_url):
        if url is not None:
            parse_database_url(url)
    if options.postgres_url is not None and parse_database_url(options.postgres_url).get_backend_name() != "postgresql":
        raise UsageError(f"--postgres-url must be a postgresql:// URL, not {redact_url(options.postgres_url)}")
    registry = gate_checks(loaded)
    if options.checks is not None:
        unknown_checks = sorted(set(options.checks) - set(registry.names()))
        if unknown_checks or not options.checks:
            raise UsageError(
                f"unknown gate {'check' if len(unknown_checks) == 1 else 'checks'} "
                f"{', '.join(unknown_checks) or '(none given)'}; "
                f"known{'' if is_builtin_reference(loaded) else f' for profile {loaded.profile.name}'}: "
                f"{', '.join(registry.names())}"
            )
    known = latency_names(loaded)
    unknown = sorted(set(options.budgets_ms) - set(known))
    if unknown:
        raise UsageError(
            f"unknown latency {'budget' if len(unknown) == 1 else 'budgets'} {', '.join(unknown)}; "
            f"known: {', '.join(known) or '(none)'}"
        )
    if any(not math.isfinite(value) or value <= 0 for value in options.budgets_ms.values()):
        raise UsageError("latency budgets must be positive numbers of milliseconds")
    return dataclasses.replace(options, base_url=base_url, workdir=workdir)


def run_gate(
    options: GateOptions, settings: Settings, on_result: Callable[[CheckResult], None] | None = None
) -> GateReport:
    """Run every gate check and write the JSON summary; never raises for a failing check
    (the verdict says it), only ``UsageError`` for input it cannot act on."""
    if options.base_url is None and settings.target.base_url:  # ARIS3_BASE_URL names the live target
        options = dataclasses.replace(options, base_url=settings.target.base_url)
    options = validate_options(options)
    if options.database_url is None and settings.target.database_url:
        parse_database_url(settings.target.database_url)  # DATABASE_URL names the target: refuse it unparseable too
    require_writable_folder(options.folder or settings.artifacts.dir / GATE_FOLDER, "the gate summary")
    run_id = options.run_id or new_run_id()
    started = dt.datetime.now(dt.UTC)
    with contextlib.ExitStack() as stack:
        ctx = GateContext(options, settings, run_id, stack)
        registry = gate_checks(options.profile)
        start_smoke_early(ctx, registry, options.checks)
        results = registry.run(ctx, on_result, only=options.checks)
    finished = dt.datetime.now(dt.UTC)
    verdict = verdict_of(results, strict=options.strict)
    summary_name = f"gate_summary_{run_id}.json"
    document = {
        **check_report_head(
            GATE_SUMMARY_FORMAT, GATE_SUMMARY_VERSION, run_id, started, finished, results, strict=options.strict
        ),
        "inputs": _inputs(ctx),
        "code": {
            "aris3nb_version": __version__,
            "python": platform.python_version(),
            "migration_heads": _heads_or_none(options.script_location, _code_profile(ctx)),
            "target": cached_code_revision(options.profile),
        },
        "checks": [result.to_dict() for result in results],
        "files": {"summary": summary_name, **ctx.files},
    }
    document = scrub(document, ctx.secrets)
    try:
        path = write_json_evidence(ctx.folder, summary_name, document)
    except OSError as exc:
        raise UsageError(
            f"cannot write the gate summary under {ctx.folder}: {exc.strerror or exc}; check OPS_ARTIFACTS_DIR"
        ) from exc
    return GateReport(run_id, verdict, options.strict, results, document, path)


def _heads_or_none(script_location: Path | None, profile: LoadedProfile | None) -> list[str] | None:
    from aris3nb.targets.code import target_code

    try:
        return sorted(target_code(profile, script_location=script_location).heads())
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
        "latency_samples": settings.gate.latency_samples,
        "latency_warmup": settings.gate.latency_warmup,
        "min_latency_samples": MIN_LATENCY_SAMPLES,
        "latency_deadline_sec": settings.gate.latency_deadline_sec,
        "http_timeout_sec": settings.gate.http_timeout_sec,
        "smoke_timeout_sec": settings.gate.smoke_timeout_sec,
        "smoke_username": ctx.smoke_account()[0],
        "rpo_budget_sec": settings.backup.rpo_budget_sec,
        "drill_max_age_days": settings.backup.drill_max_age_days,
        "profile": options.profile.as_evidence(),
    }


def read_gate_summary(path: Path) -> dict[str, Any]:
    """A gate summary written by ``run_gate``; unknown formats and versions are refused."""
    from aris3nb.formats.reading import validate
    from aris3nb.formats.reports import GateSummary

    return read_json_evidence(
        path,
        format_name=GATE_SUMMARY_FORMAT,
        versions=[GATE_SUMMARY_VERSION],
        check=lambda document, where: validate(GateSummary, document, where),
    )


def parse_budgets(items: list[str] | None, known: Collection[str] | None = None) -> dict[str, float]:
    """``["stock=250", "health=100"]`` → ``{"stock": 250.0, "health": 100.0}``; ``UsageError`` otherwise.
    ``known``: the budget names allowed (``latency_names(profile)``); default: the reference's."""
    known = list(LATENCY_ENDPOINTS) if known is None else list(known)
    budgets: dict[str, float] = {}
    for item in items or []:
        name, sep, value = item.partition("=")
        try:
            budgets[name.strip()] = float(value)
        except ValueError:
            sep = ""
        if not sep or name.strip() not in known:
            raise UsageError(
                f"--budget {item!r}: expected NAME=MILLISECONDS with NAME one of {', '.join(known) or '(none)'}"
            )
        if not (math.isfinite(budgets[name.strip()]) and budgets[name.strip()] > 0):  # inf: a check that cannot fail
            raise UsageError(f"--budget {item!r}: the budget must be a finite number of milliseconds above 0")
    return budgets
