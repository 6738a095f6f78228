"""The backup commands on a repository on object storage (``OPS_ARTIFACTS_DIR=s3://...``):
stage locally, then push; pull and verify, then act locally.

Every command works on a local staging artifacts folder (``aris3nb-*`` under the system's
temporary folder, removed on exit), so the existing local functions run unchanged on it:

* ``create``: the backup is made in the staging folder, then uploaded to
  ``backups/<name>/`` with its manifest last (a folder without ``manifest.json`` is not a
  backup); a name already on the store is refused before anything is made.
* ``validate``, the drill and ``restore``: the manifest is read, then every file is pulled
  into ``<staging>/backups/<name>/`` and checked against the manifest's size and SHA-256 on
  the way in (no unverified byte lands under a final name), then the local function runs.
  The drill report goes to ``drills/<name>/``, a restore's safety backup to ``backups/`` and
  its rollback log to ``rollback_log.jsonl`` (a new version of it; the old lines are kept).
* ``forget``: the manifests are mirrored, ``aris3nb.backup.retention`` decides, and the
  objects of each backup it removes are deleted, manifest first; a backup under Object Lock
  stays whole and says until when.

When evidence could not be pushed (the store failed), the staging folder is kept and the
message names it: a failure never loses its evidence.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import json
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aris3nb.backup.create import BACKUPS_DIRNAME, BackupResult, backups_dir, check_name, create_backup
from aris3nb.backup.drill import DrillReport, drills_dir, restore_verify
from aris3nb.backup.manifest import MANIFEST_NAME, NAME_PATTERN, Fetched, Validation, read_manifest, validate_backup
from aris3nb.backup.restore import ROLLBACK_LOG, RestoreResult, restore_backup
from aris3nb.backup.retention import (
    DRILL_REPORT_PATH,
    Forgotten,
    Policy,
    apply_policy,
    drilled_by_go_runs,
    protect_drilled,
    protect_newest_valid,
    read_backups,
)
from aris3nb.core.errors import Aris3nbError, BackupExists, DrillFailed, ManifestUnreadable, UsageError
from aris3nb.core.files import sha256_file
from aris3nb.core.settings import Settings, is_repository_url
from aris3nb.core.words import count
from aris3nb.storage.errors import ObjectCorrupt, ObjectMissing, StorageError

if TYPE_CHECKING:
    from aris3nb.storage.s3 import Repository  # boto3: loaded only for an s3:// repository

__all__ = [
    "Remote",
    "RemoteForgotten",
    "create_remote",
    "forget_remote",
    "is_remote",
    "restore_remote",
    "restore_verify_remote",
    "validate_remote",
]

#: Where ``aris3nb run`` keeps its runs below the artifacts folder (``aris3nb.evidence.runner``'s
#: RUNS_DIRNAME, not imported: the backup commands do not load the notebook runner).
RUNS_DIRNAME = "runs"


class Staging:
    """A local artifacts folder for one command: ``settings`` point at it; removed on exit
    unless ``keep`` (evidence that could not be pushed stays there)."""

    def __init__(self, settings: Settings) -> None:
        self.folder = Path(tempfile.mkdtemp(prefix="aris3nb-"))
        self.settings = settings.updated(artifacts={"dir": self.folder})
        self.keep = False

    def __enter__(self) -> Staging:
        return self

    def __exit__(self, *exc: object) -> None:
        if not self.keep:
            shutil.rmtree(self.folder, ignore_errors=True)


@dataclass
class Remote:
    """A backup on the store: its repository and name (``key``: its folder below the repository)."""

    repository: Repository
    name: str

    @property
    def key(self) -> str:
        return f"{BACKUPS_DIRNAME}/{self.name}"

    @property
    def url(self) -> str:
        return self.repository.url(f"{self.key}/{MANIFEST_NAME}")


def is_remote(reference: str, settings: Settings) -> bool:
    """Whether a command's MANIFEST argument names a backup on the store: an ``s3://`` URL, or a
    bare backup name (no local file of that name) when OPS_ARTIFACTS_DIR is ``s3://``."""
    if is_repository_url(reference):
        return True
    return (
        bool(settings.artifacts.repository_url) and bool(NAME_PATTERN.match(reference)) and not Path(reference).exists()
    )


