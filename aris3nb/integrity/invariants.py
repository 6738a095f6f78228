"""What an invariant is, and what makes it applicable to a database.

An invariant is a named function of an ``IntegrityContext`` returning an ``Outcome``, with
the tables and columns it needs (``requires``: ``"table"`` or ``"table.column"``). Before it
runs, those are looked up in the live schema: when one is absent the invariant is NOT
APPLICABLE here — a WARN whose detail starts ``not applicable:`` and names what is missing,
with ``evidence = {"not_applicable": true, "missing": [...]}`` — never a business FAIL and
never a crash on a missing table. Business rules judge a column by what it means in one
schema; a schema without that meaning lacks the column set the rule declares.

Built-in sets (``reference``, ...) are ``InvariantSet``s registered by name and loaded when
selected; declarative SQL checks and plug-ins become ``Invariant``s of the same shape.
"""

from __future__ import annotations

import datetime as dt
import decimal
import importlib
import re
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from aris3nb.core.checks import CheckFunction, CheckResult, Outcome, Registry, Status, warned
from aris3nb.core.errors import Aris3nbError, UsageError
from aris3nb.core.redact import redact_text, url_password

if TYPE_CHECKING:
    from aris3nb.integrity.runner import IntegrityOptions

#: A requirement: a table, or a table and one of its columns (names as SQL identifiers).
REQUIREMENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_$]*(\.[A-Za-z_][A-Za-z0-9_$]*)?$")
#: The detail of a not-applicable invariant starts with this.
NOT_APPLICABLE_PREFIX = "not applicable:"
#: At most this many missing names are spelled out in a detail (evidence holds them all).
DETAIL_NAMES = 6

#: name of a built-in set -> the module defining it (as ``INVARIANTS``), imported when selected.
BUILTIN_SETS: dict[str, str] = {
    "reference": "aris3nb.integrity.reference",
}


@dataclass
class IntegrityContext:
    """What an invariant runs with: the read-only connection (one snapshot), the options of
    the run, the moment ages are measured from, and the live schema."""

    conn: sa.Connection
    options: IntegrityOptions
    now: dt.datetime
    schema: LiveSchema


@dataclass(frozen=True)
class Invariant:
    """A named check of the data: ``function(ctx) -> Outcome``, run only where every name in
    ``requires`` exists. ``why`` (default: the function's docstring) says why it matters."""

    name: str
    function: Callable[[IntegrityContext], Outcome]
    requires: tuple[str, ...] = ()
    description: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "requires", tuple(self.requires))
        bad = [name for name in self.requires if not REQUIREMENT.match(name)]
        if bad:
            raise ValueError(
                f"invariant {self.name!r}: {'requirement' if len(bad) == 1 else 'requirements'} "
                f"{', '.join(map(repr, bad))} {'is' if len(bad) == 1 else 'are'} not 'table' or 'table.column'"
            )

    @property
    def why(self) -> str:
        return self.description or " ".join((self.function.__doc__ or "").strip().split("\n\n")[0].split())


@dataclass
class InvariantSet:
    """Invariants in the order they run; ``invariant(name, requires=...)`` registers one."""

    name: str
    invariants: dict[str, Invariant] = field(default_factory=dict)

    def add(self, invariant: Invariant) -> None:
        if invariant.name in self.invariants:
            raise ValueError(f"an invariant named {invariant.name!r} is already in the {self.name} set")
        self.invariants[invariant.name] = invariant

    def invariant(
        self, name: str, *, requires: Iterable[str]
    ) -> Callable[[Callable[[IntegrityContext], Outcome]], Callable[[IntegrityContext], Outcome]]:
        def decorate(function: Callable[[IntegrityContext], Outcome]) -> Callable[[IntegrityContext], Outcome]:
            self.add(Invariant(name, function, tuple(requires)))
            return function

        return decorate

    def __iter__(self) -> Iterator[Invariant]:
        return iter(self.invariants.values())

    def names(self) -> list[str]:
        return list(self.invariants)


def builtin_set(name: str) -> InvariantSet:
    """The built-in set ``name``; ``UsageError`` (exit 2) naming the known ones otherwise."""
    module = BUILTIN_SETS.get(name)
    if module is None:
        raise UsageError(f"unknown built-in invariant set {name!r}; known: {', '.join(sorted(BUILTIN_SETS))}")
    invariants = importlib.import_module(module).INVARIANTS
    assert isinstance(invariants, InvariantSet)
    return invariants


# --------------------------------------------------------------------------- the live schema


