"""The restore drill (``backup restore-verify``): prove a backup by restoring it.

Stages, each timed (RTO): *validate* the backup against its manifest; *restore* it into a
disposable database of the same engine (SQLite: a temporary copy, made while the backup is
validated and removed unused if it is not valid; PostgreSQL: a database created for the drill
and dropped afterwards, even on failure); *verify* the restored copy
(revision, per-table row counts and digests over the manifest's key ranges, SQLite's
integrity and foreign key checks or PostgreSQL's constraints); *upgrade* it to the code's
head. Where a table differs, the drill diff names the changed, missing and extra rows by
key, from the backup's row index (the row digests recorded when the backup was made), with
the restored values and, where the backup's own data still holds them, the recorded ones;
the differing key ranges stay as a summary (a backup without a row index gets the ranges and
a sample of their restored rows). A PostgreSQL chunk recorded as a sketch names up to its
capacity of differing rows; a chunk that differs in more is listed in ``unnamed_chunks`` and
said so in the check's detail, never passed off as fully named (the verdict is the digests').

RPO and RTO are judged: the backup's age against ``rpo_budget_sec`` and the drill's total
time against ``rto_budget_sec``; a budget exceeded is a FAIL check naming it.

With a target profile other than the reference (``backup.profiles``): the expected tables
come from the target's migrations (a revision they do not know is a warning), the upgrade
runs the target's own Alembic in its own interpreter to its head, the restored copy (once
upgraded) is checked with the profile's ``[integrity]`` selection (the export files against
the backup's copy of them), and the newest business activity is read from its
``rpo.sources``. What could not be checked as it should is in the report's ``warnings`` (each
a name and a detail), never silently skipped; the report names the profile.

The report ``drill_report_<timestamp>.json`` is always written, whatever happens; a failed
drill then raises ``DrillFailed`` (exit 1). The source database is never touched.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import datetime as dt
import json
import math
import os
import stat
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from aris3nb import formats, migrate
from aris3nb.backup import postgres, profiles, sqlite
from aris3nb.backup.digest import (
    ROW_INDEX_FILE,
    ChunkRows,
    ChunkSketch,
    Deadline,
    TableDigest,
    compare_rows,
    differing_ranges,
    read_record,
)
from aris3nb.backup.manifest import Fetched, Manifest, validate_backup
from aris3nb.core.checks import CheckResult, Status
from aris3nb.core.db import create_engine, engine_name, sqlite_path
from aris3nb.core.errors import (
    Aris3nbError,
    DatabaseUnavailable,
    DeadlineExceeded,
    DrillDisabled,
    DrillFailed,
    ManifestUnreadable,
    UsageError,
)
from aris3nb.core.files import version_of, write_json_evidence
from aris3nb.core.ids import utc_text
from aris3nb.core.redact import mask_row, redact_text
from aris3nb.core.settings import Settings
from aris3nb.core.words import count, listed
from aris3nb.formats.reading import DocumentInvalid, validate
from aris3nb.targets.profile import LoadedProfile

REPORT_FORMAT = "aris3nb.drill.report"
REPORT_VERSION = 1
DIFF_RANGES = 5
SAMPLE_ROWS = 5
#: Rows named per kind (changed, missing, extra) and table; ``counts`` gives them all.
DIFF_ROWS = 20
#: Timestamps whose newest value says how fresh the backed-up business data is (RPO); a
#: target profile may name others (``restore_verify(business_timestamps=...)``).
BUSINESS_TIMESTAMPS = (
    ("audit_events", "created_at"),
    ("sales", "updated_at"),
    ("transfers", "updated_at"),
    ("payments", "created_at"),
)


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
    rto: dict[str, Any] = field(default_factory=dict)
    finished_at: str | None = None
    profile: dict[str, Any] = field(default_factory=lambda: profiles.profile_evidence(None))
    #: What could not be checked as it should, each ``{"name", "detail"}`` (the drill may still pass).
    warnings: list[dict[str, str]] = field(default_factory=list)

    def warn(self, name: str, detail: str) -> None:
        self.warnings.append({"name": name, "detail": detail})

    def as_document(self) -> dict[str, Any]:
        document = asdict(self)
        document["checks"] = [check.to_dict() for check in self.checks]
        return {"format": REPORT_FORMAT, "version": REPORT_VERSION, **document}


MAX_REPORT_BYTES = 64 * 1024 * 1024


def read_drill_report(path: Path) -> dict[str, Any]:
    """A drill report's document; refuses what is not a version-1 report (exit 2).

    Every field is checked against the model of docs/FORMAT.md §5.2
    (``aris3nb.formats.DrillReport``), so a damaged report is refused in one line naming the
    field rather than breaking whatever displays it.
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
    version = version_of(document)
    if type(version) is not int or version != REPORT_VERSION:
        shown = version if version is None or type(version) is int else f"of type {type(version).__name__}"
        raise ManifestUnreadable(f"{path} has drill report version {shown}; this aris3nb reads {REPORT_VERSION}")
    try:
        validate(formats.DrillReport, document, str(path))
    except DocumentInvalid as exc:  # one line: the report, each field's path, never its value
        raise ManifestUnreadable(str(exc)) from exc
    return document


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not allowed in a drill report")


