"""``aris3nb run`` broken while it runs: a phase's kernel killed from outside in the middle of a
cell, the runner itself killed mid-run, and the disk filling up at each write of the evidence
bundle.

Real processes, real kernels, a real tmpfs: the ``aris3nb`` entry point runs as a process,
given its phase notebooks from a folder of the test's (the runner's ``notebooks_dir``; the
command line has no option for it, so a three-line harness sets it and calls the same
``main``). A test notebook says when it has reached the cell the test breaks (it touches a
marker file), so each kill lands mid-cell, not before or after. Every test checks the exit
code, the message, and the state left behind (docs/RELIABILITY.md, "Evidence runs").
"""

from __future__ import annotations

import contextlib
import json
import os
import resource
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import nbformat
import psutil
import pytest
from faultkit import ROOT, Run, cli_env, run_cli

from aris3nb.core.errors import EvidenceSealRefused
from aris3nb.evidence.bundle import digest_of_file, generate_signing_key, seal_run, verify_path
from aris3nb.evidence.marks import FAILED_CELL_TAG
from aris3nb.phases import PHASE_BY_NAME

#: The real entry point, with the phase notebooks taken from $ARIS3NB_TEST_NOTEBOOKS.
HARNESS = """
import dataclasses, os, sys
from pathlib import Path
from aris3nb.evidence import runner
real_run_playbook = runner.run_playbook
def run_playbook(options, settings, **kwargs):
    options = dataclasses.replace(options, notebooks_dir=Path(os.environ["ARIS3NB_TEST_NOTEBOOKS"]))
    return real_run_playbook(options, settings, **kwargs)
runner.run_playbook = run_playbook
from aris3nb.cli import main
main(sys.argv[1:])
"""
#: A phase that passes at once.
PASSING = (
    "import aris3nb\nfrom aris3nb.core.checks import CheckResult, Status\n"
    "phase = aris3nb.start_phase('pre_deploy')\nphase.conclude([CheckResult('git', Status.PASS, 'clean', 0.0)])"
)
NO_TARGET = ["--base-url", "http://127.0.0.1:9"]  # the test notebooks never call it
SMALL_EMBEDDED = ["--scale", "60"]  # the embedded default, seeded small


def phase_notebooks(folder: Path, *cells: str) -> Path:
    """A notebooks folder whose pre_deploy notebook is ``cells``, after a parameters cell."""
    parameters = nbformat.v4.new_code_cell(
        "\n".join(f"{name} = None" for name in PHASE_BY_NAME["pre_deploy"].parameters)
    )
    parameters.metadata["tags"] = ["parameters"]
    notebook = nbformat.v4.new_notebook(cells=[parameters, *map(nbformat.v4.new_code_cell, cells)])
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    folder.mkdir(parents=True, exist_ok=True)
    nbformat.write(notebook, folder / "01-pre_deploy.ipynb")
    return folder


def sleeping_at(marker: Path) -> str:
    """A cell that says it is running (touches ``marker``), then sleeps: where the kills land."""
    return f"import pathlib, time\npathlib.Path({str(marker)!r}).touch()\ntime.sleep(300)"


def memory_of(temp: Path) -> Path:
    """The memory folder (``OPS_MEMORY_DIR``) of a run whose temporary folder is ``temp``."""
    return temp.with_name(f"{temp.name}-memory")


def scratch_listing(temp: Path) -> set[str]:
    """What is in a run's temporary folder and in its memory folder."""
    return {f"tmp/{name}" for name in os.listdir(temp)} | {f"memory/{name}" for name in os.listdir(memory_of(temp))}