def open_backup(
    reference: str,
    settings: Settings,
    *,
    write: bool = False,
    retain_days: int | None = None,
    retention_mode: str | None = None,
) -> Remote:
    """The repository and backup name of ``s3://BUCKET[/PREFIX]/backups/NAME[/manifest.json]``,
    or of a bare NAME in OPS_ARTIFACTS_DIR's repository. ``write``: what is written is locked
    for ``retain_days``, else OPS_RETAIN_DAYS."""
    if is_repository_url(reference):
        parts = reference.rstrip("/").split("/")
        if parts[-1] == MANIFEST_NAME:
            parts.pop()
        if len(parts) < 5 or parts[-2] != BACKUPS_DIRNAME or not NAME_PATTERN.match(parts[-1]):
            raise UsageError(
                f"{reference[:200]!r} does not name a backup: give s3://BUCKET[/PREFIX]/backups/NAME[/manifest.json]"
            )
        url, name = "/".join(parts[:-2]), parts[-1]
    else:
        url, name = str(settings.artifacts.repository_url), reference
    days = (retain_days if retain_days is not None else settings.artifacts.retain_days) if write else None
    return Remote(_open(url, settings, retain_days=days, mode=retention_mode, writes=write), name)


def _open(
    url: str, settings: Settings, *, retain_days: int | None = None, mode: str | None = None, writes: bool = False
) -> Repository:
    from aris3nb.storage.s3 import open_repository

    return open_repository(url, retain_days=retain_days, mode=mode or settings.artifacts.retention_mode, writes=writes)


# -- pulling, verified ------------------------------------------------------------------------


def _read_manifest(remote: Remote, folder: Path) -> tuple[bytes, dict[str, Any]]:
    """The manifest's bytes and document, parsed by the local reader (same refusals, exit 2)."""
    try:
        data = remote.repository.read_bytes(f"{remote.key}/{MANIFEST_NAME}")
    except ObjectMissing as exc:
        raise ManifestUnreadable(f"no manifest at {remote.url}") from exc
    probe = folder / ".manifest-read" / MANIFEST_NAME
    probe.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    probe.write_bytes(data)
    try:
        document = read_manifest(probe).document
    except ManifestUnreadable as exc:
        raise ManifestUnreadable(str(exc).replace(str(probe), remote.url)) from exc
    finally:
        shutil.rmtree(probe.parent, ignore_errors=True)
    return data, document


def pull(remote: Remote, staging: Staging, fetched: Fetched | None = None) -> Path:
    """Download the backup into ``<staging>/backups/<name>/``, every file checked against the
    manifest's size and SHA-256 on the way in; return the local manifest's path.
    ``ObjectCorrupt`` / ``ObjectMissing`` name the object on the store — or, with ``fetched``,
    every such object is recorded in its ``problems`` (no file written for it), the rest still
    pulled, and what was verified on the way in is its ``verified`` (not hashed again)."""
    data, document = _read_manifest(remote, staging.folder)
    expected = {
        entry["path"]: (entry["size"], entry["sha256"])
        for entry in document.get("files") or []
        if isinstance(entry, dict)
        and isinstance(entry.get("path"), str)
        and isinstance(entry.get("size"), int)
        and isinstance(entry.get("sha256"), str)
    }
    # The manifest pulled must be the one just read (a writer in between would be caught).
    expected[MANIFEST_NAME] = (len(data), hashlib.sha256(data).hexdigest())
    local = backups_dir(staging.settings) / remote.name
    got = remote.repository.download_tree(
        remote.key, local, expected, problems=fetched.problems if fetched is not None else None
    )
    if fetched is not None:
        if MANIFEST_NAME in fetched.problems:  # it changed since it was read: nothing to judge by
            raise ObjectCorrupt(fetched.problems[MANIFEST_NAME], remote.url)
        fetched.verified.update({path: got[path] for path in got if path in expected})
    return local / MANIFEST_NAME


