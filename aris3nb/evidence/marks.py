"""The runner's marks in an executed notebook: the phase's notebook read clean (no stored
outputs), the cell that started last tracked, how an execution ended classified into a
status, papermill's own error cells replaced by the runner's banner on top and the failed
cell marked (tagged ``aris3nb-failed-cell``), the status in the notebook's metadata, and
every known secret scrubbed out."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aris3nb.core.errors import Aris3nbError, UsageError
from aris3nb.core.redact import redact_text
from aris3nb.evidence.display import Banner, checked_result_in
from aris3nb.evidence.record import PhaseRun
from aris3nb.phases import Phase
from aris3nb.resources import NOTEBOOKS_DIR as NOTEBOOKS_DIR  # the package's copy installed, the checkout's otherwise

if TYPE_CHECKING:
    import nbformat
    from nbformat import NotebookNode


def notebook_format() -> Any:
    """nbformat, loaded on first use. jsonschema (which nbformat imports) compiles
    rfc3987-syntax's grammar on import — 0.4 s, several on a busy machine — only to check
    "iri" string formats, which notebook validation never asks for: that one module is left
    out of this process, here, where the runner first needs nbformat (never at import time)."""
    sys.modules.setdefault("rfc3987_syntax", None)  # type: ignore[arg-type]
    import nbformat

    return nbformat


FAILED_CELL_TAG = "aris3nb-failed-cell"
MARKER_TAG = "aris3nb-marker"

STATUS_WORDS = {
    "completed": "completed",
    "failed": "FAILED its checks",
    "error": "stopped by an error",
    "timeout": "stopped: cell timeout",
    "dead_kernel": "stopped: the kernel died",
    "interrupted": "interrupted",
}


def phase_notebook(phase: Phase, folder: Path = NOTEBOOKS_DIR) -> nbformat.NotebookNode:
    """The phase's notebook from ``folder`` (default: the shipped ``notebooks/``), with any
    stored outputs cleared: an executed notebook must show only what this run produced."""
    nbformat = notebook_format()
    path = folder / phase.notebook
    try:
        notebook: NotebookNode = nbformat.read(path, as_version=4)
    except (OSError, ValueError) as exc:
        raise UsageError(f"cannot read the {phase.name} notebook {path}: {exc}") from exc
    for cell in notebook.cells:
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
        cell.metadata.pop("execution", None)
        cell.metadata.pop("papermill", None)
    return notebook


def notebook_parameters(phase: Phase, folder: Path = NOTEBOOKS_DIR) -> list[str]:
    """The names the phase notebook's ``parameters`` cell declares (papermill's inspection)."""
    import papermill

    return list(papermill.inspect_notebook(str(folder / phase.notebook)))


@dataclass
class CellTracker:
    """The cell that started last: the one running now (progress display), and the one that
    failed when execution stops (execution stops at the first cell that does not complete)."""

    total: int
    on_cell: Callable[[int, int], None] | None
    last_started: str | None = None
    chained: Callable[..., Any] | None = None  # another on_cell_start hook, called after

    def start(self, cell: Any, cell_index: int, **kwargs: Any) -> None:
        self.last_started = cell.get("id")
        if self.on_cell is not None:
            self.on_cell(cell_index + 1, self.total)
        if self.chained is not None:
            self.chained(cell=cell, cell_index=cell_index, **kwargs)


def classify(exc: BaseException) -> tuple[str, str]:
    """(status, one-line reason) of a phase whose execution raised ``exc``."""
    from nbclient.exceptions import CellTimeoutError, DeadKernelError
    from papermill.exceptions import PapermillExecutionError

    from aris3nb.evidence.kernel_client import KernelDiedAtStart

    if isinstance(exc, PapermillExecutionError):
        return _classify_error(exc.ename, exc.evalue)
    if isinstance(exc, CellTimeoutError):
        return "timeout", "a cell ran past the cell timeout and was stopped"
    if isinstance(exc, KernelDiedAtStart):
        return "dead_kernel", "the kernel died as it started, before any cell ran"
    if isinstance(exc, DeadKernelError):
        return "dead_kernel", "the kernel died while a cell ran"
    if isinstance(exc, KeyboardInterrupt):
        return "interrupted", "the run was interrupted"
    return "error", f"{type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''}"


def _output_cell(comment: str, banner: Banner, tags: list[str]) -> nbformat.NotebookNode:
    """A cell the runner inserts: a comment as its source, ``banner`` as its output."""
    nbformat = notebook_format()
    cell: NotebookNode = nbformat.v4.new_code_cell(f"# {comment}")
    cell.outputs = [
        nbformat.v4.new_output("display_data", data={"text/html": banner._repr_html_(), "text/plain": repr(banner)})
    ]
    cell.metadata["tags"] = tags
    # What papermill keeps of every cell, so that its own passes over the notebook accept this one.
    cell.metadata["papermill"] = {
        "status": "completed",
        "exception": False,
        "start_time": None,
        "end_time": None,
        "duration": None,
    }
    return cell


def target_note(notebook: Any) -> str:
    """What the banner says of the target: the profile the phase judged with (name, SHA-256 of
    its file) and the target's code revision (git commit, Alembic head), from the notebook's
    ``profile`` parameter; empty for a notebook without one."""
    from aris3nb.targets.profile import load_target_profile
    from aris3nb.targets.revision import cached_code_revision

    parameters = (notebook.metadata.get("papermill") or {}).get("parameters") or {}
    if "profile" not in parameters:
        return ""
    try:
        loaded = load_target_profile(parameters.get("profile"))
    except Aris3nbError as exc:
        return f" · profile unreadable: {exc}"
    revision = cached_code_revision(loaded)
    commit = revision.get("git_commit")
    code = f"git {commit[:12]}{' (dirty)' if revision.get('git_dirty') else ''}" if commit else "no git commit"
    return (
        f" · profile {loaded.profile.name} ({f'sha256:{loaded.sha256[:12]}' if loaded.sha256 else 'built in'})"
        f" · code {code}, Alembic head {revision.get('alembic_head') or 'unknown'}"
    )


def _banner_cell(run_id: str, phase_run: PhaseRun, target: str = "") -> nbformat.NotebookNode:
    """The verdict at the top of the executed notebook, with the status the runner saw."""
    note = (
        f"Run {run_id} · {STATUS_WORDS.get(phase_run.status, phase_run.status)} · "
        f"{phase_run.duration_sec:.1f} s · started {phase_run.started_at or '-'}{target}"
    )
    if phase_run.failed_cell is not None:
        note += f" · the failing cell is marked below (tagged {FAILED_CELL_TAG})"
    banner = Banner(phase_run.phase.title, phase_run.verdict or "FAIL", phase_run.reasons, note=note)
    return _output_cell(
        "The verdict of this phase, written by the aris3nb runner once the notebook ran.",
        banner,
        [MARKER_TAG, "aris3nb-banner"],
    )


def _mark_failed_cell(notebook: nbformat.NotebookNode, phase_run: PhaseRun, cell_id: str | None) -> None:
    index = next((i for i, cell in enumerate(notebook.cells) if cell_id and cell.get("id") == cell_id), None)
    if index is None:
        return
    cell = notebook.cells[index]
    cell.metadata.setdefault("tags", []).append(FAILED_CELL_TAG)
    cell.metadata["aris3nb"] = {"status": phase_run.status}
    cell.metadata.setdefault("papermill", {})["status"] = "failed"
    banner = Banner(
        "This cell did not complete", STATUS_WORDS.get(phase_run.status, phase_run.status), phase_run.reasons[:1]
    )
    notebook.cells.insert(
        index, _output_cell("The cell below did not complete (marked by the aris3nb runner).", banner, [MARKER_TAG])
    )
    phase_run.failed_cell = {"index": None, "id": cell_id, "execution_count": cell.get("execution_count")}


def phase_of_notebook(notebook: Any, path: str | Path | None = None) -> Phase:
    """The phase a notebook is of: its ``metadata.aris3nb.phase``, else its file's name."""
    from aris3nb.phases import PHASE_BY_NAME, PHASES

    named = (notebook.get("metadata") or {}).get("aris3nb", {}).get("phase")
    if named in PHASE_BY_NAME:
        return PHASE_BY_NAME[named]
    stem = Path(str(path or "")).stem
    found = next((phase for phase in PHASES if Path(phase.notebook).stem == stem), None)
    return found or Phase(
        name=stem or "notebook", notebook=f"{stem or 'notebook'}.ipynb", title=stem or "notebook", parameters=()
    )


