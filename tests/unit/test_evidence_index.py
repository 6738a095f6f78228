"""aris3nb.evidence.index: the front page of every run under OPS_ARTIFACTS_DIR.

The index is how an auditor finds a run: it must list every run folder whatever state its
evidence is in (a bad file must not hide the others), link to pages that exist, show values as
text, and open offline. Real run folders in tmp_path, the real renderer and matplotlib.
"""

from __future__ import annotations

import json
import stat
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote

from aris3nb.evidence.index import write_index
from aris3nb.evidence.render import remote_references

HOSTILE = "<script>alert(1)</script>"
PHASES = [
    ("pre_deploy", "Pre-deploy: release readiness gate"),
    ("deploy", "Deploy: backup and reachability"),
    ("post_deploy", "Post-deploy: smoke and integrity"),
]


class _Page(HTMLParser):
    """Links, image sources and script texts of a page."""

    def __init__(self, html: str) -> None:
        super().__init__(convert_charrefs=True)
        self.links: list[str] = []
        self.images: list[str] = []
        self.scripts: list[str] = []
        self._in_script = False
        self.feed(html)
        self.close()

    def handle_starttag(self, tag, attrs):
        values = dict(attrs)
        if tag == "a" and values.get("href"):
            self.links.append(values["href"])
        elif tag == "img":
            self.images.append(values.get("src") or "")
        elif tag == "script":
            self._in_script = True
            self.scripts.append("")

    def handle_data(self, data):
        if self._in_script:
            self.scripts[-1] += data

    def handle_endtag(self, tag):
        if tag == "script":
            self._in_script = False


def _run(artifacts: Path, run_id: str, *, verdict: str = "PASS", decision: str = "GO",
         metrics: dict | None = None, phases: list[dict] | None = None, pages: bool = True) -> Path:
    folder = artifacts / "runs" / run_id
    folder.mkdir(parents=True)
    if phases is None:
        phases = []
        for number, (phase, title) in enumerate(PHASES, start=1):
            html = f"{number:02d}-{phase}.html"
            phases.append({"phase": phase, "title": title, "status": "completed", "verdict": verdict,
                           "reasons": [], "notebook": f"{number:02d}-{phase}.ipynb", "html": html,
                           "duration_sec": 9.1})
    if pages:
        for phase in phases:
            if isinstance(phase.get("html"), str) and "/" not in phase["html"]:
                (folder / phase["html"]).write_text("<!DOCTYPE html><title>phase</title>", encoding="utf-8")
    stamp = run_id.split("-")[0]
    started = f"{stamp[0:4]}-{stamp[4:6]}-{stamp[6:8]}T{stamp[9:11]}:{stamp[11:13]}:{stamp[13:15]}.123Z"
    evidence = {
        "format": "aris3nb.evidence", "version": 1, "run_id": run_id,
        "started_at": started, "finished_at": started, "duration_sec": 41.2,
        "verdict": verdict, "decision": decision, "exit_code": 0 if verdict != "FAIL" else 1,
        "target": {"mode": "embedded", "base_url": "http://127.0.0.1:8123", "database_url": "sqlite:///x.db"},
        "phases": phases, "metrics": metrics or {}, "files": [], "previous": None, "signature": None,
    }
    (folder / "evidence.json").write_text(json.dumps(evidence), encoding="utf-8")
    return folder


def _metrics(scale: float) -> dict:
    return {
        "latency_p95_ms": {"health": 0.7 * scale, "stock": 3.1 * scale, "reports": 3.5 * scale, "exports": 2.9 * scale},
        "drill_rto_sec": 1.4 * scale,
        "backup_bytes": int(1234567 * scale),
    }


def _read(path: Path) -> str:
    return path.read_text(encoding="utf-8")


def test_zero_runs_gives_a_page_saying_so(tmp_path):
    index = write_index(tmp_path)

    assert index == tmp_path / "index.html"
    html = _read(index)
    assert "No runs yet" in html
    assert 'class="runs"' not in html and "data:image/png" not in html
    assert remote_references(html) == []
    assert stat.S_IMODE(index.stat().st_mode) == 0o600


