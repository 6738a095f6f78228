"""The rollback restore (``backup restore``): put a validated backup into a real target.

The only operation of aris3nb that writes to a database it did not create, so it is
guarded: it needs explicit confirmation; it validates the backup first; it takes a safety
backup of the target before changing anything; it verifies the target against the
manifest's digests afterwards; and it appends what it did to the rollback log (JSON lines).
When anything fails after the safety backup, the message names that backup and the command
that puts the target back.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from aris3nb.backup import pg_sessions, postgres, profiles, source, sqlite
from aris3nb.backup.create import BackupResult, create_backup
from aris3nb.backup.digest import Deadline
from aris3nb.backup.manifest import Manifest, validate_backup
from aris3nb.core.db import create_engine, database_errors, engine_name, sqlite_path
from aris3nb.core.errors import (
    Aris3nbError,
    BackupError,
    DeadlineExceeded,
    SessionsInTheWay,
    SourceMismatch,
    UsageError,
)
from aris3nb.core.files import sha256_file
from aris3nb.core.ids import utc_text
from aris3nb.core.redact import redact_url
from aris3nb.core.settings import Settings
from aris3nb.core.words import count
from aris3nb.targets.profile import LoadedProfile

ROLLBACK_LOG = "rollback_log.jsonl"


@dataclass
class RestoreResult:
    target: str
    backup: str
    safety_backup: Path
    duration_sec: float
    discarded: dict[str, dict[str, Any]] = field(default_factory=dict)
    other_source: str | None = None  # why the backup is not of the target, when that was confirmed
    #: What the restore did not put back, one line each: the export files, which it leaves as
    #: they are, when they differ from the backup's copies (the integrity check and the next
    #: drill FAIL on them until they are dealt with).
    warnings: list[str] = field(default_factory=list)


def rollback_log_path(settings: Settings) -> Path:
    return settings.artifacts.dir / ROLLBACK_LOG


def append_rollback_log(settings: Settings, entry: dict[str, Any]) -> None:
    """One JSON line per event, appended and flushed; the log is owner-only."""
    path = rollback_log_path(settings)
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    with os.fdopen(fd, "a", encoding="utf-8") as handle:
        handle.write(json.dumps({"at": utc_text(dt.datetime.now(dt.UTC)), **entry}, sort_keys=True) + "\n")
        handle.flush()
        os.fsync(handle.fileno())


def _verify_target(manifest: Manifest, target_url: str, deadline: Deadline) -> list[str]:
    recorded = {t["name"]: t for t in manifest.tables}
    if manifest.engine == "sqlite":
        found = sqlite.table_digests(sqlite_path(target_url), deadline, recorded)
    else:
        found = postgres.table_digests(target_url, deadline, recorded)
    return [
        f"table {name} differs after the restore"
        for name, was in recorded.items()
        if name not in found or found[name].digest != was["digest"] or found[name].rows != was["rows"]
    ]


#: Columns whose value, later than the backup's moment, marks a row the restore will discard:
#: the later of the two where a table has both (``COALESCE``: a row never updated has a
#: NULL ``updated_at`` — ARIS3's imported stock items do — and is still new by ``created_at``).
_CHANGE_COLUMNS = ("updated_at", "created_at")


def _change_stamp(columns: set[str]) -> tuple[Any, str] | None:
    """The expression that dates a row's last change, and how the log names it; None for a
    table with neither column."""
    present = [c for c in _CHANGE_COLUMNS if c in columns]
    if not present:
        return None
    if len(present) == 1:
        return sa.column(present[0]), present[0]
    return sa.func.coalesce(*(sa.column(c) for c in present)), f"coalesce({', '.join(present)})"


def rows_newer_than_backup(target_url: str, manifest: Manifest) -> dict[str, dict[str, Any]]:
    """Per table, what the restore will discard: the target's rows now, the backup's, the
    rows written or changed after the backup was made (by ``updated_at``, where it is NULL
    by ``created_at``; ``None`` for a table with neither column; ``by`` names it), and
    ``at_least``: the larger of those newer rows and the rows added since (now less the
    backup's, when more) — a lower bound either way: a row inserted after one was deleted,
    or changed without a timestamp, may be counted by neither."""
    recorded = {t["name"]: t["rows"] for t in manifest.tables}
    created = str(manifest.document.get("created_at") or "")
    moment = dt.datetime.fromisoformat(created.replace("Z", "+00:00")) if created else None
    engine = create_engine(target_url, poolclass=sa.NullPool)
    counts: dict[str, dict[str, Any]] = {}
    try:
        with database_errors(target_url, "count the rows the restore would discard"), engine.connect() as conn:
            inspector = sa.inspect(conn)
            for table in sorted(set(inspector.get_table_names()) - {"alembic_version"}):
                rows_now = conn.execute(sa.select(sa.func.count()).select_from(sa.table(table))).scalar_one()
                newer = None
                stamp = _change_stamp({c["name"] for c in inspector.get_columns(table)})
                if stamp is not None and moment is not None:
                    when = moment if conn.dialect.name == "postgresql" else moment.replace(tzinfo=None)
                    if conn.dialect.name == "sqlite":  # stored as text; compare as the same text form
                        value: Any = when.isoformat(sep=" ")
                    else:
                        value = when
                    newer = conn.execute(
                        sa.select(sa.func.count()).select_from(sa.table(table)).where(stamp[0] > value)
                    ).scalar_one()
                in_backup = recorded.get(table)
                added = rows_now - in_backup if in_backup is not None else 0
                counts[table] = {
                    "rows_now": rows_now,
                    "rows_in_backup": in_backup,
                    "newer_than_backup": newer,
                    "by": stamp[1] if stamp is not None else None,
                    "at_least": max(newer or 0, added, 0),
                }
    finally:
        engine.dispose()
    return counts


def discarded_rows(discarded: dict[str, dict[str, Any]]) -> str:
    """What ``rows_newer_than_backup`` found, in words: a lower bound (per table the larger of
    the rows with a change timestamp newer than the backup and the rows added since)."""
    at_least = sum(c["at_least"] for c in discarded.values())
    return (
        f"at least {count(at_least, 'row')} written or changed after the backup "
        "(per table the larger of: rows newer by updated_at/created_at, rows added since)"
    )


def _clear_the_way(target_url: str, terminate_sessions: bool, log: dict[str, Any], settings: Settings) -> None:
    """Refuse a PostgreSQL restore while other sessions hold locks or transactions on the
    target (pg_restore would wait on them with the target half-locked), or end them."""
    if engine_name(target_url) != "postgresql":
        return
    in_the_way = [s for s in pg_sessions.other_sessions(target_url) if s.in_the_way]
    if not in_the_way:
        return
    listed = "; ".join(str(s) for s in in_the_way)
    if not terminate_sessions:
        append_rollback_log(settings, {**log, "status": "REFUSED", "sessions_in_the_way": listed})
        raise SessionsInTheWay(
            f"{count(len(in_the_way), 'other session')} on {redact_url(target_url)} "
            f"{'holds' if len(in_the_way) == 1 else 'hold'} locks or an open transaction, "
            f"and the restore would wait on them: {listed}. Stop the service (or those clients) first, or add "
            "--terminate-sessions to end them"
        )
    pg_sessions.terminate(target_url, [s.pid for s in in_the_way])
    append_rollback_log(settings, {**log, "status": "SESSIONS_TERMINATED", "sessions": listed})


def restore_backup(
    manifest_path: Path,
    target_url: str,
    *,
    settings: Settings,
    confirmed: bool,
    timeout_sec: float | None = None,
    allow_other_source: bool = False,
    terminate_sessions: bool = False,
    announce: Callable[[str], None] = lambda line: None,
    profile: LoadedProfile | None = None,
) -> RestoreResult:
    """Restore the backup into ``target_url`` (confirmed), keeping a safety backup first.

    The backup must have been made from the target (``allow_other_source`` confirms one that
    was not, and the log records it); on PostgreSQL, other sessions holding locks or open
    transactions on the target refuse the restore unless ``terminate_sessions``. What is
    restored, and why, is told to ``announce`` before anything changes; the rows the
    restore discards (newer than the backup) are counted into the log and the result.
    ``profile``: the target profile (None: the reference): the backup is validated against
    its schema, and the safety backup is made with it (it records the profile by name).
    """
    if not confirmed:
        raise UsageError("restoring overwrites the target database: confirm with --yes")
    started = time.perf_counter()
    deadline = Deadline.after(timeout_sec if timeout_sec is not None else settings.backup.timeout_sec)
    validation = validate_backup(manifest_path, profiles.schema_tables_for(profile))
    validation.raise_if_invalid()
    manifest = validation.manifest
    if engine_name(target_url) != manifest.engine:
        raise UsageError(f"the backup is of a {manifest.engine} database; the target {redact_url(target_url)} is not")
    live = source.describe(target_url)
    log: dict[str, Any] = {"action": "restore", "backup": manifest.name, "target": redact_url(target_url)}
    why = source.mismatch(manifest.document.get("source") or {}, live)
    if why is not None:
        if not allow_other_source:
            append_rollback_log(settings, {**log, "status": "REFUSED", "error": f"not of the target: {why}"})
            raise SourceMismatch(
                f"backup {manifest.name} was not made from {source.label(live)}: {why}. Restoring it "
                "would put another database's data in place of the target's; if that is what you mean, "
                "add --allow-other-source as well as --yes"
            )
        log["other_source_confirmed"] = why
    _clear_the_way(target_url, terminate_sessions, log, settings)
    discarded = rows_newer_than_backup(target_url, manifest)
    announce(
        f"restoring {manifest.name} (created {manifest.document.get('created_at')}) into {source.label(live)}"
        + (f" although it is of another source ({why})" if why else "")
        + f"; {discarded_rows(discarded)} will be discarded (kept in the safety backup taken now; what the "
        "service writes after that snapshot and before the restore ends is in neither: stop its writes first)"
    )
    # Two restores in the same microsecond still get two names (secrets: not a clock).
    stamp = f"{dt.datetime.now(dt.UTC):%Y%m%dT%H%M%S%fZ}_{secrets.token_hex(2)}"
    try:
        left = deadline.remaining()  # none left is the restore's timeout, never a bad --timeout
        if left is not None and left <= 0:
            raise DeadlineExceeded("timeout: the deadline passed before the safety backup (nothing was restored)")
        safety: BackupResult = create_backup(
            target_url,
            f"safety_{stamp}_before_{manifest.name}"[:100],
            settings=settings,
            timeout_sec=left,
            purpose="safety",
            profile=profile,
        )
    except (Aris3nbError, OSError) as exc:  # the target untouched: said in the log as well
        append_rollback_log(
            settings, {**log, "status": "FAILED", "error": f"no safety backup, nothing restored: {exc}"}
        )
        raise
    log["safety_backup"] = str(safety.path)
    append_rollback_log(settings, {**log, "status": "STARTED", "discarded": discarded})
    try:
        if manifest.engine == "sqlite":
            with sqlite.scratch_copy(manifest.folder / sqlite.DATABASE_FILE) as copy:
                sqlite.restore_in_place(copy, target_url, deadline)
        else:
            postgres.restore(
                manifest.folder / postgres.DUMP_DIR,
                target_url,
                deadline,
                clean=True,
                lock_timeout_sec=settings.target.lock_timeout_sec,
            )
        problems = _verify_target(manifest, target_url, deadline)
        if problems:
            raise BackupError(
                f"{count(len(problems), 'table')} {'differs' if len(problems) == 1 else 'differ'} "
                f"from the backup after restoring: {problems[0]}"
            )
    except (Aris3nbError, OSError) as exc:  # OSError: the disk filled, a file could not be written
        append_rollback_log(settings, {**log, "status": "FAILED", "error": str(exc)})
        raise BackupError(
            f"restore into {redact_url(target_url)} failed: {exc}. The target's state before this restore is in the "
            f"safety backup {safety.path}; put it back with: aris3nb backup restore {safety.manifest_path} "
            f"--target-url <target> --yes"
        ) from exc
    except BaseException:  # Ctrl-C: the log says how it ended, not only that it started
        append_rollback_log(settings, {**log, "status": "INTERRUPTED"})
        raise
    duration = time.perf_counter() - started
    warnings = [drift] if (drift := exports_drift(manifest)) else []
    for warning in warnings:
        announce(f"warning: {warning}")
    append_rollback_log(
        settings, {**log, "status": "RESTORED", "duration_sec": round(duration, 3), "warnings": warnings}
    )
    return RestoreResult(
        target=redact_url(target_url),
        backup=manifest.name,
        safety_backup=safety.path,
        duration_sec=duration,
        discarded=discarded,
        other_source=why,
        warnings=warnings,
    )


def exports_drift(manifest: Manifest) -> str | None:
    """How the export files now differ from the backup's copies of them, or None: a restore
    puts back the database, not the files of the exports folder the manifest records
    (``exports.dir``: a target profile's backups), so files written after the backup stay with
    no row vouching for them, and files removed since stay gone. Said, never silent: the
    integrity check and the next drill FAIL on them."""
    backed_up = {
        str(entry["path"]).removeprefix("exports/"): str(entry["sha256"])
        for entry in manifest.document.get("files") or []
        if isinstance(entry, dict) and entry.get("role") == "export"
    }
    recorded = manifest.document.get("exports")
    if not isinstance(recorded, dict) or not isinstance(recorded.get("dir"), str):
        return None  # where the files came from is not recorded (the reference's backups record no folder)
    folder = Path(recorded["dir"])
    now: dict[str, str] = {}
    if folder.is_dir():
        for root, _, names in os.walk(folder, followlinks=False):
            for name in names:
                path = Path(root) / name
                if path.is_file() and not path.is_symlink():
                    now[path.relative_to(folder).as_posix()] = sha256_file(path)[1]
    extra = sorted(set(now) - set(backed_up))
    differ = sorted(name for name, digest in backed_up.items() if now.get(name) != digest)
    if not extra and not differ:
        return None
    return (
        f"the export files in {folder} were not restored: {count(len(extra), 'file')} the backup does not hold"
        f"{f' (e.g. {extra[0]})' if extra else ''}, {count(len(differ), 'file')} of the backup missing or changed"
        f"{f' (e.g. {differ[0]})' if differ else ''}; the backup's copies are in {manifest.folder / 'exports'}"
    )
