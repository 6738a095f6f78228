"""What a phase notebook shows and keeps: verdict banners, tables of checks, smoke areas,
manifests, integrity findings and drill diffs, latency and RTO charts, and the phase's
result for the runner.

A notebook opens its phase with ``start_phase`` and ends it with ``conclude``, which writes
``<run>/<phase>/result.json``, shows the verdict and, when it is FAIL, raises
``PhaseFailed`` — after everything before it was displayed, so the notebook run fails with
its evidence in it. Every value shown is escaped: pandas escapes table cells, banners are
built with ``html.escape``.
"""

from __future__ import annotations

import html
import io
import json
import os
import shutil
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from aris3nb.config import load_settings
from aris3nb.errors import PhaseFailed
from aris3nb.gate.checks import CheckResult, Status, Verdict, blocking_checks, verdict_of
from aris3nb.gate.report import new_run_id, write_json_evidence

#: Set by the runner in the kernel's environment: the run's bundle folder.
RUN_DIR_ENV = "ARIS3NB_RUN_DIR"
#: Set by the runner too: the file (owner-only, outside the bundle) holding the real URLs the
#: run's masked URL parameters stand for, as a JSON list (see ``playbook.resolve_url``).
URLS_FILE_ENV = "ARIS3NB_URLS_FILE"
RESULT_FILE = "result.json"
RESULT_FORMAT = "aris3nb.phase_result"
RESULT_VERSION = 1
STATUS_MARKS = {"PASS": "✔ PASS", "WARN": "⚠ WARN", "FAIL": "✘ FAIL", "SKIP": "· SKIP"}
BANNER_COLOURS = {"PASS": ("#e6f4ea", "#1e7e34"), "PASS_WITH_WARNINGS": ("#fff8e1", "#8a6d00"),
                  "GO": ("#e6f4ea", "#1e7e34"), "completed": ("#e6f4ea", "#1e7e34")}
FAIL_COLOURS = ("#fdecea", "#b00020")
DETAIL_WIDTH = 160


def _display(*objects: Any) -> None:
    from IPython.display import display

    display(*objects)


class Banner:
    """A verdict in large type with its reasons: HTML in a notebook, text elsewhere."""

    def __init__(self, heading: str, verdict: str, reasons: Sequence[str] = (), note: str | None = None) -> None:
        self.heading, self.verdict, self.reasons, self.note = heading, verdict, list(reasons), note

    def _repr_html_(self) -> str:
        background, colour = BANNER_COLOURS.get(self.verdict, FAIL_COLOURS)
        items = "".join(f"<li>{html.escape(reason)}</li>" for reason in self.reasons)
        note = f"<p style='margin:4px 0 0 0'>{html.escape(self.note)}</p>" if self.note else ""
        return (f"<div class='aris3nb-banner' data-verdict='{html.escape(self.verdict)}' style='border:2px solid {colour};"
                f"background:{background};color:{colour};padding:10px 14px;border-radius:6px;margin:4px 0'>"
                f"<div style='font-size:1.6em;font-weight:bold'>{html.escape(self.heading)}: {html.escape(self.verdict)}"
                f"</div>{note}{f'<ul style=margin:4px 0 0 0>{items}</ul>' if items else ''}</div>")

    def __repr__(self) -> str:
        lines = [f"{self.heading}: {self.verdict}"]
        if self.note:
            lines.append(self.note)
        lines += [f"  - {reason}" for reason in self.reasons]
        return "\n".join(lines)


def _frame(rows: Sequence[Mapping[str, Any]], columns: Sequence[str] | None = None) -> Any:
    import pandas as pd

    frame = pd.DataFrame(list(rows), columns=list(columns) if columns else None)
    frame.index = range(1, len(frame) + 1)
    return frame


def _show_frame(frame: Any, title: str | None) -> None:
    import pandas as pd
    from IPython.display import Markdown

    if title:
        _display(Markdown(f"**{title}**"))
    if frame.empty:
        _display(Markdown("*(none)*"))
        return
    with pd.option_context("display.max_colwidth", DETAIL_WIDTH, "display.max_rows", 500, "display.width", 250):
        _display(frame)