def drills_dir(settings: Settings) -> Path:
    return settings.artifacts.dir / "drills"


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
        self.report.checks.append(
            CheckResult(name, Status.PASS if ok else Status.FAIL, detail, round(seconds, 3), evidence)
        )
        return ok


def _timed(work: Callable[..., Any], *args: Any) -> tuple[Any, float]:
    started = time.perf_counter()
    return work(*args), time.perf_counter() - started


def restore_verify(
    manifest_path: Path,
    *,
    settings: Settings,
    server_url: str | None = None,
    timeout_sec: float | None = None,
    rpo_budget_sec: float | None = None,
    rto_budget_sec: float | None = None,
    business_timestamps: Sequence[tuple[str, str]] | None = None,
    profile: LoadedProfile | None = None,
    recorded_as: str | None = None,
    fetched: Fetched | None = None,
) -> tuple[DrillReport, Path]:
    """Run the drill; returns the report and its path, or raises ``DrillFailed`` after
    writing the report of a failed drill.

    ``rpo_budget_sec``: the oldest a backup may be when drilled (its age is what a restore
    now would lose; default OPS_RPO_BUDGET_SEC, a day); ``rto_budget_sec``: the longest the
    drill may take, validation to upgrade (default OPS_RTO_BUDGET_SEC, 15 minutes).
    ``business_timestamps``: the (table, column) pairs whose newest value in the
    restored data is reported as the newest business event the backup holds; default: the
    profile's ``rpo.sources`` (each absent one a warning naming it, none declared a warning),
    or for the reference ``BUSINESS_TIMESTAMPS`` (absent ones skipped). ``profile``: the
    target profile (None: the reference; see the module). ``recorded_as``: where the backup
    is, for the report, when ``manifest_path`` is a local copy of it (a bucket's, pulled);
    ``fetched``: what the download of that copy verified and why files are absent (``validate_backup``)."""
    if not settings.backup.drill_enabled:
        raise DrillDisabled("restore drills are disabled: set OPS_ENABLE_BACKUP_DRILL=true to allow them here")
    reference = profiles.is_reference(profile)
    if business_timestamps is None:
        business_timestamps = BUSINESS_TIMESTAMPS if reference else profiles.rpo_sources(profile)  # type: ignore[arg-type]
    rpo_budget_sec = settings.backup.rpo_budget_sec if rpo_budget_sec is None else rpo_budget_sec
    rto_budget_sec = settings.backup.rto_budget_sec if rto_budget_sec is None else rto_budget_sec
    budgets = _Budgets(
        _budget(rpo_budget_sec, "rpo_budget_sec"),
        _budget(rto_budget_sec, "rto_budget_sec"),
        tuple(business_timestamps),
        None if reference else profile,
    )
    seconds = timeout_sec if timeout_sec is not None else settings.backup.drill_timeout_sec
    deadline = Deadline.after(seconds)
    given = Path(manifest_path)
    folder_name = (given.parent if given.suffix == ".json" else given).name  # a manifest, or its folder
    report = DrillReport(
        backup=folder_name,
        manifest=recorded_as or str(given.absolute()),  # absolute: the report is read from elsewhere
        engine=None,
        started_at=utc_text(dt.datetime.now(dt.UTC)),
        profile=profiles.profile_evidence(profile),
    )
    folder = drills_dir(settings) / report.backup
    started = time.perf_counter()
    try:
        with _copy_ahead(given, deadline) as ahead:
            _run(given, report, deadline, server_url, budgets, settings, fetched, ahead)
        _judge_rto(report, budgets, time.perf_counter() - started)
        report.status = "PASS" if all(c.status != "FAIL" for c in report.checks) else "FAIL"
        if report.status == "FAIL" and report.reason is None:
            report.reason = next(c.detail for c in report.checks if c.status == "FAIL")
    except (UsageError, DatabaseUnavailable) as exc:  # could not start as asked, or no server to drill on:
        report.status, report.reason = "FAIL", str(exc)  # exit 2 (as every command), report kept
        raise
    except DeadlineExceeded as exc:  # its message starts "timeout:"; say which deadline and how to move it
        set_by = "--timeout" if timeout_sec is not None else "OPS_DRILL_TIMEOUT_SEC"
        report.status, report.reason = (
            "FAIL",
            (f"{exc} (the drill's deadline: {seconds:g} s, set by {set_by}; a larger backup needs a larger one)"),
        )
    except Aris3nbError as exc:
        report.status, report.reason = "FAIL", str(exc)
    finally:
        report.rto_sec.setdefault("total", round(time.perf_counter() - started, 3))
        report.rto.setdefault("total_sec", report.rto_sec["total"])
        report.rto.setdefault("budget_sec", budgets.rto_sec)
        report.rto.setdefault("status", None)  # not judged: the drill did not get through its stages
        for name, value in (
            ("backup_created_at", None),
            ("backup_age_sec", None),
            ("newest_business_timestamp", None),
            ("budget_sec", budgets.rpo_sec),
            ("status", None),
        ):
            report.rpo.setdefault(name, value)  # status None: the backup failed validation, its age means nothing
        report.finished_at = utc_text(dt.datetime.now(dt.UTC))
        path = _write_report(report, folder)
    if report.status != "PASS":
        raise DrillFailed(
            f"drill of {report.backup} FAILED: {report.reason} (report: {path})", path, report.as_document()
        )
    return report, path


