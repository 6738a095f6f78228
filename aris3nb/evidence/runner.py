"""The playbook runner (``aris3nb run``): the phase notebooks executed with papermill,
in-process and in order, against one target, into one evidence bundle.

The runner owns each phase's final status. papermill records a cell timeout or a dead
kernel as if the notebook completed; here every phase ends as exactly one of
``completed`` (its verdict PASS or PASS_WITH_WARNINGS), ``failed`` (its checks FAILed: the
notebook's last cell raised ``PhaseFailed`` after showing the evidence), ``error`` (a cell
raised anything else), ``timeout`` (a cell ran past the cell timeout), ``dead_kernel``,
``interrupted`` or ``skipped`` — written into the executed notebook (a banner at the top,
the failing cell marked) and into ``evidence.json``.

One road in, one road out. No secret is ever a notebook parameter: a URL with a password
is left out of the parameters and reaches the kernel through its environment only
(``DATABASE_URL``, ``ARIS3_BASE_URL``); every notebook is scrubbed of known secrets again
before it is written. A phase's result comes back inside its executed notebook, as an
output of type ``application/vnd.aris3nb.phase-result+json``: the notebook describes itself.

Speed: the next phase's kernel is started (and imports aris3nb, pandas and matplotlib)
while the current phase runs (the gate's latency sampling waits until it has booted:
``kernels``), and HTML is rendered in-process with one exporter.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import dataclasses
import datetime as dt
import importlib
import logging
import os
import re
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aris3nb.core.db import check_connection, database_key, engine_name, parse_database_url, same_database, sqlite_path
from aris3nb.core.errors import DatabaseUnavailable, EvidenceInvalid, UsageError
from aris3nb.core.files import write_text_evidence
from aris3nb.core.ids import RUN_ID_PATTERN, new_run_id, utc_text
from aris3nb.core.redact import command_secrets, redact_text, redact_url, url_password
from aris3nb.core.scratch import scratch_roots
from aris3nb.core.settings import EMBEDDED_SCALE, Settings, check_timeout_sec
from aris3nb.core.stale import sweep
from aris3nb.evidence.display import RUN_DIR_ENV
from aris3nb.evidence.engine import ENGINE_NAME, RUN_ID_KEYWORD, SAVE_EACH_CELL_KEYWORD, ensure_registered
from aris3nb.evidence.kernels import (
    KERNEL_ENV,
    KERNEL_NAME,
    KERNEL_START_TIMEOUT_SEC,
    Kernels,
    last_words,
    signalled_with_its_kernels,
)
from aris3nb.evidence.marks import (
    NOTEBOOKS_DIR,
    CellTracker,
    finish_notebook,
    judge_execution,
    notebook_format,
    phase_notebook,
    recorded_run,
)
from aris3nb.evidence.record import PhaseRun, RunResult
from aris3nb.evidence.seal import seal
from aris3nb.phases import DEFAULT_PHASES, PHASE_BY_NAME, PHASES, ROLLBACK, Phase, Trigger, evaluate_triggers
from aris3nb.phases.inputs import DEFAULT_SMOKE_TARGET
from aris3nb.targets.profile import LoadedProfile, load_target_profile

if TYPE_CHECKING:
    from aris3nb.evidence.forks import ForkServer

# Heavier modules (migrations, backups, rollback) load inside the functions that need them, so
# that the first kernel starts booting as early as possible.

RUNS_DIRNAME = "runs"
#: The smoke suite a run executes unless told otherwise: the shipped one, by absolute path.
DEFAULT_PYTEST_TARGET = str(DEFAULT_SMOKE_TARGET)
#: The scratch folders of a run (and of its smoke runs), swept by the next run once their
#: process is gone: a run killed with SIGKILL cannot remove them itself.
SCRATCH_PATTERN = re.compile(r"^aris3nb-(?:nb|run-embedded|gate-embedded|smoke)-pid(?P<pid>\d+)-[a-z0-9_]+$")


@dataclass(frozen=True)
class RunOptions:
    """What one playbook run does. Without ``base_url`` and ``database_url`` (nor DATABASE_URL)
    it runs on the embedded default; with ``database_url`` only, it serves the reference
    service over it."""

    phases: tuple[str, ...] = ()  # empty: the default sequence, then rollback if a trigger fires
    base_url: str | None = None
    database_url: str | None = None
    out: Path | None = None  # the artifacts folder; default OPS_ARTIFACTS_DIR
    strict: bool = False
    confirm_restore: bool = False
    terminate_sessions: bool = False  # a rollback restore may end other sessions in its way
    manifest: Path | None = None  # the backup a drill (or an operator's rollback) takes; default: see _parameters
    exports_dir: Path | None = None  # the service's export files; default: the profile's, else ARIS3_EXPORTS_DIR
    revert_command: str | None = None
    budgets_ms: Mapping[str, float] = field(default_factory=dict)
    pytest_target: str | None = None  # None: the profile's [smoke] suite, or the playbook's own (reference)
    cell_timeout_sec: float | None = None  # None: OPS_CELL_TIMEOUT_SEC (settings.run)
    scale: int = EMBEDDED_SCALE
    signing_key: Path | None = None
    workdir: Path | None = None  # where the kernels run (the checkout); default: cwd
    rerun_of: str | None = None
    #: Why the re-run's parameters could not be verified (an unsigned run no later run links):
    #: the re-run is then at best PASS_WITH_WARNINGS, and --strict fails it.
    rerun_warning: str | None = None
    notebooks_dir: Path = NOTEBOOKS_DIR  # where the phase notebooks are (another folder in tests)
    #: Backup names taken outside the artifacts folder (the run's bucket, when it is staged):
    #: the deploy backup's name is made unique against them too.
    backup_names_taken: frozenset[str] = frozenset()
    #: The target profile the run judges with; default: the built-in reference.
    profile: LoadedProfile = field(default_factory=lambda: load_target_profile(None))

    @property
    def embedded(self) -> bool:
        """The run's target is the embedded default (its own disposable database)."""
        return not (self.base_url or self.database_url)


