"""Where throwaway files go: the system's temporary folder, or, for files whose durability buys
nothing and whose size is known, the folder kept in memory (Linux's tmpfs ``/dev/shm``), where
an fsync costs nothing.

Which folder is the memory folder is a setting (``OPS_MEMORY_DIR``, ``/dev/shm`` by default,
empty for none). Both are *scratch roots*: a folder aris3nb makes in either carries its
process's pid in its name, and a later run sweeps both for the folders of processes that were
killed (``aris3nb.core.stale.sweep``).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

#: Linux's folder kept in memory: the default of ``OPS_MEMORY_DIR``.
MEMORY_FOLDER = Path("/dev/shm")

#: A folder in memory is used only with this many times the room asked for free in it: it
#: shares the machine's memory, and others may be filling it meanwhile.
MEMORY_HEADROOM = 2


def memory_folder(folder: Path | None, room_bytes: int) -> Path | None:
    """``folder`` (the memory folder setting) when it exists, this user may write in it, and it
    has at least ``MEMORY_HEADROOM`` × ``room_bytes`` free; else None (use the temporary folder)."""
    if folder is None:
        return None
    try:
        if not (folder.is_dir() and os.access(folder, os.W_OK | os.X_OK)):
            return None
        space = os.statvfs(folder)
    except OSError:
        return None
    return folder if space.f_bavail * space.f_frsize >= MEMORY_HEADROOM * room_bytes else None


def scratch_roots(memory: Path | None) -> list[Path]:
    """The folders throwaway folders are made in: the temporary folder, and the memory folder
    ``memory`` when it exists (whether or not it has room now: a killed run's folder may be there)."""
    roots = [Path(tempfile.gettempdir())]
    try:
        if memory is not None and memory.is_dir() and memory.resolve() != roots[0].resolve():
            roots.append(memory)
    except OSError:
        pass
    return roots
