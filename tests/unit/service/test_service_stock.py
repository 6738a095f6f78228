"""GET /aris3/stock (filters, paging, totals checked against SQL) and POST /aris3/stock (intake)."""

from __future__ import annotations

import uuid

import pytest
import sqlalchemy as sa

from aris3nb.contract import models as m


def _sql_totals(service, tenant_id: uuid.UUID, *conditions) -> dict[str, int]:
    """The totals computed directly in SQL, independently of the service."""
    with service.db() as session:
        rows = session.execute(
            sa.select(m.StockItem.status, sa.func.count())
            .where(m.StockItem.tenant_id == tenant_id, *conditions)
            .group_by(m.StockItem.status)
        ).all()
    counts = dict(rows)
    return {
        "total_rows": sum(counts.values()),
        "total_rfid": counts.get("RFID", 0),
        "total_pending": counts.get("PENDING", 0),
        "total_units": counts.get("RFID", 0) + counts.get("PENDING", 0),
    }


def _totals(body) -> dict[str, int]:
    return {key: body["totals"][key] for key in ("total_rows", "total_rfid", "total_pending", "total_units")}


def test_totals_cover_the_whole_filtered_set_and_match_sql(service):
    tenant = service.tenant("northwind")
    body = service.client.get("/aris3/stock", params={"page_size": 5}, headers=service.auth("northwind.admin")).json()
    totals = body["totals"]
    assert _totals(body) == _sql_totals(service, tenant.id)
    assert totals["total_units"] == totals["total_rfid"] + totals["total_pending"]
    assert totals["total_rows"] > totals["total_units"] > 0, "the seed has IN_TRANSIT and SOLD stock too"
    assert len(body["rows"]) == 5
    by_store = totals["totals_by_store"]
    assert {s["store_id"] for s in by_store} == {str(s.id) for s in service.stores("northwind")}
    for key in ("total_rows", "total_rfid", "total_pending", "total_units"):
        assert sum(s[key] for s in by_store) == totals[key]
    for store in by_store:
        assert store["total_units"] == store["total_rfid"] + store["total_pending"]
        per_store = _sql_totals(service, tenant.id, m.StockItem.store_id == uuid.UUID(store["store_id"]))
        assert {k: store[k] for k in per_store} == per_store


@pytest.mark.parametrize(
    ("params", "condition"),
    [
        ({"status": "SOLD"}, lambda: m.StockItem.status == "SOLD"),
        ({"status": "IN_TRANSIT"}, lambda: m.StockItem.status == "IN_TRANSIT"),
        ({"sellable": "true"}, lambda: m.StockItem.sellable.is_(True)),
        ({"sellable": "false"}, lambda: m.StockItem.sellable.is_(False)),
    ],
)
def test_filters_narrow_rows_and_totals_alike(service, params, condition):
    tenant = service.tenant("northwind")
    body = service.client.get(
        "/aris3/stock", params={**params, "page_size": 500}, headers=service.auth("northwind.admin")
    ).json()
    expected = _sql_totals(service, tenant.id, condition())
    assert expected["total_rows"] > 0, "the seed should give this filter something to find"
    assert _totals(body) == expected
    assert len(body["rows"]) == expected["total_rows"]


def test_q_searches_sku_description_and_epc_ignoring_case(service):
    headers = service.auth("northwind.admin")
    with service.db() as session:
        sample = session.scalars(
            sa.select(m.StockItem)
            .where(m.StockItem.tenant_id == service.tenant("northwind").id)
            .order_by(m.StockItem.id)
            .limit(1)
        ).one()
    word = sample.description.split()[1]
    body = service.client.get("/aris3/stock", params={"q": word.upper(), "page_size": 500}, headers=headers).json()
    assert sample.id in {row["id"] for row in body["rows"]}
    assert all(word.lower() in (r["description"] + r["sku"] + r["epc"]).lower() for r in body["rows"])
    by_epc = service.client.get("/aris3/stock", params={"q": sample.epc.lower()}, headers=headers).json()
    assert [row["id"] for row in by_epc["rows"]] == [sample.id]
    wildcard = service.client.get("/aris3/stock", params={"q": "%"}, headers=headers).json()
    assert wildcard["totals"]["total_rows"] == 0, "LIKE wildcards in q are taken literally"


