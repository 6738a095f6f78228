"""The reference service over real HTTP on loopback (``running_server``), on SQLite and
PostgreSQL: the contract on the wire, and what only concurrency shows — races on the same
idempotency key, the same stock item, the same sale — answered without a single 500.
"""

from __future__ import annotations

import socket
import threading
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
from pydantic import SecretStr

from aris3nb import migrate
from aris3nb.contract import models as m
from aris3nb.core.db import create_engine
from aris3nb.core.settings import Settings, load_settings
from aris3nb.reference.seed import SMOKE_USERNAME, seed_database
from aris3nb.reference.server import ServiceStartFailed, running_server

SMOKE_PASSWORD = "http-smoke-pass"
PARALLEL = 8


@pytest.fixture
def seeded_url(database_url: str, tmp_path: Path) -> str:
    """A migrated, seeded database of each engine in turn."""
    migrate.upgrade(database_url)
    seed_database(database_url, scale=300, exports_dir=tmp_path / "exports", smoke_password=SMOKE_PASSWORD)
    return database_url


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return load_settings(
        target={"exports_dir": tmp_path / "exports"},
        service={"secret_key": SecretStr("http-test-secret-0123456789abcdef")},
    )


@pytest.fixture
def base_url(seeded_url: str, settings: Settings) -> Iterator[str]:
    with running_server(seeded_url, settings) as url:
        yield url


@pytest.fixture
def admin(base_url: str) -> Iterator[httpx.Client]:
    """A client logged in as the smoke tenant's admin."""
    with httpx.Client(base_url=base_url, timeout=30) as client:
        token = client.post("/aris3/auth/login", json={"username": SMOKE_USERNAME, "password": SMOKE_PASSWORD})
        client.headers["Authorization"] = f"Bearer {token.json()['access_token']}"
        yield client


@pytest.fixture
def store_ids(admin: httpx.Client) -> list[str]:
    return [row["id"] for row in admin.get("/aris3/stores").json()["rows"]]


