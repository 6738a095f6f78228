"""The errors of repositories on object storage, beside the rest of aris3nb's tree
(``aris3nb.core.errors``); the CLI catches them as ``Aris3nbError`` like every other.

    Aris3nbError
    ├── UsageError                    exit 2
    │   ├── InvalidStorageUrl         a repository URL that is not s3://BUCKET[/PREFIX]
    │   └── RepositoryUnusable        checked before anything is written: the bucket is missing,
    │                                 the store refused the credentials or cannot be reached, or
    │                                 retention was asked of a bucket without Object Lock
    └── StorageError                  exit 1: an operation on the store failed (after retries)
        ├── ObjectMissing             an object that must be there is not (``url`` names it)
        └── ObjectCorrupt             a downloaded object's size or SHA-256 is not the expected
                                      one; its local file was removed (``url`` names it)

Every message names the bucket or the object (``s3://bucket/key``) and the cause the store
gave (its error code), never a credential: the SDK's own text passes through
``aris3nb.core.redact.redact_text`` with the session's keys before it is shown.
"""

from __future__ import annotations

from aris3nb.core.errors import Aris3nbError, UsageError


class InvalidStorageUrl(UsageError):
    """Raised when a repository URL is not ``s3://BUCKET[/PREFIX]`` (exit 2)."""


class RepositoryUnusable(UsageError):
    """Raised by ``open_repository`` before anything is written, when the repository cannot be
    used as asked: the message names the bucket and the cause (exit 2)."""


class StorageError(Aris3nbError):
    """Raised when an operation on the store fails after the SDK's retries (exit 1)."""


class ObjectMissing(StorageError):
    """Raised when an object that must exist does not; ``url`` is its ``s3://`` address."""

    def __init__(self, message: str, url: str) -> None:
        super().__init__(message)
        self.url = url


class ObjectCorrupt(StorageError):
    """Raised when a downloaded object does not have the expected size or SHA-256; its local
    file has been removed. ``url`` is the object's ``s3://`` address."""

    def __init__(self, message: str, url: str) -> None:
        super().__init__(message)
        self.url = url
