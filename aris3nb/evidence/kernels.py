"""The run's kernels: each phase's kernel started one phase ahead (booted, and warm with the
imports every phase needs) so that it is ready when its phase begins; a dead kernel's last
words read from its log for the evidence.

A kernel boots while the phase before its own runs, which may be a phase that measures latency.
It must not boot *while* latency is sampled: each booting kernel has a file in the run's
``booting`` folder (its process id inside), which its warm-up removes when it is done (or the
runner, when it stops the kernel); the folder reaches every kernel as ``ARIS3NB_BOOTING_DIR``,
and the gate's latency checks wait for it to empty before they sample (``aris3nb.gate.runner``).
"""

from __future__ import annotations

import contextlib
import gc
import importlib
import io
import os
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aris3nb.core.redact import redact_text

if TYPE_CHECKING:
    from aris3nb.evidence.forks import ForkServer

KERNEL_NAME = "python3"

KERNEL_START_TIMEOUT_SEC = 120

#: The longest path a Unix socket may have (``sun_path``, less its final NUL), on Linux; the
#: shortest of the systems with ``AF_UNIX`` is 104 bytes, which the check below keeps under.
SOCKET_PATH_MAX = 103

#: What each kernel imports as it boots, while the previous phase still runs: what every phase needs.
WARM_IMPORTS = (
    "aris3nb.evidence.display",
    "aris3nb.phases",
    "aris3nb.gate",
    "aris3nb.integrity",
    "pandas",
    "IPython.display",
)


#: What every kernel's environment holds, and the fork server's (read as the interpreter starts,
#: or as matplotlib is imported).
KERNEL_ENV = {"PYTHONUNBUFFERED": "1", "MPLBACKEND": "Agg"}

#: Whether this process has warmed up (a fork of the fork server has).
_warm = False


def warm_up(booting_marker: str | None = None) -> None:
    """Run by each kernel as it boots (its ``exec_lines``): the imports every phase needs and a
    first chart drawn (matplotlib loads its fonts then, ~0.3 s); then, whatever happened, its
    file in the booting folder removed: the kernel has booted.

    The garbage collector rests while the imports run (they make no garbage worth a collection,
    and each full collection walks everything loaded so far: 10–25 % of the imports' CPU here,
    measured), and what they loaded is frozen afterwards, so the phase's own collections walk
    the phase's objects only. A kernel forked from a warm process (``aris3nb.evidence.forks``)
    has all that already: its warm-up only says it has booted."""
    global _warm
    gc.disable()
    try:
        if _warm:
            return
        for name in WARM_IMPORTS:
            importlib.import_module(name)
        importlib.import_module("aris3nb.gate.http").tls_context()  # each HTTP client's, made once
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        figure, axis = plt.subplots()
        axis.hist([1, 2, 2, 3], bins=3)
        axis.set_title("warm-up")
        figure.savefig(io.BytesIO(), format="png", dpi=96, bbox_inches="tight")
        plt.close(figure)
        _warm = True
    finally:
        gc.freeze()
        gc.enable()
        if booting_marker:
            with contextlib.suppress(OSError):
                os.remove(booting_marker)


def kernel_transport(connection_file: Path) -> str:
    """How the runner and a kernel speak: Unix sockets beside its connection file (``ipc``),
    where their paths fit and the system is POSIX (ZeroMQ's ``ipc``), else TCP on loopback.

    On TCP, jupyter_client picks five free ports and closes them; the kernel binds them a moment
    later, and any process on the machine may take one meanwhile (every outgoing connection takes
    an ephemeral port): that kernel then dies as it starts, "Address already in use". With tests
    or other runs beside it, 1 kernel in 75 did here. The sockets ``ipc`` uses are files in the
    run's own scratch folder, which nothing else can take, readable by the run's user only.
    (jupyter_client names them after the connection file: ``kernel-N-ipc-1`` to ``-5``.)"""
    longest = f"{connection_file.with_suffix('')}-ipc-99"
    if os.name != "posix" or len(os.fsencode(longest)) > SOCKET_PATH_MAX:
        return "tcp"
    return "ipc"


#: How long a stopped run waits for an interrupted cell to end (its cleanup: a scratch database
#: dropped, a transaction rolled back) before its kernel is stopped whatever it does: within the
#: 10 s a container runtime gives between SIGTERM and SIGKILL.
SETTLE_TIMEOUT_SEC = 7.0


