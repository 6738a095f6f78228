"""aris3nb.evidence.display: what the phase pages show, read at a glance.

An auditor scans a page for what went wrong: a FAIL row must stand out by its colour and by
its word (also on paper, where a printer drops backgrounds), numbers must line up, every
moment must read the same way (ISO 8601 UTC with ``Z``), a budget line must be on its chart
with its label in sight, and a smoke run that never started must say why. Real matplotlib
figures (drawn, then measured), real pytest output, and the display helpers' real HTML read
with a real HTML parser.
"""

from __future__ import annotations

import datetime as dt
import json
import random
from html.parser import HTMLParser
from pathlib import Path

import pandas as pd
import pytest

from aris3nb.core.checks import CheckResult, Status
from aris3nb.evidence import display
from aris3nb.evidence.display import (
    ErrorText,
    PhaseEvidence,
    Table,
    check_rows,
    latency_figure,
    page_time,
    row_tone,
    rpo_figure,
    smoke_error_lines,
)

ISO_Z = r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z"


class _Cells(HTMLParser):
    """Each table row's class and its cells' (tag, class, style, text)."""

    def __init__(self, html: str) -> None:
        super().__init__(convert_charrefs=True)
        self.rows: list[tuple[str, list[tuple[str, str, str, str]]]] = []
        self._cell: list[str] | None = None
        self.feed(html)
        self.close()

    def handle_starttag(self, tag, attrs):
        values = dict(attrs)
        if tag == "tr":
            self.rows.append((values.get("class") or "", []))
        elif tag in ("td", "th"):
            self._cell = [tag, values.get("class") or "", values.get("style") or "", ""]

    def handle_data(self, data):
        if self._cell is not None:
            self._cell[3] += data

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cell is not None:
            self.rows[-1][1].append(tuple(self._cell))
            self._cell = None


def _style(style: str) -> dict[str, str]:
    return dict(part.split(":", 1) for part in style.split(";") if ":" in part)


# --- one timestamp format ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    [
        "2026-11-29 15:28:41.047426",  # SQLite's text of a UTC timestamp: no zone
        "2026-11-29T15:28:41.047Z",
        "2026-11-29T15:28:41+00:00",
        "2026-11-29T16:28:41.5+01:00",
        "2026-11-29 15:28:41.047426123",  # nanoseconds
        dt.datetime(2026, 11, 29, 15, 28, 41, 47426),
        dt.datetime(2026, 11, 29, 10, 28, 41, tzinfo=dt.timezone(dt.timedelta(hours=-5))),
        pd.Timestamp("2026-11-29 15:28:41.047426123"),
    ],
)
def test_every_moment_reads_iso_8601_utc_with_z(value):
    assert page_time(value) == "2026-11-29T15:28:41Z"


@pytest.mark.parametrize("value", ["2026-11-29", "created 2026-11-29 15:28:41", "15:28", "12.5", 12, None, "n/a"])
def test_what_is_not_wholly_a_moment_is_left_as_it_is(value):
    assert page_time(value) == value


def test_tables_show_moments_in_the_page_format_and_never_zoneless():
    table = Table(
        [
            {"measure": "backup_created_at", "value": "2026-11-29T15:28:41.811Z"},
            {"measure": "newest_business_timestamp", "value": "2026-11-29 15:28:14.323109"},
            {"measure": "at", "value": pd.Timestamp("2026-11-29 15:28:41.047426")},
        ]
    )

    html = table._repr_html_()
    texts = [cell[3] for _row, cells in _Cells(html).rows for cell in cells]

    assert texts.count("2026-11-29T15:28:41Z") == 2 and "2026-11-29T15:28:14Z" in texts
    assert "15:28:14.323109" not in html and "2026-11-29 15:28" not in html
    assert "2026-11-29T15:28:41Z" in repr(table)


# --- FAIL and WARN rows stand out ----------------------------------------------------------------