def _keep_on_failure(staging: Staging, what: str, push: Callable[[], None]) -> None:
    try:
        push()
    except StorageError as exc:
        staging.keep = True
        raise StorageError(f"{exc}; {what} is kept locally in {staging.folder}") from exc


# -- the commands -----------------------------------------------------------------------------


def create_remote(
    settings: Settings,
    database_url: str,
    name: str,
    *,
    retain_days: int | None = None,
    retention_mode: str | None = None,
    **options: Any,
) -> tuple[BackupResult, Remote]:
    """``backup create`` into the repository of OPS_ARTIFACTS_DIR: checked (bucket, retention,
    name) before anything is made, made in staging; each file goes up as soon as the backup is
    complete, hashed on the way (read once: the manifest lists the bytes sent), the manifest
    last. A backup that fails after files went up has exactly the object versions it wrote
    removed (no manifest: never a backup; under lock they stay, and the next backup of that
    name clears them when stale); what was not removed is said on the failure's line.
    ``options`` go to ``create_backup`` (exports_dir, timeout_sec, profile, progress)."""
    check_name(name)  # before the store is asked anything
    days = retain_days if retain_days is not None else settings.artifacts.retain_days
    remote = Remote(
        _open(str(settings.artifacts.repository_url), settings, retain_days=days, mode=retention_mode, writes=True),
        name,
    )
    keys = remote.repository.list_keys(f"{remote.key}/")
    if keys:
        _clear_a_killed_upload(remote, keys)
    written: list[tuple[str, str | None]] = []  # (key, version id): this backup's own objects

    def publish(path: Path, relative: str) -> tuple[int, str]:
        key = f"{remote.key}/{relative}"
        try:
            return remote.repository.upload_file(path, key)
        finally:  # an upload that failed part way can still have written its object
            with contextlib.suppress(StorageError):  # ObjectMissing: it did not
                written.append((key, remote.repository.newest_version(key)))

    with Staging(settings) as staging:
        try:
            result = create_backup(database_url, name, settings=staging.settings, publish=publish, **options)
            remote.repository.upload_file(result.manifest_path, f"{remote.key}/{MANIFEST_NAME}")
        except BaseException as exc:
            _remove_written(remote, written, exc)
            raise
    return result, remote


def _remove_written(remote: Remote, written: list[tuple[str, str | None]], failure: BaseException) -> None:
    """A backup that failed after some of its files went up: remove exactly the object versions
    it wrote (a backup of the same name made meanwhile by another process keeps its own). What
    cannot be removed is added to ``failure``'s notes (the CLI prints them on its line): the
    next backup of that name removes it once stale."""
    if not written:
        return
    try:
        remote.repository.delete_versions(written)
    except StorageError as exc:
        failure.add_note(
            f"the {count(len(written), 'object')} it uploaded to {remote.repository.url(remote.key)}/ were not all "
            f"removed ({exc}); the next backup named {remote.name!r} removes them once they are stale and unlocked"
        )


def listed_files(folder: Path) -> dict[str, tuple[int, str]]:
    """What a backup folder just made holds, as its manifest lists it — each file's size and
    SHA-256, the manifest's own included — for ``upload_tree`` to check the bytes it sends."""
    manifest = folder / MANIFEST_NAME
    document = json.loads(manifest.read_text(encoding="utf-8"))
    expected = {entry["path"]: (entry["size"], entry["sha256"]) for entry in document.get("files") or []}
    expected[MANIFEST_NAME] = sha256_file(manifest)
    return expected


