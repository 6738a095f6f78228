"""The evidence pages in a real browser, as an auditor opens them: offline, from disk.

One real bundle made by ``aris3nb run`` on the embedded default is shared by the tests: the
index and each phase's page load with no request leaving the machine, the charts show, the
index's links open each page, and each page's verdict banner says what ``evidence.json``
records. One failing run (its notebook shows hostile values, then its checks FAIL) shows
FAIL, marks the failing cell, and shows ``<script>`` as text without running anything; its
checks table sets the FAIL and WARN rows apart from the PASS row, on screen and in print, as
the browser computes the colours; and the pages fit 1,000 and 1,400 px wide windows.
"""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass
from pathlib import Path

import nbformat
import pytest

from aris3nb.core.settings import load_settings
from aris3nb.evidence.runner import RunOptions, run_playbook
from aris3nb.phases import PHASE_BY_NAME

pytestmark = pytest.mark.slow

SCRIPT = "<script>alert(1)</script>"
IMG = '"><img src=x onerror=alert(1)>'


@dataclass
class Bundle:
    artifacts: Path
    run_dir: Path
    evidence: dict

    @property
    def index(self) -> Path:
        return self.artifacts / "index.html"

    def phases(self) -> list[dict]:
        return [phase for phase in self.evidence["phases"] if phase["html"]]


def bundle_in(artifacts: Path) -> Bundle:
    [run_dir] = (artifacts / "runs").iterdir()
    return Bundle(artifacts, run_dir, json.loads((run_dir / "evidence.json").read_text()))


@pytest.fixture(scope="module")
def go_run(embedded_go_run: tuple[Path, subprocess.CompletedProcess[str]]) -> Bundle:
    """``aris3nb run`` on the embedded default, the README's first line (the session's one run,
    tests/conftest.py: only read here)."""
    artifacts, done = embedded_go_run
    assert "Traceback" not in done.stderr, done.stderr
    bundle = bundle_in(artifacts)
    assert [p["phase"] for p in bundle.phases()] == ["pre_deploy", "deploy", "post_deploy", "drill"], done.stdout
    return bundle


@pytest.fixture(scope="module")
def failing_run(tmp_path_factory: pytest.TempPathFactory) -> Bundle:
    """A pre_deploy phase whose notebook shows hostile values in a table, a printed line and
    a check, then FAILs on that check (its last cell raises ``PhaseFailed``)."""
    base = tmp_path_factory.mktemp("browser-failing")
    parameters = nbformat.v4.new_code_cell(
        "\n".join(f"{name} = None" for name in PHASE_BY_NAME["pre_deploy"].parameters)
    )
    parameters.metadata["tags"] = ["parameters"]
    cells = [
        (
            "import aris3nb\nfrom aris3nb.core.checks import CheckResult, Status\n"
            f"phase = aris3nb.start_phase('pre_deploy')\nSCRIPT, IMG = {SCRIPT!r}, {IMG!r}"
        ),
        "phase.show_table([{'sku': IMG, 'description': SCRIPT, 'store': SCRIPT}], f'Stock {SCRIPT}')\nprint(SCRIPT)",
        (
            "results = [CheckResult('http.health', Status.PASS, '200 ok in 1.2 ms', 0.01),\n"
            "           CheckResult('integrity.' + SCRIPT, Status.FAIL, "
            "f'first: sku={IMG}, description={SCRIPT}', 0.1),\n"
            "           CheckResult('git', Status.WARN, 'dirty tree: 3 uncommitted paths', 0.03)]\n"
            "phase.show_checks(results)"
        ),
        "phase.conclude(results, title='Gate')",
    ]
    notebook = nbformat.v4.new_notebook(cells=[parameters, *map(nbformat.v4.new_code_cell, cells)])
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    (base / "notebooks").mkdir()
    nbformat.write(notebook, base / "notebooks" / "01-pre_deploy.ipynb")
    options = RunOptions(
        phases=("pre_deploy",),
        base_url="http://127.0.0.1:9",
        out=base / "artifacts",
        notebooks_dir=base / "notebooks",
        cell_timeout_sec=120,
    )
    result = run_playbook(options, load_settings())
    assert result.exit_code == 1
    return bundle_in(base / "artifacts")


def images(page) -> list[dict]:  # type: ignore[no-untyped-def]
    return page.eval_on_selector_all(
        "img",
        "els => els.map(e => ({src: e.getAttribute('src').slice(0, 22), complete: e.complete, "
        "width: e.naturalWidth, height: e.naturalHeight}))",
    )


# --- the bundle of a real run --------------------------------------------------------------------