def test_fail_and_warn_rows_stand_out_by_colour_bar_and_word_also_in_print():
    results = [
        CheckResult("http.health", Status.PASS, "200 ok", 0.01),
        CheckResult("latency.health", Status.FAIL, "p95 1.0 ms > budget 0.001 ms", 0.2),
        CheckResult("git", Status.WARN, "dirty tree", 0.03),
        CheckResult("migrations.round_trip.postgresql", Status.SKIP, "no --postgres-url given", 0.0),
    ]

    rows = _Cells(Table(check_rows(results), ["status", "check", "duration", "detail"])._repr_html_()).rows[1:]

    tones = [row_class.split()[-1] for row_class, _cells in rows]
    assert tones == ["plain", "fail", "warn", "plain"]
    backgrounds = [_style(cells[1][2])["background"] for _row, cells in rows]
    colours = [_style(cells[1][2])["color"] for _row, cells in rows]
    assert backgrounds[1] != backgrounds[0] and backgrounds[2] not in (backgrounds[0], backgrounds[1])
    assert colours[1] != colours[0]
    for _row_class, cells in (rows[1], rows[2]):
        status = cells[1]
        assert _style(status[2])["font-weight"] == "bold"
        assert status[3].split()[-1] in ("FAIL", "WARN")  # the word, not only a colour
        # Printers drop backgrounds unless told; the bar on the left edge is a border, which prints.
        assert all(_style(cell[2]).get("print-color-adjust") == "exact" for cell in cells)
        assert _style(cells[0][2])["border-left"].startswith("5px solid #")
    assert _style(rows[0][1][0][2])["border-left"] == "5px solid transparent"


def test_text_is_left_aligned_and_numbers_right_aligned():
    rows = [
        {"endpoint": "/health", "status": "✔ PASS", "p95 ms": 1.021, "samples": 200, "duration": "0.03 s"},
        {"endpoint": "/aris3/stock", "status": "✘ FAIL", "p95 ms": 8.586, "samples": 200, "duration": "1.20 s"},
    ]

    html = Table(rows)._repr_html_()
    header, *body = _Cells(html).rows

    aligned = {cell[3]: _style(cell[2])["text-align"] for cell in header[1][1:]}
    assert aligned == {"endpoint": "left", "status": "left", "p95 ms": "right", "samples": "right", "duration": "right"}
    for _row_class, cells in body:
        assert [_style(cell[2])["text-align"] for cell in cells[1:]] == ["left", "left", "right", "right", "right"]
    assert "1.021" in html and "8.586" in html


def test_a_tables_shape_does_not_depend_on_its_values():
    """Every cell has the same elements and attributes: a value changes what a page says,
    never its structure (tests/faults fuzzes that on whole pages)."""

    def shape(html: str) -> list:
        return [
            (bool(row_class), [(tag, bool(cls), bool(style)) for tag, cls, style, _text in cells])
            for row_class, cells in _Cells(html).rows
        ]

    plain = Table([{"status": "x", "check": "y", "detail": "z"}])._repr_html_()
    for value in ("✘ FAIL", "12", "2026-11-29 15:28:41", "<script>alert(1)</script>", ""):
        assert shape(Table([{"status": value, "check": value, "detail": value}])._repr_html_()) == shape(plain)


@pytest.mark.parametrize(
    ("status", "tone"),
    [
        ("✘ FAIL", "fail"),
        ("✘ red", "fail"),
        ("⚠ WARN", "warn"),
        ("PASS_WITH_WARNINGS", "warn"),
        ("✔ PASS", None),
        ("✔ green", None),
        ("· SKIP", None),
        (None, None),
    ],
)
def test_row_tone_reads_the_status_word(status, tone):
    assert row_tone(status) == tone


# --- budget lines --------------------------------------------------------------------------------


def _latency(status: Status, samples: list[float], budget: float, path: str = "/health") -> CheckResult:
    ordered = sorted(samples)
    return CheckResult(
        f"latency.{path.strip('/')}",
        status,
        "…",
        0.1,
        {
            "samples_ms": samples,
            "p95_ms": ordered[int(0.95 * (len(ordered) - 1))],
            "budget_ms": budget,
            "path": path,
            "count": len(samples),
        },
    )


