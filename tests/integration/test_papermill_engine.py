"""aris3nb as a papermill engine: plain `papermill --engine aris3nb` on each phase notebook,
then `aris3nb evidence seal`, gives a bundle `evidence verify` accepts; and the statuses the
engine records for an error, a timeout and a dead kernel are the ones `aris3nb run` records."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import papermill
import pytest
from test_runner_status import run_one, write_phase_notebook

from aris3nb.core.ids import new_run_id
from aris3nb.core.settings import load_settings
from aris3nb.evidence.engine import ENGINE_NAME, SAVE_EACH_CELL_KEYWORD
from aris3nb.evidence.marks import FAILED_CELL_TAG, NOTEBOOKS_DIR
from aris3nb.phases import DEFAULT_PHASES, PHASE_BY_NAME
from aris3nb.targets.embedded import embedded_target

pytestmark = pytest.mark.slow

BIN = Path(sys.executable).parent


def engine_status(
    tmp_path: Path, *cells: str, timeout: float = 60.0, **engine: object
) -> tuple[str, dict, BaseException]:
    """Run a one-phase notebook that does not complete with plain papermill and the aris3nb
    engine (into ``tmp_path/out.ipynb``, with the ``engine`` keywords): what it recorded, and
    what papermill raised, as it always does for such a notebook (the engine raises it again)."""
    source = write_phase_notebook(tmp_path / "src", *cells)
    output = tmp_path / "out.ipynb"
    with pytest.raises(Exception) as raised:  # which one is the caller's to check
        papermill.execute_notebook(
            str(source),
            str(output),
            engine_name=ENGINE_NAME,
            kernel_name="python3",
            progress_bar=False,
            execution_timeout=timeout,
            **engine,
        )
    executed = nbformat.read(output, as_version=4)
    return executed.metadata["aris3nb"]["status"], executed, raised.value


CASES = {
    "error": ("raise ValueError('broken on purpose')",),
    "timeout": ("import time; time.sleep(30)",),
    "dead_kernel": ("import os; os._exit(3)",),
}


@pytest.mark.parametrize("case", list(CASES))
def test_the_engine_records_what_the_runner_records(case: str, tmp_path: Path) -> None:
    cells = ("print('ran first')", *CASES[case])
    timeout = 3.0 if case == "timeout" else 60.0
    status, executed, _ = engine_status(tmp_path / "engine", *cells, timeout=timeout)
    _, phase, _ = run_one(tmp_path / "runner", *cells, cell_timeout_sec=timeout)
    assert status == phase["status"] == case
    assert executed.metadata["aris3nb"]["verdict"] == "FAIL"
    # papermill puts its own error cell first when a cell raised; the engine's banner is next
    cells = [c for c in executed.cells if "papermill-error-cell-tag" not in c.metadata.get("tags", [])]
    assert "aris3nb-banner" in cells[0].metadata["tags"], "the banner on top, by the engine"
    marked = [c for c in executed.cells if FAILED_CELL_TAG in c.metadata.get("tags", [])]
    assert len(marked) == 1 and marked[0].source == CASES[case][0]


@pytest.mark.parametrize("each_cell", [True, False])
def test_the_notebook_is_saved_as_cells_run_or_once_when_it_ends(each_cell: bool, tmp_path: Path) -> None:
    """papermill's callers see the file fill cell by cell; `aris3nb run` asks for one save at the
    end, which still holds every cell's output and the marks when a cell fails."""
    cells = (f"import os; print(os.path.exists({str(tmp_path / 'out.ipynb')!r}))", "raise ValueError('broken')")
    status, executed, raised = engine_status(tmp_path, *cells, **{SAVE_EACH_CELL_KEYWORD: each_cell})
    assert isinstance(raised, papermill.PapermillExecutionError)
    printed = next(c for c in executed.cells if c.source == cells[0]).outputs[0]["text"]
    assert printed.strip() == str(each_cell)  # the file existed while the cell ran only if saved per cell
    assert status == "error"
    marked = [c for c in executed.cells if FAILED_CELL_TAG in c.metadata.get("tags", [])]
    assert [c.source for c in marked] == [cells[1]]


