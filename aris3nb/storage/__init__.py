"""Repositories by URL on S3-compatible object storage (``s3://BUCKET[/PREFIX]``): where
backups and evidence bundles are kept off the machine that made them.

    url.py     the URL and object keys (no network)
    s3.py      opening a repository, trees up and down with SHA-256, retention (boto3)
    head.py    the versioned chain head and the check that detects deleted newest runs
    lock.py    a run's lock on the bucket (conditional writes, a renewed lease, safe takeover)
    errors.py  InvalidStorageUrl, RepositoryUnusable (exit 2); StorageError and its kinds (exit 1)
    artifacts.py  the backup commands on a repository (OPS_ARTIFACTS_DIR=s3://...): stage locally,
               then push; pull and verify, then act locally (imported by the CLI, not here: it
               depends on aris3nb.backup, which this package's core does not)
    runs.py    ``aris3nb run`` on a repository (the newest run pulled and checked against the head,
               staged, pushed verified, the head moved) and ``evidence verify s3://...`` (imported
               by the CLI only: it depends on aris3nb.backup and aris3nb.evidence)
"""

from __future__ import annotations

import importlib
import sys
from typing import TYPE_CHECKING, Any

from aris3nb.storage.errors import InvalidStorageUrl, ObjectCorrupt, ObjectMissing, RepositoryUnusable, StorageError
from aris3nb.storage.head import HEAD_KEY, HeadVersion, check_head, head_document, head_problems
from aris3nb.storage.url import Location, parse_url

if TYPE_CHECKING:
    from aris3nb.storage.s3 import Repository, Retention, RetentionMode, StorageOptions, open_repository

#: ``s3.py``'s names load boto3 (~0.15 s) on first use, not with the package.
_S3_NAMES = frozenset({"Repository", "Retention", "RetentionMode", "StorageOptions", "open_repository"})

__all__ = [
    "HEAD_KEY",
    "HeadVersion",
    "InvalidStorageUrl",
    "Location",
    "ObjectCorrupt",
    "ObjectMissing",
    "Repository",
    "RepositoryUnusable",
    "Retention",
    "RetentionMode",
    "StorageError",
    "StorageOptions",
    "check_head",
    "head_document",
    "head_problems",
    "open_repository",
    "parse_url",
]


def __getattr__(name: str) -> Any:
    if name in _S3_NAMES:
        value = getattr(importlib.import_module("aris3nb.storage.s3"), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'aris3nb.storage' has no attribute {name!r}")


def __dir__() -> list[str]:
    """The public names, the private ones and the submodules loaded (not the helpers imported here)."""
    own = {name for name in globals() if name.startswith("_") or f"{__name__}.{name}" in sys.modules}
    return sorted(own | set(__all__))
