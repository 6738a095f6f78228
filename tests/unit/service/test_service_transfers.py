"""Transfers: the state machine, stock moving with it, movements, reservations, roles."""

from __future__ import annotations

import uuid

import pytest
import sqlalchemy as sa

from aris3nb.contract import models as m


@pytest.fixture
def stocked(service, smoke_admin, smoke_stores):
    """Three items in SMOKE-A: two RFID, one PENDING."""
    rows = service.intake(smoke_admin, smoke_stores[0], ["10.00", "20.00"], status="RFID")
    rows += service.intake(smoke_admin, smoke_stores[0], ["30.00"], status="PENDING")
    return [row["id"] for row in rows]


def _create(service, headers, origin, destination, item_ids):
    return service.client.post(
        "/aris3/transfers",
        headers=headers,
        json={"origin_store_id": origin, "destination_store_id": destination, "stock_item_ids": item_ids},
    )


def _act(service, headers, transfer_id, action, **extra):
    return service.client.post(
        f"/aris3/transfers/{transfer_id}/actions", headers=headers, json={"action": action, **extra}
    )


def _movements(service, transfer_id):
    with service.db() as session:
        return [
            (mv.stock_item_id, mv.kind, mv.from_store_id, mv.to_store_id)
            for mv in session.scalars(
                sa.select(m.TransferMovement)
                .where(m.TransferMovement.transfer_id == uuid.UUID(transfer_id))
                .order_by(m.TransferMovement.id)
            )
        ]


def _audit_actions(service, transfer_id):
    with service.db() as session:
        return list(
            session.scalars(
                sa.select(m.AuditEvent.action).where(m.AuditEvent.entity_id == transfer_id).order_by(m.AuditEvent.id)
            )
        )


def test_full_lifecycle_with_a_partial_receipt(service, smoke_admin, smoke_stores, stocked):
    origin, destination = smoke_stores
    a, b = (uuid.UUID(s) for s in smoke_stores)
    created = _create(service, smoke_admin, origin, destination, stocked)
    assert created.status_code == 201
    transfer = created.json()
    assert transfer["status"] == "DRAFT"
    assert [(line["stock_item_id"], line["status"], line["origin_status"]) for line in transfer["lines"]] == [
        (stocked[0], "PLANNED", "RFID"),
        (stocked[1], "PLANNED", "RFID"),
        (stocked[2], "PLANNED", "PENDING"),
    ]
    assert service.stock(stocked[0]).status == "RFID", "a draft moves nothing"

    dispatched = _act(service, smoke_admin, transfer["id"], "dispatch")
    assert dispatched.status_code == 200
    assert dispatched.json()["status"] == "DISPATCHED" and dispatched.json()["dispatched_at"]
    for item_id in stocked:
        item = service.stock(item_id)
        assert (item.status, item.sellable, item.store_id) == ("IN_TRANSIT", False, a)
    in_transit = service.client.get("/aris3/stock", params={"status": "IN_TRANSIT"}, headers=smoke_admin).json()
    assert in_transit["totals"]["total_rows"] == 3 and in_transit["totals"]["total_units"] == 0

    partial = _act(service, smoke_admin, transfer["id"], "receive", stock_item_ids=[stocked[2]])
    assert partial.status_code == 200
    assert partial.json()["status"] == "PARTIAL_RECEIVED"
    received_line = next(line for line in partial.json()["lines"] if line["stock_item_id"] == stocked[2])
    assert received_line["status"] == "RECEIVED" and received_line["received_at"]
    item = service.stock(stocked[2])
    assert (item.status, item.sellable, item.store_id) == ("PENDING", True, b), "back to the status it left with"

    rest = _act(service, smoke_admin, transfer["id"], "RECEIVE")
    assert rest.status_code == 200
    assert rest.json()["status"] == "RECEIVED" and rest.json()["received_at"]
    assert {line["status"] for line in rest.json()["lines"]} == {"RECEIVED"}
    assert [(service.stock(i).status, service.stock(i).store_id) for i in stocked] == [
        ("RFID", b),
        ("RFID", b),
        ("PENDING", b),
    ]

    assert _movements(service, transfer["id"]) == [
        (stocked[0], "DISPATCH", a, None),
        (stocked[1], "DISPATCH", a, None),
        (stocked[2], "DISPATCH", a, None),
        (stocked[2], "RECEIVE", None, b),
        (stocked[0], "RECEIVE", None, b),
        (stocked[1], "RECEIVE", None, b),
    ]
    assert _audit_actions(service, transfer["id"]) == [
        "transfer.create",
        "transfer.dispatch",
        "transfer.receive",
        "transfer.receive",
    ]

    for action in ("cancel", "dispatch", "receive"):
        late = _act(service, smoke_admin, transfer["id"], action)
        assert late.status_code == 409 and late.json()["code"] == "INVALID_STATE_TRANSITION"
    fetched = service.client.get(f"/aris3/transfers/{transfer['id']}", headers=smoke_admin).json()
    assert fetched == rest.json()


