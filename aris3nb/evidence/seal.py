"""A run's end: its verdict and decision, its metrics, the code and tools that made it, and
``evidence.json`` sealed into the bundle (with the runs index written afterwards)."""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import json
import platform
import subprocess
from collections.abc import Sequence
from importlib import metadata as importlib_metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aris3nb import __version__
from aris3nb.core.checks import Verdict
from aris3nb.core.errors import Aris3nbError
from aris3nb.core.ids import utc_text
from aris3nb.core.redact import redact_text, redact_url
from aris3nb.evidence.marks import NOTEBOOKS_DIR
from aris3nb.evidence.record import PhaseRun, RunResult
from aris3nb.phases import ROLLBACK, Trigger
from aris3nb.targets.revision import GIT_TIMEOUT_SEC, git_commit, target_code_revision

if TYPE_CHECKING:
    from aris3nb.evidence.runner import Target, _Run

EXIT_INTERRUPTED = 130
#: The decision (and verdict) of a run stopped by Ctrl-C: what ran is sealed, nothing was judged.
INTERRUPTED = "INTERRUPTED"
#: Where the drill's permission came from, for the evidence.
DRILLS_ENABLED_BY_EMBEDDED = "the embedded default, for its own disposable target only"


def decide(run: _Run, triggers: Sequence[Trigger]) -> tuple[Verdict, str, int]:
    verdicts = {p.verdict for p in run.phases if p.verdict}
    # A phase the playbook required that did not run proved nothing: never GO without it.
    not_run = any(p.status == "skipped" and p.phase.name != ROLLBACK for p in run.phases)
    if run.interrupted or "FAIL" in verdicts or not run.phases or not_run:
        verdict = Verdict.FAIL
    elif "PASS_WITH_WARNINGS" in verdicts or run.options.rerun_warning or run.warnings:  # never plain PASS
        verdict = Verdict.FAIL if run.options.strict else Verdict.PASS_WITH_WARNINGS
    else:
        verdict = Verdict.PASS
    rolled_back = any(p.phase.name == ROLLBACK and p.status != "skipped" for p in run.phases)
    decision = "NO-GO" if verdict is Verdict.FAIL or triggers or rolled_back else "GO"
    if run.interrupted:  # stopped, not judged: neither GO nor a check that failed
        return verdict, INTERRUPTED, EXIT_INTERRUPTED
    return verdict, decision, 0 if decision == "GO" else 1


def _metrics(run: _Run) -> dict[str, Any]:
    metrics: dict[str, Any] = {"latency_p95_ms": None, "drill_rto_sec": None, "backup_bytes": None}
    for phase_run in run.phases:  # later phases win: post-deploy latency over the gate's
        for key, value in ((phase_run.result or {}).get("metrics") or {}).items():
            if value is not None:
                metrics[key] = value
    return metrics


def _git_commit() -> dict[str, Any]:
    """The commit, branch and cleanliness of the checkout the notebooks came from (clean or
    dirty as every report says it: ``aris3nb.targets.revision.git_commit``)."""
    root = NOTEBOOKS_DIR.parent
    revision = git_commit(root)
    branch = None
    if revision["git_commit"]:
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            done = subprocess.run(
                ["git", "-C", str(root), "rev-parse", "--abbrev-ref", "HEAD"],
                capture_output=True,
                text=True,
                timeout=GIT_TIMEOUT_SEC,
                check=False,
            )
            branch = done.stdout.strip() if done.returncode == 0 else None
    return {"commit": revision["git_commit"], "branch": branch, "dirty": revision["git_dirty"]}


def _tools() -> dict[str, str | None]:
    tools: dict[str, str | None] = {"python": platform.python_version()}
    for name in (
        "papermill",
        "nbclient",
        "nbconvert",
        "nbformat",
        "ipykernel",
        "jupyter_client",
        "pandas",
        "matplotlib",
        "sqlalchemy",
        "alembic",
        "cryptography",
    ):
        try:
            tools[name] = importlib_metadata.version(name)
        except importlib_metadata.PackageNotFoundError:
            tools[name] = None
    return tools


