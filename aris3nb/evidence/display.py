"""What a phase notebook shows and keeps: verdict banners, tables of checks, smoke areas,
manifests, integrity findings and drill diffs, latency, RTO and RPO charts, and the phase's
result for the runner.

A notebook opens its phase with ``start_phase`` and ends it with ``conclude``, which puts the
phase's result into the notebook as an output of type ``RESULT_MIME`` (and a copy in
``<run>/<phase>/result.json``), shows the verdict and, when it is FAIL, raises
``PhaseFailed`` — after everything before it was displayed, so the notebook run fails with
its evidence in it. Every value shown is escaped: tables and banners are built with
``html.escape``.

Pages are read at a glance, on screen and on paper: a FAIL or WARN row is tinted, bold in its
status word and barred on its left edge (a border prints even when the printer drops
backgrounds, and the word says it without colour); text is left-aligned and numbers right;
every moment reads ``2026-11-29T15:28:41Z`` (``page_time``); a chart with a budget always
shows the budget line, its label inside the plot and the legend outside it. The styles are
inline, so they survive JupyterLab's sanitiser, nbconvert's page and a print alike.
"""

from __future__ import annotations

import datetime as dt
import html
import io
import json
import math
import os
import re
import shutil
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from aris3nb.core.checks import CheckResult, Status, Verdict, blocking_checks, verdict_of
from aris3nb.core.errors import PhaseFailed, UsageError
from aris3nb.core.files import write_json_evidence
from aris3nb.core.ids import RUN_ID_PATTERN, new_run_id
from aris3nb.core.settings import load_settings
from aris3nb.core.words import count

#: Set by the runner in the kernel's environment: the run's bundle folder.
RUN_DIR_ENV = "ARIS3NB_RUN_DIR"
RESULT_FILE = "result.json"
#: The MIME type of the phase result a notebook carries as an output (the runner's, the
#: papermill engine's and ``evidence seal``'s one source of it): an executed notebook
#: describes itself.
RESULT_MIME = "application/vnd.aris3nb.phase-result+json"
RESULT_FORMAT = "aris3nb.phase_result"
RESULT_VERSION = 1
STATUS_MARKS = {"PASS": "✔ PASS", "WARN": "⚠ WARN", "FAIL": "✘ FAIL", "SKIP": "· SKIP"}
BANNER_COLOURS = {
    "PASS": ("#e6f4ea", "#1e7e34"),
    "PASS_WITH_WARNINGS": ("#fff8e1", "#8a6d00"),
    "GO": ("#e6f4ea", "#1e7e34"),
    "completed": ("#e6f4ea", "#1e7e34"),
}
FAIL_COLOURS = ("#fdecea", "#b00020")
#: Width of a text cell in a table's plain-text form (the HTML form shows every character).
DETAIL_WIDTH = 160
#: How every page shows a moment: ISO 8601, UTC, to the second, with ``Z``.
TIME_FORMAT = "%Y-%m-%dT%H:%M:%SZ"
#: Row tones: (background, text, left bar). A row without a tone is left plain.
ROW_TONES = {"fail": ("#fdecea", "#8f0016", "#b00020"), "warn": ("#fff4d6", "#5c4300", "#c98a00")}
BUDGET_COLOUR = "#c44e52"

_PRINT_EXACT = "print-color-adjust:exact;-webkit-print-color-adjust:exact"
# A whole cell that is a moment: ISO 8601 or SQL text, optional fraction and zone.
_MOMENT = re.compile(r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}(?::?\d{2})?)?$")
_FRACTION = re.compile(r"(\.\d{6})\d+")
# A whole cell that is a quantity: a number, optionally with a unit ("0.03 s", "1,024 B").
_QUANTITY = re.compile(r"^[-+]?(\d[\d,]*(\.\d+)?|\.\d+)( ?(s|ms|min|h|%|B|KiB|MiB|GiB|rows))?$")
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
_FAIL_WORDS = frozenset({"FAIL", "red", "NO-GO", "ERROR", "failed", "error", "timeout", "INTERRUPTED"})
_WARN_WORDS = frozenset({"WARN", "PASS_WITH_WARNINGS"})


def _display(*objects: Any) -> None:
    from IPython.display import display

    display(*objects)


def page_time(value: Any) -> Any:
    """``value`` as every page shows a moment, ``2026-11-29T15:28:41Z``, when it is one.

    A moment is a ``datetime`` (a pandas ``Timestamp`` too) or text that is wholly an ISO 8601
    or SQL timestamp (``2026-11-29 15:28:41.047426``, ``...+00:00``, ``...Z``); it is shown in
    UTC, to the second. One without a zone is taken as UTC: the ARIS3 schemas store UTC (see
    ``aris3nb.contract.models.UTCDateTime``), and SQLite hands it back without one. Anything
    else (dates, text that merely contains a time, numbers) is returned unchanged.
    """
    if isinstance(value, dt.datetime):
        moment = value
    elif isinstance(value, str) and _MOMENT.match(value.strip()):
        try:
            moment = dt.datetime.fromisoformat(_FRACTION.sub(r"\1", value.strip()))
        except ValueError:
            return value
    else:
        return value
    if hasattr(moment, "to_pydatetime"):  # pandas Timestamp: drop the nanoseconds first
        moment = moment.to_pydatetime(warn=False)
    moment = moment.replace(tzinfo=dt.UTC) if moment.tzinfo is None else moment.astimezone(dt.UTC)
    return moment.strftime(TIME_FORMAT)


