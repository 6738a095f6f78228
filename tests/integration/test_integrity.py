"""The post-go-live integrity check on real SQLite and PostgreSQL: it passes on seeded data
at any scale and on data the service itself wrote (a transfer canceled after a partial
receipt, cash given back as change); each invariant fails when one row is corrupted with
SQL; and it only ever reads."""

from __future__ import annotations

import datetime as dt
import hashlib
import shutil
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlalchemy.engine import make_url

from aris3nb import migrate
from aris3nb.contract import models as m
from aris3nb.core.checks import Status, Verdict
from aris3nb.core.db import create_engine
from aris3nb.core.errors import DatabaseUnavailable
from aris3nb.core.settings import load_settings
from aris3nb.integrity import INTEGRITY_CHECKS, IntegrityOptions, IntegrityReport, run_integrity_check
from aris3nb.reference.app import create_app
from aris3nb.reference.seed import SMOKE_USERNAME, seed_database
from aris3nb.schema import read_only_engine

SCALE = 3000
SEED_PASSWORD = "integrity-seed-pass"
SMOKE_PASSWORD = "integrity-smoke-pass"
SCRATCH_PREFIX = "aris3nb_test_"  # the conftest's: leftovers are recognisable


@dataclass(frozen=True)
class Seeded:
    url: str
    exports_dir: Path


def seed(url: str, exports_dir: Path, scale: int = SCALE) -> None:
    migrate.upgrade(url)
    seed_database(url, scale=scale, exports_dir=exports_dir, seed_password=SEED_PASSWORD, smoke_password=SMOKE_PASSWORD)


def _pg_url(admin: sa.Engine, name: str) -> str:
    return make_url(admin.url).set(database=name).render_as_string(hide_password=False)


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def template(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Seeded]:
    """A database seeded once per module and engine, copied for each test."""
    folder = tmp_path_factory.mktemp("integrity-template")
    if request.param == "sqlite":
        url = f"sqlite:///{folder / 'template.db'}"
        seed(url, folder / "exports")
        yield Seeded(url, folder / "exports")
        return
    admin: sa.Engine = request.getfixturevalue("postgres_admin")
    name = f"{SCRATCH_PREFIX}tmpl_{uuid.uuid4().hex[:8]}"
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    try:
        seed(_pg_url(admin, name), folder / "exports")
        yield Seeded(_pg_url(admin, name), folder / "exports")
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def scratch(template: Seeded, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Seeded]:
    """A copy of the seeded template (database and export files) that a test may corrupt."""
    exports = tmp_path / "exports"
    shutil.copytree(template.exports_dir, exports)
    if template.url.startswith("sqlite"):
        shutil.copyfile(make_url(template.url).database, tmp_path / "aris3.db")
        yield Seeded(f"sqlite:///{tmp_path / 'aris3.db'}", exports)
        return
    admin: sa.Engine = request.getfixturevalue("postgres_admin")
    name = f"{SCRATCH_PREFIX}{uuid.uuid4().hex[:12]}"
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}" TEMPLATE "{make_url(template.url).database}"')
    try:
        yield Seeded(_pg_url(admin, name), exports)
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def check(seeded: Seeded, tmp_path: Path, **options: object) -> IntegrityReport:
    return run_integrity_check(
        IntegrityOptions(seeded.url, seeded.exports_dir, **options),  # type: ignore[arg-type]
        artifacts_dir=tmp_path / "artifacts",
    )


def not_passing(report: IntegrityReport) -> dict[str, Status]:
    return {r.name: r.status for r in report.results if r.status is not Status.PASS}


def execute(url: str, *statements: str) -> None:
    engine = create_engine(url)
    try:
        with engine.begin() as conn:
            for statement in statements:
                assert conn.execute(sa.text(statement)).rowcount != 0, f"the corruption changed nothing: {statement}"
    finally:
        engine.dispose()


def test_freshly_seeded_data_passes_every_invariant(scratch: Seeded, tmp_path: Path) -> None:
    report = check(scratch, tmp_path, strict=True)
    assert not_passing(report) == {}, [(r.name, r.detail) for r in report.results if r.status is not Status.PASS]
    assert report.verdict is Verdict.PASS and report.exit_code == 0
    assert [r.name for r in report.results] == INTEGRITY_CHECKS.names() and len(report.results) == 16
    details = {r.name: r.detail for r in report.results}
    assert details["exports.files_match"] == "6 READY export files present with their recorded size and SHA-256"


