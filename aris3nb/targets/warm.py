"""A warm probe: ``probe.py --serve`` kept running in the target's interpreter for this process.

A one-off probe spends most of its time importing Alembic and SQLAlchemy (~0.3 s of ~0.4 s on
the foreign test target), and a playbook run asks a target about twenty questions. The warm
probe imports them once; each question is then answered by a child it forks, which imports the
target's own code afresh and exits, so no question sees what an earlier one left (module state,
engines, the environment: each child gets the request's whole environment). Its answers are the
one-off probe's, byte for byte: the same ``main`` answers in the child.

One server per (interpreter, target root, environment) in this process, started on first use
in its own session. It ends when this process does: at exit it is killed with anything it
started, and should this process die without running its exit handlers, the server reads the end
of its input and leaves. A question that runs past its timeout has the server and its child
killed (the next question starts another). Whenever the warm probe cannot take a question (busy
with another thread's, a server that never got ready, a platform without ``fork``),
``ask`` says so and the caller runs a one-off probe instead.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import select
import signal
import subprocess
import threading
import time
from pathlib import Path
from typing import Any, NamedTuple

PROBE = Path(__file__).resolve().with_name("probe.py")
#: How long a starting server may take to import Alembic and SQLAlchemy before it is given up
#: (the question then goes to a one-off probe).
READY_TIMEOUT_SEC = 30.0
#: The variables that differ from one question to the next (the database URL's variable is the
#: profile's): a server is reused while everything else in the environment is as it started with.
PER_REQUEST = frozenset({"PGOPTIONS", "PGCONNECT_TIMEOUT"})


class Reply(NamedTuple):
    """What the child that answered printed, and how it ended (a one-off probe's outputs)."""

    stdout: str
    stderr: str
    returncode: int


class ProbeTimeout(Exception):
    """The question ran past its timeout: the server and its child were killed."""


class _Server:
    def __init__(self, python: Path, root: Path, env: dict[str, str]) -> None:
        self.env = env
        self.lock = threading.Lock()
        self.ready = False
        self.dead = False
        #: It never got ready: this interpreter is asked through one-off probes from now on.
        self.unusable = False
        self._buffer = b""
        self.process = subprocess.Popen(
            [str(python), str(PROBE), "--serve"],
            cwd=root,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            bufsize=0,
            start_new_session=True,
        )

    def _line(self, deadline: float) -> bytes | None:
        """The next line the server writes; None when ``deadline`` (monotonic) passes first.
        EOFError when the server has ended."""
        assert self.process.stdout is not None
        fd = self.process.stdout.fileno()
        while b"\n" not in self._buffer:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            if not select.select([fd], [], [], remaining)[0]:
                continue
            block = os.read(fd, 1 << 16)
            if not block:
                raise EOFError
            self._buffer += block
        line, _, self._buffer = self._buffer.partition(b"\n")
        return line

    def _await_ready(self) -> bool:
        """Whether the server has said it is ready (what the interpreter printed before the
        server took its output over, a ``sitecustomize`` say, is passed over)."""
        deadline = time.monotonic() + READY_TIMEOUT_SEC
        while not self.ready:
            try:
                line = self._line(deadline)
            except EOFError:
                return False
            if line is None:
                return False
            self.ready = _json(line).get("ready") is True
        return True

    def ask(self, request: dict[str, object], env: dict[str, str], timeout: float) -> Reply | None:
        if not self._await_ready() or self.process.poll() is not None:
            self.stop()
            self.unusable = not self.ready
            return None  # nothing was asked of it: a one-off probe answers
        assert self.process.stdin is not None
        try:
            self.process.stdin.write(json.dumps({"request": request, "env": env}).encode() + b"\n")
            line = self._line(time.monotonic() + timeout)
        except (BrokenPipeError, EOFError):
            line = b""
        if line is None:
            self.stop()
            raise ProbeTimeout
        reply = _json(line)
        if "returncode" not in reply:
            self.stop()
            return Reply("", "the warm probe process ended without an answer", -1)
        return Reply(str(reply.get("stdout", "")), str(reply.get("stderr", "")), int(reply["returncode"]))

    def stop(self) -> None:
        """Kill the server and anything it started (its own session); reap it."""
        self.dead = True
        kill_group(self.process)
        for pipe in (self.process.stdin, self.process.stdout):
            with contextlib.suppress(OSError):
                if pipe is not None:
                    pipe.close()


def kill_group(process: subprocess.Popen[Any]) -> None:
    """Stop a process started in its own session, and anything it started; reap it."""
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=10)


def _json(line: bytes) -> dict[str, Any]:
    try:
        found = json.loads(line)
    except ValueError:
        return {}
    return found if isinstance(found, dict) else {}


_SERVERS: dict[tuple[str, str], _Server] = {}
_STARTED: list[_Server] = []
_SERVERS_LOCK = threading.Lock()


def _stable(env: dict[str, str], url_env: str) -> dict[str, str]:
    return {k: v for k, v in env.items() if k not in PER_REQUEST and k != url_env}


def start(python: Path, root: Path, env: dict[str, str], url_env: str) -> None:
    """Start the server for ``python`` in ``root`` now (it gets ready while other work goes on),
    unless one that fits is running."""
    _server(python, root, env, url_env)


def _server(python: Path, root: Path, env: dict[str, str], url_env: str) -> _Server | None:
    if not hasattr(os, "fork"):
        return None
    key = (str(python), str(root))
    stable = _stable(env, url_env)
    with _SERVERS_LOCK:
        server = _SERVERS.get(key)  # this process's own: a forked child forgets its parent's
        if server is not None and server.unusable:
            return None
        if server is not None and not server.dead and server.env == stable:
            return server
        if server is not None and server.lock.acquire(blocking=False):
            server.stop()  # another environment, or ended: replaced (one still answering is stopped at exit)
            server.lock.release()
        try:
            server = _SERVERS[key] = _Server(python, root, stable)
        except OSError:
            return None  # the one-off probe reports why the interpreter cannot run
        _STARTED[:] = [*(s for s in _STARTED if not s.dead), server]
        return server


def ask(
    python: Path, root: Path, request: dict[str, object], env: dict[str, str], url_env: str, timeout: float
) -> Reply | None:
    """The warm probe's answer to ``request`` in environment ``env`` (None: ask a one-off probe
    instead). ``ProbeTimeout`` when it ran past ``timeout`` seconds."""
    server = _server(python, root, env, url_env)
    if server is None or not server.lock.acquire(blocking=False):
        return None
    try:
        return server.ask(request, env, timeout)
    finally:
        server.lock.release()


def _forget_inherited() -> None:
    """In a child this process forks: its servers are its parent's; the child's copies of their
    pipes are closed (else a server would not see its process end while the child lives)."""
    for server in _STARTED:
        for pipe in (server.process.stdin, server.process.stdout):
            with contextlib.suppress(OSError):
                if pipe is not None:
                    pipe.close()
    _STARTED.clear()
    _SERVERS.clear()


os.register_at_fork(after_in_child=_forget_inherited)


@atexit.register
def stop_all() -> None:
    """Stop every server this process started."""
    with _SERVERS_LOCK:
        for server in _STARTED:
            server.stop()
        _STARTED.clear()
        _SERVERS.clear()