class LiveSchema:
    """The tables (and views) of the database's default schema and their columns, read once
    per run through SQLAlchemy's inspector (names compared case-insensitively)."""

    def __init__(self, conn: sa.Connection) -> None:
        self._conn = conn
        self._inspector = sa.inspect(conn)
        self._tables: dict[str, str] | None = None
        self._columns: dict[str, set[str]] = {}
        self._empty: dict[str, bool] = {}
        self._base_tables: set[str] = set()

    def _table_names(self) -> dict[str, str]:
        if self._tables is None:
            self._base_tables = {name.lower() for name in self._inspector.get_table_names()}
            names = [*self._inspector.get_table_names(), *self._inspector.get_view_names()]
            self._tables = {name.lower(): name for name in names}
        return self._tables

    def has_table(self, table: str) -> bool:
        return table.lower() in self._table_names()

    def columns(self, table: str) -> set[str]:
        key = table.lower()
        if key not in self._columns:
            real = self._table_names().get(key)
            self._columns[key] = (
                {column["name"].lower() for column in self._inspector.get_columns(real)} if real is not None else set()
            )
        return self._columns[key]

    def is_empty(self, table: str) -> bool:
        """Whether the base table ``table`` holds no row (one ``LIMIT 1`` read per table and
        run, in a savepoint of its own). False when unknown: a view (reading one row of it may
        cost as much as the view), or a read that failed."""
        key = table.lower()
        if key not in self._empty:
            real = self._table_names().get(key)
            self._empty[key] = False
            if real is not None and key in self._base_tables:
                quoted = self._conn.dialect.identifier_preparer.quote(real)
                savepoint = self._conn.begin_nested()
                try:
                    self._empty[key] = self._conn.exec_driver_sql(f"SELECT 1 FROM {quoted} LIMIT 1").first() is None
                except sa.exc.DBAPIError:
                    pass  # unknown: no vacuous mark, and the check's own outcome stands
                finally:
                    savepoint.rollback()
        return self._empty[key]

    def missing(self, requires: Iterable[str]) -> list[str]:
        """The requirements absent here, in the order given."""
        absent = []
        for requirement in requires:
            table, _, column = requirement.partition(".")
            if not self.has_table(table) or (column and column.lower() not in self.columns(table)):
                absent.append(requirement)
        return absent


def not_applicable(reason: str, missing: Sequence[str] = (), **evidence: Any) -> Outcome:
    """The outcome of an invariant that cannot judge this database: a WARN whose detail starts
    with ``not applicable:`` and evidence ``{"not_applicable": true, "missing": [...]}``."""
    return warned(f"{NOT_APPLICABLE_PREFIX} {reason}", not_applicable=True, missing=list(missing), **evidence)


def is_not_applicable(result: CheckResult) -> bool:
    return result.status is Status.WARN and result.evidence.get("not_applicable") is True


def missing_reason(missing: Sequence[str], schema: LiveSchema) -> str:
    """``needs sales, stock_items.sellable, absent here``: a wholly absent table is named once."""
    names: list[str] = []
    for requirement in missing:
        table = requirement.partition(".")[0]
        name = table if not schema.has_table(table) else requirement
        if name not in names:
            names.append(name)
    more = len(names) - DETAIL_NAMES
    shown = ", ".join(names[:DETAIL_NAMES]) + (f" (+{more} more)" if more > 0 else "")
    return f"needs {shown}, absent here"


def plain(value: Any) -> Any:
    """A value as evidence holds it: ids as text, exact sums as integers, times as ISO text."""
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, decimal.Decimal):  # sums in cents come back as Decimal from PostgreSQL
        return int(value) if value == value.to_integral_value() else str(value)
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, bytes | memoryview):
        return bytes(value).hex()
    return value


def row_text(row: dict[str, Any]) -> str:
    """``key=value, ...``: how a detail names an offending row."""
    return ", ".join(f"{key}={value}" for key, value in row.items())


def guarded(invariant: Invariant) -> CheckFunction[IntegrityContext]:
    """``invariant`` as a registry check: in a savepoint of the one read-only transaction (a
    failed statement spoils nothing for the next check), NOT APPLICABLE when its requirements
    are absent, and its database errors one-line, password-free failures."""

    def run(ctx: IntegrityContext) -> Outcome:
        savepoint = ctx.conn.begin_nested()
        try:
            missing = ctx.schema.missing(invariant.requires)
            if missing:
                return not_applicable(missing_reason(missing, ctx.schema), missing)
            return _said_vacuous(invariant.function(ctx), invariant, ctx.schema)
        except sa.exc.DBAPIError as exc:
            reason = redact_text(
                str(exc.orig if exc.orig is not None else exc).strip().splitlines()[0],
                [url_password(ctx.options.database_url)],
            )
            raise Aris3nbError(f"the query of {invariant.name} failed: {reason}") from exc
        finally:
            if savepoint.is_active:
                savepoint.rollback()

    run.__doc__ = invariant.why
    return run


def _said_vacuous(outcome: Outcome, invariant: Invariant, schema: LiveSchema) -> Outcome:
    """The outcome with the tables it requires that hold no row (``empty_tables``); a PASS over
    tables that all hold none holds only vacuously and says so, so that nobody reads it as data
    checked and found sound."""
    tables = list(dict.fromkeys(requirement.partition(".")[0] for requirement in invariant.requires))
    if not tables:
        return outcome
    empty = [table for table in tables if schema.is_empty(table)]
    vacuous = outcome.status is Status.PASS and bool(empty) and len(empty) == len(tables)
    evidence = {**outcome.evidence, "empty_tables": empty, "vacuous": vacuous}
    if not vacuous:
        return Outcome(outcome.status, outcome.detail, evidence)
    holds = "holds no row" if len(empty) == 1 else "hold no rows"
    return Outcome(outcome.status, f"{outcome.detail} (vacuous: {', '.join(empty)} {holds})", evidence)


def registry_of(invariants: Iterable[Invariant]) -> Registry[IntegrityContext]:
    """A check registry running ``invariants`` in order; ``UsageError`` on a name given twice."""
    registry: Registry[IntegrityContext] = Registry()
    for invariant in invariants:
        if invariant.name in registry.names():
            raise UsageError(f"two integrity checks are named {invariant.name!r}; give each a unique name")
        registry.add(invariant.name, guarded(invariant))
    return registry