def _extent(artist, renderer):
    return artist.get_window_extent(renderer)


@pytest.mark.parametrize("budget", [120.0, 0.001, 30.0, 4000.0])
def test_the_axis_reaches_every_budget_and_the_legend_hides_no_label(budget):
    """Samples of 0.5–2 ms against budgets far above (120, 4000 ms), far below (0.001 ms) and
    near (30 ms): the budget line is within the axis, its label inside the plot and the
    legend outside it, overlapping neither."""
    rng = random.Random(7)
    samples = [rng.uniform(0.5, 2.0) for _ in range(200)]
    figure = latency_figure([_latency(Status.PASS, samples, budget), _latency(Status.FAIL, samples, budget, "/stock")])
    figure.canvas.draw()
    renderer = figure.canvas.get_renderer()

    for axis in figure.axes:
        low, high = axis.get_xlim()
        assert low < budget < high, (budget, low, high)
        assert any(list(line.get_xdata()) == [budget, budget] for line in axis.get_lines())
        [label] = [text for text in axis.texts if text.get_text() == f"budget {budget:g} ms"]
        legend = axis.get_legend()
        assert f"budget {budget:g} ms" in [text.get_text() for text in legend.get_texts()]
        plot, shown_label, shown_legend = (
            axis.get_window_extent(renderer),
            label.get_window_extent(renderer),
            legend.get_window_extent(renderer),
        )
        assert not shown_legend.overlaps(plot), "the legend sits outside the plot"
        assert not shown_legend.overlaps(shown_label)
        assert plot.x0 - 1 <= shown_label.x0 and shown_label.x1 <= plot.x1 + 1, "the label is inside the plot"
        for tick_label in axis.get_xticklabels() + [axis.xaxis.label]:
            if tick_label.get_text():
                assert not shown_legend.overlaps(tick_label.get_window_extent(renderer))


def test_a_log_axis_is_labelled_in_plain_numbers():
    """Samples of 0.5–2 ms against a 4000 ms budget: a log axis, its labels 1, 10, 100, 1000."""
    rng = random.Random(5)
    samples = [rng.uniform(0.5, 2.0) for _ in range(200)]
    figure = latency_figure([_latency(Status.PASS, samples, 4000.0)])
    figure.canvas.draw()
    [axis] = figure.axes
    assert axis.get_xscale() == "log"
    shown = [t.get_text() for t in axis.get_xticklabels() if t.get_text()]
    assert shown and all(text.replace(".", "").isdigit() for text in shown), shown
    assert {"1", "10", "100", "1000"} <= set(shown), shown
    assert not any(t.get_text() for t in axis.get_xticklabels(minor=True))


def _tight_png(figure) -> bytes:
    import io

    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=96, bbox_inches="tight", metadata={"Software": None})
    return buffer.getvalue()


def test_a_chart_is_the_same_png_as_matplotlibs_tight_crop_drawn_once_less():
    """The charts are cropped with the box measured once (``_png``), not by ``bbox_inches="tight"``,
    which draws the figure a second time: the same bytes, for each kind of chart."""
    rng = random.Random(3)
    samples = [rng.uniform(0.5, 4.0) for _ in range(220)]
    charts = [
        lambda: latency_figure([_latency(Status.PASS, samples, 120.0), _latency(Status.FAIL, samples, 2.0, "/stock")]),
        lambda: rpo_figure(
            {"backup_created_at": "2026-11-28T08:05:00.000Z", "backup_age_sec": 3600.0, "budget_sec": 86400.0}
        ),
    ]
    for chart in charts:
        assert display._png(chart()) == _tight_png(chart())


def test_the_rpo_figure_shows_the_budget_and_the_verdict_when_the_report_has_them():
    figure = rpo_figure(
        {
            "backup_created_at": "2026-11-28T08:05:00.000Z",
            "backup_age_sec": 26 * 3600.0,
            "budget_sec": 24 * 3600.0,
            "status": "FAIL",
        }
    )
    figure.canvas.draw()
    [axis] = figure.axes

    assert axis.get_xlim()[1] > 26 and axis.get_xlabel() == "hours"
    assert any(list(line.get_xdata()) == [24.0, 24.0] for line in axis.get_lines())
    assert "FAIL against a budget of 24 h 00 min" in axis.get_title()
    assert "26 h 00 min" in axis.get_title()