def start_run(notebooks: Path, artifacts: Path, temp: Path, *args: str, **popen: object) -> subprocess.Popen[str]:
    """``aris3nb run pre_deploy ARGS --json`` (JSON: no progress lines on standard error), with
    its own temporary folder and memory folder, so that what it leaves there can be counted."""
    temp.mkdir(parents=True, exist_ok=True)
    memory_of(temp).mkdir(exist_ok=True)
    env = cli_env(
        artifacts, ARIS3NB_TEST_NOTEBOOKS=str(notebooks), TMPDIR=str(temp), OPS_MEMORY_DIR=str(memory_of(temp))
    )
    return subprocess.Popen(
        [sys.executable, "-c", HARNESS, "run", "pre_deploy", "--out", str(artifacts), "--json", *args],
        env=env,
        cwd=ROOT,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **popen,
    )  # type: ignore[call-overload]


def finish(process: subprocess.Popen[str], timeout: float = 120) -> Run:
    try:
        stdout, stderr = process.communicate(timeout=timeout)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    return Run(process.returncode, stdout, stderr)


def wait_for(marker: Path, process: subprocess.Popen[str], seconds: float = 120) -> None:
    deadline = time.monotonic() + seconds
    while not marker.exists():
        assert process.poll() is None, f"the run ended before its cell ran: {finish(process)}"
        assert time.monotonic() < deadline, f"the cell never started ({marker})"
        time.sleep(0.05)


def kernels_of(pid: int) -> list[psutil.Process]:
    """The notebook kernels the runner ``pid`` started: its ``ipykernel_launcher`` children, or
    the forks of its fork server (``aris3nb.evidence.forks``)."""
    found = []
    for child in psutil.Process(pid).children(recursive=True):
        with contextlib.suppress(psutil.Error):
            parent = child.parent()
            forked = parent is not None and parent.pid != pid and "aris3nb.evidence.forks" in parent.cmdline()
            if forked or "ipykernel_launcher" in " ".join(child.cmdline()):
                found.append(child)
    return found


