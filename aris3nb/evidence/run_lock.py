"""One playbook run at a time per target.

Two runs against one database (a CI retry, two pipelines) would back it up, drill it and
maybe roll it back at the same time. A run takes an exclusive lock (``flock``) on a file of
``OPS_ARTIFACTS_DIR/locks/`` named after its target (the database, without its password, or
the service); a second run waits up to ``OPS_RUN_LOCK_WAIT_SEC`` and then refuses (exit 2)
naming the run that holds it; while it waits, ``on_wait`` is told once whom it waits for (the
CLI prints it: a run that seems to hang says why). The lock is released when the process ends, however it ends.
The embedded default's target is the run's own, so it takes no lock.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from aris3nb.core.errors import UsageError

LOCKS_DIRNAME = "locks"
_POLL_SEC = 0.25


def _holder(fd: int) -> str:
    try:
        os.lseek(fd, 0, os.SEEK_SET)
        info = json.loads(os.read(fd, 4096).decode() or "{}")
    except (OSError, ValueError):
        return "another aris3nb run"
    return f"run {info.get('run_id')} (pid {info.get('pid')}, started {info.get('started_at')})"


@contextlib.contextmanager
def target_lock(
    artifacts_dir: Path,
    target: str,
    *,
    run_id: str,
    started_at: str,
    wait_sec: float,
    on_wait: Callable[[str], None] | None = None,
) -> Iterator[Path]:
    """Hold the run lock of ``target`` (a password-free description) for the block; when
    another run holds it, ``on_wait`` gets one line saying whom this run waits for, how long."""
    folder = artifacts_dir / LOCKS_DIRNAME
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = folder / f"run-{hashlib.sha256(target.encode()).hexdigest()[:20]}.lock"
    fd = os.open(path, os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0), 0o600)
    try:
        give_up = time.monotonic() + wait_sec
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if on_wait is not None:
                    on_wait(
                        f"waiting for {_holder(fd)} against {target} to end "
                        f"(at most {wait_sec:g} s, OPS_RUN_LOCK_WAIT_SEC)"
                    )
                    on_wait = None  # said once
                if time.monotonic() >= give_up:
                    raise UsageError(
                        f"{_holder(fd)} is running against {target}; this run waited {wait_sec:g} s and did not start "
                        "(wait for it, or set OPS_RUN_LOCK_WAIT_SEC to wait longer)"
                    ) from None
                time.sleep(_POLL_SEC)
        os.ftruncate(fd, 0)
        os.pwrite(
            fd,
            json.dumps({"run_id": run_id, "pid": os.getpid(), "started_at": started_at, "target": target}).encode(),
            0,
        )
        try:
            yield path
        finally:
            os.ftruncate(fd, 0)
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)