def test_the_rpo_figure_without_a_budget_says_so_and_judges_nothing():
    figure = rpo_figure(
        {
            "backup_created_at": "2026-11-28T08:05:00.000Z",
            "backup_age_sec": 15.4,
            "newest_business_timestamp": "2026-11-28 08:04:59.000000",
        }
    )
    [axis] = figure.axes

    assert "no RPO budget in the drill report" in axis.get_title()
    assert not [line for line in axis.get_lines() if line.get_linestyle() == "--"]
    assert rpo_figure({"backup_created_at": None}) is None


# --- smoke that stopped before any test ran ------------------------------------------------------

CONNECT_REFUSED_TAIL = "\n".join(
    [
        "            message = str(exc)",
        "\x1b[1m\x1b[31mE           httpx.ConnectError: [Errno 111] Connection refused\x1b[0m",
        "",
        ".venv/lib/python3.11/site-packages/httpx/_transports/default.py:118: ConnectError",
        "=========================== short test summary info ============================",
        *(
            f"\x1b[31mERROR\x1b[0m tests/smoke/test_post_merge_readiness.py::TestAuth::test_{n} - httpx.ConnectError: "
            "[Errno 111] Connection refused"
            for n in range(18)
        ),
        "\x1b[31m18 errors in 3.36s\x1b[0m",
    ]
)


def test_smoke_error_lines_name_the_error_once_without_terminal_colours():
    assert smoke_error_lines(CONNECT_REFUSED_TAIL) == [
        "httpx.ConnectError: [Errno 111] Connection refused",
        ".venv/lib/python3.11/site-packages/httpx/_transports/default.py:118: ConnectError",
    ]
    collection = "ERROR tests/smoke/test_x.py - ModuleNotFoundError: No module named 'aris3'\n1 error in 0.2s"
    assert smoke_error_lines(collection) == ["ModuleNotFoundError: No module named 'aris3'"]
    assert smoke_error_lines("killed\n\n") == ["killed"]


@pytest.fixture
def shown(monkeypatch, tmp_path: Path) -> tuple[PhaseEvidence, list]:
    objects: list = []
    monkeypatch.setattr(display, "_display", lambda *items: objects.extend(items))
    return PhaseEvidence("pre_deploy", tmp_path), objects


def _smoke(status: Status, detail: str, areas: dict) -> CheckResult:
    return CheckResult(
        "smoke", status, detail, 3.0, {"pytest_exit_code": 1, "output_tail": CONNECT_REFUSED_TAIL, "areas": areas}
    )


def test_smoke_that_stopped_before_any_test_ran_shows_that_error(shown):
    phase, objects = shown
    areas = {
        "(no area)": {
            "status": "red",
            "passed": 0,
            "failed": 0,
            "errors": 18,
            "skipped": 0,
            "failing_tests": ["tests.smoke.TestAuth::test_login"],
        }
    }

    phase.show_smoke([_smoke(Status.FAIL, "red area: (no area) — 18 errors in 3.36s", areas)])

    [error] = [item for item in objects if isinstance(item, ErrorText)]
    assert error.heading.startswith("Smoke stopped before any test ran (18 tests could not start)")
    assert "httpx.ConnectError: [Errno 111] Connection refused" in error._repr_html_()
    assert "\x1b" not in error._repr_html_() and "\x1b" not in repr(error)
    assert objects.index(error) < next(i for i, item in enumerate(objects) if isinstance(item, Table))


