"""Temporary folders of runs that were killed: recognising them, and removing them.

Every temporary folder a backup, a drill or a restore makes carries the pid of its
process in its name (``…-pid<pid>-…``). A run killed mid-way (SIGKILL, the OOM killer, a
lost container) cannot clean up after itself; the next run removes what it left, once it
is sure the process that made the folder is gone. The pid alone does not say so: pids are
reused, and in a container every run may get the same one.
"""

from __future__ import annotations

import os
import re
import shutil
import time
from pathlib import Path

#: Slack between a folder's last change and the start of the process now holding its pid
#: (process start times are known to a clock tick, boot time to the clock's precision).
PID_REUSE_MARGIN_SEC = 1.0


def process_started_at(pid: int) -> float | None:
    """When the process now holding ``pid`` started (epoch seconds), or None if unknown."""
    try:
        stat_line = Path(f"/proc/{pid}/stat").read_text()
        ticks = int(stat_line[stat_line.rindex(")") + 2 :].split()[19])  # field 22, starttime
        booted = time.time() - time.clock_gettime(time.CLOCK_BOOTTIME)
        return booted + ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError, AttributeError):
        return None


def owner_is_gone(pid: int, folder: Path) -> bool:
    """Whether the process that made ``folder`` has ended: no process holds its pid, or
    the one that does started after the folder last changed (so it cannot have made it)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        pass  # alive, and someone else's: the start time still tells
    started = process_started_at(pid)
    return started is not None and folder.stat().st_mtime < started - PID_REUSE_MARGIN_SEC


def sweep(root: Path, pattern: re.Pattern[str]) -> list[str]:
    """Remove the folders in ``root`` named by ``pattern`` (with a ``pid`` group), owned by
    this user, whose process is gone; a live process's folder is left alone. Returns the
    names removed."""
    removed: list[str] = []
    try:
        entries = list(root.iterdir())
    except OSError:
        return removed
    for entry in entries:
        match = pattern.match(entry.name)
        try:
            if match is None or entry.is_symlink() or not entry.is_dir() or entry.stat().st_uid != os.getuid():
                continue
            if owner_is_gone(int(match["pid"]), entry):
                shutil.rmtree(entry, ignore_errors=True)
                removed.append(entry.name)
        except OSError:
            continue  # gone meanwhile (another run swept it), or not ours to read
    return removed