def test_seeded_canceled_transfers_raise_nothing(scratch: Seeded, tmp_path: Path) -> None:
    engine = create_engine(scratch.url)
    with engine.connect() as conn:
        canceled = conn.execute(
            sa.text(
                "SELECT count(DISTINCT t.id) FROM transfers t JOIN transfer_movements mv ON mv.transfer_id = t.id "
                "WHERE t.status = 'CANCELED' AND mv.kind = 'RETURN'"
            )
        ).scalar_one()
    engine.dispose()
    assert canceled > 0, "the seed holds transfers canceled after dispatch"
    assert not_passing(check(scratch, tmp_path)) == {}


@pytest.mark.parametrize("scale", [0, pytest.param(25_000, marks=pytest.mark.slow)])
def test_seeded_data_passes_at_any_scale(database_url: str, tmp_path: Path, scale: int) -> None:
    seed(database_url, tmp_path / "exports", scale=scale)
    report = check(Seeded(database_url, tmp_path / "exports"), tmp_path, strict=True)
    assert not_passing(report) == {}, [(r.name, r.detail) for r in report.results if r.status is not Status.PASS]


# One row corrupted with SQL, and exactly the checks that must notice it.
CORRUPTIONS: dict[str, tuple[list[str], set[str]]] = {
    "revision behind": (["UPDATE alembic_version SET version_num = '0004_exports_idempotency'"], {"schema.revision"}),
    "stock in an unknown status": (
        [
            (
                "UPDATE stock_items SET status = 'LOST', sellable = false "
                "WHERE id = (SELECT id FROM stock_items WHERE status = 'RFID' ORDER BY id LIMIT 1)"
            )
        ],
        {"stock.known_status"},
    ),
    "in-transit item flagged sellable": (
        [
            (
                "UPDATE stock_items SET sellable = true "
                "WHERE id = (SELECT id FROM stock_items WHERE status = 'IN_TRANSIT' ORDER BY id LIMIT 1)"
            )
        ],
        {"stock.not_sellable_in_transit", "stock.store_totals"},
    ),
    "on-hand item not sellable": (
        [
            (
                "UPDATE stock_items SET sellable = false "
                "WHERE id = (SELECT id FROM stock_items WHERE status = 'RFID' ORDER BY id LIMIT 1)"
            )
        ],
        {"stock.store_totals"},
    ),
    "transfer in an unknown state": (
        [
            (
                "UPDATE transfers SET status = 'LOST' WHERE id = (SELECT id FROM transfers WHERE status = 'DRAFT' "
                "ORDER BY id LIMIT 1)"
            )
        ],
        {"transfers.known_states"},
    ),
    "received more than dispatched": (
        [
            (
                "DELETE FROM transfer_movements WHERE id = (SELECT mv.id FROM transfer_movements mv "
                "JOIN transfers t ON t.id = mv.transfer_id WHERE t.status = 'RECEIVED' AND mv.kind = 'DISPATCH' "
                "ORDER BY mv.id LIMIT 1)"
            )
        ],
        {"transfers.received_within_dispatched"},
    ),
    "draft transfer with a dispatch": (
        [
            (
                "UPDATE transfers SET status = 'DRAFT' WHERE id = (SELECT id FROM transfers "
                "WHERE status = 'DISPATCHED' ORDER BY id LIMIT 1)"
            )
        ],
        {"transfers.draft_not_dispatched"},
    ),
    "received transfer not fully received": (
        [
            (
                "UPDATE transfers SET status = 'RECEIVED' WHERE id = (SELECT id FROM transfers "
                "WHERE status = 'DISPATCHED' ORDER BY id LIMIT 1)"
            )
        ],
        {"transfers.received_complete"},
    ),
    "paid sale with payments short of its total": (
        [
            (
                "UPDATE payments SET amount = amount - 1 WHERE id = (SELECT p.id FROM payments p "
                "JOIN sales s ON s.id = p.sale_id WHERE s.status = 'PAID' AND p.method = 'CARD' AND p.amount > 2 "
                "ORDER BY p.id LIMIT 1)"
            )
        ],
        {"pos.payments_cover_total"},
    ),
    "paid sale overpaid by card": (
        [
            (
                "UPDATE payments SET amount = amount + 5 WHERE id = (SELECT p.id FROM payments p "
                "JOIN sales s ON s.id = p.sale_id WHERE s.status = 'PAID' AND s.cash_session_id IS NULL "
                "ORDER BY p.id LIMIT 1)"
            )
        ],
        {"pos.payments_cover_total"},
    ),
    "paid sale whose lines do not sum to its total": (
        [
            (
                "UPDATE sale_lines SET line_total = line_total + 1 WHERE id = (SELECT l.id FROM sale_lines l "
                "JOIN sales s ON s.id = l.sale_id WHERE s.status = 'PAID' ORDER BY l.id LIMIT 1)"
            )
        ],
        {"pos.lines_sum_to_total"},
    ),
    "paid sale without payments": (
        [
            (
                "DELETE FROM payments WHERE sale_id = (SELECT id FROM sales WHERE status = 'PAID' "
                "AND cash_session_id IS NULL ORDER BY id LIMIT 1)"
            )
        ],
        {"pos.paid_has_payments"},
    ),
    "sold item on no paid sale": (
        [
            (
                "UPDATE stock_items SET status = 'SOLD', sellable = false WHERE id = (SELECT st.id FROM stock_items st "
                "WHERE st.status = 'RFID' AND NOT EXISTS (SELECT 1 FROM sale_lines l WHERE l.stock_item_id = st.id) "
                "ORDER BY st.id LIMIT 1)"
            )
        ],
        {"pos.sold_stock_on_paid_sale"},
    ),
    "closed session whose expected cash is off": (
        [
            (
                "UPDATE cash_sessions SET expected_amount = expected_amount + 1 "
                "WHERE id = (SELECT id FROM cash_sessions WHERE status = 'CLOSED' ORDER BY id LIMIT 1)"
            )
        ],
        {"cash.closed_sessions_balance"},
    ),
    "export record whose file changed": (
        [
            (
                "UPDATE export_records SET sha256 = 'ab' || substr(sha256, 3) "
                "WHERE id = (SELECT id FROM export_records WHERE sha256 NOT LIKE 'ab%' ORDER BY id LIMIT 1)"
            )
        ],
        {"exports.files_match"},
    ),
    "stock in another tenant's store": (
        [
            (
                "UPDATE stock_items SET store_id = "
                "(SELECT s.id FROM stores s WHERE s.tenant_id <> stock_items.tenant_id ORDER BY s.id LIMIT 1) "
                "WHERE id = (SELECT id FROM stock_items WHERE status = 'RFID' ORDER BY id LIMIT 1)"
            )
        ],
        {"tenancy.store_tenant"},
    ),
}


