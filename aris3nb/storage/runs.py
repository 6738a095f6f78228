"""Playbook runs on a repository on object storage: ``aris3nb run --out s3://BUCKET[/PREFIX]``
(stage locally, run, push) and ``aris3nb evidence verify s3://...`` (pull, verify locally,
check the chain head's history).

A run works on a local staging artifacts folder (``artifacts.Staging``), so the runner, its
notebooks and the seal run unchanged. Before the run, the store gives the staging folder what a
run reads from its artifacts folder:

* the newest sealed run's ``evidence.json``, checked against the chain head ``runs/HEAD.json``
  (``aris3nb.storage.head``): ``aris3nb.evidence.bundle`` links the new run to the newest sealed
  run of its runs folder, which is then the store's. A store whose newest runs are gone, or
  whose head's run was replaced, is refused before anything runs (exit 1); a later run that
  links to the head's run (a push cut short before its head) is accepted, and said;
* ``DEPLOY_FREEZE.json`` (the gate FAILs while it exists) and ``rollback_log.jsonl``;
* the names of the store's backups (``backup_names_taken``), which the runner's deploy backup
  then never takes (``RunOptions.backup_names_taken``).

After the run is sealed (GO, NO-GO or interrupted: a failing run's evidence goes up too), every
file the run added or changed goes up, in an order that keeps a reader right at every moment:
the freeze marker first, then each new backup (its manifest last), the other files (drill
reports, gate and integrity reports, the rollback log), then ``runs/<run_id>/`` with every
file's bytes checked against ``evidence.json`` as they are sent and ``evidence.json`` last (a
run folder without it is an incomplete run, never a complete one), then a new version of
``runs/HEAD.json`` naming the run, then ``index.html``. With retention every object is locked.
When the store fails, the staging folder is kept and the message names it: a failure never
loses evidence. Not pushed: the local ``index.html`` (rebuilt from the store instead), ``locks/``.

A run against a real target holds the target's run lock on the bucket (``aris3nb.storage.lock``,
``locks/run-<hash>.json``) from before the pull to after the push; the runner's own lock, in the
staging folder, keeps nothing apart. The lock objects are under ``locks/``, which no listing of
runs, backups or drills reads.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import json
import os
import re
import shutil
import tempfile
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aris3nb.backup.create import BACKUPS_DIRNAME, backups_dir
from aris3nb.backup.manifest import MANIFEST_NAME
from aris3nb.backup.restore import ROLLBACK_LOG
from aris3nb.core.errors import Aris3nbError, EvidenceInvalid, EvidenceUnreadable, ManifestUnreadable
from aris3nb.core.files import sha256_file
from aris3nb.core.settings import FREEZE_MARKER_NAME, Settings
from aris3nb.evidence import attest
from aris3nb.evidence.bundle import (
    EVIDENCE_NAME,
    RUN_ID,
    SIGNATURE_NAME,
    ChainVerification,
    Verification,
    next_link,
    unprotected_newest,
    verify_chain,
    verify_run,
)
from aris3nb.evidence.run_lock import LOCKS_DIRNAME
from aris3nb.storage import artifacts
from aris3nb.storage.artifacts import RUNS_DIRNAME, Staging
from aris3nb.storage.errors import ObjectCorrupt, ObjectMissing, StorageError
from aris3nb.storage.head import HEAD_KEY, MAX_HEAD_BYTES, HeadVersion, head_document, head_problems, run_head_problems
from aris3nb.storage.lock import LEASE_SEC, BucketLock, bucket_lock
from aris3nb.storage.s3 import Repository, open_repository
from aris3nb.storage.url import SCHEME, parse_url

#: A drill report's file name (``aris3nb.backup.drill``): drill_report_<UTC write time>.json.
DRILL_REPORT = re.compile(r"^drill_report_[0-9TZ]+\.json\Z")

__all__ = [
    "PushedRun",
    "RemoteVerification",
    "RunStaging",
    "StoredRun",
    "open_for_runs",
    "run_on_store",
    "verify_remote",
]

#: What a run reads from its artifacts folder besides the runs: pulled before it starts.
PULLED = (FREEZE_MARKER_NAME, ROLLBACK_LOG)
#: The runs index page (``aris3nb.evidence.index``, not imported here: it loads matplotlib).
INDEX_FILENAME = "index.html"
#: How many runs' evidence.json the index reads from the store at once.
INDEX_READERS = 8
#: Top-level names of the staging folder that stay local (the run goes up by itself).
LOCAL_ONLY = frozenset({INDEX_FILENAME, LOCKS_DIRNAME, RUNS_DIRNAME})
#: Own files of a sealed run, in the order they go up: evidence.json is the last object written.
OWN_FILES = (SIGNATURE_NAME, attest.ATTESTATION_NAME, EVIDENCE_NAME)


def open_for_runs(
    url: str, settings: Settings, *, retain_days: int | None = None, mode: str | None = None
) -> Repository:
    """The repository at ``url`` for a run: retention from ``retain_days``, else OPS_RETAIN_DAYS
    (exit 2 before anything is written when the bucket has no Object Lock)."""
    days = retain_days if retain_days is not None else settings.artifacts.retain_days
    return open_repository(url, retain_days=days, mode=mode or settings.artifacts.retention_mode, writes=True)


def _digest(data: bytes) -> str:
    return f"sha256:{hashlib.sha256(data).hexdigest()}"


@dataclass
class PushedRun:
    """Where a run went on the store."""

    run_url: str
    evidence_url: str
    head_version: str | None
    index_url: str | None
    index_problem: str | None = None


class RunStaging:
    """A run's local artifacts folder, filled from the repository on entry and pushed to it by
    ``push``. On exit the folder is removed, unless the run wrote something that was not pushed:
    then it is kept, and an ``Aris3nbError`` on its way out names it."""

    def __init__(self, repository: Repository, settings: Settings, *, target_url: str | None = None) -> None:
        self.repository = repository
        #: The run's database (a real target), whose backups and drills the gate judges; None:
        #: the embedded default, or a target known only by its service.
        self.target_url = target_url
        self._staging = Staging(settings)
        self.folder = self._staging.folder
        # What the run's messages tell a person to remove or look at is named on the bucket.
        self.settings = self._staging.settings.updated(artifacts={"shown_as": repository.url("")})
        #: The run the new one links to: (run id, digest of its evidence.json), or None.
        self.previous: tuple[str, str] | None = None
        self.warnings: list[str] = list(repository.warnings)
        self.pushed = False
        self._before: dict[str, str] = {}
        #: The backups on the store, by name: a name the run's own backup must not take.
        self.backup_names_taken: frozenset[str] = frozenset()

    def __enter__(self) -> RunStaging:
        try:
            self._pull()
        except BaseException:
            self._staging.__exit__()
            raise
        return self

    def __exit__(self, exc_type: object, exc: BaseException | None, tb: object) -> None:
        if not self.pushed and self._added():
            self._staging.keep = True
            if isinstance(exc, Aris3nbError) and str(self.folder) not in exc.message:
                exc.message += f"; what the run wrote is kept in {self.folder} (not on the store)"
        self._staging.__exit__()

    # -- before the run ---------------------------------------------------------------------

    def _pull(self) -> None:
        repository = self.repository
        newest = self._newest_sealed()
        if newest is not None:
            run_id, data = newest
            folder = self.folder / RUNS_DIRNAME / run_id
            folder.mkdir(parents=True, mode=0o700)
            (folder / EVIDENCE_NAME).write_bytes(data)
            self.previous = (run_id, _digest(data))
        for name in PULLED:
            if repository.exists(name):
                (self.folder / name).write_bytes(repository.read_bytes(name))
                (self.folder / name).chmod(0o600)
        self.backup_names_taken = frozenset(repository.list_folders(f"{BACKUPS_DIRNAME}/"))
        if self.target_url:
            self._pull_catalog(self.target_url)
        self._before = {relative: sha256_file(self.folder / relative)[1] for relative in _files(self.folder)}

    def _pull_catalog(self, target_url: str) -> None:
        """What the gate's ``backup.freshness`` and ``drill.freshness`` judge a real target by,
        as they would in a local artifacts folder: the manifest of each backup on the store made
        from the target; the newest of them whose every file verifies against its manifest,
        pulled whole (a valid backup; a newer one that does not verify stays a manifest alone,
        which the catalog passes over and names); and the drill reports of those backups, newest
        first, down to the first that passed. The rest of the store is left where it is."""
        from aris3nb.backup import source
        from aris3nb.backup.catalog import is_safety
        from aris3nb.backup.drill import drills_dir

        try:
            live = source.describe(target_url)
        except Aris3nbError as exc:  # the gate's own checks of the target FAIL with the cause
            self.warnings.append(f"the store's backups of the target were not read: {exc}")
            return
        manifests: dict[str, tuple[bytes, dict[str, Any]]] = {}
        for name in sorted(self.backup_names_taken):
            try:
                data = self.repository.read_bytes(f"{BACKUPS_DIRNAME}/{name}/{MANIFEST_NAME}")
            except ObjectMissing:
                continue  # an upload cut short: not a backup
            try:
                document = json.loads(data)
                recorded = document.get("source") if isinstance(document, dict) else None
                if source.mismatch(recorded if isinstance(recorded, dict) else {}, live) is not None:
                    continue
            except ValueError:
                document = {}  # unreadable: the catalog names it when it passes it over
            manifests[name] = (data, document if isinstance(document, dict) else {})
        newest_first = sorted(manifests, key=lambda n: str(manifests[n][1].get("created_at") or ""), reverse=True)
        for name in newest_first:
            if is_safety(name, manifests[name][1]):
                continue
            try:
                artifacts.pull(artifacts.Remote(self.repository, name), self._staging)
                break
            except (ObjectCorrupt, ObjectMissing, ManifestUnreadable) as exc:
                shutil.rmtree(backups_dir(self.settings) / name, ignore_errors=True)
                self.warnings.append(f"backup {name} on the store does not verify: {exc}")
        for name, (data, _) in manifests.items():
            manifest = backups_dir(self.settings) / name / MANIFEST_NAME
            if not manifest.exists():
                manifest.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
                manifest.write_bytes(data)
        reports = sorted(
            (key for name in manifests for key in self.repository.list_keys(f"drills/{name}/")),
            key=lambda key: (key.rsplit("/", 1)[-1], key),
            reverse=True,
        )
        for key in reports:  # named by their UTC write time: newest first, as the gate reads them
            parts = key.split("/")
            if len(parts) != 3 or not DRILL_REPORT.match(parts[2]):
                continue
            data = self.repository.read_bytes(key)
            local = drills_dir(self.settings) / parts[1] / parts[2]
            local.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            local.write_bytes(data)
            with contextlib.suppress(ValueError, AttributeError):
                if json.loads(data).get("status") == "PASS":
                    break

    def _refuse(self, problem: str) -> EvidenceInvalid:
        runs = self.repository.url(RUNS_DIRNAME)
        return EvidenceInvalid(
            runs, [f"{problem}; nothing was run (see `aris3nb evidence verify {runs}`, and the head's history)"]
        )

    def _newest_sealed(self) -> tuple[str, bytes] | None:
        """The newest sealed run the head vouches for, and its evidence.json's bytes."""
        repository = self.repository
        folders = sorted(name for name in repository.list_folders(f"{RUNS_DIRNAME}/") if RUN_ID.match(name))

        def sealed(name: str) -> bool:
            return repository.exists(f"{RUNS_DIRNAME}/{name}/{EVIDENCE_NAME}")

        head = read_head(repository)
        if head is None:
            newest = next((name for name in reversed(folders) if sealed(name)), None)
            if newest is not None:
                raise self._refuse(
                    f"the store holds sealed runs (the newest is {newest}) but no head {repository.url(HEAD_KEY)}: "
                    "it was deleted, or the runs were put there by another tool"
                )
            return None
        named, digest = head["run_id"], head["digest"]
        if named not in folders or not sealed(named):
            raise self._refuse(
                f"the head names run {named} as the newest, but it is missing: the newest runs were deleted"
            )
        data = repository.read_bytes(f"{RUNS_DIRNAME}/{named}/{EVIDENCE_NAME}")
        if _digest(data) != digest:
            raise self._refuse(
                f"run {named}'s evidence.json has digest {_digest(data)}, the head recorded {digest}: it was replaced"
            )
        # The whole history, not only the newest head: a run replaced and a newer head version
        # written to match is told by the earlier versions, which a lock keeps.
        if history_problems := head_problems(repository.head_history(HEAD_KEY), {named: digest}):
            raise self._refuse(history_problems[0])
        current = named
        for later in (name for name in folders if name > named and sealed(name)):
            later_data = repository.read_bytes(f"{RUNS_DIRNAME}/{later}/{EVIDENCE_NAME}")
            link = _link(later_data)
            if link != (current, _digest(data)):
                raise self._refuse(
                    f"run {later} is later than the head's run {named} but does not link to run {current}: "
                    "it was put there without the head"
                )
            self.warnings.append(
                f"run {later} is on the store but the head was not moved to it (a push cut short before its head); "
                "this run's head covers it"
            )
            current, data = later, later_data
        return current, data

    # -- after the run ----------------------------------------------------------------------

    def _added(self) -> list[str]:
        """What the run added or changed in the staging folder (relative paths), runs included."""
        found = []
        for relative in _files(self.folder):
            before = self._before.get(relative)
            if before is None or before != sha256_file(self.folder / relative)[1]:
                found.append(relative)
        return found

    def push(self, run_dir: Path) -> PushedRun:
        """Push what the run wrote, its run folder verified on the way, then the new head and
        the store's index. ``StorageError`` (exit 1) when the store fails: the staging folder
        is kept and named."""
        repository = self.repository
        run_id = run_dir.name
        added = [r for r in self._added() if r.split("/", 1)[0] not in LOCAL_ONLY]
        backups = sorted({r.split("/")[1] for r in added if r.startswith(f"{BACKUPS_DIRNAME}/") and r.count("/") >= 2})
        others = [r for r in added if not r.startswith(f"{BACKUPS_DIRNAME}/") and r != FREEZE_MARKER_NAME]
        try:
            if FREEZE_MARKER_NAME in added:  # the freeze stands on the store before anything else
                repository.upload_file(self.folder / FREEZE_MARKER_NAME, FREEZE_MARKER_NAME)
            for name in backups:
                self._push_backup(name)
            for relative in others:
                repository.upload_file(self.folder / relative, relative)
            digest = self._push_run(run_dir)
            version = repository.put_head(HEAD_KEY, head_document(run_id, digest))
        except StorageError as exc:
            self._staging.keep = True
            raise StorageError(
                f"{exc}; run {run_id} is kept locally in {self.folder} (its evidence is not complete on the store)"
            ) from exc
        self.pushed = True
        pushed = PushedRun(
            run_url=repository.url(f"{RUNS_DIRNAME}/{run_id}"),
            evidence_url=repository.url(f"{RUNS_DIRNAME}/{run_id}/{EVIDENCE_NAME}"),
            head_version=version,
            index_url=None,
        )
        try:
            pushed.index_url = write_store_index(repository)
        except (StorageError, OSError, RuntimeError) as exc:
            pushed.index_problem = f"index.html not written on the store: {getattr(exc, 'strerror', None) or exc}"
        return pushed

    def _push_backup(self, name: str) -> None:
        folder = backups_dir(self.settings) / name
        manifest = folder / MANIFEST_NAME
        if not manifest.is_file():
            self.warnings.append(f"{folder} has no manifest (a backup that failed): not pushed, kept in the evidence")
            return
        self.repository.upload_tree(
            folder, f"{BACKUPS_DIRNAME}/{name}", last=[MANIFEST_NAME], expected=artifacts.listed_files(folder)
        )

    def _push_run(self, run_dir: Path) -> str:
        """Upload the run folder, each file's bytes as evidence.json lists them, evidence.json
        last; return the digest of evidence.json as sent (what the head records)."""
        document = json.loads((run_dir / EVIDENCE_NAME).read_text(encoding="utf-8"))
        expected = {e["path"]: (e["size"], e["sha256"].removeprefix("sha256:")) for e in document["files"]}
        own = [name for name in OWN_FILES if (run_dir / name).is_file()]
        expected.update({name: sha256_file(run_dir / name) for name in own})
        sent = self.repository.upload_tree(run_dir, f"{RUNS_DIRNAME}/{run_dir.name}", last=own, expected=expected)
        return f"sha256:{sent[EVIDENCE_NAME][1]}"


