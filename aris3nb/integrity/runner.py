"""Running the integrity check: the selected invariants on one read-only snapshot, and the
JSON report.

Read-only by construction: SQLite is opened with ``mode=ro`` (a missing file is an error,
never created); PostgreSQL runs one ``REPEATABLE READ`` transaction that is ``READ ONLY``
(``default_transaction_read_only`` and ``SET TRANSACTION READ ONLY``). Every check reads
the same snapshot, inside a savepoint of that one transaction, under a statement timeout.

What runs: the built-in sets named in ``builtin`` (default: ``reference``), then the SQL
checks, the file checks and the plug-ins, in that order. A check whose tables or columns are
absent is NOT APPLICABLE: a WARN with the reason, counted apart in the report's
``not_applicable``. Under ``strict`` a WARN fails the run, a not-applicable check too: the
strict run promises the selected rules were checked, so select the rules that fit the target
(its profile's ``[integrity]``) rather than let them pass unchecked.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from aris3nb.core.checks import SAMPLE_LIMIT, CheckResult, verdict_of
from aris3nb.core.db import database_errors, engine_name
from aris3nb.core.errors import DatabaseUnavailable, UsageError
from aris3nb.core.files import require_writable_folder, write_json_evidence
from aris3nb.core.ids import RUN_ID_PATTERN, new_run_id
from aris3nb.core.redact import redact_url, url_password
from aris3nb.core.report import CheckReport, check_report_head, read_json_evidence, scrub
from aris3nb.core.settings import IntegritySettings, default_of
from aris3nb.integrity.declarative import (
    FileCheck,
    IntegritySelection,
    SqlCheck,
    checks_from_toml,
    file_invariant,
    sql_invariant,
)
from aris3nb.integrity.invariants import (
    IntegrityContext,
    Invariant,
    LiveSchema,
    builtin_set,
    is_not_applicable,
    registry_of,
)
from aris3nb.integrity.plugins import plugin_invariant
from aris3nb.schema import read_only_engine

if TYPE_CHECKING:
    from aris3nb.targets.profile import LoadedProfile

INTEGRITY_REPORT_FORMAT = "aris3nb.integrity_report"
INTEGRITY_REPORT_VERSION = 1
INTEGRITY_FOLDER = "integrity"


@dataclass(frozen=True)
class IntegrityOptions:
    """One integrity run: the database, the exports folder, and which checks to run.

    ``builtin`` names built-in invariant sets (``()`` runs none); ``sql_checks`` and
    ``file_checks`` are ``SqlCheck`` / ``FileCheck`` models (or mappings of their fields);
    ``plugins`` names entry points of the group ``aris3nb.invariants``."""

    database_url: str
    exports_dir: Path
    #: What a check says to do when ``exports_dir`` does not exist (a drill: how backups get one).
    missing_exports_hint: str = "give --exports-dir"
    strict: bool = False
    idempotency_max_age_sec: float = default_of(IntegritySettings, "idempotency_max_age_sec")
    statement_timeout_sec: float = default_of(IntegritySettings, "statement_timeout_sec")
    now: dt.datetime | None = None  # the moment ages are measured from (tests); default: now
    builtin: Sequence[str] = ("reference",)
    sql_checks: Sequence[SqlCheck | Mapping[str, Any]] = ()
    file_checks: Sequence[FileCheck | Mapping[str, Any]] = ()
    plugins: Sequence[str] = ()
    #: The target profile whose ``[integrity]`` was selected (``LoadedProfile.as_evidence()``).
    profile: Mapping[str, Any] = dataclasses.field(
        default_factory=lambda: {"name": "reference", "path": None, "sha256": None}
    )

    def with_selection(self, selection: IntegritySelection) -> IntegrityOptions:
        """These options running what a profile's ``[integrity]`` table selects."""
        return dataclasses.replace(
            self,
            builtin=selection.builtin,
            sql_checks=selection.sql,
            file_checks=selection.files,
            plugins=selection.plugins,
        )

    def for_profile(self, loaded: LoadedProfile) -> IntegrityOptions:
        """These options running what the target profile's ``[integrity]`` selects (the
        built-in reference profile: the reference invariants, as without a profile)."""
        if loaded.is_reference:
            return self
        selection = checks_from_toml(loaded.profile.integrity, base_dir=loaded.root, where=f"{loaded.label} integrity")
        from aris3nb.targets.revision import cached_code_revision

        return dataclasses.replace(
            self.with_selection(selection),
            profile={**loaded.as_evidence(), "code_revision": cached_code_revision(loaded)},
        )

    def selection(self) -> IntegritySelection:
        """The checks these options select, validated (``UsageError`` naming a bad field)."""

        def plain(check: SqlCheck | Mapping[str, Any]) -> Any:
            return check.model_dump() if isinstance(check, SqlCheck) else check

        # A FileCheck is a SqlCheck too: wherever it was given, it checks files.
        sql = [c for c in self.sql_checks if not isinstance(c, FileCheck)]
        files = [*self.file_checks, *(c for c in self.sql_checks if isinstance(c, FileCheck))]
        return checks_from_toml(
            {
                "builtin": list(self.builtin),
                "plugins": list(self.plugins),
                "sql": [plain(c) for c in sql],
                "files": [plain(c) for c in files],
            },
            where="options",
        )


class IntegrityReport(CheckReport):
    """The integrity check's run; its document is the integrity report."""

    @property
    def report(self) -> dict[str, Any]:
        return self.document

    @property
    def report_path(self) -> Path:
        return self.path

    @property
    def not_applicable(self) -> list[CheckResult]:
        """The checks that could not judge this database (WARN, ``evidence.not_applicable``)."""
        return [result for result in self.results if is_not_applicable(result)]