@dataclass(frozen=True)
class Target:
    mode: str  # embedded | database | base_url
    base_url: str | None  # None only for a sealed run whose gates reached no service
    database_url: str | None
    exports_dir: Path | None
    description: str


# ---------------------------------------------------------------------------- target


@contextlib.contextmanager
def open_target(options: RunOptions, settings: Settings) -> Iterator[Target]:
    """The deployment the phases look at; the embedded default and a served database are
    started here and stopped (and the embedded one deleted) when the run ends."""
    from aris3nb.targets.embedded import embedded_target, reference_service

    if options.base_url:
        exports = options.exports_dir or (options.profile.exports_dir() if not options.profile.is_reference else None)
        database_url = options.database_url or settings.target.database_url
        yield Target(
            "base_url",
            options.base_url,
            database_url,
            exports or (settings.resolved_exports_dir() if database_url else None),
            f"{redact_text(options.base_url)} (--base-url)",
        )
        return
    if options.database_url:
        check_connection(options.database_url)
        exports = options.exports_dir or settings.resolved_exports_dir()
        with reference_service(options.database_url, settings.updated(target={"exports_dir": exports})) as base_url:
            yield Target(
                "database",
                base_url,
                options.database_url,
                exports,
                f"reference service at {base_url} over {redact_url(options.database_url)}",
            )
        return
    with embedded_target(settings, scale=options.scale, purpose="run") as made:
        yield Target(
            "embedded",
            str(made.base_url),
            made.database_url,
            made.exports_dir,
            f"embedded reference service at {made.base_url} (fresh SQLite, scale {made.scale})",
        )


# ---------------------------------------------------------------------------- the run


@dataclass
class _Run:
    options: RunOptions
    settings: Settings
    run_id: str
    run_dir: Path
    target: Target | None = None
    secrets: list[str] = field(default_factory=list)
    backup_name: str | None = None
    phases: list[PhaseRun] = field(default_factory=list)
    interrupted: bool = False
    #: What the run could not guarantee besides its phases (its bucket lock lost or overdue):
    #: each caps the verdict at PASS_WITH_WARNINGS (FAIL with --strict); evidence ``warnings``.
    warnings: list[str] = field(default_factory=list)
    #: HTML pages are rendered on one background thread while the next phase runs, except
    #: while a phase measures latency (``QUIET_PHASES``): the renders pending are awaited first.
    renderer: concurrent.futures.ThreadPoolExecutor = field(
        default_factory=lambda: concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="aris3nb-render")
    )
    renders: list[tuple[PhaseRun, concurrent.futures.Future[None]]] = field(default_factory=list)
    index_warmed: bool = False

    def warm_index(self) -> None:
        """Once no phase left measures latency: load the index page's library (matplotlib,
        ~0.5 s of a quiet machine) on the render thread while the last phases run, not after
        the seal. Nothing else: an import that fails here fails again, and is said, at the index."""
        if not self.index_warmed:
            self.index_warmed = True
            self.renderer.submit(importlib.import_module, "aris3nb.evidence.index")

    def finish_renders(self) -> None:
        """Wait for the pages being rendered; a page that could not be rendered fails its phase."""
        pending, self.renders = self.renders, []
        for phase_run, render in pending:
            try:
                render.result()
            except Exception as exc:  # noqa: BLE001 -- recorded: the run's evidence is incomplete
                phase_run.verdict = "FAIL"
                phase_run.reasons.append(f"its HTML page could not be rendered: {exc}")