@dataclass
class StoredRun:
    """A playbook run made on a repository: the runner's result, where it went on the store,
    and what the staging and the push had to say besides the run's own warnings."""

    result: Any  # aris3nb.evidence.runner.RunResult (storage imports the runner lazily)
    document: dict[str, Any]  # its evidence.json, read before the staging folder went
    pushed: PushedRun
    warnings: list[str]


def run_on_store(
    url: str,
    options: Any,
    settings: Settings,
    *,
    retain_days: int | None = None,
    mode: str | None = None,
    on_phase: Callable[[str, str], None] | None = None,
    lock_lease_sec: float = LEASE_SEC,
    **run_keywords: Any,
) -> StoredRun:
    """``aris3nb run --out s3://...``: ``run_playbook(options)`` in a staging folder filled from
    the repository at ``url`` (the chain's newest run checked against the head; for a real
    target — ``options.database_url`` or DATABASE_URL — its backups and drills the gate judges),
    then pushed (GO, NO-GO or interrupted alike). ``StorageError`` naming the kept staging
    folder when the push fails.

    A real target's run holds the target's run lock on the bucket (``aris3nb.storage.lock``)
    from before the pull to after the push, so that a second run against the target, from any
    machine, waits up to OPS_RUN_LOCK_WAIT_SEC and then refuses (exit 2) naming it, and starts
    from what it pushed; ``lock_lease_sec`` is the lock's lease (tests shorten it). The embedded
    default's target is the run's own: no lock."""
    import dataclasses

    from aris3nb.evidence.runner import lock_target, run_playbook, validate_run_options

    repository = open_for_runs(url, settings, retain_days=retain_days, mode=mode)
    target = dataclasses.replace(options, database_url=options.database_url or settings.target.database_url)
    with contextlib.ExitStack() as held:
        lock: BucketLock | None = None
        if not target.embedded:  # before the lock: bad input never waits for another run
            validate_run_options(target)
            lock = held.enter_context(
                bucket_lock(
                    repository,
                    lock_target(target),
                    wait_sec=settings.run.lock_wait_sec,
                    on_wait=(lambda line: on_phase("waiting", line)) if on_phase else None,
                    lease_sec=lock_lease_sec,
                )
            )
            run_keywords["on_run_id"] = lock.name_run
            run_keywords["lock_doubts"] = lock.doubts  # a lock lost mid-run: never a plain PASS
        with RunStaging(repository, settings, target_url=target.database_url) as staged:
            staged_options = dataclasses.replace(
                options, out=staged.folder, backup_names_taken=staged.backup_names_taken
            )
            result = run_playbook(staged_options, staged.settings, on_phase=on_phase, **run_keywords)
            if on_phase is not None:
                on_phase("push", f"pushing run {result.run_id} to {url}")
            document = json.loads(result.evidence_path.read_text(encoding="utf-8"))
            pushed = staged.push(result.run_dir)
            result.index_problem = pushed.index_problem
        if lock is not None:
            lock.release()  # now, to say in the run's warnings how it went (a lock lost meanwhile)
        return StoredRun(
            result, document, pushed, staged.warnings + list(result.warnings) + list(lock.warnings if lock else [])
        )