def test_the_harness_would_see_a_request_leave(offline_page, tmp_path: Path) -> None:
    """The recording works: a page pointing at a server is caught (and nothing is sent)."""
    page = tmp_path / "phones_home.html"
    page.write_text("<html><body><img src='http://127.0.0.1:9/pixel.png'><p>x</p></body></html>")
    offline_page.open(page)
    assert offline_page.remote == ["http://127.0.0.1:9/pixel.png"]


def test_the_index_and_every_page_load_offline(offline_page, go_run: Bundle) -> None:
    for path in [go_run.index, *(go_run.run_dir / phase["html"] for phase in go_run.phases())]:
        offline_page.open(path)
        assert offline_page.page.title(), path.name
        offline_page.screenshot(path.stem)
    assert offline_page.remote == [], f"requests that tried to leave the machine: {offline_page.remote}"
    assert offline_page.errors == [] and offline_page.dialogs == []


def test_the_charts_show(offline_page, go_run: Bundle) -> None:
    """Every image is an embedded PNG the browser decoded: the latency charts of the gate and
    of post-deploy, the drill's RTO chart, and the index's three trend charts."""
    expected = {"index": 3, "01-pre_deploy": 1, "03-post_deploy": 1, "04-drill": 1}
    for stem, count in expected.items():
        offline_page.open(go_run.index if stem == "index" else go_run.run_dir / f"{stem}.html")
        shown = images(offline_page.page)
        assert len(shown) >= count, (stem, shown)
        for image in shown:
            assert image["src"].startswith("data:image/png;base64") and image["complete"], (stem, image)
            assert image["width"] > 0 and image["height"] > 0, (stem, image)
    assert offline_page.remote == []


def test_the_links_from_the_index_open_each_page(offline_page, go_run: Bundle) -> None:
    offline_page.open(go_run.index)
    links = offline_page.page.locator("td.phase a")
    assert links.count() == len(go_run.phases())
    for position, phase in enumerate(go_run.phases()):
        offline_page.open(go_run.index)
        with offline_page.page.expect_navigation():
            offline_page.page.locator("td.phase a").nth(position).click()
        assert offline_page.page.url == (go_run.run_dir / phase["html"]).resolve().as_uri()
        assert offline_page.page.title() == phase["title"]
        assert phase["title"] in offline_page.page.locator(".aris3nb-banner").first.inner_text()
    evidence_link = offline_page.page
    offline_page.open(go_run.index)
    with evidence_link.expect_navigation():
        evidence_link.locator("td.runid a").first.click()
    assert json.loads(evidence_link.locator("body").inner_text())["run_id"] == go_run.run_dir.name
    assert offline_page.remote == []


def test_each_verdict_banner_reads_what_evidence_json_records(offline_page, go_run: Bundle) -> None:
    for phase in go_run.phases():
        offline_page.open(go_run.run_dir / phase["html"])
        banner = offline_page.page.locator(".aris3nb-banner").first
        assert banner.is_visible()
        assert banner.get_attribute("data-verdict") == phase["verdict"]
        text = banner.inner_text()
        assert text.startswith(f"{phase['title']}: {phase['verdict']}"), text
        assert f"Run {go_run.run_dir.name}" in text
        for reason in phase["reasons"]:
            assert reason in text
    offline_page.open(go_run.index)
    latest = offline_page.page.locator("section.latest").inner_text()
    assert go_run.run_dir.name in latest and go_run.evidence["verdict"] in latest
    assert go_run.evidence["decision"] in latest


# --- a failing run ------------------------------------------------------------------------------


def test_a_failing_phase_shows_fail_and_its_failing_cell(offline_page, failing_run: Bundle) -> None:
    [phase] = failing_run.phases()
    assert (phase["status"], phase["verdict"]) == ("failed", "FAIL")
    offline_page.open(failing_run.run_dir / phase["html"])
    page = offline_page.page
    banner = page.locator(".aris3nb-banner").first
    assert banner.get_attribute("data-verdict") == "FAIL"
    assert banner.inner_text().startswith(f"{phase['title']}: FAIL")
    assert "the failing cell is marked below" in banner.inner_text()
    failed = page.locator(".celltag_aris3nb-failed-cell")
    assert failed.count() == 1 and failed.is_visible()
    assert "phase.conclude(results" in failed.inner_text() and "PhaseFailed" in failed.inner_text()
    marker = page.locator(".celltag_aris3nb-marker").filter(has_text="This cell did not complete")
    assert marker.is_visible() and "FAILED its checks" in marker.inner_text()
    above = page.evaluate(
        "([m, f]) => m.compareDocumentPosition(f) & Node.DOCUMENT_POSITION_FOLLOWING",
        [marker.element_handle(), failed.element_handle()],
    )
    assert above, "the marker comes just before the failing cell"
    failed.scroll_into_view_if_needed()
    offline_page.screenshot("failing-cell")
    offline_page.open(failing_run.index)
    cell = page.locator("td.phase").first
    assert "FAIL" in cell.inner_text() and "failed" in cell.inner_text()
    offline_page.screenshot("index")
    assert offline_page.remote == [] and offline_page.dialogs == []