def test_an_empty_runs_folder_is_zero_runs_too(tmp_path):
    (tmp_path / "runs").mkdir()

    assert "No runs yet" in _read(write_index(tmp_path))


def test_three_runs_newest_first_with_verdicts_phases_and_trend_charts(tmp_path):
    _run(tmp_path, "20261126T080000Z-aaaaaa", metrics=_metrics(1.0))
    _run(tmp_path, "20261128T094500Z-cccccc", verdict="FAIL", decision="NO-GO", metrics=_metrics(1.5))
    _run(tmp_path, "20261127T120000Z-bbbbbb", verdict="PASS_WITH_WARNINGS", metrics=_metrics(1.2))

    html = _read(write_index(tmp_path))

    positions = [html.index(f"<code>{run_id}</code>") for run_id in
                 ("20261128T094500Z-cccccc", "20261127T120000Z-bbbbbb", "20261126T080000Z-aaaaaa")]
    assert positions == sorted(positions)
    for verdict in ("FAIL", "PASS_WITH_WARNINGS", "PASS", "NO-GO", "GO"):
        assert f">{verdict}</span>" in html
    assert 'class="badge fail">FAIL' in html and 'class="badge warn">PASS_WITH_WARNINGS' in html
    for phase, _title in PHASES:
        assert f">{phase}</th>" in html
    assert "2026-11-28 09:45:00" in html and "41.2 s" in html
    # p95 per endpoint, drill RTO, backup size: three PNG charts inside the page
    assert html.count('<img src="data:image/png') == 3
    assert "MiB" in html and "exports" in html
    assert remote_references(html) == []
    assert _Page(html).scripts == []


def test_every_link_points_at_a_file_that_exists(tmp_path):
    _run(tmp_path, "20261126T080000Z-aaaaaa", metrics=_metrics(1.0))
    _run(tmp_path, "20261127T080000Z-bbbbbb")
    (tmp_path / "runs" / "20261128T080000Z-cccccc").mkdir()
    (tmp_path / "runs" / "20261128T080000Z-cccccc" / "01-pre_deploy.html").write_text("partial", encoding="utf-8")

    links = _Page(_read(write_index(tmp_path))).links

    assert "runs/20261126T080000Z-aaaaaa/01-pre_deploy.html" in links
    assert "runs/20261127T080000Z-bbbbbb/evidence.json" in links
    assert "runs/20261128T080000Z-cccccc/01-pre_deploy.html" in links  # pages of an incomplete run
    for link in links:
        assert not link.startswith(("/", "http:", "https:", "file:")), link
        assert (tmp_path / unquote(link)).is_file(), link


def test_phase_pages_that_are_missing_or_outside_the_run_are_not_linked(tmp_path):
    (tmp_path / "secret.html").write_text("not part of any run", encoding="utf-8")
    phases = [
        {"phase": "pre_deploy", "status": "completed", "verdict": "PASS", "reasons": [], "html": "01-pre_deploy.html"},
        {"phase": "deploy", "status": "completed", "verdict": "PASS", "reasons": [], "html": "../../secret.html"},
        {"phase": "post_deploy", "status": "completed", "verdict": "PASS", "reasons": [], "html": "/etc/passwd"},
        {"phase": "rollback", "status": "skipped", "verdict": None, "reasons": [], "html": None},
    ]
    _run(tmp_path, "20261128T094500Z-a1b2c3", phases=phases, pages=False)

    html = _read(write_index(tmp_path))
    links = _Page(html).links

    assert links == ["runs/20261128T094500Z-a1b2c3/evidence.json"]
    assert "page missing" in html  # 01-pre_deploy.html is named but absent
    assert ">skipped<" in html