def _error_output(notebook: Any) -> tuple[str, str] | None:
    """The (ename, evalue) of the first error a cell raised (papermill keeps executing no cell after it)."""
    for cell in notebook.cells:
        for output in cell.get("outputs") or [] if cell.get("cell_type") == "code" else []:
            if output.get("output_type") == "error":
                return str(output.get("ename")), str(output.get("evalue"))
    return None


def judge_execution(
    notebook: Any, raised: BaseException | None, phase_run: PhaseRun, *, last_started: str | None
) -> str | None:
    """Judge how a phase notebook's execution ended, into ``phase_run`` (status, reasons,
    result, verdict); return the id of the cell that did not complete (None when all did).

    One judgement for every caller (the runner and the papermill engine): what the execution
    raised (a timeout, a dead kernel, Ctrl-C), else the first error a cell raised
    (``PhaseFailed``: the phase's checks FAILed), else completed; then the phase result the
    notebook carries decides the verdict (a notebook that never concluded is an error)."""
    failed_cell = None
    if raised is not None and not _is_papermill_cell_error(raised):
        status, reason = classify(raised)
        failed_cell = last_started
    elif (error := _error_output(notebook)) is not None:
        status, reason = _classify_error(*error)
        failed_cell = next(
            (
                c.get("id")
                for c in notebook.cells
                if (c.get("metadata") or {}).get("papermill", {}).get("status") == "failed"
            ),
            last_started,
        )
    else:
        status, reason = "completed", None
    phase_run.status = status
    phase_run.reasons = [reason] if reason else []
    phase_run.result, refused = checked_result_in(notebook)
    if phase_run.result is not None:
        phase_run.verdict = phase_run.result["verdict"]
        phase_run.reasons = list(phase_run.result.get("reasons") or []) or phase_run.reasons
        if phase_run.status == "failed" and phase_run.verdict != "FAIL":
            phase_run.status = "error"
    elif phase_run.status == "completed":
        phase_run.status = "error"
        phase_run.reasons.append(
            f"the phase result the notebook carries is not one a phase concludes with: {refused}"
            if refused
            else "the notebook ended without concluding its phase (no phase result in it)"
        )
    if phase_run.status != "completed":  # stopped, not judged: an interruption is not a failed check
        phase_run.verdict = "INTERRUPTED" if phase_run.status == "interrupted" else "FAIL"
    return failed_cell