def _show_seconds(seconds: float) -> str:
    """A duration for people: ``15.5 s``, ``12 min 05 s``, ``3 h 20 min``, ``2 d 04 h``."""
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {secs:02d} s"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours} h {minutes:02d} min"
    days, hours = divmod(hours, 24)
    return f"{days} d {hours:02d} h"


def row_tone(status: Any) -> str | None:
    """``"fail"`` or ``"warn"`` for a status cell that says so (``✘ FAIL``, ``✘ red``, ``⚠ WARN``), else None."""
    words = set(re.findall(r"[A-Za-z_-]+", str(status or "")))
    if words & _FAIL_WORDS:
        return "fail"
    if words & _WARN_WORDS:
        return "warn"
    return None


class Banner:
    """A verdict in large type with its reasons: HTML in a notebook, text elsewhere."""

    def __init__(self, heading: str, verdict: str, reasons: Sequence[str] = (), note: str | None = None) -> None:
        self.heading, self.verdict, self.reasons, self.note = heading, verdict, list(reasons), note

    def _repr_html_(self) -> str:
        background, colour = BANNER_COLOURS.get(self.verdict, FAIL_COLOURS)
        items = "".join(f"<li>{html.escape(reason)}</li>" for reason in self.reasons)
        note = f"<p style='margin:4px 0 0 0'>{html.escape(self.note)}</p>" if self.note else ""
        return (
            f"<div class='aris3nb-banner' data-verdict='{html.escape(self.verdict)}' style='border:2px solid {colour};"
            f"border-left-width:8px;background:{background};color:{colour};padding:10px 14px;border-radius:6px;"
            f"margin:4px 0;{_PRINT_EXACT}'>"
            f"<div style='font-size:1.6em;font-weight:bold'>{html.escape(self.heading)}: {html.escape(self.verdict)}"
            f"</div>{note}{f'<ul style=margin:4px 0 0 0>{items}</ul>' if items else ''}</div>"
        )

    def __repr__(self) -> str:
        lines = [f"{self.heading}: {self.verdict}"]
        if self.note:
            lines.append(self.note)
        lines += [f"  - {reason}" for reason in self.reasons]
        return "\n".join(lines)


class ErrorText:
    """An error as it was printed (pytest's ``E`` lines, say), under a heading that says what
    it stopped; escaped, preformatted, in the FAIL colours."""

    def __init__(self, heading: str, lines: Sequence[str]) -> None:
        self.heading, self.lines = heading, list(lines)

    def _repr_html_(self) -> str:
        background, colour, bar = ROW_TONES["fail"]
        return (
            f"<div class='aris3nb-error' style='border:1px solid {bar};border-left:8px solid {bar};"
            f"background:{background};color:{colour};padding:8px 12px;margin:4px 0;{_PRINT_EXACT}'>"
            f"<div style='font-weight:bold'>{html.escape(self.heading)}</div>"
            f"<pre style='margin:4px 0 0 0;white-space:pre-wrap;text-align:left'>"
            f"{html.escape(chr(10).join(self.lines))}</pre></div>"
        )

    def __repr__(self) -> str:
        return "\n".join([self.heading, *(f"  {line}" for line in self.lines)])