def test_unreadable_and_incomplete_runs_are_listed_not_fatal(tmp_path):
    _run(tmp_path, "20261126T080000Z-aaaaaa", metrics=_metrics(1.0))
    broken = tmp_path / "runs" / "20261127T080000Z-broken"
    broken.mkdir()
    (broken / "evidence.json").write_text('{"format": "aris3nb.evidence", "version": 1, "run_id": ', encoding="utf-8")
    binary = tmp_path / "runs" / "20261127T090000Z-binary"
    binary.mkdir()
    (binary / "evidence.json").write_bytes(b"\xff\xfe\x00garbage")
    future = _run(tmp_path, "20261127T100000Z-future")
    (future / "evidence.json").write_text(json.dumps({"format": "aris3nb.evidence", "version": 2}), encoding="utf-8")
    not_ours = tmp_path / "runs" / "20261127T110000Z-list"
    not_ours.mkdir()
    (not_ours / "evidence.json").write_text("[1, 2, 3]", encoding="utf-8")
    (tmp_path / "runs" / "20261128T080000Z-running").mkdir()

    html = _read(write_index(tmp_path))

    for run_id in ("20261126T080000Z-aaaaaa", "20261127T080000Z-broken", "20261127T090000Z-binary",
                   "20261127T100000Z-future", "20261127T110000Z-list", "20261128T080000Z-running"):
        assert f"<code>{run_id}</code>" in html
    assert html.count(">unreadable evidence</span>") == 4
    assert html.count(">incomplete</span>") == 2  # the row, and the latest-run banner
    assert "version 2" in html
    assert html.index("20261128T080000Z-running") < html.index("20261126T080000Z-aaaaaa")
    assert html.count('<img src="data:image/png') == 3  # the readable run still has its trends


def test_hostile_values_from_evidence_are_shown_as_text(tmp_path):
    phases = [{"phase": "pre_deploy", "title": f"title {HOSTILE}", "status": "failed", "verdict": "FAIL",
               "reasons": [f"gate said {HOSTILE}", "db at postgresql://ops:hunter2@db/aris3 refused"],
               "html": "01-pre_deploy.html", "duration_sec": 1.0}]
    folder = _run(tmp_path, "20261128T094500Z-a1b2c3", verdict="FAIL", decision="NO-GO", phases=phases,
                  metrics={"latency_p95_ms": {f"{HOSTILE} $x^$": 1.0}})
    evidence = json.loads((folder / "evidence.json").read_text(encoding="utf-8"))
    evidence["target"]["mode"] = HOSTILE
    (folder / "evidence.json").write_text(json.dumps(evidence), encoding="utf-8")
    _run(tmp_path, "20261127T094500Z-zzzzzz", verdict='"><img src=x onerror=alert(1)>')

    html = _read(write_index(tmp_path))
    page = _Page(html)

    assert not any("alert(1)" in script for script in page.scripts)
    assert "gate said &lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "&#34;&gt;&lt;img src=x onerror=alert(1)&gt;" in html
    assert all(src.startswith("data:image/png") for src in page.images)
    assert "hunter2" not in html
    assert remote_references(html) == []


def test_missing_and_null_metrics_leave_gaps_not_errors(tmp_path):
    _run(tmp_path, "20261126T080000Z-aaaaaa", metrics={"latency_p95_ms": {"health": None, "stock": "fast"},
                                                      "drill_rto_sec": None})
    _run(tmp_path, "20261127T080000Z-bbbbbb", metrics={"drill_rto_sec": 2.5, "backup_bytes": float("nan")})
    _run(tmp_path, "20261128T080000Z-cccccc")

    html = _read(write_index(tmp_path))

    assert html.count('<img src="data:image/png') == 1  # only the drill RTO has a value
    assert html.count("No run recorded this metric yet.") == 2


def test_rewriting_the_index_replaces_it(tmp_path):
    write_index(tmp_path)
    _run(tmp_path, "20261128T094500Z-a1b2c3")

    html = _read(write_index(tmp_path))

    assert "No runs yet" not in html and "20261128T094500Z-a1b2c3" in html
    assert sorted(p.name for p in tmp_path.iterdir()) == ["index.html", "runs"]