def selected_invariants(selection: IntegritySelection) -> list[Invariant]:
    """Built-in sets, SQL checks, file checks, then plug-ins; ``UsageError`` when nothing is
    selected (a run that checks nothing must not pass)."""
    invariants: list[Invariant] = [invariant for name in selection.builtin for invariant in builtin_set(name)]
    invariants += [sql_invariant(check) for check in selection.sql]
    invariants += [file_invariant(check) for check in selection.files]
    invariants += [plugin_invariant(name) for name in selection.plugins]
    if not invariants:
        raise UsageError(
            "no integrity check is selected: name a built-in set (e.g. reference), SQL or file checks, or plug-ins"
        )
    return invariants


def read_integrity_report(path: Path) -> dict[str, Any]:
    """An integrity report written by ``run_integrity_check``; unknown formats and versions are refused."""
    from aris3nb.formats.reading import validate
    from aris3nb.formats.reports import IntegrityReport

    return read_json_evidence(
        path,
        format_name=INTEGRITY_REPORT_FORMAT,
        versions=[INTEGRITY_REPORT_VERSION],
        check=lambda document, where: validate(IntegrityReport, document, where),
    )


@contextlib.contextmanager
def read_only_snapshot(database_url: str, statement_timeout_sec: float) -> Iterator[sa.Connection]:
    """One read-only transaction on the database (see the module docstring); rolled back at the end."""
    engine = read_only_engine(database_url, statement_timeout_sec=statement_timeout_sec)
    try:
        with database_errors(database_url, "open the database read-only"):
            conn = engine.connect()
        try:
            with database_errors(database_url, "start a read-only transaction"):
                conn.begin()
                if conn.dialect.name == "postgresql":
                    conn.exec_driver_sql("SET TRANSACTION READ ONLY")
                    conn.execute(sa.text("SELECT 1"))
                else:
                    _opens_as_sqlite(conn, database_url)
            yield conn
        finally:
            conn.rollback()
            conn.close()
    finally:
        engine.dispose()


def _opens_as_sqlite(conn: sa.Connection, database_url: str) -> None:
    """Read the file's header: a file that is not a database cannot be opened (exit 2, once),
    rather than every check failing on it."""
    try:
        conn.exec_driver_sql("SELECT count(*) FROM sqlite_master")
    except sa.exc.DatabaseError as exc:
        reason = str(exc.orig or exc).splitlines()[0]
        raise DatabaseUnavailable(f"cannot open {redact_url(database_url)}: {reason}") from exc


def run_integrity_check(
    options: IntegrityOptions,
    *,
    artifacts_dir: Path,
    on_result: Callable[[CheckResult], None] | None = None,
    run_id: str | None = None,
    folder: Path | None = None,
) -> IntegrityReport:
    """Run the selected invariants on one read-only snapshot and write the JSON report —
    ``integrity_report_<run id>.json`` in ``artifacts_dir/integrity``, or in ``folder`` (a
    phase's folder of a run's bundle) named after ``run_id`` (the run's one id) when given.

    Raises ``UsageError`` (exit 2) for a selection that is invalid or empty, and
    ``DatabaseUnavailable`` / ``InvalidDatabaseUrl`` (exit 2) when the database cannot be
    opened; a violated or not-applicable invariant is in the verdict, not an exception.
    """
    engine = engine_name(options.database_url)
    selection = options.selection()
    registry = registry_of(selected_invariants(selection))
    folder = folder or artifacts_dir / INTEGRITY_FOLDER
    require_writable_folder(folder, "the integrity report")
    if run_id is not None and not RUN_ID_PATTERN.match(run_id):
        raise UsageError(f"{run_id[:80]!r} is not a run id (YYYYMMDDTHHMMSSZ-xxxxxx)")
    run_id = run_id or new_run_id()
    started = dt.datetime.now(dt.UTC)
    now = options.now or started
    with read_only_snapshot(options.database_url, options.statement_timeout_sec) as conn:
        results = registry.run(IntegrityContext(conn, options, now, LiveSchema(conn)), on_result)
    finished = dt.datetime.now(dt.UTC)
    verdict = verdict_of(results, strict=options.strict)
    report_name = f"integrity_report_{run_id}.json"
    not_applicable = [result.name for result in results if is_not_applicable(result)]
    document = {
        **check_report_head(
            INTEGRITY_REPORT_FORMAT, INTEGRITY_REPORT_VERSION, run_id, started, finished, results, strict=options.strict
        ),
        "not_applicable": {"count": len(not_applicable), "checks": not_applicable},
        "inputs": {
            "database_url": redact_url(options.database_url),
            "engine": engine,
            "read_only": "SQLite mode=ro" if engine == "sqlite" else "PostgreSQL READ ONLY REPEATABLE READ transaction",
            "exports_dir": str(options.exports_dir),
            "idempotency_max_age_sec": options.idempotency_max_age_sec,
            "statement_timeout_sec": options.statement_timeout_sec,
            "sample_limit": SAMPLE_LIMIT,
            "selection": {
                "builtin": list(selection.builtin),
                "sql": [check.name for check in selection.sql],
                "files": [check.name for check in selection.files],
                "plugins": list(selection.plugins),
            },
            "profile": dict(options.profile),
        },
        "checks": [result.to_dict() for result in results],
        "files": {"report": report_name},
    }
    document = scrub(document, [url_password(options.database_url)])
    try:
        path = write_json_evidence(folder, report_name, document)
    except OSError as exc:
        raise UsageError(
            f"cannot write the integrity report under {folder}: {exc.strerror or exc}; check OPS_ARTIFACTS_DIR"
        ) from exc
    return IntegrityReport(run_id, verdict, options.strict, results, document, path)