def _files(root: Path) -> list[str]:
    """The regular files below ``root`` (relative, ``/``-separated), hidden ones left out."""
    found = []
    for folder, folders, names in os.walk(root):
        folders[:] = [name for name in folders if not name.startswith(".")]
        for name in names:
            path = Path(folder) / name
            if not name.startswith(".") and path.is_file() and not path.is_symlink():
                found.append(path.relative_to(root).as_posix())
    return sorted(found)


def _link(data: bytes) -> tuple[Any, Any] | None:
    """The (run id, digest) an evidence.json's ``previous`` names, None when it names none."""
    try:
        previous = json.loads(data.decode("utf-8")).get("previous")
    except (UnicodeDecodeError, ValueError, AttributeError):
        return None
    return (previous.get("run_id"), previous.get("digest")) if isinstance(previous, dict) else None


def _head_kept(repository: Repository, versions: list[HeadVersion], kept: str) -> str:
    """``locked`` when the head's newest version is under a retention date still to come (it
    names the newest run: nobody can remove it, so removing that run shows); on a bucket with
    Object Lock whose newest head version carries none (runs pushed without --retain-days),
    ``unlocked``: its versions can be removed like any bucket's; else ``kept`` as it was."""
    if not repository.locked or not versions or versions[0].deleted:
        return kept
    retention = repository.retention_of(HEAD_KEY, version_id=versions[0].version_id)
    return "locked" if retention is not None and retention[1] > dt.datetime.now(dt.UTC) else "unlocked"


