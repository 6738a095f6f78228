"""The run's kernels forked from one warm process (``aris3nb.evidence.forks``): each is a kernel
of its own (its session, environment, folder, log), already warm; it is signalled and seen to
end as a launched kernel is; without a fork server, kernels boot on their own."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest
from jupyter_core.utils import run_sync

import aris3nb
from aris3nb.core.settings import load_settings
from aris3nb.evidence.forks import ForkedKernel, ForkServer, early_fork_server, supported
from aris3nb.evidence.kernel_client import KernelDiedAtStart, ReadyKernelClient
from aris3nb.evidence.kernels import SOCKET_PATH_MAX, Kernels
from aris3nb.evidence.marks import classify

pytestmark = pytest.mark.slow

#: What a kernel tells of itself, as one JSON line.
INTROSPECT = """
import json, os, sys
print(json.dumps({
    "pid": os.getpid(), "session": os.getsid(0), "parent": os.getppid(), "cwd": os.getcwd(),
    "asked": os.environ.get("ARIS3NB_TEST_ASKED"), "warm": "pandas" in sys.modules,
    "interrupt": str(__import__("signal").getsignal(__import__("signal").SIGINT)), "path": sys.path,
    "aris3nb": getattr(__import__("aris3nb"), "__file__", None),
}))
"""


def ask(manager: Any, code: str, timeout: float = 60) -> tuple[dict[str, Any], list[str]]:
    """Runs ``code`` in the kernel: its reply's content and what it printed."""
    client = manager.client()
    client.start_channels()
    printed: list[str] = []

    def keep(message: dict[str, Any]) -> None:
        if message["header"]["msg_type"] == "stream":
            printed.append(message["content"]["text"])

    try:
        run_sync(client.wait_for_ready)(timeout=timeout)
        reply = run_sync(client.execute_interactive)(code, output_hook=keep, timeout=timeout)
    finally:
        client.stop_channels()
    return reply["content"], "".join(printed).splitlines()


@pytest.fixture
def kernels(tmp_path: Path) -> Iterator[Kernels]:
    (tmp_path / "work").mkdir()
    env = {**os.environ, "ARIS3NB_TEST_ASKED": "yes", "MPLBACKEND": "Agg"}
    started = Kernels(env, tmp_path / "work", tmp_path, fork=True)
    try:
        yield started
    finally:
        started.close()


def test_a_forked_kernel_is_a_warm_kernel_of_its_own(kernels: Kernels, tmp_path: Path) -> None:
    first = kernels.take(start_another=True)
    second = kernels.take(start_another=False)
    try:
        reports = []
        for manager in (first, second):
            assert isinstance(manager.provisioner.process, ForkedKernel)
            content, printed = ask(manager, INTROSPECT)
            assert content["status"] == "ok", content
            reports.append(json.loads(printed[-1]))
        server = kernels._server
        assert server is not None and server.process is not None
        for report, manager in zip(reports, (first, second), strict=True):
            assert report["parent"] == server.process.pid, "forked from the run's fork server"
            assert report["session"] == report["pid"], "a session of its own (signals reach it and its children)"
            assert report["pid"] == manager.provisioner.process.pid
            assert report["cwd"] == str(tmp_path / "work")
            assert report["asked"] == "yes", "the run's environment"
            assert report["warm"], "what every phase imports is there already"
            assert "default_int_handler" in report["interrupt"], "Ctrl-C interrupts its cells again"
        assert reports[0]["pid"] != reports[1]["pid"]
        assert list((tmp_path / "booting").iterdir()) == [], "every kernel, and the server, booted"
        assert "Traceback" not in (tmp_path / "fork-server.log").read_text()
    finally:
        Kernels.stop(first)
        Kernels.stop(second)


def test_a_forked_kernel_is_interrupted_and_seen_dead(kernels: Kernels) -> None:
    manager = kernels.take(start_another=False)
    forked = manager.provisioner.process
    ask(manager, "x = 1")
    client = manager.client()
    client.start_channels()
    try:
        message = client.execute(
            "import time\ntry:\n    time.sleep(60)\nexcept KeyboardInterrupt:\n    print('interrupted')"
        )
        while True:  # the cell has started
            said = run_sync(client.get_iopub_msg)(timeout=30)
            if said["parent_header"].get("msg_id") == message and said["header"]["msg_type"] == "execute_input":
                break
        time.sleep(0.5)
        run_sync(manager.interrupt_kernel)()
        reply = run_sync(client.get_shell_msg)(timeout=30)
        assert reply["parent_header"]["msg_id"] == message
        assert reply["content"]["status"] == "ok"
        printed = []
        while not printed:
            said = run_sync(client.get_iopub_msg)(timeout=30)
            if said["header"]["msg_type"] == "stream":
                printed.append(said["content"]["text"])
        assert printed == ["interrupted\n"]
    finally:
        client.stop_channels()
    assert run_sync(manager.is_alive)()
    pid = forked.pid
    os.kill(pid, signal.SIGKILL)  # as the OOM killer would
    assert forked.wait(timeout=30) == -signal.SIGKILL
    assert not run_sync(manager.is_alive)()
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    Kernels.stop(manager)  # a dead kernel: nothing to signal, no error


