"""The restore drill (``backup restore-verify``): prove a backup by restoring it.

Stages, each timed (RTO): *validate* the backup against its manifest; *restore* it into a
disposable database of the same engine (SQLite: a temporary copy; PostgreSQL: a database
created for the drill and dropped afterwards, even on failure); *verify* the restored copy
(revision, per-table row counts and digests over the manifest's key ranges, SQLite's
integrity and foreign key checks or PostgreSQL's constraints); *upgrade* it to the code's
head. Where a table differs, the drill diff names the key ranges and samples their rows.

The report ``drill_report_<timestamp>.json`` is always written, whatever happens; a failed
drill then raises ``DrillFailed`` (exit 1). The source database is never touched.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import datetime as dt
import json
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from aris3nb import migrate
from aris3nb.backup import postgres, sqlite
from aris3nb.backup.create import schema_tables_at
from aris3nb.backup.digest import Deadline, TableDigest, differing_ranges
from aris3nb.backup.manifest import Manifest, validate_backup
from aris3nb.core.checks import CheckResult, Status
from aris3nb.core.db import create_engine, engine_name, sqlite_path
from aris3nb.core.errors import (
    Aris3nbError,
    DatabaseUnavailable,
    DrillDisabled,
    DrillFailed,
    ManifestUnreadable,
    UsageError,
)
from aris3nb.core.files import write_json_evidence
from aris3nb.core.ids import utc_text
from aris3nb.core.redact import redact_text
from aris3nb.core.settings import Settings

REPORT_FORMAT = "aris3nb.drill.report"
REPORT_VERSION = 1
DIFF_RANGES = 5
SAMPLE_ROWS = 5
#: Timestamps whose newest value says how fresh the backed-up business data is (RPO).
BUSINESS_TIMESTAMPS = (("audit_events", "created_at"), ("sales", "updated_at"), ("transfers", "updated_at"),
                       ("payments", "created_at"))


@dataclass
class DrillReport:
    backup: str
    manifest: str
    engine: str | None
    started_at: str
    status: str = "FAIL"
    reason: str | None = None
    checks: list[CheckResult] = field(default_factory=list)
    diff: list[dict[str, Any]] = field(default_factory=list)
    rto_sec: dict[str, float] = field(default_factory=dict)
    rpo: dict[str, Any] = field(default_factory=dict)
    finished_at: str | None = None

    def as_document(self) -> dict[str, Any]:
        document = asdict(self)
        document["checks"] = [check.to_dict() for check in self.checks]
        return {"format": REPORT_FORMAT, "format_version": REPORT_VERSION, **document}


MAX_REPORT_BYTES = 64 * 1024 * 1024
_CHECK_STATUSES = ("PASS", "FAIL")


def read_drill_report(path: Path) -> dict[str, Any]:
    """A drill report's document; refuses what is not a version-1 report (exit 2).

    Everything a reader of the report relies on is checked here (the status, each check's
    name, status, detail and duration), so a damaged report is refused in one line rather
    than breaking whatever displays it.
    """
    path = Path(path)
    try:
        if path.stat().st_size > MAX_REPORT_BYTES:
            raise ManifestUnreadable(f"{path} is larger than a drill report can be ({MAX_REPORT_BYTES} bytes)")
        document = json.loads(path.read_bytes().decode("utf-8"), parse_constant=_refuse_constant)
        json.dumps(document, ensure_ascii=False, allow_nan=False).encode()  # text that can be written back
    except FileNotFoundError as exc:
        raise ManifestUnreadable(f"no drill report at {path}") from exc
    except (OSError, UnicodeError, ValueError, RecursionError) as exc:
        raise ManifestUnreadable(f"{path} is not a readable JSON drill report") from exc
    if not isinstance(document, dict) or document.get("format") != REPORT_FORMAT:
        raise ManifestUnreadable(f"{path} is not an aris3nb drill report")
    version = document.get("format_version")
    if type(version) is not int or version != REPORT_VERSION:
        raise ManifestUnreadable(f"{path} has drill report format_version {repr(version)[:60]}; "
                                 f"this aris3nb reads {REPORT_VERSION}")
    if document.get("status") not in ("PASS", "FAIL") or not isinstance(document.get("checks"), list):
        raise ManifestUnreadable(f"{path} lacks a PASS/FAIL status or its checks")
    for number, check in enumerate(document["checks"]):
        if not (isinstance(check, dict) and isinstance(check.get("name"), str) and check.get("status") in _CHECK_STATUSES
                and isinstance(check.get("detail"), str) and _is_number(check.get("duration_sec"))
                and isinstance(check.get("evidence", {}), dict)):
            raise ManifestUnreadable(f"{path}: check {number} is not a check (name, PASS/FAIL status, detail, "
                                     "duration_sec, evidence)")
    if not isinstance(document.get("reason"), (str, type(None))) or not isinstance(document.get("backup"), str):
        raise ManifestUnreadable(f"{path}: 'backup' or 'reason' is not text")
    return document


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not allowed in a drill report")


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def drills_dir(settings: Settings) -> Path:
    return settings.ops_artifacts_dir / "drills"


def _write_report(report: DrillReport, folder: Path) -> Path:
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S%fZ")
    return write_json_evidence(folder, f"drill_report_{stamp}.json", report.as_document())


class _Stages:
    """Times each stage into the report's RTO, and turns a stage's failure into the reason."""

    def __init__(self, report: DrillReport) -> None:
        self.report = report

    @contextlib.contextmanager
    def stage(self, name: str) -> Iterator[None]:
        started = time.perf_counter()
        try:
            yield
        finally:
            self.report.rto_sec[name] = round(time.perf_counter() - started, 3)

    def check(self, name: str, ok: bool, detail: str, evidence: dict[str, Any], seconds: float) -> bool:
        """Record a check; ``seconds`` is the time of the work that established it."""
        self.report.checks.append(CheckResult(name, Status.PASS if ok else Status.FAIL, detail, round(seconds, 3), evidence))
        return ok


def _timed(work: Callable[..., Any], *args: Any) -> tuple[Any, float]:
    started = time.perf_counter()
    return work(*args), time.perf_counter() - started


def restore_verify(manifest_path: Path, *, settings: Settings, server_url: str | None = None,
                   timeout_sec: float | None = None) -> tuple[DrillReport, Path]:
    """Run the drill; returns the report and its path, or raises ``DrillFailed`` after
    writing the report of a failed drill."""
    if not settings.ops_enable_backup_drill:
        raise DrillDisabled("restore drills are disabled: set OPS_ENABLE_BACKUP_DRILL=true to allow them here")
    deadline = Deadline.after(timeout_sec if timeout_sec is not None else settings.ops_drill_timeout_sec)
    given = Path(manifest_path)
    folder_name = (given.parent if given.suffix == ".json" else given).name  # a manifest, or its folder
    report = DrillReport(backup=folder_name, manifest=str(given), engine=None, started_at=utc_text(dt.datetime.now(dt.UTC)))
    folder = drills_dir(settings) / report.backup
    started = time.perf_counter()
    try:
        _run(given, report, deadline, server_url)
        report.status = "PASS" if all(c.status != "FAIL" for c in report.checks) else "FAIL"
        if report.status == "FAIL" and report.reason is None:
            report.reason = next(c.detail for c in report.checks if c.status == "FAIL")
    except (UsageError, DatabaseUnavailable) as exc:  # could not start as asked, or no server to drill on:
        report.status, report.reason = "FAIL", str(exc)   # exit 2 (as every command), report kept
        raise
    except Aris3nbError as exc:  # DeadlineExceeded among them: its message starts "timeout:"
        report.status, report.reason = "FAIL", str(exc)
    finally:
        report.rto_sec["total"] = round(time.perf_counter() - started, 3)
        report.finished_at = utc_text(dt.datetime.now(dt.UTC))
        path = _write_report(report, folder)
    if report.status != "PASS":
        raise DrillFailed(f"drill of {report.backup} FAILED: {report.reason} (report: {path})", path)
    return report, path


def _run(manifest_path: Path, report: DrillReport, deadline: Deadline, server_url: str | None) -> None:
    stages = _Stages(report)
    with stages.stage("validate"):
        started = time.perf_counter()
        try:
            validation = validate_backup(manifest_path, schema_tables_at)
        except ManifestUnreadable as exc:  # nothing to drill: bad input (exit 2), with its report kept
            stages.check("manifest valid", False, str(exc), {}, time.perf_counter() - started)
            raise
        manifest = validation.manifest
        if isinstance(manifest.document.get("name"), str):
            report.backup = manifest.document["name"]
        if not stages.check(
            "manifest valid", validation.ok,
            f"{validation.files_checked} files, {validation.bytes_checked:,} bytes match the manifest" if validation.ok
            else f"{len(validation.problems)} problem(s): {validation.problems[0]}",
            {"problems": validation.problems}, time.perf_counter() - started,
        ):
            return
    report.engine = manifest.engine
    _rpo(report, manifest)
    deadline.check("validating")
    if manifest.engine == "sqlite":
        scratch = _sqlite_scratch(manifest, stages)
    else:
        if server_url is None or engine_name(server_url) != "postgresql":
            raise UsageError("a PostgreSQL drill needs --database-url (or DATABASE_URL) naming a PostgreSQL server "
                             "to create its scratch database on")
        scratch = _postgres_scratch(manifest, stages, server_url, deadline)
    with scratch as (url, digests_of, structural):
        _verify(manifest, report, stages, deadline, url, digests_of, structural)
        with stages.stage("upgrade"):
            (ok, detail, evidence), seconds = _timed(_upgrade, url)
            stages.check("upgrades to head", ok, detail, evidence, seconds)


@contextlib.contextmanager
def _sqlite_scratch(manifest: Manifest, stages: _Stages) -> Iterator[tuple[str, Any, Any]]:
    with contextlib.ExitStack() as scratch:
        with stages.stage("restore"):
            copy = scratch.enter_context(sqlite.scratch_copy(manifest.folder / sqlite.DATABASE_FILE))
        # The integrity check of the largest table is the drill's critical path: the
        # digests, which finish well before it, give it the CPU when both want it.
        yield (f"sqlite:///{copy}", lambda d, r: sqlite.table_digests(copy, d, r, yield_cpu=True),
               lambda d: sqlite.structural_problems(copy, d))


@contextlib.contextmanager
def _postgres_scratch(manifest: Manifest, stages: _Stages, server_url: str, deadline: Deadline) -> Iterator[tuple[str, Any, Any]]:
    with postgres.scratch_database(server_url, manifest.name, manifest.document["source"].get("schema")) as url:
        with stages.stage("restore"):
            postgres.restore(manifest.folder / postgres.DUMP_DIR, url, deadline, clean=False)
        yield url, lambda d, r: postgres.table_digests(url, d, r), lambda d: postgres.structural_problems(url, d)


def _verify(manifest: Manifest, report: DrillReport, stages: _Stages, deadline: Deadline, url: str,
            digests_of: Callable[[Deadline, dict[str, dict[str, Any]]], dict[str, TableDigest]],
            structural: Callable[[Deadline], list[str]]) -> None:
    with stages.stage("verify"):
        found_revision, seconds = _timed(migrate.current_revision, url)
        stages.check("revision matches", found_revision == manifest.revision,
                     f"restored copy is at {found_revision}, manifest says {manifest.revision}",
                     {"restored": found_revision, "manifest": manifest.revision}, seconds)
        recorded = {t["name"]: t for t in manifest.tables}
        # The integrity and constraint checks read the same copy on their own connection:
        # run them beside the digests (the engines do that work outside the GIL).
        with concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="drill-structure") as beside:
            structure = beside.submit(_timed, structural, deadline)
            found, digest_seconds = _timed(digests_of, deadline, recorded)
            broken, structure_seconds = structure.result()
        _newest_business_timestamp(report, url)
        problems = []
        for name in sorted(set(recorded) | set(found)):
            was, now = recorded.get(name), found.get(name)
            if was is None or now is None:
                problems.append(f"table {name} is {'missing from the restored copy' if now is None else 'not in the manifest'}")
                continue
            if now.rows != was["rows"] or now.digest != was["digest"]:
                problems.append(f"table {name}: {now.rows} rows / {now.digest[:19]}…, manifest {was['rows']} / {was['digest'][:19]}…")
                report.diff.append(_table_diff(manifest.engine, url, name, was, now))
        stages.check(
            "tables match the manifest", not problems,
            f"{len(found)} tables, {sum(t.rows for t in found.values()):,} rows: counts and digests equal" if not problems
            else f"{len(problems)} table(s) differ: {problems[0]}",
            {"tables": {n: {"rows": t.rows, "digest": t.digest} for n, t in found.items()}, "problems": problems},
            digest_seconds)
        stages.check("constraints hold", not broken,
                     "integrity and foreign keys hold" if not broken else f"{len(broken)} problem(s): {broken[0]}",
                     {"problems": broken[:50]}, structure_seconds)


def _upgrade(url: str) -> tuple[bool, str, dict[str, Any]]:
    before = migrate.current_revision(url)
    try:
        migrate.upgrade(url)
    except Aris3nbError as exc:
        return False, f"upgrade from {before} failed: {exc}", {"from": before}
    after = migrate.current_revision(url)
    head = migrate.head_revision()
    return after == head, f"upgraded from {before} to {after} (head {head})", {"from": before, "to": after, "head": head}


def _table_diff(engine: str, url: str, table: str, recorded: dict[str, Any], found: TableDigest) -> dict[str, Any]:
    ranges = differing_ranges(recorded.get("chunks") or [], found.chunks) if recorded.get("chunks") else []
    for item in ranges[:DIFF_RANGES]:
        item["restored_sample"] = _sample(engine, url, table, found.key, item["after_key"], item["up_to_key"])
    return {"table": table, "key": found.key, "rows_recorded": recorded["rows"], "rows_found": found.rows,
            "ranges": ranges[:DIFF_RANGES], "ranges_differing": len(ranges)}


def _sample(engine: str, url: str, table: str, key: list[str], lower: Any, upper: Any) -> list[dict[str, Any]]:
    """Up to SAMPLE_ROWS rows of the restored copy in a differing key range."""
    try:
        if engine == "postgresql":
            rows = postgres.sample_rows(url, table, key, lower, upper, SAMPLE_ROWS)
        else:
            rows = sqlite.sample_rows(sqlite_path(url), table, key, lower, upper, SAMPLE_ROWS)
    except Exception as exc:  # a sample is evidence, not a verdict: say why it is missing
        return [{"sample_unavailable": redact_text(str(exc).splitlines()[0] if str(exc) else type(exc).__name__)}]
    return [{column: _plain(value) for column, value in row.items()} for row in rows]


def _plain(value: Any) -> Any:
    return value if isinstance(value, (int, float, str, bool)) or value is None else str(value)


def _rpo(report: DrillReport, manifest: Manifest) -> None:
    created = manifest.document.get("created_at")
    try:
        moment = dt.datetime.fromisoformat(str(created).replace("Z", "+00:00"))
        report.rpo["backup_created_at"] = created
        report.rpo["backup_age_sec"] = round((dt.datetime.now(dt.UTC) - moment).total_seconds(), 3)
    except ValueError:
        report.rpo["backup_created_at"] = None


def _newest_business_timestamp(report: DrillReport, url: str) -> None:
    """The newest business event in the restored data: how much a restore would lose."""
    db = create_engine(url, poolclass=sa.NullPool)
    newest: str | None = None
    try:
        with db.connect() as conn:
            tables = set(sa.inspect(conn).get_table_names())
            for table, column in BUSINESS_TIMESTAMPS:
                if table in tables:
                    value = conn.exec_driver_sql(f'SELECT MAX("{column}") FROM "{table}"').scalar()
                    if value is not None and (newest is None or str(value) > newest):
                        newest = str(value)
    finally:
        db.dispose()
    report.rpo["newest_business_timestamp"] = newest

