"""The pages read at a glance, measured in a real browser at 1,000 and 1,400 px.

The runs index over runs shaped like real ones (five phases, long reasons, long SQLite paths
and PostgreSQL URLs, an interrupted run, a re-run, a failed one) must fit the window: no
horizontal scrolling, the last column on screen, no cell spilling over its neighbour. A FAIL
row must look different from a PASS row — the colours are read from the page as the browser
computed them — and keep its marks when printed. A phase page's checks table is judged the
same way in ``test_browser_evidence`` (it needs a real run).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from aris3nb.evidence.index import write_index

#: The widths an auditor's window is checked at: half a laptop screen, a desktop's.
WIDTHS = (1000, 1400)

LONG_REASON = (
    "rollback.restore: not restored: confirm with --yes (or the confirm_restore parameter) to restore "
    "pre_deploy_20261129_1644_with_a_rather_long_unbreakable_backup_name_0123456789abcdef"
)
PHASES = ("pre_deploy", "deploy", "post_deploy", "drill", "rollback")


def _evidence(run_id: str, verdict: str, decision: str, **fields) -> dict:
    stamp = run_id[:16]
    phases = [
        {
            "phase": name,
            "title": name,
            "status": "completed",
            "verdict": verdict if name == "pre_deploy" else "PASS",
            "reasons": [LONG_REASON] if verdict == "FAIL" else [],
            "html": None,
            "duration_sec": 12.5,
            "metrics": {"latency_p95_ms": {"health": 1.0, "stock": 8.5}} if name == "pre_deploy" else {},
        }
        for name in PHASES
    ]
    if verdict == "FAIL":
        phases[0]["status"] = "failed"
    return {
        "format": "aris3nb.evidence",
        "version": 1,
        "run_id": run_id,
        "started_at": f"{stamp[0:4]}-{stamp[4:6]}-{stamp[6:8]}T{stamp[9:11]}:{stamp[11:13]}:{stamp[13:15]}.118Z",
        "duration_sec": 44.1,
        "verdict": verdict,
        "decision": decision,
        "exit_code": 0 if decision == "GO" else 1,
        "interrupted": False,
        "target": {
            "mode": "embedded",
            "description": "embedded reference service",
            "base_url": "http://127.0.0.1:36115",
            "database_url": "sqlite:////tmp/aris3nb-run-embedded-pid12389-h096w9rm/a-long-folder-name/aris3.db",
        },
        "parameters": {"rerun_of": None},
        "phases": phases,
        "metrics": {},
        **fields,
    }


@pytest.fixture(scope="module")
def many_runs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    artifacts = tmp_path_factory.mktemp("index-many")
    runs = [
        _evidence("20261129T153401Z-aaaaaa", "PASS_WITH_WARNINGS", "GO"),
        _evidence("20261129T153422Z-bbbbbb", "FAIL", "NO-GO"),
        _evidence("20261129T153459Z-cccccc", "FAIL", "NO-GO", interrupted=True, exit_code=130),
        _evidence(
            "20261129T160000Z-dddddd",
            "PASS",
            "GO",
            parameters={"rerun_of": "20261129T153422Z-bbbbbb"},
            target={
                "mode": "database",
                "base_url": "http://127.0.0.1:41873",
                "database_url": "postgresql+psycopg://aris3:***@db.internal.example.com:5432/aris3",
            },
        ),
        _evidence("20261129T164454Z-eeeeee", "PASS", "GO"),
    ]
    for document in runs:
        folder = artifacts / "runs" / document["run_id"]
        folder.mkdir(parents=True)
        (folder / "evidence.json").write_text(json.dumps(document), encoding="utf-8")
    write_index(artifacts)
    return artifacts / "index.html"


FIT = """() => {
  const table = document.querySelector('table.runs');
  const last = table.querySelector('thead th:last-child').getBoundingClientRect();
  const spilling = [...table.querySelectorAll(':scope > tbody > tr > td, :scope > thead > tr > th')]
      .filter(cell => cell.scrollWidth > cell.clientWidth + 1)
      .map(cell => cell.innerText.slice(0, 60));
  return {tableScroll: table.scrollWidth, container: table.parentElement.clientWidth,
          pageScroll: document.documentElement.scrollWidth, window: window.innerWidth,
          lastRight: last.right, lastWidth: last.width, spilling};
}"""


@pytest.mark.parametrize("width", WIDTHS)
def test_the_runs_table_fits_the_window_without_clipping(offline_page, many_runs: Path, width: int) -> None:
    offline_page.at_width(width)
    offline_page.open(many_runs)
    fit = offline_page.page.evaluate(FIT)
    offline_page.screenshot(f"index-{width}px")

    assert fit["tableScroll"] <= fit["container"], fit
    assert fit["pageScroll"] <= fit["window"], "the page scrolls sideways"
    assert 0 < fit["lastRight"] <= fit["window"] and fit["lastWidth"] > 200, "the last column is on screen"
    assert fit["spilling"] == [], "cells whose content spills out of them"
    assert offline_page.page.locator("table.runs th", has_text="Phases and reasons").is_visible()
    assert offline_page.remote == []


def _cell_style(page, selector: str) -> dict:  # type: ignore[no-untyped-def]
    return page.eval_on_selector(
        selector,
        """cell => { const s = getComputedStyle(cell);
        return {background: s.backgroundColor, colour: s.color, shadow: s.boxShadow,
                printAdjust: s.printColorAdjust || s.webkitPrintColorAdjust}; }""",
    )


def test_a_failed_run_stands_out_from_a_passing_one_also_in_print(offline_page, many_runs: Path) -> None:
    page = offline_page.page
    for media in ("screen", "print"):
        page.emulate_media(media=media)
        offline_page.open(many_runs)
        failed = _cell_style(page, "#run-20261129T153422Z-bbbbbb > td.runid")
        passed = _cell_style(page, "#run-20261129T164454Z-eeeeee > td.runid")
        stopped = _cell_style(page, "#run-20261129T153459Z-cccccc > td.runid")
        assert failed["background"] != passed["background"], media
        assert "inset" in failed["shadow"] and failed["shadow"] != stopped["shadow"], media  # the red bar, a purple one
        verdicts = [
            page.locator(f"#run-{run} td.result .badge").first.inner_text()
            for run in ("20261129T153422Z-bbbbbb", "20261129T153459Z-cccccc", "20261129T164454Z-eeeeee")
        ]
        assert verdicts == ["FAIL", "INTERRUPTED", "PASS"], "the word, not only a colour"
        badge = page.eval_on_selector(
            "#run-20261129T153422Z-bbbbbb td.result .badge", "b => getComputedStyle(b).backgroundColor"
        )
        assert badge != page.eval_on_selector(
            "#run-20261129T164454Z-eeeeee td.result .badge", "b => getComputedStyle(b).backgroundColor"
        )
    assert failed["printAdjust"] == "exact", "printers keep the colours"
    offline_page.screenshot("index-print")
    page.emulate_media(media="screen")


def test_a_rerun_and_the_target_read_plainly(offline_page, many_runs: Path) -> None:
    offline_page.open(many_runs)
    page = offline_page.page
    rerun = page.locator("#run-20261129T160000Z-dddddd td.runid").inner_text()
    assert "re-run" in rerun and "20261129T153422Z-bbbbbb" in rerun
    target = page.locator("#run-20261129T160000Z-dddddd td.target").inner_text()
    assert "database" in target and "postgresql+psycopg://aris3:***@db.internal.example.com:5432/aris3" in target
    assert "service" in target and "http://127.0.0.1:41873" in target
    page.locator("#run-20261129T160000Z-dddddd td.runid a[href^='#run-']").click()  # an anchor in the page
    assert page.url.endswith("#run-20261129T153422Z-bbbbbb")
