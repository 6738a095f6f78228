"""The tests' warm ``aris3nb`` (``tests/targets/clifork.py``) gives what a fresh process gives:
its own pid, environment, folder, streams and exit status, nothing kept from the call before."""

from __future__ import annotations

import os
import socket
import subprocess
from pathlib import Path

import clifork
import pytest


def test_a_command_gets_its_own_streams_exit_status_and_folder(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"} | {"OPS_ARTIFACTS_DIR": str(tmp_path / "a")}
    (tmp_path / "here").mkdir()
    (tmp_path / "here" / "manifest.json").write_text("not json")
    done = clifork.run(["backup", "validate", "here"], env=env, cwd=tmp_path, timeout=60)
    assert done.returncode == 2 and done.stdout == "" and done.stderr.startswith("FAILED: ")
    assert "no manifest" not in done.stderr and "Traceback" not in done.stderr
    elsewhere = clifork.run(["backup", "validate", "here"], env=env, cwd=tmp_path / "here", timeout=60)
    assert elsewhere.returncode == 2 and elsewhere.stderr == "FAILED: no manifest at here\n"
    done = clifork.run(["--help"], env=env, timeout=60)
    assert done.returncode == 0 and "aris3nb" in done.stdout and done.stderr == ""


def test_nothing_of_one_command_is_in_the_next(tmp_path: Path) -> None:
    """A setting given to one call is gone in the next (the console's width included: the
    consoles are made in the command's process, from its environment)."""
    base = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "OPS_GATE_LATENCY_SAMPLES")}
    bad = clifork.run(["gate", "--help"], env=base | {"OPS_GATE_LATENCY_SAMPLES": "zero"}, timeout=60)
    assert bad.returncode == 2 and "OPS_GATE_LATENCY_SAMPLES" in bad.stderr
    assert clifork.run(["gate", "--help"], env=base, timeout=60).returncode == 0
    narrow = clifork.run(["gate", "--help"], env=base | {"COLUMNS": "40"}, timeout=60).stdout
    wide = clifork.run(["gate", "--help"], env=base | {"COLUMNS": "200"}, timeout=60).stdout
    assert max(map(len, narrow.splitlines())) < 60 < max(map(len, wide.splitlines()))


def test_a_command_past_its_timeout_is_killed(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"} | {"OPS_ARTIFACTS_DIR": str(tmp_path)}
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(subprocess.TimeoutExpired) as raised:
        clifork.run(["serve", "--embedded", "--port", str(port)], env=env, timeout=6)
    assert raised.value.timeout == 6 and "Ctrl-C stops it" in str(raised.value.stdout)
    with socket.socket() as again:
        again.bind(("127.0.0.1", port))  # the killed server's port is free: nothing of it is left


def test_an_interpreter_setting_makes_a_fresh_process(tmp_path: Path) -> None:
    """PYTHONPATH shapes an interpreter's start, which a fork has already made: a call with a
    PYTHONPATH of its own runs the installed program afresh (its module comes from there)."""
    (tmp_path / "sitecustomize.py").write_text("import sys; sys.stderr.write('fresh start\\n')\n")
    env = dict(os.environ) | {"PYTHONPATH": str(tmp_path)}
    done = clifork.run(["--help"], env=env, timeout=60)
    assert done.returncode == 0 and done.stderr == "fresh start\n"
