"""The runner owns each phase's final status: a notebook that raises, one whose cell runs
past the timeout, one whose kernel dies, one whose checks FAIL — each is recorded as such in
the executed notebook (banner on top, failing cell marked) and in evidence.json, never as
completed, with the evidence of the cells that ran kept."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest

from aris3nb.core.settings import load_settings
from aris3nb.evidence.bundle import verify_run
from aris3nb.evidence.marks import FAILED_CELL_TAG
from aris3nb.evidence.runner import RunOptions, run_playbook
from aris3nb.phases import PHASE_BY_NAME

pytestmark = pytest.mark.slow

FORMAT_DOC = Path(__file__).resolve().parents[2] / "docs" / "FORMAT.md"
PARAMETERS = "\n".join(f"{name} = None" for name in PHASE_BY_NAME["pre_deploy"].parameters)


def runner_fields() -> list[str]:
    """The field names FORMAT.md §7.5 documents for evidence.json."""
    doc = FORMAT_DOC.read_text()
    section = doc[doc.index("### 7.5 What the runner writes") :]
    table = section[: section.index("\n\n", section.index("| field |"))]
    return re.findall(r"^\| `([a-z_\[\]]+)`", table, flags=re.MULTILINE)


def write_phase_notebook(folder: Path, *cells: str) -> Path:
    notebook = nbformat.v4.new_notebook()
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    parameters = nbformat.v4.new_code_cell(PARAMETERS)
    parameters.metadata["tags"] = ["parameters"]
    notebook.cells = [parameters, *(nbformat.v4.new_code_cell(source) for source in cells)]
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "01-pre_deploy.ipynb"
    nbformat.write(notebook, path)
    return path


def run_one(tmp_path: Path, *cells: str, cell_timeout_sec: float = 60.0, strict: bool = False, **keywords):
    notebooks = tmp_path / "notebooks"
    write_phase_notebook(notebooks, *cells)
    options = RunOptions(
        phases=("pre_deploy",),
        base_url="http://127.0.0.1:9",
        out=tmp_path / "artifacts",
        notebooks_dir=notebooks,
        cell_timeout_sec=cell_timeout_sec,
        strict=strict,
    )
    result = run_playbook(options, load_settings(), **keywords)
    evidence = json.loads(result.evidence_path.read_text())
    executed = nbformat.read(result.run_dir / "01-pre_deploy.ipynb", as_version=4)
    return result, evidence["phases"][0], executed


def marked_cell(executed: nbformat.NotebookNode) -> nbformat.NotebookNode:
    marked = [cell for cell in executed.cells if FAILED_CELL_TAG in cell.metadata.get("tags", [])]
    assert len(marked) == 1
    return marked[0]


def assert_recorded_as(result, phase: dict, executed: nbformat.NotebookNode, status: str) -> None:
    assert result.exit_code == 1 and result.decision == "NO-GO"
    assert phase["status"] == status and phase["verdict"] == "FAIL"
    assert executed.metadata["aris3nb"]["status"] == status
    assert executed.metadata["papermill"]["exception"] is True
    banner = executed.cells[0]
    assert "aris3nb-banner" in banner.metadata["tags"]
    assert "FAIL" in banner.outputs[0]["data"]["text/plain"]
    assert executed.cells.index(marked_cell(executed)) == phase["failed_cell"]["index"]
    assert verify_run(result.run_dir).ok, "a failed run's bundle is sealed and verifies"


def test_a_cell_that_raises_is_an_error_with_the_cell_marked(tmp_path: Path) -> None:
    result, phase, executed = run_one(
        tmp_path, "print('evidence so far')", "raise ValueError('boom in cell 3')", "print('never runs')"
    )
    assert_recorded_as(result, phase, executed, "error")
    assert phase["reasons"][0] == "ValueError: boom in cell 3"
    assert "boom in cell 3" in json.dumps(marked_cell(executed).outputs)
    assert any("evidence so far" in json.dumps(cell.get("outputs", [])) for cell in executed.cells)
    never = next(cell for cell in executed.cells if "never runs" in cell.source)
    assert never.outputs == [] and never.execution_count is None


#: Kernels forked from the run's fork server (the default), and booted each on its own.
KERNELS = pytest.mark.parametrize("fork", ["true", "false"], ids=["forked", "booted"])


@KERNELS
def test_a_cell_past_the_timeout_is_a_timeout_not_completed(
    tmp_path: Path, fork: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPS_FORK_KERNELS", fork)
    result, phase, executed = run_one(tmp_path, "print('before')", "import time\ntime.sleep(60)", cell_timeout_sec=3)
    assert_recorded_as(result, phase, executed, "timeout")
    assert "time.sleep(60)" in marked_cell(executed).source
    assert phase["duration_sec"] < 40


@KERNELS
def test_a_dead_kernel_is_recorded_as_such(tmp_path: Path, fork: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPS_FORK_KERNELS", fork)
    result, phase, executed = run_one(
        tmp_path, "print('before')", "import os, signal\nos.kill(os.getpid(), signal.SIGKILL)"
    )
    assert_recorded_as(result, phase, executed, "dead_kernel")
    assert "SIGKILL" in marked_cell(executed).source


def test_a_kernel_dying_as_it_starts_is_a_dead_kernel_with_its_last_words(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A kernel that ends before it answers (a broken environment; before, a port taken by
    another process) ran nothing: dead_kernel, said so, with what it wrote; never an error
    without a cause, never completed."""
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(
        "import os, sys\n"
        "if 'ipykernel_launcher' in sys.orig_argv:\n"
        "    print('refusing to start: this kernel dies before it answers', file=sys.stderr, flush=True)\n"
        "    os._exit(3)\n"
    )
    monkeypatch.setenv("OPS_FORK_KERNELS", "false")  # a fork would not run sitecustomize again
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(site), os.environ.get("PYTHONPATH")])))
    result, phase, executed = run_one(tmp_path, "print('never runs')")
    assert result.exit_code == 1 and result.decision == "NO-GO"
    assert (phase["status"], phase["verdict"]) == ("dead_kernel", "FAIL")
    assert phase["reasons"][0] == "the kernel died as it started, before any cell ran"
    assert any("kernel said: refusing to start" in reason for reason in phase["reasons"][1:]), phase["reasons"]
    assert executed.metadata["aris3nb"]["status"] == "dead_kernel"
    never = next(cell for cell in executed.cells if "never runs" in cell.source)
    assert never.outputs == [] and never.execution_count is None
    assert verify_run(result.run_dir).ok


