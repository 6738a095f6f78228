"""Offline HTML pages of executed notebooks, and the check that a page loads nothing remote.

An auditor opens these pages months after the run, often on a machine without network access,
and must see exactly what the run recorded. So a page is one self-contained file: CSS inline,
images as ``data:`` URIs, no script, stylesheet or font fetched from a CDN.

nbconvert's ``lab`` template loads require.js, MathJax, the widgets renderer and Mermaid from
CDNs. No trait turns those off (an empty URL would still emit ``<script src="">``), so
``templates/offline.html.j2`` extends ``lab`` and empties the blocks that emit them. Every page
is then checked with :func:`remote_references` before it is returned: if a future nbconvert adds
a remote load, :func:`notebook_html` raises instead of writing a page that phones home.

Raw HTML written in markdown (cells and ``text/markdown`` outputs) is shown as text, not
interpreted, and ``javascript:`` links in markdown are neutralised; stream and ``text/plain``
outputs are escaped by nbconvert itself. ``text/html`` outputs are kept as they are: they come
from pandas and from the notebooks' display helpers, which escape their values.
"""

from __future__ import annotations

import re
import threading
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import nbformat
from jinja2 import pass_context
from mistune.renderers.html import HTMLRenderer
from nbconvert.exporters import HTMLExporter
from nbconvert.filters.markdown_mistune import IPythonRenderer, MarkdownWithMath
from nbconvert.preprocessors import TagRemovePreprocessor

from aris3nb.core.words import count

__all__ = ["notebook_html", "remote_references"]

_TEMPLATES = Path(__file__).with_name("templates")
_OFFLINE_TEMPLATE = _TEMPLATES / "offline.html.j2"


# --- what a page loads -------------------------------------------------------------------------

# Attributes through which an element makes the browser fetch a resource. ``<a href>`` and
# ``<area href>`` are navigation (a click), not loads, and are deliberately absent.
_LOADING_ATTRIBUTES: dict[str, tuple[str, ...]] = {
    "script": ("src",),
    "img": ("src", "srcset"),
    "iframe": ("src",),
    "frame": ("src",),
    "embed": ("src",),
    "object": ("data",),
    "source": ("src", "srcset"),
    "track": ("src",),
    "audio": ("src",),
    "video": ("src", "poster"),
    "input": ("src",),
    # SVG elements that pull in another document or image.
    "image": ("href", "xlink:href"),
    "use": ("href", "xlink:href"),
    "feimage": ("href", "xlink:href"),
}

# ``<link rel=...>`` values that only describe a relation and fetch nothing. Any other rel
# (stylesheet, icon, preload, modulepreload, prefetch, preconnect, manifest, ...) loads.
_NAVIGATION_RELS = frozenset(
    {
        "alternate",
        "author",
        "bookmark",
        "canonical",
        "external",
        "help",
        "license",
        "me",
        "next",
        "nofollow",
        "noopener",
        "noreferrer",
        "prev",
        "search",
        "tag",
    }
)

_SCRIPT_TYPES_THAT_RUN = frozenset(
    {
        "",
        "module",
        "text/javascript",
        "application/javascript",
        "application/ecmascript",
        "text/ecmascript",
        "javascript",
    }
)

_CSS_COMMENT = re.compile(r"/\*.*?\*/", re.DOTALL)
_CSS_URL = re.compile(r"""url\(\s*(?:"([^"]*)"|'([^']*)'|([^)\s]*))\s*\)""", re.IGNORECASE)
_CSS_IMPORT_STRING = re.compile(r"""@import\s+(?:"([^"]*)"|'([^']*)')""", re.IGNORECASE)
# Inside a script that runs, an absolute URL is a load we cannot rule out (import(), fetch,
# a script element built at run time, as nbconvert's Mermaid and widgets loaders do).
_SCRIPT_ABSOLUTE_URL = re.compile(r"""https?://[^\s"'`)<>]+""", re.IGNORECASE)


def _runs_as_script(script_type: str) -> bool:
    """True for a ``<script type>`` the browser executes (not JSON or widget state)."""
    return script_type.strip().lower() in _SCRIPT_TYPES_THAT_RUN


def _is_external(url: str) -> bool:
    """True unless ``url`` is a ``data:`` URI or a fragment of this page."""
    url = url.strip()
    return not (url.lower().startswith("data:") or url.startswith("#"))


