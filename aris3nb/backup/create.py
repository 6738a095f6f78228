"""Creating a backup: the database in one snapshot, its content digests from that same
snapshot, the export files, and the manifest written last.

Write ordering (what keeps a crash safe): everything goes into a temporary folder beside
the final one (``.tmp-<name>-pid<pid>-*``, swept by a later run once that process is gone);
files are made owner-only and flushed; the manifest is written and flushed last; only then
is the folder renamed to its final name. A backup is
therefore visible under its name only when complete, and a crash leaves nothing but a
temporary folder that no reader mistakes for a backup.
"""

from __future__ import annotations

import concurrent.futures
import datetime as dt
import errno
import functools
import hashlib
import json
import os
import platform
import re
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import alembic
import sqlalchemy as sa
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

import aris3nb
from aris3nb import migrate
from aris3nb.backup import digest, postgres, profiles, source, sqlite
from aris3nb.backup.digest import ROW_INDEX_FILE, Deadline, RowIndexWriter, TableDigest
from aris3nb.backup.manifest import (
    FORMAT,
    FORMAT_VERSION,
    INDEX_FORMAT,
    MANIFEST_NAME,
    NAME_PATTERN,
    manifest_digest,
    schema_coverage,
)
from aris3nb.core.db import create_engine, engine_name
from aris3nb.core.errors import BackupError, BackupExists, DeadlineExceeded, UsageError
from aris3nb.core.files import canonical_json, sha256_file
from aris3nb.core.ids import utc_text
from aris3nb.core.settings import Settings
from aris3nb.core.stale import sweep
from aris3nb.targets.profile import LoadedProfile

BACKUPS_DIRNAME = "backups"


@dataclass
class BackupResult:
    path: Path
    manifest: dict[str, Any]
    stale_removed: list[str] = field(default_factory=list)

    @property
    def warnings(self) -> list[str]:
        """What the backup could not do as configured, and why (also in its manifest)."""
        return list(self.manifest.get("warnings") or [])

    @property
    def manifest_path(self) -> Path:
        return self.path / MANIFEST_NAME


def backups_dir(settings: Settings) -> Path:
    return settings.artifacts.dir / BACKUPS_DIRNAME


def check_name(name: str) -> None:
    """A backup name is a plain ASCII slug: letters, digits, '_' and '-', at most 100."""
    if not NAME_PATTERN.match(name or ""):
        raise UsageError(
            f"backup name {name!r} is not a plain slug: use 1-100 ASCII letters, digits, '_' or '-', "
            "starting with a letter or digit (e.g. pre_deploy_20261128_0800)"
        )


def schema_fingerprint(conn: sa.Connection) -> str:
    """``sha256:`` of the reflected schema: tables, columns and types, keys, indexes."""
    inspector = sa.inspect(conn)
    schema: dict[str, Any] = {}
    for table in sorted(inspector.get_table_names()):
        schema[table] = {
            "columns": [[c["name"], str(c["type"]), bool(c["nullable"])] for c in inspector.get_columns(table)],
            "pk": inspector.get_pk_constraint(table)["constrained_columns"],
            "fks": sorted(
                [fk["name"] or "", fk["constrained_columns"], fk["referred_table"], fk["referred_columns"]]
                for fk in inspector.get_foreign_keys(table)
            ),
            "indexes": sorted(
                [ix["name"] or "", ix["column_names"], bool(ix["unique"])] for ix in inspector.get_indexes(table)
            ),
        }
    return "sha256:" + hashlib.sha256(canonical_json(schema)).hexdigest()


def _revision(conn: sa.Connection) -> str | None:
    return MigrationContext.configure(conn).get_current_revision()


def _row_index(folder: Path) -> RowIndexWriter | None:
    """The row index the snapshot's digests write to (in the same pass), unless turned off."""
    return RowIndexWriter(folder / ROW_INDEX_FILE) if digest.WRITE_ROW_INDEX else None


