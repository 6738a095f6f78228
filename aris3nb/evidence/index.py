"""``<OPS_ARTIFACTS_DIR>/index.html``: the front page of every playbook run.

It lists each ``runs/<run_id>/`` folder, newest first, with the run's verdict and decision (an
interrupted run reads INTERRUPTED, not FAIL; a re-run names the run it repeats), its target (the
database, password masked, and the service), one colour-coded line per phase linking to that
phase's HTML page, and the reasons; then trends across runs as PNG charts embedded in the page,
each naming the phase it was measured in: p95 latency per endpoint (one chart per phase that
measured it, never one series switching phase), drill RTO (failed drills marked apart) and
backup size. The x labels tell every run apart. Like the phase pages it is one file that loads
nothing: no script, no remote stylesheet; it fits a 1,000 px wide window without clipping.

The page is rebuilt from the runs' ``evidence.json`` files each time and holds nothing of its
own, so a bad run cannot hide the others: a folder whose ``evidence.json`` is unreadable,
malformed or of an unknown version is listed as "unreadable evidence", and one without it as
"incomplete". Every value taken from ``evidence.json`` is escaped (Jinja autoescape) and has URL
passwords masked.
"""

from __future__ import annotations

import base64
import datetime as dt
import io
import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import quote

import jinja2
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from aris3nb.core.files import write_text_evidence
from aris3nb.core.redact import redact_text, redact_url
from aris3nb.evidence.display import TIME_FORMAT, page_time
from aris3nb.evidence.render import remote_references

__all__ = ["write_index"]

EVIDENCE_FORMAT = "aris3nb.evidence"
EVIDENCE_VERSIONS = frozenset({1})
INDEX_FILENAME = "index.html"
# Charts stay legible up to about this many points; the table above them lists every run.
MAX_CHART_RUNS = 60
MAX_CHART_ENDPOINTS = 12

_TEMPLATES = Path(__file__).with_name("templates")
_RUN_ID_TIME = re.compile(r"^(\d{8}T\d{6}Z)")

_VERDICT_CSS = {"PASS": "pass", "PASS_WITH_WARNINGS": "warn", "FAIL": "fail"}
INTERRUPTED = "INTERRUPTED"
_TARGET_MODES = {
    "embedded": "embedded default (disposable)",
    "database": "reference service over the database",
    "base_url": "deployed service",
}
_LATENCY, _RTO, _BACKUP = "latency_p95_ms", "drill_rto_sec", "backup_bytes"
# The phase each single-valued metric belongs to when a run's phases do not say (older runs).
_METRIC_PHASES = {_RTO: "drill", _BACKUP: "deploy"}
_DECISION_CSS = {"GO": "pass", "NO-GO": "fail"}
# Statuses that mean the phase's notebook did not run to its end.
_BROKEN_STATUSES = frozenset({"failed", "error", "timeout", "dead_kernel", "interrupted"})
_STATUS_CSS = {"completed": "done", "skipped": "skipped"}


@dataclass
class _PhaseCell:
    status: str
    verdict: str | None
    css: str
    href: str | None
    missing_page: bool
    duration: str
    tooltip: str


@dataclass
class _Page:
    name: str
    href: str


