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
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aris3nb.backup import postgres, sqlite
from aris3nb.backup.create import BackupResult, create_backup, schema_tables_at
from aris3nb.backup.digest import Deadline
from aris3nb.backup.manifest import Manifest, validate_backup
from aris3nb.config import Settings
from aris3nb.db import engine_name, sqlite_path
from aris3nb.errors import Aris3nbError, BackupError, UsageError
from aris3nb.gate.report import utc_text
from aris3nb.redact import redact_url

ROLLBACK_LOG = "rollback_log.jsonl"


@dataclass
class RestoreResult:
    target: str
    backup: str
    safety_backup: Path
    duration_sec: float


def rollback_log_path(settings: Settings) -> Path:
    return settings.ops_artifacts_dir / ROLLBACK_LOG


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
    return [f"table {name} differs after the restore" for name, was in recorded.items()
            if name not in found or found[name].digest != was["digest"] or found[name].rows != was["rows"]]


def restore_backup(manifest_path: Path, target_url: str, *, settings: Settings, confirmed: bool,
                   timeout_sec: float | None = None) -> RestoreResult:
    """Restore the backup into ``target_url`` (confirmed), keeping a safety backup first."""
    if not confirmed:
        raise UsageError("restoring overwrites the target database: confirm with --yes")
    started = time.perf_counter()
    deadline = Deadline.after(timeout_sec if timeout_sec is not None else settings.ops_backup_timeout_sec)
    validation = validate_backup(manifest_path, schema_tables_at)
    validation.raise_if_invalid()
    manifest = validation.manifest
    if engine_name(target_url) != manifest.engine:
        raise UsageError(f"the backup is of a {manifest.engine} database; the target {redact_url(target_url)} is not")
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    safety: BackupResult = create_backup(target_url, f"safety_{stamp}_before_{manifest.name}"[:100], settings=settings,
                                         timeout_sec=deadline.remaining())
    log = {"action": "restore", "backup": manifest.name, "target": redact_url(target_url),
           "safety_backup": str(safety.path)}
    append_rollback_log(settings, {**log, "status": "STARTED"})
    try:
        if manifest.engine == "sqlite":
            with sqlite.scratch_copy(manifest.folder / sqlite.DATABASE_FILE) as copy:
                sqlite.replace_database(copy, target_url)
        else:
            postgres.restore(manifest.folder / postgres.DUMP_DIR, target_url, deadline, clean=True)
        problems = _verify_target(manifest, target_url, deadline)
        if problems:
            raise BackupError(f"{len(problems)} table(s) differ from the backup after restoring: {problems[0]}")
    except (Aris3nbError, OSError) as exc:  # OSError: the disk filled, a file could not be written
        append_rollback_log(settings, {**log, "status": "FAILED", "error": str(exc)})
        raise BackupError(
            f"restore into {redact_url(target_url)} failed: {exc}. The target's state before this restore is in the "
            f"safety backup {safety.path}; put it back with: aris3nb backup restore {safety.manifest_path} "
            f"--target-url <target> --yes"
        ) from exc
    duration = time.perf_counter() - started
    append_rollback_log(settings, {**log, "status": "RESTORED", "duration_sec": round(duration, 3)})
    return RestoreResult(target=redact_url(target_url), backup=manifest.name, safety_backup=safety.path,
                         duration_sec=duration)
