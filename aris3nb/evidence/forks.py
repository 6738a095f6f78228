"""The run's kernels forked from one warm process instead of booted one by one.

Booting a kernel costs about 2 s of CPU, nearly all of it the imports every phase needs
(``kernels.WARM_IMPORTS``) and a first chart; a run boots four or five. A *fork server*, started
with the run, does that work once; each phase's kernel is then a fork of it that only starts
IPython's kernel application (about 0.15 s of CPU), in a session of its own, its output to its
log, with the run's environment — the same kernel a ``python -m ipykernel_launcher -f FILE``
would be, minus the imports it would repeat.

The runner speaks to the fork server over its standard input and output, one JSON line each way:
a request ``{"id", "argv", "env", "cwd", "log", "marker"}`` is answered ``{"id", "pid"}`` once
forked; ``{"pid", "status"}`` follows when that kernel has ended (the server reaps it). The
environment travels through that pipe only, never a file. The server ends when its standard input
closes: when the runner is done with it, or is gone (killed): a forked kernel then notices its
parent is gone as every kernel does (ipykernel's parent poller, ``JPY_PARENT_PID``) and ends.

A kernel's launch never waits for the fork server's own warm-up: the runner learns the kernel's
process id when it first needs it. Where the fork server cannot serve (it failed to start, or
died), a kernel is launched as jupyter_client launches it.

The server needs no booting file of its own (``kernels``: no kernel boots while latency is
sampled): the latency checks run in its forks, which exist only once it has warmed up. The CLI
starts it before it imports the runner (``early_fork_server``), so that it warms up meanwhile.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import select
import signal
import subprocess
import sys
import threading
import time
import traceback
from collections.abc import Iterator
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

if TYPE_CHECKING:
    from aris3nb.core.settings import Settings

#: The kernel command jupyter_client builds for the ``python3`` kernel: what a fork replaces.
LAUNCHER = ("-m", "ipykernel_launcher")
#: How long a signal or a wait may wait for the fork server to say which process a kernel is
#: (it answers once its warm-up is done).
PID_TIMEOUT_SEC = 120.0
#: How long a kill waits for the kernel's end (a killed process ends within milliseconds; one in
#: uninterruptible sleep is left to jupyter_client's own wait, 5 s).
KILLED_WAIT_SEC = 2.0
#: The longest a wait sleeps before looking again (the fork server may have ended meanwhile).
WAIT_SLICE_SEC = 0.5


@functools.cache
def supported() -> bool:
    """Whether kernels can be forked here: Linux with pidfds (5.3 and later), by which a forked
    kernel's end is watched. Elsewhere each kernel boots on its own."""
    if not sys.platform.startswith("linux") or not hasattr(os, "pidfd_open"):
        return False
    try:
        os.close(os.pidfd_open(os.getpid()))
    except OSError:
        return False
    return True


