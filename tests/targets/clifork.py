"""``aris3nb ARGS`` run to its end as its own process, without paying its imports each time.

The tests run the ``aris3nb`` program a few hundred times; a fresh interpreter spends about a
second of CPU importing what a backup or evidence command needs (settings, formats, SQLAlchemy,
Alembic, the contract's models), more than many of those commands take to run. ``run`` gives
what ``subprocess.run([aris3nb, *args], capture_output=True, text=True)`` gives — a process of
its own with its own pid, environment, working folder, standard streams, exit status and
signals, whose atexit handlers run at its end — but forked from one warm server per test
process (``serve`` below) that imported the libraries and stopped there: it never runs a
command, reads a setting or makes a console, so nothing of one command is in the next.

What a fresh process would have that a fork does not is covered elsewhere: the installed
program's own start (``tests/integration/test_installed_wheel.py``, ``test_cli.py``'s program
tests) and what the program imports at start (``tests/unit/test_architecture.py``).
``ARIS3NB_TESTS_FRESH_CLI=1`` runs every call as a fresh ``aris3nb`` process instead.

Protocol, on a Unix socket: the client sends one JSON request (args, environment, folder) with
three descriptors (stdin, stdout, stderr); the server forks, answers ``pid N``, and when the
child ends, ``status N`` (its wait status).
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import selectors
import signal
import socket
import subprocess
import sys
import tempfile
import threading
from pathlib import Path
from typing import Any

ARIS3NB = str(Path(sys.executable).with_name("aris3nb"))
FRESH = os.environ.get("ARIS3NB_TESTS_FRESH_CLI", "").lower() in ("1", "true", "yes")

#: What the commands import, loaded once by the server. Never ``aris3nb.cli``: its consoles
#: read the environment (colour, width) when they are made, which must be the command's.
PRELOAD = (
    "pydantic",
    "pydantic_settings",
    "sqlalchemy",
    "sqlalchemy.orm",
    "alembic.command",
    "alembic.autogenerate",
    "alembic.runtime.migration",
    "alembic.script",
    "psycopg",
    "numpy",
    "sqlalchemy.dialects.sqlite",
    "sqlalchemy.dialects.postgresql",
    "boto3",
    "botocore.client",
    "typer",
    "rich.console",
    "rich.table",
    "httpx",
    "aris3nb.core.settings",
    "aris3nb.formats",
    "aris3nb.contract.models",
    "aris3nb.schema",
    "aris3nb.backup.create",
    "aris3nb.backup.drill",
    "aris3nb.backup.restore",
    "aris3nb.backup.retention",
    "aris3nb.storage.artifacts",
    "aris3nb.storage.s3",
    "aris3nb.integrity.runner",
    "aris3nb.evidence.bundle",
)


# ---------------------------------------------------------------------------- client


def run(
    args: list[str],
    *,
    env: dict[str, str] | None = None,
    cwd: str | Path | None = None,
    timeout: float | None = None,
    input: str | None = None,  # noqa: A002 -- subprocess.run's name
) -> subprocess.CompletedProcess[str]:
    """``aris3nb ARGS`` to its end, its output captured as text (``subprocess.run``'s result;
    ``subprocess.TimeoutExpired`` past ``timeout``, the process killed)."""
    chosen = dict(os.environ if env is None else env)
    if FRESH or _interpreter_settings(chosen) != _server_settings():
        # PYTHONPATH and the like shape an interpreter's start: a fork would not have them.
        return subprocess.run(
            [ARIS3NB, *args],
            env=env,
            cwd=cwd,
            timeout=timeout,
            input=input,
            stdin=None if input is not None else subprocess.DEVNULL,
            capture_output=True,
            text=True,
            check=False,
        )
    request = {
        "args": list(args),
        "env": chosen,
        "cwd": str(cwd if cwd is not None else os.getcwd()),
    }
    out_r, out_w = os.pipe()
    err_r, err_w = os.pipe()
    in_r, in_w = os.pipe() if input is not None else (os.open(os.devnull, os.O_RDONLY), -1)
    conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        conn.connect(str(_server["path"]))
        message = json.dumps(request).encode() + b"\n"
        sent = socket.send_fds(conn, [message], [in_r, out_w, err_w])
        conn.sendall(message[sent:])
    finally:
        for fd in (in_r, out_w, err_w):
            os.close(fd)
    if in_w != -1:
        threading.Thread(target=_feed, args=(in_w, (input or "").encode()), daemon=True).start()
    replies = conn.makefile("r")
    pid = int(replies.readline().split()[1])
    stdout, stderr, timed_out = _read_both(out_r, err_r, timeout)
    if timed_out:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    status = int(replies.readline().split()[1])
    conn.close()
    if timed_out:
        raise subprocess.TimeoutExpired([ARIS3NB, *args], timeout or 0, stdout, stderr)
    return subprocess.CompletedProcess([ARIS3NB, *args], os.waitstatus_to_exitcode(status), stdout, stderr)


def _interpreter_settings(env: Any) -> dict[str, str]:
    return {k: v for k, v in env.items() if k.startswith("PYTHON") and k != "PYTHONUNBUFFERED"}


def _feed(fd: int, data: bytes) -> None:
    with contextlib.suppress(BrokenPipeError), os.fdopen(fd, "wb") as pipe:
        pipe.write(data)


def _read_both(out_r: int, err_r: int, timeout: float | None) -> tuple[str, str, bool]:
    """Both pipes read to their end (every writer gone) or to the timeout."""
    chunks: dict[int, list[bytes]] = {out_r: [], err_r: []}
    deadline = None if timeout is None else _now() + timeout
    with selectors.DefaultSelector() as selector:
        for fd in chunks:
            selector.register(fd, selectors.EVENT_READ)
        while selector.get_map():
            left = None if deadline is None else deadline - _now()
            if left is not None and left <= 0:
                break
            for key, _ in selector.select(left):
                data = os.read(key.fd, 65536)
                if data:
                    chunks[key.fd].append(data)
                else:
                    selector.unregister(key.fd)
        timed_out = bool(selector.get_map())
    for fd in chunks:
        os.close(fd)
    text = {fd: b"".join(parts).decode(errors="replace") for fd, parts in chunks.items()}
    return text[out_r], text[err_r], timed_out


def _now() -> float:
    import time

    return time.monotonic()


_server: dict[str, Any] = {}


def _server_settings() -> dict[str, str]:
    """The interpreter settings of this process's server (started on first use, stopped at
    this process's exit), which a command forked from it has."""
    if _server.get("owner") == os.getpid() and _server["process"].poll() is None:
        return dict(_server["settings"])
    folder = tempfile.mkdtemp(prefix="tests-clifork-")
    path = os.path.join(folder, "s")
    process = subprocess.Popen(
        [sys.executable, __file__, "--serve", path],
        stdin=subprocess.PIPE,  # never written: its end (this process gone, even killed) ends the server
        stdout=subprocess.PIPE,
        text=True,
        cwd=folder,
    )
    assert process.stdout is not None
    line = process.stdout.readline()
    assert line.strip() == "ready", f"the CLI fork server did not start: {line!r}"
    _server.update(owner=os.getpid(), path=path, process=process, settings=_interpreter_settings(os.environ))
    atexit.register(_stop, process, folder)
    return dict(_server["settings"])