def gone(process: psutil.Process, seconds: float) -> bool:
    """Whether ``process`` ended (or is a zombie waiting for its new parent) within ``seconds``."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if process.status() == psutil.STATUS_ZOMBIE:
                return True
        except psutil.NoSuchProcess:
            return True
        time.sleep(0.1)
    return False


def the_run(artifacts: Path) -> Path:
    runs = sorted((artifacts / "runs").iterdir())
    assert len(runs) == 1, runs
    return runs[0]


def evidence(run_dir: Path) -> dict:
    return json.loads((run_dir / "evidence.json").read_text())


def temporary_files(run_dir: Path) -> list[str]:
    """Files being written when the process stopped (``write_text_evidence``'s ``.NAME.*.tmp``)."""
    return sorted(p.relative_to(run_dir).as_posix() for p in run_dir.rglob(".*.tmp"))


# --- a kernel killed mid-cell, from outside ------------------------------------------------------


@dataclass
class DeadKernel:
    run: Run
    artifacts: Path
    temp: Path
    seconds_to_notice: float


@pytest.fixture(scope="module")
def dead_kernel(tmp_path_factory: pytest.TempPathFactory) -> DeadKernel:
    """SIGKILL on the phase's kernel (the OOM killer's choice, an operator's kill) while its
    second cell runs; the first cell kept a file and printed a line."""
    base = tmp_path_factory.mktemp("dead-kernel")
    marker = base / "cell-started"
    notebooks = phase_notebooks(
        base / "notebooks",
        "import aris3nb\nphase = aris3nb.start_phase('pre_deploy')\n"
        "(phase.folder / 'so_far.json').write_text('{\"kept\": true}')\nprint('evidence so far')",
        sleeping_at(marker),
        "phase.conclude([])  # never reached",
    )
    process = start_run(notebooks, base / "artifacts", base / "tmp", *NO_TARGET)
    wait_for(marker, process)
    [kernel] = kernels_of(process.pid)
    killed_at = time.monotonic()
    kernel.send_signal(signal.SIGKILL)
    done = finish(process)
    return DeadKernel(done, base / "artifacts", base / "tmp", time.monotonic() - killed_at)


@pytest.mark.slow
def test_a_kernel_killed_mid_cell_is_recorded_as_a_dead_kernel(dead_kernel: DeadKernel) -> None:
    """The phase is ``dead_kernel``, never completed; what ran before is kept; exit 1; the
    bundle is sealed and verifies."""
    done, artifacts = dead_kernel.run, dead_kernel.artifacts
    # Not a speed figure (that would be a ratio): a runner that missed the death would wait for
    # the cell's 300 s sleep or the 600 s cell timeout; the whole run, sealing included, ends
    # in 10-35 s on this machine depending on its load.
    assert dead_kernel.seconds_to_notice < 150, "the runner noticed the dead kernel, not the cell's end"
    assert done.returncode == 1, done
    assert "Traceback" not in done.stderr and done.stderr.splitlines()[-1].startswith("FAILED: run ")
    assert "NO-GO (FAIL)" in done.stderr.splitlines()[-1]
    run_dir = the_run(artifacts)
    document = evidence(run_dir)
    phase = document["phases"][0]
    assert (phase["status"], phase["verdict"]) == ("dead_kernel", "FAIL")
    assert phase["reasons"][0] == "the kernel died while a cell ran"
    assert document["exit_code"] == 1 and document["decision"] == "NO-GO"
    assert "pre_deploy/so_far.json" in {f["path"] for f in document["files"]}, "what ran before is kept"

    executed = nbformat.read(run_dir / "01-pre_deploy.ipynb", as_version=4)
    assert executed.metadata["aris3nb"]["status"] == "dead_kernel"
    assert executed.metadata["papermill"]["exception"] is True
    [marked] = [cell for cell in executed.cells if FAILED_CELL_TAG in cell.metadata.get("tags", [])]
    assert "time.sleep(300)" in marked.source and executed.cells.index(marked) == phase["failed_cell"]["index"]
    assert any("evidence so far" in json.dumps(cell.get("outputs", [])) for cell in executed.cells)
    never = next(cell for cell in executed.cells if "never reached" in cell.source)
    assert never.outputs == [] and never.execution_count is None
    page = (run_dir / "01-pre_deploy.html").read_text()
    assert "the kernel died while a cell ran" in page and "stopped: the kernel died" in page

    verified = run_cli(["evidence", "verify", str(run_dir)], artifacts)
    assert verified.returncode == 0 and verified.stdout.startswith("VALID") and run_dir.name in verified.stdout, (
        verified
    )
    assert os.listdir(dead_kernel.temp) == [], "the runner removed its kernel and notebook files"


@pytest.mark.slow
def test_a_dead_kernel_ends_in_one_line(dead_kernel: DeadKernel) -> None:
    assert "NO-GO (FAIL)" in dead_kernel.run.failed_line


# --- the runner killed mid-run -------------------------------------------------------------------


@dataclass
class KilledRun:
    """A sealed run (first), a run whose runner was SIGKILLed mid-cell (killed), the next run
    (after), all into one artifacts folder, each with the same temporary folder."""

    artifacts: Path
    temp: Path
    first: str
    killed: str
    after: str
    after_run: Run
    kernel_ended: bool
    left_by_killed: set[str] = field(default_factory=set)
    left_by_after: set[str] = field(default_factory=set)


@pytest.fixture(scope="module")
def killed_run(tmp_path_factory: pytest.TempPathFactory) -> KilledRun:
    base = tmp_path_factory.mktemp("killed-runner")
    artifacts, temp, marker = base / "artifacts", base / "tmp", base / "cell-started"
    passing = phase_notebooks(base / "passing", PASSING)
    sleeping = phase_notebooks(base / "sleeping", sleeping_at(marker))

    first = finish(start_run(passing, artifacts, temp, *NO_TARGET))
    assert first.returncode == 0, first
    runs_before = set(os.listdir(artifacts / "runs"))

    process = start_run(sleeping, artifacts, temp, *SMALL_EMBEDDED)  # the embedded default: a target to leave
    wait_for(marker, process)
    [kernel] = kernels_of(process.pid)
    os.kill(process.pid, signal.SIGKILL)  # the runner alone, as the OOM killer would
    assert process.wait(timeout=30) == -signal.SIGKILL
    process.communicate()
    kernel_ended = gone(kernel, seconds=15)
    with contextlib.suppress(psutil.Error):
        kernel.kill()  # whatever the result, leave no process behind
    [killed] = set(os.listdir(artifacts / "runs")) - runs_before
    left_by_killed = scratch_listing(temp)

    after = finish(start_run(passing, artifacts, temp, *SMALL_EMBEDDED))
    [after_id] = set(os.listdir(artifacts / "runs")) - runs_before - {killed}
    return KilledRun(
        artifacts,
        temp,
        min(runs_before),
        killed,
        after_id,
        after,
        kernel_ended,
        left_by_killed,
        scratch_listing(temp) - left_by_killed,
    )


@pytest.mark.slow
def test_a_killed_runner_leaves_an_incomplete_run_that_verify_reports(killed_run: KilledRun) -> None:
    runs = killed_run.artifacts / "runs"
    assert not (runs / killed_run.killed / "evidence.json").exists(), "a killed run makes no claim"
    assert killed_run.kernel_ended, "its kernel noticed its runner was gone and ended"
    verified = run_cli(["evidence", "verify", str(runs)], killed_run.artifacts)
    assert verified.returncode == 0, verified
    assert f"warning: run {killed_run.killed} has no evidence.json (incomplete run" in verified.stdout
    strict = run_cli(["evidence", "verify", str(runs), "--strict"], killed_run.artifacts)
    assert strict.returncode == 1 and killed_run.killed in strict.stdout
    assert f"{killed_run.killed}</code>" in (killed_run.artifacts / "index.html").read_text()
    assert "incomplete" in (killed_run.artifacts / "index.html").read_text()


@pytest.mark.slow
def test_the_next_run_seals_and_links_past_the_incomplete_one(killed_run: KilledRun) -> None:
    runs = killed_run.artifacts / "runs"
    assert killed_run.after_run.returncode == 0, killed_run.after_run
    link = evidence(runs / killed_run.after)["previous"]
    assert link == {"run_id": killed_run.first, "digest": digest_of_file(runs / killed_run.first / "evidence.json")}
    verified = run_cli(["evidence", "verify", str(runs), "--json"], killed_run.artifacts)
    chain = json.loads(verified.stdout)
    assert verified.returncode == 0 and chain["valid"] and chain["length"] == 2, chain
    assert chain["incomplete"] == [killed_run.killed] and chain["head"]["run_id"] == killed_run.after


@pytest.mark.slow
def test_the_next_run_leaves_no_temporary_folder_of_its_own(killed_run: KilledRun) -> None:
    assert killed_run.left_by_after == set(), "a run that ends removes its kernels' files and its embedded target"


@pytest.mark.slow
def test_a_killed_runs_temporary_folders_are_swept_by_the_next_run(killed_run: KilledRun) -> None:
    embedded = [name for name in killed_run.left_by_killed if name.startswith("memory/aris3nb-run-embedded-pid")]
    assert embedded, f"the killed run's embedded target was in its memory folder: {sorted(killed_run.left_by_killed)}"
    left = sorted(killed_run.left_by_killed & scratch_listing(killed_run.temp))
    assert left == [], f"left behind by the killed run, still there after the next one: {left}"


# --- the disk fills while the bundle is written --------------------------------------------------

PAGE = 4096
#: Leaves ``margin`` bytes free on the artifacts filesystem. Papermill's copy of the executing
#: notebook is in the run's scratch folder, elsewhere: nothing of the notebook is there yet.
FILL = """
import os
from pathlib import Path
run_dir = Path(os.environ["ARIS3NB_RUN_DIR"])
assert not (run_dir / "01-pre_deploy.ipynb").exists(), "a notebook in the run folder before the phase ended"
free = os.statvfs(run_dir).f_bavail * os.statvfs(run_dir).f_frsize
(run_dir / "filler.bin").write_bytes(b"x" * max(free - {margin}, 0))
"""


@contextlib.contextmanager
def tmpfs(folder: Path, size: str) -> Iterator[None]:
    """A small filesystem of its own at ``folder`` (a real ENOSPC), where mounting is allowed."""
    folder.mkdir(parents=True)
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size},mode=0700", "tmpfs", str(folder)],
        check=False,
        capture_output=True,
        text=True,
    )
    if mounted.returncode != 0:
        pytest.skip(
            f"cannot mount a tmpfs here ({mounted.stderr.strip() or 'not permitted'}); "
            "test_the_html_page_outgrows_the_file_size_limit covers the runner's handling without it"
        )
    try:
        yield
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=True)