@dataclass
class _Run:
    """One row of the page. ``kind`` is "ok", "unreadable" or "incomplete"."""

    name: str
    kind: str
    when: dt.datetime
    started: str = ""
    problem: str = ""
    pages: list[_Page] = field(default_factory=list)
    evidence: dict[str, Any] = field(default_factory=dict)
    evidence_href: str = ""
    duration: str = "—"
    verdict: str = "—"
    verdict_class: str = "unknown"
    decision: str = "—"
    decision_class: str = "unknown"
    target: str = ""
    target_database: str = ""
    target_service: str = ""
    target_profile: str = ""
    recorded_verdict: str = ""
    rerun_of: str = ""
    phases: dict[str, _PhaseCell] = field(default_factory=dict)
    reasons: list[tuple[str, str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def row_class(self) -> str:
        """How the row stands out: ``problem`` (FAIL, broken), ``stopped`` (interrupted), ``warning``."""
        if self.kind != "ok" or self.verdict_class in ("fail", "broken"):
            return "problem"
        return {"interrupted": "stopped", "warn": "warning"}.get(self.verdict_class, "")

    @property
    def kind_label(self) -> str:
        return {"unreadable": "unreadable evidence", "incomplete": "incomplete"}.get(self.kind, self.kind)


@dataclass
class _PhaseColumn:
    name: str
    title: str


@dataclass
class _ChartRow:
    run: str
    values: list[str]


@dataclass
class _Chart:
    title: str
    src: str | None = None
    alt: str = ""
    series_names: list[str] = field(default_factory=list)
    rows: list[_ChartRow] = field(default_factory=list)


def write_index(artifacts_dir: Path) -> Path:
    """Rebuild ``artifacts_dir/index.html`` from ``artifacts_dir/runs/*/evidence.json``.

    Written 0600 and atomically (complete or absent); returns its path. A run whose evidence
    cannot be read is listed as such, never fatal. Raises ``OSError`` if the page cannot be
    written, and ``RuntimeError`` if it would load anything from outside itself (a bug here).
    """
    runs = _read_runs(Path(artifacts_dir) / "runs")
    html = _render_page(runs)
    remote = remote_references(html)
    if remote:
        raise RuntimeError(f"the runs index would load resources from outside itself: {'; '.join(remote[:5])}")
    return write_text_evidence(Path(artifacts_dir), INDEX_FILENAME, html)


# --- reading runs --------------------------------------------------------------------------------


def _read_runs(runs_dir: Path) -> list[_Run]:
    """Every run folder under ``runs_dir``, newest first. Hidden folders and symlinks are skipped."""
    try:
        folders = [p for p in runs_dir.iterdir() if p.is_dir() and not p.is_symlink() and not p.name.startswith(".")]
    except (FileNotFoundError, NotADirectoryError):
        return []
    runs = [_read_run(folder) for folder in folders]
    runs.sort(key=lambda run: (run.when, run.name), reverse=True)
    return runs


def _read_run(folder: Path) -> _Run:
    name = folder.name
    evidence_path = folder / "evidence.json"
    if not evidence_path.exists():
        return _problem_run(
            folder, "incomplete", "no evidence.json: the run is still going, or stopped before writing it"
        )
    try:
        evidence = json.loads(evidence_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError, RecursionError) as exc:
        return _problem_run(folder, "unreadable", f"evidence.json cannot be read: {_first_line(exc)}")
    if not isinstance(evidence, dict) or evidence.get("format") != EVIDENCE_FORMAT:
        return _problem_run(folder, "unreadable", f"evidence.json is not an {EVIDENCE_FORMAT} document")
    if evidence.get("version") not in EVIDENCE_VERSIONS or isinstance(evidence.get("version"), bool):
        return _problem_run(
            folder,
            "unreadable",
            f"evidence.json has version {_text(evidence.get('version'))!s}, which this aris3nb does not read "
            f"(it reads {', '.join(map(str, sorted(EVIDENCE_VERSIONS)))}); use a newer aris3nb",
        )

    started_at = _parse_time(evidence.get("started_at"))
    run = _Run(
        name=name,
        kind="ok",
        when=started_at or _time_from_name(name) or _mtime(folder),
        started=_show_time(started_at, evidence.get("started_at")),
        evidence=evidence,
        evidence_href=_href(name, "evidence.json"),
        duration=_show_duration(_number(evidence.get("duration_sec"))),
    )
    verdict = evidence.get("verdict")
    run.verdict = _text(verdict) or "—"
    run.verdict_class = _VERDICT_CSS.get(verdict, "unknown") if isinstance(verdict, str) else "unknown"
    if evidence.get("interrupted") is True:
        run.recorded_verdict = run.verdict
        run.verdict, run.verdict_class = INTERRUPTED, "interrupted"
    decision = evidence.get("decision")
    run.decision = _text(decision) or "—"
    run.decision_class = _DECISION_CSS.get(decision, "unknown") if isinstance(decision, str) else "unknown"
    run.target, run.target_database, run.target_service = _show_target(evidence.get("target"))
    run.target_profile = _show_profile(evidence.get("profile"))
    parameters = evidence.get("parameters")
    if isinstance(parameters, dict) and parameters.get("rerun_of") is not None:
        run.rerun_of = _text(parameters.get("rerun_of"))
    recorded_id = evidence.get("run_id")
    if recorded_id != name:
        run.notes.append(f"evidence.json names run {_text(recorded_id) or '(none)'}")
    for position, phase in enumerate(_phases(evidence), start=1):
        key = _text(phase.get("phase")) or f"phase {position}"
        if key in run.phases:
            continue
        run.phases[key] = _phase_cell(folder, phase)
        reasons = phase.get("reasons")
        if isinstance(reasons, list):
            run.reasons.extend((key, redact_text(_text(reason))) for reason in reasons if _text(reason))
    # The run's own warnings (its bucket lock lost, a re-run not verifiable) weigh as a phase's.
    warnings = evidence.get("warnings")
    warnings = list(warnings) if isinstance(warnings, list) else []
    if isinstance(parameters, dict):
        warnings.append(parameters.get("rerun_warning"))
    run.reasons.extend(("run", redact_text(_text(warning))) for warning in warnings if _text(warning))
    return run


def _problem_run(folder: Path, kind: str, problem: str) -> _Run:
    when = _time_from_name(folder.name)
    pages = []
    try:
        for page in sorted(folder.glob("*.html")):
            if page.is_file() and not page.is_symlink():
                pages.append(_Page(page.name, _href(folder.name, page.name)))
    except OSError:
        pass
    return _Run(
        name=folder.name,
        kind=kind,
        when=when or _mtime(folder),
        started=_show_time(when, None),
        problem=problem,
        pages=pages,
    )


def _phases(evidence: dict[str, Any]) -> list[dict[str, Any]]:
    phases = evidence.get("phases")
    return [phase for phase in phases if isinstance(phase, dict)] if isinstance(phases, list) else []


def _phase_cell(folder: Path, phase: dict[str, Any]) -> _PhaseCell:
    status = _text(phase.get("status")) or "unknown"
    verdict_raw = phase.get("verdict")
    verdict = _text(verdict_raw) or None
    if status in _BROKEN_STATUSES:
        css = "broken"
    elif isinstance(verdict_raw, str) and verdict_raw in _VERDICT_CSS:
        css = _VERDICT_CSS[verdict_raw]
    else:
        css = _STATUS_CSS.get(status, "unknown")
    page = _safe_relative(phase.get("html"))
    href = None
    missing_page = False
    if page is not None:
        target = folder.joinpath(*page.parts)
        if target.is_file() and not target.is_symlink():
            href = _href(folder.name, *page.parts)
        else:
            missing_page = True
    title = _text(phase.get("title"))
    tooltip = " — ".join(part for part in (title, f"status {status}", f"verdict {verdict}" if verdict else "") if part)
    return _PhaseCell(
        status=status,
        verdict=verdict,
        css=css,
        href=href,
        missing_page=missing_page,
        duration=_show_duration(_number(phase.get("duration_sec")), short=True),
        tooltip=tooltip,
    )


def _safe_relative(value: Any) -> PurePosixPath | None:
    """``value`` as a path inside the run folder, or None if it is absent or could leave it."""
    if not isinstance(value, str) or not value or "\\" in value or ":" in value:
        return None
    path = PurePosixPath(value)
    if path.is_absolute() or any(part in ("", ".", "..") or part.startswith(".") for part in path.parts):
        return None
    return path


def _href(*parts: str) -> str:
    return "/".join(["runs", *(quote(part, safe="") for part in parts)])


# --- values ---------------------------------------------------------------------------------------


def _text(value: Any) -> str:
    """A JSON value as display text ('' for null)."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, sort_keys=True)


def _number(value: Any) -> float | None:
    """A finite, non-negative JSON number, or None (missing, null, text, bool, NaN)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    number = float(value)
    return number if math.isfinite(number) and number >= 0 else None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def _parse_time(value: Any) -> dt.datetime | None:
    if not isinstance(value, str):
        return None
    try:
        moment = dt.datetime.fromisoformat(value)
    except ValueError:
        return None
    return moment.replace(tzinfo=dt.UTC) if moment.tzinfo is None else moment.astimezone(dt.UTC)


def _time_from_name(name: str) -> dt.datetime | None:
    """The start time a run id begins with (``20261128T094500Z-a1b2c3``)."""
    match = _RUN_ID_TIME.match(name)
    if not match:
        return None
    try:
        return dt.datetime.strptime(match[1], "%Y%m%dT%H%M%SZ").replace(tzinfo=dt.UTC)
    except ValueError:
        return None


def _mtime(folder: Path) -> dt.datetime:
    try:
        return dt.datetime.fromtimestamp(folder.stat().st_mtime, dt.UTC)
    except OSError:
        return dt.datetime.min.replace(tzinfo=dt.UTC)


def _show_time(moment: dt.datetime | None, raw: Any) -> str:
    if moment is not None:
        return str(page_time(moment))
    return _text(raw)


def _show_duration(seconds: float | None, *, short: bool = False) -> str:
    if seconds is None:
        return "" if short else "—"
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {secs:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


def _show_target(target: Any) -> tuple[str, str, str]:
    """What a run was played against: (kind, database URL, service URL), passwords masked.

    The runner masks them already; they are masked again here, since the page must not show a
    password whoever wrote ``evidence.json``.
    """
    if not isinstance(target, dict):
        return redact_text(_text(target)), "not recorded", "not recorded"
    mode = target.get("mode")
    kind = _TARGET_MODES.get(mode, _text(mode)) if isinstance(mode, str) else _text(mode)
    database = target.get("database_url")
    shown_database = (redact_url(database) if isinstance(database, str) else _text(database)) or "none given"
    service = _text(target.get("base_url"))
    return redact_text(kind), redact_text(shown_database), redact_text(service) or "none given"


def _show_profile(profile: Any) -> str:
    """The target profile a run judged with, as the phase pages name it: its name and the first
    12 hex digits of its file's SHA-256 ("built in" for one bundled with aris3nb)."""
    if not isinstance(profile, dict):
        return "not recorded"  # runs from before target profiles
    name = _text(profile.get("name")) or "(no name)"
    digest = profile.get("sha256")
    if not isinstance(digest, str) or not digest:
        return redact_text(f"{name} (built in)")
    return redact_text(f"{name} ({digest[:19]}…)")


# --- trends ---------------------------------------------------------------------------------------


def _metrics(run: _Run) -> dict[str, Any]:
    metrics = run.evidence.get("metrics")
    return metrics if isinstance(metrics, dict) else {}


def _phase_metrics(run: _Run) -> list[tuple[str, dict[str, Any], dict[str, Any]]]:
    """(phase name, its metrics, the phase) for each phase of ``run`` that recorded metrics."""
    found = []
    for phase in _phases(run.evidence):
        metrics = phase.get("metrics")
        if isinstance(metrics, dict) and metrics:
            found.append((_text(phase.get("phase")), metrics, phase))
    return found


def _latency_by_phase(run: _Run) -> dict[str, dict[str, float | None]]:
    """p95 per endpoint, keyed by the phase that measured it. A run whose phases do not say
    (evidence.json from before phases carried metrics) is keyed "" (phase not recorded)."""
    by_phase: dict[str, dict[str, float | None]] = {}
    for name, metrics, _phase in _phase_metrics(run):
        latency = metrics.get(_LATENCY)
        if isinstance(latency, dict):
            by_phase.setdefault(name, {}).update({_text(k): _number(v) for k, v in latency.items()})
    if not by_phase:
        latency = _metrics(run).get(_LATENCY)
        if isinstance(latency, dict):
            by_phase[""] = {_text(k): _number(v) for k, v in latency.items()}
    return by_phase


def _phase_failed(phase: dict[str, Any] | None) -> bool | None:
    """True when ``phase`` failed or did not finish, False when it passed, None when unknown."""
    if not isinstance(phase, dict):
        return None
    return phase.get("verdict") == "FAIL" or phase.get("status") in _BROKEN_STATUSES


def _single_metric(run: _Run, key: str) -> tuple[float | None, bool | None]:
    """A one-number metric (drill RTO, backup size) from the phase that recorded it, with
    whether that phase failed; else the run's own figure and its usual phase's outcome."""
    for _name, metrics, phase in _phase_metrics(run):
        value = _number(metrics.get(key))
        if value is not None:
            return value, _phase_failed(phase)
    usual = next((p for p in _phases(run.evidence) if p.get("phase") == _METRIC_PHASES.get(key)), None)
    return _number(_metrics(run).get(key)), _phase_failed(usual)


def run_labels(runs: list[_Run]) -> list[str]:
    """One x label per run that tells it apart from every other: its start to the minute, to
    the second when two share a minute, then with its id's suffix; re-runs say so."""
    labels: list[str] = []
    for form in ("%Y-%m-%dT%H:%MZ", TIME_FORMAT):
        labels = [run.when.strftime(form) for run in runs]
        if len(set(labels)) == len(labels):
            break
    else:
        labels = [f"{label} {run.name.rsplit('-', 1)[-1]}" for label, run in zip(labels, runs, strict=True)]
    return [f"{label} (re-run)" if run.rerun_of else label for label, run in zip(labels, runs, strict=True)]


def _charts(runs: list[_Run]) -> tuple[list[_Chart], str]:
    readable = [run for run in reversed(runs) if run.kind == "ok"]  # oldest first
    shown = readable[-MAX_CHART_RUNS:]
    note = "Oldest run on the left."
    if len(readable) > len(shown):
        note = f"The charts show the last {len(shown)} of {len(readable)} readable runs, oldest on the left."
    labels = run_labels(shown)
    names = [run.name for run in shown]
    charts: list[_Chart] = []

    latency = [_latency_by_phase(run) for run in shown]
    phases: list[str] = []
    for by_phase in latency:
        phases.extend(name for name in by_phase if name not in phases)
    for phase in phases or ["(none)"]:
        endpoints: list[str] = []
        for by_phase in latency:
            endpoints.extend(key for key in by_phase.get(phase, {}) if key not in endpoints)
        endpoints = endpoints[:MAX_CHART_ENDPOINTS]
        series = {endpoint: [by_phase.get(phase, {}).get(endpoint) for by_phase in latency] for endpoint in endpoints}
        where = f"{phase} phase" if phase else "phase not recorded"
        charts.append(
            _chart(
                f"p95 latency per endpoint (ms), measured in the {where}"
                if phases
                else "p95 latency per endpoint (ms)",
                "ms",
                labels,
                names,
                series,
            )
        )

    rto = [_single_metric(run, _RTO) for run in shown]
    rto_chart = _chart(
        "Restore drill RTO (s), measured in the drill phase; failed drills marked ✘",
        "seconds",
        labels,
        names,
        {"drill RTO": [value for value, _failed in rto]},
        outcomes=[failed for _value, failed in rto],
    )
    charts.append(rto_chart)

    backup = [_single_metric(run, _BACKUP)[0] for run in shown]
    unit, scale = _byte_unit(max((b for b in backup if b is not None), default=0))
    charts.append(
        _chart(
            f"Backup size ({unit}), made in the deploy phase",
            unit,
            labels,
            names,
            {"backup size": [None if b is None else b / scale for b in backup]},
        )
    )
    return charts, note


def _byte_unit(largest: float) -> tuple[str, float]:
    for unit, scale in (("GiB", 1024.0**3), ("MiB", 1024.0**2), ("KiB", 1024.0)):
        if largest >= scale:
            return unit, scale
    return "bytes", 1.0


def _chart(
    title: str,
    ylabel: str,
    labels: list[str],
    names: list[str],
    series: dict[str, list[float | None]],
    outcomes: list[bool | None] | None = None,
) -> _Chart:
    chart = _Chart(title=title, series_names=list(series) + (["drill"] if outcomes else []))
    points = [value for values in series.values() for value in values if value is not None]
    if not points:
        return chart
    outcome_words = {True: "FAIL", False: "passed", None: "—"}
    chart.rows = [
        _ChartRow(
            name,
            [_show_value(values[i]) for values in series.values()] + ([outcome_words[outcomes[i]]] if outcomes else []),
        )
        for i, name in enumerate(names)
        if any(values[i] is not None for values in series.values())
    ]
    chart.alt = f"{len(chart.rows)} runs; the values are listed under the chart"
    chart.src = _line_chart_png(ylabel, labels, series, outcomes)
    return chart


def _show_value(value: float | None) -> str:
    if value is None:
        return "—"
    return f"{value:,.3f}".rstrip("0").rstrip(".") if value < 1000 else f"{value:,.0f}"


def _plain_label(text: str) -> str:
    """Text matplotlib shows literally: ``$`` would start mathtext (and can fail to parse)."""
    text = text if len(text) <= 40 else text[:39] + "…"
    return text.replace("$", r"\$")


def line_chart(
    ylabel: str, labels: list[str], series: dict[str, list[float | None]], outcomes: list[bool | None] | None = None
) -> Figure:
    """A line chart of ``series`` over runs. With ``outcomes`` (one per run: True failed,
    False passed, None unknown) each point is marked by its run's outcome, failed ones apart.
    Figure + Agg canvas: no pyplot global state."""
    figure = Figure(figsize=(8, 3.4), dpi=100, layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    positions = list(range(len(labels)))
    for name, values in series.items():
        ys = [math.nan if v is None else v for v in values]
        if outcomes is None:
            axes.plot(positions, ys, marker="o", markersize=4, linewidth=1.5, label=_plain_label(name))
            continue
        axes.plot(positions, ys, color="#8c959f", linewidth=1, zorder=1)
        for outcome, marker, color, size, label in (
            (False, "o", "#1a7f37", 30, "drill passed"),
            (True, "X", "#cf222e", 90, "drill FAILED"),
            (None, "o", "#8c959f", 30, "outcome unknown"),
        ):
            at = [i for i in positions if outcomes[i] is outcome and values[i] is not None]
            if at:  # ys[i] is values[i] there: none of them is None
                axes.scatter(at, [ys[i] for i in at], zorder=2, marker=marker, color=color, s=size, label=label)
    step = max(1, math.ceil(len(labels) / 10))
    ticks = positions[::step]
    axes.set_xticks(ticks)
    axes.set_xticklabels([_plain_label(labels[i]) for i in ticks], rotation=30, ha="right", fontsize=8)
    axes.set_xlim(-0.5, max(len(labels) - 0.5, 0.5))
    axes.set_ylim(bottom=0)
    axes.set_ylabel(_plain_label(ylabel))
    axes.grid(alpha=0.3)
    if len(series) > 1 or outcomes is not None:
        axes.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    return figure


def _line_chart_png(
    ylabel: str, labels: list[str], series: dict[str, list[float | None]], outcomes: list[bool | None] | None = None
) -> str:
    """``line_chart`` as a ``data:image/png`` URI."""
    buffer = io.BytesIO()
    line_chart(ylabel, labels, series, outcomes).savefig(buffer, format="png", metadata={"Software": None})
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


# --- page -----------------------------------------------------------------------------------------

_environment = jinja2.Environment(
    loader=jinja2.FileSystemLoader(_TEMPLATES),
    autoescape=True,
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)


def _phase_columns(runs: list[_Run]) -> list[_PhaseColumn]:
    """Phase names in the order runs list them (newest run first), each once."""
    columns: dict[str, _PhaseColumn] = {}
    for run in runs:
        for phase in _phases(run.evidence):
            name = _text(phase.get("phase"))
            if name and name not in columns:
                columns[name] = _PhaseColumn(name, _text(phase.get("title")))
    for run in runs:  # phases with no name, keyed by position in _read_run
        for key in run.phases:
            columns.setdefault(key, _PhaseColumn(key, ""))
    return list(columns.values())


def _render_page(runs: list[_Run]) -> str:
    charts, charts_note = _charts(runs) if any(run.kind == "ok" for run in runs) else ([], "")
    template = _environment.get_template("runs_index.html.j2")
    return template.render(
        runs=runs,
        phase_columns=_phase_columns(runs),
        charts=charts,
        charts_note=charts_note if charts else "No readable run yet.",
        generated_at=page_time(dt.datetime.now(dt.UTC)),
    )