def seal(
    run: _Run, started: dt.datetime, triggers: Sequence[Trigger], bundle: Any, *, executed_by: str = "aris3nb run"
) -> RunResult:
    from aris3nb.evidence.index import write_index

    finished = dt.datetime.now(dt.UTC)
    verdict, decision, exit_code = decide(run, triggers)
    options = run.options
    target = run.target
    document = {
        "run_id": run.run_id,
        "started_at": utc_text(started),
        "finished_at": utc_text(finished),
        "duration_sec": round((finished - started).total_seconds(), 3),
        "verdict": INTERRUPTED if run.interrupted else str(verdict),
        "decision": decision,
        "exit_code": exit_code,
        "interrupted": run.interrupted,
        "target": {
            "mode": target.mode if target else None,
            "description": target.description if target else None,
            "base_url": redact_text(target.base_url) if target and target.base_url else None,
            "database_url": redact_url(target.database_url) if target and target.database_url else None,
        },
        "parameters": {
            "phases": list(options.phases) or "default",
            "strict": options.strict,
            "confirm_restore": options.confirm_restore,
            "budgets_ms": dict(options.budgets_ms),
            "pytest_target": options.pytest_target,
            "cell_timeout_sec": options.cell_timeout_sec,
            "scale": options.scale if target and target.mode == "embedded" else None,
            "revert_command": redact_text(options.revert_command, run.secrets) if options.revert_command else None,
            "signed": options.signing_key is not None,
            "rerun_of": options.rerun_of,
            "manifest": str(options.manifest) if options.manifest else None,
            "terminate_sessions": options.terminate_sessions,
            "exports_dir": str(options.exports_dir) if options.exports_dir else None,
            "drills_enabled_by": DRILLS_ENABLED_BY_EMBEDDED
            if options.embedded and executed_by == "aris3nb run"
            else ("OPS_ENABLE_BACKUP_DRILL" if run.settings.backup.drill_enabled else None),
            "executed_by": executed_by,
            "rerun_warning": options.rerun_warning,
        },
        "profile": {**options.profile.as_evidence(), "code_revision": target_code_revision(options.profile)},
        "warnings": list(run.warnings),
        "triggers": [dataclasses.asdict(t) for t in triggers],
        "phases": [
            p.as_document(notebook=(run.run_dir / f"{Path(p.phase.notebook).stem}.ipynb").is_file()) for p in run.phases
        ],
        "metrics": _metrics(run),
        "code": {"aris3nb_version": __version__, **_git_commit()},
        "tools": _tools(),
    }
    document = json.loads(redact_text(json.dumps(document), run.secrets))
    evidence_path = bundle.seal_run(run.run_dir, document, signing_key=options.signing_key)
    try:
        index_path, index_problem = write_index(run.settings.artifacts.dir), None
    except (OSError, RuntimeError) as exc:  # the run is sealed and valid; only its listing is missing
        index_path, index_problem = None, f"index.html not written: {getattr(exc, 'strerror', None) or exc}"
    embedded = options.embedded and executed_by == "aris3nb run"
    warnings = [] if options.signing_key is not None else _unsigned_after_signed(evidence_path)
    if run.settings.artifacts.shown_as is None:  # on a bucket the staging folder holds only the link's evidence.json
        warnings += _previous_does_not_verify(evidence_path, bundle)
    forgotten: list[str] = []
    if embedded:
        forgotten, problem = _forget_embedded_backups(run.settings, run.run_dir.parent)
        warnings += [problem] if problem else []
    return RunResult(
        run.run_id,
        run.run_dir,
        verdict,
        decision,
        exit_code,
        run.phases,
        list(triggers),
        evidence_path,
        index_path,
        index_problem,
        forgotten,
        warnings,
    )


def _previous_run(evidence_path: Path) -> str | None:
    """The run id a sealed run's evidence.json links to (None: none, or unreadable)."""
    try:
        previous = (json.loads(evidence_path.read_text(encoding="utf-8")).get("previous") or {}).get("run_id")
    except (OSError, ValueError, AttributeError):
        return None
    return previous if isinstance(previous, str) and previous else None


