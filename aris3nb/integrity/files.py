"""Files the database vouches for (export files): is each one there, inside its folder, with
the recorded size and SHA-256; and which files of the folder no row vouches for."""

from __future__ import annotations

import hashlib
from pathlib import Path, PurePosixPath

HASH_CHUNK_BYTES = 1 << 20


def unsafe_path(relative: str) -> str | None:
    """Why ``relative`` cannot name a file inside a folder (absolute, empty, ``..``), or None."""
    path = PurePosixPath(relative or "")
    if not relative or path.is_absolute() or ".." in path.parts or "\\" in relative:
        return "unsafe file path (absolute, empty or with ..)"
    return None


def file_problem(root: Path, relative: str, size: int | None, sha256: str | None) -> str | None:
    """What is wrong with the file ``relative`` under ``root`` against its record, or None.

    ``sha256`` is compared as given (the recorded digest must be the lowercase hex one);
    ``size`` None is not compared. The file is read in chunks (bounded memory)."""
    unsafe = unsafe_path(relative)
    if unsafe is not None:
        return unsafe
    target = root / PurePosixPath(relative)
    try:
        if not target.resolve().is_relative_to(root.resolve()):
            return "file path leads outside the folder"
        if not target.is_file():
            return "file missing"
        actual_size = target.stat().st_size
        digest = hashlib.sha256()
        with target.open("rb") as stream:
            while chunk := stream.read(HASH_CHUNK_BYTES):
                digest.update(chunk)
    except OSError as exc:
        return f"cannot read the file: {exc.strerror or exc}"
    if size is not None and actual_size != size:
        return f"size {actual_size} != recorded {size}"
    if digest.hexdigest() != (sha256 or ""):
        return f"SHA-256 {digest.hexdigest()} != recorded {sha256}"
    return None


def files_under(root: Path) -> list[str]:
    """Every file (or symlink) below ``root``, as sorted POSIX paths relative to it; [] when
    ``root`` is not a folder."""
    if not root.is_dir():
        return []
    return sorted(path.relative_to(root).as_posix() for path in root.rglob("*") if path.is_file() or path.is_symlink())