def _clear_a_killed_upload(remote: Remote, keys: list[str]) -> None:
    """The name is taken by a backup (its manifest is there: ``BackupExists``), or by the
    objects of an upload that never wrote its manifest (written last): one still being made,
    refused too, or one killed part way, removed once its newest object is older than the
    repository's stale-upload age (the same age after which incomplete multipart uploads are
    aborted), and said among the repository's warnings."""
    where = remote.repository.url(remote.key)
    if f"{remote.key}/{MANIFEST_NAME}" in keys:
        raise BackupExists(
            f"a backup named {remote.name!r} already exists at {where}; choose another name (it was left untouched)"
        )
    stale = remote.repository.options.stale_upload_age_sec
    newest = remote.repository.newest_write(f"{remote.key}/")
    age = (dt.datetime.now(dt.UTC) - newest).total_seconds() if newest is not None else 0.0
    if stale is None or age < stale:
        limit = f"once its newest object is {stale:g} s old" if stale is not None else "never (stale uploads are kept)"
        raise BackupExists(
            f"{where} holds {count(len(keys), 'object')} but no manifest, the newest written {age:.0f} s ago: a "
            f"backup being made, or one killed part way; the next backup of that name removes it {limit} "
            "(choose another name; it was left untouched)"
        )
    removed = remote.repository.delete_tree(f"{remote.key}/")
    remote.repository.warnings.append(
        f"removed the objects of a backup killed part way at {where} ({count(removed, 'object version')}, "
        f"no manifest, the newest written {age:.0f} s ago)"
    )


def validate_remote(reference: str, settings: Settings, schema_tables: Any = None) -> tuple[Validation, Remote]:
    """``backup validate`` of a backup on the store: a file that does not arrive as the
    manifest says is a problem naming the object (INVALID, exit 1), else ``validate_backup``."""
    remote = open_backup(reference, settings)
    with Staging(settings) as staging:
        fetched = Fetched()  # every object that did not arrive as listed, named
        manifest_path = pull(remote, staging, fetched)
        return validate_backup(manifest_path, schema_tables, fetched), remote


def restore_verify_remote(
    reference: str,
    settings: Settings,
    *,
    retain_days: int | None = None,
    retention_mode: str | None = None,
    **options: Any,
) -> tuple[DrillReport, str, Remote]:
    """The drill of a backup on the store: pulled and verified, drilled locally; the report is
    uploaded to ``drills/<name>/`` (its ``s3://`` address is returned), locked for
    ``retain_days`` (else OPS_RETAIN_DAYS). Every file that does not arrive as the manifest
    says fails the drill, each named by its object."""
    remote = open_backup(reference, settings, write=True, retain_days=retain_days, retention_mode=retention_mode)
    with Staging(settings) as staging:
        fetched = Fetched()  # drilled as it is: its validation fails naming them, report kept
        manifest_path = pull(remote, staging, fetched)
        bad = fetched.problems
        pulled = "; ".join(bad[path] for path in sorted(bad)[:3]) + (
            f"; and {len(bad) - 3} more" if len(bad) > 3 else ""
        )
        report_dir = drills_dir(staging.settings) / remote.name
        key = report_dir.relative_to(staging.folder).as_posix()  # drills/<name>, as locally
        try:
            report, path = restore_verify(
                manifest_path,
                settings=staging.settings,
                recorded_as=remote.repository.url(f"{remote.key}/{MANIFEST_NAME}"),
                fetched=fetched,
                **options,
            )
        except DrillFailed as exc:
            _keep_on_failure(staging, "the drill report", lambda: _push_tree(remote.repository, report_dir, key))
            where = remote.repository.url(f"{key}/{Path(exc.report_path).name}")
            cause = f"{pulled}" if pulled else str(exc).split(" (report: ")[0]
            raise DrillFailed(
                f"drill of {remote.name} FAILED: {cause.removeprefix(f'drill of {remote.name} FAILED: ')} "
                f"(report: {where})",
                where,  # an address, not a Path: "s3://" would lose a slash
                exc.document,
            ) from exc
        except Aris3nbError:
            _keep_on_failure(staging, "the drill report", lambda: _push_tree(remote.repository, report_dir, key))
            raise
        _keep_on_failure(staging, "the drill report", lambda: _push_tree(remote.repository, report_dir, key))
        return report, remote.repository.url(f"{key}/{path.name}"), remote


def _push_tree(repository: Repository, folder: Path, key: str) -> None:
    if folder.is_dir() and any(folder.iterdir()):
        repository.upload_tree(folder, key, replace=True)


