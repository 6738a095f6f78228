"""Values that reach HTML are escaped: a database whose product description and SKU, store
name, stock statuses, export file names (one on disk, one only recorded) and an idempotency
record's endpoint are ``<script>alert(1)</script>`` or ``"><img src=x onerror=alert(1)>``,
played by ``aris3nb run --database-url`` with the reference service served over it. The
integrity check turns some of them into check details, the phase's reasons, the banner, the
error of its failing cell and the index's reasons; the backup's manifest table shows the
export file's name.

What must hold on every page of the bundle and on ``index.html`` (and in the executed
notebooks' HTML outputs, which JupyterLab renders): the hostile text shows as text, verbatim,
where it appears; it makes no element and no attribute (no script element at all, no ``on*``
handler, no image but ``data:`` ones); the banner gives it as a reason, as text.

Then the same for any text, fuzzed (hypothesis): through the display helpers' banner and
tables, stream, plain and error outputs and the page title into ``notebook_html``, and
through every field of ``evidence.json`` the index shows into ``write_index``, a page with a
hostile value has exactly the elements and attributes of the same page with a plain word.
(tests/browser opens such pages in Chromium and checks that no dialog opens.)
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import subprocess
import uuid
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path

import nbformat
import pandas as pd
import pytest
import sqlalchemy as sa
from faultkit import ARIS3NB, ROOT, Run, cli_env
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aris3nb import migrate
from aris3nb.contract import models as m
from aris3nb.core.checks import CheckResult, Status
from aris3nb.core.db import create_engine
from aris3nb.evidence.display import DETAIL_WIDTH, Banner, _frame, check_rows
from aris3nb.evidence.index import write_index
from aris3nb.evidence.render import notebook_html
from aris3nb.reference.seed import seed_database

SCRIPT = "<script>alert(1)</script>"
IMG = '"><img src=x onerror=alert(1)>'
EXPORT_FILE = f"{IMG}.csv"  # a real file name (no '/')


# --- what a page is made of ----------------------------------------------------------------------


class Page(HTMLParser):
    """The elements (tag and attribute names, in order), attributes and text of an HTML page."""

    def __init__(self, html: str) -> None:
        super().__init__(convert_charrefs=True)
        self.structure: list[str] = []
        self.attributes: list[tuple[str, str, str]] = []
        self.text: list[str] = []
        self.banners: list[str] = []
        self._banner_depth = 0
        self.feed(html)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.structure.append(f"<{tag} {' '.join(sorted(name for name, _ in attrs))}>")
        self.attributes += [(tag, name, value or "") for name, value in attrs]
        if self._banner_depth:
            self._banner_depth += tag not in ("br", "img", "meta", "link", "input", "hr")
        elif "aris3nb-banner" in (dict(attrs).get("class") or "").split():
            self._banner_depth = 1
            self.banners.append("")

    def handle_endtag(self, tag: str) -> None:
        self.structure.append(f"</{tag}>")
        if self._banner_depth:
            self._banner_depth -= 1

    def handle_data(self, data: str) -> None:
        self.text.append(data)
        if self._banner_depth:
            self.banners[-1] += data + " "

    @property
    def all_text(self) -> str:
        return "".join(self.text)


def assert_inert(html: str, where: str) -> Page:
    """Nothing in the page runs: no script element, no event handler, no javascript: URL, no
    image but an embedded one."""
    page = Page(html)
    assert not any(tag.startswith("<script") for tag in page.structure), f"{where}: a script element"
    handlers = [(tag, name) for tag, name, _ in page.attributes if name.startswith("on")]
    assert not handlers, f"{where}: event handler attributes {handlers}"
    urls = [value for _, name, value in page.attributes if name in ("href", "src", "action", "formaction")]
    assert not any(url.strip().lower().startswith(("javascript:", "vbscript:")) for url in urls), f"{where}: {urls}"
    images = [value for tag, name, value in page.attributes if tag == "img" and name == "src"]
    assert all(src.startswith("data:image/") for src in images), f"{where}: images {images}"
    return page


# --- a hostile database, played ------------------------------------------------------------------


@dataclass
class HostileRun:
    run: Run
    run_dir: Path
    artifacts: Path


def make_hostile(database_url: str, exports: Path) -> None:
    """Seeded data, then hostile values where a user or an import could put them."""
    t = m.Base.metadata.tables
    engine = create_engine(database_url)
    with engine.begin() as conn:
        tenant = conn.execute(
            sa.select(t["stores"].c.tenant_id).where(~t["stores"].c.code.like("SMOKE%")).limit(1)
        ).scalar_one()
        store = conn.execute(sa.select(t["stores"].c.id).where(t["stores"].c.tenant_id == tenant).limit(1)).scalar_one()
        conn.execute(t["stores"].update().where(t["stores"].c.id == store).values(name=SCRIPT))
        stock = t["stock_items"]
        first, last = conn.execute(sa.select(sa.func.min(stock.c.id), sa.func.max(stock.c.id))).one()
        conn.execute(stock.update().where(stock.c.id == first).values(description=SCRIPT, sku=IMG))
        conn.execute(stock.update().where(stock.c.id == last).values(status=SCRIPT))
        conn.execute(stock.update().where(stock.c.id == last - 1).values(status=IMG))
        exports_table = t["export_records"]
        record = dict(conn.execute(sa.select(exports_table).limit(1)).mappings().one())
        conn.execute(
            exports_table.insert().values(
                {**record, "id": uuid.uuid4(), "status": "READY", "file_path": f"{tenant}/{SCRIPT}.csv"}
            )
        )
        conn.execute(
            t["idempotency_records"]
            .insert()
            .values(
                tenant_id=tenant,
                endpoint=SCRIPT,
                idempotency_key=IMG,
                request_hash="0" * 64,
                response_status=0,
                response_body={"message": SCRIPT},
                created_at=dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
            )
        )
    engine.dispose()
    (exports / str(tenant) / EXPORT_FILE).parent.mkdir(parents=True, exist_ok=True)
    (exports / str(tenant) / EXPORT_FILE).write_text("id\n1\n")


@pytest.fixture(scope="module")
def hostile_run(tmp_path_factory: pytest.TempPathFactory, prove_backup) -> HostileRun:
    base = tmp_path_factory.mktemp("hostile")
    url, exports = f"sqlite:///{base / 'aris3.db'}", base / "exports"
    migrate.upgrade(url)
    seed_database(url, scale=300, exports_dir=exports)
    make_hostile(url, exports)
    artifacts = base / "artifacts"
    prove_backup(url, artifacts, exports)  # released before: the gate's freshness checks pass
    env = cli_env(
        artifacts,
        OPS_ENABLE_BACKUP_DRILL="true",
        ARIS3_EXPORTS_DIR=str(exports),
        TMPDIR=str(base),
        # The hostile values are what the pages are read for: the latency checks sample as little
        # as they can (their verdict, inconclusive, is no part of these tests').
        OPS_GATE_LATENCY_SAMPLES="1",
        OPS_GATE_LATENCY_WARMUP="0",
    )
    done = subprocess.run(
        [ARIS3NB, "run", "--database-url", url, "--out", str(artifacts)],
        env=env,
        cwd=ROOT,
        check=False,
        capture_output=True,
        text=True,
        timeout=600,
        stdin=subprocess.DEVNULL,
    )
    [run_dir] = (artifacts / "runs").iterdir()
    return HostileRun(Run(done.returncode, done.stdout, done.stderr), run_dir, artifacts)


@pytest.mark.slow
def test_hostile_data_fails_the_run_with_its_reasons(hostile_run: HostileRun) -> None:
    assert hostile_run.run.returncode == 1 and "Traceback" not in hostile_run.run.stderr, hostile_run.run
    document = json.loads((hostile_run.run_dir / "evidence.json").read_text())
    post = next(p for p in document["phases"] if p["phase"] == "post_deploy")
    assert post["status"] == "failed" and post["verdict"] == "FAIL"
    reasons = " ".join(post["reasons"])
    assert f"status={IMG}" in reasons and f"{SCRIPT}.csv" in reasons, post["reasons"]
    assert all(p["status"] != "error" for p in document["phases"]), "every page rendered, every phase concluded"


@pytest.mark.slow
def test_every_page_shows_hostile_values_as_text(hostile_run: HostileRun) -> None:
    pages = sorted(hostile_run.run_dir.glob("*.html")) + [hostile_run.artifacts / "index.html"]
    assert len(pages) == 5
    shown: dict[str, str] = {}
    for path in pages:
        html = path.read_text()
        for raw in (SCRIPT, IMG, "<img src=x", "<script>"):
            assert raw not in html, f"{path.name} holds {raw!r} unescaped"
        shown[path.name] = assert_inert(html, path.name).all_text
    assert SCRIPT in shown["03-post_deploy.html"] and IMG in shown["03-post_deploy.html"], "as text, verbatim"
    assert f"{SCRIPT}.csv" in shown["03-post_deploy.html"] and f"endpoint={SCRIPT}" in shown["03-post_deploy.html"]
    assert EXPORT_FILE in shown["02-deploy.html"], "the backup's file table names the export file"
    assert SCRIPT in shown["index.html"] and IMG in shown["index.html"]


@pytest.mark.slow
def test_the_banner_gives_the_hostile_reason_as_text(hostile_run: HostileRun) -> None:
    page = assert_inert((hostile_run.run_dir / "03-post_deploy.html").read_text(), "03-post_deploy.html")
    runner_banner = page.banners[0]
    assert "FAIL" in runner_banner and f"status={IMG}" in runner_banner and f"{SCRIPT}.csv" in runner_banner


@pytest.mark.slow
def test_the_notebooks_html_outputs_are_escaped_too(hostile_run: HostileRun) -> None:
    """JupyterLab renders a notebook's text/html outputs as HTML: the same rules hold there."""
    found = 0
    for path in sorted(hostile_run.run_dir.glob("*.ipynb")):
        for cell in nbformat.read(path, as_version=4).cells:
            for output in cell.get("outputs", []):
                html = output.get("data", {}).get("text/html")
                if html:
                    page = assert_inert(html, f"{path.name} output")
                    found += SCRIPT in page.all_text or IMG in page.all_text
                    assert SCRIPT not in html and "<img src=x" not in html
    assert found >= 3, "the hostile values reached the notebooks' tables and banners"


