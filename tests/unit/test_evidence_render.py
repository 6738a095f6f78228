"""aris3nb.evidence.render: offline phase pages, and the check that a page loads nothing remote.

An auditor opens these pages months later, offline: a page that fetches a script from a CDN shows
something else than what was recorded (or nothing), and one that runs a script written into a
notebook output is not evidence but a vector. These tests render real notebooks with the real
nbconvert and read the result with a real HTML parser.
"""

from __future__ import annotations

import base64
import io
from html.parser import HTMLParser

import nbformat
import pandas as pd
import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

from aris3nb.evidence.render import notebook_html, remote_references

HOSTILE = "<script>alert(1)</script>"


class _Elements(HTMLParser):
    """The text of every <script> element, the <title>, and every <img src>."""

    def __init__(self, html: str) -> None:
        super().__init__(convert_charrefs=True)
        self.scripts: list[str] = []
        self.images: list[str] = []
        self.title = ""
        self._in: str | None = None
        self.feed(html)
        self.close()

    def handle_starttag(self, tag, attrs):
        if tag in ("script", "title"):
            self._in = tag
            if tag == "script":
                self.scripts.append("")
        if tag == "img":
            self.images.append(dict(attrs).get("src") or "")

    def handle_data(self, data):
        if self._in == "script":
            self.scripts[-1] += data
        elif self._in == "title":
            self.title += data

    def handle_endtag(self, tag):
        if tag == self._in:
            self._in = None


def _png() -> str:
    figure = Figure(figsize=(2, 1.5), dpi=50)
    FigureCanvasAgg(figure)
    figure.add_subplot().plot([1, 3, 2])
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def _phase_notebook(**metadata) -> nbformat.NotebookNode:
    frame = pd.DataFrame({"check": ["health", "<b>ready</b>"], "status": ["pass", "fail"]})
    notebook = new_notebook(metadata=metadata)
    notebook.cells = [
        new_markdown_cell(f"# Pre-deploy gate\n\nRaw HTML must stay text:\n\n{HOSTILE}\n\ninline {HOSTILE} too"),
        new_code_cell(
            "show_everything()",
            execution_count=1,
            outputs=[
                new_output("display_data", data={"image/png": _png(), "text/plain": "<Figure>"}),
                new_output(
                    "execute_result",
                    execution_count=1,
                    data={"text/html": frame.to_html(), "text/plain": frame.to_string()},
                ),
                new_output("stream", name="stdout", text=f"{HOSTILE}\n"),
                new_output("stream", name="stderr", text=f"{HOSTILE}\n"),
                new_output("display_data", data={"text/plain": HOSTILE}),
            ],
        ),
    ]
    return notebook


def test_page_is_self_contained_with_the_plot_embedded_and_the_table_kept():
    html = notebook_html(_phase_notebook())

    assert remote_references(html) == []
    page = _Elements(html)
    assert any(src.startswith("data:image/png;base64,") for src in page.images)
    assert "<table" in html and "&lt;b&gt;ready&lt;/b&gt;" in html  # pandas escaped its own value
    assert "<style" in html  # the lab CSS is inline


def test_script_text_in_markdown_and_text_outputs_is_shown_not_run():
    html = notebook_html(_phase_notebook())

    page = _Elements(html)
    assert not any("alert(1)" in script for script in page.scripts)
    # markdown block, markdown inline, stdout, stderr and text/plain: all shown as text
    assert html.count("&lt;script&gt;alert(1)&lt;/script&gt;") >= 5


def test_markdown_javascript_links_are_neutralised():
    notebook = new_notebook()
    notebook.cells = [new_markdown_cell("[click](javascript:alert(1)) and [docs](https://example.org/)")]

    html = notebook_html(notebook)

    assert "javascript:" not in html
    assert 'href="https://example.org/"' in html  # a link to click is navigation, and allowed
    assert remote_references(html) == []


def test_cdn_loaders_of_the_lab_template_are_gone_even_for_widgets_mathjax_and_mermaid():
    notebook = new_notebook(
        metadata={
            "widgets": {
                "application/vnd.jupyter.widget-state+json": {"state": {}, "version_major": 2, "version_minor": 0}
            }
        }
    )
    notebook.cells = [new_markdown_cell("$x^2$ and\n\n```mermaid\ngraph TD; A-->B\n```")]

    html = notebook_html(notebook)

    assert remote_references(html) == []
    for host in ("cdnjs.cloudflare.com", "unpkg.com", "require.js", "mathjax"):
        assert host not in html.lower()


def test_title_is_the_phase_title_and_the_callers_notebook_is_untouched():
    notebook = _phase_notebook(aris3nb={"title": "Pre-deploy: release <readiness> gate", "phase": "pre_deploy"})
    before = nbformat.writes(notebook)

    html = notebook_html(notebook)

    assert _Elements(html).title == "Pre-deploy: release <readiness> gate"
    assert "<title>Pre-deploy: release &lt;readiness&gt; gate</title>" in html
    assert nbformat.writes(notebook) == before