class Table:
    """Rows as an HTML table read at a glance, and as text elsewhere.

    A row whose ``status`` column says FAIL (or red, error...) or WARN is tinted, its status
    word bold and its left edge barred, in print too; each column is right-aligned when every
    value in it is a number (or a number with a unit, ``0.03 s``), left-aligned otherwise;
    moments are shown with ``page_time``. Every cell has the same elements and attributes
    whatever its value, so a value can change what a table says but never its shape.
    """

    def __init__(self, rows: Sequence[Mapping[str, Any]], columns: Sequence[str] | None = None) -> None:
        names: list[str] = list(columns) if columns else []
        if not columns:
            for row in rows:
                names.extend(key for key in row if key not in names)
        self.columns = names
        self.rows = [[page_time(row.get(name)) for name in names] for row in rows]

    @property
    def empty(self) -> bool:
        return not self.rows

    def numeric(self) -> list[bool]:
        """Per column: every value present is a number (or a number with its unit)."""

        def is_number(value: Any) -> bool:
            if isinstance(value, bool):
                return False
            if isinstance(value, int | float):
                return True
            return isinstance(value, str) and bool(_QUANTITY.match(value.strip()))

        return [
            any(row[i] is not None for row in self.rows)
            and all(row[i] is None or is_number(row[i]) for row in self.rows)
            for i in range(len(self.columns))
        ]

    def tones(self) -> list[str | None]:
        if "status" not in self.columns:
            return [None] * len(self.rows)
        at = self.columns.index("status")
        return [row_tone(row[at]) for row in self.rows]

    @staticmethod
    def _text(value: Any) -> str:
        if value is None:
            return "—"
        if isinstance(value, float):
            return f"{value:.3f}" if math.isfinite(value) else str(value)
        if isinstance(value, Mapping | list | tuple):
            return json.dumps(value, ensure_ascii=False, default=str)
        return str(value)

    def _repr_html_(self) -> str:
        numeric = self.numeric()
        base = "padding:3px 8px;border-bottom:1px solid #d0d7de;vertical-align:top;"

        def align(i: int) -> str:
            if numeric[i]:
                return "text-align:right;white-space:nowrap;font-variant-numeric:tabular-nums;"
            # A status word stays whole; other text wraps, even inside a long test id or path,
            # rather than push the table past the page's edge.
            return (
                "text-align:left;white-space:nowrap;"
                if self.columns[i] == "status"
                else "text-align:left;overflow-wrap:anywhere;"
            )

        head = "".join(
            f"<th class='{'num' if numeric[i] else 'text'}' scope='col' style='{base}{align(i)}"
            f"border-bottom:2px solid #8c959f'>{html.escape(name)}</th>"
            for i, name in enumerate(self.columns)
        )
        body = []
        for number, (row, tone) in enumerate(zip(self.rows, self.tones(), strict=True), start=1):
            background, colour, bar = ROW_TONES.get(tone or "", ("transparent", "inherit", "transparent"))
            tint = f"background:{background};color:{colour};{_PRINT_EXACT};"
            cells = [
                (
                    f"<th class='num' scope='row' style='{base}{tint}text-align:right;font-weight:normal;"
                    f"border-left:5px solid {bar}'>{number}</th>"
                )
            ]
            for i, value in enumerate(row):
                weight = "bold" if tone and self.columns[i] == "status" else "normal"
                cells.append(
                    f"<td class='{'num' if numeric[i] else 'text'}' style='{base}{tint}{align(i)}"
                    f"font-weight:{weight}'>{html.escape(self._text(value))}</td>"
                )
            body.append(
                f"<tr class='aris3nb-row {tone or 'plain'}' data-tone='{tone or 'plain'}'>{''.join(cells)}</tr>"
            )
        return (
            f"<table class='aris3nb-table' style='border-collapse:collapse;margin:2px 0 8px 0'>"
            f"<thead><tr><th class='num' scope='col' style='{base}border-bottom:2px solid #8c959f'></th>{head}"
            f"</tr></thead><tbody>{''.join(body)}</tbody></table>"
        )

    def __repr__(self) -> str:
        import pandas as pd

        frame = pd.DataFrame(
            [
                [self._text(v) if not isinstance(v, int | float) or isinstance(v, bool) else v for v in row]
                for row in self.rows
            ],
            columns=self.columns,
        )
        frame.index = range(1, len(frame) + 1)
        with pd.option_context("display.max_colwidth", DETAIL_WIDTH, "display.max_rows", 500, "display.width", 250):
            return repr(frame)


def _frame(rows: Sequence[Mapping[str, Any]], columns: Sequence[str] | None = None) -> Table:
    return Table(rows, columns)


def _show_frame(frame: Table, title: str | None) -> None:
    from IPython.display import Markdown

    if title:
        _display(Markdown(f"**{title}**"))
    if frame.empty:
        _display(Markdown("*(none)*"))
        return
    _display(frame)


def check_rows(results: Iterable[CheckResult]) -> list[dict[str, Any]]:
    return [
        {
            "status": STATUS_MARKS[str(r.status)],
            "check": r.name,
            "duration": f"{r.duration_sec:.2f} s",
            "detail": r.detail,
        }
        for r in results
    ]


def smoke_error_lines(output: str, limit: int = 12) -> list[str]:
    """The error a pytest run stopped at, from the tail of its output: the exception lines
    (``E   httpx.ConnectError: ...``), the ``path:line: Name`` line that places it, and the
    message of each ``ERROR path - message`` summary line, each once; else its last lines."""
    found: list[str] = []

    def add(line: str) -> None:
        line = line.rstrip()
        if line and line not in found:
            found.append(line)

    lines = _ANSI.sub("", output).splitlines()  # pytest colours its output when the kernel's terminal asks
    for position, line in enumerate(lines):
        if line.startswith("E ") or line == "E":
            add(line[1:].strip())
            if (
                position + 2 < len(lines)
                and not lines[position + 1].strip()
                and re.match(r"^\S+:\d+: \S", lines[position + 2])
            ):
                add(lines[position + 2])
        elif line.startswith("ERROR ") and " - " in line:
            add(line.split(" - ", 1)[1])
    if not found:
        found = [line.rstrip() for line in lines if line.strip()][-limit:]
    return found[:limit]


# --------------------------------------------------------------------------- charts