@dataclass(frozen=True)
class _Budgets:
    rpo_sec: float
    rto_sec: float
    business_timestamps: tuple[tuple[str, str], ...]
    profile: LoadedProfile | None = None  # None: the reference


def _budget(value: float, name: str) -> float:
    """A budget is a positive, finite number of seconds; anything else is bad input (exit 2)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < float("inf"):
        raise UsageError(f"{name} must be a positive number of seconds, not {value!r}")
    return float(value)


def _judge_rto(report: DrillReport, budgets: _Budgets, elapsed: float) -> None:
    """The drill's total time against the RTO budget, once every stage ran."""
    if not {"validate", "restore", "verify", "upgrade"} <= set(report.rto_sec):
        return
    total = round(elapsed, 3)
    report.rto_sec["total"] = total
    ok = total <= budgets.rto_sec
    report.rto.update(total_sec=total, budget_sec=budgets.rto_sec, status="PASS" if ok else "FAIL")
    _Stages(report).check(
        "RTO within budget",
        ok,
        f"the drill took {total:,.1f} s, within the RTO budget of {budgets.rto_sec:,.0f} s"
        if ok
        else f"the drill took {total:,.1f} s, over the RTO budget of {budgets.rto_sec:,.0f} s (rto_budget_sec)",
        {"total_sec": total, "budget_sec": budgets.rto_sec},
        0.0,
    )


@dataclass(frozen=True)
class _Ahead:
    """What a SQLite drill begins while the backup is validated: ``copy()`` waits for the
    backup's file copied to the scratch folder and gives its path; ``structure`` is SQLite's
    integrity and foreign key checks of that copy, begun as soon as it is made (broken things,
    seconds)."""

    copy: Callable[[], Path]
    structure: concurrent.futures.Future[tuple[list[str], float]]


@contextlib.contextmanager
def _copy_ahead(manifest_path: Path, deadline: Deadline) -> Iterator[_Ahead | None]:
    """A SQLite backup's file copied to the drill's scratch folder while it is validated (the
    copy and the file's hash on two cores; the restore stage then times what is left of the
    copy), and the copy's structural checks begun once it is made: the integrity check of the
    largest table is the drill's critical path, and it need not wait for the hash. Checking a
    file before its hash is known trusts it no more than the drill does anyway (whoever can
    write the backup's file can write the manifest beside it; SQLite's own advice for a file of
    unknown origin is this very check, on a read-only connection). A backup that fails
    validation, or a drill that stops, has its checks abandoned (interrupted within SQLite's
    next 10,000 steps) and its copy removed unused. Only a regular file is copied before it is
    validated, never what a link points to. None for any other backup."""
    database_file = manifest_path.parent / sqlite.DATABASE_FILE
    try:
        regular = stat.S_ISREG(os.lstat(database_file).st_mode)
    except OSError:
        regular = False
    if not regular:
        yield None
        return
    abandon = threading.Event()
    checking = Deadline(deadline.at, abandon)
    with (
        sqlite.scratch_copy_ahead(database_file) as ready,
        concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="drill-structure") as pool,  # waits on leaving
    ):
        structure = pool.submit(lambda: _timed(sqlite.structural_problems, ready(), checking))
        try:
            yield _Ahead(ready, structure)
        finally:
            abandon.set()  # once taken (the drill's verify), nothing is left to stop


def _run(
    manifest_path: Path,
    report: DrillReport,
    deadline: Deadline,
    server_url: str | None,
    budgets: _Budgets,
    settings: Settings,
    fetched: Fetched | None,
    ahead: _Ahead | None,
) -> None:
    stages = _Stages(report)
    profile = budgets.profile
    with stages.stage("validate"):
        started = time.perf_counter()
        try:
            validation = validate_backup(manifest_path, profiles.schema_tables_for(profile), fetched)
        except ManifestUnreadable as exc:  # nothing to drill: bad input (exit 2), with its report kept
            stages.check("manifest valid", False, str(exc), {}, time.perf_counter() - started)
            raise
        manifest = validation.manifest
        if isinstance(manifest.document.get("name"), str):
            report.backup = manifest.document["name"]
        for warning in validation.warnings:
            report.warn("manifest valid", warning)
        if not stages.check(
            "manifest valid",
            validation.ok,
            f"{validation.files_checked} files, {validation.bytes_checked:,} bytes match the manifest"
            if validation.ok
            else listed(validation.problems),
            {"problems": validation.problems},
            time.perf_counter() - started,
        ):
            return
    report.engine = manifest.engine
    _rpo(report, manifest, budgets, stages)
    deadline.check("validating")
    if manifest.engine == "sqlite":
        scratch = _sqlite_scratch(manifest, stages, ahead)
    else:
        if server_url is None or engine_name(server_url) != "postgresql":
            raise UsageError(
                "a PostgreSQL drill needs --database-url (or DATABASE_URL) naming a PostgreSQL server "
                "to create its scratch database on"
            )
        scratch = _postgres_scratch(manifest, stages, server_url, deadline)
    with scratch as restored:
        _verify(manifest, report, stages, deadline, restored, budgets)
        with stages.stage("upgrade"):
            if profile is None:
                (ok, detail, evidence), seconds = _timed(_upgrade, restored.url)
            else:
                (ok, detail, evidence), seconds = _timed(_upgrade_target, restored.url, profile, deadline)
            stages.check("upgrades to head", ok, detail, evidence, seconds)
        if profile is not None:
            deadline.check("upgrading")
            with stages.stage("integrity"):
                _integrity(
                    manifest,
                    report,
                    stages,
                    restored.url,
                    profile,
                    drills_dir(settings) / report.backup,
                    deadline,
                    settings.integrity.statement_timeout_sec,
                )