def test_failed_checks_fail_the_phase_after_showing_their_evidence(tmp_path: Path) -> None:
    result, phase, executed = run_one(
        tmp_path,
        (
            "import aris3nb\nfrom aris3nb.core.checks import CheckResult, Status\n"
            "phase = aris3nb.start_phase('pre_deploy')"
        ),
        (
            "results = [CheckResult('http.ready', Status.FAIL, 'GET /ready answered 503', 0.1)]\n"
            "phase.show_checks(results)"
        ),
        "phase.conclude(results, title='Gate')",
    )
    assert_recorded_as(result, phase, executed, "failed")
    assert phase["reasons"] == ["http.ready: GET /ready answered 503"]
    assert [t["kind"] for t in json.loads(result.evidence_path.read_text())["triggers"]] == ["gate_fail", "not_ready"]
    shown = json.dumps(executed.cells)
    assert shown.index("GET /ready answered 503") < shown.index("PhaseFailed"), "evidence first, then the failure"


def test_a_notebook_that_never_concludes_is_not_green(tmp_path: Path) -> None:
    result, phase, _ = run_one(tmp_path, "x = 1")
    assert phase["status"] == "error" and phase["verdict"] == "FAIL"
    assert "without concluding" in phase["reasons"][-1]
    assert result.exit_code == 1


# The forged output has no text/plain beside it: nbconvert warns as its page is rendered.
@pytest.mark.filterwarnings("ignore:Your element with mimetype")
def test_a_phase_result_no_conclude_writes_is_not_green(tmp_path: Path) -> None:
    """A cell displays a phase result of its own making ("GO" is no verdict): the phase is not
    judged from it, and says why."""
    forged = (
        "from IPython.display import display\n"
        "from aris3nb.evidence.display import RESULT_FORMAT, RESULT_MIME\n"
        "display({RESULT_MIME: {'format': RESULT_FORMAT, 'version': 1, 'phase': 'pre_deploy', 'verdict': 'GO',"
        " 'reasons': [], 'checks': [], 'metrics': {}, 'facts': {}, 'kept': []}}, raw=True)"
    )
    result, phase, _ = run_one(tmp_path, forged)
    assert phase["status"] == "error" and phase["verdict"] == "FAIL", phase
    assert "is not one a phase concludes with: its phase result: verdict: Input should be" in phase["reasons"][-1]
    assert result.exit_code == 1 and result.decision == "NO-GO"


def test_a_passing_phase_completes(tmp_path: Path) -> None:
    result, phase, executed = run_one(
        tmp_path,
        (
            "import aris3nb\nfrom aris3nb.core.checks import CheckResult, Status\n"
            "phase = aris3nb.start_phase('pre_deploy')"
        ),
        "phase.conclude([CheckResult('git', Status.PASS, 'clean', 0.0)])",
    )
    assert (phase["status"], phase["verdict"], result.exit_code, result.decision) == ("completed", "PASS", 0, "GO")
    documented = runner_fields()
    evidence = json.loads(result.evidence_path.read_text())
    assert {name for name in documented if not name.endswith("[]")} <= set(evidence), "FORMAT.md §7.5 is true"
    assert {"phases[]", "triggers", "interrupted", "code"} <= set(documented)
    assert set(evidence["code"]) == {"aris3nb_version", "commit", "branch", "dirty"}
    assert executed.metadata["papermill"]["exception"] is False
    assert not any(FAILED_CELL_TAG in cell.metadata.get("tags", []) for cell in executed.cells)