def _index_entry(index: RowIndexWriter | None) -> dict[str, Any]:
    if index is None:
        return {}
    return {
        "row_index": {
            "path": ROW_INDEX_FILE,
            "format": INDEX_FORMAT,
            "version": 1,
            "digest_bytes": digest.ROW_DIGEST_BYTES,
            "rows": index.rows,
        }
    }


def _sqlite_snapshot(
    url: str,
    folder: Path,
    deadline: Deadline,
    lock_timeout_sec: float,
    *,
    exclude: frozenset[str] = frozenset(),
    on_file: Callable[[Path], None] | None = None,
) -> tuple[dict[str, TableDigest], dict[str, Any]]:
    # on_file is not told: the one database file is digested here, whole, after it is copied.
    copy = folder / sqlite.DATABASE_FILE
    sqlite.snapshot_copy(url, copy, deadline)
    if exclude:
        sqlite.empty_tables(copy, exclude)
    index = _row_index(folder)
    try:
        digests = sqlite.table_digests(copy, deadline, index=index, exclude=exclude)
    finally:
        if index is not None:
            index.close()
    engine = create_engine(f"sqlite:///{copy}", poolclass=sa.NullPool)
    try:
        with engine.connect() as conn:
            meta: dict[str, Any] = {
                "revision": _revision(conn),
                "schema_digest": schema_fingerprint(conn),
                "schema_tables": sorted(sa.inspect(conn).get_table_names()),
            }
    finally:
        engine.dispose()
    meta["server_version"] = sqlite.server_version()
    meta["source"] = source.describe(url)
    meta["snapshot"] = {"method": "sqlite-online-backup"}
    meta["tools"] = {"sqlite": sqlite.server_version(), "sqlite3_shell": sqlite.shell_version()}
    meta["index"] = _index_entry(index)
    return digests, meta


def _postgres_snapshot(
    url: str,
    folder: Path,
    deadline: Deadline,
    lock_timeout_sec: float,
    *,
    exclude: frozenset[str] = frozenset(),
    on_file: Callable[[Path], None] | None = None,
) -> tuple[dict[str, TableDigest], dict[str, Any]]:
    def read_meta(conn: sa.Connection) -> dict[str, Any]:
        return {
            "revision": _revision(conn),
            "schema_digest": schema_fingerprint(conn),
            "schema_tables": sorted(sa.inspect(conn).get_table_names()),
            "server_version": postgres.server_version(conn),
            "source": {"engine": "postgresql", "server": source.server_of(url), **source.postgres_identity(conn)},
        }

    index = _row_index(folder)
    try:
        digests, meta = postgres.snapshot_dump(
            url,
            folder,
            deadline,
            read_meta,
            lock_timeout_sec=lock_timeout_sec,
            index=index,
            exclude=exclude,
            on_file=on_file,
        )
    finally:
        if index is not None:
            index.close()
    meta["index"] = _index_entry(index)
    meta["snapshot"] = {"method": "pg_dump-exported-snapshot", "format": "directory", "jobs": postgres.DUMP_JOBS}
    meta["tools"] = {"pg_dump": postgres.tool_version("pg_dump")}
    return digests, meta


#: One snapshot function per engine: (url, folder, deadline, lock timeout, exclude=tables whose
#: rows are left out, on_file=told each file complete while the snapshot goes on, where the
#: engine can) -> (digests, metadata).
SNAPSHOTS: dict[str, Callable[..., tuple[dict[str, TableDigest], dict[str, Any]]]] = {
    "sqlite": _sqlite_snapshot,
    "postgresql": _postgres_snapshot,
}


def _copy_exports(exports_dir: Path | None, folder: Path) -> int:
    """Copy the regular files under ``exports_dir`` (links and temporaries are skipped)."""
    if exports_dir is None or not exports_dir.is_dir():
        return 0
    copied = 0
    for root, dirs, files in os.walk(exports_dir, followlinks=False):
        dirs[:] = sorted(d for d in dirs if not (Path(root) / d).is_symlink())
        for name in sorted(files):
            source = Path(root) / name
            if source.is_symlink() or not source.is_file() or name.startswith(".export-"):
                continue
            target = folder / "exports" / source.relative_to(exports_dir)
            target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            shutil.copyfile(source, target)
            copied += 1
    return copied


