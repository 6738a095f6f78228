"""How check results look in a terminal: the rich table and the verdict line (the CLI's
presentation; library code never imports rich)."""

from __future__ import annotations

from collections.abc import Iterable

from rich.table import Table
from rich.text import Text

from aris3nb.core.checks import CheckResult, Status, Verdict

STATUS_STYLES = {Status.PASS: "bold green", Status.WARN: "bold yellow", Status.FAIL: "bold red", Status.SKIP: "dim"}
VERDICT_STYLES = {Verdict.PASS: "bold green", Verdict.PASS_WITH_WARNINGS: "bold yellow", Verdict.FAIL: "bold red"}


def results_table(results: Iterable[CheckResult], title: str | None = None) -> Table:
    table = Table(title=title, show_lines=False, expand=False)
    table.add_column("status", no_wrap=True)
    table.add_column("check", no_wrap=True)
    table.add_column("duration", justify="right", no_wrap=True)
    table.add_column("detail", overflow="fold")
    for result in results:
        table.add_row(
            Text(str(result.status), style=STATUS_STYLES[result.status]),
            Text(result.name),
            Text(f"{result.duration_sec:.2f} s"),
            Text(result.detail),
        )
    return table


def verdict_text(label: str, verdict: Verdict, *, strict: bool) -> Text:
    text = Text(f"{label}: ")
    text.append(str(verdict), style=VERDICT_STYLES[verdict])
    if strict:
        text.append(" (strict: warnings fail)")
    return text


def first_reasons(reasons: list[str], shown: int) -> list[str]:
    """The first ``shown`` of a phase's reasons, and a last line saying how many more there are
    (in ``evidence.json``), so that a shortened list is never read as the whole."""
    if len(reasons) <= shown:
        return list(reasons)
    return [*reasons[:shown], f"… and {len(reasons) - shown} more (evidence.json)"]