# --- any text, fuzzed --------------------------------------------------------------------------

PAYLOADS = [
    SCRIPT,
    IMG,
    "</div><script>alert(1)</script>",
    "' onmouseover='alert(1)",
    "javascript:alert(1)",
    "<svg onload=alert(1)>",
    "</title><script>alert(1)</script>",
    "<!--",
    "]]>",
    "</style><b>x",
    "{{ 7*7 }}",
    "{% raw %}",
    "&lt;script&gt;",
    "<a href='javascript:alert(1)'>x</a>",
    "\u202e<b>",
    "a" * 300,
]
HOSTILE = st.one_of(
    st.sampled_from(PAYLOADS),
    st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x1b"), min_size=1, max_size=60),
)
PLAIN = "plainword"
FUZZ = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def notebook_with(value: str) -> nbformat.NotebookNode:
    """An executed notebook showing ``value`` in each way a phase notebook shows a value."""
    banner = Banner(value, value, [value], note=value)
    with pd.option_context("display.max_colwidth", DETAIL_WIDTH, "display.max_rows", 500, "display.width", 250):
        table = _frame(
            check_rows([CheckResult(value, Status.FAIL, value, 0.1)]), ["status", "check", "duration", "detail"]
        )._repr_html_()
    cell = nbformat.v4.new_code_cell("phase.conclude(results)")
    cell.outputs = [
        nbformat.v4.new_output("display_data", data={"text/html": banner._repr_html_(), "text/plain": repr(banner)}),
        nbformat.v4.new_output("display_data", data={"text/html": table, "text/plain": value}),
        nbformat.v4.new_output("display_data", data={"text/plain": value}),
        nbformat.v4.new_output("stream", name="stdout", text=value + "\n"),
        nbformat.v4.new_output("error", ename="PhaseFailed", evalue=value, traceback=[f"PhaseFailed: {value}"]),
    ]
    notebook = nbformat.v4.new_notebook(cells=[cell])
    notebook.metadata["aris3nb"] = {"title": value}
    return notebook