@pytest.mark.parametrize("case", list(CORRUPTIONS))
def test_each_invariant_fails_on_one_corrupted_row_naming_it(scratch: Seeded, tmp_path: Path, case: str) -> None:
    statements, expected = CORRUPTIONS[case]
    execute(scratch.url, *statements)
    report = check(scratch, tmp_path)
    assert not_passing(report) == dict.fromkeys(expected, Status.FAIL)
    assert report.verdict is Verdict.FAIL and report.exit_code == 1
    for result in report.results:
        if result.name in expected and result.name != "schema.revision":
            assert result.evidence["offending"] >= 1, result.evidence
            assert "first:" in result.detail, result.detail  # the offending row, named


def test_a_dropped_column_makes_only_its_invariant_not_applicable(scratch: Seeded, tmp_path: Path) -> None:
    """A schema without ``cash_sessions.expected_amount``: the rule about it cannot judge this
    database (a WARN naming the column), every other invariant still runs and passes."""
    execute(scratch.url, "ALTER TABLE cash_sessions DROP COLUMN expected_amount")
    report = check(scratch, tmp_path)
    assert not_passing(report) == {"cash.closed_sessions_balance": Status.WARN}
    result = next(r for r in report.results if r.name == "cash.closed_sessions_balance")
    assert result.detail == "not applicable: needs cash_sessions.expected_amount, absent here"
    assert result.evidence == {"not_applicable": True, "missing": ["cash_sessions.expected_amount"]}
    assert report.document["not_applicable"] == {"count": 1, "checks": ["cash.closed_sessions_balance"]}
    assert report.verdict is Verdict.PASS_WITH_WARNINGS
    strict = check(scratch, tmp_path, strict=True)
    assert strict.verdict is Verdict.FAIL and [r.name for r in strict.blocking] == ["cash.closed_sessions_balance"]


