"""The built-in ``aris3`` profile's integrity invariants, run on real SQLite and PostgreSQL
against a small schema written here in the upstream ARIS3's shape (its table and column names,
UUID keys as text, FLOAT money; no upstream code). Clean data passes every check whose tables
exist; checks whose tables are absent are NOT APPLICABLE (warnings, never a business FAIL); each
planted inconsistency FAILs its own check naming the row."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
import sqlalchemy as sa

from aris3nb.core.checks import Status
from aris3nb.core.db import create_engine
from aris3nb.integrity import IntegrityOptions, run_integrity_check
from aris3nb.targets.profile import builtin_profile_text, parse_profile

PROFILE = parse_profile(builtin_profile_text("aris3"), "aris3")
UUID = "VARCHAR(36)"
DDL = f"""
CREATE TABLE tenants (id {UUID} PRIMARY KEY, name VARCHAR(100), status VARCHAR(20));
CREATE TABLE stores (id {UUID} PRIMARY KEY, tenant_id {UUID} NOT NULL, name VARCHAR(100));
CREATE TABLE users (id {UUID} PRIMARY KEY, tenant_id {UUID}, store_id {UUID}, username VARCHAR(100));
CREATE TABLE stock_items (id {UUID} PRIMARY KEY, tenant_id {UUID} NOT NULL, store_id {UUID}, item_uid VARCHAR(36),
  epc VARCHAR(24), status VARCHAR(20), item_status VARCHAR(20), location_code VARCHAR(40), pool VARCHAR(40),
  location_is_vendible BOOLEAN NOT NULL, updated_at TIMESTAMP);
CREATE TABLE transfers (id {UUID} PRIMARY KEY, tenant_id {UUID} NOT NULL, origin_store_id {UUID},
  destination_store_id {UUID}, status VARCHAR(30), dispatched_at TIMESTAMP, received_at TIMESTAMP,
  canceled_at TIMESTAMP, updated_at TIMESTAMP);
CREATE TABLE transfer_lines (id {UUID} PRIMARY KEY, transfer_id {UUID}, tenant_id {UUID}, qty INTEGER);
CREATE TABLE transfer_movements (id {UUID} PRIMARY KEY, tenant_id {UUID}, transfer_id {UUID},
  transfer_line_id {UUID}, action VARCHAR(60), qty INTEGER, created_at TIMESTAMP);
CREATE TABLE pos_sales (id {UUID} PRIMARY KEY, tenant_id {UUID} NOT NULL, store_id {UUID}, status VARCHAR(20),
  total_due FLOAT, paid_total FLOAT, balance_due FLOAT, change_due FLOAT, checked_out_at TIMESTAMP,
  canceled_at TIMESTAMP, updated_at TIMESTAMP);
CREATE TABLE pos_sale_lines (id {UUID} PRIMARY KEY, sale_id {UUID}, tenant_id {UUID}, qty INTEGER,
  unit_price FLOAT, line_total FLOAT);
CREATE TABLE pos_payments (id {UUID} PRIMARY KEY, sale_id {UUID}, tenant_id {UUID}, method VARCHAR(20),
  amount FLOAT, created_at TIMESTAMP);
CREATE TABLE pos_return_events (id {UUID} PRIMARY KEY, sale_id {UUID}, tenant_id {UUID}, exchange_sale_id {UUID},
  action VARCHAR(30), refund_subtotal FLOAT, restocking_fee FLOAT, refund_total FLOAT, exchange_total FLOAT,
  net_adjustment FLOAT, created_at TIMESTAMP)