def read_head(repository: Repository) -> dict[str, Any] | None:
    """The newest version of the head as a document; None when there is none (or it is
    deleted). ``EvidenceInvalid`` when it is not a head document."""
    if not repository.exists(HEAD_KEY):
        return None
    data = repository.read_bytes(HEAD_KEY, max_bytes=MAX_HEAD_BYTES)
    document = HeadVersion(version_id="", last_modified=dt.datetime.now(dt.UTC), data=data).document()
    if document is None:
        url = repository.url(HEAD_KEY)
        raise EvidenceInvalid(url, [f"{url} is not a chain head document (aris3nb.storage.head version 1)"])
    return document


def write_store_index(repository: Repository) -> str:
    """Rebuild the store's ``index.html`` from every run's evidence.json (read from the store)
    and write it as a new version; return its address. The page links a phase's HTML page only
    when the page exists: for those the store lists, an empty stand-in is put in the scratch
    folder the page is rebuilt in (``aris3nb.evidence.index`` looks for the file)."""
    from aris3nb.evidence.index import write_index

    with tempfile.TemporaryDirectory(prefix="aris3nb-index-") as scratch:
        root = Path(scratch)
        evidence: dict[str, Path] = {}
        for key in repository.list_keys(f"{RUNS_DIRNAME}/"):
            parts = key.split("/")
            if len(parts) != 3 or not RUN_ID.match(parts[1]):
                continue
            folder = root / RUNS_DIRNAME / parts[1]
            folder.mkdir(parents=True, exist_ok=True, mode=0o700)
            if parts[2] == EVIDENCE_NAME:
                evidence[key] = folder / EVIDENCE_NAME
            elif parts[2].endswith(".html"):
                (folder / parts[2]).touch(mode=0o600)
        # One small GET per run: several at once, as a store's latency (not its bandwidth) bounds them.
        with ThreadPoolExecutor(max_workers=INDEX_READERS) as readers:
            for key, data in zip(evidence, readers.map(repository.read_bytes, evidence), strict=True):
                evidence[key].write_bytes(data)
        page = write_index(root)
        repository.upload_file(page, INDEX_FILENAME)
    return repository.url(INDEX_FILENAME)


