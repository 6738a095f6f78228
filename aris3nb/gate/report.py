"""Check results for people and for machines: the rich table (status, check, duration,
detail), run ids, secret scrubbing, and evidence files written owner-only and atomically.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import secrets
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.table import Table
from rich.text import Text

from aris3nb.errors import UsageError
from aris3nb.gate.checks import CheckResult, Status, Verdict, blocking_checks, exit_code_of, status_counts, verdict_of
from aris3nb.redact import redact_text

STATUS_STYLES = {Status.PASS: "bold green", Status.WARN: "bold yellow", Status.FAIL: "bold red", Status.SKIP: "dim"}
VERDICT_STYLES = {Verdict.PASS: "bold green", Verdict.PASS_WITH_WARNINGS: "bold yellow", Verdict.FAIL: "bold red"}


def new_run_id(now: dt.datetime | None = None) -> str:
    """``YYYYMMDDTHHMMSSZ-xxxxxx``: sorts by time, unique across concurrent runs."""
    now = now or dt.datetime.now(dt.UTC)
    return f"{now.astimezone(dt.UTC):%Y%m%dT%H%M%SZ}-{secrets.token_hex(3)}"


def utc_text(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def results_table(results: Iterable[CheckResult], title: str | None = None) -> Table:
    table = Table(title=title, show_lines=False, expand=False)
    table.add_column("status", no_wrap=True)
    table.add_column("check", no_wrap=True)
    table.add_column("duration", justify="right", no_wrap=True)
    table.add_column("detail", overflow="fold")
    for result in results:
        table.add_row(Text(str(result.status), style=STATUS_STYLES[result.status]), Text(result.name),
                      Text(f"{result.duration_sec:.2f} s"), Text(result.detail))
    return table


def verdict_text(label: str, verdict: Verdict, *, strict: bool) -> Text:
    text = Text(f"{label}: ")
    text.append(str(verdict), style=VERDICT_STYLES[verdict])
    if strict:
        text.append(" (strict: warnings fail)")
    return text


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


def read_json_evidence(path: Path, *, format_name: str, versions: Iterable[int]) -> dict[str, Any]:
    """A JSON evidence file of ``format_name``; ``UsageError`` (exit 2) when it cannot be
    read, is not that format, or has a version this code does not know (readers refuse)."""
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
        raise UsageError(f"{path} has {format_name} version {document.get('version')!r}; this aris3nb reads "
                         f"version(s) {', '.join(map(str, known))}")
    return document


def write_json_evidence(folder: Path, filename: str, document: dict[str, Any]) -> Path:
    """Write ``document`` as JSON to ``folder/filename`` (see ``write_text_evidence``)."""
    return write_text_evidence(folder, filename, json.dumps(document, indent=2, ensure_ascii=False, default=str) + "\n")


def write_text_evidence(folder: Path, filename: str, text: str) -> Path:
    """Write ``text`` to ``folder/filename``: folder 0700, file 0600, complete or absent
    (written beside its name, then renamed into place)."""
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(folder, 0o700)
    target = folder / filename
    fd, tmp_name = tempfile.mkstemp(prefix=f".{filename}.", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(text)
            out.flush()
            os.fsync(out.fileno())
        os.chmod(tmp_name, 0o600)
        os.replace(tmp_name, target)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
    return target


def check_report_head(format_name: str, version: int, run_id: str, started: dt.datetime, finished: dt.datetime,
                      results: list[CheckResult], *, strict: bool) -> dict[str, Any]:
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