def _srcset_urls(srcset: str) -> list[str]:
    """The URLs of a ``srcset`` ("url [descriptor], url [descriptor]"); data URIs keep their comma."""
    urls = []
    pos, size = 0, len(srcset)
    while pos < size:
        while pos < size and (srcset[pos].isspace() or srcset[pos] == ","):
            pos += 1
        start = pos
        while pos < size and not srcset[pos].isspace():
            pos += 1
        url = srcset[start:pos]
        if url.endswith(","):
            url = url.rstrip(",")
        else:
            depth = 0  # skip the descriptor up to the comma that ends this candidate
            while pos < size and (srcset[pos] != "," or depth):
                depth += {"(": 1, ")": -1}.get(srcset[pos], 0)
                pos += 1
        if url:
            urls.append(url)
    return urls


def _css_references(css: str, where: str) -> list[str]:
    css = _CSS_COMMENT.sub("", css)
    found = []
    for match in _CSS_URL.finditer(css):
        url = next(group for group in match.groups() if group is not None)
        if _is_external(url):
            found.append(f"{where} url(): {url.strip()}")
    for match in _CSS_IMPORT_STRING.finditer(css):
        url = next(group for group in match.groups() if group is not None)
        if _is_external(url):
            found.append(f"{where} @import: {url.strip()}")
    return found