class ForkServer:
    """The runner's side: starts the server, asks it for kernels, learns their ids and ends."""

    def __init__(self, env: dict[str, str], cwd: Path, log: Path | None = None) -> None:
        """Starts the server with the kernels' environment and folder; its own output to ``log``
        (None: nowhere; a warm-up that fails is then seen in each kernel's log, as each repeats it)."""
        with contextlib.ExitStack() as stack:
            stream = stack.enter_context(log.open("w")) if log else subprocess.DEVNULL  # it keeps its own
            self.process: subprocess.Popen[bytes] | None = subprocess.Popen(
                [sys.executable, "-P", "-m", __name__],  # -P: no working folder on the path (see kernels)
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=stream,
                env=env,
                cwd=cwd,
            )
        self._requests = 0
        self._buffer = b""
        self._lock = threading.Lock()  # one reader or writer of the pipes at a time
        self.pids: dict[int, int] = {}
        self.statuses: dict[int, int] = {}

    @property
    def serving(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def fork(self, argv: list[str], env: dict[str, str], cwd: str, log: Path, marker: Path | None) -> ForkedKernel:
        """Asks for a kernel (``argv``: IPKernelApp's arguments); does not wait for it."""
        with self._lock:
            if self.process is None or self.process.stdin is None:
                raise BrokenPipeError("the fork server has been closed")
            self._requests += 1
            request = {"id": self._requests, "argv": argv, "env": env, "cwd": cwd, "log": str(log)}
            request["marker"] = str(marker) if marker else ""
            self.process.stdin.write(json.dumps(request).encode() + b"\n")
            self.process.stdin.flush()
            return ForkedKernel(self, self._requests)

    def read(self, timeout: float) -> None:
        """Takes in what the server said, waiting at most ``timeout`` seconds for a first line."""
        with self._lock:
            if self.process is None or self.process.stdout is None:
                return
            stream = self.process.stdout.fileno()
            wait = timeout
            while select.select([stream], [], [], wait)[0]:
                chunk = os.read(stream, 65536)
                if not chunk:
                    self.process.wait()  # the server has ended
                    break
                self._buffer += chunk
                *lines, self._buffer = self._buffer.split(b"\n")
                for line in lines:
                    said = json.loads(line)
                    if "id" in said:
                        self.pids[said["id"]] = said["pid"]
                    else:
                        self.statuses[said["pid"]] = said["status"]
                wait = 0

    def close(self) -> None:
        """Ends the server at once: its kernels have been stopped by then, and one still warming
        up (a run refused as it starts) would otherwise finish its imports first (~2 s)."""
        with self._lock:
            process, self.process = self.process, None
        if process is None:
            return
        for stream in (process.stdin, process.stdout):
            with contextlib.suppress(OSError):
                if stream is not None:
                    stream.close()
        process.kill()
        process.wait()


class ForkedKernel:
    """A forked kernel as jupyter_client handles a launched one (``subprocess.Popen``'s
    ``pid``, ``poll``, ``wait``, ``send_signal``, ``kill``, ``terminate``). Its end is watched
    through a pidfd, so a process id reused after the kernel ended is never signalled."""

    stdin = stdout = stderr = None

    def __init__(self, server: ForkServer, request: int) -> None:
        self._server, self._request = server, request
        self._pid: int | None = None
        self._pidfd: int | None = None
        self.returncode: int | None = None

    def _resolve(self, timeout: float) -> int | None:
        """The kernel's process id, waiting at most ``timeout`` seconds for the server to say
        it; None if it has not (yet, or ever: the server ended first)."""
        if self._pid is None:
            server, deadline = self._server, time.monotonic() + timeout
            server.read(0)
            while self._request not in server.pids and server.serving and time.monotonic() < deadline:
                server.read(max(0.0, min(deadline - time.monotonic(), 0.5)))
            server.read(0)  # what it said before it ended
            if self._request not in server.pids:
                return None
            self._pid = server.pids[self._request]
            with contextlib.suppress(OSError):  # ended (and reaped) already: poll says so
                self._pidfd = os.pidfd_open(self._pid)
        return self._pid

    @property
    def pid(self) -> int | None:
        return self._resolve(0)

    def poll(self) -> int | None:
        if self.returncode is not None:
            return self.returncode
        pid = self._resolve(0)
        if pid is None:
            # Not forked yet: booting while the server warms up, or never, if it has ended.
            if self._server.serving:
                return None
            self.returncode = 1
            return self.returncode
        if self._pidfd is not None and not select.select([self._pidfd], [], [], 0)[0]:
            return None
        self._server.read(0.5 if pid not in self._server.statuses else 0)  # the server reaps it just after
        self.returncode = self._server.statuses.pop(pid, 1)
        if self._pidfd is not None:
            os.close(self._pidfd)
            self._pidfd = None
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        deadline = None if timeout is None else time.monotonic() + timeout
        while (code := self.poll()) is None:
            left = WAIT_SLICE_SEC if deadline is None else min(deadline - time.monotonic(), WAIT_SLICE_SEC)
            if left <= 0:
                raise subprocess.TimeoutExpired(["forked kernel"], timeout or 0)
            if self._pidfd is not None:  # readable the moment the kernel ends
                select.select([self._pidfd], [], [], left)
            else:  # its process id not said yet
                time.sleep(min(left, 0.05))
        return code

    def send_signal(self, signum: int) -> None:
        """To the kernel's session (itself and what it started), while the kernel lives."""
        pid = self._resolve(PID_TIMEOUT_SEC)
        if pid is None or self.poll() is not None:
            return
        try:
            os.killpg(pid, signum)
        except OSError:
            assert self._pidfd is not None
            signal.pidfd_send_signal(self._pidfd, signum)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)

    def terminate(self) -> None:
        self.send_signal(signal.SIGTERM)


@functools.cache
def provisioner_class() -> type:
    """jupyter_client's local provisioner, with each ``python -m ipykernel_launcher`` command
    forked from its ``server``; any other command (another kernel), or no server serving,
    launched as ever. (Made when first asked for: this module is imported before jupyter_client.)"""
    from jupyter_client.provisioning import LocalProvisioner

    class ForkProvisioner(LocalProvisioner):
        server: ForkServer | None = None
        log: Path | None = None
        marker: Path | None = None

        async def launch_kernel(self, cmd: list[str], **kwargs: Any) -> Any:
            server, log = self.server, self.log
            at = _launcher_at(cmd)
            if server is None or log is None or at is None or not server.serving:
                return await super().launch_kernel(cmd, **kwargs)
            env = {**kwargs.get("env", os.environ)}
            cwd = str(kwargs.get("cwd") or Path.cwd())
            try:
                self.process = server.fork(cmd[at + len(LAUNCHER) :], env, cwd, log, self.marker)  # type: ignore[assignment]
            except OSError:  # it died meanwhile
                return await super().launch_kernel(cmd, **kwargs)
            self.pid = self.pgid = None  # the process is asked for when first needed
            self.cwd = cwd
            return self.connection_info

        async def send_signal(self, signum: int) -> None:
            if isinstance(self.process, ForkedKernel):
                self.process.send_signal(signum)
            else:
                await super().send_signal(signum)

        async def kill(self, restart: bool = False) -> None:
            """Kills the kernel and waits (briefly) for its end: jupyter_client then looks
            every 0.1 s, which put 0.1 s between each phase and the next."""
            await super().kill(restart=restart)
            if isinstance(self.process, ForkedKernel):
                with contextlib.suppress(subprocess.TimeoutExpired):
                    self.process.wait(KILLED_WAIT_SEC)

    return ForkProvisioner