@dataclass
class _Restored:
    """The drill's restored copy and how to read it: ``digests(deadline, recorded)``,
    ``structural(deadline)``, and for the diff ``rows(table, keys)`` (restored rows by key,
    with their row digests) and ``backup_rows(table, keys, deadline)`` (the same rows as the
    backup's own data holds them: the SQLite file, or the PostgreSQL dump's table data)."""

    url: str
    digests: Callable[[Deadline, dict[str, dict[str, Any]]], dict[str, TableDigest]]
    structural: Callable[[Deadline], list[str]]
    rows: Callable[[str, list[list[Any]]], dict[str, tuple[dict[str, Any], bytes]]]
    backup_rows: Callable[[str, list[list[Any]], Deadline], dict[str, tuple[dict[str, Any], bytes]]]
    unkeyed_rows: Callable[[str, set[bytes]], dict[bytes, dict[str, Any]]]
    structure_ahead: concurrent.futures.Future[tuple[list[str], float]] | None = None  # ``_Ahead.structure``


@contextlib.contextmanager
def _sqlite_scratch(manifest: Manifest, stages: _Stages, ahead: _Ahead | None) -> Iterator[_Restored]:
    """The restored copy: ``ahead``'s (the backup's file, copied while it was validated, its
    structural checks under way) when given, else a copy made now."""
    backup_file = manifest.folder / sqlite.DATABASE_FILE
    # Row digests are computed by the method each table's digests were recorded with.
    methods = {t.get("name"): t.get("digest_method") for t in manifest.document["tables"] if isinstance(t, dict)}
    with contextlib.ExitStack() as scratch:
        with stages.stage("restore"):
            copy = ahead.copy() if ahead else scratch.enter_context(sqlite.scratch_copy(backup_file))
        # The integrity check of the largest table is the drill's critical path: the
        # digests, which finish well before it, give it the CPU when both want it.
        yield _Restored(
            f"sqlite:///{copy}",
            lambda d, r: sqlite.table_digests(copy, d, r, yield_cpu=True),
            lambda d: sqlite.structural_problems(copy, d),
            lambda table, keys: sqlite.rows_by_key(copy, table, keys, method=methods.get(table)),
            lambda table, keys, _d: sqlite.rows_by_key(
                backup_file, table, keys, immutable=True, method=methods.get(table)
            ),
            lambda table, digests: {},
            ahead.structure if ahead else None,
        )


@contextlib.contextmanager
def _postgres_scratch(manifest: Manifest, stages: _Stages, server_url: str, deadline: Deadline) -> Iterator[_Restored]:
    dump = manifest.folder / postgres.DUMP_DIR
    schema = manifest.document["source"].get("schema")
    with postgres.scratch_database(server_url, manifest.name, schema) as url:
        with stages.stage("restore"):
            postgres.restore(dump, url, deadline, clean=False)
        yield _Restored(
            url,
            lambda d, r: postgres.table_digests(url, d, r),
            lambda d: postgres.structural_problems(url, d),
            lambda table, keys: postgres.rows_by_key(url, table, keys),
            lambda table, keys, d: postgres.dump_rows_by_key(dump, url, table, keys, d),
            lambda table, digests: postgres.rows_by_digest(url, table, digests),
        )