class _LoadedResources(HTMLParser):
    """Collects every resource an HTML document makes the browser load, in document order."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.found: list[str] = []
        self._raw_text_tag: str | None = None  # "style", or "script" when it runs
        self._raw_text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {name: value for name, value in attrs if value is not None}
        for name in _LOADING_ATTRIBUTES.get(tag, ()):
            if name not in values:
                continue
            urls = _srcset_urls(values[name]) if name == "srcset" else [values[name]]
            self.found.extend(f"<{tag} {name}>: {url.strip()}" for url in urls if _is_external(url))
        if tag == "link" and "href" in values and _is_external(values["href"]):
            rels = set(values.get("rel", "").lower().split())
            if not rels or not rels <= _NAVIGATION_RELS:
                self.found.append(f"<link href>: {values['href'].strip()}")
        if "background" in values and _is_external(values["background"]):
            self.found.append(f"<{tag} background>: {values['background'].strip()}")
        if "style" in values:
            self.found.extend(_css_references(values["style"], f"<{tag} style>"))
        if tag == "style":
            self._start_raw_text("style")
        elif tag == "script" and "src" not in values and _runs_as_script(values.get("type", "")):
            self._start_raw_text("script")

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)
        self._raw_text_tag = None  # <style/> and <script/> have no content

    def handle_data(self, data: str) -> None:
        if self._raw_text_tag is not None:
            self._raw_text.append(data)

    def handle_endtag(self, tag: str) -> None:
        if tag != self._raw_text_tag:
            return
        text = "".join(self._raw_text)
        if tag == "style":
            self.found.extend(_css_references(text, "<style>"))
        else:
            self.found.extend(f"<script> inline: {url}" for url in _SCRIPT_ABSOLUTE_URL.findall(text))
        self._raw_text_tag = None

    def _start_raw_text(self, tag: str) -> None:
        self._raw_text_tag = tag
        self._raw_text = []


def remote_references(html: str) -> list[str]:
    """Every resource ``html`` makes a browser load from outside the page, in document order.

    Each entry reads ``"<where>: <url>"``, e.g. ``"<script src>: https://cdn.example/x.js"`` or
    ``"<style> url(): fonts/a.woff"``. Counted: ``src``/``srcset``/``data``/``poster``/``href`` of
    the elements that load (script, img, iframe, source, object, embed, video, audio, track,
    input, SVG image/use), ``<link href>`` unless its rel is purely a relation (canonical,
    next, ...), ``background`` attributes, CSS ``url(...)`` and ``@import`` in ``<style>`` and
    ``style=""``, and absolute http(s) URLs inside inline scripts that run. Not counted:
    ``data:`` URIs, ``#fragment`` references, and links the reader clicks (``<a href>``), which
    is how bundle pages point at each other. Relative URLs *are* counted: a page that needs a
    file beside it is not self-contained.
    """
    parser = _LoadedResources()
    parser.feed(html)
    parser.close()
    return parser.found


# --- notebook pages ----------------------------------------------------------------------------


class _EscapingMarkdownRenderer(IPythonRenderer):
    """nbconvert's markdown renderer, with raw HTML shown as text exactly as written.

    IPythonRenderer runs raw HTML through BeautifulSoup to embed images before escaping it,
    which re-serialises the fragment (``<b>`` comes out as ``<b></b>``); the text an auditor
    reads must be what the author wrote, so raw HTML skips that step. Markdown images
    (``![alt](plot.png)``) are still embedded.
    """

    def block_html(self, html: str) -> str:
        return HTMLRenderer.block_html(self, html)

    def inline_html(self, html: str) -> str:
        return HTMLRenderer.inline_html(self, html)


class _OfflineHTMLExporter(HTMLExporter):
    """HTMLExporter whose markdown renderer escapes raw HTML and refuses ``javascript:`` links.

    nbconvert renders markdown with ``escape=False`` (raw HTML passes through and runs) and
    ``allow_harmful_protocols=True``. Its ``sanitize_html`` option is no substitute: it would
    also strip headings, paragraphs and tables from markdown and every style from the
    notebooks' HTML outputs.
    """

    @pass_context
    def markdown2html(self, context: Any, source: str) -> str:
        cell = context.get("cell", {})
        renderer = _EscapingMarkdownRenderer(
            escape=True,
            # mistune's safe default: no javascript:/vbscript:/file:. nbconvert annotates the
            # argument bool; mistune, which receives it, takes None (its default).
            allow_harmful_protocols=None,  # type: ignore[arg-type]  # nbconvert's annotation is too narrow
            attachments=cell.get("attachments", {}),
            embed_images=self.embed_images,
            path=context.get("resources", {}).get("metadata", {}).get("path", ""),
            anchor_link_text=self.anchor_link_text,
            exclude_anchor_links=self.exclude_anchor_links,
            **self.lexer_options,
        )
        return MarkdownWithMath(renderer=renderer).render(source)


#: The tag of the cells the runner inserts (verdict banner, failing-cell marker).
RUNNER_MARKER_TAG = "aris3nb-marker"
_exporter: _OfflineHTMLExporter | None = None
# One exporter is reused: its first render compiles the lab templates into its Jinja environment
# (about 0.3 s with the regexes of pygments and mistune; later pages take ~15 ms), and a new
# exporter would compile them again. It is not safe to share between threads
# (from_notebook_node re-registers per-notebook filters), hence the lock.
_exporter_lock = threading.Lock()


def _offline_exporter() -> _OfflineHTMLExporter:
    global _exporter
    if _exporter is None:
        _exporter = _OfflineHTMLExporter(  # type: ignore[no-untyped-call]  # nbconvert's __init__ is unannotated
            template_name="lab",
            template_file=str(_OFFLINE_TEMPLATE),
            # nbconvert also looks for template folders in the current directory by default,
            # which would let a stray ./lab/ folder change the page; look only beside this module.
            extra_template_basedirs=[str(_TEMPLATES)],
            embed_images=True,
            theme="light",
        )
        # The runner's banner and failure markers are outputs; their one-line comment source
        # is noise on the page.
        _exporter.register_preprocessor(  # type: ignore[no-untyped-call]  # unannotated in nbconvert
            TagRemovePreprocessor(remove_input_tags={RUNNER_MARKER_TAG}), enabled=True
        )
    return _exporter


def _titled(notebook: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """``notebook`` with its phase title (``metadata.aris3nb.title``) as the page title.

    A shallow copy: the exporter deep-copies what it renders, and the caller's notebook is
    left untouched.
    """
    ours = notebook.get("metadata", {}).get("aris3nb")
    title = ours.get("title") if isinstance(ours, dict) else None
    if not isinstance(title, str) or not title.strip():
        return notebook
    titled = nbformat.NotebookNode(notebook)
    titled["metadata"] = nbformat.NotebookNode({**notebook.get("metadata", {}), "title": title.strip()})
    return titled


def notebook_html(notebook: nbformat.NotebookNode) -> str:
    """One self-contained HTML page of an executed ``notebook``, safe to open offline.

    The page title is the notebook's phase title (``metadata["aris3nb"]["title"]``) when it has
    one, else nbconvert's default. Raises ``RuntimeError`` if the page would load anything from
    outside itself (see :func:`remote_references`): for instance an HTML output that points an
    ``<img>`` at a URL, or an nbconvert release that adds a CDN script to its template.
    nbconvert's own errors (an invalid notebook, a missing attachment) propagate unchanged.
    """
    with _exporter_lock:
        html, _resources = _offline_exporter().from_notebook_node(_titled(notebook))
    remote = remote_references(html)
    if remote:
        shown = "; ".join(remote[:5]) + (f"; and {len(remote) - 5} more" if len(remote) > 5 else "")
        raise RuntimeError(
            f"the HTML page of this notebook would load {count(len(remote), 'resource')} from outside "
            f"itself, so it would not open faithfully offline: {shown}. Embed the resource in the "
            "notebook output (as a data: URI) or remove it."
        )
    return html
