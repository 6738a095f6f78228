"""The run's kernels: each phase's kernel started one phase ahead (booted, and warm with the
imports every phase needs) so that it is ready when its phase begins; a dead kernel's last
words read from its log for the evidence."""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from aris3nb.core.redact import redact_text

KERNEL_NAME = "python3"

KERNEL_START_TIMEOUT_SEC = 120

#: Run by each kernel as it boots, while the previous phase still runs: the imports every phase
#: needs, and a first chart drawn (matplotlib loads its fonts then, ~0.3 s).
WARM_UP = """
import importlib, io
for name in ("aris3nb.evidence.display", "aris3nb.phases", "aris3nb.gate", "aris3nb.integrity",
             "pandas", "IPython.display"):
    importlib.import_module(name)
import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt
figure, axis = plt.subplots()
axis.hist([1, 2, 2, 3], bins=3)
axis.set_title("warm-up")
figure.savefig(io.BytesIO(), format="png", dpi=96, bbox_inches="tight")
plt.close(figure)
"""


class Kernels:
    """Kernels started one phase ahead, so each phase finds its kernel booted and warm."""

    def __init__(self, env: dict[str, str], cwd: Path, log_dir: Path) -> None:
        self.env, self.cwd, self.log_dir = env, cwd, log_dir
        self._next: Any = None
        self._started = 0

    def _start(self) -> Any:
        from jupyter_client.manager import AsyncKernelManager
        from jupyter_core.utils import run_sync

        # In a namespace of its own: the notebook's names stay exactly its own.
        warm = "exec(" + repr(WARM_UP) + ", {})"
        self._started += 1
        # The connection file inside the run's scratch folder: swept with it if the run is killed.
        # Any: it carries an attribute of ours, aris3nb_log (read by last_words).
        manager: Any = AsyncKernelManager(
            kernel_name=KERNEL_NAME, connection_file=str(self.log_dir / f"kernel-{self._started}.json")
        )
        log = self.log_dir / f"kernel-{self._started}.log"
        with log.open("w") as stream:  # the child keeps its own descriptor
            run_sync(manager.start_kernel)(
                env=self.env,
                cwd=str(self.cwd),
                stdout=stream,
                stderr=stream,
                extra_arguments=[f"--IPKernelApp.exec_lines={[warm]!r}"],
            )
        manager.aris3nb_log = log
        return manager

    def start_next(self) -> None:
        if self._next is None:
            self._next = self._start()

    def take(self, start_another: bool) -> Any:
        """The warm kernel for this phase; starts the next phase's one if asked."""
        manager = self._next or self._start()
        self._next = None
        if start_another:
            self.start_next()
        return manager

    @staticmethod
    def stop(manager: Any) -> None:
        from jupyter_core.utils import run_sync

        with contextlib.suppress(Exception):  # a dead or half-started kernel: nothing left to stop
            run_sync(manager.shutdown_kernel)(now=True)

    def close(self) -> None:
        if self._next is not None:
            self.stop(self._next)
            self._next = None


def last_words(kernel: Any, secrets: Sequence[str]) -> list[str]:
    """The last lines a dead kernel wrote (its log is outside the bundle), secrets masked."""
    try:
        lines = [
            line
            for line in Path(kernel.aris3nb_log).read_text(errors="replace").splitlines()
            if line.strip() and "without encryption" not in line
        ]
    except (AttributeError, OSError):
        return []
    return [f"kernel said: {redact_text(line.strip(), secrets)[:300]}" for line in lines[-3:]]