def _verify(
    manifest: Manifest, report: DrillReport, stages: _Stages, deadline: Deadline, restored: _Restored, budgets: _Budgets
) -> None:
    with stages.stage("verify"):
        found_revision, seconds = _timed(migrate.current_revision, restored.url)
        stages.check(
            "revision matches",
            found_revision == manifest.revision,
            f"restored copy is at {found_revision}, manifest says {manifest.revision}",
            {"restored": found_revision, "manifest": manifest.revision},
            seconds,
        )
        recorded = {t["name"]: t for t in manifest.tables}
        # The integrity and constraint checks read the same copy on their own connection:
        # run them beside the digests (the engines do that work outside the GIL).
        with concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="drill-structure") as beside:
            structure = restored.structure_ahead or beside.submit(_timed, restored.structural, deadline)
            found, digest_seconds = _timed(restored.digests, deadline, recorded)
            broken, structure_seconds = structure.result()
        _newest_business_timestamp(report, restored.url, budgets.business_timestamps, warn=budgets.profile is not None)
        problems = []
        excluded = set(manifest.document.get("excluded_tables") or ()) - set(recorded)
        for name in sorted(excluded & set(found)):
            if found[name].rows:  # its rows are left out of backups: the restored copy has the table, empty
                problems.append(
                    f"table {name} is excluded from backups, yet the restored copy holds {found[name].rows} rows of it"
                )
        for name in sorted((set(recorded) | set(found)) - excluded):
            was, now = recorded.get(name), found.get(name)
            if was is None or now is None:
                problems.append(
                    f"table {name} is {'missing from the restored copy' if now is None else 'not in the manifest'}"
                )
                continue
            if now.rows != was["rows"] or now.digest != was["digest"]:
                problems.append(
                    f"table {name}: {now.rows} rows / {now.digest[:19]}…, "
                    f"manifest {was['rows']} / {was['digest'][:19]}…"
                )
                entry = _table_diff(manifest, restored, name, was, now, deadline)
                report.diff.append(_masked(entry, name, profiles.redacted_columns(budgets.profile)))
        stages.check(
            "tables match the manifest",
            not problems,
            f"{len(found)} tables, {sum(t.rows for t in found.values()):,} rows: counts and digests equal"
            if not problems
            else f"{count(len(problems), 'table')} {'differs' if len(problems) == 1 else 'differ'}: "
            f"{problems[0]}{_named(report.diff)}",
            {"tables": {n: {"rows": t.rows, "digest": t.digest} for n, t in found.items()}, "problems": problems},
            digest_seconds,
        )
        stages.check(
            "constraints hold",
            not broken,
            "integrity and foreign keys hold" if not broken else listed(broken),
            # begun during validation: its seconds overlap the validate and restore stages
            {"problems": broken[:50], "begun_during_validation": restored.structure_ahead is not None},
            structure_seconds,
        )


def _named(diff: list[dict[str, Any]]) -> str:
    """The first rows the diff names, for the check's one line ("; changed stock_items id=1234"),
    and the chunks whose rows it could not all name."""
    return _first_named(diff) + _unnamed(diff)


def _first_named(diff: list[dict[str, Any]]) -> str:
    for table in diff:
        for kind in ("changed", "missing", "extra"):
            for row in table.get(kind) or []:
                key = row.get("key")
                where = (
                    ", ".join(f"{c}={v}" for c, v in zip(table.get("key") or [], key or [], strict=False))
                    if key
                    else f"digest {row.get('recorded_digest') or row.get('restored_digest')}"
                )
                counts = table.get("counts") or {}
                rest = sum(counts.values()) - 1
                return f"; {kind} {table['table']} {where}" + (f" and {count(rest, 'more row')}" if rest > 0 else "")
    return ""


def _unnamed(diff: list[dict[str, Any]]) -> str:
    """("; NOT ALL ROWS NAMED in 2 key ranges of stock_items ...")."""
    tables = [table for table in diff if table.get("unnamed_chunks")]
    if not tables:
        return ""
    ranges = ", ".join(f"{count(len(t['unnamed_chunks']), 'key range')} of {t['table']}" for t in tables)
    capacity = max(c["capacity"] for t in tables for c in t["unnamed_chunks"])
    return (
        f"; NOT ALL ROWS NAMED in {ranges}: more rows differ there than the row index could name "
        f"(its sketch names up to {capacity} a range; the report's unnamed_chunks)"
    )


def _remaining(deadline: Deadline, default: float) -> float:
    """What is left of the drill's deadline for one bounded step (at least a second)."""
    left = deadline.remaining()
    return default if left is None else max(1.0, min(default, left))


def _upgrade_target(url: str, profile: LoadedProfile, deadline: Deadline) -> tuple[bool, str, dict[str, Any]]:
    """The restored copy upgraded to the target's head by the target's own Alembic, in its
    own interpreter (within the drill's deadline); an error is a FAIL with its one-line reason."""
    from aris3nb.targets.code import MIGRATE_TIMEOUT_SEC, ProbedCode, target_code

    before = None
    try:
        before = migrate.current_revision(url)
        code = target_code(profile)
        head = code.head_revision()
        if isinstance(code, ProbedCode):
            code.upgrade(url, "head", timeout=_remaining(deadline, MIGRATE_TIMEOUT_SEC))
        else:
            code.upgrade(url, "head")
        after = migrate.current_revision(url)
    except Aris3nbError as exc:
        reason = redact_text(str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__)
        return False, f"upgrade from {before} failed: {reason}", {"from": before, "profile": profile.profile.name}
    return (
        after == head,
        f"{_upgraded(before, after, head)} (head of {profile.profile.name})",
        {"from": before, "to": after, "head": head, "profile": profile.profile.name},
    )