def _is_papermill_cell_error(exc: BaseException) -> bool:
    from papermill.exceptions import PapermillExecutionError

    return isinstance(exc, PapermillExecutionError)


def _classify_error(ename: str, evalue: str) -> tuple[str, str]:
    if ename == "PhaseFailed":
        return "failed", evalue
    if ename == "KeyboardInterrupt":
        return "interrupted", "interrupted while a cell ran"
    return "error", f"{ename}: {evalue}"


def mark_notebook(notebook: Any, run_id: str, phase_run: PhaseRun, failed_cell_id: str | None) -> None:
    """Put the phase's status into an executed notebook, in place: papermill's error cells and
    any earlier marks out, the failing cell marked, the banner on top, the status in the
    metadata. Marking again (the runner after the engine, ``evidence seal``) gives one set."""
    notebook.cells = [
        cell
        for cell in notebook.cells
        if not {"papermill-error-cell-tag", MARKER_TAG} & set(cell.metadata.get("tags", []))
    ]
    for cell in notebook.cells:
        tags = cell.metadata.get("tags", [])
        if FAILED_CELL_TAG in tags:
            tags.remove(FAILED_CELL_TAG)
            cell.metadata.pop("aris3nb", None)
    phase_run.failed_cell = None
    if phase_run.status != "completed":
        _mark_failed_cell(notebook, phase_run, failed_cell_id)
    notebook.cells.insert(0, _banner_cell(run_id, phase_run, target_note(notebook)))
    if phase_run.failed_cell is not None:  # its position in the notebook as written
        phase_run.failed_cell["index"] = next(
            i for i, cell in enumerate(notebook.cells) if FAILED_CELL_TAG in cell.metadata.get("tags", [])
        )
    papermill_meta = notebook.metadata.setdefault("papermill", {})
    papermill_meta["input_path"] = f"notebooks/{phase_run.phase.notebook}"
    papermill_meta.pop("output_path", None)
    papermill_meta["exception"] = phase_run.status != "completed"
    notebook.metadata["aris3nb"] = {
        "run_id": run_id,
        "phase": phase_run.phase.name,
        "title": phase_run.phase.title,
        "status": phase_run.status,
        "verdict": phase_run.verdict,
        "reasons": phase_run.reasons,
        "failed_cell": phase_run.failed_cell,
        "failed_cell_id": failed_cell_id,
        "started_at": phase_run.started_at,
        "duration_sec": round(phase_run.duration_sec, 3),
    }


def recorded_run(notebook: Any, phase: Phase) -> tuple[PhaseRun, str | None] | None:
    """The phase run an engine recorded in an executed notebook's metadata, or None."""
    meta = (notebook.get("metadata") or {}).get("aris3nb") or {}
    if meta.get("status") not in STATUS_WORDS and meta.get("status") != "completed":
        return None
    phase_run = PhaseRun(
        phase,
        status=meta["status"],
        verdict=meta.get("verdict"),
        reasons=list(meta.get("reasons") or []),
        started_at=meta.get("started_at"),
        duration_sec=float(meta.get("duration_sec") or 0),
    )
    phase_run.result = checked_result_in(notebook)[0]
    return phase_run, meta.get("failed_cell_id")


def finish_notebook(
    notebook: nbformat.NotebookNode,
    run_id: str,
    phase_run: PhaseRun,
    failed_cell_id: str | None,
    secrets: Sequence[str],
) -> nbformat.NotebookNode:
    """``mark_notebook``, then every known secret scrubbed out: the notebook as it is written."""
    nbformat = notebook_format()
    mark_notebook(notebook, run_id, phase_run, failed_cell_id)
    text = redact_text(json.dumps(notebook), secrets)
    scrubbed: NotebookNode = nbformat.reads(text, as_version=4)
    return scrubbed