def check_rows(results: Iterable[CheckResult]) -> list[dict[str, Any]]:
    return [{"status": STATUS_MARKS[str(r.status)], "check": r.name, "duration": f"{r.duration_sec:.2f} s",
             "detail": r.detail} for r in results]


def _png(figure: Any) -> bytes:
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=96, bbox_inches="tight", metadata={"Software": None})
    plt.close(figure)
    return buffer.getvalue()


class PhaseEvidence:
    """One phase's evidence folder in the run's bundle, and what the notebook displays."""

    def __init__(self, phase: str, folder: Path) -> None:
        self.phase = phase
        self.folder = folder
        self.kept: list[str] = []
        self.metrics: dict[str, Any] = {}

    # ------------------------------------------------------------------ files

    def keep(self, path: Path | str, name: str | None = None) -> Path:
        """Copy an evidence file (a JSON report, a JUnit XML, a log) into the bundle, owner-only."""
        source = Path(path)
        target = self.folder / (name or source.name)
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
        """The smoke run per area: passed, failed, errors, and the failing tests by name."""
        smoke = next((r for r in results if r.name == "smoke"), None)
        if smoke is None or smoke.status is Status.SKIP:
            self.show_table([], "Smoke per area")
            return
        rows = [{"area": area, "status": "✔ green" if c["status"] == "green" else "✘ red", "passed": c["passed"],
                 "failed": c["failed"], "errors": c["errors"], "skipped": c["skipped"],
                 "failing tests": ", ".join(c["failing_tests"])}
                for area, c in (smoke.evidence.get("areas") or {}).items()]
        self.show_table(rows, f"Smoke per area ({smoke.detail})",
                        ["area", "status", "passed", "failed", "errors", "skipped", "failing tests"])

    # ------------------------------------------------------------------ latency

    def show_latency(self, results: Iterable[CheckResult]) -> None:
        """Per endpoint: the distribution of the samples with the p95 and the budget marked."""
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        measured = [r for r in results if r.name.startswith("latency.") and r.evidence.get("samples_ms")]
        rows = [{"endpoint": r.evidence.get("path"), "status": STATUS_MARKS[str(r.status)],
                 "p50 ms": r.evidence.get("p50_ms"), "p95 ms": r.evidence.get("p95_ms"),
                 "p99 ms": r.evidence.get("p99_ms"), "budget ms": r.evidence.get("budget_ms"),
                 "samples": r.evidence.get("count")} for r in measured]
        self.show_table(rows, "Latency per endpoint (p95 judged against its budget)")
        self.metrics["latency_p95_ms"] = {r.name.removeprefix("latency."): r.evidence.get("p95_ms") for r in measured}
        if not measured:
            return
        figure, axes = plt.subplots(1, len(measured), figsize=(4.2 * len(measured), 3.2), squeeze=False)
        for axis, result in zip(axes[0], measured, strict=True):
            evidence = result.evidence
            axis.hist(evidence["samples_ms"], bins=40, color="#4c72b0")
            axis.axvline(evidence["p95_ms"], color="#dd8452", linewidth=2, label=f"p95 {evidence['p95_ms']:.1f} ms")
            budget = evidence["budget_ms"]
            if budget <= max(evidence["samples_ms"]) * 1.5:
                axis.axvline(budget, color="#c44e52", linestyle="--", linewidth=2, label=f"budget {budget:g} ms")
            else:
                axis.annotate(f"budget {budget:g} ms →", xy=(0.98, 0.9), xycoords="axes fraction", ha="right",
                              color="#c44e52")
            axis.set_title(f"GET {evidence['path']}  [{result.status}]", fontsize=10)
            axis.set_xlabel("ms")
            axis.set_ylabel("requests")
            axis.legend(fontsize=8, loc="upper center")
        figure.subplots_adjust(wspace=0.3)  # the saved image is cropped to its content (bbox_inches)
        self._chart(figure, "latency.png")

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
        self.show_table([{"backup": manifest.get("name"), "created": manifest.get("created_at"),
                          "engine": source.get("engine"), "server": source.get("server_version"),
                          "revision": manifest.get("alembic_revision")}], "Backup")
        self.show_table([{"table": t["name"], "rows": t["rows"], "key": ", ".join(t.get("key") or []),
                          "digest": t["digest"]} for t in manifest.get("tables") or []], "Tables")
        self.show_table([{"file": f["path"], "bytes": f["size"], "sha256": f["sha256"]}
                         for f in manifest.get("files") or []], "Files")
        self.metrics["backup_bytes"] = sum(f["size"] for f in manifest.get("files") or [])

    def show_drill(self, report: Mapping[str, Any]) -> None:
        """The drill: its checks, RTO per stage (a chart), RPO, and the diff of any table that differs."""
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        checks = [CheckResult(c["name"], Status(c["status"]), c["detail"], c["duration_sec"], c.get("evidence") or {})
                  for c in report.get("checks") or []]
        self.show_checks(checks, f"Drill of {report.get('backup')} ({report.get('engine')}): {report.get('status')}")
        rto = {stage: seconds for stage, seconds in (report.get("rto_sec") or {}).items() if stage != "total"}
        self.metrics["drill_rto_sec"] = (report.get("rto_sec") or {}).get("total")
        self.show_table([{"stage": stage, "seconds": seconds} for stage, seconds in (report.get("rto_sec") or {}).items()],
                        "RTO per stage")
        if rto:
            figure, axis = plt.subplots(figsize=(6.5, 0.5 + 0.45 * len(rto)))
            axis.barh(list(rto), list(rto.values()), color="#55a868")
            axis.invert_yaxis()
            axis.set_xlabel("seconds")
            axis.set_title(f"Restore drill RTO: {self.metrics['drill_rto_sec']} s in all", fontsize=10)
            self._chart(figure, "drill_rto.png")
        rpo = report.get("rpo") or {}
        self.show_table([{"measure": key, "value": value} for key, value in rpo.items()], "RPO")
        differing = report.get("diff") or []
        self.show_table([{"table": d["table"], "rows recorded": d["rows_recorded"], "rows restored": d["rows_found"],
                          "key ranges differing": d["ranges_differing"]} for d in differing], "Tables that differ")
        for table in differing:
            for item in table.get("ranges") or []:
                self.show_table(item.get("restored_sample") or [],
                                f"{table['table']}: rows restored in key range ({item.get('after_key')}, "
                                f"{item.get('up_to_key')}]: {item.get('rows_recorded')} rows recorded, "
                                f"{item.get('rows_found')} restored")

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
                rows.append({"check": result.name, "status": STATUS_MARKS[str(result.status)],
                             "row": ", ".join(f"{k}={v}" for k, v in row.items())})
        self.show_table(rows, title, ["check", "status", "row"])

    # ------------------------------------------------------------------ verdict

    def conclude(self, *parts: Any, strict: bool = False, title: str | None = None,
                 facts: Mapping[str, Any] | None = None) -> None:
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
            "format": RESULT_FORMAT, "version": RESULT_VERSION, "phase": self.phase, "verdict": str(verdict),
            "reasons": reasons,
            "checks": [{"name": r.name, "status": str(r.status), "detail": r.detail} for r in results],
            "metrics": self.metrics, "facts": dict(facts or {}), "kept": self.kept,
        }
        write_json_evidence(self.folder, RESULT_FILE, document)
        _display(Banner(title or self.phase, str(verdict), reasons))
        if verdict is Verdict.FAIL:
            raise PhaseFailed(f"{self.phase} FAIL: {'; '.join(reasons)}", [r.name for r in blocking])


def start_phase(phase: str) -> PhaseEvidence:
    """The evidence folder of ``phase`` in this run's bundle (the runner names the run); a
    notebook opened by hand gets a scratch run under ``OPS_ARTIFACTS_DIR/scratch``."""
    run_dir = os.environ.get(RUN_DIR_ENV)
    if run_dir:
        folder = Path(run_dir) / phase
    else:
        folder = load_settings().ops_artifacts_dir / "scratch" / new_run_id() / phase
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    return PhaseEvidence(phase, folder)


def read_result(folder: Path) -> dict[str, Any] | None:
    """The result a phase notebook concluded with, or None if it never got that far."""
    try:
        document = json.loads((folder / RESULT_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return document if isinstance(document, dict) and document.get("format") == RESULT_FORMAT else None