"""


def _id() -> str:
    return str(uuid.uuid4())


T, S1, S2 = _id(), _id(), _id()
SALE, TRANSFER, LINE = _id(), _id(), _id()
CLEAN = [
    ("tenants", {"id": T, "name": "t", "status": "active"}),
    ("stores", {"id": S1, "tenant_id": T, "name": "a"}),
    ("stores", {"id": S2, "tenant_id": T, "name": "b"}),
    ("users", {"id": _id(), "tenant_id": T, "store_id": S1, "username": "admin"}),
    (
        "stock_items",
        {
            "id": _id(),
            "tenant_id": T,
            "store_id": S1,
            "item_uid": _id(),
            "epc": "A" * 24,
            "status": "RFID",
            "item_status": "ACTIVE",
            "location_code": "STORE",
            "pool": "SALE",
            "location_is_vendible": True,
        },
    ),
    (
        "stock_items",
        {
            "id": _id(),
            "tenant_id": T,
            "store_id": S1,
            "item_uid": _id(),
            "epc": None,
            "status": "SOLD",
            "item_status": "SOLD",
            "location_code": "STORE",
            "pool": "SALE",
            "location_is_vendible": False,
        },
    ),
    (
        "transfers",
        {
            "id": TRANSFER,
            "tenant_id": T,
            "origin_store_id": S1,
            "destination_store_id": S2,
            "status": "RECEIVED",
            "dispatched_at": "2026-11-01 10:00:00",
            "received_at": "2026-11-02 10:00:00",
        },
    ),
    ("transfer_lines", {"id": LINE, "transfer_id": TRANSFER, "tenant_id": T, "qty": 3}),
    (
        "transfer_movements",
        {
            "id": _id(),
            "tenant_id": T,
            "transfer_id": TRANSFER,
            "transfer_line_id": LINE,
            "action": "DISPATCH",
            "qty": 3,
        },
    ),
    (
        "transfer_movements",
        {"id": _id(), "tenant_id": T, "transfer_id": TRANSFER, "transfer_line_id": LINE, "action": "RECEIVE", "qty": 3},
    ),
    (
        "pos_sales",
        {
            "id": SALE,
            "tenant_id": T,
            "store_id": S1,
            "status": "PAID",
            "total_due": 30.5,
            "paid_total": 40.0,
            "balance_due": 0.0,
            "change_due": 9.5,
            "checked_out_at": "2026-11-03 10:00:00",
        },
    ),
    (
        "pos_sale_lines",
        {"id": _id(), "sale_id": SALE, "tenant_id": T, "qty": 2, "unit_price": 15.25, "line_total": 30.5},
    ),
    ("pos_payments", {"id": _id(), "sale_id": SALE, "tenant_id": T, "method": "CASH", "amount": 40.0}),
    (
        "pos_return_events",
        {
            "id": _id(),
            "sale_id": SALE,
            "tenant_id": T,
            "action": "REFUND_ITEMS",
            "refund_subtotal": 15.25,
            "restocking_fee": 0.0,
            "refund_total": 15.25,
            "exchange_total": 0.0,
            "net_adjustment": -15.25,
        },
    ),
]


def _load(url: str) -> None:
    engine = create_engine(url, poolclass=sa.NullPool)
    try:
        with engine.begin() as conn:
            for statement in DDL.split(";"):
                conn.exec_driver_sql(statement)
            for table, row in CLEAN:
                columns = ", ".join(row)
                conn.execute(
                    sa.text(f"INSERT INTO {table} ({columns}) VALUES ({', '.join(':' + c for c in row)})"), row
                )
    finally:
        engine.dispose()


def _check(url: str, tmp_path: Path) -> dict[str, object]:
    options = IntegrityOptions(database_url=url, exports_dir=tmp_path / "exports").with_selection(PROFILE.integrity)
    report = run_integrity_check(options, artifacts_dir=tmp_path / "artifacts")
    return {result.name: result for result in report.results}


def _run(url: str, sql: str) -> None:
    engine = create_engine(url, poolclass=sa.NullPool)
    try:
        with engine.begin() as conn:
            conn.exec_driver_sql(sql)
    finally:
        engine.dispose()


def test_clean_data_passes_and_absent_tables_are_not_applicable(database_url: str, tmp_path: Path) -> None:
    _load(database_url)
    results = _check(database_url, tmp_path)
    failing = {name: r.detail for name, r in results.items() if r.status is Status.FAIL}
    assert not failing, failing
    passed = {name for name, r in results.items() if r.status is Status.PASS}
    assert {
        "aris3.stock.vendible_status",
        "aris3.transfers.received_means_settled",
        "aris3.pos.payments_make_paid_total",
        "aris3.pos.return_amounts",
        "aris3.transfers.stores",
        "aris3.tenancy.user_store_of_tenant",
    } <= passed
    absent = results["aris3.cash.one_open_session"]
    assert absent.status is Status.WARN and absent.evidence["not_applicable"], absent.evidence


@pytest.mark.parametrize(
    ("plant", "check", "named"),
    [
        ("UPDATE pos_payments SET amount = 35.0", "aris3.pos.payments_make_paid_total", SALE),
        (
            f"UPDATE transfers SET status = 'CANCELED', canceled_at = received_at WHERE id = '{TRANSFER}'",
            "aris3.transfers.timestamps_by_status",
            TRANSFER,
        ),
        (
            "UPDATE transfer_movements SET qty = 2 WHERE action = 'RECEIVE'",
            "aris3.transfers.received_means_settled",
            TRANSFER,
        ),
        (f"UPDATE stores SET tenant_id = '{_id()}' WHERE id = '{S2}'", "aris3.transfers.stores", TRANSFER),
    ],
    ids=["payment_short", "canceled_yet_received", "received_short", "store_of_another_tenant"],
)
def test_a_planted_inconsistency_fails_its_check_naming_the_row(
    database_url: str, tmp_path: Path, plant: str, check: str, named: str
) -> None:
    _load(database_url)
    _run(database_url, plant)
    results = _check(database_url, tmp_path)
    result = results[check]
    assert result.status is Status.FAIL, (check, result.detail)
    assert named in str(result.evidence["sample"]), result.evidence["sample"]