def test_title_falls_back_to_the_nbconvert_default():
    assert _Elements(notebook_html(new_notebook())).title == "Notebook"
    assert _Elements(notebook_html(new_notebook(metadata={"aris3nb": {"title": "  "}}))).title == "Notebook"


def test_a_page_that_would_phone_home_is_refused():
    notebook = new_notebook()
    notebook.cells = [
        new_code_cell(
            "x",
            execution_count=1,
            outputs=[
                new_output(
                    "display_data", data={"text/html": '<img src="https://tracker.example/p.gif">', "text/plain": "x"}
                )
            ],
        )
    ]

    with pytest.raises(RuntimeError, match=r"tracker\.example/p\.gif"):
        notebook_html(notebook)


def test_later_renders_reuse_the_exporter_and_stay_correct():
    first = notebook_html(_phase_notebook(aris3nb={"title": "one"}))
    second = notebook_html(_phase_notebook(aris3nb={"title": "two"}))

    assert _Elements(first).title == "one" and _Elements(second).title == "two"


# --- remote_references on hand-written pages ---------------------------------------------------


@pytest.mark.parametrize(
    ("snippet", "url"),
    [
        ('<script src="https://cdn.example/require.js"></script>', "https://cdn.example/require.js"),
        ('<script type="module" src="//cdn.example/m.mjs"></script>', "//cdn.example/m.mjs"),
        ('<link rel="stylesheet" href="https://fonts.example/css">', "https://fonts.example/css"),
        ('<link rel="preload" as="font" href="/f.woff2">', "/f.woff2"),
        ('<link rel="icon" href="favicon.ico">', "favicon.ico"),
        ('<link href="theme.css">', "theme.css"),
        ('<img src="http://example.org/a.png">', "http://example.org/a.png"),
        ('<img src="plot.png" alt="relative: not in the page either">', "plot.png"),
        ('<img src="data:image/png;base64,AA" srcset="data:image/png;base64,AA 1x, big.png 2x">', "big.png"),
        ('<iframe src="https://example.org/embed"></iframe>', "https://example.org/embed"),
        ('<video><source src="https://example.org/v.mp4"></video>', "https://example.org/v.mp4"),
        ('<video poster="https://example.org/p.jpg"></video>', "https://example.org/p.jpg"),
        ('<object data="https://example.org/x.svg"></object>', "https://example.org/x.svg"),
        ('<svg><image href="https://example.org/i.png"/></svg>', "https://example.org/i.png"),
        ('<style>body { background: url("https://example.org/bg.png") }</style>', "https://example.org/bg.png"),
        ("<style>@font-face { src: url(fonts/a.woff) }</style>", "fonts/a.woff"),
        ("<style>@import 'https://example.org/more.css';</style>", "https://example.org/more.css"),
        ("<style>@import url(https://example.org/more.css);</style>", "https://example.org/more.css"),
        ("<div style=\"background-image: url('https://example.org/d.png')\"></div>", "https://example.org/d.png"),
        ('<table background="https://example.org/t.png"></table>', "https://example.org/t.png"),
        ('<script>import("https://cdn.example/mermaid.mjs")</script>', "https://cdn.example/mermaid.mjs"),
    ],
)
def test_remote_references_finds_each_kind_of_load(snippet, url):
    found = remote_references(f"<!DOCTYPE html><html><head></head><body>{snippet}</body></html>")

    assert len(found) == 1, found
    assert found[0].endswith(f": {url}")


def test_remote_references_ignores_data_uris_fragments_navigation_and_data_scripts():
    page = """<!DOCTYPE html><html><head>
      <link rel="canonical" href="https://example.org/run">
      <style>/* url(https://example.org/commented-out.png) */
        .icon { background: url(data:image/svg+xml;base64,PHN2Zz4=) }
        .mask { mask: url("#clip") }</style>
      <script type="application/vnd.jupyter.widget-state+json">{"u": "https://unpkg.com/x"}</script>
      <script type="application/json">{"href": "https://example.org/data"}</script>
      <script>document.title = "no url here";</script>
    </head><body>
      <a href="02-deploy.html">next phase</a> <a href="https://example.org/docs">docs</a>
      <a href="#cell-3">cell</a> <area href="map.html">
      <img src="data:image/png;base64,iVBORw0KGgo=" srcset="data:image/png;base64,AA 1x">
      <img src=" DATA:image/gif;base64,R0lGOD">
      <svg><use href="#glyph"/></svg>
      <div style="color: red">text with https://example.org/ in it</div>
    </body></html>"""

    assert remote_references(page) == []


def test_remote_references_lists_every_load_in_document_order():
    page = (
        '<link rel="stylesheet" href="a.css"><script src="b.js"></script>'
        '<img src="c.png"><style>.x{background:url(d.png)}</style>'
    )

    assert remote_references(page) == [
        "<link href>: a.css",
        "<script src>: b.js",
        "<img src>: c.png",
        "<style> url(): d.png",
    ]