@dataclass
class Filled:
    """A run whose artifacts filesystem filled up: what it said and what it left."""

    run: Run
    files: dict[str, int]  # path in the run folder -> size
    evidence: dict | None
    verify_run: Run
    verify_runs: Run
    left_writing: list[str]


def fill_and_run(base: Path, margin: int) -> Filled:
    """``aris3nb run`` into a 1 MiB tmpfs whose phase leaves ``margin`` bytes free."""
    fill = FILL.format(margin=margin)
    notebooks = phase_notebooks(base / "notebooks", fill, PASSING)
    artifacts = base / "artifacts"
    with tmpfs(artifacts, "1m"):
        done = finish(start_run(notebooks, artifacts, base / "tmp", *NO_TARGET))
        run_dir = the_run(artifacts)
        files = {p.relative_to(run_dir).as_posix(): p.stat().st_size for p in run_dir.rglob("*") if p.is_file()}
        document = evidence(run_dir) if (run_dir / "evidence.json").exists() else None
        return Filled(
            done,
            files,
            document,
            run_cli(["evidence", "verify", str(run_dir)], artifacts),
            run_cli(["evidence", "verify", str(artifacts / "runs")], artifacts),
            temporary_files(artifacts),
        )


def pages(size: int) -> int:
    return -(-size // PAGE)


@pytest.fixture(scope="module")
def disk_full(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], Filled]:
    """The run filling the disk at ``where``, made once per place. The places after the page
    are found from a run with room to spare: its files' sizes say how many pages each write
    needs (tmpfs allocates whole pages). From the filling cell on, the run writes the phase's
    result.json, the executed notebook (papermill's copy is in the scratch folder, not here),
    the HTML page, evidence.json, then index.html."""
    made: dict[str, Filled] = {}

    def outcome(where: str) -> Filled:
        if where not in made:
            base = tmp_path_factory.mktemp(f"disk-full-{where}")
            if where == "roomy":
                margin = 600_000
            elif where == "notebook":
                margin = PAGE  # the phase's result.json fits, the executed notebook does not
            elif where == "page":
                margin = 10 * PAGE  # the notebook fits, its HTML page (~270 kB) does not
            else:
                sizes = outcome("roomy").files
                needed = sum(
                    pages(sizes[name])
                    for name in ("pre_deploy/result.json", "01-pre_deploy.ipynb", "01-pre_deploy.html")
                )
                if where == "index":
                    needed += pages(sizes["evidence.json"])
                made[where] = fill_and_run(base, needed * PAGE)
                return made[where]
            made[where] = fill_and_run(base, margin)
        return made[where]

    return outcome