def structure(html: str) -> list[str]:
    return Page(html).structure


@functools.cache
def plain_page() -> list[str]:
    return structure(notebook_html(notebook_with(PLAIN)))


def shown(value: str, text: str) -> bool:
    """Whether ``value`` is in ``text``, whitespace aside (a table cell may wrap a line)."""
    return " ".join(value.split()) in " ".join(text.split())


@pytest.mark.slow
@FUZZ
@given(value=HOSTILE)
def test_any_value_shown_by_a_notebook_is_text_on_its_page(value: str) -> None:
    html = notebook_html(notebook_with(value))
    page = assert_inert(html, "page")
    assert structure(html) == plain_page(), f"{value!r} changed the page's elements"
    assert shown(value, page.all_text), f"{value!r} is not on the page as text"


def index_with(artifacts: Path, value: str) -> str:
    """index.html over one run whose evidence.json holds ``value`` in every field the index shows."""
    run_dir = artifacts / "runs" / "20261128T094500Z-a1b2c3"
    run_dir.mkdir(parents=True, exist_ok=True)
    document = {
        "format": "aris3nb.evidence",
        "version": 1,
        "run_id": value,
        "started_at": "2026-11-28T09:45:00.000Z",
        "duration_sec": 12.5,
        "verdict": value,
        "decision": value,
        "target": {"mode": value, "base_url": value},
        "phases": [
            {
                "phase": value,
                "title": value,
                "status": value,
                "verdict": value,
                "reasons": [value],
                "html": "01-pre_deploy.html",
                "duration_sec": 1.0,
            }
        ],
        "metrics": {},
    }
    (run_dir / "evidence.json").write_text(json.dumps(document))
    return write_index(artifacts).read_text()


