"""Integrity plug-ins through the entry point group ``aris3nb.invariants``: a real (if tiny)
installed distribution on sys.path declares them; each selected one runs as a check named
after it, NOT APPLICABLE where its requirements are absent; one that cannot be loaded is a
FAIL naming it and why — never a traceback, never dropped."""

from __future__ import annotations

import sqlite3
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from aris3nb.core.checks import Status, Verdict
from aris3nb.integrity import ENTRY_POINT_GROUP, IntegrityOptions, run_integrity_check

ENTRY_POINTS = f"""[{ENTRY_POINT_GROUP}]
shop.lines = shop_checks:lines_make_total
shop.sql = shop_checks:NO_EMPTY_ORDERS
shop.shaped = shop_checks:SHAPED
shop.needs_payments = shop_checks:needs_payments
shop.broken = shop_checks_broken:check
shop.no_attribute = shop_checks:nothing_here
shop.not_a_check = shop_checks:NOT_A_CHECK
"""

SHOP_CHECKS = '''
from types import SimpleNamespace

from aris3nb.core.checks import failed, passed
from aris3nb.integrity import SqlCheck


def lines_make_total(ctx):
    """An order's lines sum to its total."""
    short = ctx.conn.exec_driver_sql(
        "SELECT o.order_id FROM orders o JOIN order_lines l ON l.order_id = o.order_id "
        "GROUP BY o.order_id, o.total_minor HAVING SUM(l.amount_minor) <> o.total_minor").all()
    if short:
        orders = "1 order" if len(short) == 1 else f"{len(short)} orders"
        return failed(f"{orders} whose lines do not make the total; first: order_id={short[0][0]}")
    return passed("every order's lines make its total")


lines_make_total.requires = ["orders.total_minor", "order_lines.amount_minor"]


def needs_payments(ctx):
    raise AssertionError("never called: payments is absent")


needs_payments.requires = ("payments.amount",)

NO_EMPTY_ORDERS = SqlCheck(name="ignored", severity="warning", requires=["order_lines"],
                           query="SELECT order_id FROM orders WHERE order_id NOT IN (SELECT order_id FROM order_lines)")
SHAPED = SimpleNamespace(function=lambda ctx: passed("shaped like an Invariant"), requires=["orders"])
NOT_A_CHECK = 42
'''


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A folder holding an installed distribution ``aris3nb-test-shop-checks`` and its modules."""
    folder = tmp_path_factory.mktemp("site")
    dist = folder / "aris3nb_test_shop_checks-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: aris3nb-test-shop-checks\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text(ENTRY_POINTS)
    (folder / "shop_checks.py").write_text(SHOP_CHECKS)
    (folder / "shop_checks_broken.py").write_text('raise RuntimeError("cannot reach the licence server")\n')
    yield folder
    for module in ("shop_checks", "shop_checks_broken"):
        sys.modules.pop(module, None)


@pytest.fixture
def url(tmp_path: Path, site: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.syspath_prepend(str(site))
    path = tmp_path / "shop.db"
    with sqlite3.connect(path) as db:
        db.executescript(
            "CREATE TABLE orders (order_id TEXT PRIMARY KEY, total_minor INTEGER);"
            "CREATE TABLE order_lines (order_id TEXT, amount_minor INTEGER);"
            "INSERT INTO orders VALUES ('o1', 300), ('o2', 0);"
            "INSERT INTO order_lines VALUES ('o1', 100), ('o1', 200);"
        )
    return f"sqlite:///{path}"


def run(url: str, tmp_path: Path, *plugins: str):
    options = IntegrityOptions(url, tmp_path / "exports", builtin=(), plugins=plugins)
    return run_integrity_check(options, artifacts_dir=tmp_path / "artifacts")


def test_selected_plug_ins_run_as_checks_named_after_their_entry_points(url: str, tmp_path: Path) -> None:
    report = run(url, tmp_path, "shop.lines", "shop.sql", "shop.shaped", "shop.needs_payments")
    assert [(r.name, r.status, r.detail) for r in report.results] == [
        ("shop.lines", Status.PASS, "every order's lines make its total"),
        ("shop.sql", Status.WARN, "1 offending row; first: order_id=o2"),
        ("shop.shaped", Status.PASS, "shaped like an Invariant"),
        ("shop.needs_payments", Status.WARN, "not applicable: needs payments, absent here"),
    ]
    assert report.document["inputs"]["selection"]["plugins"] == [
        "shop.lines",
        "shop.sql",
        "shop.shaped",
        "shop.needs_payments",
    ]
    with sqlite3.connect(url.removeprefix("sqlite:///")) as db:
        db.execute("UPDATE order_lines SET amount_minor = 1")
    [lines] = run(url, tmp_path, "shop.lines").results
    assert (lines.status, lines.detail) == (
        Status.FAIL,
        "1 order whose lines do not make the total; first: order_id=o1",
    )


def test_a_plug_in_that_raises_on_load_is_a_fail_naming_it(url: str, tmp_path: Path) -> None:
    report = run(url, tmp_path, "shop.broken", "shop.lines")
    broken, lines = report.results
    assert (broken.name, broken.status) == ("shop.broken", Status.FAIL)
    assert broken.detail == (
        "plug-in shop.broken: failed to load shop_checks_broken:check: RuntimeError: cannot reach the licence server"
    )
    assert broken.evidence == {
        "plugin": "shop.broken",
        "entry_point": "shop_checks_broken:check",
        "group": ENTRY_POINT_GROUP,
        "error": "RuntimeError",
    }
    assert "Traceback" not in report.path.read_text()
    assert lines.status is Status.PASS, "the other checks still run"
    assert report.verdict is Verdict.FAIL and [r.name for r in report.blocking] == ["shop.broken"]


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("shop.no_attribute", "plug-in shop.no_attribute: failed to load shop_checks:nothing_here: AttributeError: "),
        (
            "shop.not_a_check",
            "plug-in shop.not_a_check: shop_checks:NOT_A_CHECK is not an invariant: a int, not a callable",
        ),
        (
            "shop.not_installed",
            (
                "plug-in shop.not_installed: no entry point named 'shop.not_installed' in group "
                f"{ENTRY_POINT_GROUP} is installed (installed: "
            ),
        ),
    ],
)
def test_a_plug_in_that_cannot_be_had_is_a_fail_with_the_reason(
    url: str, tmp_path: Path, name: str, reason: str
) -> None:
    [result] = run(url, tmp_path, name).results
    assert (result.name, result.status) == (name, Status.FAIL)
    assert result.detail.startswith(reason), result.detail