def _upgraded(before: str | None, after: str | None, head: str | None) -> str:
    """What ``upgrade head`` did to the restored copy, in words: nothing to do is not an upgrade."""
    if before == after == head:
        return f"already at head {head}: nothing to upgrade"
    if before == after:
        return f"not upgraded: still at {before}, the head is {head}"
    return f"upgraded from {before} to {after}" + ("" if after == head else f", not the head {head}")


#: The drill's check of the restored copy against the profile's [integrity] selection.
INTEGRITY_CHECK = "business invariants hold"


def _integrity(
    manifest: Manifest,
    report: DrillReport,
    stages: _Stages,
    url: str,
    profile: LoadedProfile,
    folder: Path,
    deadline: Deadline,
    statement_timeout_sec: float,
) -> None:
    """The profile's ``[integrity]`` checks on the restored (and upgraded) copy, the export
    files against the backup's copy of them: an error-severity violation FAILs the drill;
    warnings and checks that were not applicable are the report's warnings."""
    from aris3nb.core.checks import Status, Verdict
    from aris3nb.integrity import IntegrityOptions, checks_from_toml, run_integrity_check

    started = time.perf_counter()
    try:
        selection = checks_from_toml(
            profile.profile.integrity.model_dump(),
            base_dir=profile.root,
            where=f"{profile.path or profile.profile.name} [integrity]",
        )
        if not (selection.builtin or selection.sql or selection.files or selection.plugins):
            report.warn(
                INTEGRITY_CHECK,
                f"profile {profile.profile.name} declares no [integrity] checks: the restored "
                "data's business rules were not checked",
            )
            return
        options = IntegrityOptions(
            database_url=url,
            exports_dir=manifest.folder / "exports",
            missing_exports_hint="the backup was made without its export files: give backup create --exports-dir, "
            "or the profile's backup.exports_dir",
            statement_timeout_sec=_remaining(deadline, statement_timeout_sec),
            profile=profile.as_evidence(),  # the report names the profile whose checks it ran
        ).with_selection(selection)
        integrity = run_integrity_check(options, artifacts_dir=folder)
    except Aris3nbError as exc:
        reason = redact_text(str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__)
        stages.check(
            INTEGRITY_CHECK,
            False,
            f"the integrity check of the restored copy could not run: {reason}",
            {"profile": profile.profile.name},
            time.perf_counter() - started,
        )
        return
    failing = [r for r in integrity.results if r.status is Status.FAIL]
    for result in integrity.results:
        if result.status is Status.WARN:
            report.warn(INTEGRITY_CHECK, f"{result.name}: {result.detail}")
    counts = {str(s): sum(1 for r in integrity.results if r.status is s) for s in Status}
    evidence: dict[str, Any] = {
        "profile": profile.profile.name,
        "report": str(integrity.path),
        "verdict": str(integrity.verdict),
        "counts": counts,
        "failing": [{"name": r.name, "detail": r.detail, "evidence": r.evidence} for r in failing[:10]],
    }
    ok = integrity.verdict is not Verdict.FAIL
    checked = f"{len(integrity.results)} checks of profile {profile.profile.name}"
    if ok:
        vacuous = sum(1 for r in integrity.results if r.status is Status.PASS and r.evidence.get("vacuous"))
        detail = (
            f"{checked}: {counts['PASS']} passed"
            + (f" ({vacuous} only vacuously: their tables hold no rows)" if vacuous else "")
            + (f", {counts['WARN']} warned (see the report's warnings)" if counts["WARN"] else "")
        )
        evidence["vacuous"] = vacuous
    elif failing:
        detail = f"{len(failing)} of {checked} failed: {failing[0].name}: {failing[0].detail}"
    else:
        detail = f"{checked}: verdict {integrity.verdict}"
    stages.check(INTEGRITY_CHECK, ok, detail, evidence, time.perf_counter() - started)


def _upgrade(url: str) -> tuple[bool, str, dict[str, Any]]:
    before = migrate.current_revision(url)
    try:
        migrate.upgrade(url)
    except Aris3nbError as exc:
        return False, f"upgrade from {before} failed: {exc}", {"from": before}
    after = migrate.current_revision(url)
    head = migrate.head_revision()
    return after == head, _upgraded(before, after, head), {"from": before, "to": after, "head": head}