# -- verifying from the store -------------------------------------------------------------


@dataclass
class RemoteVerification:
    """What verifying runs on the store found: the local verifier's result (its problems
    extended with what the store showed: objects that are not as evidence.json lists them, and
    the head's history), the address verified, and for one run the next run's link to it."""

    url: str
    result: Verification | ChainVerification
    #: The scratch runs folder the objects were verified in (gone now): the result's paths
    #: start with it, and are shown as ``runs_url``.
    scratch: str
    runs_url: str
    next_link: dict[str, Any] | None = None
    #: The newest readable head document, and how many versions of the head were checked.
    head: dict[str, Any] | None = None
    head_versions: int = 0
    #: What the bucket keeps of the head: "locked" (its newest version under retention: kept
    #: until its date), "unlocked" (Object Lock, but that version without retention), "versioned"
    #: (kept, but deletable by whoever can write), or "none" (no history).
    head_kept: str = "none"
    warnings: list[str] = field(default_factory=list)

    def shown(self, text: str) -> str:
        """``text`` with the scratch folder named as the store's runs folder."""
        return text.replace(self.scratch, self.runs_url)

    def anchors(self, run_id: str | None, digest: str | None) -> bool:
        """Whether the store's locked head names this run with this digest of its evidence.json:
        then an unsigned run no later run links is protected all the same (nobody can remove or
        rewrite that head version before its date, and it holds the digest)."""
        head = self.head or {}
        return (
            self.head_kept == "locked"
            and bool(run_id)
            and head.get("run_id") == run_id
            and (head.get("digest") == digest)
        )