def assert_nothing_half_written(filled: Filled) -> None:
    """Either no evidence.json (an incomplete run, reported as such), or one that verifies."""
    assert filled.left_writing == [], f"temporary files left: {filled.left_writing}"
    if filled.evidence is None:
        assert "evidence.json.sig" not in filled.files
        assert filled.verify_run.returncode == 2 and "has no evidence.json" in filled.verify_run.stderr
        assert filled.verify_runs.returncode == 0 and "incomplete run" in filled.verify_runs.stdout
    else:
        assert filled.verify_run.returncode == 0, filled.verify_run


@pytest.mark.slow
def test_with_room_to_spare_the_run_is_sealed(disk_full: Callable[[str], Filled]) -> None:
    roomy = disk_full("roomy")
    assert roomy.run.returncode == 0, roomy.run
    assert roomy.evidence is not None and roomy.evidence["decision"] == "GO"
    assert_nothing_half_written(roomy)


@pytest.mark.slow
def test_the_html_page_does_not_fit_the_run_is_sealed_as_failed(disk_full: Callable[[str], Filled]) -> None:
    filled = disk_full("page")
    assert filled.run.returncode == 1 and "NO-GO (FAIL)" in filled.run.failed_line
    assert "01-pre_deploy.html" not in filled.files
    phase = filled.evidence["phases"][0] if filled.evidence else {}
    assert phase.get("verdict") == "FAIL"
    assert any("its HTML page could not be rendered" in r and "No space left on device" in r for r in phase["reasons"])
    assert_nothing_half_written(filled)


