"""Repositories on S3-compatible object storage: opening one by URL (its bucket checked before
anything is written), uploading and downloading folder trees with every file's SHA-256
computed on the way, the versioned chain head, and Object Lock retention.

Credentials, region and endpoint come only from the usual AWS environment variables and
configuration files (``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``, ``AWS_PROFILE``,
``AWS_DEFAULT_REGION``, ``AWS_ENDPOINT_URL``, ``~/.aws/config``), which boto3 reads itself.
None of them is ever put in a message, a log record or a return value.

Why it is safe to read while another writes, and after a writer is killed:

* S3 makes an object visible only when it is complete: a PUT or a multipart upload's
  ``CompleteMultipartUpload``. A killed upload leaves no partial object, only an incomplete
  multipart upload (invisible to listings and reads, but billed); ``abort_stale_uploads``
  removes those, and ``open_repository`` calls it for uploads older than a day.
* ``upload_tree`` writes the files named in ``last`` (``manifest.json``, ``evidence.json``)
  after every other one, so the document that says what a folder holds never names an object
  that is not there yet: a folder without its manifest is not a backup, whatever else it holds.
* ``download_tree`` writes each object to a temporary name beside its final one and renames
  it only once its size and SHA-256 are the expected ones: no half-written or corrupt file
  ever sits under a final name.

Tamper evidence on the store. With ``retain_days`` (the bucket must have Object Lock), every
object is written with a retention mode and a retain-until date: GOVERNANCE lets a principal
with ``s3:BypassGovernanceRetention`` remove it, COMPLIANCE lets nobody, not even the account
root, until the date. Object Lock implies versioning, so overwriting a key adds a version and
keeps the locked one. The chain head (``aris3nb.storage.head``) is written with ``put_head`` as
such a versioned, locked object; ``head_history`` returns all its versions, newest first, and
``check_head`` compares them with the runs that remain: it detects what a chain of evidence
bundles cannot, that its newest runs were deleted or replaced (the head names a run that is
gone, or an older head version names a run later than every run that remains). Without Object
Lock the repository works, ``locked`` is False and ``warnings`` says so, for callers to show.

Conditional writes (``put_conditional``, ``delete_conditional``, ``read_object``): a small
object written only if it does not exist (``If-None-Match: *``) or only if it is still the
version a caller read (``If-Match`` on its ETag), which S3 decides atomically (AWS S3 since
2024); the run lock of ``aris3nb.storage.lock`` is made of them.

Errors are translated at one boundary (``Repository._store_errors``): a ``ClientError`` or a
botocore error left after the SDK's retries (``StorageOptions.max_attempts``, ``standard`` or
``adaptive`` mode) becomes one ``StorageError`` line naming the object and the cause.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import stat
import tempfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any, BinaryIO, Literal

import boto3
from boto3.exceptions import S3UploadFailedError
from boto3.s3.transfer import TransferConfig
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectionClosedError,
    ConnectTimeoutError,
    EndpointConnectionError,
    NoCredentialsError,
    PartialCredentialsError,
    ReadTimeoutError,
)
from s3transfer.exceptions import RetriesExceededError

from aris3nb.core.files import crosses_link
from aris3nb.core.redact import redact_text
from aris3nb.storage.errors import ObjectCorrupt, ObjectMissing, RepositoryUnusable, StorageError
from aris3nb.storage.head import MAX_HEAD_BYTES, HeadVersion
from aris3nb.storage.url import Location, key_problem, parse_url

__all__ = [
    "ConditionNotSupported",
    "Repository",
    "Retention",
    "RetentionMode",
    "StorageOptions",
    "StoredObject",
    "open_repository",
    "parse_url",
]

log = logging.getLogger(__name__)

RetentionMode = Literal["GOVERNANCE", "COMPLIANCE"]
RETENTION_MODES: tuple[RetentionMode, ...] = ("GOVERNANCE", "COMPLIANCE")
MiB = 1024 * 1024
#: What ``read_bytes`` reads into memory at most (a manifest or evidence document, a head).
MAX_READ_BYTES = 64 * MiB
#: Error codes by which a store says it does not accept the credentials it was given.
CREDENTIAL_CODES = frozenset(
    {
        "InvalidAccessKeyId",
        "SignatureDoesNotMatch",
        "InvalidClientTokenId",
        "InvalidToken",
        "ExpiredToken",
        "TokenRefreshRequired",
        "AuthorizationHeaderMalformed",
    }
)
_MISSING_CODES = frozenset({"NoSuchKey", "404", "NotFound", "NoSuchVersion"})
#: How a store says a conditional request's condition does not hold: 412, or S3's 409 when two
#: conditional writes of one key cross (the other one won; ask again).
_CONDITION_FAILED_CODES = frozenset({"PreconditionFailed", "412", "ConditionalRequestConflict", "409"})
#: How a store says it does not implement a request's header (a conditional write here).
_NOT_IMPLEMENTED_CODES = frozenset({"NotImplemented", "501"})


@dataclass(frozen=True)
class StorageOptions:
    """How a repository talks to the store: retries, timeouts, multipart sizes, housekeeping.

    Memory stays bounded whatever the file size: a file is read in parts of
    ``multipart_chunksize``, at most ``max_concurrency`` of them in flight (plus s3transfer's
    small queue of parts read ahead).
    """

    retry_mode: Literal["standard", "adaptive"] = "standard"
    #: Attempts in all, the first one included (botocore's ``total_max_attempts``).
    max_attempts: int = 5
    connect_timeout_sec: float = 10.0
    read_timeout_sec: float = 60.0
    multipart_threshold: int = 8 * MiB
    multipart_chunksize: int = 8 * MiB
    max_concurrency: int = 4
    #: ``open_repository`` aborts incomplete multipart uploads older than this (None: never).
    #: A day, as S3's own lifecycle rule for them: long enough for any upload still running.
    stale_upload_age_sec: float | None = 24 * 3600

    def client_config(self) -> Any:
        return Config(
            retries={"mode": self.retry_mode, "total_max_attempts": self.max_attempts},
            connect_timeout=self.connect_timeout_sec,
            read_timeout=self.read_timeout_sec,
        )

    def transfer_config(self) -> Any:
        return TransferConfig(
            multipart_threshold=self.multipart_threshold,
            multipart_chunksize=self.multipart_chunksize,
            max_concurrency=self.max_concurrency,
            use_threads=True,
            preferred_transfer_client="classic",
        )


class ConditionNotSupported(StorageError):
    """Raised when the store answers a conditional write or delete with 501 NotImplemented."""


@dataclass(frozen=True)
class StoredObject:
    """A small object as read with ``Repository.read_object``: its bytes, its ETag (the value a
    conditional write's ``if_match`` takes), when it was written and when the store answered,
    both by the store's clock (None when the store did not say)."""

    data: bytes
    etag: str
    last_modified: datetime | None
    server_time: datetime | None

    @property
    def age_sec(self) -> float | None:
        """Seconds between the object's write and the store's answer, by the store's clock."""
        if self.last_modified is None or self.server_time is None:
            return None
        return (self.server_time - self.last_modified).total_seconds()


@dataclass(frozen=True)
class Retention:
    """Object Lock retention asked of every object a repository writes."""

    mode: RetentionMode
    days: int

    def until(self, now: datetime | None = None) -> datetime:
        return (now or datetime.now(UTC)) + timedelta(days=self.days)

    def object_args(self, now: datetime | None = None) -> dict[str, Any]:
        """The ``ObjectLockMode`` / ``ObjectLockRetainUntilDate`` arguments of a write."""
        return {"ObjectLockMode": self.mode, "ObjectLockRetainUntilDate": self.until(now)}


def open_repository(
    url: str,
    *,
    retain_days: int | None = None,
    mode: str = "GOVERNANCE",
    options: StorageOptions | None = None,
    writes: bool = False,
) -> Repository:
    """The repository at ``url`` (``s3://BUCKET[/PREFIX]``), checked before anything is written.

    ``RepositoryUnusable`` (exit 2), one line naming the bucket and the cause, when the bucket
    does not exist, the store refuses the credentials or cannot be reached, or ``retain_days``
    is given for a bucket without Object Lock. Without ``retain_days`` a bucket without Object
    Lock is accepted: ``repository.locked`` is False and ``repository.warnings`` says so. For a
    command that ``writes``, a bucket with Object Lock but neither retention asked nor a default
    retention of its own is said too: what it writes is not locked.
    Incomplete multipart uploads older than ``options.stale_upload_age_sec`` are aborted.
    """
    location = parse_url(url)
    options = options or StorageOptions()
    retention = _retention(retain_days, mode)
    try:
        session = boto3.session.Session()
        credentials = session.get_credentials()
        frozen = credentials.get_frozen_credentials() if credentials is not None else None
        client = session.client("s3", config=options.client_config())
    except ValueError as exc:  # botocore: "Invalid endpoint: ..." (the URL is not repeated)
        raise RepositoryUnusable(
            f"cannot use bucket '{location.bucket}': AWS_ENDPOINT_URL (or the profile's endpoint_url) is not a URL"
        ) from exc
    except BotoCoreError as exc:
        raise RepositoryUnusable(f"cannot use bucket '{location.bucket}': {type(exc).__name__}") from exc
    if frozen is None:
        raise RepositoryUnusable(
            f"cannot use bucket '{location.bucket}': no AWS credentials found "
            "(set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE)"
        )
    secrets = (frozen.access_key, frozen.secret_key, frozen.token, client.meta.endpoint_url)
    repository = Repository(location, client, options, retention, secrets)
    repository._check_bucket()
    if writes and repository.locked and retention is None and not repository.default_retention:
        repository.warnings.append(
            f"bucket '{location.bucket}' has Object Lock, but no retention was asked (--retain-days, "
            "OPS_RETAIN_DAYS) and the bucket sets no default retention: what this command writes is not "
            "locked, and whoever can write to the bucket can delete or replace it"
        )
    return repository


def _retention(retain_days: int | None, mode: str) -> Retention | None:
    if mode not in RETENTION_MODES:
        raise RepositoryUnusable(f"retention mode {str(mode)[:40]!r} is not GOVERNANCE or COMPLIANCE")
    if retain_days is None:
        return None
    if isinstance(retain_days, bool) or not isinstance(retain_days, int) or retain_days < 1:
        raise RepositoryUnusable(f"retain_days {retain_days!r} is not a whole number of days, 1 or more")
    return Retention(mode=mode, days=retain_days)


class Repository:
    """A bucket and prefix on the store, opened by ``open_repository``.

    Keys given to its methods are relative to the repository's prefix (``backups/b1/manifest.json``);
    messages name objects by their full address (``s3://bucket/prefix/backups/b1/manifest.json``).
    A ``key_prefix`` of a tree method is a folder: ``backups/b1`` means everything below ``backups/b1/``.
    """

    def __init__(
        self,
        location: Location,
        client: Any,
        options: StorageOptions,
        retention: Retention | None,
        secrets: Sequence[str | None],
    ) -> None:
        self.location = location
        self.options = options
        self.retention = retention
        #: Whether the bucket has Object Lock enabled (then it is versioned too).
        self.locked = False
        #: Whether its Object Lock configuration locks every new object by a default retention.
        self.default_retention = False
        #: Whether the bucket keeps old versions (the chain head's history needs it).
        self.versioned = False
        #: What a caller should show as WARN lines: no Object Lock, no versioning, no housekeeping.
        self.warnings: list[str] = []
        #: Keys of the incomplete multipart uploads ``open_repository`` aborted.
        self.aborted_at_open: list[str] = []
        self._client = client
        self._transfer = options.transfer_config()
        self._secrets = [s for s in secrets if s]

    def __repr__(self) -> str:
        return f"Repository({self.location.url()!r}, locked={self.locked}, retention={self.retention})"

    @property
    def client(self) -> Any:
        """The boto3 S3 client (for tests and tools that need an operation not offered here)."""
        return self._client

    def url(self, key: str = "") -> str:
        return self.location.url(key)

    # -- opening ----------------------------------------------------------------------------

    def _check_bucket(self) -> None:
        bucket = self.location.bucket
        try:
            self._client.list_objects_v2(Bucket=bucket, Prefix=self._raw_prefix(""), MaxKeys=1)
        except ClientError as exc:
            if _code(exc) == "NoSuchBucket":
                raise RepositoryUnusable(f"bucket '{bucket}' does not exist (or is not on this store)") from exc
            raise RepositoryUnusable(f"cannot use bucket '{bucket}': {self._cause(exc)}") from exc
        except BotoCoreError as exc:
            raise RepositoryUnusable(f"cannot use bucket '{bucket}': {self._cause(exc)}") from exc
        try:
            answer = self._client.get_object_lock_configuration(Bucket=bucket)
            self.locked = answer.get("ObjectLockConfiguration", {}).get("ObjectLockEnabled") == "Enabled"
            rule = answer.get("ObjectLockConfiguration", {}).get("Rule") or {}
            self.default_retention = self.locked and bool(rule.get("DefaultRetention"))
            lock_cause = "" if self.locked else "its Object Lock is not enabled"
        except ClientError as exc:
            if _code(exc) != "ObjectLockConfigurationNotFoundError":
                lock_cause = f"its Object Lock configuration cannot be read: {self._cause(exc)}"
            else:
                lock_cause = "it was created without Object Lock"
        except BotoCoreError as exc:
            raise RepositoryUnusable(f"cannot use bucket '{bucket}': {self._cause(exc)}") from exc
        if self.retention is not None and not self.locked:
            raise RepositoryUnusable(
                f"retention asked, but bucket '{bucket}' has no Object Lock ({lock_cause}); Object Lock can only "
                "be enabled when a bucket is created (or by the store's administrator): use such a bucket, "
                "or ask for no retention (no --retain-days, OPS_RETAIN_DAYS unset)"
            )
        if not self.locked:
            self.warnings.append(
                f"bucket '{bucket}' has no Object Lock ({lock_cause}): whoever can write to it can delete or "
                "replace backups and evidence without trace"
            )
        try:
            status = self._client.get_bucket_versioning(Bucket=bucket).get("Status")
            self.versioned = status == "Enabled"
        except (ClientError, BotoCoreError) as exc:
            self.warnings.append(f"the versioning of bucket '{bucket}' cannot be read: {self._cause(exc)}")
        if not self.versioned and not self.locked:
            self.warnings.append(
                f"bucket '{bucket}' is not versioned: the chain head keeps no history, "
                "so deleted newest runs cannot be detected"
            )
        if self.options.stale_upload_age_sec is not None:
            try:
                self.aborted_at_open = self.abort_stale_uploads("", self.options.stale_upload_age_sec)
            except StorageError as exc:
                self.warnings.append(f"incomplete uploads were not cleaned up: {exc}")

    # -- the error boundary -----------------------------------------------------------------

    @contextlib.contextmanager
    def _store_errors(self, doing: str, url: str) -> Iterator[None]:
        """Every SDK error raised inside becomes one ``StorageError`` line: ``doing`` and the cause."""
        try:
            yield
        except ClientError as exc:
            if _code(exc) in _MISSING_CODES:
                raise ObjectMissing(self._scrub(f"{doing}: no object {url}"), url) from exc
            raise StorageError(self._scrub(f"{doing}: {self._cause(exc)}")) from exc
        except (BotoCoreError, S3UploadFailedError, RetriesExceededError) as exc:
            raise StorageError(self._scrub(f"{doing}: {self._cause(exc)}")) from exc

    def _cause(self, exc: BaseException) -> str:
        """The cause of an SDK error as one line, without a credential or the endpoint's address."""
        if isinstance(exc, ClientError):
            code = _code(exc)
            attempts = exc.response.get("ResponseMetadata", {}).get("RetryAttempts") or 0
            tries = f", after {attempts + 1} attempts" if attempts else ""
            if code in CREDENTIAL_CODES:
                return f"the store refused the credentials ({code}{tries})"
            if code == "NoSuchBucket":
                return f"bucket '{self.location.bucket}' does not exist"
            message = str(exc.response.get("Error", {}).get("Message") or "").splitlines()
            detail = f": {message[0][:200]}" if message and message[0] else ""
            return self._scrub(f"the store answered {code}{detail}{tries}")
        if isinstance(exc, NoCredentialsError | PartialCredentialsError):
            return f"no usable AWS credentials ({type(exc).__name__}): set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"
        if isinstance(exc, EndpointConnectionError | ConnectTimeoutError | ConnectionClosedError):
            return (
                f"the store cannot be reached ({type(exc).__name__}, after {self.options.max_attempts} attempts); "
                "check AWS_ENDPOINT_URL and the network"
            )
        if isinstance(exc, ReadTimeoutError):
            return f"the store did not answer within {self.options.read_timeout_sec:g} s (ReadTimeoutError)"
        if isinstance(exc, S3UploadFailedError | RetriesExceededError) and exc.__cause__ is not None:
            return self._cause(exc.__cause__)
        first = (str(exc).splitlines() or [""])[0][:200]
        return self._scrub(f"{type(exc).__name__}: {first}" if first else type(exc).__name__)

    def _scrub(self, text: str) -> str:
        return redact_text(text, self._secrets)

    # -- keys -------------------------------------------------------------------------------

    def _key(self, relative: str) -> str:
        if reason := key_problem(relative):
            raise StorageError(f"key {relative[:200]!r} is {reason}")
        return self.location.key(relative)

    def _raw_prefix(self, prefix: str) -> str:
        """The listing prefix of ``prefix`` (raw text, S3's sense) below the repository."""
        return f"{self.location.prefix}/{prefix}" if self.location.prefix else prefix

    def _folder(self, key_prefix: str) -> str:
        """A tree's folder, relative to the repository, without its trailing ``/`` (``""``: the root)."""
        folder = key_prefix.rstrip("/")
        if folder and (reason := key_problem(folder)):
            raise StorageError(f"key prefix {key_prefix[:200]!r} is {reason}")
        return folder

    # -- reading ----------------------------------------------------------------------------

    def list_keys(self, prefix: str = "") -> list[str]:
        """Every object key starting with ``prefix`` (text, as S3 lists: ``runs/`` for a folder),
        relative to the repository, in S3's (lexicographic) order."""
        return [key for key, _ in self._list(prefix)]

    def list_folders(self, prefix: str = "") -> list[str]:
        """The names of the folders right below ``prefix`` (``backups/`` → ``["b1", "b2"]``)."""
        raw = self._raw_prefix(prefix)
        names = []
        with self._store_errors(f"could not list {self.url(prefix)}", self.url(prefix)):
            pages = self._client.get_paginator("list_objects_v2").paginate(
                Bucket=self.location.bucket, Prefix=raw, Delimiter="/"
            )
            for page in pages:
                names += [entry["Prefix"][len(raw) :].rstrip("/") for entry in page.get("CommonPrefixes", [])]
        return names

    def _list(self, prefix: str) -> list[tuple[str, int]]:
        raw = self._raw_prefix(prefix)
        found = []
        with self._store_errors(f"could not list {self.url(prefix)}", self.url(prefix)):
            pages = self._client.get_paginator("list_objects_v2").paginate(Bucket=self.location.bucket, Prefix=raw)
            for page in pages:
                found += [(self.location.relative(o["Key"]), int(o["Size"])) for o in page.get("Contents", [])]
        return found

    def newest_write(self, prefix: str) -> datetime | None:
        """When the newest object below ``prefix`` (text, as ``list_keys``) was written; None
        when there is none."""
        url = self.url(prefix)
        newest: datetime | None = None
        with self._store_errors(f"could not list {url}", url):
            pages = self._client.get_paginator("list_objects_v2").paginate(
                Bucket=self.location.bucket, Prefix=self._raw_prefix(prefix)
            )
            for page in pages:
                for entry in page.get("Contents", []):
                    if newest is None or entry["LastModified"] > newest:
                        newest = entry["LastModified"]
        return newest

    def _holds_objects(self, prefix: str) -> bool:
        url = self.url(prefix)
        with self._store_errors(f"could not list {url}", url):
            answer = self._client.list_objects_v2(
                Bucket=self.location.bucket, Prefix=self._raw_prefix(prefix), MaxKeys=1
            )
        return bool(answer.get("KeyCount") or answer.get("Contents"))

    def exists(self, key: str) -> bool:
        """Whether the object ``key`` exists (its newest version is not a delete marker)."""
        url = self.url(key)
        try:
            with self._store_errors(f"could not look for {url}", url):
                self._client.head_object(Bucket=self.location.bucket, Key=self._key(key))
        except ObjectMissing:
            return False
        return True

    def newest_version(self, key: str) -> str | None:
        """The version id of the newest version of ``key``; None on a bucket without versioning
        (the store's ``null`` version)."""
        url = self.url(key)
        with self._store_errors(f"could not look for {url}", url):
            answer = self._client.head_object(Bucket=self.location.bucket, Key=self._key(key))
        version = answer.get("VersionId")
        return None if version in (None, "null") else str(version)

    def delete_versions(self, written: Sequence[tuple[str, str | None]]) -> None:
        """Delete exactly the object versions given as ``(key, version id)`` — what one writer
        wrote, a version id None meaning the object itself on a bucket without versioning —
        leaving any other version of those keys, or any other key, alone. The first the store
        refuses (under retention, say) stops it with one ``StorageError`` line."""
        for key, version in written:
            url = self.url(key)
            with self._store_errors(f"could not delete {url}", url):
                self._client.delete_object(
                    Bucket=self.location.bucket, Key=self._key(key), **({"VersionId": version} if version else {})
                )

    def read_bytes(self, key: str, *, max_bytes: int = MAX_READ_BYTES, version_id: str | None = None) -> bytes:
        """The whole content of a small object (a manifest, an evidence document, a head).
        ``ObjectMissing`` when there is none; ``StorageError`` when it is larger than ``max_bytes``."""
        return self._get_small(key, max_bytes, **({"VersionId": version_id} if version_id else {}))[1]

    def _get_small(self, key: str, max_bytes: int, **extra: Any) -> tuple[dict[str, Any], bytes]:
        """The answer to GET ``key`` and its whole body, refused above ``max_bytes``."""
        url = self.url(key)
        with self._store_errors(f"could not read {url}", url):
            answer = self._client.get_object(Bucket=self.location.bucket, Key=self._key(key), **extra)
            body = answer["Body"]
            try:
                if int(answer.get("ContentLength", 0)) > max_bytes:
                    raise StorageError(f"{url} is {answer['ContentLength']} bytes, more than {max_bytes} to read")
                data: bytes = body.read(max_bytes + 1)
            finally:
                body.close()
        if len(data) > max_bytes:
            raise StorageError(f"{url} is more than {max_bytes} bytes to read")
        return answer, data

    def retention_of(self, key: str, *, version_id: str | None = None) -> tuple[str, datetime] | None:
        """The Object Lock retention of an object's version (newest by default) as
        ``(mode, retain_until)``, or None when it has none (or the bucket has no Object Lock).

        Read from HeadObject's ``ObjectLockMode`` / ``ObjectLockRetainUntilDate`` (shown to a
        caller with ``s3:GetObjectRetention``), which every S3-compatible store with Object
        Lock answers; moto, for one, does not implement GetObjectRetention."""
        if not self.locked:
            return None
        url = self.url(key)
        extra = {"VersionId": version_id} if version_id else {}
        with self._store_errors(f"could not read the retention of {url}", url):
            answer = self._client.head_object(Bucket=self.location.bucket, Key=self._key(key), **extra)
        if not answer.get("ObjectLockMode") or not answer.get("ObjectLockRetainUntilDate"):
            return None
        return str(answer["ObjectLockMode"]), answer["ObjectLockRetainUntilDate"]

    # -- trees ------------------------------------------------------------------------------

    def upload_tree(
        self,
        local_dir: Path,
        key_prefix: str,
        *,
        last: Sequence[str] = (),
        replace: bool = False,
        expected: Mapping[str, tuple[int, str]] | None = None,
    ) -> dict[str, tuple[int, str]]:
        """Upload every regular file below ``local_dir`` to ``key_prefix/<relative path>`` and
        return ``{relative path: (size, sha256 hex)}`` of the bytes sent.

        Each file is streamed from disk (multipart above ``options.multipart_threshold``) and
        hashed as the SDK reads it, not read twice. The files named in ``last`` (relative paths,
        such as ``manifest.json``) go after all the others, in the order given: S3 shows an
        object only once its PUT or CompleteMultipartUpload is done, so a reader that finds
        the last file finds every other one complete. With retention every object is written
        locked until now + ``retain_days``.

        Refused before anything is sent (``StorageError``): a symbolic link or special file in
        the tree, a name in ``last`` that is not a file of it, and a folder on the store that
        already holds objects (unless ``replace``; with versioning the old versions remain).

        With ``expected`` (``{relative path: (size, sha256 hex)}``, what a manifest or an
        evidence.json lists), the tree must hold exactly those files (refused before anything is
        sent otherwise), and each file's bytes sent must be the expected ones: the first that is
        not stops the upload (``StorageError`` naming the file and the object), so the files of
        ``last`` never go up beside a file that does not match them.
        """
        folder = self._folder(key_prefix)
        local_dir = Path(local_dir)
        files = _regular_files(local_dir)
        absent = [name for name in last if name not in files]
        if absent:
            raise StorageError(f"{absent[0]!r}, to be uploaded last, is not a regular file in {local_dir}")
        if expected is not None and (odd := sorted(set(files) ^ set(expected))):
            kind = "is not listed" if odd[0] in files else "is listed but not a file"
            raise StorageError(
                f"{local_dir / odd[0]} {kind} in what {local_dir} must hold ({len(odd)} such): nothing was uploaded"
            )
        target = self.url(folder) + "/"
        if not replace and self._holds_objects(f"{folder}/" if folder else ""):
            raise StorageError(f"{target} already holds objects: choose another name (nothing was uploaded)")
        extra = self.retention.object_args() if self.retention else {}
        order = [name for name in sorted(files) if name not in last] + list(last)
        sent: dict[str, tuple[int, str]] = {}
        for relative in order:
            key = f"{folder}/{relative}" if folder else relative
            sent[relative] = self._upload_file(local_dir / relative, key, extra)
            if expected is not None and sent[relative] != tuple(expected[relative]):
                size, digest = expected[relative]
                raise StorageError(
                    f"{local_dir / relative} is not what it must be ({sent[relative][0]} bytes, SHA-256 "
                    f"{sent[relative][1]}; expected {size} bytes, {digest}): it changed after it was listed; "
                    f"{self.url(key)} was written, but {', '.join(last) or 'nothing'} was not"
                )
        log.info("uploaded %d files to %s", len(sent), target)
        return sent

    def upload_file(self, path: Path, key: str) -> tuple[int, str]:
        """Upload one file as the object ``key`` (a new version where one exists), locked as
        the repository's retention says; return the size and SHA-256 of the bytes sent."""
        info = Path(path).lstat() if os.path.lexists(path) else None
        if info is None or not stat.S_ISREG(info.st_mode):
            raise StorageError(f"{path} is not a regular file to upload")
        return self._upload_file(Path(path), key, self.retention.object_args() if self.retention else {})

    def _upload_file(self, path: Path, key: str, extra: Mapping[str, Any]) -> tuple[int, str]:
        url = self.url(key)
        try:
            handle = path.open("rb")
        except OSError as exc:
            raise StorageError(f"could not upload {url}: cannot read {path}: {exc.strerror or exc}") from exc
        with handle:
            size = os.fstat(handle.fileno()).st_size
            reader = _HashingReader(handle)
            try:
                with self._store_errors(f"could not upload {url}", url):
                    self._client.upload_fileobj(
                        reader, self.location.bucket, self._key(key), ExtraArgs=dict(extra), Config=self._transfer
                    )
            except OSError as exc:  # reading the file, inside the SDK's threads
                raise StorageError(f"could not upload {url}: cannot read {path}: {exc.strerror or exc}") from exc
        if reader.size != size:
            raise StorageError(
                f"{path} changed while it was uploaded to {url} ({size} bytes before, {reader.size} sent): "
                "upload a folder nobody writes to"
            )
        if "ObjectLockMode" in extra:
            self._confirm_retention(key, extra)
        return reader.size, reader.hexdigest()

    def _confirm_retention(self, key: str, extra: Mapping[str, Any]) -> None:
        """Make sure the version just written is locked as asked: some stores (moto, for one)
        ignore the lock headers of a multipart upload; then the retention is set on the version."""
        url = self.url(key)
        with self._store_errors(f"could not confirm the retention of {url}", url):
            answer = self._client.head_object(Bucket=self.location.bucket, Key=self._key(key))
            until = answer.get("ObjectLockRetainUntilDate")
            if (
                answer.get("ObjectLockMode") == extra["ObjectLockMode"]
                and until
                and until >= extra["ObjectLockRetainUntilDate"] - timedelta(seconds=1)
            ):
                return
            log.info("%s was written without its retention; setting it on version %s", url, answer.get("VersionId"))
            self._client.put_object_retention(
                Bucket=self.location.bucket,
                Key=self._key(key),
                VersionId=answer["VersionId"],
                Retention={"Mode": extra["ObjectLockMode"], "RetainUntilDate": extra["ObjectLockRetainUntilDate"]},
            )

    def download_tree(
        self,
        key_prefix: str,
        local_dir: Path,
        expected: Mapping[str, tuple[int, str]] | None = None,
        *,
        problems: dict[str, str] | None = None,
    ) -> dict[str, tuple[int, str]]:
        """Download every object below ``key_prefix`` into ``local_dir`` (same relative paths) and
        return ``{relative path: (size, sha256 hex)}`` of what was written.

        Each object is streamed to a temporary file beside its final name, hashed on the way,
        and renamed only when complete and, if ``expected`` lists it, of the expected size and
        SHA-256; otherwise the temporary file is removed and ``ObjectCorrupt`` names the object.
        ``ObjectMissing`` when an expected object is not on the store. Objects ``expected``
        does not list (the manifest itself) are downloaded as they are. An existing local file
        is never overwritten, and a key that is not a safe relative path is refused.

        With ``problems`` (a dict to fill), a missing or corrupt object does not stop the
        download: it is recorded there (``{relative path: message naming the object}``, no file
        written) and every other object is still fetched and checked — so a validation can name
        every object that is not as its manifest says, not only the first.
        """
        folder = self._folder(key_prefix)
        below = f"{folder}/" if folder else ""
        objects = {}
        for key, size in self._list(below):
            relative = key[len(below) :]
            if relative.endswith("/") and size == 0:
                continue  # a "folder marker" some tools create
            if reason := key_problem(relative):
                raise StorageError(f"{self.url(key)} cannot be downloaded: its name is {reason}")
            objects[relative] = size
        expected = dict(expected or {})
        missing = sorted(set(expected) - set(objects))
        if missing and problems is None:
            more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
            first = self.url(below + missing[0])
            raise ObjectMissing(f"{first} is missing from the store{more}", first)
        if problems is not None:
            problems.update(
                {relative: f"{self.url(below + relative)} is missing from the store" for relative in missing}
            )
        for relative, size in sorted(objects.items()):
            if relative in expected and expected[relative][0] != size:
                url = self.url(below + relative)
                message = f"{url} is {size} bytes, not the expected {expected[relative][0]}"
                if problems is None:
                    raise ObjectCorrupt(message, url)
                problems[relative] = message
        local_dir = Path(local_dir)
        local_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        got: dict[str, tuple[int, str]] = {}
        for relative in sorted(set(objects) - set(problems or {})):
            try:
                got[relative] = self._download_file(below + relative, local_dir, relative, expected.get(relative))
            except (ObjectCorrupt, ObjectMissing) as exc:
                if problems is None:
                    raise
                problems[relative] = str(exc)
        log.info("downloaded %d objects from %s to %s", len(got), self.url(below), local_dir)
        return got

    def _download_file(self, key: str, root: Path, relative: str, expect: tuple[int, str] | None) -> tuple[int, str]:
        url = self.url(key)
        target = root / relative
        if crosses_link(root, relative):
            raise StorageError(f"could not download {url}: a folder on the way to {target} is a symbolic link")
        if os.path.lexists(target):
            raise StorageError(f"could not download {url}: {target} exists (a download never overwrites)")
        try:
            target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            fd, temporary = tempfile.mkstemp(prefix=f".{target.name[:100]}.", suffix=".part", dir=target.parent)
        except OSError as exc:
            raise StorageError(f"could not download {url}: {exc.strerror or exc} ({target.parent})") from exc
        try:
            with os.fdopen(fd, "wb") as out:
                writer = _HashingWriter(out)
                with self._store_errors(f"could not download {url}", url):
                    self._client.download_fileobj(self.location.bucket, self._key(key), writer, Config=self._transfer)
                out.flush()
                os.fsync(out.fileno())
            got = (writer.size, writer.hexdigest())
            if expect is not None and got[0] != expect[0]:
                raise ObjectCorrupt(f"{url} gave {got[0]} bytes, not the expected {expect[0]} (file removed)", url)
            if expect is not None and got[1] != expect[1]:
                raise ObjectCorrupt(
                    f"{url} has SHA-256 {got[1]}, not the expected {expect[1]}: it changed on the store (file removed)",
                    url,
                )
            os.chmod(temporary, 0o600)
            os.replace(temporary, target)
        except OSError as exc:
            Path(temporary).unlink(missing_ok=True)
            raise StorageError(f"could not download {url}: {exc.strerror or exc} ({target})") from exc
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
        return got

    # -- housekeeping -----------------------------------------------------------------------

    def abort_stale_uploads(self, key_prefix: str, older_than_sec: float) -> list[str]:
        """Abort the incomplete multipart uploads below ``key_prefix`` (text, as ``list_keys``)
        started more than ``older_than_sec`` ago, and return their keys. An upload killed half
        way leaves one: never visible as an object, but its parts are stored (and billed)."""
        raw = self._raw_prefix(key_prefix)
        cutoff = datetime.now(UTC) - timedelta(seconds=older_than_sec)
        aborted = []
        where = self.url(key_prefix)
        with self._store_errors(f"could not list the incomplete uploads of {where}", where):
            pages = self._client.get_paginator("list_multipart_uploads").paginate(
                Bucket=self.location.bucket, Prefix=raw
            )
            stale = [u for page in pages for u in page.get("Uploads", []) if u["Initiated"] <= cutoff]
        for upload in stale:
            url = f"s3://{self.location.bucket}/{upload['Key']}"
            with self._store_errors(f"could not abort the incomplete upload of {url}", url):
                self._client.abort_multipart_upload(
                    Bucket=self.location.bucket, Key=upload["Key"], UploadId=upload["UploadId"]
                )
            log.info("aborted an incomplete upload of %s, started %s", url, upload["Initiated"])
            aborted.append(self.location.relative(upload["Key"]))
        return aborted

    def delete_tree(self, key_prefix: str, *, first: Callable[[str], bool] | None = None) -> int:
        """Delete every version (and delete marker) of every object below ``key_prefix`` (a
        folder, ``backups/<name>/``), the keys ``first`` picks before the others (a manifest:
        from the first delete on, the folder is no longer something anyone would restore);
        return how many versions went. An object under a retention date stops it with the
        store's refusal (one ``StorageError`` line): what was deleted before it stays deleted."""
        raw = self._raw_prefix(key_prefix)
        where = self.url(key_prefix)
        with self._store_errors(f"could not delete {where}", where):
            pages = self._client.get_paginator("list_object_versions").paginate(Bucket=self.location.bucket, Prefix=raw)
            versions = [
                (entry["Key"], entry["VersionId"])
                for page in pages
                for kind in ("Versions", "DeleteMarkers")
                for entry in page.get(kind, [])
            ]
            versions.sort(key=lambda v: (not (first is not None and first(self.location.relative(v[0]))), v[0]))
            for key, version in versions:
                self._client.delete_object(Bucket=self.location.bucket, Key=key, VersionId=version)
        return len(versions)

    # -- the chain head ---------------------------------------------------------------------

    def put_head(self, key: str, data: bytes) -> str | None:
        """Write the small object ``key`` (the chain head, see ``aris3nb.storage.head``) as a new
        version, locked when the repository has retention; return its version id (None when the
        bucket is not versioned)."""
        if len(data) > MAX_HEAD_BYTES:
            raise StorageError(f"a head is at most {MAX_HEAD_BYTES} bytes, not {len(data)}")
        url = self.url(key)
        extra = self.retention.object_args() if self.retention else {}
        with self._store_errors(f"could not write {url}", url):
            answer = self._client.put_object(
                Bucket=self.location.bucket, Key=self._key(key), Body=data, ContentType="application/json", **extra
            )
        version = answer.get("VersionId")
        return None if version in (None, "null") else str(version)

    def head_history(self, key: str) -> list[HeadVersion]:
        """Every version of the object ``key``, newest first, delete markers included (``deleted``):
        what ``aris3nb.storage.head.check_head`` judges the runs that remain by."""
        full = self._key(key)
        url = self.url(key)
        entries: list[tuple[datetime, bool, str, bool]] = []
        with self._store_errors(f"could not list the versions of {url}", url):
            pages = self._client.get_paginator("list_object_versions").paginate(
                Bucket=self.location.bucket, Prefix=full
            )
            for page in pages:
                for entry in page.get("Versions", []):
                    if entry["Key"] == full:
                        entries.append((entry["LastModified"], bool(entry.get("IsLatest")), entry["VersionId"], False))
                for entry in page.get("DeleteMarkers", []):
                    if entry["Key"] == full:
                        entries.append((entry["LastModified"], bool(entry.get("IsLatest")), entry["VersionId"], True))
        # S3 lists a key's versions newest first; the sort (stable) only interleaves delete markers.
        entries.sort(key=lambda e: (e[1], e[0]), reverse=True)
        history = []
        for modified, _, version_id, deleted in entries:
            data = b"" if deleted else self.read_bytes(key, max_bytes=MAX_HEAD_BYTES, version_id=version_id)
            history.append(HeadVersion(version_id=str(version_id), last_modified=modified, data=data, deleted=deleted))
        return history

    # -- conditional writes (the run lock, aris3nb.storage.lock) ----------------------------

    def put_conditional(self, key: str, data: bytes, *, if_match: str | None = None) -> str | None:
        """Write the small object ``key`` only if it does not exist (``If-None-Match: *``) or,
        with ``if_match``, only if its current ETag is that one (``If-Match``); return the new
        ETag, or None when the condition does not hold (another writer was first; with
        ``if_match``, also when there is no object any more). Never written with retention,
        whatever the repository's: the object must stay deletable (a bucket's own default
        retention still applies to it; a delete then adds a delete marker, which is enough).
        ``ConditionNotSupported`` when the store answers 501 NotImplemented. A store that
        ignores the condition silently is not told apart here: ``aris3nb.storage.lock`` checks."""
        url = self.url(key)
        condition = {"IfMatch": if_match} if if_match is not None else {"IfNoneMatch": "*"}
        with self._store_errors(f"could not write {url}", url):
            try:
                answer = self._client.put_object(
                    Bucket=self.location.bucket,
                    Key=self._key(key),
                    Body=data,
                    ContentType="application/json",
                    **condition,
                )
            except ClientError as exc:
                if self._condition_failed(exc, missing_too=if_match is not None):
                    return None
                raise
        return str(answer["ETag"])

    def delete_conditional(self, key: str, etag: str) -> bool:
        """Delete the object ``key`` only if its current ETag is ``etag`` (``If-Match``; on a
        versioned bucket a delete marker is added); False when it is not (or there is none).
        ``ConditionNotSupported`` when the store answers 501 NotImplemented."""
        url = self.url(key)
        with self._store_errors(f"could not delete {url}", url):
            try:
                self._client.delete_object(Bucket=self.location.bucket, Key=self._key(key), IfMatch=etag)
            except ClientError as exc:
                if self._condition_failed(exc, missing_too=True):
                    return False
                raise
        return True

    def delete_object(self, key: str) -> None:
        """Delete the object ``key`` (on a versioned bucket: add a delete marker)."""
        url = self.url(key)
        with self._store_errors(f"could not delete {url}", url):
            self._client.delete_object(Bucket=self.location.bucket, Key=self._key(key))

    def read_object(self, key: str, *, max_bytes: int = MAX_HEAD_BYTES) -> StoredObject | None:
        """The small object ``key`` with its ETag and the store's times (``StoredObject``), None
        when there is none; ``StorageError`` when it is larger than ``max_bytes``."""
        try:
            answer, data = self._get_small(key, max_bytes)
        except ObjectMissing:
            return None
        date = answer.get("ResponseMetadata", {}).get("HTTPHeaders", {}).get("date")
        try:
            server_time = parsedate_to_datetime(date) if date else None
        except (TypeError, ValueError):
            server_time = None
        return StoredObject(
            data=data, etag=str(answer["ETag"]), last_modified=answer.get("LastModified"), server_time=server_time
        )

    def _condition_failed(self, exc: ClientError, *, missing_too: bool) -> bool:
        """Whether ``exc`` says a condition does not hold (True), or the store does not implement
        conditions (``ConditionNotSupported``); False: another error, for ``_store_errors``."""
        codes = {_code(exc), str(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode"))}
        if codes & _NOT_IMPLEMENTED_CODES:
            raise ConditionNotSupported(
                self._scrub(f"the store does not implement conditional requests: {self._cause(exc)}")
            )
        return bool(codes & _CONDITION_FAILED_CODES or (missing_too and codes & _MISSING_CODES))


# -- local files ------------------------------------------------------------------------------


def _regular_files(root: Path) -> list[str]:
    """The relative paths of every file below ``root``; a link or special file is refused."""
    if not root.is_dir() or root.is_symlink():
        raise StorageError(f"{root} is not a folder to upload")
    found = []
    stack = [root]
    while stack:
        folder = stack.pop()
        try:
            entries = list(os.scandir(folder))
        except OSError as exc:
            raise StorageError(f"cannot read {folder}: {exc.strerror or exc}") from exc
        for entry in entries:
            mode = entry.stat(follow_symlinks=False).st_mode
            relative = Path(entry.path).relative_to(root).as_posix()
            if stat.S_ISDIR(mode):
                stack.append(Path(entry.path))
            elif not stat.S_ISREG(mode):
                kind = "a symbolic link" if stat.S_ISLNK(mode) else "not a regular file"
                raise StorageError(f"{entry.path} is {kind}: a folder to upload holds regular files only")
            elif reason := key_problem(relative):
                raise StorageError(f"{entry.path} cannot be uploaded: its name is {reason}")
            else:
                found.append(relative)
    return sorted(found)


class _HashingReader:
    """A file as the SDK reads it, hashed on the way. Not seekable on purpose: s3transfer then
    reads each byte exactly once, in order, into the part it sends (retries resend that part
    from memory), so the digest is that of the bytes sent, without a second read of the file."""

    def __init__(self, raw: BinaryIO) -> None:
        self._raw = raw
        self._digest = hashlib.sha256()
        self.size = 0

    def read(self, amount: int = -1) -> bytes:
        data = self._raw.read(amount)
        self._digest.update(data)
        self.size += len(data)
        return data

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False

    def hexdigest(self) -> str:
        return self._digest.hexdigest()


class _HashingWriter:
    """A file as the SDK writes it, hashed on the way. Not seekable on purpose: s3transfer then
    writes the object's bytes once each, in order, whatever order its ranged GETs finish in."""

    def __init__(self, raw: BinaryIO) -> None:
        self._raw = raw
        self._digest = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes) -> int:
        self._digest.update(data)
        self.size += len(data)
        return self._raw.write(data)

    def seekable(self) -> bool:
        return False

    def hexdigest(self) -> str:
        return self._digest.hexdigest()


def _code(exc: Any) -> str:
    return str(
        exc.response.get("Error", {}).get("Code") or exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    )