def split_runs_url(url: str) -> tuple[str, str | None]:
    """``s3://BUCKET[/PREFIX][/runs[/RUN_ID[/evidence.json]]]`` as (repository URL, run id or None)."""
    location = parse_url(url)
    parts = location.prefix.split("/") if location.prefix else []
    if parts and parts[-1] == EVIDENCE_NAME:
        parts.pop()
    run_id = None
    if len(parts) >= 2 and parts[-2] == RUNS_DIRNAME and RUN_ID.match(parts[-1]):
        run_id = parts.pop()
        parts.pop()
    elif parts and parts[-1] == RUNS_DIRNAME:
        parts.pop()
    rest = "/".join(parts)
    return f"{SCHEME}{location.bucket}" + (f"/{rest}" if rest else ""), run_id


def verify_remote(url: str, *, public_key: Path | None = None, trusted_keys: Path | None = None) -> RemoteVerification:
    """Verify one run (``.../runs/RUN_ID``) or every run and the chain (``.../runs`` or the
    repository itself) on the store: pulled into a temporary folder, each object's SHA-256
    computed on the way in and compared with evidence.json, then the local verifier, then the
    head: for the runs folder every version of it against the runs that remain (deleted newest
    runs, a replaced run, a rewound head), for one run its digest when it names that run."""
    repository_url, run_id = split_runs_url(url)
    repository = open_repository(repository_url)
    key = f"{RUNS_DIRNAME}/{run_id}" if run_id else RUNS_DIRNAME
    runs_url = repository.url(RUNS_DIRNAME)
    with tempfile.TemporaryDirectory(prefix="aris3nb-verify-") as scratch:
        local = Path(scratch) / RUNS_DIRNAME
        got = repository.download_tree(key, local / run_id if run_id else local)
        if not got:
            raise EvidenceUnreadable(f"nothing at {repository.url(key)}: no run there")
        (local / HEAD_KEY.rpartition("/")[2]).unlink(missing_ok=True)  # the head is checked below, it is no run
        by_run: dict[str, dict[str, tuple[int, str]]] = {}
        for relative, sent in got.items():
            name, _, inside = (f"{run_id}/{relative}" if run_id else relative).partition("/")
            if inside:
                by_run.setdefault(name, {})[inside] = sent
        found: list[str] = []
        for name, objects in sorted(by_run.items()):
            found += _object_problems(repository, name, local / name, objects)
        verification = RemoteVerification(
            url=repository.url(key),
            result=Verification(run_dir=local),
            scratch=str(local),
            runs_url=runs_url,
            head_kept="versioned" if repository.versioned else "none",
        )
        result: Verification | ChainVerification
        if run_id:
            result = verify_run(local / run_id, public_key=public_key, trusted_keys=trusted_keys)
            verification.next_link = _next_link_on_store(repository, run_id, local)
            try:
                verification.head = read_head(repository)
            except EvidenceInvalid as exc:
                found += exc.problems
            # Every version of the head that named this run, not the newest alone: a run replaced
            # with the head rewritten to match is found here too (its first version disagrees).
            versions = repository.head_history(HEAD_KEY)
            verification.head_versions = len(versions)
            verification.head_kept = _head_kept(repository, versions, verification.head_kept)
            found += run_head_problems(versions, run_id, result.digest)
        else:
            result = verify_chain(local, public_key=public_key, trusted_keys=trusted_keys)
            versions = repository.head_history(HEAD_KEY)
            verification.head_versions = len(versions)
            verification.head_kept = _head_kept(repository, versions, verification.head_kept)
            verification.head = next((d for d in (v.document() for v in versions) if d is not None), None)
            digests = {run.run_dir.name: run.digest for run in result.runs}
            found += head_problems(versions, digests, where=repository.url(HEAD_KEY))
            newest = result.head
            if newest is not None and verification.anchors(newest.run_dir.name, newest.digest):
                result.warnings[:] = [w for w in result.warnings if w != unprotected_newest(newest.run_dir.name)]
        result.problems += found
        result.problems[:] = [verification.shown(problem) for problem in result.problems]
        if isinstance(result, ChainVerification):
            result.warnings[:] = [verification.shown(warning) for warning in result.warnings]
        verification.result = result
    verification.warnings = list(repository.warnings)
    return verification