def test_hostile_values_show_as_text_and_run_nothing(offline_page, failing_run: Bundle) -> None:
    """``<script>alert(1)</script>`` and ``"><img src=x onerror=alert(1)>`` in a table, a
    printed line, a check's name and detail, the banner's reasons and the index: shown as
    text, and no dialog opens (an alert that ran would open one)."""
    [phase] = failing_run.phases()
    for path in (failing_run.run_dir / phase["html"], failing_run.index):
        offline_page.open(path)
        page = offline_page.page
        body = page.locator("body").inner_text()
        assert SCRIPT in body and IMG in body, path.name
        assert page.locator("body script").count() == 0 and page.locator("img[src='x']").count() == 0
        page.evaluate("""() => document.querySelectorAll('*').forEach(e => ['mouseover', 'click', 'focus'].forEach(
                             type => e.dispatchEvent(new Event(type, {bubbles: true}))))""")  # any handler fires
        page.wait_for_timeout(300)
        offline_page.screenshot(f"hostile-{path.stem}")
    banner = page_banner_text(offline_page, failing_run.run_dir / phase["html"])
    assert f"sku={IMG}" in banner and f"description={SCRIPT}" in banner
    assert offline_page.dialogs == [], f"a script ran: {offline_page.dialogs}"
    assert offline_page.remote == [] and offline_page.errors == []


def page_banner_text(offline_page, path: Path) -> str:  # type: ignore[no-untyped-def]
    offline_page.open(path)
    return offline_page.page.locator(".aris3nb-banner").first.inner_text()


# --- read at a glance ------------------------------------------------------------------------------

WIDTHS = (1000, 1400)
ROW_STYLE = """row => { const cells = [...row.querySelectorAll('th, td')]; const s = c => getComputedStyle(c);
    return {text: row.innerText, background: s(cells[1]).backgroundColor, colour: s(cells[1]).color,
            weight: s(cells[1]).fontWeight, bar: s(cells[0]).borderLeftWidth, barColour: s(cells[0]).borderLeftColor,
            printAdjust: s(cells[1]).printColorAdjust || s(cells[1]).webkitPrintColorAdjust,
            aligns: cells.slice(1).map(c => s(c).textAlign)}; }"""


def test_fail_and_warn_rows_stand_out_from_pass_rows_on_screen_and_in_print(offline_page, failing_run: Bundle) -> None:
    [phase] = failing_run.phases()
    page = offline_page.page
    for media in ("screen", "print"):
        page.emulate_media(media=media)
        offline_page.open(failing_run.run_dir / phase["html"])
        table = page.locator("table").filter(has_text="http.health").first
        passed, failed, warned = (table.locator("tbody tr").nth(i).evaluate(ROW_STYLE) for i in range(3))
        assert "PASS" in passed["text"] and "FAIL" in failed["text"] and "WARN" in warned["text"]
        assert len({passed["background"], failed["background"], warned["background"]}) == 3, media
        assert failed["colour"] != passed["colour"] and warned["colour"] != passed["colour"]
        assert int(failed["weight"]) >= 700 and int(passed["weight"]) < 700  # the status word is bold
        assert failed["bar"] == warned["bar"] == "5px" and failed["barColour"] != passed["barColour"]
        assert failed["printAdjust"] == "exact"
        # status and check left, duration (a number) right, detail left
        assert passed["aligns"] == ["left", "left", "right", "left"]
    offline_page.screenshot("checks-print")
    page.emulate_media(media="screen")


@pytest.mark.parametrize("width", WIDTHS)
def test_the_pages_fit_the_window(offline_page, go_run: Bundle, width: int) -> None:
    """The index and every phase page at 1,000 and 1,400 px: nothing scrolls sideways, and the
    index's runs table keeps its last column on screen."""
    offline_page.at_width(width)
    for path in [go_run.index, *(go_run.run_dir / phase["html"] for phase in go_run.phases())]:
        offline_page.open(path)
        offline_page.screenshot(f"{path.stem}-{width}px")
        sizes = offline_page.page.evaluate(
            "() => ({page: document.documentElement.scrollWidth, window: window.innerWidth})"
        )
        assert sizes["page"] <= sizes["window"], (path.name, sizes)
    offline_page.open(go_run.index)
    table = offline_page.page.evaluate("""() => { const t = document.querySelector('table.runs');
        return {scroll: t.scrollWidth, box: t.parentElement.clientWidth,
                last: t.querySelector('thead th:last-child').getBoundingClientRect().right}; }""")
    assert table["scroll"] <= table["box"] and table["last"] <= width, table
    assert offline_page.remote == []
