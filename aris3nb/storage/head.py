"""The chain head: a small versioned object (``runs/HEAD.json``) naming the newest sealed run
and the digest of its ``evidence.json``, and the check of a runs folder against its history.

Why it exists: a chain of evidence bundles links each run to the one before it, so removing
or editing a run in the middle breaks a link, but removing the *newest* runs leaves a shorter
chain that still verifies (``aris3nb.evidence.bundle`` says so). The head anchors the end of
the chain outside it. The bucket keeps every version of the head (versioning is on wherever
Object Lock is), and with retention each version is locked, so a later writer can add a head
but cannot remove an earlier one before its retention ends:

* the newest head names a run that is gone → the newest runs were deleted;
* an older head version names a run later than every run that remains → runs were deleted
  and the head rewritten to hide it;
* a newer head names an earlier run than the head before it → the head was rewound;
* the head's digest differs from the named run's ``evidence.json`` → the run was replaced;
* two versions name the same run with different digests, or a run's ``evidence.json`` differs
  from the digest the first version naming it recorded → the run was replaced and the head
  rewritten to match (a newer version can be added to a locked bucket; the first one stays).

Head document (format ``aris3nb.storage.head``, version 1; readers refuse other versions)::

    {"digest": "sha256:<64 hex>", "format": "aris3nb.storage.head",
     "run_id": "20250101T120000Z-abc123", "version": 1, "written_at": "2025-01-01T12:00:05Z"}

Run ids sort by time as text (``YYYYMMDDTHHMMSSZ-xxxxxx``), which is what "later" means here.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from aris3nb.core.files import DIGEST_PATTERN, canonical_json

HEAD_KEY = "runs/HEAD.json"
HEAD_FORMAT = "aris3nb.storage.head"
HEAD_VERSION = 1
MAX_HEAD_BYTES = 64 * 1024


@dataclass(frozen=True)
class HeadVersion:
    """One version of the head object, as the bucket keeps it (``deleted``: a delete marker)."""

    version_id: str
    last_modified: datetime
    data: bytes
    deleted: bool = False

    def document(self) -> dict[str, Any] | None:
        """The head document this version holds, or None when it holds none (or is deleted)."""
        if self.deleted:
            return None
        try:
            document = json.loads(self.data.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            return None
        if (
            not isinstance(document, dict)
            or document.get("format") != HEAD_FORMAT
            or document.get("version") != HEAD_VERSION
            or not isinstance(document.get("run_id"), str)
            or not isinstance(document.get("digest"), str)
            or not DIGEST_PATTERN.match(document["digest"])
        ):
            return None
        return document


class HasHeadHistory(Protocol):
    def head_history(self, key: str) -> list[HeadVersion]: ...

    def url(self, key: str) -> str: ...


def head_document(run_id: str, digest: str, *, now: datetime | None = None) -> bytes:
    """The bytes of a head naming ``run_id`` whose ``evidence.json`` has ``digest``."""
    if not DIGEST_PATTERN.match(digest):
        raise ValueError(f"digest {digest[:80]!r} is not sha256:<64 hex>")
    written = (now or datetime.now(UTC)).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    document = {
        "format": HEAD_FORMAT,
        "version": HEAD_VERSION,
        "run_id": run_id,
        "digest": digest,
        "written_at": written,
    }
    return canonical_json(document) + b"\n"


def check_head(
    repository: HasHeadHistory, remaining: Mapping[str, str | None] | Iterable[str], *, key: str = HEAD_KEY
) -> list[str]:
    """Every finding about the runs that remain against the head's history, each one line
    naming the run and the head version; empty when nothing was deleted or replaced.

    ``remaining`` is the run ids present in the repository, or a mapping from each to the
    digest of its ``evidence.json`` (then the head's digest is checked too; None skips it).
    """
    return head_problems(repository.head_history(key), remaining, where=repository.url(key))


def head_problems(
    versions: list[HeadVersion], remaining: Mapping[str, str | None] | Iterable[str], *, where: str = HEAD_KEY
) -> list[str]:
    """``check_head`` over a history already read (newest version first)."""
    digests: Mapping[str, str | None] = remaining if isinstance(remaining, Mapping) else dict.fromkeys(remaining)
    latest_remaining = max(digests, default=None)
    if not versions:
        if latest_remaining is None:
            return []
        return [f"no head at {where}, but runs remain (the newest is {latest_remaining}): the head was never written"]
    problems: list[str] = []
    if versions[0].deleted:
        problems.append(f"the head {where} was deleted (its newest version is a delete marker)")
    readable: list[tuple[HeadVersion, dict[str, Any]]] = []
    for version in versions:
        document = version.document()
        if document is None and not version.deleted:
            problems.append(f"head version {version.version_id} is not an {HEAD_FORMAT} version {HEAD_VERSION}")
        elif document is not None:
            readable.append((version, document))
    if not readable:
        return problems
    newest, head = readable[0]
    named = head["run_id"]
    reported: set[str] = set()  # the runs already said to be replaced
    if named not in digests:
        problems.append(
            f"the head names run {named} as the newest, but run {named} is missing: the newest runs were deleted"
        )
    elif digests[named] is not None and digests[named] != head["digest"]:
        problems.append(
            f"run {named}'s evidence.json has digest {digests[named]}, the head recorded {head['digest']}: "
            f"run {named} was replaced after the head was written"
        )
        reported.add(named)
    if latest_remaining is not None and latest_remaining > named:
        problems.append(
            f"run {latest_remaining} is later than the head's run {named}: a run sealed without updating "
            "the head (interrupted?), or the head was rewound"
        )
    for older, document in readable[1:]:
        earlier = document["run_id"]
        if earlier not in digests and (latest_remaining is None or earlier > latest_remaining):
            problems.append(
                f"head version {older.version_id} ({_when(older)}) names run {earlier}, later than every run "
                f"that remains: runs were deleted and the head rewritten"
            )
    problems += _replaced_runs(
        readable, digests, reported={named} if any("was replaced" in p for p in problems) else set()
    )
    for (later, later_doc), (_, earlier_doc) in zip(readable, readable[1:], strict=False):
        if later_doc["run_id"] < earlier_doc["run_id"]:
            problems.append(
                f"head version {later.version_id} ({_when(later)}) names run {later_doc['run_id']}, earlier "
                f"than run {earlier_doc['run_id']} named by the version before it: the head was rewound"
            )
    return problems


def run_head_problems(versions: list[HeadVersion], run_id: str, digest: str | None) -> list[str]:
    """For one run: every head version naming it must record the digest the first of them did,
    and its evidence.json (``digest``) must still have it — a run replaced, with the head
    rewritten to match or not, is found by the run's own check as by the chain's."""
    readable = [(v, d) for v in versions if (d := v.document()) is not None and d["run_id"] == run_id]
    return _replaced_runs(readable, {run_id: digest}, reported=set())


def _replaced_runs(
    readable: list[tuple[HeadVersion, dict[str, Any]]], digests: Mapping[str, str | None], *, reported: set[str]
) -> list[str]:
    """A run is sealed once: every head version naming it records the same digest, the one the
    first of them recorded, and its evidence.json still has it. Anything else is a run replaced
    and the head rewritten to match (an earlier, locked version cannot be)."""
    problems: list[str] = []
    first: dict[str, tuple[HeadVersion, str]] = {}
    for version, document in reversed(readable):  # oldest first
        run, digest = document["run_id"], document["digest"]
        if run not in first:
            first[run] = (version, digest)
        elif digest != first[run][1] and run not in reported:
            earliest = first[run][0]
            problems.append(
                f"head version {version.version_id} ({_when(version)}) records digest {digest} for run {run}, the "
                f"first version naming it, {earliest.version_id} ({_when(earliest)}), recorded {first[run][1]}: "
                f"run {run} was replaced and the head rewritten"
            )
            reported.add(run)
    for run, (version, digest) in first.items():
        now = digests.get(run)
        if now is not None and now != digest and run not in reported:
            problems.append(
                f"run {run}'s evidence.json has digest {now}, the head recorded {digest} when it was written "
                f"(version {version.version_id}, {_when(version)}): run {run} was replaced"
            )
    return problems


def _when(version: HeadVersion) -> str:
    return version.last_modified.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