PASSING = (
    "import aris3nb\nfrom aris3nb.core.checks import CheckResult, Status\nphase = aris3nb.start_phase('pre_deploy')",
    "phase.conclude([CheckResult('git', Status.PASS, 'clean', 0.0)])",
)


def test_a_run_whose_bucket_lock_was_lost_is_never_a_plain_pass(tmp_path: Path) -> None:
    """Asked just before sealing, the lock's doubts are the run's warnings: PASS_WITH_WARNINGS
    (GO, said), FAIL and NO-GO under --strict; recorded in evidence.json and on index.html."""
    lost = "this run lost its run lock s3://b/evidence/locks/x.json (it was deleted)"
    asked: list[str] = []

    def doubts() -> list[str]:
        asked.append("asked")
        return [lost]

    result, phase, _ = run_one(tmp_path / "lenient", *PASSING, lock_doubts=doubts)
    evidence = json.loads(result.evidence_path.read_text())
    assert asked == ["asked"] and phase["verdict"] == "PASS"
    assert (evidence["verdict"], evidence["decision"], result.exit_code) == ("PASS_WITH_WARNINGS", "GO", 0)
    assert evidence["warnings"] == [lost]
    assert lost in (result.run_dir.parent.parent / "index.html").read_text()
    assert verify_run(result.run_dir).ok
    result, _, _ = run_one(tmp_path / "strict", *PASSING, lock_doubts=doubts, strict=True)
    evidence = json.loads(result.evidence_path.read_text())
    assert (evidence["verdict"], evidence["decision"], result.exit_code) == ("FAIL", "NO-GO", 1)
    result, _, _ = run_one(tmp_path / "held", *PASSING, lock_doubts=list)
    assert json.loads(result.evidence_path.read_text())["warnings"] == [] and result.verdict == "PASS"


def test_an_interruption_is_recorded_and_the_bundle_still_sealed(tmp_path: Path) -> None:
    """Ctrl-C (SIGINT to the runner's process group, kernel included) mid-cell: the phase is
    `interrupted`, the rest skipped, the bundle sealed, exit 130."""
    notebooks = tmp_path / "notebooks"
    sleeping = tmp_path / "sleeping"  # made by the cell that is then interrupted
    write_phase_notebook(
        notebooks, "print('started', flush=True)", f"open({str(sleeping)!r}, 'w').close()\nimport time\ntime.sleep(120)"
    )
    out = tmp_path / "artifacts"
    script = (
        "import sys\nfrom pathlib import Path\nfrom aris3nb.core.settings import load_settings\n"
        "from aris3nb.evidence.runner import RunOptions, run_playbook\n"
        f"options = RunOptions(phases=('pre_deploy', 'deploy'), base_url='http://127.0.0.1:9', out=Path({str(out)!r}),"
        f" notebooks_dir=Path({str(notebooks)!r}))\n"
        "sys.exit(run_playbook(options, load_settings()).exit_code)\n"
    )
    process = subprocess.Popen(
        [sys.executable, "-c", script],
        start_new_session=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 60
    while not sleeping.exists():
        assert time.monotonic() < deadline and process.poll() is None, process.communicate()
        time.sleep(0.2)
    # papermill's own saves go to the scratch folder: nothing half-written under the final name
    assert not list(out.glob("runs/*/*.ipynb")), "a notebook in the run folder before its phase ended"
    time.sleep(1)
    os.killpg(process.pid, signal.SIGINT)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 130, stderr
    run_dir = next((out / "runs").iterdir())
    evidence = json.loads((run_dir / "evidence.json").read_text())
    assert [(p["phase"], p["status"]) for p in evidence["phases"]] == [
        ("pre_deploy", "interrupted"),
        ("deploy", "skipped"),
    ]
    assert evidence["interrupted"] is True and evidence["exit_code"] == 130
    interrupted = evidence["phases"][0]
    assert interrupted["verdict"] == "INTERRUPTED", "the phase was stopped, not judged: no FAIL"
    assert interrupted["duration_sec"] >= 1, "timed up to the interruption"
    assert evidence["decision"] == evidence["verdict"] == "INTERRUPTED", "stopped, not judged: distinct from FAIL"
    assert "Traceback" not in stderr and "Task exception" not in stderr, stderr
    assert verify_run(run_dir).ok
