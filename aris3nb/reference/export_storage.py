"""Reading export files back for download: a record's path may never lead outside the
exports folder, and a file is only served if it still has the size and SHA-256 recorded
when it was written. The bytes served are the bytes verified (one open file, rewound).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path, PurePosixPath
from typing import BinaryIO

from aris3nb.contract import models as m
from aris3nb.reference.envelope import ApiError

CHUNK_BYTES = 1 << 20


def resolve_export_path(exports_dir: Path, relative_path: str) -> Path:
    """The file a record names, inside ``exports_dir``; 409 EXPORT_PATH_UNSAFE otherwise."""
    unsafe = ApiError(409, "EXPORT_PATH_UNSAFE", "the export record names a file outside the exports folder")
    relative = PurePosixPath(relative_path)
    if not relative_path or relative.is_absolute() or ".." in relative.parts or "\\" in relative_path:
        raise unsafe
    root = exports_dir.resolve()
    path = (root / relative).resolve()  # follows symlinks, so one pointing outside is caught too
    if not path.is_relative_to(root):
        raise unsafe
    return path


def open_verified(exports_dir: Path, record: m.ExportRecord) -> BinaryIO:
    """The record's file, open at its start, after checking its size and SHA-256."""
    path = resolve_export_path(exports_dir, record.file_path)
    try:
        handle = path.open("rb")
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError) as exc:
        raise ApiError(410, "FILE_MISSING", "the export's file is gone", {"export_id": str(record.id)}) from exc
    try:
        digest, size = hashlib.sha256(), 0
        while chunk := handle.read(CHUNK_BYTES):
            digest.update(chunk)
            size += len(chunk)
        if digest.hexdigest() != record.sha256 or size != record.size_bytes:
            raise ApiError(
                409,
                "EXPORT_FILE_CORRUPT",
                "the export's file no longer matches its recorded SHA-256",
                {
                    "export_id": str(record.id),
                    "expected_sha256": record.sha256,
                    "expected_size_bytes": record.size_bytes,
                },
            )
        handle.seek(0)
        return handle
    except BaseException:
        handle.close()
        raise


def iter_file(handle: BinaryIO) -> Iterator[bytes]:
    with handle:
        while chunk := handle.read(CHUNK_BYTES):
            yield chunk