def _unsigned_after_signed(evidence_path: Path) -> list[str]:
    """A warning when this unsigned run follows a signed one in the chain: a verifier holding
    the trusted keys will refuse it (`evidence verify --trusted-keys`), so say it now."""
    previous = _previous_run(evidence_path)
    if previous is None:
        return []
    try:
        earlier = json.loads((evidence_path.parent.parent / previous / evidence_path.name).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []
    if not earlier.get("signature"):
        return []
    return [
        f"this run is not signed, but the run before it ({previous}) is: `evidence verify --trusted-keys` will "
        "refuse it; give --signing-key to every run of a signed chain"
    ]


def _previous_does_not_verify(evidence_path: Path, bundle: Any) -> list[str]:
    """A warning when the run this one links to no longer verifies (a file of it changed,
    added or removed since it was sealed): the new link does not vouch for it, and only
    `evidence verify` of the chain would otherwise show it."""
    previous = _previous_run(evidence_path)
    if previous is None:
        return []
    folder = evidence_path.parent.parent / previous
    try:
        problems = bundle.verify_run(folder).problems
    except (OSError, Aris3nbError) as exc:
        problems = [str(exc)]
    if not problems:
        return []
    return [
        f"the run before this one, {previous}, does not verify ({len(problems)} "
        f"{'problem' if len(problems) == 1 else 'problems'}, e.g. {problems[0]}): this run links to it as it "
        f"was sealed; see `aris3nb evidence verify {folder}`"
    ]


#: A backup of the embedded default: its source is a throwaway folder the runner made.
EMBEDDED_SOURCE = "aris3nb-run-embedded-pid"


def _forget_embedded_backups(settings: Any, runs_dir: Path) -> tuple[list[str], str | None]:
    """The embedded default's small retention policy: its disposable databases' backups beyond
    the newest ``OPS_EMBEDDED_KEEP_LAST`` are removed (never the one the last GO run drilled);
    returns them, and why none could be removed when that failed. A failure here never changes
    the sealed run: it is said (a warning), and the next run tries again."""
    from aris3nb.backup.retention import Policy, drilled_by_go_runs, forget
    from aris3nb.core.errors import Aris3nbError

    keep = int(settings.artifacts.embedded_keep_last)
    if keep <= 0:
        return [], None
    try:
        result = forget(
            settings,
            Policy(last=keep),
            drilled=drilled_by_go_runs(runs_dir),
            only=lambda entry: EMBEDDED_SOURCE in entry.group,
            group_as="the embedded default's disposable databases",
        )
    except (OSError, Aris3nbError) as exc:
        reason = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
        return [], f"the embedded default's older backups were not removed (OPS_EMBEDDED_KEEP_LAST): {reason}"
    return result.removed, None


def seal_notebooks(run_dir: Path, settings: Any, *, signing_key: Path | None = None) -> RunResult:
    """Seal phase notebooks executed elsewhere (``papermill --engine aris3nb``, Airflow's
    PapermillOperator) into a bundle, as ``aris3nb run`` seals its own: each phase's status as
    the engine recorded it (or judged from the notebook when it did not), its result from the
    notebook, the banner and marks, the HTML pages, the triggers, the verdict, ``evidence.json``.

    ``run_dir`` is the run folder the notebooks were written to (named like a run id, e.g.
    ``artifacts/runs/20261129T120000Z-a1b2c3``), each notebook under its phase's file name. A
    phase whose notebook is missing did not run: the run is then NO-GO (a planned phase not run).
    """
    from aris3nb.core.errors import UsageError
    from aris3nb.core.files import write_text_evidence
    from aris3nb.core.ids import RUN_ID_PATTERN
    from aris3nb.evidence import bundle
    from aris3nb.evidence.marks import finish_notebook, judge_execution, notebook_format, recorded_run
    from aris3nb.evidence.render import notebook_html
    from aris3nb.evidence.runner import RunOptions, _Run
    from aris3nb.phases import PHASES, evaluate_triggers

    run_dir = Path(run_dir).absolute()
    if not run_dir.is_dir():
        raise UsageError(f"no run folder at {run_dir}")
    if not RUN_ID_PATTERN.match(run_dir.name):
        raise UsageError(
            f"{run_dir.name!r} is not a run id: write the notebooks into a folder named like "
            "20261129T120000Z-a1b2c3 (the order the chain of runs follows)"
        )
    nbformat = notebook_format()
    present = [phase for phase in PHASES if (run_dir / phase.notebook).is_file()]
    if not present:
        raise UsageError(f"no phase notebook in {run_dir} (expected e.g. {PHASES[0].notebook})")
    planned = tuple(phase.name for phase in present)
    run = _Run(
        RunOptions(phases=planned, signing_key=signing_key),
        settings.updated(artifacts={"dir": run_dir.parent.parent}),
        run_dir.name,
        run_dir,
    )
    started = None
    for phase in present:
        path = run_dir / phase.notebook
        notebook = nbformat.read(path, as_version=4)
        recorded = recorded_run(notebook, phase)
        if recorded is not None:
            phase_run, failed_cell = recorded
        else:  # not executed by the aris3nb engine: judged from what the notebook holds
            phase_run = PhaseRun(phase)
            failed_cell = judge_execution(notebook, None, phase_run, last_started=None)
            phase_run.reasons.append(
                "not executed with the aris3nb engine: a timeout or a dead kernel would not "
                "show (papermill --engine aris3nb)"
            )
        run.phases.append(phase_run)
        moment = _parse_time(phase_run.started_at)
        started = min(started, moment) if started and moment else (started or moment)
        final = finish_notebook(notebook, run.run_id, phase_run, failed_cell, [])
        write_text_evidence(run_dir, path.name, nbformat.writes(final))
        write_text_evidence(run_dir, path.with_suffix(".html").name, notebook_html(final))
    run.target, differing = _judged_target(run_dir, [phase.name for phase in present])
    run.warnings += differing
    triggers = evaluate_triggers([p.as_document(True) for p in run.phases])
    return seal(run, started or dt.datetime.now(dt.UTC), triggers, bundle, executed_by="papermill --engine aris3nb")


#: What a sealed run's target says of a gate that reached no service (its summary's URLs null).
NO_SERVICE = "no service reached"


def _judged_target(run_dir: Path, phases: Sequence[str]) -> tuple[Target | None, list[str]]:
    """The service and database the run's gates judged, as their summaries recorded them (the
    notebooks were given them by whoever ran them, not by aris3nb): the sealed run's target,
    None when no gate summary is readable. Warnings: a gate summary that cannot be read (the
    target it judged is unknown, so it cannot be said to be the run's), and gates that judged
    different services or databases (a run judges one target)."""
    from aris3nb.core.errors import UsageError
    from aris3nb.evidence.runner import Target
    from aris3nb.gate.runner import read_gate_summary

    judged: dict[str, tuple[str | None, str | None]] = {}
    warnings: list[str] = []
    for phase in phases:
        for path in sorted((run_dir / phase).glob("gate_summary_*.json")):
            try:
                inputs = read_gate_summary(path)["inputs"]
            except UsageError as exc:
                warnings.append(f"{phase}: the target its gate judged is unknown: {exc}")
                continue
            service = inputs["base_url"] or inputs["live_target"]  # no base_url: it served its own embedded one
            judged[phase] = (redact_text(service) if service else None, inputs["database_url"])
    if not judged:
        return None, warnings
    base_url, database_url = next(iter(judged.values()))
    shown = base_url or NO_SERVICE
    target = Target("base_url", base_url, database_url, None, f"{shown} (as the phase notebooks were given it)")
    if len(set(judged.values())) == 1:
        return target, warnings
    seen = "; ".join(
        f"{phase}: {url or NO_SERVICE} over {redact_url(database) if database else 'no database'}"
        for phase, (url, database) in judged.items()
    )
    return target, [*warnings, f"the phases' gates judged different targets ({seen}): one run judges one target"]


def _parse_time(text: str | None) -> dt.datetime | None:
    try:
        return dt.datetime.fromisoformat(str(text).replace("Z", "+00:00")) if text else None
    except ValueError:
        return None