#: Hands one file of a backup being made (its path, its path in the backup) to where it is
#: published, and returns the size and SHA-256 of the bytes it sent (``create_backup``).
Publish = Callable[[Path, str], tuple[int, str]]


def _entry(relative: str, size: int, digest: str) -> dict[str, Any]:
    role = "database" if relative.startswith("database/") else "index" if relative == ROW_INDEX_FILE else "export"
    return {"path": relative, "size": size, "sha256": digest, "role": role}


def _seal(
    folder: Path, publish: Publish | None = None, published: dict[str, tuple[int, str]] | None = None
) -> list[dict[str, Any]]:
    """Make every file owner-only, flush it, and list it with its size and SHA-256 — of the
    bytes ``publish`` sent when given (the file is read once, by it), else read here; the
    files ``published`` already (and removed) are listed as they were sent."""
    entries = [_entry(relative, *sent) for relative, sent in (published or {}).items()]
    for root, _dirs, files in os.walk(folder):
        os.chmod(root, 0o700)
        for name in sorted(files):
            path = Path(root) / name
            os.chmod(path, 0o600)
            with path.open("rb") as handle:
                os.fsync(handle.fileno())
            relative = path.relative_to(folder).as_posix()
            entries.append(_entry(relative, *(publish(path, relative) if publish is not None else sha256_file(path))))
    return sorted(entries, key=lambda e: e["path"])


class _Streamer:
    """Publishes the files a snapshot finishes while it goes on (``on_file``), one at a time on
    a thread of its own, and removes each local copy once it is sent: the backup goes up as it
    is made, and the staging folder holds only what is not sent yet; after a failure nothing
    more is sent. ``finish`` waits for them (the first failure raised) and returns what each
    sent; ``stop`` (a backup that failed) cancels what has not started and waits for what has,
    so nothing goes up after it."""

    def __init__(self, folder: Path, publish: Publish, deadline: Deadline) -> None:
        self.folder, self.publish, self.deadline = folder, publish, deadline
        self.pool = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="aris3nb-publish")
        self.sending: dict[str, concurrent.futures.Future[tuple[int, str]]] = {}
        self.failed: BaseException | None = None

    def on_file(self, path: Path) -> None:
        relative = path.relative_to(self.folder).as_posix()
        self.sending[relative] = self.pool.submit(self._send, path, relative)

    def _send(self, path: Path, relative: str) -> tuple[int, str]:
        if self.failed is not None:  # one failed: the backup fails, nothing more goes up
            raise self.failed
        try:
            os.chmod(path, 0o600)
            sent = self.publish(path, relative)
            path.unlink()
        except BaseException as exc:
            self.failed = exc
            raise
        return sent

    def finish(self) -> dict[str, tuple[int, str]]:
        _, pending = concurrent.futures.wait(self.sending.values(), timeout=self.deadline.remaining())
        if pending:
            raise DeadlineExceeded("timeout: the deadline passed while the backup's files were uploaded")
        self.pool.shutdown()
        return {relative: future.result() for relative, future in self.sending.items()}

    def stop(self) -> None:
        self.pool.shutdown(wait=True, cancel_futures=True)


_TEMP_PATTERN = re.compile(r"^\.tmp-.+-pid(?P<pid>\d+)-[a-z0-9_]+$")