def test_cancel_after_dispatch_returns_in_transit_stock_to_the_origin(service, smoke_admin, smoke_stores, stocked):
    origin, destination = smoke_stores
    a, b = (uuid.UUID(s) for s in smoke_stores)
    transfer = _create(service, smoke_admin, origin, destination, stocked).json()
    _act(service, smoke_admin, transfer["id"], "dispatch")
    _act(service, smoke_admin, transfer["id"], "receive", stock_item_ids=[stocked[0]])
    canceled = _act(service, smoke_admin, transfer["id"], "Cancel")
    assert canceled.status_code == 200
    body = canceled.json()
    assert body["status"] == "CANCELED" and body["canceled_at"]
    assert [line["status"] for line in body["lines"]] == ["RECEIVED", "RETURNED", "RETURNED"]
    assert [(service.stock(i).status, service.stock(i).store_id, service.stock(i).sellable) for i in stocked] == [
        ("RFID", b, True),
        ("RFID", a, True),
        ("PENDING", a, True),
    ]
    assert _movements(service, transfer["id"])[-2:] == [
        (stocked[1], "RETURN", None, a),
        (stocked[2], "RETURN", None, a),
    ]


def test_canceling_a_draft_moves_nothing_and_frees_the_items(service, smoke_admin, smoke_stores, stocked):
    transfer = _create(service, smoke_admin, *smoke_stores, stocked).json()
    assert _act(service, smoke_admin, transfer["id"], "cancel").json()["status"] == "CANCELED"
    assert _movements(service, transfer["id"]) == []
    assert service.stock(stocked[0]).status == "RFID"
    assert _create(service, smoke_admin, *smoke_stores, stocked).status_code == 201


def test_items_on_an_open_transfer_cannot_be_taken_again(service, smoke_admin, smoke_stores, stocked):
    _create(service, smoke_admin, *smoke_stores, stocked[:1])
    again = _create(service, smoke_admin, *smoke_stores, stocked[:2])
    assert again.status_code == 409
    assert again.json()["code"] == "STOCK_NOT_AVAILABLE"
    assert [i["stock_item_id"] for i in again.json()["details"]["items"]] == [stocked[0]]
    sale = service.client.post(
        "/aris3/pos/sales",
        headers=smoke_admin,
        json={"store_id": smoke_stores[0], "lines": [{"stock_item_id": stocked[0]}]},
    )
    assert sale.status_code == 409 and sale.json()["code"] == "STOCK_NOT_AVAILABLE"


def test_creation_checks_stores_and_items(service, smoke_admin, smoke_stores, stocked):
    origin, destination = smoke_stores
    same = _create(service, smoke_admin, origin, origin, stocked)
    assert same.status_code == 422
    wrong_origin = _create(service, smoke_admin, destination, origin, stocked)
    assert wrong_origin.status_code == 409 and wrong_origin.json()["code"] == "STOCK_NOT_AVAILABLE"
    unknown = _create(service, smoke_admin, origin, destination, [stocked[0], 999_999_999])
    assert unknown.status_code == 404 and unknown.json()["details"] == {"stock_item_ids": [999_999_999]}
    nowhere = _create(service, smoke_admin, origin, str(uuid.uuid4()), stocked)
    assert nowhere.status_code == 404
    assert _create(service, smoke_admin, origin, destination, [stocked[0], stocked[0]]).status_code == 422
    assert _create(service, smoke_admin, origin, destination, []).status_code == 422