def test_smoke_with_a_red_area_shows_no_startup_error(shown):
    phase, objects = shown
    areas = {
        "auth": {"status": "green", "passed": 5, "failed": 0, "errors": 0, "skipped": 0, "failing_tests": []},
        "pos": {
            "status": "red",
            "passed": 2,
            "failed": 1,
            "errors": 0,
            "skipped": 0,
            "failing_tests": ["tests.smoke.TestPOS::test_cash"],
        },
    }

    phase.show_smoke([_smoke(Status.FAIL, "red area: pos — 1 failed, 7 passed", areas)])

    assert not [item for item in objects if isinstance(item, ErrorText)]
    [table] = [item for item in objects if isinstance(item, Table)]
    assert [row.split()[-1] for row, _cells in _Cells(table._repr_html_()).rows[1:]] == ["plain", "fail"]


def test_the_drill_shows_rpo_as_a_figure_and_its_times_in_the_page_format(shown):
    phase, objects = shown
    report = json.loads(
        json.dumps(
            {
                "backup": "pre_deploy_20261128_0800",
                "engine": "sqlite",
                "status": "PASS",
                "checks": [],
                "rto_sec": {"validate": 0.2, "restore": 0.01, "verify": 0.07, "upgrade": 0.02, "total": 0.3},
                "rpo": {
                    "backup_created_at": "2026-11-28T08:05:00.000Z",
                    "backup_age_sec": 300.0,
                    "newest_business_timestamp": "2026-05-31 20:13:44.000000",
                },
                "diff": [],
            }
        )
    )

    phase.show_drill(report)

    assert {"drill_rto.png", "drill_rpo.png"} <= set(phase.kept)
    assert (phase.folder / "drill_rpo.png").read_bytes().startswith(b"\x89PNG")
    [rpo] = [item for item in objects if isinstance(item, Table) and item.columns == ["measure", "value"]]
    html = rpo._repr_html_()
    assert "2026-05-31T20:13:44Z" in html and "2026-11-28T08:05:00Z" in html
    assert "20:13:44.000000" not in html


def test_the_drill_names_the_rows_that_differ_and_judges_rpo_and_rto(shown):
    """A failed drill shows each changed, missing and extra row by key with the restored and the
    recorded values, and RPO and RTO as figures beside their budgets with a verdict."""
    phase, objects = shown
    row = {
        "key": [1234],
        "restored": {"id": 1234, "sku": "FORGED-1234"},
        "recorded_digest": "6c47296964976064",
        "restored_digest": "94dee9a07168e4b2",
        "recorded": None,
        "backup_data": "holds the restored values, not the recorded row: the backup was changed after it was made",
    }
    report = {
        "backup": "b",
        "engine": "sqlite",
        "status": "FAIL",
        "checks": [],
        "rto_sec": {"total": 0.3},
        "rpo": {"backup_age_sec": 300.0, "budget_sec": 86400.0, "status": "PASS"},
        "rto": {"total_sec": 0.3, "budget_sec": 900.0, "status": "PASS"},
        "diff": [
            {
                "table": "stock_items",
                "key": ["id"],
                "rows_recorded": 3,
                "rows_found": 3,
                "ranges_differing": 1,
                "ranges": [],
                "counts": {"changed": 1, "missing": 0, "extra": 0},
                "shown_per_kind": 20,
                "changed": [row],
                "missing": [],
                "extra": [],
            }
        ],
    }

    phase.show_drill(report)

    titles = [getattr(item, "data", "") for item in objects]
    tables = {titles[i - 1].strip("*"): item._repr_html_() for i, item in enumerate(objects) if isinstance(item, Table)}
    [named] = [html for title, html in tables.items() if title.startswith("stock_items: 1 changed, 0 missing, 0 extra")]
    assert "[1234]" in named and "FORGED-1234" in named and "the backup was changed after it was made" in named
    judged = tables["RPO and RTO against their budgets"]
    assert "86400" in judged and "900" in judged and judged.count("PASS") == 2


def test_a_drill_stopped_before_its_manifest_names_no_engine(shown):
    """A backup that did not validate: the report has no engine; the title says none, not "None"."""
    phase, objects = shown
    for engine, expected in ((None, "Drill of b: FAIL"), ("sqlite", "Drill of b (sqlite): FAIL")):
        objects.clear()
        phase.show_drill({"backup": "b", "engine": engine, "status": "FAIL", "checks": [], "rto_sec": {}, "diff": []})
        titles = [str(getattr(item, "data", "")) for item in objects]
        assert [t.strip("*") for t in titles if t.strip("*").startswith("Drill of")] == [expected], titles