def test_store_and_sku_filters(service):
    headers = service.auth("northwind.admin")
    store = service.stores("northwind")[1]
    rows = service.client.get(
        "/aris3/stock", params={"store_id": str(store.id), "page_size": 500}, headers=headers
    ).json()["rows"]
    assert rows and {row["store_id"] for row in rows} == {str(store.id)}
    sku = rows[0]["sku"]
    by_sku = service.client.get("/aris3/stock", params={"sku": sku}, headers=headers).json()
    assert by_sku["rows"] and {row["sku"] for row in by_sku["rows"]} == {sku}


def test_paging_walks_the_set_without_overlap(service):
    headers = service.auth("northwind.admin")
    first = service.client.get("/aris3/stock", params={"page_size": 7}, headers=headers).json()
    second = service.client.get("/aris3/stock", params={"page_size": 7, "page": 2}, headers=headers).json()
    meta = first["meta"]
    assert meta["page"] == 1 and meta["page_size"] == 7 and meta["has_next"]
    assert meta["total_pages"] == -(-first["totals"]["total_rows"] // 7)
    assert not {r["id"] for r in first["rows"]} & {r["id"] for r in second["rows"]}
    beyond = service.client.get(
        "/aris3/stock", params={"page_size": 7, "page": meta["total_pages"] + 1}, headers=headers
    ).json()
    assert beyond["rows"] == [] and beyond["totals"] == first["totals"]


@pytest.mark.parametrize(
    "params",
    [
        {"page_size": 501},
        {"page_size": 0},
        {"page": 0},
        {"page": "x"},
        {"status": "LOST"},
        {"store_id": "not-a-uuid"},
        {"sellable": "maybe"},
        {"page": 10**30},
        {"q": "a\x00b"},
        {"sku": "s" * 65},
    ],
)
def test_bad_query_parameters_are_422(service, params):
    response = service.client.get("/aris3/stock", params=params, headers=service.auth("northwind.admin"))
    assert response.status_code == 422
    assert response.json()["code"] == "VALIDATION_ERROR"


def test_a_store_scoped_user_sees_only_their_store(service):
    own, other = service.stores("northwind")
    headers = service.auth(service.store_user(own, "cashier"))
    body = service.client.get("/aris3/stock", params={"page_size": 500}, headers=headers).json()
    assert {s["store_id"] for s in body["totals"]["totals_by_store"]} == {str(own.id)}
    assert {r["store_id"] for r in body["rows"]} == {str(own.id)}
    forbidden = service.client.get("/aris3/stock", params={"store_id": str(other.id)}, headers=headers)
    assert forbidden.status_code == 403 and forbidden.json()["code"] == "FORBIDDEN"


def test_intake_creates_sellable_items_with_money_as_strings(service, smoke_admin, smoke_stores):
    store_a, _ = smoke_stores
    items = [
        {"sku": "SMK-1", "description": "Smoke tee", "epc": "EPC-A-1", "cost_price": 4.5, "sale_price": "12"},
        {
            "sku": "SMK-2",
            "description": "Smoke cap",
            "epc": "EPC-A-2",
            "cost_price": "0.10",
            "sale_price": 19.99,
            "status": "rfid",
            "location_code": "FLOOR-01",
        },
    ]
    response = service.client.post("/aris3/stock", headers=smoke_admin, json={"store_id": store_a, "items": items})
    assert response.status_code == 201
    rows = response.json()["rows"]
    assert [(r["status"], r["sellable"], r["cost_price"], r["sale_price"]) for r in rows] == [
        ("PENDING", True, "4.50", "12.00"),
        ("RFID", True, "0.10", "19.99"),
    ]
    assert rows[0]["location_code"] == "RECEIVING" and rows[1]["location_code"] == "FLOOR-01"
    assert all(r["store_id"] == store_a for r in rows)
    listed = service.client.get("/aris3/stock", headers=smoke_admin).json()
    assert listed["totals"]["total_units"] == 2 and listed["totals"]["total_pending"] == 1
    with service.db() as session:
        event = session.scalars(
            sa.select(m.AuditEvent).where(m.AuditEvent.action == "stock.intake").order_by(m.AuditEvent.id.desc())
        ).first()
    assert event.details["stock_item_ids"] == [r["id"] for r in rows]


def test_intake_refuses_an_epc_already_registered_in_the_tenant(service, smoke_admin, smoke_stores):
    first = service.intake(smoke_admin, smoke_stores[0], ["5.00"])[0]
    item = {"sku": "X", "description": "dup", "epc": first["epc"], "cost_price": "1", "sale_price": "2"}
    response = service.client.post(
        "/aris3/stock", headers=smoke_admin, json={"store_id": smoke_stores[1], "items": [item]}
    )
    assert response.status_code == 409
    assert response.json()["code"] == "EPC_CONFLICT"
    assert response.json()["details"] == {"epcs": [first["epc"]]}


def test_the_same_epc_may_exist_in_another_tenant(service, smoke_admin, smoke_stores):
    with service.db() as session:
        northwind_epc = session.scalars(
            sa.select(m.StockItem.epc)
            .join(m.Tenant, m.Tenant.id == m.StockItem.tenant_id)
            .where(m.Tenant.slug == "northwind")
            .limit(1)
        ).one()
    item = {"sku": "X", "description": "same epc elsewhere", "epc": northwind_epc, "cost_price": "1", "sale_price": "2"}
    assert (
        service.client.post(
            "/aris3/stock", headers=smoke_admin, json={"store_id": smoke_stores[0], "items": [item]}
        ).status_code
        == 201
    )


@pytest.mark.parametrize(
    "change",
    [
        {"sale_price": "12.345"},
        {"sale_price": 12.345},
        {"cost_price": "-1.00"},
        {"sale_price": "NaN"},
        {"sale_price": True},
        {"sale_price": "12,50"},
        {"sale_price": "99999999999.00"},
        {"epc": ""},
        {"epc": "has space"},
        {"epc": "E" * 33},
        {"sku": "a\x00b"},
        {"description": "d" * 201},
        {"status": "SOLD"},
        {"status": "IN_TRANSIT"},
        {"colour": "red"},
    ],
)
def test_intake_refuses_bad_items(service, smoke_admin, smoke_stores, change):
    item = {
        "sku": "X",
        "description": "bad",
        "epc": uuid.uuid4().hex,
        "cost_price": "1.00",
        "sale_price": "2.00",
        **change,
    }
    response = service.client.post(
        "/aris3/stock", headers=smoke_admin, json={"store_id": smoke_stores[0], "items": [item]}
    )
    assert response.status_code == 422, change
    assert response.json()["code"] == "VALIDATION_ERROR"


def test_intake_refuses_duplicate_epcs_within_the_request_and_empty_or_huge_batches(service, smoke_admin, smoke_stores):
    item = {"sku": "X", "description": "d", "epc": "SAME", "cost_price": "1", "sale_price": "2"}
    for items in ([item, item], [], [{**item, "epc": f"E{i}"} for i in range(501)]):
        response = service.client.post(
            "/aris3/stock", headers=smoke_admin, json={"store_id": smoke_stores[0], "items": items}
        )
        assert response.status_code == 422


def test_intake_needs_an_admin_or_manager_of_the_store(service):
    own, other = service.stores("northwind")
    item = {"sku": "X", "description": "d", "epc": uuid.uuid4().hex, "cost_price": "1", "sale_price": "2"}
    cashier = service.client.post(
        "/aris3/stock",
        headers=service.auth(service.store_user(own, "cashier")),
        json={"store_id": str(own.id), "items": [item]},
    )
    assert cashier.status_code == 403
    manager = service.auth(service.store_user(own, "manager"))
    assert (
        service.client.post(
            "/aris3/stock", headers=manager, json={"store_id": str(other.id), "items": [item]}
        ).status_code
        == 403
    )
    assert (
        service.client.post(
            "/aris3/stock", headers=manager, json={"store_id": str(own.id), "items": [item]}
        ).status_code
        == 201
    )