def test_receiving_what_is_not_in_transit_is_refused(service, smoke_admin, smoke_stores, stocked):
    transfer = _create(service, smoke_admin, *smoke_stores, stocked[:2]).json()
    early = _act(service, smoke_admin, transfer["id"], "receive")
    assert early.status_code == 409 and early.json()["code"] == "INVALID_STATE_TRANSITION"
    _act(service, smoke_admin, transfer["id"], "dispatch")
    _act(service, smoke_admin, transfer["id"], "receive", stock_item_ids=[stocked[0]])
    twice = _act(service, smoke_admin, transfer["id"], "receive", stock_item_ids=[stocked[0]])
    assert twice.status_code == 409 and twice.json()["code"] == "NOT_IN_TRANSIT"
    assert twice.json()["details"] == {"stock_item_ids": [stocked[0]]}
    stranger = _act(service, smoke_admin, transfer["id"], "receive", stock_item_ids=[stocked[2]])
    assert stranger.status_code == 409 and stranger.json()["details"] == {"stock_item_ids": [stocked[2]]}
    assert service.stock(stocked[1]).status == "IN_TRANSIT", "a refused receipt changes nothing"


@pytest.mark.parametrize(
    "body",
    [
        {"action": "teleport"},
        {"action": "dispatch", "stock_item_ids": [1]},
        {"action": "receive", "stock_item_ids": []},
        {},
        {"action": 7},
    ],
)
def test_bad_actions_are_422(service, smoke_admin, smoke_stores, stocked, body):
    transfer = _create(service, smoke_admin, *smoke_stores, stocked).json()
    response = service.client.post(f"/aris3/transfers/{transfer['id']}/actions", headers=smoke_admin, json=body)
    assert response.status_code == 422


def test_listing_filters_by_status(service, smoke_admin, smoke_stores, stocked):
    first = _create(service, smoke_admin, *smoke_stores, stocked[:1]).json()
    _create(service, smoke_admin, *smoke_stores, stocked[1:2])
    _act(service, smoke_admin, first["id"], "dispatch")
    drafts = service.client.get("/aris3/transfers", params={"status": "DRAFT"}, headers=smoke_admin).json()
    assert drafts["meta"]["total_rows"] == 1 and drafts["rows"][0]["status"] == "DRAFT"
    everything = service.client.get("/aris3/transfers", params={"page_size": 1}, headers=smoke_admin).json()
    assert everything["meta"]["total_rows"] == 2 and len(everything["rows"]) == 1 and everything["meta"]["has_next"]
    assert service.client.get("/aris3/transfers", params={"status": "LOST"}, headers=smoke_admin).status_code == 422


def test_roles_and_store_scope(service):
    store_a, store_b = service.stores("northwind")
    item_ids = [row["id"] for row in service.intake(service.auth("northwind.admin"), store_a.id, ["5.00", "6.00"])]
    body = {"origin_store_id": str(store_a.id), "destination_store_id": str(store_b.id), "stock_item_ids": item_ids}
    cashier = service.auth(service.store_user(store_a, "cashier"))
    assert service.client.post("/aris3/transfers", headers=cashier, json=body).status_code == 403
    auditor = service.auth("northwind.auditor")
    assert service.client.post("/aris3/transfers", headers=auditor, json=body).status_code == 403
    manager_b = service.auth(service.store_user(store_b, "manager"))
    assert service.client.post("/aris3/transfers", headers=manager_b, json=body).status_code == 403
    manager_a = service.auth(service.store_user(store_a, "manager"))
    transfer = service.client.post("/aris3/transfers", headers=manager_a, json=body).json()
    assert service.client.get(f"/aris3/transfers/{transfer['id']}", headers=auditor).status_code == 200
    assert service.client.get(f"/aris3/transfers/{transfer['id']}", headers=cashier).status_code == 403
    assert _act(service, manager_b, transfer["id"], "dispatch").status_code == 403, "only the origin dispatches"
    assert _act(service, manager_a, transfer["id"], "dispatch").status_code == 200
    assert _act(service, manager_a, transfer["id"], "receive").status_code == 403, "only the destination receives"
    assert _act(service, manager_b, transfer["id"], "receive").json()["status"] == "RECEIVED"