def test_papermill_on_each_phase_then_seal_gives_a_bundle_that_verifies(tmp_path: Path) -> None:
    artifacts = tmp_path / "artifacts"
    run_dir = artifacts / "runs" / new_run_id()
    run_dir.mkdir(parents=True)
    with embedded_target(load_settings(artifacts={"dir": artifacts}), purpose="run") as target:
        env = {
            **{k: v for k, v in os.environ.items() if k != "OPS_REVERT_COMMAND"},
            "DATABASE_URL": target.database_url,
            "ARIS3_BASE_URL": str(target.base_url),
            "ARIS3_EXPORTS_DIR": str(target.exports_dir),
            "OPS_ARTIFACTS_DIR": str(artifacts),
            "ARIS3NB_RUN_DIR": str(run_dir),
            "OPS_ENABLE_BACKUP_DRILL": "true",
            "MPLBACKEND": "Agg",
            # Latency is not what this test judges: one sample each (an "inconclusive" WARN, still GO).
            "OPS_GATE_LATENCY_SAMPLES": "1",
            "OPS_GATE_LATENCY_WARMUP": "0",
        }
        for name in DEFAULT_PHASES:
            notebook = PHASE_BY_NAME[name].notebook
            done = subprocess.run(
                [
                    str(BIN / "papermill"),
                    "--engine",
                    "aris3nb",
                    "--no-progress-bar",
                    str(NOTEBOOKS_DIR / notebook),
                    str(run_dir / notebook),
                ],
                env=env,
                capture_output=True,
                text=True,
                timeout=600,
                check=False,
                cwd=tmp_path,
            )
            assert done.returncode == 0, done.stderr[-3000:]
    document = json.loads(_aris3nb(env, "evidence", "seal", str(run_dir), "--json"))
    assert document["decision"] == "GO"
    assert [(p["phase"], p["status"]) for p in document["phases"]] == [(n, "completed") for n in DEFAULT_PHASES]
    _aris3nb(env, "evidence", "verify", str(run_dir))
    evidence = json.loads((run_dir / "evidence.json").read_text())
    assert evidence["parameters"]["executed_by"] == "papermill --engine aris3nb"
    assert all((run_dir / PHASE_BY_NAME[n].notebook).with_suffix(".html").is_file() for n in DEFAULT_PHASES)
    # The target is the one the gates judged (the notebooks were given it), not "none given".
    assert evidence["target"]["base_url"] == str(target.base_url)
    assert evidence["target"]["database_url"] == target.database_url
    assert not any("different targets" in w for w in evidence["warnings"])

    # The same notebooks, but the post-deploy gate judged another service: one warning naming both.
    other = _unsealed_copy(run_dir)
    [summary] = (other / "post_deploy").glob("gate_summary_*.json")
    document = json.loads(summary.read_text())
    document["inputs"]["base_url"] = "http://127.0.0.1:9"
    summary.write_text(json.dumps(document))
    assert json.loads(_aris3nb(env, "evidence", "seal", str(other), "--json"))["verdict"] == "PASS_WITH_WARNINGS"
    [differing] = [w for w in json.loads((other / "evidence.json").read_text())["warnings"] if "different" in w]
    assert f"pre_deploy: {target.base_url} over" in differing and "post_deploy: http://127.0.0.1:9 over" in differing

    # A gate summary that cannot be read: the target that gate judged is unknown, and said so.
    unread = _unsealed_copy(run_dir)
    [summary] = (unread / "post_deploy").glob("gate_summary_*.json")
    summary.write_text("{not json")
    assert json.loads(_aris3nb(env, "evidence", "seal", str(unread), "--json"))["verdict"] == "PASS_WITH_WARNINGS"
    evidence = json.loads((unread / "evidence.json").read_text())
    assert evidence["target"]["base_url"] == str(target.base_url)
    assert [w for w in evidence["warnings"] if w.startswith("post_deploy: the target its gate judged is unknown")]

    # Gates that reached no service (both URLs null in their summaries): no URL made up for them.
    unreached = _unsealed_copy(run_dir)
    for summary in unreached.glob("*/gate_summary_*.json"):
        document = json.loads(summary.read_text())
        document["inputs"].update(base_url=None, live_target=None)
        summary.write_text(json.dumps(document))
    _aris3nb(env, "evidence", "seal", str(unreached), "--json")
    sealed_target = json.loads((unreached / "evidence.json").read_text())["target"]
    assert sealed_target["base_url"] is None, sealed_target
    assert sealed_target["description"].startswith("no service reached (as the phase notebooks were given it)")


def _unsealed_copy(run_dir: Path) -> Path:
    """The phase notebooks and folders of ``run_dir`` under a new run id beside it, not sealed."""
    copy = run_dir.parent / new_run_id()
    copy.mkdir()
    for name in DEFAULT_PHASES:
        shutil.copyfile(run_dir / PHASE_BY_NAME[name].notebook, copy / PHASE_BY_NAME[name].notebook)
        shutil.copytree(run_dir / name, copy / name)
    return copy


def _aris3nb(env: dict[str, str], *args: str) -> str:
    """``aris3nb ARGS`` as a program; it must exit 0. Its standard output."""
    done = subprocess.run(
        [str(BIN / "aris3nb"), *args], env=env, capture_output=True, text=True, timeout=300, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def test_seal_refuses_a_folder_that_is_not_a_run(tmp_path: Path) -> None:
    done = subprocess.run(
        [str(BIN / "aris3nb"), "evidence", "seal", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**os.environ, "OPS_ARTIFACTS_DIR": str(tmp_path / "a")},
    )
    assert done.returncode == 2 and "not a run id" in done.stderr
