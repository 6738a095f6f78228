"""A real browser, offline: Debian's Chromium driven by Playwright, headless, in a context
that is offline and routes every request, letting through only ``file:`` and ``data:`` ones
and recording (then aborting) any other, so a test can assert that nothing tried to leave
the machine. Dialogs (``alert``), console errors and page errors are recorded too.

Screenshots go to ``artifacts/test-screenshots/`` (ignored by git); their paths are listed
at the end of the test session. The browser is the system's (``/usr/bin/chromium``, which
``.ci/run`` installs with apt); Playwright's own browser downloads are never used.

Without Chromium (or the playwright package) every browser test is skipped with a reason that
says what is missing and how to get it, and the end of the session says so in one line, even
under ``-q``: a page check that did not run must not pass for one that did.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = Path("/usr/bin/chromium")
SCREENSHOTS = Path(__file__).resolve().parents[2] / "artifacts" / "test-screenshots"
SAVED: list[Path] = []
SKIPPED: list[str] = []
LOCAL = ("file:", "data:")


def _skip(reason: str) -> None:
    SKIPPED.append(reason)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def chromium() -> Iterator[Any]:
    """Headless Chromium, also told to use a proxy that does not exist: a request that got
    past the routing below would still fail on this machine."""
    try:
        from playwright import sync_api
    except ImportError:
        _skip("browser tests skipped: the playwright package is not installed (pip install -e '.[dev]')")
    if not CHROMIUM.is_file():
        _skip(f"browser tests skipped: no Chromium at {CHROMIUM} (apt-get install chromium; .ci/run installs it)")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM),
            headless=True,
            args=[
                "--proxy-server=http://127.0.0.1:9",
                "--proxy-bypass-list=<-loopback>",
                "--disable-background-networking",
            ],
        )
        yield browser
        browser.close()


@dataclass
class OfflinePage:
    """One browser page, and what happened on it."""

    page: Any
    name: str
    remote: list[str] = field(default_factory=list)
    dialogs: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def open(self, path: Path) -> Any:
        response = self.page.goto(path.resolve().as_uri(), wait_until="load")
        self.page.wait_for_load_state("networkidle")
        return response

    def at_width(self, width: int) -> None:
        self.page.set_viewport_size({"width": width, "height": 900})

    def screenshot(self, label: str) -> Path:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        path = SCREENSHOTS / f"{self.name}-{re.sub(r'[^A-Za-z0-9_.-]+', '_', label)}.png"
        self.page.screenshot(path=str(path), full_page=True)
        SAVED.append(path)
        print(f"screenshot: {path}")
        return path


@pytest.fixture
def offline_page(chromium: Any, request: pytest.FixtureRequest) -> Iterator[OfflinePage]:
    context = chromium.new_context(offline=True, java_script_enabled=True, viewport={"width": 1400, "height": 900})
    page = context.new_page()
    offline = OfflinePage(page, re.sub(r"[^A-Za-z0-9_]+", "_", request.node.name))

    def route(route: Any) -> None:
        if route.request.url.startswith(LOCAL):
            route.continue_()
        else:
            route.abort("internetdisconnected")

    def on_request(request: Any) -> None:  # every request the page makes, routed or not
        if not request.url.startswith(LOCAL):
            offline.remote.append(request.url)

    def on_dialog(dialog: Any) -> None:
        offline.dialogs.append(f"{dialog.type}: {dialog.message}")
        dialog.dismiss()

    context.route("**/*", route)
    context.on("request", on_request)
    page.on("dialog", on_dialog)
    page.on("console", lambda message: message.type == "error" and offline.errors.append(message.text))
    page.on("pageerror", lambda error: offline.errors.append(str(error)))
    yield offline
    context.close()


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if SKIPPED:
        terminalreporter.write_line(SKIPPED[0], yellow=True, bold=True)
    if SAVED:
        terminalreporter.write_line(f"browser screenshots ({len(SAVED)}), in {SCREENSHOTS}:")
        for path in SAVED:
            terminalreporter.write_line(f"  {path.name}")