def _new_figure(width: float, height: float) -> Any:
    """A figure drawn by Agg, outside pyplot (no global state, no backend to select)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height), dpi=96)
    FigureCanvasAgg(figure)
    return figure


def _png(figure: Any) -> bytes:
    """The figure as PNG, cropped to its content with matplotlib's 0.1 in margin: the same bytes
    as ``bbox_inches="tight"``, which would draw the whole figure once more just to measure it."""
    buffer = io.BytesIO()
    content = figure.get_tightbbox(figure.canvas.get_renderer()).padded(0.1)
    figure.savefig(buffer, format="png", dpi=96, bbox_inches=content, metadata={"Software": None})
    return buffer.getvalue()


def _legend_below(axis: Any, columns: int = 2) -> Any:
    """The legend under the plot and its axis labels, outside the plot: it can cover neither a
    line nor a line's label. Call it once the figure's layout is final."""
    tight = axis.xaxis.get_tightbbox(axis.figure.canvas.get_renderer())  # its labels are the lowest
    bottom = axis.transAxes.inverted().transform((0, tight.y0))[1]
    return axis.legend(
        loc="upper center",
        bbox_to_anchor=(0.5, bottom - 0.02),
        ncol=columns,
        fontsize=8,
        frameon=False,
        borderaxespad=0,
    )


def draw_budget(axis: Any, budget: float, label: str, *, vertical: bool = True) -> Any:
    """A dashed budget line that the axis always reaches, labelled inside the plot next to it.

    The axis limits are widened to take the budget in with a margin, whatever the data: all
    samples far below it (the line would be off to the right) or far above it. Returns the
    label (a matplotlib ``Text``).
    """
    line = axis.axvline if vertical else axis.axhline
    line(budget, color=BUDGET_COLOUR, linestyle="--", linewidth=2, label=label)
    low, high = axis.get_xlim() if vertical else axis.get_ylim()
    log = (axis.get_xscale() if vertical else axis.get_yscale()) == "log"
    if log:
        low, high = min(low, budget / 1.3), max(high, budget * 1.3)
    else:
        span = max(high, budget) - min(low, budget) or abs(budget) or 1.0
        low, high = min(low, budget - 0.05 * span), max(high, budget + 0.05 * span)
    (axis.set_xlim if vertical else axis.set_ylim)(low, high)
    if vertical:
        fraction = (math.log(budget / low) / math.log(high / low)) if log else (budget - low) / (high - low)
        right_half = fraction > 0.5
        return axis.annotate(
            label,
            xy=(budget, 1.0),
            xycoords=("data", "axes fraction"),
            xytext=(-4 if right_half else 4, -4),
            textcoords="offset points",
            ha="right" if right_half else "left",
            va="top",
            fontsize=8,
            color=BUDGET_COLOUR,
            bbox={"boxstyle": "square,pad=0.15", "facecolor": "white", "edgecolor": "none", "alpha": 0.85},
        )
    return axis.annotate(
        label,
        xy=(1.0, budget),
        xycoords=("axes fraction", "data"),
        xytext=(-4, 4),
        textcoords="offset points",
        ha="right",
        va="bottom",
        fontsize=8,
        color=BUDGET_COLOUR,
    )


def latency_figure(measured: Sequence[CheckResult]) -> Any:
    """One histogram per endpoint: the samples, the p95 and the budget, each line labelled.

    When the budget and the samples lie more than 20 times apart the axis is logarithmic, so
    the samples keep their shape and the budget line is still on the chart.
    """
    figure = _new_figure(4.2 * len(measured), 3.4)
    axes = figure.subplots(1, len(measured), squeeze=False)[0]
    for axis, result in zip(axes, measured, strict=True):
        evidence = result.evidence
        samples = [float(s) for s in evidence["samples_ms"]]
        budget = evidence.get("budget_ms")
        low, high = min(samples), max(samples)
        reach = [low, high] + ([float(budget)] if isinstance(budget, int | float) and budget > 0 else [])
        log = low > 0 and max(reach) / min(reach) > 20
        if log:
            import numpy as np
            from matplotlib.ticker import FormatStrFormatter, NullFormatter

            bins: Any = np.geomspace(low, high, 41) if high > low else 40
            axis.set_xscale("log")
            # 1, 10, 100 rather than 10⁰, 10¹, 10²: read at a glance, and no math text to lay out
            axis.xaxis.set_major_formatter(FormatStrFormatter("%g"))
            axis.xaxis.set_minor_formatter(NullFormatter())
        else:
            bins = 40
        # One filled outline, not 40 bars: the same picture, a fraction of the artists to lay out.
        axis.hist(samples, bins=bins, histtype="stepfilled", color="#4c72b0", label=f"{len(samples)} requests")
        axis.axvline(evidence["p95_ms"], color="#dd8452", linewidth=2, label=f"p95 {evidence['p95_ms']:.1f} ms")
        top = axis.get_ylim()[1]
        axis.set_ylim(0, top * 1.25)  # room for the labels above the bars
        if isinstance(budget, int | float):
            draw_budget(axis, float(budget), f"budget {budget:g} ms")
        tone = row_tone(str(result.status))
        axis.set_title(
            f"GET {evidence['path']}  [{result.status}]",
            fontsize=10,
            color=ROW_TONES[tone][2] if tone else "black",
            fontweight="bold" if tone else "normal",
        )
        axis.set_xlabel("ms" + (" (log scale)" if log else ""))
        axis.set_ylabel("requests")
    figure.subplots_adjust(wspace=0.3)  # the saved image is cropped to its content (bbox_inches)
    for axis in axes:
        _legend_below(axis)
    return figure


def rpo_figure(rpo: Mapping[str, Any]) -> Any | None:
    """The backup's age when it was drilled, against the RPO budget when the report has one.

    Reads ``backup_age_sec``, and ``budget_sec`` and ``status`` when present; None without an age.
    """
    age = rpo.get("backup_age_sec")
    if isinstance(age, bool) or not isinstance(age, int | float) or not math.isfinite(age):
        return None
    budget = rpo.get("budget_sec")
    budget = float(budget) if isinstance(budget, int | float) and not isinstance(budget, bool) and budget > 0 else None
    status = rpo.get("status") if isinstance(rpo.get("status"), str) else None
    largest = max(float(age), budget or 0.0)
    unit, scale = next(
        ((u, s) for u, s in (("days", 86400.0), ("hours", 3600.0), ("minutes", 60.0)) if largest >= 2 * s),
        ("seconds", 1.0),
    )
    figure = _new_figure(6.5, 1.7)
    axis = figure.subplots()
    tone = row_tone(status) if status else None
    colour = ROW_TONES[tone][2] if tone else "black"
    axis.barh(
        ["backup age"],
        [age / scale],
        height=0.5,
        color={"fail": "#f0a5ad", "warn": "#f3d27a"}.get(tone or "", "#8fcf9c"),
        edgecolor=ROW_TONES[tone][2] if tone else "#2e7d46",
        label=f"backup age {_show_seconds(float(age))}",
    )
    axis.set_xlim(0, max(age / scale, 1e-9) * 1.1)
    axis.set_ylim(-0.75, 0.75)  # room above the bar for the budget's label
    if budget is not None:
        draw_budget(axis, budget / scale, f"budget {_show_seconds(budget)}")
    axis.set_xlabel(unit)
    verdict = (
        f"{status} against a budget of {_show_seconds(budget)}"
        if status and budget is not None
        else (status or "no RPO budget in the drill report")
    )
    axis.set_title(
        f"RPO: the backup was {_show_seconds(float(age))} old when drilled — {verdict}",
        fontsize=10,
        color=colour,
        fontweight="bold" if tone else "normal",
    )
    _legend_below(axis)
    return figure


class PhaseEvidence:
    """One phase's evidence folder in the run's bundle, and what the notebook displays."""

    def __init__(self, phase: str, folder: Path) -> None:
        self.phase = phase
        self.folder = folder
        self.kept: list[str] = []
        self.metrics: dict[str, Any] = {}

    @property
    def run_id(self) -> str | None:
        """The run this phase belongs to, what the reports it writes are named after: its
        folder's name when that is a run id; None (the report takes an id of its own) when the
        notebook runs in a folder named otherwise (a test harness, papermill elsewhere)."""
        name = self.folder.parent.name
        return name if RUN_ID_PATTERN.match(name) else None

    # ------------------------------------------------------------------ files

    def keep(self, path: Path | str, name: str | None = None) -> Path:
        """Copy an evidence file (a JSON report, a JUnit XML, a log) into the bundle, owner-only."""
        source = Path(path)
        target = self.folder / (name or source.name)
        if not (target.exists() and source.samefile(target)):  # written straight into the folder: kept as it is
            shutil.copyfile(source, target)
        os.chmod(target, 0o600)
        self.kept.append(target.name)
        return target

    def keep_report(self, document: Mapping[str, Any], path: Path | str) -> None:
        """Keep a check report (gate summary, integrity report) and the files it names beside it."""
        source = Path(path)
        self.keep(source)
        for key, name in (document.get("files") or {}).items():
            if key not in ("summary", "report") and isinstance(name, str) and (source.parent / name).is_file():
                self.keep(source.parent / name)

    def _chart(self, figure: Any, name: str) -> None:
        """Keep ``figure`` as ``name`` (PNG) in the phase's folder and show it."""
        from IPython.display import Image

        data = _png(figure)
        target = self.folder / name
        target.write_bytes(data)
        os.chmod(target, 0o600)
        self.kept.append(name)
        _display(Image(data=data, format="png"))

    # ------------------------------------------------------------------ tables

    def show_checks(self, results: Iterable[CheckResult], title: str = "Checks") -> None:
        _show_frame(_frame(check_rows(results), ["status", "check", "duration", "detail"]), title)

    def show_table(self, rows: Sequence[Mapping[str, Any]], title: str, columns: Sequence[str] | None = None) -> None:
        _show_frame(_frame(rows, columns), title)

    def show_smoke(self, results: Iterable[CheckResult]) -> None:
        """The smoke run per area: passed, failed, errors, and the failing tests by name.

        A run that stopped before any test ran (the target unreachable, a collection error, a
        session fixture that raised) shows that error first, as pytest printed it: a table of
        "(no area) — 18 errors" alone would say nothing about why.
        """
        smoke = next((r for r in results if r.name == "smoke"), None)
        if smoke is None or smoke.status is Status.SKIP:
            self.show_table([], "Smoke per area")
            return
        areas = smoke.evidence.get("areas") or {}
        ran = sum(
            int(c.get("passed") or 0) + int(c.get("failed") or 0) + int(c.get("skipped") or 0) for c in areas.values()
        )
        if smoke.status is Status.FAIL and not ran:
            errors = sum(int(c.get("errors") or 0) for c in areas.values())
            stopped = f"{count(errors, 'test')} could not start" if errors else "no test ran"
            _display(
                ErrorText(
                    f"Smoke stopped before any test ran ({stopped}): {smoke.detail}",
                    smoke_error_lines(str(smoke.evidence.get("output_tail") or "")),
                )
            )
        rows = [
            {
                "area": area,
                "status": "✔ green" if c["status"] == "green" else "✘ red",
                "passed": c["passed"],
                "failed": c["failed"],
                "errors": c["errors"],
                "skipped": c["skipped"],
                "failing tests": ", ".join(c["failing_tests"]),
            }
            for area, c in areas.items()
        ]
        self.show_table(
            rows,
            f"Smoke per area ({smoke.detail})",
            ["area", "status", "passed", "failed", "errors", "skipped", "failing tests"],
        )

    # ------------------------------------------------------------------ latency

    def show_latency(self, results: Iterable[CheckResult]) -> None:
        """Per endpoint: the distribution of the samples with the p95 and the budget marked."""
        measured = [r for r in results if r.name.startswith("latency.") and r.evidence.get("samples_ms")]
        rows = [
            {
                "endpoint": r.evidence.get("path"),
                "status": STATUS_MARKS[str(r.status)],
                "p50 ms": r.evidence.get("p50_ms"),
                "p95 ms": r.evidence.get("p95_ms"),
                "p99 ms": r.evidence.get("p99_ms"),
                "budget ms": r.evidence.get("budget_ms"),
                "samples": r.evidence.get("count"),
            }
            for r in measured
        ]
        self.show_table(rows, "Latency per endpoint (p95 judged against its budget)")
        self.metrics["latency_p95_ms"] = {r.name.removeprefix("latency."): r.evidence.get("p95_ms") for r in measured}
        if measured:
            self._chart(latency_figure(measured), "latency.png")

    # ------------------------------------------------------------------ backups

    def show_backup(self, backup: Any) -> None:
        """Keep the backup's manifest and show it; say so plainly when no backup was taken."""
        if backup is None:
            self.show_table([], "Backup: none was taken")
            return
        self.keep(backup.manifest_path)
        self.show_manifest(backup.manifest)

    def show_manifest(self, manifest: Mapping[str, Any]) -> None:
        """The backup's tables (rows, digest) and files (size, SHA-256) as the manifest records them."""
        source = manifest.get("source") or {}
        self.show_table(
            [
                {
                    "backup": manifest.get("name"),
                    "created": manifest.get("created_at"),
                    "engine": source.get("engine"),
                    "server": source.get("server_version"),
                    "revision": manifest.get("alembic_revision"),
                }
            ],
            "Backup",
        )
        self.show_table(
            [
                {"table": t["name"], "rows": t["rows"], "key": ", ".join(t.get("key") or []), "digest": t["digest"]}
                for t in manifest.get("tables") or []
            ],
            "Tables",
        )
        self.show_table(
            [{"file": f["path"], "bytes": f["size"], "sha256": f["sha256"]} for f in manifest.get("files") or []],
            "Files",
        )
        self.metrics["backup_bytes"] = sum(f["size"] for f in manifest.get("files") or [])

    def show_drill(self, report: Mapping[str, Any]) -> None:
        """The drill: its checks, RTO per stage (a chart), RPO (a chart, judged against its
        budget when the report carries one), and the diff of any table that differs."""
        checks = [
            CheckResult(c["name"], Status(c["status"]), c["detail"], c["duration_sec"], c.get("evidence") or {})
            for c in report.get("checks") or []
        ]
        # The engine is unknown when the drill stopped before reading the manifest (it did not validate).
        engine = f" ({report['engine']})" if report.get("engine") else ""
        self.show_checks(checks, f"Drill of {report.get('backup')}{engine}: {report.get('status')}")
        rto = {stage: seconds for stage, seconds in (report.get("rto_sec") or {}).items() if stage != "total"}
        self.metrics["drill_rto_sec"] = (report.get("rto_sec") or {}).get("total")
        self.show_table(
            [{"stage": stage, "seconds": seconds} for stage, seconds in (report.get("rto_sec") or {}).items()],
            "RTO per stage",
        )
        if rto:
            figure = _new_figure(6.5, 0.5 + 0.45 * len(rto))
            axis = figure.subplots()
            axis.barh(list(rto), list(rto.values()), color="#55a868")
            axis.invert_yaxis()
            axis.set_xlabel("seconds")
            axis.set_title(f"Restore drill RTO: {self.metrics['drill_rto_sec']} s in all", fontsize=10)
            self._chart(figure, "drill_rto.png")
        judged = [
            {
                "measure": name,
                "figure (s)": (figures or {}).get(field),
                "budget (s)": (figures or {}).get("budget_sec"),
                "verdict": (figures or {}).get("status") or "not judged",
            }
            for name, figures, field in (
                ("RPO: the backup's age", report.get("rpo"), "backup_age_sec"),
                ("RTO: the drill's duration", report.get("rto"), "total_sec"),
            )
            if figures
        ]
        self.show_table(judged, "RPO and RTO against their budgets", ["measure", "figure (s)", "budget (s)", "verdict"])
        rpo = report.get("rpo") or {}
        self.show_table([{"measure": key, "value": value} for key, value in rpo.items()], "RPO")
        figure = rpo_figure(rpo)
        if figure is not None:
            self._chart(figure, "drill_rpo.png")
        differing = report.get("diff") or []
        compared = any(c.get("name") == "tables match the manifest" for c in report.get("checks") or [])
        self.show_table(
            [
                {
                    "table": d["table"],
                    "rows recorded": d["rows_recorded"],
                    "rows restored": d["rows_found"],
                    "key ranges differing": d["ranges_differing"],
                }
                for d in differing
            ],
            "Tables that differ"
            if compared
            else "Tables that differ: not compared (the drill stopped before it compared the tables; see its checks)",
        )
        for table in differing:
            if "counts" in table:  # named by the backup's row index
                counts = table["counts"]
                rows = [
                    {
                        "kind": kind,
                        "key": json.dumps(row.get("key"), default=str),
                        "restored": json.dumps(row.get("restored"), default=str) if row.get("restored") else "-",
                        "recorded": json.dumps(row.get("recorded"), default=str) if row.get("recorded") else "-",
                        "digest recorded / restored": f"{row.get('recorded_digest') or '-'} / "
                        f"{row.get('restored_digest') or '-'}",
                        "the backup's own data": row.get("backup_data"),
                    }
                    for kind in ("changed", "missing", "extra")
                    for row in table.get(kind) or []
                ]
                self.show_table(
                    rows,
                    f"{table['table']}: {counts.get('changed', 0)} changed, "
                    f"{counts.get('missing', 0)} missing, {counts.get('extra', 0)} extra "
                    f"(rows; at most {table.get('shown_per_kind')} of each shown)",
                )
                self._show_unnamed(table)
                continue
            for item in table.get("ranges") or []:  # a backup without a row index: samples of the ranges
                self.show_table(
                    item.get("restored_sample") or [],
                    f"{table['table']}: rows restored in key range ({item.get('after_key')}, "
                    f"{item.get('up_to_key')}]: {item.get('rows_recorded')} rows recorded, "
                    f"{item.get('rows_found')} restored",
                )
            self._show_unnamed(table)

    def _show_unnamed(self, table: dict[str, Any]) -> None:
        """The key ranges whose differing rows the row index could not all name, and the ones
        whose digest differs although every row digest matches: never a silent gap."""
        unnamed = table.get("unnamed_chunks") or []
        if unnamed:
            self.show_table(
                unnamed,
                f"{table['table']}: NOT ALL ROWS NAMED in {count(len(unnamed), 'key range')}: more rows differ "
                f"there than the row index could name (up to {unnamed[0].get('capacity')} a range); the counts "
                "above are the rows named",
            )
        unexplained = table.get("unexplained_chunks") or []
        if unexplained:
            self.show_table(
                [{"chunk": number} for number in unexplained],
                f"{table['table']}: chunks whose digest differs although every row digest matches the index",
            )
        if table.get("rows_unavailable"):
            self.show_table(
                [{"why": table["rows_unavailable"]}], f"{table['table']}: the differing rows could not be named"
            )

    def show_rollback(self, report: Any, triggers: Sequence[str]) -> None:
        """NO-GO and why, then every step of the rollback and the checks after it."""
        _display(Banner("Decision", "NO-GO", list(triggers), note="Rollback triggered by:"))
        self.show_checks(report.results, f"Rollback steps and checks after it: {report.verdict}")
        self.show_smoke(report.results)
        for path in (report.freeze_marker, report.verify_summary):
            if Path(path).is_file():
                self.keep(path)
        from aris3nb.backup.restore import ROLLBACK_LOG

        log = Path(report.freeze_marker).parent / ROLLBACK_LOG
        if log.is_file():
            self.keep(log)

    # ------------------------------------------------------------------ integrity

    def show_findings(self, results: Iterable[CheckResult], title: str = "Integrity findings") -> None:
        """Every offending row the invariants name (at most ten per check)."""
        rows = []
        for result in results:
            for row in result.evidence.get("sample") or []:
                rows.append(
                    {
                        "check": result.name,
                        "status": STATUS_MARKS[str(result.status)],
                        "row": ", ".join(f"{k}={page_time(v)}" for k, v in row.items()),
                    }
                )
        self.show_table(rows, title, ["check", "status", "row"])

    # ------------------------------------------------------------------ verdict

    def conclude(
        self, *parts: Any, strict: bool = False, title: str | None = None, facts: Mapping[str, Any] | None = None
    ) -> None:
        """Write the phase's result for the runner, show the verdict, and fail the notebook
        (``PhaseFailed``) when it is FAIL.

        Each part is a report with ``results`` (and its own ``strict``, as the gate and the
        integrity check have) or a list of check results judged with ``strict``.
        """
        results: list[CheckResult] = []
        blocking: list[CheckResult] = []
        verdicts: set[Verdict] = set()
        for part in parts:
            part_results = list(part.results) if hasattr(part, "results") else list(part)
            part_strict = bool(getattr(part, "strict", strict))
            results += part_results
            blocking += blocking_checks(part_results, strict=part_strict)
            verdicts.add(verdict_of(part_results, strict=part_strict))
        verdict = next((v for v in (Verdict.FAIL, Verdict.PASS_WITH_WARNINGS) if v in verdicts), Verdict.PASS)
        reasons = [f"{r.name}: {r.detail}" for r in blocking]
        if verdict is Verdict.PASS_WITH_WARNINGS:
            reasons = [f"{r.name}: {r.detail}" for r in results if r.status is Status.WARN]
        document = {
            "format": RESULT_FORMAT,
            "version": RESULT_VERSION,
            "phase": self.phase,
            "verdict": str(verdict),
            "reasons": reasons,
            "checks": [{"name": r.name, "status": str(r.status), "detail": r.detail} for r in results],
            "metrics": self.metrics,
            "facts": dict(facts or {}),
            "kept": self.kept,
        }
        write_json_evidence(self.folder, RESULT_FILE, document)
        from IPython.display import display

        # An empty text/plain beside it: pages and JupyterLab show nothing for it, and say nothing.
        display({RESULT_MIME: document, "text/plain": ""}, raw=True)
        _display(Banner(title or self.phase, str(verdict), reasons))
        if verdict is Verdict.FAIL:
            raise PhaseFailed(f"{self.phase} FAIL: {'; '.join(reasons)}", [r.name for r in blocking])