def _public(url: str | None) -> str | None:
    """``url`` when it carries no password, else None: the kernel then takes it from its
    environment (``_kernel_env``). No secret is ever a notebook parameter."""
    if not url or url_password(url):
        return None
    import httpx

    with contextlib.suppress(httpx.InvalidURL):
        if url.startswith(("http://", "https://")) and httpx.URL(url).password:
            return None
    return url


def _parameters(run: _Run, phase: Phase, triggers: Sequence[Trigger]) -> dict[str, Any]:
    """A phase's parameters: literals, never a secret (a URL with a password is None here and
    reaches the kernel through its environment)."""
    target, options = run.target, run.options
    assert target is not None
    database_url, base_url = _public(target.database_url), _public(target.base_url)
    exports_dir = str(target.exports_dir) if target.exports_dir else None
    budgets = dict(options.budgets_ms)
    manifest, no_restore_reason, no_revert_reason = None, None, None
    if phase.name == "drill":
        manifest = _deploy_backup(run) or options.manifest
    elif phase.name == "rollback":
        manifest, no_restore_reason, no_revert_reason = _rollback_plan(run, triggers)
    pytest_target = Path(options.pytest_target) if options.pytest_target else None
    if pytest_target is not None and not pytest_target.is_absolute():  # the notebook also runs from its bundle folder
        pytest_target = (options.workdir or Path.cwd()) / pytest_target
    values: dict[str, Any] = {
        "run_id": run.run_id,
        "base_url": base_url,
        "database_url": database_url,
        "pytest_target": str(pytest_target) if pytest_target else None,
        "strict": options.strict,
        "budgets_ms": budgets,
        "exports_dir": exports_dir,
        "backup_name": run.backup_name,
        "manifest": str(manifest) if manifest else None,
        "triggers": [str(t) for t in triggers] or ["requested by the operator (aris3nb run rollback)"],
        "confirm_restore": options.confirm_restore,
        "no_restore_reason": no_restore_reason,
        "no_revert_reason": no_revert_reason,
        "terminate_sessions": options.terminate_sessions,
        "profile": str(options.profile.path) if options.profile.path else None,
    }
    return {name: values[name] for name in phase.parameters}


def _deploy_backup(run: _Run) -> Path | None:
    """The manifest of the backup this run's deploy phase made, if it made one."""
    for phase_run in run.phases:
        if phase_run.phase.name == "deploy":
            made = ((phase_run.result or {}).get("facts") or {}).get("backup_manifest")
            if isinstance(made, str) and Path(made).is_file():
                return Path(made)
    return None


#: Triggers that say the run's own backup cannot be trusted: it is not restored.
_BACKUP_DISTRUSTED = ("drill_fail", "manifest_inconsistent")