def restore_remote(reference: str, target_url: str, settings: Settings, **options: Any) -> tuple[RestoreResult, str]:
    """``backup restore`` of a backup on the store into ``target_url``: pulled and verified,
    restored locally; the safety backup is uploaded to ``backups/`` and the rollback log's new
    lines appended to the repository's ``rollback_log.jsonl`` (even when the restore fails)."""
    remote = open_backup(reference, settings, write=True)
    repository = remote.repository
    with Staging(settings) as staging:
        log = staging.folder / ROLLBACK_LOG
        if repository.exists(ROLLBACK_LOG):
            log.write_bytes(repository.read_bytes(ROLLBACK_LOG))
            log.chmod(0o600)
        manifest_path = pull(remote, staging)
        before = {p.name for p in backups_dir(staging.settings).iterdir()}

        def push() -> None:
            for made in sorted(backups_dir(staging.settings).iterdir()):
                if made.name not in before and not made.name.startswith(".") and (made / MANIFEST_NAME).is_file():
                    key = f"{BACKUPS_DIRNAME}/{made.name}"
                    repository.upload_tree(made, key, last=[MANIFEST_NAME], expected=listed_files(made))
            if log.is_file():
                # The log names the backups where they are kept, the store, not the staging folder
                # (the safety backup's path, and a warning's "the backup's copies are in ...").
                text = log.read_text(encoding="utf-8").replace(
                    json.dumps(f"{backups_dir(staging.settings)}/")[1:-1],
                    json.dumps(f"{repository.url(BACKUPS_DIRNAME)}/")[1:-1],
                )
                log.write_text(text, encoding="utf-8")
                repository.upload_file(log, ROLLBACK_LOG)

        # What is said names the backups where they stay, the store, not the staging folder.
        staged, kept = f"{backups_dir(staging.settings)}/", f"{repository.url(BACKUPS_DIRNAME)}/"
        if (announce := options.get("announce")) is not None:
            options["announce"] = lambda line: announce(line.replace(staged, kept))
        try:
            result = restore_backup(manifest_path, target_url, settings=staging.settings, **options)
        except BaseException as exc:  # refused, failed, interrupted: what it made goes up first
            try:
                push()  # the safety backup, when one was taken, and the rollback log
            except StorageError as failed:
                staging.keep = True  # what could not go up stays, and the line says where
                shutil.rmtree(backups_dir(staging.settings) / remote.name, ignore_errors=True)  # on the store
                exc.add_note(
                    f"the safety backup and the rollback log could not be uploaded ({failed}); they are kept "
                    f"locally in {staging.folder}"
                )
            else:  # up: the message names them where they stay, and nothing is left behind
                if isinstance(exc, Aris3nbError):
                    exc.message = exc.message.replace(staged, kept)
            raise
        _keep_on_failure(staging, "the safety backup and the rollback log", push)
        result.warnings[:] = [warning.replace(staged, kept) for warning in result.warnings]
        safety = repository.url(f"{BACKUPS_DIRNAME}/{result.safety_backup.name}")
        return result, safety


@dataclass
class RemoteForgotten(Forgotten):
    """``Forgotten``, the backups left because the store holds them under lock, and the folders
    of ``backups/`` holding objects but no manifest (an upload killed part way, or one being
    made): never a backup, left alone, said."""

    locked: dict[str, str] = field(default_factory=dict)
    partial: dict[str, int] = field(default_factory=dict)

    def as_evidence(self) -> dict[str, Any]:
        return {**super().as_evidence(), "partial": dict(self.partial)}