def _table_diff(
    manifest: Manifest,
    restored: _Restored,
    table: str,
    recorded: dict[str, Any],
    found: TableDigest,
    deadline: Deadline,
) -> dict[str, Any]:
    """How a table differs: the key ranges (a summary), and from the row index the rows by
    key; without an index (older backups), a sample of the restored rows of each range."""
    chunks = recorded.get("chunks") or []
    ranges = differing_ranges(chunks, found.chunks) if chunks and len(chunks) == len(found.chunks) else []
    entry: dict[str, Any] = {
        "table": table,
        "key": found.key,
        "rows_recorded": recorded["rows"],
        "rows_found": found.rows,
        "ranges": ranges[:DIFF_RANGES],
        "ranges_differing": len(ranges),
    }
    indexed = [r for r in ranges if isinstance(chunks[r["chunk"]].get("index"), list)]
    if not indexed:
        for item in entry["ranges"]:
            item["restored_sample"] = _sample(
                manifest.engine, restored.url, table, found.key, item["after_key"], item["up_to_key"]
            )
        return entry
    try:
        entry.update(_rows_diff(manifest, restored, table, chunks, found, indexed, deadline))
    except Aris3nbError as exc:  # the rows are evidence, not the verdict (the digests gave it): say why
        entry["rows_unavailable"] = redact_text(str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
    return entry


def _rows_diff(
    manifest: Manifest,
    restored: _Restored,
    table: str,
    chunks: list[dict[str, Any]],
    found: TableDigest,
    ranges: list[dict[str, Any]],
    deadline: Deadline,
) -> dict[str, Any]:
    index_file = manifest.folder / str((manifest.document.get("row_index") or {}).get("path") or ROW_INDEX_FILE)
    counts = {"changed": 0, "missing": 0, "extra": 0}
    named: dict[str, list[tuple[Any, bytes | None, bytes | None]]] = {"changed": [], "missing": [], "extra": []}
    unexplained = []
    unnamed = []
    for item in ranges:
        deadline.check(f"comparing the rows of {table} with the row index")
        was = read_record(index_file, chunks[item["chunk"]]["index"])
        now = found.rows_of.get(item["chunk"], ChunkRows([] if was.keyed else None, b""))
        differences = compare_rows(was, now)
        for kind in counts:
            rows = getattr(differences, kind)
            counts[kind] += len(rows)
            named[kind] += rows[: DIFF_ROWS - len(named[kind])]
        if not differences:
            unexplained.append(item["chunk"])
        elif differences.unnamed and isinstance(was, ChunkSketch):
            # More rows differ than the chunk's sketch can name: the counts are those it named.
            unnamed.append(
                {
                    **item,
                    "capacity": was.capacity,
                    "rows_named": sum(len(getattr(differences, kind)) for kind in counts),
                    "rows_unnamed_at_least": differences.unnamed,
                }
            )
    result: dict[str, Any] = {"counts": counts, "shown_per_kind": DIFF_ROWS}
    if unexplained:
        result["unexplained_chunks"] = unexplained  # digest differs, yet every row digest matches the index
    if unnamed:
        result["unnamed_chunks"] = unnamed
    keys = [k for kind in named for k, _, _ in named[kind] if k is not None]
    restored_rows = restored.rows(table, keys) if keys else {}
    backup_rows = restored.backup_rows(table, keys, deadline) if keys else {}
    unkeyed = [d for kind in named for k, was, now in named[kind] if k is None for d in (was, now) if d]
    by_digest = restored.unkeyed_rows(table, set(unkeyed)) if unkeyed else {}
    for kind, rows in named.items():
        result[kind] = [
            _named_row(kind, key, was, now, restored_rows, backup_rows, by_digest) for key, was, now in rows
        ]
    return result


def _named_row(
    kind: str,
    key: list[Any] | None,
    was: bytes | None,
    now: bytes | None,
    restored_rows: dict[str, tuple[dict[str, Any], bytes]],
    backup_rows: dict[str, tuple[dict[str, Any], bytes]],
    by_digest: dict[bytes, dict[str, Any]],
) -> dict[str, Any]:
    """One named row: its key, the restored values, the digest recorded for it when the
    backup was made, and what the backup's own data holds for it (its values only where
    they still match that recorded digest: otherwise they are not the recorded row)."""
    token = json.dumps(key, ensure_ascii=False) if key is not None else None
    found = restored_rows.get(token) if token is not None else None
    restored_values = found[0] if found is not None else by_digest.get(now or b"")
    row: dict[str, Any] = {
        "key": key,
        "restored": _plain_row(restored_values) if kind != "missing" and restored_values is not None else None,
        "recorded_digest": was.hex() if was else None,
        "restored_digest": now.hex() if now else None,
        "recorded": None,
    }
    in_backup = backup_rows.get(token) if token is not None else None
    if key is None:
        row["backup_data"] = (
            "a table without a primary key: rows are matched by their digest, so a changed row "
            "shows as one missing and one extra"
        )
    elif in_backup is None:
        row["backup_data"] = {
            "changed": "has no such row",
            "missing": "no longer holds it: removed after the backup was made",
            "extra": "does not hold it either: added after the backup was made",
        }[kind]
    elif was is not None and in_backup[1] == was:
        row["recorded"] = _plain_row(in_backup[0])
        row["backup_data"] = "holds the recorded row (its digest matches the index): the restore " + (
            "changed it" if kind == "changed" else "lost it"
        )
    elif now is not None and in_backup[1] == now:
        row["backup_data"] = (
            "holds the restored values, not the recorded row: the backup was changed after it was made"
            if kind == "changed"
            else "holds it, but the row index does not: it was added to the backup after it was made"
        )
    else:
        row["backup_data"] = "holds other values, matching neither the recorded nor the restored digest"
    return row


def _masked(entry: dict[str, Any], table: str, also: frozenset[str]) -> dict[str, Any]:
    """A table's diff with the value of every secret column masked (``mask_row``): the rows it
    shows, named or sampled, go into reports, notebooks and pages."""

    def mask(row: Any) -> Any:
        return mask_row(table, row, also) if isinstance(row, dict) else row

    for kind in ("changed", "missing", "extra"):
        for row in entry.get(kind) or []:
            row["restored"], row["recorded"] = mask(row.get("restored")), mask(row.get("recorded"))
    for item in entry.get("ranges") or []:
        if "restored_sample" in item:
            item["restored_sample"] = [mask(row) for row in item["restored_sample"]]
    return entry


def _plain_row(values: dict[str, Any]) -> dict[str, Any]:
    return {str(column): _plain(value) for column, value in values.items()}


def _sample(engine: str, url: str, table: str, key: list[str], lower: Any, upper: Any) -> list[dict[str, Any]]:
    """Up to SAMPLE_ROWS rows of the restored copy in a differing key range."""
    try:
        if engine == "postgresql":
            rows = postgres.sample_rows(url, table, key, lower, upper, SAMPLE_ROWS)
        else:
            rows = sqlite.sample_rows(sqlite_path(url), table, key, lower, upper, SAMPLE_ROWS)
    except Exception as exc:  # noqa: BLE001 -- a sample is evidence, not a verdict: say why it is missing
        return [{"sample_unavailable": redact_text(str(exc).splitlines()[0] if str(exc) else type(exc).__name__)}]
    return [{column: _plain(value) for column, value in row.items()} for row in rows]


def _plain(value: Any) -> Any:
    if isinstance(value, (bytes, bytearray, memoryview)):
        return "x" + bytes(value).hex()
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)  # JSON has no NaN or infinity
    return value if isinstance(value, (int, float, str, bool)) or value is None else str(value)


