"""The run lock of a playbook run on a bucket: one run at a time per real target, across machines.

A run on a repository (``aris3nb run --out s3://...``) works in a staging folder of its own, so
the local lock (``aris3nb.evidence.run_lock``: a ``flock`` in the artifacts folder) keeps
nothing apart there: two runs against one database through one bucket — a CI retry, two
pipelines, two machines — take turns on an object of the bucket instead,
``<prefix>/locks/run-<hash>.json`` (the local lock's hash of the target's password-free
description). It is taken before anything is pulled from the bucket and released after the push,
so a run starts from what the run before it pushed (its chain link, freeze marker, backups).

* Taking it: a conditional write (``If-None-Match: *``); of two runs racing, the store lets
  exactly one create it. The object says who holds it (``document``): a lock id, the run id once
  the runner made it, host, pid, when it was taken and last renewed, the lease, the target
  without its password.
* A lease: the holder rewrites the object every third of its lease (``LEASE_SEC``, 180 s), from
  a background thread, conditionally on the ETag it last wrote (``If-Match``). An object not
  rewritten for its lease (by the store's clock: its answer's ``Date`` against the object's
  ``Last-Modified``; or by the waiter's own clock while it watches the same ETag) is a dead
  holder's (killed, its machine lost, cut off from the store): a waiter takes it over with a
  write conditional on that stale ETag, so of two waiters one only does, and says whose it took.
  A live holder's lock is never taken over.
* Waiting: ``on_wait`` is told once whom the run waits for; after ``wait_sec``
  (OPS_RUN_LOCK_WAIT_SEC) the run refuses (``RunLocked``, exit 2) naming the holder's run, host,
  pid and start — never the target's password, which no lock object holds.
* Releasing: when the run ends, however it ends (an error, Ctrl-C, SIGTERM), a delete
  conditional on the holder's ETag. A lock taken over meanwhile (its holder did not renew it for
  a lease) is left to its new holder, and the run's warnings say so.
* A store that does not honour the conditions — 501 NotImplemented, or a second conditional
  write that must fail and does not (checked at every acquisition) — is refused
  (``RunLockUnsupported``, exit 2): a run against a real target never runs unlocked believing it
  is locked.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import json
import logging
import os
import secrets
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from aris3nb.core.errors import UsageError
from aris3nb.core.ids import utc_text
from aris3nb.evidence.run_lock import LOCKS_DIRNAME
from aris3nb.storage.errors import StorageError
from aris3nb.storage.s3 import ConditionNotSupported, Repository, StoredObject

__all__ = ["LEASE_SEC", "BucketLock", "RunLockUnsupported", "RunLocked", "bucket_lock", "lock_key"]

log = logging.getLogger(__name__)

#: How long a lock not renewed stays its holder's: then a waiting run takes it over.
LEASE_SEC = 180.0
#: How often a waiting run reads the lock object.
POLL_SEC = 1.0
#: The store's times are to the second: a lock is stale only after its lease and this much more.
CLOCK_SLACK_SEC = 2.0
#: A lease a lock object declares is believed between these bounds (else ``LEASE_SEC``).
MAX_LEASE_SEC = 3600.0
FORMAT = "aris3nb run lock"
#: An ETag no object has: a write conditional on it must fail (the check of a store's honesty).
_NO_ETAG = '"00000000000000000000000000000000"'


class RunLocked(UsageError):
    """Another run holds the run lock of the target on the bucket, and kept it past the wait (exit 2)."""


class RunLockUnsupported(UsageError):
    """The store does not honour conditional writes: the run lock cannot be taken (exit 2)."""


def lock_key(target: str) -> str:
    """The lock object of ``target`` (a password-free description), relative to the repository:
    named by the same hash as the local lock file."""
    return f"{LOCKS_DIRNAME}/run-{hashlib.sha256(target.encode()).hexdigest()[:20]}.json"


def _text(value: Any, limit: int = 80) -> str:
    """A value of a lock object (written by anyone who can write to the bucket) fit for a message."""
    text = "".join(c for c in str(value) if c.isprintable())
    return text[:limit] + ("…" if len(text) > limit else "")


@dataclass(frozen=True)
class _Seen:
    """The lock object as a waiter read it."""

    stored: StoredObject
    document: dict[str, Any]

    @classmethod
    def of(cls, stored: StoredObject) -> _Seen:
        try:
            document = json.loads(stored.data)
        except ValueError:
            document = None
        return cls(stored, document if isinstance(document, dict) else {})

    def lease_sec(self, default: float) -> float:
        lease = self.document.get("lease_sec")
        if isinstance(lease, int | float) and not isinstance(lease, bool) and 0 < lease <= MAX_LEASE_SEC:
            return float(lease)
        return default

    def describe(self, url: str, default_lease: float) -> str:
        document = self.document
        if not document:
            return f"another run (its lock {url} is not readable)"
        run = document.get("run_id")
        who = f"run {_text(run)}" if run else "a run still starting"
        age = self.stored.age_sec
        renewed = f", renewed {max(age, 0):.0f} s ago" if age is not None else ""
        return (
            f"{who} on host {_text(document.get('host'))} (pid {_text(document.get('pid'), 12)}, started "
            f"{_text(document.get('started_at'), 40)}{renewed}, lease {self.lease_sec(default_lease):g} s; lock {url})"
        )


class BucketLock:
    """The run lock of ``target`` on ``repository`` (see the module): ``acquire``, ``name_run``
    once the run has an id, ``release``. ``warnings`` says what a caller must show: a lock taken
    over from a dead holder, a lock lost or not renewed in time, a lock not removed."""

    def __init__(
        self, repository: Repository, target: str, *, lease_sec: float = LEASE_SEC, poll_sec: float = POLL_SEC
    ) -> None:
        if not 0 < lease_sec <= MAX_LEASE_SEC:
            raise ValueError(f"a lease is more than 0 and at most {MAX_LEASE_SEC:g} s, not {lease_sec!r}")
        self.repository = repository
        self.target = target
        self.key = lock_key(target)
        self.url = repository.url(self.key)
        self.lease_sec = float(lease_sec)
        self.poll_sec = poll_sec
        self.lock_id = secrets.token_hex(8)
        self.run_id: str | None = None
        self.host = socket.gethostname()
        self.pid = os.getpid()
        self.started_at: str | None = None
        self.held = False
        self.warnings: list[str] = []
        self._etag: str | None = None
        self._renewed = 0.0  # time.monotonic() of the last write that held
        self._lost = False
        self._late = False  # the warning that a renewal is overdue was given
        self._doubts: list[str] = []  # the warnings saying the run may not have held it alone
        self._mutex = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def document(self) -> dict[str, Any]:
        """What the lock object holds (no password: ``target`` is password-free)."""
        return {
            "format": FORMAT,
            "version": 1,
            "lock_id": self.lock_id,
            "run_id": self.run_id,
            "host": self.host,
            "pid": self.pid,
            "started_at": self.started_at,
            "renewed_at": utc_text(dt.datetime.now(dt.UTC)),
            "lease_sec": self.lease_sec,
            "target": self.target,
        }

    def _body(self) -> bytes:
        return json.dumps(self.document(), indent=1).encode()

    def _read(self) -> _Seen | None:
        stored = self.repository.read_object(self.key)
        return None if stored is None else _Seen.of(stored)

    def _ours(self, seen: _Seen) -> bool:
        return seen.document.get("lock_id") == self.lock_id

    # -- taking it --------------------------------------------------------------------------

    def acquire(self, wait_sec: float, on_wait: Callable[[str], None] | None = None) -> None:
        """Take the lock, waiting up to ``wait_sec`` for its holder (``on_wait`` told once whom);
        ``RunLocked`` (exit 2) naming the holder when it is still held then, ``RunLockUnsupported``
        (exit 2) when the store does not honour conditional writes, ``StorageError`` (exit 1)
        when the store fails."""
        give_up = time.monotonic() + wait_sec
        first_seen: dict[str, float] = {}  # ETag -> when this run first saw it (its own clock)
        self.started_at = utc_text(dt.datetime.now(dt.UTC))
        try:
            while True:
                seen = self._attempt(first_seen)
                if self.held:
                    break
                holder = (
                    seen.describe(self.url, self.lease_sec)
                    if seen
                    else f"another run (its lock {self.url} came and went)"
                )
                if on_wait is not None:
                    on_wait(
                        f"waiting for {holder} against {self.target} to end "
                        f"(at most {wait_sec:g} s, OPS_RUN_LOCK_WAIT_SEC)"
                    )
                    on_wait = None  # said once
                if time.monotonic() >= give_up:
                    raise RunLocked(
                        f"{holder} is running against {self.target}; this run waited {wait_sec:g} s and did not "
                        "start (wait for it, or set OPS_RUN_LOCK_WAIT_SEC to wait longer; a lock its run stopped "
                        "renewing is taken over after its lease)"
                    )
                time.sleep(max(0.0, min(self.poll_sec, give_up - time.monotonic())))
        except ConditionNotSupported as exc:
            raise self._unsupported(f"it answered a conditional write with NotImplemented ({exc})") from exc
        self._check_conditions()
        self._thread = threading.Thread(target=self._keep, name="aris3nb-run-lock", daemon=True)
        self._thread.start()

    def _attempt(self, first_seen: dict[str, float]) -> _Seen | None:
        """One try: create the object, or take over a stale one. Sets ``held``; returns the
        object as last seen when another run holds it."""
        seen: _Seen | None = None
        for _ in range(2):  # a second time at once when the object went between write and read
            etag = self.repository.put_conditional(self.key, self._body())
            if etag is not None:
                self._took(etag, None)
                return None
            seen = self._read()
            if seen is not None:
                break
        if seen is None:
            return None
        if self._ours(seen):  # our own write, whose answer was lost (the SDK retried it)
            self._took(seen.stored.etag, None)
            return None
        now = time.monotonic()
        watched = now - first_seen.setdefault(seen.stored.etag, now)
        lease = seen.lease_sec(self.lease_sec)
        age = seen.stored.age_sec
        if max(watched, age if age is not None else 0.0) > lease + CLOCK_SLACK_SEC:
            etag = self.repository.put_conditional(self.key, self._body(), if_match=seen.stored.etag)
            if etag is not None:
                self._took(etag, seen)
                return None
            again = self._read()
            if again is not None and self._ours(again):  # our write, its answer lost
                self._took(again.stored.etag, seen)
                return None
            return again
        return seen

    def _took(self, etag: str, stale: _Seen | None) -> None:
        self._etag = etag
        self._renewed = time.monotonic()
        self.held = True
        if stale is not None:
            self.warnings.append(
                f"took over the run lock of {stale.describe(self.url, self.lease_sec)}: it was not renewed for its "
                "lease, so that run was killed or cut off from the store (check that it is not still acting on "
                f"{self.target})"
            )
            log.info("%s", self.warnings[-1])

    def _check_conditions(self) -> None:
        """A store that ignores the conditions would let two runs both believe they hold the
        lock: a write that must fail (the object exists; an ETag it never had) must fail."""
        body = self._body()
        try:
            if (etag := self.repository.put_conditional(self.key, body)) is not None:
                ignored = "If-None-Match: * (a write of an object that exists succeeded)"
            elif (etag := self.repository.put_conditional(self.key, body, if_match=_NO_ETAG)) is not None:
                ignored = "If-Match (a write on an ETag the object does not have succeeded)"
            else:
                return
            self._etag = etag
            reason = f"it ignores {ignored}"
        except ConditionNotSupported as exc:
            reason = f"it answered a conditional write with NotImplemented ({exc})"
        self.held = False
        with contextlib.suppress(StorageError):
            self.repository.delete_object(self.key)  # ours alone: no run believes it holds it
        raise self._unsupported(reason)

    def _unsupported(self, reason: str) -> RunLockUnsupported:
        return RunLockUnsupported(
            f"the store of {self.repository.url()} does not honour conditional writes ({reason}): the run lock "
            f"{self.url} that keeps two runs against {self.target} apart cannot be taken, so nothing was run "
            "(use a store with conditional writes — If-None-Match and If-Match on PutObject, as AWS S3 has since "
            "2024 — or run with a local artifacts folder)"
        )

    # -- holding it -------------------------------------------------------------------------

    def name_run(self, run_id: str) -> None:
        """The run's id, once the runner made it: written into the lock object at once."""
        self.run_id = run_id
        self._renew()

    def _keep(self) -> None:
        """The background thread: renew every third of the lease until released or lost."""
        while not self._stop.wait(self.lease_sec / 3):
            try:
                self._renew()
            except Exception as exc:  # never a traceback from a thread: said in the run's warnings
                self._say_late(f"{type(exc).__name__}: {exc}")
            if self._lost:
                return

    def _renew(self) -> None:
        with self._mutex:
            if self._lost or not self.held or self._etag is None:
                return
            try:
                etag = self.repository.put_conditional(self.key, self._body(), if_match=self._etag)
                if etag is None:
                    seen = self._read()
                    if seen is None or not self._ours(seen):
                        self._lose(seen)
                        return
                    etag = seen.stored.etag  # our own write, its answer lost (the SDK retried it)
            except StorageError as exc:
                self._say_late(str(exc))
                return
            self._etag = etag
            self._renewed = time.monotonic()

    def _lose(self, seen: _Seen | None) -> None:
        self._lost = True
        now_held = f"it is now held by {seen.describe(self.url, self.lease_sec)}" if seen else "it was deleted"
        self.warnings.append(
            f"this run lost its run lock {self.url} ({now_held}): it was not renewed within its lease of "
            f"{self.lease_sec:g} s, so another run against {self.target} may have run at the same time"
        )
        self._doubts.append(self.warnings[-1])
        log.info("%s", self.warnings[-1])

    def _say_late(self, cause: str) -> None:
        late = time.monotonic() - self._renewed
        log.info("the run lock %s was not renewed: %s", self.url, cause)
        if late > self.lease_sec and not self._late:
            self._late = True
            self.warnings.append(
                f"the run lock {self.url} was not renewed for {late:.0f} s, more than its lease of "
                f"{self.lease_sec:g} s ({cause}): another run against {self.target} may have taken it over"
            )
            self._doubts.append(self.warnings[-1])

    def doubts(self) -> list[str]:
        """Why this run may not have held its lock alone until now — the lock lost, or not
        renewed within its lease (overdue now included) — empty when it did. The run's verdict
        takes each as a warning before it is sealed (``run_playbook(lock_doubts=...)``). Never
        waits for the renewing thread (a renewal the store never answers holds its mutex)."""
        found = list(self._doubts)
        late = time.monotonic() - self._renewed
        if self.held and not self._lost and not self._late and late > self.lease_sec:
            found.append(
                f"the run lock {self.url} was last renewed {late:.0f} s ago, more than its lease of "
                f"{self.lease_sec:g} s: another run against {self.target} may have taken it over"
            )
        return found

    # -- releasing it -----------------------------------------------------------------------

    def release(self) -> None:
        """Delete the lock object if it is still this run's (conditionally on its ETag); never
        raises for the store: what went wrong is added to ``warnings``."""
        if not self.held:
            return
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self.lease_sec)
        with self._mutex:
            self.held = False
            if self._lost:
                return
            try:
                seen = self._read()
                if seen is None:
                    self.warnings.append(f"the run lock {self.url} was gone when the run ended (deleted by hand?)")
                elif not self._ours(seen):
                    self._lose(seen)
                else:
                    try:
                        if not self.repository.delete_conditional(self.key, seen.stored.etag):
                            self._lose(self._read())
                    except ConditionNotSupported:  # it is ours: read just now
                        self.repository.delete_object(self.key)
            except StorageError as exc:
                self.warnings.append(
                    f"the run lock {self.url} was not removed ({exc}): the next run against {self.target} takes it "
                    f"over once it has not been renewed for its lease of {self.lease_sec:g} s"
                )


@contextlib.contextmanager
def bucket_lock(
    repository: Repository,
    target: str,
    *,
    wait_sec: float,
    on_wait: Callable[[str], None] | None = None,
    lease_sec: float = LEASE_SEC,
    poll_sec: float = POLL_SEC,
) -> Iterator[BucketLock]:
    """Hold the run lock of ``target`` (a password-free description) on ``repository`` for the
    block (see ``BucketLock.acquire``); released however the block ends."""
    lock = BucketLock(repository, target, lease_sec=lease_sec, poll_sec=poll_sec)
    try:
        lock.acquire(wait_sec, on_wait)  # inside: a stop between its write and its end still releases
        yield lock
    finally:
        lock.release()