def forget_remote(
    settings: Settings, policy: Policy, *, dry_run: bool = False, profile: Any = None
) -> tuple[RemoteForgotten, Repository]:
    """``backup forget`` on the repository: ``aris3nb.backup.retention``'s decision over the
    mirrored manifests (the newest valid backup of each target pulled and validated), then the
    objects of each removed backup deleted, manifest first. A backup under Object Lock stays."""
    if policy.empty():
        raise UsageError("no policy given: name at least one --keep-* count (nothing was removed)")
    repository = _open(str(settings.artifacts.repository_url), settings)
    partial: dict[str, int] = {}
    with Staging(settings) as staging:
        mirror = backups_dir(staging.settings)
        for name in repository.list_folders(f"{BACKUPS_DIRNAME}/"):
            key = f"{BACKUPS_DIRNAME}/{name}/{MANIFEST_NAME}"
            if NAME_PATTERN.match(name) and repository.exists(key):
                (mirror / name).mkdir(parents=True, mode=0o700)
                (mirror / name / MANIFEST_NAME).write_bytes(repository.read_bytes(key))
            elif objects := repository.list_keys(f"{BACKUPS_DIRNAME}/{name}/"):  # no manifest: not a backup
                partial[name] = len(objects)
        runs = staging.folder / RUNS_DIRNAME
        for run in repository.list_folders(f"{RUNS_DIRNAME}/"):
            key = f"{RUNS_DIRNAME}/{run}/evidence.json"
            if repository.exists(key):
                (runs / run).mkdir(parents=True, mode=0o700)
                (runs / run / "evidence.json").write_bytes(data := repository.read_bytes(key))
                _mirror_drill_reports(repository, runs / run, data)
        entries = read_backups(mirror)
        apply_policy(entries, policy)
        protect_drilled(entries, drilled_by_go_runs(runs))
        _protect_newest_valid(repository, entries, staging, profile)
        result = RemoteForgotten(policy, entries, dry_run, partial=partial)
        for entry in result.to_remove:
            until = _locked_until(repository, f"{BACKUPS_DIRNAME}/{entry.name}/{MANIFEST_NAME}")
            if until is not None:  # whole, as it is: deleting around a locked manifest would break it
                entry.keep = True
                entry.reasons.append(f"under lock until {until}: left on the store")
                result.locked[entry.name] = until
        if dry_run:
            return result, repository
        for entry in result.to_remove:
            _delete_backup(repository, entry.name)
            result.removed.append(entry.name)
    return result, repository


def _mirror_drill_reports(repository: Repository, run_dir: Path, evidence: bytes) -> None:
    """The drill reports a GO run's evidence.json lists, beside it: what ``drilled_by_go_runs``
    reads to know the backup that run drilled."""
    try:
        document = json.loads(evidence)
    except ValueError:
        return
    if not isinstance(document, dict) or document.get("decision") != "GO":
        return
    for entry in document.get("files") or []:
        path = entry.get("path") if isinstance(entry, dict) else None
        if isinstance(path, str) and DRILL_REPORT_PATH.fullmatch(path):  # never a path of its own making
            local = run_dir / path
            local.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            local.write_bytes(repository.read_bytes(f"{RUNS_DIRNAME}/{run_dir.name}/{path}"))


def _protect_newest_valid(repository: Repository, entries: list[Any], staging: Staging, profile: Any) -> None:
    """``protect_newest_valid`` over backups pulled one at a time, newest first, until one of
    each target validates (a mirrored manifest alone is not a valid backup)."""
    done: set[str] = set()
    for entry in entries:
        if entry.group in done or entry.moment is None or entry.group.endswith("(safety backups)"):
            continue
        with Staging(staging.settings) as one:
            try:
                entry.folder = pull(Remote(repository, entry.name), one).parent
            except (ObjectCorrupt, ObjectMissing, ManifestUnreadable):
                continue  # not valid: the next one is the newest valid candidate
            reasons = len(entry.reasons)
            protect_newest_valid([entry], profile)
            if len(entry.reasons) > reasons:
                done.add(entry.group)


def _locked_until(repository: Repository, key: str) -> str | None:
    held = repository.retention_of(key)
    if held is None or held[1] <= dt.datetime.now(dt.UTC):
        return None
    return f"{held[1].astimezone(dt.UTC):%Y-%m-%dT%H:%M:%SZ} ({held[0]})"


def _delete_backup(repository: Repository, name: str) -> None:
    """Delete every version of every object below ``backups/<name>/``, the manifest first:
    from the first delete on, the folder is no longer a backup anyone would restore."""
    repository.delete_tree(f"{BACKUPS_DIRNAME}/{name}/", first=lambda key: key.endswith(f"/{MANIFEST_NAME}"))