@contextlib.contextmanager
def early_fork_server(settings: Settings) -> Iterator[ForkServer | None]:
    """A fork server started now (before the caller imports the runner), ended on leaving; None
    when kernels are not to be forked (``OPS_FORK_KERNELS=false``) or it cannot start."""
    from aris3nb.evidence.kernels import KERNEL_ENV

    server = None
    if settings.run.fork_kernels and supported():
        with contextlib.suppress(OSError):
            server = ForkServer({**os.environ, **KERNEL_ENV}, Path.cwd())
    try:
        yield server
    finally:
        if server is not None:
            server.close()


def _launcher_at(cmd: list[str]) -> int | None:
    """Where ``-m ipykernel_launcher`` stands in a kernel command of this interpreter."""
    if len(cmd) >= 3 and cmd[1:3] == list(LAUNCHER) and os.path.realpath(cmd[0]) == os.path.realpath(sys.executable):
        return 1
    return None


# --- the server's side ---------------------------------------------------------------------------


def _say(message: dict[str, Any]) -> None:
    """One line to the runner, written whole (a signal handler may also speak between lines)."""
    os.write(1, json.dumps(message).encode() + b"\n")


def _reap(signum: int, frame: Any) -> None:
    """The kernels that ended, reaped and their statuses told."""
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        with contextlib.suppress(OSError):  # the runner is gone: nobody to tell
            _say({"pid": pid, "status": os.waitstatus_to_exitcode(status)})


def _become_kernel(request: dict[str, Any]) -> None:
    """In the forked child: the kernel's own session, output, folder and environment, then
    IPython's kernel application, as ``python -m ipykernel_launcher ARGV`` runs it."""
    code = 1
    try:
        os.setsid()
        for signum in (signal.SIGCHLD, signal.SIGTERM):
            signal.signal(signum, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        log = os.open(request["log"], os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        nothing = os.open(os.devnull, os.O_RDONLY)
        os.dup2(nothing, 0)
        os.dup2(log, 1)
        os.dup2(log, 2)
        os.close(log)
        os.close(nothing)
        os.chdir(request["cwd"])
        os.environ.clear()
        os.environ.update(request["env"])
        # It ends when the fork server (so the run) has ended. ipykernel read JPY_PARENT_PID when the
        # server imported it: the parent is given as an argument too.
        server = str(os.getppid())
        os.environ["JPY_PARENT_PID"] = server
        argv = [*request["argv"], f"--IPKernelApp.parent_handle={server}"]
        sys.argv = [sys.executable, *argv]
        from ipykernel.kernelapp import IPKernelApp

        IPKernelApp.launch_instance(argv=argv)
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    except BaseException:  # noqa: BLE001 -- a kernel that failed to start says why in its log
        traceback.print_exc()
    finally:
        with contextlib.suppress(Exception):
            sys.stdout.flush()
            sys.stderr.flush()
        os._exit(code)


def serve() -> None:
    """The fork server: warm up once, then fork a kernel for each request until the runner
    closes the pipe."""
    # A Ctrl-C or SIGTERM sent to the run's process group is for the runner to handle: it stops
    # the kernels after their cells' cleanup, then closes the pipe. Were the server to end first,
    # its kernels would end with it, cleanup undone.
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, signal.SIG_IGN)
    from aris3nb.evidence.kernels import warm_up

    try:
        import ipykernel.ipkernel  # noqa: F401 -- what every forked kernel would import
        import ipykernel.kernelapp  # noqa: F401

        warm_up()
    except BaseException:  # noqa: BLE001 -- each kernel meets (and shows) the same failure itself
        traceback.print_exc()
    signal.signal(signal.SIGCHLD, _reap)
    requests: IO[bytes] = sys.stdin.buffer
    for line in iter(requests.readline, b""):
        request = json.loads(line)
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:
            _become_kernel(request)
        if request["marker"]:
            with contextlib.suppress(OSError):  # removed already: that kernel has booted
                with open(request["marker"], "r+") as file:
                    file.write(str(pid))
        _say({"id": request["id"], "pid": pid})


if __name__ == "__main__":
    # As ipykernel_launcher does: the working folder off the path while the imports run (the
    # kernel application puts it back for the notebook's own code).
    if sys.path[0] == "" or Path(sys.path[0]) == Path.cwd():
        del sys.path[0]
    serve()