@pytest.mark.slow
def test_evidence_json_does_not_fit_nothing_is_sealed(disk_full: Callable[[str], Filled]) -> None:
    filled = disk_full("evidence")
    assert "01-pre_deploy.html" in filled.files, "the disk filled at evidence.json, not before"
    assert filled.run.returncode == 1
    line = filled.run.failed_line
    assert "cannot seal run" in line and "cannot write evidence.json" in line and "No space left on device" in line
    assert filled.evidence is None
    assert_nothing_half_written(filled)


@pytest.mark.parametrize("where", ["notebook", "index"])
@pytest.mark.slow
def test_whatever_fills_up_nothing_half_written_is_left_as_valid(
    where: str, disk_full: Callable[[str], Filled]
) -> None:
    filled = disk_full(where)
    assert filled.run.returncode != 0
    if where == "index":
        assert filled.evidence is not None, "the disk filled at index.html, after the seal"
    assert_nothing_half_written(filled)


@pytest.mark.parametrize("where", ["notebook", "index"])
@pytest.mark.slow
def test_whatever_fills_up_the_run_ends_in_one_line(where: str, disk_full: Callable[[str], Filled]) -> None:
    filled = disk_full(where)
    assert "Traceback" not in filled.run.stderr, filled.run.stderr[-2000:]
    assert "No space left on device" in filled.run.failed_line


def test_sealing_past_a_file_size_limit_names_the_file_and_seals_nothing(tmp_path: Path) -> None:
    """Where no tmpfs can be mounted: a file-size limit on this process that a signed run's
    attestation and evidence.json exceed (its signature fits). The seal fails naming the file,
    and takes the signature it wrote with it: the run is left incomplete, not half sealed."""
    runs = tmp_path / "runs"
    run_dir = runs / "20261128T094500Z-a1b2c3"
    (run_dir / "pre_deploy").mkdir(parents=True)
    for index in range(300):  # evidence.json lists each: ~40 kB
        (run_dir / "pre_deploy" / f"chart_{index:03d}.png").write_bytes(b"png %d" % index)
    generate_signing_key(tmp_path / "signing.pem")
    body = {
        name: {}
        for name in (
            "started_at",
            "finished_at",
            "duration_sec",
            "verdict",
            "decision",
            "exit_code",
            "target",
            "parameters",
            "phases",
            "metrics",
            "code",
            "tools",
        )
    } | {"verdict": "PASS", "decision": "GO", "exit_code": 0}
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (20_000, hard))  # SIGXFSZ is ignored by Python: EFBIG
    try:
        with pytest.raises(EvidenceSealRefused) as refused:
            seal_run(run_dir, {"run_id": run_dir.name, **body}, signing_key=tmp_path / "signing.pem")
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
    message = str(refused.value)
    # The attestation (written before evidence.json, like the signature) is the first own file past the limit.
    assert "cannot write evidence.intoto.jsonl" in message and "File too large" in message and "\n" not in message
    assert sorted(p.name for p in run_dir.iterdir()) == ["pre_deploy"], "no evidence.json, no signature, no temporary"
    verified = run_cli(["evidence", "verify", str(runs)], tmp_path / "artifacts")
    assert verified.returncode == 0 and "incomplete run" in verified.stdout


