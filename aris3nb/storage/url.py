"""Repository URLs: ``s3://BUCKET[/PREFIX]`` parsed into a ``Location``, and object keys
judged safe before they are written or turned into local paths.

A URL names a bucket and, optionally, a prefix inside it under which the repository keeps
all its objects. It never carries credentials, a region or an endpoint: those come from the
usual AWS environment variables and configuration files only, so that no secret is ever
part of a command line, a log line or an evidence file. Nothing here touches the network.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from aris3nb.core.files import unsafe_path_reason
from aris3nb.storage.errors import InvalidStorageUrl

SCHEME = "s3://"
#: S3's rules for a new bucket's name: 3-63 lowercase letters, digits, '.' and '-', starting
#: and ending with a letter or digit (``\Z``, not ``$``, which would match before a newline).
BUCKET_PATTERN = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]\Z")
_IP_ADDRESS = re.compile(r"^\d+\.\d+\.\d+\.\d+\Z")
#: S3 keys are at most 1024 bytes; the prefix leaves room for what the repository puts below it.
MAX_PREFIX_BYTES = 512
MAX_KEY_BYTES = 1024
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


@dataclass(frozen=True)
class Location:
    """A bucket and the prefix (no leading or trailing ``/``; ``""`` for the whole bucket)
    under which a repository keeps its objects."""

    bucket: str
    prefix: str = ""

    def key(self, relative: str) -> str:
        """The object key of ``relative`` (a ``/``-separated path below the repository)."""
        return f"{self.prefix}/{relative}" if self.prefix else relative

    def relative(self, key: str) -> str:
        """The inverse of ``key``: the part of an object key below the repository's prefix."""
        if not self.prefix:
            return key
        head = self.prefix + "/"
        if not key.startswith(head):
            raise ValueError(f"key {key!r} is not below {self}")
        return key[len(head) :]

    def url(self, relative: str = "") -> str:
        """``s3://bucket/prefix/relative``: how messages name an object or a folder."""
        key = self.key(relative) if relative else self.prefix
        return f"{SCHEME}{self.bucket}/{key}" if key else f"{SCHEME}{self.bucket}"

    def __str__(self) -> str:
        return self.url()


def parse_url(url: str) -> Location:
    """``s3://BUCKET[/PREFIX]`` as a ``Location``, or ``InvalidStorageUrl`` (exit 2) in one line.

    Refused: another scheme, credentials, a port, a query or fragment, a bucket name S3 would
    not accept, and a prefix that is not a clean relative path (empty parts, ``.``, ``..``,
    backslashes, control characters). A URL that carries credentials is never echoed back.
    """
    if not isinstance(url, str) or not url.lower().startswith(SCHEME):
        shown = url[:120] if isinstance(url, str) else type(url).__name__
        raise InvalidStorageUrl(f"repository URL {shown!r} is not s3://BUCKET[/PREFIX]")
    rest = url[len(SCHEME) :]
    bucket, _, path = rest.partition("/")
    if "@" in bucket:
        raise InvalidStorageUrl(
            "a repository URL must not carry credentials (user:secret@): they are read from "
            "AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY or an AWS profile"
        )
    shown = repr(url[:200])
    if ":" in bucket:
        raise InvalidStorageUrl(
            f"repository URL {shown} names a port: the endpoint is read from AWS_ENDPOINT_URL, not the URL"
        )
    if "?" in url or "#" in url:
        raise InvalidStorageUrl(f"repository URL {shown} has a query or fragment ('?' or '#'); it takes neither")
    if not bucket:
        raise InvalidStorageUrl(f"repository URL {shown} names no bucket (s3://BUCKET[/PREFIX])")
    if not BUCKET_PATTERN.match(bucket) or ".." in bucket or _IP_ADDRESS.match(bucket):
        raise InvalidStorageUrl(
            f"bucket name {bucket[:80]!r} is not valid: 3-63 lowercase letters, digits, '.' or '-', "
            "starting and ending with a letter or digit, not an IP address"
        )
    prefix = path[:-1] if path.endswith("/") else path  # one trailing '/' says "a folder"
    if prefix and (reason := key_problem(prefix)):
        raise InvalidStorageUrl(f"repository URL {shown}: the prefix is {reason}")
    if len(prefix.encode()) > MAX_PREFIX_BYTES:
        raise InvalidStorageUrl(f"repository URL {shown}: the prefix is longer than {MAX_PREFIX_BYTES} bytes")
    return Location(bucket=bucket, prefix=prefix)


def key_problem(relative: str) -> str | None:
    """Why ``relative`` cannot be an object key below a repository (or a path below a local
    folder, which is what a downloaded key becomes), or None when it can."""
    if reason := unsafe_path_reason(relative):
        return f"not a safe relative path ({reason})"
    if _CONTROL.search(relative):
        return "not a safe relative path (holds a control character)"
    if len(relative.encode()) > MAX_KEY_BYTES:
        return f"longer than {MAX_KEY_BYTES} bytes"
    return None
