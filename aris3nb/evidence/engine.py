"""aris3nb as a papermill engine (``papermill --engine aris3nb``, or ``engine_name="aris3nb"``).

Every caller that speaks papermill — ``aris3nb run``, the ``papermill`` command, Airflow's
PapermillOperator — gets the same evidence from a phase notebook: the engine runs it with
papermill's nbclient engine, then, before papermill's last save, judges how it ended (one of
``completed``, ``failed``, ``error``, ``timeout``, ``dead_kernel``, ``interrupted``), puts the
verdict banner on top and marks the cell that did not complete, and records all of it in the
notebook's metadata (``metadata.aris3nb``). Whatever the execution raised is raised again, so
papermill and its callers fail as they would. ``aris3nb evidence seal RUN_DIR`` then seals
notebooks executed this way into a bundle, exactly as ``aris3nb run`` does.
"""

from __future__ import annotations

import datetime as dt
import os
import time
from pathlib import Path
from typing import Any

from aris3nb.core.ids import utc_text
from aris3nb.evidence.display import RUN_DIR_ENV
from aris3nb.evidence.marks import CellTracker, judge_execution, mark_notebook, phase_of_notebook
from aris3nb.evidence.record import PhaseRun

ENGINE_NAME = "aris3nb"
#: The engine's own keyword: the run id the banner names (default: the run folder's name).
RUN_ID_KEYWORD = "aris3nb_run_id"
#: The engine's own keyword: false saves the notebook once, when it ends, instead of as each cell
#: starts and ends as well (papermill's default, kept for its other callers, who may watch the file
#: fill). ``aris3nb run`` shows progress itself and keeps the notebook in memory until the phase
#: ends: a save is a whole notebook validated and written, twice per cell (~0.3 s a run).
SAVE_EACH_CELL_KEYWORD = "aris3nb_save_each_cell"


def ensure_registered() -> None:
    """Register the engine with papermill in this process (an installed aris3nb registers it
    through its ``papermill.engine`` entry point; a checkout on ``sys.path`` may not be installed)."""
    from papermill.engines import papermill_engines
    from papermill.exceptions import PapermillException

    try:
        registered = papermill_engines.get_engine(ENGINE_NAME)
    except PapermillException:
        registered = None
    if registered is not Aris3nbEngine:
        papermill_engines.register(ENGINE_NAME, Aris3nbEngine)


class Aris3nbEngine:
    """papermill's nbclient engine, with the aris3nb runner's judgement and marks.

    It delegates to papermill's ``NBClientEngine`` rather than subclass it: papermill loads its
    engines' entry points while ``papermill.engines`` itself is being imported, so this module
    must not need papermill to be imported."""

    @classmethod
    def nb_kernel_name(cls, nb: Any, name: str | None = None) -> str:
        from papermill.engines import NBClientEngine

        kernel_name: str = NBClientEngine.nb_kernel_name(nb, name)
        return kernel_name

    @classmethod
    def nb_language(cls, nb: Any, language: str | None = None) -> str:
        from papermill.engines import NBClientEngine

        nb_language: str = NBClientEngine.nb_language(nb, language)
        return nb_language

    @classmethod
    def execute_notebook(
        cls,
        nb: Any,
        kernel_name: str,
        output_path: str | None = None,
        progress_bar: bool = True,
        log_output: bool = False,
        autosave_cell_every: int = 30,
        **kwargs: Any,
    ) -> Any:
        from papermill.engines import NBClientEngine, NotebookExecutionManager

        run_id = kwargs.pop(RUN_ID_KEYWORD, None) or Path(os.environ.get(RUN_DIR_ENV, "papermill")).name
        save_each_cell = kwargs.pop(SAVE_EACH_CELL_KEYWORD, True)
        tracker = CellTracker(total=len(nb.cells), on_cell=None, chained=kwargs.pop("on_cell_start", None))
        nb_man = NotebookExecutionManager(
            nb,
            output_path=output_path if save_each_cell else None,
            progress_bar=progress_bar,
            log_output=log_output,
            autosave_cell_every=autosave_cell_every,
        )
        phase_run = PhaseRun(phase_of_notebook(nb, output_path), started_at=utc_text(dt.datetime.now(dt.UTC)))
        started = time.perf_counter()
        raised: BaseException | None = None
        nb_man.notebook_start()
        try:
            NBClientEngine.execute_managed_notebook(
                nb_man, kernel_name, log_output=log_output, on_cell_start=tracker.start, **kwargs
            )
        except BaseException as exc:  # judged below, then raised again
            raised = exc
        finally:
            nb_man.cleanup_pbar()
            nb_man.notebook_complete()  # papermill's own bookkeeping of every cell, and its save
            phase_run.duration_sec = time.perf_counter() - started
            failed_cell = judge_execution(nb_man.nb, raised, phase_run, last_started=tracker.last_started)
            mark_notebook(nb_man.nb, run_id, phase_run, failed_cell)
            nb_man.output_path = output_path
            nb_man.save()
        if raised is not None:
            raise raised
        return nb_man.nb