@pytest.mark.slow
def test_the_html_page_outgrows_the_file_size_limit(tmp_path: Path) -> None:
    """Without a tmpfs: a file-size limit on the runner (and its kernel) that the HTML page
    (~270 kB) exceeds; SIGXFSZ ignored, so the write fails with EFBIG."""

    def limit_file_size() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (150_000, 150_000))

    artifacts = tmp_path / "artifacts"
    notebooks = phase_notebooks(tmp_path / "notebooks", PASSING)
    done = finish(start_run(notebooks, artifacts, tmp_path / "tmp", *NO_TARGET, preexec_fn=limit_file_size))
    assert done.returncode == 1 and "NO-GO (FAIL)" in done.failed_line
    run_dir = the_run(artifacts)
    reasons = evidence(run_dir)["phases"][0]["reasons"]
    assert any("its HTML page could not be rendered" in r and "File too large" in r for r in reasons), reasons
    assert not (run_dir / "01-pre_deploy.html").exists() and temporary_files(run_dir) == []
    assert run_cli(["evidence", "verify", str(run_dir)], artifacts).returncode == 0


@pytest.mark.slow
@pytest.mark.parametrize("to_group", [False, True], ids=["runner", "process-group"])
def test_a_terminated_run_is_sealed_interrupted_and_leaves_no_kernel(tmp_path: Path, to_group: bool) -> None:
    """SIGTERM to the runner alone (a CI job cancelled, a container stopped), or to its whole
    process group (``kill -TERM -PGID``: the kernels' fork server gets it too, and must outlive
    the kernels' cleanup): the run ends as Ctrl-C ends it — the phase interrupted, the bundle
    sealed and verifiable, exit 130 — its cell's own cleanup runs (where a gate drops its
    scratch database), and no kernel it started is left running."""
    started, cleaned = tmp_path / "cell-started", tmp_path / "cell-cleaned-up"
    notebooks = phase_notebooks(
        tmp_path / "notebooks",
        f"import pathlib\ntry:\n    {sleeping_at(started).replace(chr(10), chr(10) + '    ')}\n"
        f"finally:\n    time.sleep(2)  # a cleanup that takes a while: DROP DATABASE\n"
        f"    pathlib.Path({str(cleaned)!r}).touch()",
    )
    process = start_run(notebooks, tmp_path / "artifacts", tmp_path / "tmp", *NO_TARGET, start_new_session=to_group)
    wait_for(started, process)
    kernels = kernels_of(process.pid)
    assert kernels, "the phase runs in a kernel of the runner's"
    if to_group:
        os.killpg(process.pid, signal.SIGTERM)
    else:
        process.send_signal(signal.SIGTERM)
    done = finish(process)
    assert done.returncode == 130, done
    assert "Traceback" not in done.stderr
    run_dir = the_run(tmp_path / "artifacts")
    document = evidence(run_dir)
    assert (document["phases"][0]["status"], document["decision"]) == ("interrupted", "INTERRUPTED")
    assert cleaned.exists(), "the interrupted cell ran its cleanup before its kernel was stopped"
    assert all(gone(kernel, 30) for kernel in kernels), "a kernel outlived the run"
    assert verify_path(run_dir).ok