def _rollback_plan(run: _Run, triggers: Sequence[Trigger]) -> tuple[Path | None, str | None, str | None]:
    """What a rollback restores and whether it reverts the app: (manifest, why nothing is
    restored, why the app is not reverted), the reasons None when it does.

    In a playbook run, only the backup the run's deploy phase made, and only when a trigger
    fired after it was taken: a trigger before it (the gate) means nothing was deployed, and
    restoring an older backup would destroy data written since — nor is the app reverted then:
    the release running is not this run's. A backup that failed its drill or its manifest check
    is not restored either (the app is still reverted). A rollback the operator names counts
    as a trigger after the backup; run alone (no deploy in this run) it restores
    ``--manifest``, else the newest valid backup made from the target, and reverts.
    """
    own = _deploy_backup(run)
    deploy_ran = any(p.phase.name == "deploy" and p.status != "skipped" for p in run.phases)
    if not deploy_ran and run.options.phases:
        return run.options.manifest, None, None
    if own is None:
        return (
            None,
            (
                "this run took no pre-deploy backup (its deploy phase did not run or its backup failed), so "
                "nothing was deployed over it: NO-GO and the freeze stand, the database is left as it is"
            ),
            "this run deployed nothing (no pre-deploy backup was taken): the running release is left as it is",
        )
    after = [t for t in triggers if t.phase != "pre_deploy"]
    if not after and "rollback" not in run.options.phases:  # named: the operator's request comes after the backup
        return (
            None,
            (
                "every trigger fired before this run's backup was taken: nothing was deployed, so nothing is "
                "restored (NO-GO and the freeze stand)"
            ),
            "every trigger fired before this run deployed: the running release is left as it is",
        )
    distrusted = [t for t in after if t.kind in _BACKUP_DISTRUSTED]
    if distrusted:
        return (
            None,
            (
                f"this run's backup {own.parent.name} is not to be trusted ({distrusted[0]}): restoring it could "
                "make things worse; restore a known-good backup by name (aris3nb backup restore)"
            ),
            None,
        )
    return own, None, None


def _kernel_env(run: _Run) -> dict[str, str]:
    """The kernels' environment, known before the target is up (the first kernel boots while
    the target starts). It is the one road a secret takes into a kernel: the URLs the
    operator gave (which may carry a password) are DATABASE_URL and ARIS3_BASE_URL here; a
    parameter carries a URL only when it has no password (``_public``)."""
    env = {
        **os.environ,
        **KERNEL_ENV,
        RUN_DIR_ENV: str(run.run_dir),
        "OPS_ARTIFACTS_DIR": str(run.settings.artifacts.dir),
    }
    for name, url in (("DATABASE_URL", run.options.database_url), ("ARIS3_BASE_URL", run.options.base_url)):
        if url:
            env[name] = url
    if run.settings.artifacts.shown_as is not None:  # a staging copy of a bucket's repository
        env["OPS_ARTIFACTS_SHOWN_AS"] = run.settings.artifacts.shown_as
    # Where the embedded target may be: the kernels' gate must know it as the runner does.
    memory_dir = run.settings.artifacts.memory_dir
    env["OPS_MEMORY_DIR"] = "" if memory_dir is None else str(memory_dir)
    if run.options.embedded:
        env["OPS_ENABLE_BACKUP_DRILL"] = "true"  # the runner's own disposable target (said in the evidence)
    if run.options.revert_command:
        env["OPS_REVERT_COMMAND"] = run.options.revert_command
    return env