def test_a_killed_kernel_has_ended_when_the_kill_returns(kernels: Kernels) -> None:
    """The provisioner's kill waits for the kernel's end, so jupyter_client's shutdown does not
    poll for it (every 0.1 s: a tenth of a second between each phase and the next)."""
    manager = kernels.take(start_another=False)
    forked = manager.provisioner.process
    ask(manager, "x = 1")
    pid = forked.pid
    run_sync(manager.provisioner.kill)()
    assert forked.poll() == -signal.SIGKILL  # gone already: nothing left to poll for
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    Kernels.stop(manager)


def test_a_wait_for_a_live_kernel_times_out(kernels: Kernels) -> None:
    manager = kernels.take(start_another=False)
    forked = manager.provisioner.process
    ask(manager, "x = 1")
    with pytest.raises(subprocess.TimeoutExpired):
        forked.wait(timeout=0.3)
    assert forked.poll() is None
    Kernels.stop(manager)
    assert forked.poll() is not None


def test_a_kernel_is_ready_once_it_answers_with_nothing_of_before_left_on_iopub(kernels: Kernels) -> None:
    """The runner's client is ready as soon as the kernel has answered its info request and said
    it is idle (jupyter_client's waits 0.2 s more for IOPub to fall silent): the next IOPub
    message is the next request's."""
    manager = kernels.take(start_another=False)
    client = manager.client()
    assert isinstance(client, ReadyKernelClient)
    client.start_channels()
    try:
        run_sync(client.wait_for_ready)(timeout=60)
        asked = client.execute("1 + 1")
        first = run_sync(client.get_iopub_msg)(timeout=30)
        assert first["parent_header"]["msg_id"] == asked
        assert first["content"] == {"execution_state": "busy"}
    finally:
        client.stop_channels()
    Kernels.stop(manager)
    dead = manager.client()
    dead.start_channels()
    try:
        with pytest.raises(KernelDiedAtStart, match="died") as died:
            run_sync(dead.wait_for_ready)(timeout=30)
    finally:
        dead.stop_channels()
    assert classify(died.value) == ("dead_kernel", "the kernel died as it started, before any cell ran")


CHANNELS = ("shell_port", "iopub_port", "stdin_port", "control_port", "hb_port")


def listening_tcp(pid: int) -> set[int]:
    """The TCP ports the process listens on (ipykernel binds one of its own, for its IOPub
    thread's pipe, on a port it binds at once: no window for another process to take it)."""
    return {c.laddr.port for c in psutil.Process(pid).net_connections(kind="tcp") if c.status == psutil.CONN_LISTEN}


def test_kernels_speak_over_unix_sockets_in_the_scratch_folder(kernels: Kernels, tmp_path: Path) -> None:
    """No TCP port to lose to another process between jupyter_client picking it and the kernel
    binding it (the kernel then died as it started, "Address already in use")."""
    manager = kernels.take(start_another=False)
    try:
        content, _ = ask(manager, "1")
        assert content["status"] == "ok"
        info = json.loads(Path(manager.connection_file).read_text())
        assert (info["transport"], Path(info["ip"]).parent) == ("ipc", tmp_path)
        sockets = sorted(p.name for p in tmp_path.iterdir() if p.is_socket())
        assert len(sockets) == 5 and all(name.startswith(Path(info["ip"]).name) for name in sockets), sockets
        assert len(listening_tcp(manager.provisioner.process.pid)) <= 1, "none for the five channels"
    finally:
        Kernels.stop(manager)
    assert not any(p.is_socket() for p in tmp_path.iterdir()), "the sockets go with the kernel"


def test_where_the_sockets_paths_would_not_fit_kernels_speak_tcp(tmp_path: Path) -> None:
    deep = tmp_path / ("d" * max(1, SOCKET_PATH_MAX - len(str(tmp_path)) - 10))
    deep.mkdir()
    started = Kernels({**os.environ, "MPLBACKEND": "Agg"}, tmp_path, deep, fork=True)
    try:
        manager = started.take(start_another=False)
        try:
            content, _ = ask(manager, "1")
            assert content["status"] == "ok" and manager.transport == "tcp"
            info = json.loads(Path(manager.connection_file).read_text())
            assert {info[name] for name in CHANNELS} <= listening_tcp(manager.provisioner.process.pid)
        finally:
            Kernels.stop(manager)
    finally:
        started.close()


def test_closing_ends_the_fork_server(kernels: Kernels, tmp_path: Path) -> None:
    manager = kernels.take(start_another=False)
    ask(manager, "x = 1")
    Kernels.stop(manager)
    server = kernels._server
    assert server is not None and server.process is not None
    process = psutil.Process(server.process.pid)
    kernels.close()
    assert not process.is_running() or process.status() == psutil.STATUS_ZOMBIE


