"""No kernel boots while latency is sampled: each booting kernel has a file in the run's booting
folder, removed by its warm-up whatever happens, and the gate's latency checks wait for the
folder to hold no file of a live process."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from aris3nb.gate.runner import wait_for_kernels_booted


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


WARM_UP = """
import gc, sys
from aris3nb.evidence import kernels
kernels.WARM_IMPORTS = tuple(sys.argv[2:])
try:
    kernels.warm_up(sys.argv[1])
except ModuleNotFoundError as exc:
    print("failed", exc.name)
print("collector", gc.isenabled(), gc.get_freeze_count() > 0)
"""


@pytest.mark.parametrize("fails", [False, True], ids=["boots", "fails"])
def test_the_warm_up_removes_its_booting_file_and_leaves_the_collector_on(tmp_path: Path, fails: bool) -> None:
    """Whatever happens, the booting file goes and the garbage collector is on again, with what
    the warm-up loaded frozen (in a process of its own: the warm-up freezes its process)."""
    marker = tmp_path / "kernel-1"
    marker.write_text(str(os.getpid()))
    imports = ["aris3nb.core.words", *(["aris3nb.no_such_module"] if fails else [])]
    done = subprocess.run(
        [sys.executable, "-c", WARM_UP, str(marker), *imports], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    said = done.stdout.splitlines()
    assert said == [*(["failed aris3nb.no_such_module"] if fails else []), "collector True True"]
    assert not marker.exists()


def test_latency_waits_for_the_kernels_booting_and_names_them_at_the_timeout(tmp_path: Path) -> None:
    assert wait_for_kernels_booted(None) == {}
    clock = FakeClock()
    (tmp_path / "kernel-2").write_text(str(os.getpid()))  # a live process: still booting
    waited = wait_for_kernels_booted(str(tmp_path), timeout_sec=3, clock=clock, sleep=clock.sleep)
    assert waited["kernels_still_booting"] == ["kernel-2"] and waited["waited_for_kernels_booting_sec"] >= 3

    def boots_after_a_second(seconds: float) -> None:
        clock.sleep(seconds)
        if clock.now >= 4:
            (tmp_path / "kernel-2").unlink(missing_ok=True)

    clock.now = 3.0
    waited = wait_for_kernels_booted(str(tmp_path), timeout_sec=30, clock=clock, sleep=boots_after_a_second)
    assert "kernels_still_booting" not in waited and 0.9 <= waited["waited_for_kernels_booting_sec"] <= 1.1


def test_a_kernel_dead_while_booting_is_not_waited_for(tmp_path: Path) -> None:
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    (tmp_path / "kernel-3").write_text(gone.stdout.strip())
    clock = FakeClock()
    waited = wait_for_kernels_booted(str(tmp_path), timeout_sec=30, clock=clock, sleep=clock.sleep)
    assert waited == {"waited_for_kernels_booting_sec": 0.0}


def test_a_stop_that_reached_only_aris3nb_has_its_kernel_interrupted() -> None:
    """SIGTERM reaches aris3nb's process alone; so does a SIGINT when no terminal's foreground
    group holds the run (CI, a scheduler, ``kill -INT``): the kernel is interrupted by the runner."""
    from aris3nb.core.errors import Terminated
    from aris3nb.evidence.kernels import signalled_with_its_kernels

    assert signalled_with_its_kernels(Terminated()) is False
    with open(os.devnull) as no_terminal:
        saved = os.dup(0)
        os.dup2(no_terminal.fileno(), 0)
        try:
            assert signalled_with_its_kernels(KeyboardInterrupt()) is False
        finally:
            os.dup2(saved, 0)
            os.close(saved)