def _stop(process: subprocess.Popen[str], folder: str) -> None:
    process.kill()
    process.wait()
    if process.stdin is not None:
        process.stdin.close()
    with contextlib.suppress(OSError):
        os.remove(os.path.join(folder, "s"))
        os.rmdir(folder)


# ---------------------------------------------------------------------------- server


def serve(path: str) -> None:
    """Import ``PRELOAD``, then fork a child per request until standard input ends (the test
    process that started the server is gone) or the server is killed."""
    import gc
    import importlib

    sys.path[0] = str(Path(ARIS3NB).parent)  # the program's first path entry, not this folder
    for module in PRELOAD:
        importlib.import_module(module)
    gc.collect()
    gc.freeze()  # the children's collections leave the preloaded objects (and their pages) alone
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    listener.listen(64)
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_w, False)
    signal.set_wakeup_fd(wake_w)
    signal.signal(signal.SIGCHLD, lambda *_: None)
    waiting: dict[int, socket.socket] = {}
    server_pid = os.getpid()
    selector = selectors.DefaultSelector()
    selector.register(listener, selectors.EVENT_READ)
    selector.register(wake_r, selectors.EVENT_READ)
    selector.register(sys.stdin.fileno(), selectors.EVENT_READ)  # its end: the test process is gone
    print("ready", flush=True)
    while True:
        for key, _ in selector.select():
            if key.fileobj is listener:
                conn, _ = listener.accept()
                message, fds, _, _ = socket.recv_fds(conn, 1 << 22, 3)
                while not message.endswith(b"\n"):
                    message += conn.recv(1 << 22)
                pid = os.fork()
                if pid == 0:
                    selector.close()
                    listener.close()
                    for fd in (wake_r, wake_w):
                        os.close(fd)
                    _become_command(json.loads(message), fds, conn)  # never returns
                for fd in fds:
                    os.close(fd)
                conn.sendall(f"pid {pid}\n".encode())
                waiting[pid] = conn
            elif key.fileobj == sys.stdin.fileno():
                if not os.read(key.fd, 4096):
                    os.remove(path)
                    raise SystemExit(0)
            else:
                with contextlib.suppress(BlockingIOError):
                    os.read(wake_r, 4096)
        while waiting:
            with contextlib.suppress(ChildProcessError):
                pid, status = os.waitpid(-1, os.WNOHANG)
                if pid == 0:
                    break
                conn = waiting.pop(pid, None)
                if conn is not None:
                    with contextlib.suppress(OSError):
                        conn.sendall(f"status {status}\n".encode())
                    conn.close()
                continue
            break
        assert os.getpid() == server_pid


def _become_command(request: dict[str, Any], fds: list[int], conn: socket.socket) -> None:
    """In the forked child: the request's streams, folder, environment and arguments, then
    the ``aris3nb`` program; its end (``SystemExit``) ends this process as an interpreter's."""
    signal.set_wakeup_fd(-1)
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    conn.close()
    for target, fd in enumerate(fds):
        os.dup2(fd, target)
        os.close(fd)
    os.chdir(request["cwd"])
    os.environ.clear()
    os.environ.update(request["env"])
    tempfile.tempdir = None  # read from TMPDIR again, as a fresh process would
    sys.argv = [ARIS3NB, *request["args"]]
    from aris3nb.cli import console

    console()
    raise SystemExit(0)


if __name__ == "__main__":
    if sys.argv[1:2] == ["--serve"]:
        serve(sys.argv[2])