def test_a_server_still_warming_up_is_ended_at_once(tmp_path: Path) -> None:
    """A run refused as it starts (a usage error) must not wait for its server's imports."""
    server = ForkServer({**os.environ}, tmp_path)
    process = server.process
    assert process is not None
    server.close()
    assert process.returncode == -signal.SIGKILL, "killed, not left to finish its warm-up"
    assert not server.serving
    server.close()  # twice: nothing left to do


def test_the_early_fork_server_serves_the_run_and_ends_with_its_block(tmp_path: Path) -> None:
    """The CLI's server (started before the runner's imports) is the kernels' and is ended by
    its block, not by the kernels; none when kernels are not to be forked."""
    with early_fork_server(load_settings().updated(run={"fork_kernels": False})) as none:
        assert none is None
    with early_fork_server(load_settings()) as server:
        assert server is not None and server.process is not None
        process = psutil.Process(server.process.pid)
        kernels = Kernels({**os.environ}, tmp_path, tmp_path, server=server)
        manager = kernels.take(start_another=False)
        try:
            content, printed = ask(manager, INTROSPECT)
            assert json.loads(printed[-1])["parent"] == process.pid
        finally:
            Kernels.stop(manager)
        kernels.close()
        assert server.serving, "the kernels leave their caller's server alone"
    assert not process.is_running() or process.status() == psutil.STATUS_ZOMBIE


def test_without_a_fork_server_each_kernel_boots_on_its_own(tmp_path: Path) -> None:
    """The fork server gone (it died, or could not start): the next kernel is launched as
    jupyter_client launches one, and works."""
    kernels = Kernels({**os.environ}, tmp_path, tmp_path, fork=True)
    try:
        first = kernels.take(start_another=False)
        ask(first, "x = 1")
        Kernels.stop(first)
        server = kernels._server
        assert server is not None and server.process is not None
        server.process.kill()
        server.process.wait()
        second = kernels.take(start_another=False)
        try:
            assert not isinstance(second.provisioner.process, ForkedKernel)
            content, printed = ask(second, "import sys; print(sys.argv[0])")
            assert content["status"] == "ok" and printed[-1].endswith("ipykernel_launcher.py")
        finally:
            Kernels.stop(second)
    finally:
        kernels.close()


def test_a_kernel_asked_of_a_server_that_died_is_dead_not_booting(tmp_path: Path) -> None:
    """Asked for while the server warmed up, which then died: the kernel is reported dead (the
    runner's dead-kernel path), never booting forever."""
    server = ForkServer({**os.environ}, tmp_path, tmp_path / "fork-server.log")
    try:
        forked = server.fork(["-f", str(tmp_path / "k.json")], {**os.environ}, str(tmp_path), tmp_path / "k.log", None)
        assert server.process is not None
        server.process.kill()  # still warming up (a second or more): the request is never answered
        assert forked.wait(timeout=60) == 1
        assert forked.pid is None
        forked.kill()  # nothing to signal, no error
    finally:
        server.close()


def test_kernels_not_forked_boot_on_their_own_and_see_what_a_forked_one_sees(tmp_path: Path) -> None:
    """``OPS_FORK_KERNELS=false``: no fork server; each kernel is ``python -m ipykernel_launcher``,
    with the same module path as a forked kernel in the same folder. Neither has that folder on its
    path: a folder in it named ``aris3nb`` (a checkout beside which the run was started) is not
    what ``import aris3nb`` imports — the installed package is."""
    seen = {}
    (tmp_path / "aris3nb").mkdir()  # in the kernels' (and the fork server's) working folder
    (tmp_path / "aris3nb" / "__init__.py").write_text("DECOY = True\n")
    for fork in (False, True):
        (tmp_path / f"fork-{fork}").mkdir()
        kernels = Kernels({**os.environ}, tmp_path, tmp_path / f"fork-{fork}", fork=fork)
        try:
            manager = kernels.take(start_another=False)
            try:
                content, printed = ask(manager, INTROSPECT)
                assert content["status"] == "ok"
                report = json.loads(printed[-1])
                seen[fork] = report["path"]
                assert report["aris3nb"] == aris3nb.__file__, report  # not the folder's aris3nb/
                assert str(tmp_path) not in report["path"] and "" not in report["path"]
                if not fork:
                    assert kernels._server is None and not isinstance(manager.provisioner.process, ForkedKernel)
                    assert "ipykernel_launcher" in " ".join(psutil.Process(manager.provisioner.pid).cmdline())
            finally:
                Kernels.stop(manager)
        finally:
            kernels.close()
    assert not (tmp_path / "fork-False" / "fork-server.log").exists()
    assert seen[True] == seen[False]


def test_no_fork_server_where_forks_cannot_be_watched(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Not Linux (or no pidfds): each kernel boots on its own, whatever the setting."""
    monkeypatch.setattr(sys, "platform", "darwin")
    supported.cache_clear()
    try:
        assert not supported()
        with early_fork_server(load_settings()) as server:
            assert server is None
        kernels = Kernels({**os.environ}, tmp_path, tmp_path, fork=True)
        assert kernels._fork_server() is None and not kernels._fork
    finally:
        supported.cache_clear()
    monkeypatch.undo()
    assert supported(), "this machine forks"
