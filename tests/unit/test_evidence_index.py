"""aris3nb.evidence.index: the front page of every run under OPS_ARTIFACTS_DIR.

The index is how an auditor finds a run: it must list every run folder whatever state its
evidence is in (a bad file must not hide the others), link to pages that exist, show values as
text, and open offline. Real run folders in tmp_path, the real renderer and matplotlib.
"""

from __future__ import annotations

import json
import re
import stat
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote

from aris3nb.evidence import index
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


def _run(
    artifacts: Path,
    run_id: str,
    *,
    verdict: str = "PASS",
    decision: str = "GO",
    metrics: dict | None = None,
    phases: list[dict] | None = None,
    pages: bool = True,
    **fields,
) -> Path:
    folder = artifacts / "runs" / run_id
    folder.mkdir(parents=True)
    if phases is None:
        phases = []
        for number, (phase, title) in enumerate(PHASES, start=1):
            html = f"{number:02d}-{phase}.html"
            phases.append(
                {
                    "phase": phase,
                    "title": title,
                    "status": "completed",
                    "verdict": verdict,
                    "reasons": [],
                    "notebook": f"{number:02d}-{phase}.ipynb",
                    "html": html,
                    "duration_sec": 9.1,
                }
            )
    if pages:
        for phase in phases:
            if isinstance(phase.get("html"), str) and "/" not in phase["html"]:
                (folder / phase["html"]).write_text("<!DOCTYPE html><title>phase</title>", encoding="utf-8")
    stamp = run_id.split("-")[0]
    started = f"{stamp[0:4]}-{stamp[4:6]}-{stamp[6:8]}T{stamp[9:11]}:{stamp[11:13]}:{stamp[13:15]}.123Z"
    evidence = {
        "format": "aris3nb.evidence",
        "version": 1,
        "run_id": run_id,
        "started_at": started,
        "finished_at": started,
        "duration_sec": 41.2,
        "verdict": verdict,
        "decision": decision,
        "exit_code": 0 if verdict != "FAIL" else 1,
        "target": {"mode": "embedded", "base_url": "http://127.0.0.1:8123", "database_url": "sqlite:///x.db"},
        "phases": phases,
        "metrics": metrics or {},
        "files": [],
        "previous": None,
        "signature": None,
        **fields,
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

    positions = [
        html.index(f"<code>{run_id}</code>")
        for run_id in ("20261128T094500Z-cccccc", "20261127T120000Z-bbbbbb", "20261126T080000Z-aaaaaa")
    ]
    assert positions == sorted(positions)
    for verdict in ("FAIL", "PASS_WITH_WARNINGS", "PASS", "NO-GO", "GO"):
        assert f">{verdict}</span>" in html
    assert 'class="badge fail">FAIL' in html and 'class="badge warn">PASS_WITH_WARNINGS' in html
    for phase, _title in PHASES:
        assert f">{phase}</th>" in html
    assert "2026-11-28T09:45:00Z" in html and "41.2 s" in html
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

    for run_id in (
        "20261126T080000Z-aaaaaa",
        "20261127T080000Z-broken",
        "20261127T090000Z-binary",
        "20261127T100000Z-future",
        "20261127T110000Z-list",
        "20261128T080000Z-running",
    ):
        assert f"<code>{run_id}</code>" in html
    assert html.count(">unreadable evidence</span>") == 4
    assert html.count(">incomplete</span>") == 2  # the row, and the latest-run banner
    assert "version 2" in html
    assert html.index("20261128T080000Z-running") < html.index("20261126T080000Z-aaaaaa")
    assert html.count('<img src="data:image/png') == 3  # the readable run still has its trends


def test_hostile_values_from_evidence_are_shown_as_text(tmp_path):
    phases = [
        {
            "phase": "pre_deploy",
            "title": f"title {HOSTILE}",
            "status": "failed",
            "verdict": "FAIL",
            "reasons": [f"gate said {HOSTILE}", "db at postgresql://ops:hunter2@db/aris3 refused"],
            "html": "01-pre_deploy.html",
            "duration_sec": 1.0,
        }
    ]
    folder = _run(
        tmp_path,
        "20261128T094500Z-a1b2c3",
        verdict="FAIL",
        decision="NO-GO",
        phases=phases,
        metrics={"latency_p95_ms": {f"{HOSTILE} $x^$": 1.0}},
    )
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
    _run(
        tmp_path,
        "20261126T080000Z-aaaaaa",
        metrics={"latency_p95_ms": {"health": None, "stock": "fast"}, "drill_rto_sec": None},
    )
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


# --- read at a glance ---------------------------------------------------------------------------

ZONELESS = re.compile(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}")


def _phase(name: str, verdict: str | None = "PASS", status: str = "completed", metrics: dict | None = None) -> dict:
    return {
        "phase": name,
        "title": name,
        "status": status,
        "verdict": verdict,
        "reasons": [],
        "html": None,
        "duration_sec": 1.0,
        "metrics": metrics or {},
    }


def test_every_time_on_the_index_is_iso_8601_utc_with_z(tmp_path):
    _run(tmp_path, "20261128T094500Z-a1b2c3", metrics=_metrics(1.0))
    (tmp_path / "runs" / "20261129T153400Z-killed").mkdir()  # incomplete: its time comes from its name

    html = _read(write_index(tmp_path))

    assert "2026-11-28T09:45:00Z" in html and "2026-11-29T15:34:00Z" in html
    assert re.search(r"Generated \d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z ", html)
    assert not ZONELESS.search(html), ZONELESS.search(html)


def test_x_labels_tell_apart_runs_of_the_same_minute_and_second():
    def runs(*names: str) -> list:
        return [index._Run(name=name, kind="ok", when=index._time_from_name(name)) for name in names]

    spread = index.run_labels(runs("20261129T090000Z-aaaaaa", "20261129T153400Z-bbbbbb"))
    assert spread == ["2026-11-29T09:00Z", "2026-11-29T15:34Z"]
    one_minute = index.run_labels(runs("20261129T153401Z-aaaaaa", "20261129T153422Z-bbbbbb", "20261129T153459Z-cccccc"))
    assert one_minute == ["2026-11-29T15:34:01Z", "2026-11-29T15:34:22Z", "2026-11-29T15:34:59Z"]
    one_second = index.run_labels(runs("20261129T153401Z-aaaaaa", "20261129T153401Z-bbbbbb"))
    assert len(set(one_second)) == 2 and one_second[0].endswith("aaaaaa")


def test_three_runs_in_one_minute_have_three_labels_on_the_page(tmp_path, monkeypatch):
    drawn: list[list[str]] = []
    original = index.line_chart

    def spy(ylabel, labels, series, outcomes=None):
        drawn.append(list(labels))
        return original(ylabel, labels, series, outcomes)

    monkeypatch.setattr(index, "line_chart", spy)
    for run_id in ("20261129T153401Z-aaaaaa", "20261129T153422Z-bbbbbb", "20261129T153459Z-cccccc"):
        _run(tmp_path, run_id, metrics=_metrics(1.0))

    write_index(tmp_path)

    assert drawn and all(len(set(labels)) == 3 for labels in drawn)


def test_a_rerun_is_marked_with_the_run_it_repeats(tmp_path, monkeypatch):
    drawn: list[list[str]] = []
    original = index.line_chart
    monkeypatch.setattr(
        index, "line_chart", lambda y, labels, s, o=None: drawn.append(labels) or original(y, labels, s, o)
    )
    _run(
        tmp_path,
        "20261128T094500Z-aaaaaa",
        verdict="FAIL",
        decision="NO-GO",
        metrics=_metrics(1.0),
        parameters={"rerun_of": None},
    )
    _run(
        tmp_path,
        "20261128T100000Z-bbbbbb",
        metrics=_metrics(1.0),
        parameters={"phases": ["drill"], "rerun_of": "20261128T094500Z-aaaaaa"},
    )

    html = _read(write_index(tmp_path))

    assert html.count('class="badge rerun">re-run</span>') == 2  # the row and the legend
    assert 'of <a href="#run-20261128T094500Z-aaaaaa"><code>20261128T094500Z-aaaaaa</code></a>' in html
    assert 'id="run-20261128T094500Z-aaaaaa"' in html
    assert drawn[0] == ["2026-11-28T09:45Z", "2026-11-28T10:00Z (re-run)"]


def test_an_interrupted_run_reads_interrupted_not_fail_and_the_legend_says_why(tmp_path):
    _run(tmp_path, "20261128T094500Z-aaaaaa", verdict="FAIL", decision="NO-GO")
    _run(tmp_path, "20261128T100000Z-bbbbbb", verdict="FAIL", decision="NO-GO", interrupted=True, exit_code=130)

    html = _read(write_index(tmp_path))
    rows = html.split('<tr id="run-')

    interrupted = next(row for row in rows if row.startswith("20261128T100000Z-bbbbbb"))
    failed = next(row for row in rows if row.startswith("20261128T094500Z-aaaaaa"))
    assert 'class="badge interrupted">INTERRUPTED</span>' in interrupted and 'class="stopped"' in interrupted
    assert 'class="badge fail">FAIL' not in interrupted and "recorded verdict FAIL" in interrupted
    assert 'class="badge fail">FAIL' in failed and 'class="problem"' in failed
    assert 'class="latest"' in html and 'class="badge interrupted">INTERRUPTED' in html.split("<h2>Runs</h2>")[0]
    legend = html.split("<h3>Legend</h3>")[1]
    assert '<dt><span class="badge interrupted">INTERRUPTED</span></dt><dd>the run was stopped' in legend


def test_the_target_names_the_database_with_its_password_masked_and_the_service(tmp_path):
    folder = _run(tmp_path, "20261128T094500Z-aaaaaa")
    evidence = json.loads((folder / "evidence.json").read_text(encoding="utf-8"))
    evidence["target"] = {
        "mode": "database",
        "description": "reference service at ...",
        "base_url": "http://127.0.0.1:41873",
        "database_url": "postgresql+psycopg://aris3:hunter2@db.internal:5432/aris3",
    }
    (folder / "evidence.json").write_text(json.dumps(evidence), encoding="utf-8")

    html = _read(write_index(tmp_path))
    target = html.split('<td class="target">')[1].split("</td>")[0]

    assert "reference service over the database" in target
    assert "<dt>database</dt><dd><code>postgresql+psycopg://aris3:***@db.internal:5432/aris3</code></dd>" in target
    assert "<dt>service</dt><dd><code>http://127.0.0.1:41873</code></dd>" in target
    assert "hunter2" not in html and "database http://" not in html


def test_the_target_names_the_profile_it_was_judged_with(tmp_path):
    """As the phase pages do: the profile's name and its file's SHA-256 (built in: said so)."""
    for name, profile in (
        ("20261128T090000Z-aaaaaa", {"name": "aris3", "path": "/srv/aris3nb.toml", "sha256": "sha256:" + "7" * 64}),
        ("20261128T100000Z-bbbbbb", {"name": "reference", "path": None, "sha256": None}),
        ("20261128T110000Z-cccccc", None),  # written before target profiles
    ):
        folder = _run(tmp_path, name)
        evidence = json.loads((folder / "evidence.json").read_text(encoding="utf-8"))
        evidence.pop("profile", None)
        if profile is not None:
            evidence["profile"] = profile
        (folder / "evidence.json").write_text(json.dumps(evidence), encoding="utf-8")

    html = _read(write_index(tmp_path))
    newest, middle, oldest = [cell.split("</td>")[0] for cell in html.split('<td class="target">')[1:]]

    assert "<dt>profile</dt><dd><code>aris3 (sha256:777777777777…)</code></dd>" in oldest
    assert "<dt>profile</dt><dd><code>reference (built in)</code></dd>" in middle
    assert "<dt>profile</dt><dd><code>not recorded</code></dd>" in newest


def test_each_latency_trend_names_its_phase_and_never_switches(tmp_path):
    """One run measured p95 only in the gate (pre_deploy: its deploy failed), one in both
    phases: the two phases are two charts, not one series that jumps between them."""
    _run(
        tmp_path,
        "20261128T090000Z-aaaaaa",
        phases=[_phase("pre_deploy", metrics={"latency_p95_ms": {"health": 1.0}}), _phase("deploy", "FAIL", "failed")],
    )
    _run(
        tmp_path,
        "20261128T100000Z-bbbbbb",
        phases=[
            _phase("pre_deploy", metrics={"latency_p95_ms": {"health": 1.1}}),
            _phase("post_deploy", metrics={"latency_p95_ms": {"health": 9.0}}),
        ],
        metrics={"latency_p95_ms": {"health": 9.0}},
    )

    html = _read(write_index(tmp_path))
    captions = re.findall(r"<figcaption>(.*?)</figcaption>", html)

    assert captions[:2] == [
        "p95 latency per endpoint (ms), measured in the pre_deploy phase",
        "p95 latency per endpoint (ms), measured in the post_deploy phase",
    ]
    assert all("phase" in caption for caption in captions)
    assert html.count('<img src="data:image/png') == 2  # RTO and backup size: nothing recorded


def test_failed_drills_are_marked_apart_from_passing_ones(tmp_path, monkeypatch):
    outcomes_drawn: list = []
    original = index.line_chart

    def spy(ylabel, labels, series, outcomes=None):
        figure = original(ylabel, labels, series, outcomes)
        if outcomes is not None:
            outcomes_drawn.append(outcomes)
            figure.canvas.draw()
            [axes] = figure.axes
            marks = {collection.get_label(): collection.get_offsets().tolist() for collection in axes.collections}
            outcomes_drawn.append(marks)
        return figure

    monkeypatch.setattr(index, "line_chart", spy)
    _run(tmp_path, "20261128T090000Z-aaaaaa", phases=[_phase("drill", metrics={"drill_rto_sec": 1.5})])
    _run(
        tmp_path,
        "20261128T100000Z-bbbbbb",
        verdict="FAIL",
        decision="NO-GO",
        phases=[_phase("drill", "FAIL", "failed", metrics={"drill_rto_sec": 2.5})],
    )
    _run(tmp_path, "20261128T110000Z-cccccc", phases=[_phase("drill", metrics={"drill_rto_sec": 1.25})])

    html = _read(write_index(tmp_path))

    assert outcomes_drawn[0] == [False, True, False]
    assert outcomes_drawn[1] == {"drill passed": [[0.0, 1.5], [2.0, 1.25]], "drill FAILED": [[1.0, 2.5]]}
    values = html.split("<figcaption>Restore drill RTO")[1].split("</figure>")[0]
    assert "<th>drill</th>" in values and '<td class="num">FAIL</td>' in values


def test_the_runs_table_keeps_four_columns_whatever_the_number_of_phases(tmp_path):
    """The table must fit a 1,000 px window (tests/browser measures it): phases are lines of
    one column, not one column each."""
    phases = [_phase(name) for name in ("pre_deploy", "deploy", "post_deploy", "drill", "rollback", "extra")]
    _run(tmp_path, "20261128T090000Z-aaaaaa", phases=phases)

    html = _read(write_index(tmp_path))
    header = html.split('<table class="runs">')[1].split("</thead>")[0]

    assert re.findall(r"<th>(.*?)</th>", header) == ["Run", "Verdict", "Target", "Phases and reasons"]
    assert "table-layout: fixed" in html and "overflow-wrap: anywhere" in html