def _execute_phase(
    run: _Run, phase_run: PhaseRun, kernel: Any, input_dir: Path, on_cell: Callable[[int, int], None] | None
) -> None:
    import papermill

    ensure_registered()
    nbformat = notebook_format()
    phase = phase_run.phase
    notebook = phase_notebook(phase, run.options.notebooks_dir)
    input_path = input_dir / phase.notebook
    nbformat.write(notebook, input_path)
    # papermill writes its copy in the scratch folder (its writes are not atomic); the run folder
    # gets the judged notebook, written whole under its final name.
    name = f"{Path(phase.notebook).stem}.ipynb"
    output_path = input_dir / "executed" / name
    output_path.parent.mkdir(exist_ok=True)
    tracker = CellTracker(total=len(notebook.cells) + 1, on_cell=on_cell)
    phase_run.started_at = utc_text(dt.datetime.now(dt.UTC))
    started = time.perf_counter()
    raised: BaseException | None = None
    try:
        papermill.execute_notebook(
            str(input_path),
            str(output_path),
            parameters=phase_run.parameters,
            engine_name=ENGINE_NAME,
            kernel_name=KERNEL_NAME,
            progress_bar=False,
            log_output=False,
            execution_timeout=run.options.cell_timeout_sec,
            start_timeout=KERNEL_START_TIMEOUT_SEC,
            km=kernel,
            on_cell_start=tracker.start,
            **{RUN_ID_KEYWORD: run.run_id, SAVE_EACH_CELL_KEYWORD: False},
        )
    except BaseException as exc:  # noqa: BLE001 -- every way a phase can end is recorded; Ctrl-C ends the run
        raised = exc
        if isinstance(exc, KeyboardInterrupt):
            run.interrupted = True
            # The cell's own cleanup runs before its kernel is stopped.
            Kernels.settle(kernel, interrupt=not signalled_with_its_kernels(exc))
    finally:
        phase_run.duration_sec = time.perf_counter() - started
        Kernels.stop(kernel)
    try:
        executed = nbformat.read(output_path, as_version=4) if output_path.is_file() else notebook
    except (OSError, ValueError) as exc:  # papermill's last save cut short (a full disk)
        executed, raised = notebook, raised or exc
    # The engine judged the execution into the notebook (the same judgement for every papermill
    # caller); when papermill failed before the engine ran, or its copy is unreadable, judge here.
    recorded = recorded_run(executed, phase)
    if recorded is not None:
        judged, failed_cell_id = recorded
        judged.parameters, judged.duration_sec = phase_run.parameters, phase_run.duration_sec
        judged.started_at = phase_run.started_at
        run.phases[run.phases.index(phase_run)] = phase_run = judged
    else:
        failed_cell_id = judge_execution(executed, raised, phase_run, last_started=tracker.last_started)
    if phase_run.status == "dead_kernel":
        phase_run.reasons.extend(last_words(kernel, run.secrets))
    if phase_run.status == "interrupted":
        run.interrupted = True
    final = finish_notebook(executed, run.run_id, phase_run, failed_cell_id, run.secrets)
    try:
        write_text_evidence(run.run_dir, name, nbformat.writes(final))
    except OSError as exc:
        phase_run.status, phase_run.verdict = "error", "FAIL"
        phase_run.reasons.append(f"the executed notebook could not be written: {exc.strerror or exc}")
        return
    run.renders.append((phase_run, run.renderer.submit(_render, run, final, f"{Path(name).stem}.html")))


def _render(run: _Run, notebook: Any, name: str) -> None:
    from aris3nb.evidence.render import notebook_html

    write_text_evidence(run.run_dir, name, redact_text(notebook_html(notebook), run.secrets))


def _should_run(run: _Run, phase: Phase, explicit: bool) -> str | None:
    """Why ``phase`` must be skipped in this run, or None when it runs."""
    if run.interrupted:
        return "the run was interrupted"
    done = {p.phase.name: p for p in run.phases}
    if explicit:
        return None
    requires = phase.requires
    if requires in done and (done[requires].verdict == "FAIL" or done[requires].status == "skipped"):
        return f"{requires} did not pass: not going further"
    return None


def _secrets(options: RunOptions, settings: Settings) -> list[str]:
    found = [
        settings.service.smoke_password.get_secret_value(),
        settings.service.seed_password.get_secret_value(),
        settings.service.secret_key.get_secret_value() if settings.service.secret_key else None,
        *(url_password(u) for u in (options.database_url, settings.target.database_url) if u),
    ]
    if options.base_url:
        import httpx

        found.append(httpx.URL(options.base_url).password)
    found += command_secrets(options.revert_command or "")
    return [s for s in found if s]