def test_a_short_payment_names_the_sale_and_the_missing_amount(scratch: Seeded, tmp_path: Path) -> None:
    execute(scratch.url, *CORRUPTIONS["paid sale with payments short of its total"][0])
    result = next(r for r in check(scratch, tmp_path).results if r.name == "pos.payments_cover_total")
    [row] = result.evidence["sample"]
    assert row["missing"] == 100 and row["paid"] == row["total"] - 100, "amounts in cents"
    assert result.detail.startswith(
        f"1 PAID sale whose payments do not settle the total (amounts in cents); first: id={row['id']}"
    )


def test_missing_and_changed_export_files_fail(scratch: Seeded, tmp_path: Path) -> None:
    files = sorted(scratch.exports_dir.rglob("*.csv"))
    files[0].unlink()
    files[1].write_bytes(files[1].read_bytes() + b"tampered\n")
    result = next(r for r in check(scratch, tmp_path).results if r.name == "exports.files_match")
    assert result.status is Status.FAIL and result.evidence["offending"] == 2
    problems = sorted(p["problem"].split(" ")[0] for p in result.evidence["sample"])
    assert problems == ["file", "size"]
    wrong_folder = check(Seeded(scratch.url, tmp_path / "nowhere"), tmp_path)
    result = next(r for r in wrong_folder.results if r.name == "exports.files_match")
    assert "does not exist; give --exports-dir" in result.detail


def _idempotency_record(url: str, status: int, age: float) -> None:
    engine = create_engine(url)
    with engine.begin() as conn:
        tenant = conn.execute(sa.select(m.Tenant.id).where(m.Tenant.slug == "smoke")).scalar_one()
        conn.execute(
            m.IdempotencyRecord.__table__.insert(),
            {
                "tenant_id": tenant,
                "endpoint": "POST /aris3/exports",
                "idempotency_key": uuid.uuid4().hex,
                "request_hash": "0" * 64,
                "response_status": status,
                "response_body": {},
                "created_at": m.utcnow() - dt.timedelta(seconds=age),
            },
        )
    engine.dispose()


def test_an_old_record_in_progress_warns_and_strict_fails(scratch: Seeded, tmp_path: Path) -> None:
    _idempotency_record(scratch.url, 201, age=7200)  # final: fine at any age
    _idempotency_record(scratch.url, 102, age=60)  # in progress, but young
    assert not_passing(check(scratch, tmp_path, idempotency_max_age_sec=900)) == {}
    _idempotency_record(scratch.url, 0, age=3600)  # in progress for an hour
    report = check(scratch, tmp_path, idempotency_max_age_sec=900)
    assert not_passing(report) == {"idempotency.stuck_records": Status.WARN}
    assert report.verdict is Verdict.PASS_WITH_WARNINGS and report.exit_code == 0
    strict = check(scratch, tmp_path, idempotency_max_age_sec=900, strict=True)
    assert strict.verdict is Verdict.FAIL and strict.exit_code == 1
    result = next(r for r in strict.results if r.name == "idempotency.stuck_records")
    assert result.evidence["in_progress_recent"] == 1 and result.evidence["sample"][0]["response_status"] == 0


