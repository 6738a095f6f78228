"""Files aris3nb writes and reads as evidence: written whole or not at all, owner-only;
hashed in bounded memory; their relative paths judged safe before they are touched.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import stat
import tempfile
from pathlib import Path, PurePosixPath
from typing import Any

from aris3nb.core.errors import UsageError

#: ``sha256:`` and 64 lowercase hex digits: every digest of a manifest and of an evidence bundle.
DIGEST_PATTERN = re.compile(r"^sha256:[0-9a-f]{64}\Z")


#: Every document aris3nb writes names its version ``version``. Manifests and drill reports
#: written before 2026-11-30 spelled it ``format_version``: readers take either, not both.
OLD_VERSION_FIELD = "format_version"


def version_of(document: dict[str, Any]) -> Any:
    """A document's version: ``version``, or the older ``format_version``; None when it has
    neither, or both (which no writer ever wrote)."""
    if "version" in document and OLD_VERSION_FIELD in document:
        return None
    return document.get("version", document.get(OLD_VERSION_FIELD))


def canonical_json(document: Any) -> bytes:
    """The one byte sequence a JSON document hashes as: sorted keys, no spaces, UTF-8."""
    return json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode()


def sha256_file(path: Path, chunk: int = 1 << 20) -> tuple[int, str]:
    """Size and SHA-256 of a file, streamed in bounded memory."""
    digest = hashlib.sha256()
    size = 0
    with path.open("rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
            size += len(block)
    return size, digest.hexdigest()


def write_json_evidence(folder: Path, filename: str, document: dict[str, Any]) -> Path:
    """Write ``document`` as JSON to ``folder/filename`` (see ``write_text_evidence``)."""
    return write_text_evidence(folder, filename, json.dumps(document, indent=2, ensure_ascii=False, default=str) + "\n")


def require_writable_folder(folder: Path, what: str) -> None:
    """Prove that a file can be written in ``folder`` before a command does its work (the
    folders it lacks are made, a file is created there and removed, then what was made is
    removed again: nothing is left behind), so that an unusable place ends the command at once
    — ``UsageError`` (exit 2) naming the folder, why, and that nothing was checked — rather
    than after minutes of checks. ``what`` is the evidence that goes there."""
    missing = []
    for parent in (folder, *folder.parents):
        if parent.exists() or parent.is_symlink():
            break
        missing.append(parent)
    try:
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd, probe = tempfile.mkstemp(prefix=".aris3nb-write-check.", suffix=".tmp", dir=folder)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise UsageError(
            f"cannot write {what} under {folder}: {exc.strerror or exc}; check OPS_ARTIFACTS_DIR (nothing was checked)"
        ) from exc
    finally:
        for made in missing:  # deepest first
            try:
                made.rmdir()
            except OSError:
                break


def write_text_evidence(folder: Path, filename: str, text: str) -> Path:
    """Write ``text`` to ``folder/filename``: folder 0700, file 0600, complete or absent
    (written beside its name, then renamed into place)."""
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(folder, 0o700)
    target = folder / filename
    fd, tmp_name = tempfile.mkstemp(prefix=f".{filename}.", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(text)
            out.flush()
            os.fsync(out.fileno())
        os.chmod(tmp_name, 0o600)
        os.replace(tmp_name, target)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
    return target


def unsafe_path_reason(relative: str) -> str | None:
    """Why a manifest path could leave the backup folder, or None when it cannot."""
    if not relative or "\x00" in relative:
        return "empty or containing NUL"
    if "\\" in relative:
        return "contains a backslash"
    pure = PurePosixPath(relative)
    if pure.is_absolute() or relative.startswith("/"):
        return "absolute"
    if any(part == ".." for part in pure.parts):
        return "contains '..'"
    if any(part in ("", ".") for part in relative.split("/")):
        return "not normalised"
    return None


def crosses_link(root: Path, relative: str) -> bool:
    """Whether a folder on the way to ``relative`` is a symbolic link (lstat would follow it).
    A folder that cannot be looked at (missing, a name too long) is not a link: the lstat of
    the file itself then says what is wrong."""
    current = root
    for part in PurePosixPath(relative).parts[:-1]:
        current = current / part
        try:
            if stat.S_ISLNK(current.lstat().st_mode):
                return True
        except OSError:
            return False
    return False
