"""Tenant isolation: another tenant's rows are invisible, and their ids answer 404 exactly
like ids that do not exist."""

from __future__ import annotations

import uuid

import pytest
import sqlalchemy as sa

from aris3nb.contract import models as m


@pytest.fixture
def bluefin(service):
    """One of each of bluefin's entities, made through the API by bluefin's admin."""
    headers = service.auth("bluefin.admin")
    store_a, store_b = service.stores("bluefin")
    items = [row["id"] for row in service.intake(headers, store_a.id, ["10.00", "11.00"])]
    transfer = service.client.post(
        "/aris3/transfers",
        headers=headers,
        json={"origin_store_id": str(store_a.id), "destination_store_id": str(store_b.id), "stock_item_ids": items[:1]},
    ).json()
    sale = service.client.post(
        "/aris3/pos/sales", headers=headers, json={"store_id": str(store_a.id), "lines": [{"stock_item_id": items[1]}]}
    ).json()
    export = service.client.post(
        "/aris3/exports", headers={**headers, "Idempotency-Key": "bf-1"}, json={"kind": "STOCK"}
    ).json()
    with service.db() as session:
        till = session.scalars(
            sa.select(m.CashSession.id).where(m.CashSession.store_id == store_a.id, m.CashSession.status == "OPEN")
        ).first()
    return {
        "store": str(store_a.id),
        "items": items,
        "transfer": transfer["id"],
        "sale": sale["id"],
        "export": export["id"],
        "cash_session": str(till),
    }


def test_another_tenants_ids_are_404(service, smoke_admin, bluefin):
    lookups = [
        ("get", f"/aris3/transfers/{bluefin['transfer']}", None),
        ("post", f"/aris3/transfers/{bluefin['transfer']}/actions", {"action": "cancel"}),
        ("get", f"/aris3/pos/sales/{bluefin['sale']}", None),
        ("post", f"/aris3/pos/sales/{bluefin['sale']}/actions", {"action": "CANCEL"}),
        ("get", f"/aris3/exports/{bluefin['export']}", None),
        ("get", f"/aris3/exports/{bluefin['export']}/download", None),
        ("post", f"/aris3/pos/cash-sessions/{bluefin['cash_session']}/close", {"counted_amount": "0.00"}),
        ("post", "/aris3/pos/cash-sessions", {"store_id": bluefin["store"], "opening_amount": "1.00"}),
        (
            "post",
            "/aris3/stock",
            {
                "store_id": bluefin["store"],
                "items": [
                    {"sku": "X", "description": "d", "epc": uuid.uuid4().hex, "cost_price": "1", "sale_price": "1"}
                ],
            },
        ),
        ("post", "/aris3/pos/sales", {"store_id": bluefin["store"], "lines": [{"stock_item_id": bluefin["items"][0]}]}),
        ("post", "/aris3/exports", {"kind": "STOCK", "store_id": bluefin["store"]}),
        ("get", f"/aris3/reports/overview?store_id={bluefin['store']}", None),
    ]
    for method, path, body in lookups:
        response = service.client.request(method, path, headers={**smoke_admin, "Idempotency-Key": "iso"}, json=body)
        assert response.status_code == 404, (method, path, response.text)
        assert response.json()["code"] == "NOT_FOUND"
    # Their items, named in a body, are reported exactly like items that do not exist.
    smoke_a, smoke_b = (str(s.id) for s in service.stores("smoke"))
    theirs = service.client.post(
        "/aris3/transfers",
        headers=smoke_admin,
        json={"origin_store_id": smoke_a, "destination_store_id": smoke_b, "stock_item_ids": bluefin["items"]},
    )
    assert theirs.status_code == 404 and theirs.json()["details"] == {"stock_item_ids": bluefin["items"]}
    # And nothing of theirs changed.
    bluefin_admin = service.auth("bluefin.admin")
    assert (
        service.client.get(f"/aris3/transfers/{bluefin['transfer']}", headers=bluefin_admin).json()["status"] == "DRAFT"
    )
    assert service.client.get(f"/aris3/pos/sales/{bluefin['sale']}", headers=bluefin_admin).json()["status"] == "DRAFT"


def test_listings_never_show_another_tenants_rows(service, smoke_admin, bluefin):
    smoke_stores = {str(s.id) for s in service.stores("smoke")}
    stock = service.client.get("/aris3/stock", params={"page_size": 500}, headers=smoke_admin).json()
    assert stock["rows"] == [] and stock["totals"]["total_rows"] == 0
    filtered = service.client.get("/aris3/stock", params={"store_id": bluefin["store"]}, headers=smoke_admin)
    assert filtered.status_code == 200 and filtered.json()["rows"] == []
    for path in ("/aris3/transfers", "/aris3/pos/sales", "/aris3/pos/cash-sessions", "/aris3/exports"):
        assert service.client.get(path, headers=smoke_admin).json()["rows"] == [], path
    northwind = service.client.get(
        "/aris3/stock", params={"page_size": 500}, headers=service.auth("northwind.admin")
    ).json()
    northwind_stores = {str(s.id) for s in service.stores("northwind")}
    assert northwind["rows"] and {r["store_id"] for r in northwind["rows"]} <= northwind_stores
    assert not {r["store_id"] for r in northwind["rows"]} & smoke_stores