def validate_run_options(options: RunOptions) -> RunOptions:
    from aris3nb.gate.http import parse_base_url
    from aris3nb.gate.runner import latency_names

    unknown = [name for name in options.phases if name not in PHASE_BY_NAME]
    if unknown:
        raise UsageError(
            f"unknown {'phase' if len(unknown) == 1 else 'phases'} {', '.join(unknown)}; "
            f"phases: {', '.join(PHASE_BY_NAME)}"
        )
    if options.database_url is not None:
        parse_database_url(options.database_url)
    known_budgets = latency_names(options.profile)
    unknown_budgets = sorted(set(options.budgets_ms) - set(known_budgets))
    if unknown_budgets:
        raise UsageError(
            f"unknown latency {'budget' if len(unknown_budgets) == 1 else 'budgets'} {', '.join(unknown_budgets)}; "
            "known for the profile "
            f"{options.profile.profile.name}: {', '.join(known_budgets) or 'none'}"
        )
    if not options.profile.is_reference and not options.base_url:
        raise UsageError(
            f"the target profile {options.profile.label} describes a service of its own: give its "
            "--base-url (and --database-url); aris3nb serves only its bundled reference itself"
        )
    if options.cell_timeout_sec is not None:
        check_timeout_sec(options.cell_timeout_sec, "the cell timeout")
    if options.exports_dir is not None and not options.exports_dir.is_dir():
        raise UsageError(f"--exports-dir {options.exports_dir} is not a folder: give the service's export files")
    if options.signing_key is not None and not options.signing_key.is_file():
        raise UsageError(f"no signing key at {options.signing_key}")
    if not options.notebooks_dir.is_dir():
        raise UsageError(f"the phase notebooks are not at {options.notebooks_dir}: the installation is incomplete")
    base_url = parse_base_url(options.base_url) if options.base_url is not None else None
    workdir = (options.workdir or Path.cwd()).absolute()
    pytest_target = options.pytest_target or (DEFAULT_PYTEST_TARGET if options.profile.is_reference else None)
    smoke = Path(pytest_target.split("::")[0]) if pytest_target else None
    if smoke is not None and not (smoke if smoke.is_absolute() else workdir / smoke).exists():
        raise UsageError(
            f"the smoke target {pytest_target} does not exist (looked in {workdir}): give "
            "--pytest-target, or run from the checkout that holds it"
        )
    database_url = options.database_url
    if database_url is not None and engine_name(database_url) == "sqlite" and not sqlite_path(database_url).is_file():
        # Connecting would create an empty file there, and the run would judge it: a NO-GO and a
        # deploy freeze for a mistyped path. A run never creates the database it judges.
        raise DatabaseUnavailable(f"no SQLite database at {sqlite_path(database_url)}: give the target's database file")
    return dataclasses.replace(
        options,
        base_url=base_url,
        workdir=workdir,
        pytest_target=pytest_target,
        phases=tuple(dict.fromkeys(options.phases)),
    )


def _quiet_notebook_loggers() -> None:
    """papermill, nbclient and traitlets log through Python's last-resort handler (stderr) when
    nothing is configured: a dead kernel would print a line before the runner's one-line
    verdict. What they say is in the executed notebook and evidence.json already."""
    for name in ("papermill", "nbclient", "traitlets", "asyncio"):  # asyncio: a kernel task cut short by Ctrl-C
        logger = logging.getLogger(name)
        if not logger.handlers:
            logger.addHandler(logging.NullHandler())


def lock_target(options: RunOptions) -> str:
    """What a run's lock is named after: which database it works on however its URL is spelled
    (``core.db.database_key``: one database under two spellings is one target), else its service."""
    if options.database_url:
        return database_key(options.database_url)
    return redact_text(str(options.base_url))


def _backup_name(settings: Settings, started: dt.datetime, run_id: str, taken: frozenset[str]) -> str:
    from aris3nb.backup.create import backups_dir, check_name

    name = f"pre_deploy_{started:%Y%m%d_%H%M}"
    if name in taken or (backups_dir(settings) / name).exists():
        name = f"{name}_{run_id.rsplit('-', 1)[-1]}"
    check_name(name)
    return name