def _in_parallel(call: Callable[[], httpx.Response]) -> list[httpx.Response]:
    """``call`` from PARALLEL threads released at once."""
    barrier = threading.Barrier(PARALLEL)
    results: list[httpx.Response] = []

    def worker() -> None:
        barrier.wait()
        results.append(call())

    threads = [threading.Thread(target=worker) for _ in range(PARALLEL)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert len(results) == PARALLEL
    for response in results:
        assert response.status_code < 500, response.text
        assert b"Traceback" not in response.content
    return results


def _intake(admin: httpx.Client, store_id: str, price: str = "10.00") -> int:
    item = {
        "sku": "HTTP-1",
        "description": "http test item",
        "epc": uuid.uuid4().hex,
        "cost_price": "1.00",
        "sale_price": price,
        "status": "RFID",
    }
    response = admin.post("/aris3/stock", json={"store_id": store_id, "items": [item]})
    assert response.status_code == 201, response.text
    return response.json()["rows"][0]["id"]


def test_the_contract_holds_on_the_wire(base_url):
    with httpx.Client(base_url=base_url, timeout=10) as client:
        health = client.get("/health", headers={"X-Trace-Id": "wire-1"})
        assert health.status_code == 200 and health.json() == {"status": "ok"}
        assert health.headers["x-trace-id"] == "wire-1"
        assert client.get("/ready").json()["revision"] == migrate.head_revision()
        missing = client.get("/aris3/missing")
        assert missing.status_code == 404
        assert missing.json()["trace_id"] == missing.headers["x-trace-id"]
        malformed = client.post("/aris3/auth/login", content=b"{nope", headers={"Content-Type": "application/json"})
        assert malformed.status_code == 422 and malformed.json()["code"] == "VALIDATION_ERROR"


def test_concurrent_exports_with_one_key_make_one_export(admin, seeded_url, settings, store_ids):
    key = f"race-{uuid.uuid4()}"
    results = _in_parallel(
        lambda: admin.post(
            "/aris3/exports", headers={"Idempotency-Key": key}, json={"kind": "STOCK", "store_id": store_ids[0]}
        )
    )
    assert {r.status_code for r in results} == {201}
    assert len({r.text for r in results}) == 1, "every caller gets the same export"
    assert sum(r.headers.get("x-idempotency-result") == "IDEMPOTENCY_REPLAY" for r in results) == PARALLEL - 1
    engine = create_engine(seeded_url)
    try:
        with engine.connect() as conn:
            tenant_id = conn.scalar(sa.select(m.Store.tenant_id).where(m.Store.id == uuid.UUID(store_ids[0])))
            records = conn.scalar(
                sa.select(sa.func.count()).select_from(m.ExportRecord).where(m.ExportRecord.tenant_id == tenant_id)
            )
    finally:
        engine.dispose()
    assert records == 1
    files = [p for p in (settings.resolved_exports_dir() / str(tenant_id)).iterdir()]
    assert len(files) == 1, "the losers of the race leave no file behind"


def test_one_item_sold_by_many_tills_at_once_is_sold_once(admin, store_ids):
    item_id = _intake(admin, store_ids[0])
    results = _in_parallel(
        lambda: admin.post("/aris3/pos/sales", json={"store_id": store_ids[0], "lines": [{"stock_item_id": item_id}]})
    )
    assert Counter(r.status_code for r in results) == {201: 1, 409: PARALLEL - 1}
    sale = next(r.json() for r in results if r.status_code == 201)
    checkouts = _in_parallel(
        lambda: admin.post(
            f"/aris3/pos/sales/{sale['id']}/actions",
            json={"action": "CHECKOUT", "payments": [{"method": "CARD", "amount": "10.00"}]},
        )
    )
    assert Counter(r.status_code for r in checkouts) == {200: 1, 409: PARALLEL - 1}
    payments = admin.get(f"/aris3/pos/sales/{sale['id']}").json()["payments"]
    assert payments == [{"method": "CARD", "amount": "10.00"}], "paid exactly once"


def test_one_transfer_dispatched_and_received_concurrently_moves_once(admin, store_ids):
    item_id = _intake(admin, store_ids[0])
    transfer = admin.post(
        "/aris3/transfers",
        json={"origin_store_id": store_ids[0], "destination_store_id": store_ids[1], "stock_item_ids": [item_id]},
    ).json()
    actions = f"/aris3/transfers/{transfer['id']}/actions"
    assert Counter(r.status_code for r in _in_parallel(lambda: admin.post(actions, json={"action": "dispatch"}))) == {
        200: 1,
        409: PARALLEL - 1,
    }
    assert Counter(r.status_code for r in _in_parallel(lambda: admin.post(actions, json={"action": "receive"}))) == {
        200: 1,
        409: PARALLEL - 1,
    }
    kinds = Counter(line["status"] for line in admin.get(f"/aris3/transfers/{transfer['id']}").json()["lines"])
    assert kinds == {"RECEIVED": 1}


def test_only_one_cash_session_opens_per_store(admin, store_ids):
    results = _in_parallel(
        lambda: admin.post("/aris3/pos/cash-sessions", json={"store_id": store_ids[1], "opening_amount": "10.00"})
    )
    assert Counter(r.status_code for r in results) == {201: 1, 409: PARALLEL - 1}


def test_the_server_stops_and_frees_its_port(sqlite_url, tmp_path):
    migrate.upgrade(sqlite_url)
    with running_server(sqlite_url, load_settings(target={"exports_dir": tmp_path / "exports"})) as url:
        port = int(url.rsplit(":", 1)[1])
        assert httpx.get(f"{url}/health", timeout=5).status_code == 200
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=1).close()


def test_a_taken_port_is_a_clear_error(sqlite_url, tmp_path):
    migrate.upgrade(sqlite_url)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        with pytest.raises(ServiceStartFailed, match="cannot listen"):
            with running_server(
                sqlite_url, load_settings(target={"exports_dir": tmp_path / "exports"}), port=taken.getsockname()[1]
            ):
                pass


def test_a_database_without_the_schema_is_unavailable_not_a_500(admin, seeded_url):
    migrate.downgrade(seeded_url, "base")
    for path in ("/aris3/me", "/aris3/stock"):
        response = admin.get(path)
        assert response.status_code == 503, response.text
        assert response.json()["code"] == "DB_UNAVAILABLE"
    ready = admin.get("/ready")
    assert ready.status_code == 503 and ready.json()["code"] == "SCHEMA_NOT_AT_HEAD"
