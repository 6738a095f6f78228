"""Check reports for machines: the fields every report opens with, the report object the
gate and the integrity check return, secret scrubbing, and reading a report back."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aris3nb.core.checks import CheckResult, Verdict, blocking_checks, exit_code_of, status_counts, verdict_of
from aris3nb.core.errors import UsageError
from aris3nb.core.ids import utc_text
from aris3nb.core.redact import redact_text


def scrub(value: Any, known_secrets: Iterable[str | None]) -> Any:
    """``value`` with URL passwords and every known secret masked in all its strings."""
    found = [s for s in known_secrets if s]
    if isinstance(value, str):
        return redact_text(value, found)
    if isinstance(value, dict):
        return {scrub(k, found): scrub(v, found) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [scrub(v, found) for v in value]
    return value


def read_json_evidence(
    path: Path,
    *,
    format_name: str,
    versions: Iterable[int],
    check: Callable[[dict[str, Any], str], object] | None = None,
) -> dict[str, Any]:
    """A JSON evidence file of ``format_name``; ``UsageError`` (exit 2) when it cannot be
    read, is not that format, or has a version this code does not know (readers refuse), or
    when ``check(document, file name)`` — the format's model, ``aris3nb.formats.validate`` —
    raises ``ValueError`` (its one-line message is the error's)."""
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror or exc}") from exc
    except ValueError as exc:
        raise UsageError(f"{path} is not valid JSON: {exc}") from exc
    if not isinstance(document, dict) or document.get("format") != format_name:
        raise UsageError(f"{path} is not a {format_name} document")
    known = sorted(versions)
    if document.get("version") not in known:
        raise UsageError(
            f"{path} has {format_name} version {document.get('version')!r}; this aris3nb reads "
            f"{'version' if len(known) == 1 else 'versions'} {', '.join(map(str, known))}"
        )
    if check is not None:
        try:
            check(document, path.name)
        except ValueError as exc:
            raise UsageError(f"{path} is not a valid {format_name} document: {exc}") from exc
    return document


def check_report_head(
    format_name: str,
    version: int,
    run_id: str,
    started: dt.datetime,
    finished: dt.datetime,
    results: list[CheckResult],
    *,
    strict: bool,
) -> dict[str, Any]:
    """The fields every check report (gate summary, integrity report) opens with."""
    verdict = verdict_of(results, strict=strict)
    return {
        "format": format_name,
        "version": version,
        "run_id": run_id,
        "started_at": utc_text(started),
        "finished_at": utc_text(finished),
        "duration_sec": round((finished - started).total_seconds(), 3),
        "verdict": str(verdict),
        "strict": strict,
        "exit_code": exit_code_of(verdict),
        "counts": status_counts(results),
        "blocking_checks": [r.name for r in blocking_checks(results, strict=strict)],
    }


@dataclass
class CheckReport:
    """A finished run of checks (the gate, the integrity check): its verdict, results, the
    JSON document written as evidence, and where it was written."""

    run_id: str
    verdict: Verdict
    strict: bool
    results: list[CheckResult]
    document: dict[str, Any]
    path: Path

    @property
    def exit_code(self) -> int:
        return exit_code_of(self.verdict)

    @property
    def blocking(self) -> list[CheckResult]:
        return blocking_checks(self.results, strict=self.strict)