def run_playbook(
    options: RunOptions,
    settings: Settings,
    *,
    on_phase: Callable[[str, str], None] | None = None,
    on_cell: Callable[[int, int], None] | None = None,
    on_run_id: Callable[[str], None] | None = None,
    lock_doubts: Callable[[], list[str]] | None = None,
    fork_server: ForkServer | None = None,
) -> RunResult:
    """Run the playbook's phases and seal the run's evidence bundle; the result's verdict
    and exit code say how it went. Raises only for input it cannot act on (exit 2).
    ``fork_server``: the caller's, already warming up (``forks.early_fork_server``), to fork the
    kernels from; not given, the run starts its own (``OPS_FORK_KERNELS``).
    ``on_run_id`` is told the run's id as soon as it is made (a bucket run's lock names it);
    ``lock_doubts()``, asked just before the run is sealed, says why the run may not have held
    its bucket lock alone: each reason is a run warning (never a plain PASS)."""
    from aris3nb.evidence import bundle

    # Not given: the environment's (DATABASE_URL, OPS_REVERT_COMMAND, OPS_CELL_TIMEOUT_SEC), for
    # the CLI and callers alike.
    options = dataclasses.replace(
        options,
        database_url=options.database_url or settings.target.database_url,
        revert_command=options.revert_command or settings.run.revert_command,
        cell_timeout_sec=options.cell_timeout_sec or settings.run.cell_timeout_sec,
    )
    options = validate_run_options(options)
    if "drill" in (options.phases or DEFAULT_PHASES) and not options.embedded and not settings.backup.drill_enabled:
        from aris3nb.core.errors import DrillDisabled

        raise DrillDisabled(
            "the playbook's restore drill is disabled on this target: set OPS_ENABLE_BACKUP_DRILL=true "
            "to run it (a run without its drill is never GO), or name the phases to run without it"
        )
    _quiet_notebook_loggers()
    if options.out is not None:
        settings = settings.updated(artifacts={"dir": options.out})
    settings = settings.updated(artifacts={"dir": settings.artifacts.dir.absolute()})
    started = dt.datetime.now(dt.UTC)
    run_id = new_run_id(started)
    if on_run_id is not None:
        on_run_id(run_id)
    run_dir = settings.artifacts.dir / RUNS_DIRNAME / run_id
    held = contextlib.ExitStack()
    if not options.embedded:  # the embedded default's target is this run's own
        from aris3nb.evidence.run_lock import target_lock

        held.enter_context(
            target_lock(
                settings.artifacts.dir,
                lock_target(options),
                run_id=run_id,
                started_at=utc_text(started),
                wait_sec=settings.run.lock_wait_sec,
                on_wait=(lambda line: on_phase("waiting", line)) if on_phase else None,
            )
        )
    with held:
        run_dir.mkdir(parents=True, mode=0o700)
        run = _Run(
            options,
            settings,
            run_id,
            run_dir,
            secrets=_secrets(options, settings),
            backup_name=_backup_name(settings, started, run_id, options.backup_names_taken),
        )
        requested = options.phases or DEFAULT_PHASES
        triggers: list[Trigger] = []
        try:
            with contextlib.ExitStack() as stack:
                for root in scratch_roots(settings.artifacts.memory_dir):  # what killed runs left behind
                    sweep(root, SCRATCH_PATTERN)
                input_dir = Path(
                    stack.enter_context(tempfile.TemporaryDirectory(prefix=f"aris3nb-nb-pid{os.getpid()}-"))
                )
                kernels = Kernels(
                    _kernel_env(run),
                    options.workdir or Path.cwd(),
                    input_dir,
                    fork=run.settings.run.fork_kernels,
                    server=fork_server,
                )
                stack.callback(kernels.close)
                kernels.start_next()  # the first kernel boots while the target starts
                run.target = stack.enter_context(open_target(options, settings))
                planned = [phase for phase in PHASES if phase.name in requested]
                for position, phase in enumerate(planned):
                    if no_latency_measured_from(planned, position):
                        run.warm_index()
                    _run_phase(
                        run,
                        phase,
                        kernels,
                        input_dir,
                        start_another=position + 1 < len(planned),
                        on_phase=on_phase,
                        on_cell=on_cell,
                    )
                triggers = _triggers(run)
                if triggers and not options.phases:  # phases named by hand: the rollback runs only when named
                    _run_phase(
                        run,
                        PHASE_BY_NAME[ROLLBACK],
                        kernels,
                        input_dir,
                        start_another=False,
                        on_phase=on_phase,
                        on_cell=on_cell,
                    )
        except KeyboardInterrupt:
            run.interrupted = True
        finally:
            run.finish_renders()
            run.renderer.shutdown()
        if lock_doubts is not None:
            run.warnings += lock_doubts()
        return seal(run, started, triggers, bundle)


def no_latency_measured_from(planned: Sequence[Phase], position: int) -> bool:
    """Whether no phase from ``planned[position]`` on measures latency (``Phase.quiet``): the
    runner's own work may then run beside the phases."""
    return not any(phase.quiet for phase in planned[position:])


def _triggers(run: _Run) -> list[Trigger]:
    """The rollback triggers the run's phases so far have fired."""
    return evaluate_triggers([p.as_document(True) for p in run.phases])


