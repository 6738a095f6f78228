"""Checks as small registered functions, and how their results become a verdict.

A check is a function of a context returning an ``Outcome`` (status, one-line detail,
evidence); the registry runs it, times it, and turns it into a ``CheckResult``. A check
that raises is a FAIL carrying its error, never a warning and never a crash of the run.
The gate, the integrity check (and the backup drill) all report through these types, so
they render and serialise the same way.

Verdict: FAIL if any check failed; PASS_WITH_WARNINGS if any warned; PASS otherwise
(SKIP counts for nothing). Under ``strict`` a warning makes the verdict FAIL.
"""

from __future__ import annotations

import enum
import time
import traceback
from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from aris3nb.core.errors import Aris3nbError

ContextT = TypeVar("ContextT")

#: At most this many offending rows, files or tests are named in a check's evidence.
SAMPLE_LIMIT = 10


class Status(enum.StrEnum):
    PASS = "PASS"
    WARN = "WARN"
    FAIL = "FAIL"
    SKIP = "SKIP"


class Verdict(enum.StrEnum):
    PASS = "PASS"
    PASS_WITH_WARNINGS = "PASS_WITH_WARNINGS"
    FAIL = "FAIL"


@dataclass(frozen=True)
class Outcome:
    """What a check function returns: the runner adds its name and duration."""

    status: Status
    detail: str
    evidence: dict[str, Any] = field(default_factory=dict)


def passed(detail: str, **evidence: Any) -> Outcome:
    return Outcome(Status.PASS, detail, evidence)


def warned(detail: str, **evidence: Any) -> Outcome:
    return Outcome(Status.WARN, detail, evidence)


def failed(detail: str, **evidence: Any) -> Outcome:
    return Outcome(Status.FAIL, detail, evidence)


def skipped(detail: str, **evidence: Any) -> Outcome:
    return Outcome(Status.SKIP, detail, evidence)


@dataclass(frozen=True)
class CheckResult:
    """One check's result: status, name, one-line detail, duration and evidence."""

    name: str
    status: Status
    detail: str
    duration_sec: float
    evidence: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "status": str(self.status),
            "detail": self.detail,
            "duration_sec": round(self.duration_sec, 4),
            "evidence": self.evidence,
        }


CheckFunction = Callable[[ContextT], Outcome]


@dataclass(frozen=True)
class Check(Generic[ContextT]):
    name: str
    function: CheckFunction[ContextT]

    @property
    def why(self) -> str:
        """The first paragraph of the function's docstring: why the property matters."""
        doc = (self.function.__doc__ or "").strip()
        return " ".join(doc.split("\n\n")[0].split())


class Registry(Generic[ContextT]):
    """Named checks, run in the order they were registered."""

    def __init__(self) -> None:
        self._checks: dict[str, Check[ContextT]] = {}

    def register(self, name: str) -> Callable[[CheckFunction[ContextT]], CheckFunction[ContextT]]:
        """Decorator form of ``add``."""

        def decorate(function: CheckFunction[ContextT]) -> CheckFunction[ContextT]:
            self.add(name, function)
            return function

        return decorate

    def add(self, name: str, function: CheckFunction[ContextT]) -> None:
        if name in self._checks:
            raise ValueError(f"a check named {name!r} is already registered")
        self._checks[name] = Check(name, function)

    def __iter__(self) -> Iterator[Check[ContextT]]:
        return iter(self._checks.values())

    def names(self) -> list[str]:
        return list(self._checks)

    def run(
        self,
        context: ContextT,
        on_result: Callable[[CheckResult], None] | None = None,
        only: Collection[str] | None = None,
    ) -> list[CheckResult]:
        """Run every check (or those named in ``only``), in registration order."""
        results = []
        for check in self:
            if only is not None and check.name not in only:
                continue
            result = run_check(check.name, check.function, context)
            results.append(result)
            if on_result is not None:
                on_result(result)
        return results


def run_check(name: str, function: CheckFunction[ContextT], context: ContextT) -> CheckResult:
    """Run one check; an exception becomes a FAIL with the error as its detail."""
    started = time.perf_counter()
    try:
        outcome = function(context)
        if not isinstance(outcome, Outcome):
            raise TypeError(f"check {name!r} returned {type(outcome).__name__}, not an Outcome")
    except Exception as exc:  # noqa: BLE001 -- a crashing check is a failed check, whatever it raised
        outcome = crashed(exc)
    return CheckResult(name, outcome.status, outcome.detail, time.perf_counter() - started, outcome.evidence)


def crashed(exc: Exception) -> Outcome:
    """The FAIL outcome of a check that raised ``exc``."""
    if isinstance(exc, Aris3nbError):
        return failed(str(exc), error=type(exc).__name__)
    message = _first_line(exc)
    return failed(
        f"check crashed: {type(exc).__name__}: {message}",
        error=type(exc).__name__,
        message=message,
        traceback=traceback.format_exception(exc)[-6:],
    )


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def verdict_of(results: list[CheckResult], *, strict: bool) -> Verdict:
    statuses = {result.status for result in results}
    if Status.FAIL in statuses or (strict and Status.WARN in statuses):
        return Verdict.FAIL
    if Status.WARN in statuses:
        return Verdict.PASS_WITH_WARNINGS
    return Verdict.PASS


def exit_code_of(verdict: Verdict) -> int:
    """0 for PASS and PASS_WITH_WARNINGS, 1 for FAIL (``strict`` is already in the verdict)."""
    return 1 if verdict is Verdict.FAIL else 0


def blocking_checks(results: list[CheckResult], *, strict: bool) -> list[CheckResult]:
    """The results that make the verdict FAIL."""
    blocking = {Status.FAIL, Status.WARN} if strict else {Status.FAIL}
    return [result for result in results if result.status in blocking]


def status_counts(results: list[CheckResult]) -> dict[str, int]:
    return {str(status): sum(1 for r in results if r.status is status) for status in Status}


def sample(rows: list[Any], limit: int = SAMPLE_LIMIT) -> list[Any]:
    """At most ``limit`` items, for evidence that names offenders without growing unbounded."""
    return rows[:limit]
