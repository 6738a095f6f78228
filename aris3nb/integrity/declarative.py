"""Declarative checks: business rules given as data (a target profile's ``[[integrity.sql]]``
and ``[[integrity.files]]`` tables), run as invariants of the same shape as the built-in ones.

A SQL check's query returns the OFFENDING rows — none on sound data — and its first columns
identify the row; the report names up to ``SAMPLE_LIMIT`` of them with their count.
``severity`` "error" makes offending rows a FAIL, "warning" a WARN. ``requires`` lists the
tables and ``table.column`` names the query needs: where one is absent the check is NOT
APPLICABLE (a WARN naming it), never a business FAIL. The query is one SELECT (or WITH ...
SELECT / VALUES) statement, run unchanged on the read-only connection, under its statement
timeout; a query that fails is a FAIL with the database's reason.

A file check's query returns one row per file the database vouches for: its path (relative
to ``root``), SHA-256 and size. Each file must exist inside ``root`` with exactly that
lowercase hex SHA-256 (and size); a file under ``root`` no row vouches for is named as extra.
``path_mode = "basename"`` looks for the last part of the recorded path only (a service that
records the path as it saw it and writes its files flat into the folder).
``root`` is ``backup.exports_dir`` (the exports folder the integrity check is given) or a path.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path, PurePosixPath
from typing import Any, Literal

import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from aris3nb.core import words
from aris3nb.core.checks import SAMPLE_LIMIT, Outcome, failed, passed, warned
from aris3nb.core.errors import UsageError
from aris3nb.integrity.files import file_problem, files_under
from aris3nb.integrity.invariants import REQUIREMENT, IntegrityContext, Invariant, plain, row_text

#: Names of checks and plug-ins: what a person types and reads in a report.
CHECK_NAME = r"^[A-Za-z0-9_][A-Za-z0-9_.:-]*$"
#: A file check whose root is this reads the exports folder given to the integrity check.
EXPORTS_DIR_ROOT = "backup.exports_dir"
#: Rows fetched from the server at a time while offending rows are counted.
FETCH_ROWS = 1000
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_$]*$")
_READING_STATEMENTS = ("select", "with", "values")


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _requirements(value: tuple[str, ...]) -> tuple[str, ...]:
    bad = [name for name in value if not REQUIREMENT.match(name)]
    if bad:
        raise ValueError(f"{', '.join(map(repr, bad))}: each requirement is 'table' or 'table.column'")
    return value


class SqlCheck(_Model):
    """A business rule as a query returning the offending rows."""

    name: str = Field(pattern=CHECK_NAME, max_length=200)
    severity: Literal["error", "warning"]
    description: str = ""
    requires: tuple[str, ...] = ()
    query: str

    _check_requires = field_validator("requires")(_requirements)

    @field_validator("query")
    @classmethod
    def _one_reading_statement(cls, query: str) -> str:
        statements = split_statements(query)
        if len(statements) != 1:
            raise ValueError(
                f"holds {len(statements)} statements; give exactly one SELECT returning the offending rows"
            )
        first = re.match(r"[\s(]*([A-Za-z]+)", statements[0])
        if first is None or first.group(1).lower() not in _READING_STATEMENTS:
            raise ValueError("must be a SELECT (or WITH ... SELECT, VALUES) returning the offending rows")
        return query


class FileCheck(SqlCheck):
    """Files the database vouches for (path, SHA-256, size per row) against a folder."""

    root: str = EXPORTS_DIR_ROOT
    key_columns: tuple[str, ...] = ()
    path_column: str
    sha256_column: str
    size_column: str | None = None
    #: "relative": the path column holds the path under ``root``; "basename": it holds the path
    #: the service saw (e.g. ``./exports_storage/<id>.csv``) and only its last part is looked
    #: for under ``root`` (a service writing its files flat into one folder).
    path_mode: Literal["relative", "basename"] = "relative"

    @model_validator(mode="after")
    def _column_names(self) -> FileCheck:
        for column in (*self.key_columns, self.path_column, self.sha256_column, self.size_column):
            if column is not None and not _IDENTIFIER.match(column):
                raise ValueError(f"{column!r} is not a column name")
        if self.root.startswith("backup.") and self.root != EXPORTS_DIR_ROOT:
            raise ValueError(f"root {self.root!r}: give {EXPORTS_DIR_ROOT!r} or a folder path")
        return self


class IntegritySelection(_Model):
    """What a target profile's ``[integrity]`` table selects: built-in sets, plug-ins (entry
    point names), SQL checks and file checks."""

    builtin: tuple[str, ...] = ()
    plugins: tuple[str, ...] = ()
    sql: tuple[SqlCheck, ...] = ()
    files: tuple[FileCheck, ...] = ()

    @field_validator("plugins")
    @classmethod
    def _plugin_names(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        bad = [name for name in value if not re.match(CHECK_NAME, name)]
        if bad:
            raise ValueError(f"{', '.join(map(repr, bad))} is not an entry point name")
        return value


def checks_from_toml(
    table: Mapping[str, Any] | BaseModel, *, base_dir: Path | None = None, where: str = "integrity"
) -> IntegritySelection:
    """The checks a profile's ``[integrity]`` table (as ``tomllib`` reads it, or a model of
    it) selects. A file check's relative ``root`` is taken from ``base_dir`` (the profile's
    folder). An unknown key, a wrong type or a bad query is ``UsageError`` (exit 2) naming
    the key, e.g. ``integrity.sql[2].severity``."""
    data = table.model_dump() if isinstance(table, BaseModel) else dict(table)
    try:
        selection = IntegritySelection.model_validate(data)
    except ValidationError as exc:
        problems = [f"{_location(where, error['loc'])}: {error['msg']}" for error in exc.errors()]
        raise UsageError(f"invalid integrity checks: {'; '.join(problems)}") from exc
    if base_dir is None:
        return selection
    files = tuple(
        check.model_copy(update={"root": str((base_dir / check.root).resolve())})
        if check.root != EXPORTS_DIR_ROOT and not Path(check.root).is_absolute()
        else check
        for check in selection.files
    )
    return selection.model_copy(update={"files": files})


def _location(where: str, loc: tuple[int | str, ...]) -> str:
    text = where
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else f".{part}"
    return text


# --------------------------------------------------------------------------- SQL text


def split_statements(query: str) -> list[str]:
    """The statements of ``query``, split at semicolons outside quotes, quoted identifiers,
    dollar quotes and comments; empty statements dropped."""
    statements, start, i, n = [], 0, 0, len(query)
    while i < n:
        char = query[i]
        if char == "-" and query.startswith("--", i):
            i = _end_of(query, "\n", i + 2)
        elif char == "/" and query.startswith("/*", i):
            i = _end_of(query, "*/", i + 2)
        elif char == "'":
            escapes = i > 0 and query[i - 1] in "eE" and (i < 2 or not (query[i - 2].isalnum() or query[i - 2] == "_"))
            i = _end_of_string(query, i + 1, escapes)
        elif char == '"':
            i = _end_of(query, '"', i + 1)
        elif (
            char == "$"
            and (tag := re.match(r"\$([A-Za-z_][A-Za-z0-9_]*)?\$", query[i:]))
            and (i == 0 or not (query[i - 1].isalnum() or query[i - 1] == "_"))
        ):
            i = _end_of(query, tag.group(0), i + len(tag.group(0)))
        elif char == ";":
            statements.append(query[start:i])
            start = i = i + 1
        else:
            i += 1
    statements.append(query[start:])
    return [s for s in statements if _code(s).strip()]


def _end_of(text: str, closing: str, at: int) -> int:
    found = text.find(closing, at)
    return len(text) if found < 0 else found + len(closing)


def _end_of_string(text: str, at: int, backslash_escapes: bool) -> int:
    while at < len(text):
        if backslash_escapes and text[at] == "\\":
            at += 2
        elif text[at] == "'":
            if text.startswith("''", at):
                at += 2
            else:
                return at + 1
        else:
            at += 1
    return at


def _code(statement: str) -> str:
    """``statement`` without its comments (to tell an empty statement from a real one)."""
    return re.sub(r"--[^\n]*|/\*.*?\*/", " ", statement, flags=re.DOTALL)


def _driver_sql(conn: sa.Connection, query: str) -> str:
    """The query as the driver must receive it: verbatim, but with ``%`` doubled for the
    drivers whose placeholders are ``%s`` (psycopg), which read every ``%``."""
    return query.replace("%", "%%") if conn.dialect.paramstyle in ("format", "pyformat") else query


def offending_rows(conn: sa.Connection, query: str) -> tuple[list[str], int, list[dict[str, Any]]]:
    """Run ``query``: its column names, how many rows it returned, and the first
    ``SAMPLE_LIMIT`` of them as plain values (rows are streamed, memory stays bounded)."""
    result = conn.exec_driver_sql(
        _driver_sql(conn, query.strip().rstrip(";")), execution_options={"yield_per": FETCH_ROWS}
    )
    columns = _unique(list(result.keys()))
    count = 0
    sample: list[dict[str, Any]] = []
    for row in result:
        count += 1
        if len(sample) < SAMPLE_LIMIT:
            sample.append({column: plain(value) for column, value in zip(columns, row, strict=True)})
    return columns, count, sample


def _unique(names: list[str]) -> list[str]:
    seen: dict[str, int] = {}
    unique = []
    for name in names:
        seen[name] = seen.get(name, 0) + 1
        unique.append(name if seen[name] == 1 else f"{name}_{seen[name]}")
    return unique


# --------------------------------------------------------------------------- as invariants


def _judged(severity: str) -> Any:
    return failed if severity == "error" else warned


def sql_invariant(check: SqlCheck, name: str | None = None) -> Invariant:
    """``check`` as an invariant (named ``name`` when given, as a plug-in's entry point is)."""

    def run(ctx: IntegrityContext) -> Outcome:
        columns, count, sample = offending_rows(ctx.conn, check.query)
        facts = {
            "kind": "sql",
            "severity": check.severity,
            "description": check.description,
            "offending": count,
            "sample": sample,
            "columns": columns,
            "query": check.query.strip(),
        }
        if count:
            return _judged(check.severity)(
                f"{words.count(count, 'offending row')}; first: {row_text(sample[0])}", **facts
            )
        return passed(f"no offending row: {check.description or check.name}", **facts)

    return Invariant(name or check.name, run, check.requires, check.description)


def file_invariant(check: FileCheck, name: str | None = None) -> Invariant:
    """``check`` as an invariant: every vouched-for file present and unchanged, none extra."""

    def run(ctx: IntegrityContext) -> Outcome:
        root = ctx.options.exports_dir if check.root == EXPORTS_DIR_ROOT else Path(check.root)
        result = ctx.conn.exec_driver_sql(
            _driver_sql(ctx.conn, check.query.strip().rstrip(";")), execution_options={"yield_per": FETCH_ROWS}
        )
        columns = list(result.keys())
        absent = [
            c
            for c in (*check.key_columns, check.path_column, check.sha256_column, check.size_column)
            if c is not None and c not in columns
        ]
        if absent:
            result.close()
            return failed(
                f"the query returns no column {', '.join(absent)} (it returns {', '.join(columns)})",
                kind="files",
                columns=columns,
            )
        vouched: set[str] = set()
        checked, problems = 0, []
        for row in result.mappings():
            checked += 1
            relative = row[check.path_column]
            if check.path_mode == "basename" and relative:
                relative = PurePosixPath(str(relative).replace("\\", "/")).name
            vouched.add(str(relative or ""))
            size = row[check.size_column] if check.size_column else None
            problem = file_problem(root, relative, None if size is None else int(size), row[check.sha256_column])
            if problem is not None:
                problems.append(
                    {
                        **{key: plain(row[key]) for key in check.key_columns},
                        check.path_column: relative,
                        "problem": problem,
                    }
                )
        extra = [path for path in files_under(root) if path not in vouched]
        problems += [{check.path_column: path, "problem": "extra file: no row vouches for it"} for path in extra]
        evidence = {
            "kind": "files",
            "severity": check.severity,
            "description": check.description,
            "root": str(root),
            "checked": checked,
            "offending": len(problems),
            "extra": len(extra),
            "sample": problems[:SAMPLE_LIMIT],
            "query": check.query.strip(),
        }
        if problems:
            missing = ctx.options.missing_exports_hint if check.root == EXPORTS_DIR_ROOT else "check the profile"
            hint = f" (the folder {root} does not exist; {missing})" if not root.is_dir() else ""
            return _judged(check.severity)(
                f"{words.count(len(problems), 'problem')} with {words.count(checked, 'vouched-for file')} and "
                f"{len(extra)} extra{hint}; first: {row_text(problems[0])}",
                **evidence,
            )
        return passed(
            f"{words.count(checked, 'file')} present with {'its' if checked == 1 else 'their'} recorded SHA-256"
            f"{' and size' if check.size_column else ''}, none extra under {root}",
            **evidence,
        )

    return Invariant(name or check.name, run, check.requires, check.description)