def _run_phase(
    run: _Run,
    phase: Phase,
    kernels: Kernels,
    input_dir: Path,
    *,
    start_another: bool,
    on_phase: Callable[[str, str], None] | None,
    on_cell: Callable[[int, int], None] | None,
) -> None:
    """Run ``phase`` (or record why it is skipped) and add it to the run."""
    phase_run = PhaseRun(phase)
    skip = _should_run(run, phase, explicit=bool(run.options.phases))
    triggers = _triggers(run)
    run.phases.append(phase_run)
    if skip is not None:
        phase_run.reasons = [skip]
        return
    phase_run.parameters = _parameters(run, phase, triggers)
    if phase.quiet:
        run.finish_renders()
    if on_phase is not None:
        on_phase(phase.name, phase.title)
    _execute_phase(run, phase_run, kernels.take(start_another=start_another), input_dir, on_cell)


def _given_again(given: str | None, recorded: str | None, option: str) -> str | None:
    """The URL a re-run targets: the one given now, which must be the run's (its redacted
    form equal to the one recorded); nothing recorded: none."""
    if not recorded:
        return None
    if not given:
        raise UsageError(f"the run's target was {recorded}: give {option} again (a password is never kept in evidence)")
    spelled_alike = recorded in (redact_url(given), redact_text(given))
    if not spelled_alike and not (option == "--database-url" and same_database(recorded, given)):
        raise UsageError(
            f"{option} names {redact_text(given)}, but the run's target was {recorded}: a re-run judges the same target"
        )
    return given


def rerun_options(
    settings: Settings, run_id: str, phase: str, base: RunOptions, public_key: Path | None = None
) -> RunOptions:
    """The options of an earlier run, for one phase again: the same parameters, the same
    kind of target (the embedded default gets a fresh one; URLs are resolved again).

    Only a run id of this artifacts folder is accepted (no path), and the run must verify
    (its signature too, against ``public_key`` when given): its parameters decide what the
    re-run checks, so a changed bundle is refused (``EvidenceInvalid``, exit 1).
    """
    from aris3nb.evidence.bundle import next_link, read_evidence, verify_run

    if phase not in PHASE_BY_NAME:
        raise UsageError(f"unknown phase {phase}; phases: {', '.join(PHASE_BY_NAME)}")
    if not RUN_ID_PATTERN.match(run_id):
        raise UsageError(
            f"--rerun takes a run id such as 20261129T153441Z-1a2b3c (a folder name under "
            f"OPS_ARTIFACTS_DIR/{RUNS_DIRNAME}), not {run_id[:80]!r}"
        )
    out = base.out or settings.artifacts.dir
    run_dir = out / RUNS_DIRNAME / run_id
    if not (run_dir / "evidence.json").is_file():
        raise UsageError(f"no run {run_id} under {out / RUNS_DIRNAME}")
    verification = verify_run(run_dir, public_key=public_key)
    verification.raise_if_invalid()
    link = next_link(run_dir)
    linked = str(link.get("digest")) if link else None
    if linked is not None and linked != verification.digest:
        raise EvidenceInvalid(
            run_dir,
            [
                f"evidence.json of run {run_id} was changed after it was sealed: the next run's "
                "link holds another digest"
            ],
        )
    unprotected = (
        None
        if verification.signed or linked
        else (
            f"run {run_id} is unsigned and no later run links it yet: its evidence.json "
            "(the parameters this re-run takes) could have been changed unseen"
        )
    )
    document = read_evidence(run_dir / "evidence.json")
    parameters, target = document.get("parameters") or {}, document.get("target") or {}
    database_url = base_url = None
    if target.get("mode") != "embedded":  # the same target again; its password was never kept
        database_url = _given_again(
            base.database_url or settings.target.database_url, target.get("database_url"), "--database-url"
        )
    if target.get("mode") == "base_url":
        base_url = _given_again(base.base_url or settings.target.base_url, target.get("base_url"), "--base-url")
    drilled = next(
        (
            p.get("parameters", {}).get("manifest")
            for p in document.get("phases") or []
            if isinstance(p, dict) and p.get("phase") == phase and isinstance(p.get("parameters"), dict)
        ),
        None,
    )
    return dataclasses.replace(
        base,
        phases=(phase,),
        database_url=database_url,
        base_url=base_url,
        rerun_of=run_id,
        strict=bool(parameters.get("strict", base.strict)),
        budgets_ms=parameters.get("budgets_ms") or base.budgets_ms,
        pytest_target=parameters.get("pytest_target") or base.pytest_target,
        scale=parameters.get("scale") or base.scale,
        manifest=base.manifest or (Path(drilled) if isinstance(drilled, str) else None),
        rerun_warning=unprotected,
    )