class Kernels:
    """Kernels started one phase ahead, so each phase finds its kernel booted and warm."""

    def __init__(
        self, env: dict[str, str], cwd: Path, log_dir: Path, *, fork: bool = True, server: ForkServer | None = None
    ) -> None:
        """``fork``: kernels forked from ``server`` (the caller's, which the caller ends), else from
        a fork server of their own, started with the first kernel; false: each boots on its own."""
        from aris3nb.gate.runner import BOOTING_ENV

        self.cwd, self.log_dir = cwd, log_dir
        self.booting = log_dir / "booting"
        self.booting.mkdir(exist_ok=True)
        self.env = {**env, BOOTING_ENV: str(self.booting)}
        self._next: Any = None
        self._started = 0
        self._fork = fork
        self._server = server if fork else None
        self._own_server = False

    def _fork_server(self) -> ForkServer | None:
        if self._fork and self._server is None:
            from aris3nb.evidence.forks import ForkServer, supported

            if not supported():
                self._fork = False
                return None
            try:
                self._server = ForkServer(self.env, self.cwd, self.log_dir / "fork-server.log")
                self._own_server = True
            except OSError:  # no server: each kernel boots on its own
                self._fork = False
        return self._server

    def _start(self) -> Any:
        from jupyter_client.manager import AsyncKernelManager
        from jupyter_core.utils import run_sync

        from aris3nb.evidence.kernel_client import CLIENT_CLASS

        self._started += 1
        marker = self.booting / f"kernel-{self._started}"
        marker.write_text("")
        # A call that leaves no name behind: the notebook's names stay exactly its own.
        warm = f"__import__('aris3nb.evidence.kernels', fromlist=['warm_up']).warm_up({str(marker)!r})"
        # The connection file inside the run's scratch folder: swept with it if the run is killed.
        # Any: it carries attributes of ours, aris3nb_log (read by last_words) and aris3nb_booting.
        connection_file = self.log_dir / f"kernel-{self._started}.json"
        manager: Any = AsyncKernelManager(
            kernel_name=KERNEL_NAME,
            connection_file=str(connection_file),
            transport=kernel_transport(connection_file),
            client_class=CLIENT_CLASS,  # ready when the kernel answers (jupyter_client's waits 0.2 s more)
        )
        manager.aris3nb_booting = marker
        log = self.log_dir / f"kernel-{self._started}.log"
        server = self._fork_server()
        if server is not None:
            from aris3nb.evidence.forks import provisioner_class

            manager.kernel_id = str(uuid.uuid4())
            manager.provisioner = provisioner_class()(
                kernel_id=manager.kernel_id, kernel_spec=manager.kernel_spec, parent=manager
            )
            manager.provisioner.server, manager.provisioner.log = server, log
            manager.provisioner.marker = marker
        try:
            with log.open("w") as stream:  # the child keeps its own descriptor
                run_sync(manager.start_kernel)(
                    env=self.env,
                    cwd=str(self.cwd),
                    stdout=stream,
                    stderr=stream,
                    # The working folder kept off the kernel's path: a folder there named like a
                    # package (an ``aris3nb`` checkout beside which the run was started) would be
                    # imported instead of the installed one.
                    extra_arguments=[f"--IPKernelApp.exec_lines={[warm]!r}", "--IPKernelApp.ignore_cwd=True"],
                )
        except BaseException:
            marker.unlink(missing_ok=True)
            raise
        pid = getattr(getattr(manager, "provisioner", None), "pid", None)
        with contextlib.suppress(OSError):  # gone already: the kernel booted (or died) meanwhile
            with marker.open("r+") as file:
                file.write(str(pid or ""))
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
    def settle(manager: Any, *, interrupt: bool, timeout_sec: float = SETTLE_TIMEOUT_SEC) -> bool:
        """After the run was stopped (Ctrl-C, SIGTERM): with ``interrupt``, interrupt the
        kernel's running cell — KeyboardInterrupt there, so the cell's own cleanup runs (a gate
        drops its scratch database, a restore rolls back); without, the kernel had the signal
        itself (a terminal's Ctrl-C reaches the whole foreground group), and a second one would
        break that cleanup. Then wait, at most ``timeout_sec``, until the kernel answers again,
        i.e. the cell has ended; whatever it still does then ends with ``stop``. Returns whether
        it settled in time."""
        from jupyter_core.utils import run_sync

        client = None
        try:
            if interrupt:
                run_sync(manager.interrupt_kernel)()
            client = manager.client()
            client.start_channels()
            run_sync(client.wait_for_ready)(timeout=timeout_sec)  # answered: no cell runs any more
            return True
        except Exception:  # noqa: BLE001 -- dead, or still busy at the deadline: stop() ends it
            return False
        finally:
            if client is not None:
                with contextlib.suppress(Exception):
                    client.stop_channels()

    @staticmethod
    def stop(manager: Any) -> None:
        from jupyter_core.utils import run_sync

        with contextlib.suppress(Exception):  # a dead or half-started kernel: nothing left to stop
            run_sync(manager.shutdown_kernel)(now=True)
        with contextlib.suppress(AttributeError, OSError):  # a kernel stopped is not booting
            Path(manager.aris3nb_booting).unlink(missing_ok=True)

    def close(self) -> None:
        if self._next is not None:
            self.stop(self._next)
            self._next = None
        if self._server is not None and self._own_server:
            self._server.close()
        self._server = None


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


def signalled_with_its_kernels(stop: BaseException) -> bool:
    """Whether the stop reached the kernels too: a Ctrl-C typed at the terminal whose
    foreground process group this run is (its kernels are in it); not SIGTERM (``Terminated``,
    aris3nb's process only) nor a SIGINT sent to aris3nb's process alone."""
    from aris3nb.core.errors import Terminated

    if isinstance(stop, Terminated):
        return False
    try:
        return os.isatty(0) and os.tcgetpgrp(0) == os.getpgrp()
    except OSError:
        return False