def _sweep_stale_temporaries(root: Path) -> list[str]:
    """Remove the temporary folders of backups whose process is gone (killed mid-way);
    a live process's folder is left alone. Returns the names removed."""
    return sweep(root, _TEMP_PATTERN)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def create_backup(
    database_url: str,
    name: str,
    *,
    settings: Settings,
    exports_dir: Path | None = None,
    timeout_sec: float | None = None,
    purpose: str = "manual",
    profile: LoadedProfile | None = None,
    progress: Callable[[str], None] = lambda stage: None,
    publish: Publish | None = None,
) -> BackupResult:
    """Back up ``database_url`` as ``<backups>/<name>``; refuse a name that exists.

    ``progress(stage)`` is told each stage as it starts. The whole backup must finish within
    ``timeout_sec`` (default OPS_BACKUP_TIMEOUT_SEC), enforced inside its statements and tools.
    ``purpose`` is recorded (``pre_deploy``, ``manual``, ``safety``: a safety backup is
    restored only by name), and ``profile``, the target profile the source was judged with
    (None: the reference). A backup whose tables are not its schema's at its revision (the
    check ``validate`` runs) is not published: it would be refused when it is needed.

    With a profile other than the reference (``backup.profiles``): the expected tables come
    from the target's own migrations (a revision they do not know is a warning, and the live
    schema is recorded instead), ``backup.exclude_tables`` are left out, and the export files
    come from ``exports_dir`` or else the profile's exports folder. For every target, an exports
    folder given or configured that does not exist is a warning (0 files copied, never silently).
    Warnings are in the manifest's ``warnings`` and the result.

    ``publish``, when given, gets each file of the backup (not the manifest) once it is
    complete, and its answer — the size and SHA-256 of the bytes it sent — is what the manifest
    lists: an upload hashes on the way and the file is read once (``aris3nb.storage``). The
    manifest is written after every file was published.
    """
    check_name(name)
    reference = profiles.is_reference(profile)
    exclude = profiles.excluded_tables(profile)
    warnings: list[str] = []
    if not reference and exports_dir is None:
        exports_dir = profiles.configured_exports_dir(profile)
    if exports_dir is not None and not Path(exports_dir).is_dir():
        warnings.append(f"exports folder {exports_dir} does not exist: 0 files copied")
    engine = engine_name(database_url)
    root = backups_dir(settings)
    try:
        root.mkdir(parents=True, exist_ok=True, mode=0o700)
    except OSError as exc:
        raise BackupError(f"cannot create the backups folder {root}: {exc.strerror or exc}") from exc
    final = root / name
    if final.exists() or final.is_symlink():
        raise BackupExists(
            f"a backup named {name!r} already exists at {final}; choose another name (it was left untouched)"
        )
    deadline = Deadline.after(timeout_sec if timeout_sec is not None else settings.backup.timeout_sec)
    started = time.perf_counter()
    created_at = dt.datetime.now(dt.UTC)
    stale = _sweep_stale_temporaries(root)
    try:
        work = Path(tempfile.mkdtemp(prefix=f".tmp-{name}-pid{os.getpid()}-", dir=root))
    except OSError as exc:
        raise BackupError(f"cannot create a temporary folder in {root}: {exc.strerror or exc}") from exc
    stage = "starting"

    def progress_to(next_stage: str) -> None:
        nonlocal stage
        stage = next_stage
        progress(next_stage)

    streamer = _Streamer(work, publish, deadline) if publish is not None else None
    try:
        snap_started = time.perf_counter()
        progress_to(
            "copying the database and digesting its tables"
            if streamer is None or engine != "postgresql"
            else "copying the database and digesting its tables, uploading each table's file pg_dump finishes"
        )
        digests, meta = SNAPSHOTS[engine](
            database_url,
            work,
            deadline,
            settings.target.lock_timeout_sec,
            exclude=exclude,
            on_file=streamer.on_file if streamer is not None else None,
        )
        published = streamer.finish() if streamer is not None else {}
        snapshot_sec = time.perf_counter() - snap_started
        stage = "checking the tables against the schema at the database's revision"
        live = set(meta["schema_tables"])
        excluded = sorted(exclude & live)
        lookup = schema_tables_at if reference else profiles.schema_tables_for(profile)
        coverage, coverage_warnings = schema_coverage(
            meta["revision"], set(digests), lookup, live=live, excluded=set(excluded)
        )
        warnings += coverage_warnings
        if coverage:
            raise BackupError(
                f"backup {name!r} not kept: the database's tables are not its schema's at revision "
                f"{meta['revision']} (validation would refuse it): {'; '.join(coverage[:3])}"
                + (f"; and {len(coverage) - 3} more" if len(coverage) > 3 else "")
            )
        exports_started = time.perf_counter()
        progress_to("copying export files")
        copied = _copy_exports(exports_dir, work)
        exports_sec = time.perf_counter() - exports_started
        seal_started = time.perf_counter()
        progress_to(
            "hashing files and writing the manifest" if publish is None else "uploading files, hashing them on the way"
        )
        files = _seal(work, publish, published)
        document = {
            "format": FORMAT,
            "version": FORMAT_VERSION,
            "name": name,
            "created_at": utc_text(created_at),
            "purpose": purpose,
            "source": {
                **meta["source"],
                "server_version": meta["server_version"],
                "profile": profiles.profile_label(profile),
            },
            "alembic_revision": meta["revision"],
            "schema_digest": meta["schema_digest"],
            "tools": {
                "aris3nb": aris3nb.__version__,
                "python": platform.python_version(),
                "sqlalchemy": sa.__version__,
                "alembic": alembic.__version__,
                **meta["tools"],
            },
            "snapshot": meta["snapshot"],
            "files": files,
            "tables": [digests[t].as_manifest_entry() for t in sorted(digests)],
            **meta["index"],
            "durations_sec": {},
        }
        if not reference:
            document.update(
                profile=profiles.profile_evidence(profile),
                schema_tables=sorted(live),
                excluded_tables=excluded,
                exports={"dir": str(exports_dir) if exports_dir is not None else None, "files": copied},
            )
        if warnings or not reference:
            document["warnings"] = warnings
        document["durations_sec"] = {
            "snapshot_and_digests": round(snapshot_sec, 3),
            "exports": round(exports_sec, 3),
            "seal": round(time.perf_counter() - seal_started, 3),
            "total": round(time.perf_counter() - started, 3),
        }
        document["manifest_digest"] = manifest_digest(document)
        manifest_path = work / MANIFEST_NAME
        with manifest_path.open("w", encoding="utf-8") as handle:
            json.dump(document, handle, indent=2, sort_keys=True, ensure_ascii=False)
            handle.write("\n")
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(manifest_path, 0o600)
        _fsync_dir(work)
        stage = "renaming the folder to its final name"
        try:
            os.rename(work, final)  # atomic; fails when another backup took the name meanwhile
        except OSError as exc:
            if exc.errno not in (errno.EEXIST, errno.ENOTEMPTY):
                raise
            raise BackupExists(
                f"a backup named {name!r} appeared at {final} while this one was being made; it was left untouched"
            ) from exc
    except OSError as exc:  # the disk is full, a file size limit, a folder not writable...
        if streamer is not None:
            streamer.stop()
        shutil.rmtree(work, ignore_errors=True)
        raise BackupError(f"backup {name!r} failed while {stage}: {exc}; nothing was kept") from exc
    except BaseException:
        if streamer is not None:
            streamer.stop()
        shutil.rmtree(work, ignore_errors=True)
        raise
    try:
        _fsync_dir(root)
    except OSError as exc:
        raise BackupError(
            f"backup {name!r} is complete at {final}, but making its name durable failed: {exc}; "
            "validate it before relying on it"
        ) from exc
    return BackupResult(path=final, manifest=document, stale_removed=stale)


@functools.lru_cache(maxsize=32)
def schema_tables_at(revision: str | None) -> frozenset[str] | None:
    """The tables the ARIS3 schema has at ``revision`` (migrated into a throwaway SQLite
    file), or None when the revision is unknown to this code."""
    if revision is None:
        return frozenset()
    # Only a revision id known literally: not a symbol ("head", "base"), a relative or
    # branch expression ("+1", "x@head"), nor anything else Alembic would parse.
    known = {script.revision for script in ScriptDirectory.from_config(migrate.alembic_config()).walk_revisions()}
    if revision not in known:
        return None
    with tempfile.TemporaryDirectory(prefix="aris3nb-schema-") as folder:
        url = f"sqlite:///{folder}/schema.db"
        migrate.upgrade(url, revision)
        engine = create_engine(url, poolclass=sa.NullPool)
        try:
            return frozenset(sa.inspect(engine).get_table_names())
        finally:
            engine.dispose()