def _object_problems(repository: Repository, name: str, local: Path, objects: dict[str, tuple[int, str]]) -> list[str]:
    """Each object of run ``name`` whose bytes, as they came from the store, are not the size
    and SHA-256 its evidence.json lists, named by its address (the local verifier then says
    the same of the file, with everything else it finds)."""
    try:
        document = json.loads((local / EVIDENCE_NAME).read_text(encoding="utf-8"))
        files = {e["path"]: e for e in document["files"] if isinstance(e, dict) and isinstance(e.get("path"), str)}
    except (OSError, ValueError, KeyError, TypeError):
        return []  # no usable listing: the local verifier says why
    problems = []
    for relative, entry in sorted(files.items()):
        url = repository.url(f"{RUNS_DIRNAME}/{name}/{relative}")
        if relative not in objects:
            problems.append(f"{url} is missing from the store")
        elif objects[relative] != (entry.get("size"), str(entry.get("sha256", "")).removeprefix("sha256:")):
            size, hexdigest = objects[relative]
            problems.append(
                f"{url} on the store is {size} bytes, SHA-256 sha256:{hexdigest}; evidence.json of run {name} "
                f"lists {entry.get('size')} bytes, {entry.get('sha256')}: the object was changed"
            )
    return problems


def _next_link_on_store(repository: Repository, run_id: str, local: Path) -> dict[str, Any] | None:
    """The next sealed run's link to ``run_id`` (``bundle.next_link``), its evidence.json read
    from the store into the scratch runs folder beside the run."""
    later = sorted(name for name in repository.list_folders(f"{RUNS_DIRNAME}/") if RUN_ID.match(name) and name > run_id)
    for name in later:
        key = f"{RUNS_DIRNAME}/{name}/{EVIDENCE_NAME}"
        if repository.exists(key):
            (local / name).mkdir(mode=0o700)
            (local / name / EVIDENCE_NAME).write_bytes(repository.read_bytes(key))
            link = next_link(local / run_id)
            shutil.rmtree(local / name, ignore_errors=True)
            return link
    return None