def _rpo(report: DrillReport, manifest: Manifest, budgets: _Budgets, stages: _Stages) -> None:
    """The backup's age (what a restore now would lose) against the RPO budget."""
    created = manifest.document.get("created_at")
    report.rpo.update(
        backup_created_at=created if isinstance(created, str) else None,
        backup_age_sec=None,
        newest_business_timestamp=None,
        budget_sec=budgets.rpo_sec,
        status=None,
    )
    try:
        moment = dt.datetime.fromisoformat(str(created))
        if moment.tzinfo is None:
            raise ValueError("no time zone")
    except ValueError:
        stages.check(
            "RPO within budget",
            False,
            f"the backup's created_at {str(created)[:40]!r} is not an ISO 8601 "
            "time with a zone: its age cannot be judged",
            {"budget_sec": budgets.rpo_sec},
            0.0,
        )
        report.rpo["status"] = "FAIL"
        return
    age = round((dt.datetime.now(dt.UTC) - moment).total_seconds(), 3)
    ok = age <= budgets.rpo_sec
    report.rpo.update(backup_age_sec=age, status="PASS" if ok else "FAIL")
    stages.check(
        "RPO within budget",
        ok,
        f"the backup is {_duration(age)} old, within the RPO budget of {_duration(budgets.rpo_sec)}"
        if ok
        else f"the backup is {_duration(age)} old, over the RPO budget of {_duration(budgets.rpo_sec)} "
        "(rpo_budget_sec)",
        {"backup_age_sec": age, "budget_sec": budgets.rpo_sec},
        0.0,
    )


def _duration(seconds: float) -> str:
    for unit, size in (("d", 86_400), ("h", 3_600), ("min", 60)):
        if abs(seconds) >= size:
            return f"{seconds / size:,.1f} {unit} ({seconds:,.0f} s)"
    return f"{seconds:,.1f} s"


#: The name the RPO's warnings go under.
RPO_SOURCES = "RPO business timestamps"


def _newest_business_timestamp(
    report: DrillReport, url: str, columns: Sequence[tuple[str, str]], *, warn: bool = False
) -> None:
    """The newest business event in the restored data: how much a restore would lose.
    Tables or columns the target does not have are skipped; with ``warn`` (a profile's
    declared sources) each is a warning naming it, and no source declared is one too."""
    if warn:
        report.rpo["sources"] = [f"{table}.{column}" for table, column in columns]
        if not columns:
            report.rpo["newest_business_timestamp_note"] = "no business timestamp sources declared"
            report.warn(
                RPO_SOURCES,
                "no business timestamp sources declared (profile [[rpo.sources]]): the newest "
                "business activity the backup holds is unknown",
            )
    db = create_engine(url, poolclass=sa.NullPool)
    newest: str | None = None
    try:
        with db.connect() as conn:
            inspector = sa.inspect(conn)
            tables = set(inspector.get_table_names())
            for table, column in columns:
                if table not in tables or column not in {c["name"] for c in inspector.get_columns(table)}:
                    if warn:
                        missing = f"table {table}" if table not in tables else f"column {table}.{column}"
                        report.warn(
                            RPO_SOURCES,
                            f"RPO source {table}.{column}: {missing} is not in the restored copy; it was not read",
                        )
                    continue
                value = conn.execute(sa.select(sa.func.max(sa.column(column))).select_from(sa.table(table))).scalar()
                if value is not None and (newest is None or str(value) > newest):
                    newest = str(value)
    finally:
        db.dispose()
    report.rpo["newest_business_timestamp"] = newest