def start_phase(phase: str) -> PhaseEvidence:
    """The evidence folder of ``phase`` in this run's bundle (the runner names the run); a
    notebook opened by hand gets a scratch run under ``OPS_ARTIFACTS_DIR/scratch``.

    Never inside a sealed run: a phase notebook re-run where it lies (JupyterLab starts its
    kernel in the notebook's folder, and a relative ``OPS_ARTIFACTS_DIR`` then points into the
    run) would add files to sealed evidence, and its injected parameters would act on the
    target again (a confirmed restore, a revert). ``UsageError`` says where to run it instead."""
    run_dir = os.environ.get(RUN_DIR_ENV)
    if run_dir:
        if (Path(run_dir) / "evidence.json").exists() or enclosing_run(Path(run_dir).absolute().parent):
            raise UsageError(
                f"{RUN_DIR_ENV} names {run_dir}, a sealed run or a folder inside a run: a phase never writes "
                "into another run's evidence"
            )
        folder = Path(run_dir) / phase
    else:
        artifacts = load_settings().artifacts.dir
        for place in (Path.cwd(), artifacts):
            run = enclosing_run(place)
            if run is not None:
                raise UsageError(
                    f"this notebook would run inside the run folder {run}: run by hand there, it would add to "
                    "that run's evidence and act on its target again; copy the phase notebook to a folder outside "
                    "the run (aris3nb's clean one, or this one with its injected parameters checked), set "
                    "OPS_ARTIFACTS_DIR to an absolute folder, and run it there"
                )
        folder = artifacts / "scratch" / new_run_id() / phase
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    return PhaseEvidence(phase, folder)