def test_tables_not_compared_are_not_shown_as_none_differing(shown):
    """A drill that stopped at validation compared no table: its empty diff must not read as
    "every table matched"; one that compared them says which differ (none here)."""
    phase, objects = shown
    stopped = {"backup": "b", "engine": "sqlite", "status": "FAIL", "rto_sec": {}, "diff": []}
    compared = {"name": "tables match the manifest", "status": "PASS", "detail": "16 tables", "duration_sec": 0.1}
    for checks, expected in (
        (
            [{"name": "manifest valid", "status": "FAIL", "detail": "1 problem", "duration_sec": 0.1}],
            "Tables that differ: not compared",
        ),
        ([compared], "Tables that differ"),
    ):
        objects.clear()
        phase.show_drill({**stopped, "checks": checks})
        titles = [str(getattr(item, "data", "")).strip("*") for item in objects]
        [title] = [t for t in titles if t.startswith("Tables that differ")]
        assert title.startswith(expected) and (("not compared" in title) == (expected != "Tables that differ")), title


def test_a_key_range_the_row_index_could_not_name_in_full_is_shown(shown):
    """More rows differ in a chunk than its sketch names: the page says so, with the range."""
    phase, objects = shown
    unnamed = {"chunk": 3, "after_key": [15000], "up_to_key": [20000], "rows_recorded": 5000, "rows_found": 5000}
    table = {
        "table": "stock_items",
        "key": ["id"],
        "rows_recorded": 20000,
        "rows_found": 20000,
        "ranges_differing": 1,
        "ranges": [],
        "counts": {"changed": 48, "missing": 0, "extra": 0},
        "shown_per_kind": 20,
        "changed": [],
        "missing": [],
        "extra": [],
        "unnamed_chunks": [{**unnamed, "capacity": 48, "rows_named": 48, "rows_unnamed_at_least": 100}],
    }
    report = {"backup": "b", "engine": "postgresql", "status": "FAIL", "checks": [], "rto_sec": {}, "diff": [table]}

    phase.show_drill(report)

    titles = [str(getattr(item, "data", "")) for item in objects]
    [title] = [t for t in titles if "NOT ALL ROWS NAMED" in t]
    assert "stock_items: NOT ALL ROWS NAMED in 1 key range" in title and "up to 48 a range" in title
    html = next(
        item._repr_html_()
        for i, item in enumerate(objects)
        if isinstance(item, Table) and i and "NOT ALL" in titles[i - 1]
    )
    assert "15000" in html and "20000" in html and "100" in html


def test_the_banner_names_the_profile_and_the_targets_code_revision(tmp_path) -> None:
    """Every page's banner says which contract judged which code: the profile's name and the
    SHA-256 of its file, the target's git commit and Alembic head (unknown, said so, when the
    target's interpreter cannot answer)."""
    import nbformat

    from aris3nb.evidence.marks import mark_notebook
    from aris3nb.evidence.record import PhaseRun
    from aris3nb.phases import PHASE_BY_NAME
    from aris3nb.targets.profile import load_profile

    profile = tmp_path / "aris3nb.toml"
    profile.write_text('profile_version = 1\nname = "shop"\n[target]\npython = "no-such-python-here"\n')
    loaded = load_profile(profile)
    for given, expected in (
        (str(profile), f"profile shop (sha256:{loaded.sha256[:12]}) · code "),
        (str(profile), "Alembic head unknown"),
        (None, "profile reference (built in) · code git "),
    ):
        notebook = nbformat.v4.new_notebook()
        notebook.metadata["papermill"] = {"parameters": {"profile": given}}
        mark_notebook(
            notebook,
            "20261129T000000Z-abcdef",
            PhaseRun(PHASE_BY_NAME["drill"], status="completed", verdict="PASS"),
            None,
        )
        banner = notebook.cells[0].outputs[0]["data"]["text/plain"]
        assert expected in banner, banner