def test_data_written_by_the_service_passes(scratch: Seeded, tmp_path: Path) -> None:
    """A transfer canceled after a partial receipt, a cash sale with change, a till closed
    short, an export: the service's own writes satisfy every invariant."""
    app = create_app(scratch.url, load_settings(target={"exports_dir": scratch.exports_dir}))
    with TestClient(app) as client:
        token = client.post("/aris3/auth/login", json={"username": SMOKE_USERNAME, "password": SMOKE_PASSWORD}).json()
        client.headers["Authorization"] = f"Bearer {token['access_token']}"
        stores = {row["code"]: row["id"] for row in client.get("/aris3/stores").json()["rows"]}
        a, b = stores["SMOKE-A"], stores["SMOKE-B"]

        def call(method: str, path: str, expect: int = 200, **kwargs: object) -> dict:
            response = client.request(method, path, **kwargs)  # type: ignore[arg-type]
            assert response.status_code == expect, response.text
            return response.json()

        def intake(store: str, prices: list[str]) -> list[int]:
            items = [
                {
                    "sku": "INT-1",
                    "description": f"integrity {uuid.uuid4().hex[:8]}",
                    "epc": uuid.uuid4().hex[:24].upper(),
                    "cost_price": "1.00",
                    "sale_price": price,
                }
                for price in prices
            ]
            return [
                row["id"] for row in call("POST", "/aris3/stock", 201, json={"store_id": store, "items": items})["rows"]
            ]

        ids = intake(a, ["5.00", "6.00", "7.00"])
        transfer = call(
            "POST",
            "/aris3/transfers",
            201,
            json={"origin_store_id": a, "destination_store_id": b, "stock_item_ids": ids},
        )
        actions = f"/aris3/transfers/{transfer['id']}/actions"
        call("POST", actions, json={"action": "dispatch"})
        call("POST", actions, json={"action": "receive", "stock_item_ids": ids[:1]})
        assert call("POST", actions, json={"action": "cancel"})["status"] == "CANCELED"

        till = call("POST", "/aris3/pos/cash-sessions", 201, json={"store_id": a, "opening_amount": "100.00"})
        sale = call(
            "POST",
            "/aris3/pos/sales",
            201,
            json={"store_id": a, "lines": [{"stock_item_id": i} for i in intake(a, ["12.00", "3.50"])]},
        )
        paid = call(
            "POST",
            f"/aris3/pos/sales/{sale['id']}/actions",
            json={
                "action": "CHECKOUT",
                "payments": [{"method": "CASH", "amount": "10.00"}, {"method": "CARD", "amount": "10.00"}],
            },
        )
        assert (paid["status"], paid["change_due"]) == ("PAID", "4.50")
        call("POST", f"/aris3/pos/cash-sessions/{till['id']}/close", json={"counted_amount": "104.00"})
        call("POST", "/aris3/exports", 201, headers={"Idempotency-Key": uuid.uuid4().hex}, json={"kind": "SALES"})
    report = check(scratch, tmp_path, strict=True)
    assert not_passing(report) == {}, [(r.name, r.detail) for r in report.results if r.status is not Status.PASS]


def _sqlite_fingerprint(path: Path) -> tuple[int, str]:
    return path.stat().st_mtime_ns, hashlib.sha256(path.read_bytes()).hexdigest()


def test_the_check_never_writes(scratch: Seeded, tmp_path: Path) -> None:
    if scratch.url.startswith("sqlite"):
        path = Path(make_url(scratch.url).database)
        before = _sqlite_fingerprint(path)
        check(scratch, tmp_path)
        assert _sqlite_fingerprint(path) == before
    engine = read_only_engine(scratch.url)
    try:
        with engine.connect() as conn, pytest.raises(sa.exc.DBAPIError, match="read-only|readonly"):
            conn.exec_driver_sql("DELETE FROM audit_events")
    finally:
        engine.dispose()


def test_a_missing_sqlite_database_is_unavailable_and_not_created(tmp_path: Path) -> None:
    missing = tmp_path / "absent.db"
    with pytest.raises(DatabaseUnavailable, match="cannot open the database read-only") as caught:
        check(Seeded(f"sqlite:///{missing}", tmp_path), tmp_path)
    assert caught.value.exit_code == 2 and not missing.exists()


def test_a_runaway_sqlite_statement_is_interrupted(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'a.db'}"
    migrate.upgrade(url)
    engine = read_only_engine(url, statement_timeout_sec=0.2)
    runaway = "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n) SELECT count(*) FROM n"
    try:
        with engine.connect() as conn, pytest.raises(sa.exc.OperationalError, match="interrupted"):
            conn.exec_driver_sql(runaway)
        with engine.connect() as conn:
            assert conn.exec_driver_sql("SELECT 1").scalar_one() == 1, "the next statement has its own time"
    finally:
        engine.dispose()


def test_report_file_is_owner_only_and_free_of_secrets(scratch: Seeded, tmp_path: Path) -> None:
    report = check(scratch, tmp_path)
    assert report.report_path.parent == tmp_path / "artifacts" / "integrity"
    assert report.report_path.name == f"integrity_report_{report.run_id}.json"
    assert oct(report.report_path.stat().st_mode & 0o777) == "0o600"
    text = report.report_path.read_text()
    password = make_url(scratch.url).password
    assert not password or password not in text