def enclosing_run(place: Path) -> Path | None:
    """The run folder that ``place`` is, or lies in (``runs/<run id>``, or a folder named like a
    run id that holds an ``evidence.json``, wherever a link led); None when none."""
    resolved = place.resolve()
    for folder in (resolved, *resolved.parents):
        if RUN_ID_PATTERN.fullmatch(folder.name) and (
            folder.parent.name == "runs" or (folder / "evidence.json").is_file()
        ):
            return folder
    return None


def read_result(folder: Path) -> dict[str, Any] | None:
    """The result a phase notebook concluded with, or None if it never got that far."""
    try:
        document = json.loads((folder / RESULT_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return document if isinstance(document, dict) and document.get("format") == RESULT_FORMAT else None


def checked_result_in(notebook: Any) -> tuple[dict[str, Any] | None, str | None]:
    """The phase result an executed notebook carries, checked with its model (docs/FORMAT.md
    §7.5), and why it was refused: (result, None), (None, problem), or (None, None) when the
    notebook never concluded its phase. A result no conclude() writes (a verdict of another
    word, a field missing) is no result: the phase cannot be judged from it."""
    from aris3nb.formats.evidence import PhaseResult
    from aris3nb.formats.reading import DocumentInvalid, validate

    found = result_in(notebook)
    if found is None:
        return None, None
    try:
        validate(PhaseResult, found, "its phase result")
    except DocumentInvalid as exc:
        return None, str(exc)
    return found, None


def result_in(notebook: Any) -> dict[str, Any] | None:
    """The phase result an executed notebook carries (its last ``RESULT_MIME`` output), or
    None when the notebook never concluded its phase."""
    found = None
    for cell in notebook.get("cells") or []:
        for output in cell.get("outputs") or [] if cell.get("cell_type") == "code" else []:
            document = (output.get("data") or {}).get(RESULT_MIME)
            if isinstance(document, dict) and document.get("format") == RESULT_FORMAT:
                found = document
    return found