@pytest.mark.slow
@FUZZ
@given(value=HOSTILE)
def test_any_value_of_evidence_json_is_text_on_the_index(value: str, tmp_path_factory: pytest.TempPathFactory) -> None:
    artifacts = tmp_path_factory.mktemp("index")
    html = index_with(artifacts, value)
    page = assert_inert(html, "index.html")
    assert structure(html) == structure(index_with(tmp_path_factory.mktemp("index"), PLAIN)), value
    assert shown(value, page.all_text), f"{value!r} is not on the page as text"


def test_a_hostile_endpoint_name_is_text_in_the_trend_charts(tmp_path: Path) -> None:
    """Metric names (endpoints) become chart legends and table headers."""
    run_dir = tmp_path / "runs" / "20261128T094500Z-a1b2c3"
    run_dir.mkdir(parents=True)
    (run_dir / "evidence.json").write_text(
        json.dumps(
            {
                "format": "aris3nb.evidence",
                "version": 1,
                "run_id": run_dir.name,
                "verdict": "FAIL",
                "decision": "NO-GO",
                "phases": [],
                "metrics": {"latency_p95_ms": {SCRIPT: 1.5, IMG: 2.5, "$x^2$": 3.0}, "backup_bytes": 10},
            }
        )
    )
    html = write_index(tmp_path).read_text()
    page = assert_inert(html, "index.html")
    assert SCRIPT in page.all_text and IMG in page.all_text and SCRIPT not in html
