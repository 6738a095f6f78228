"""POS sales (draft, checkout, cancel) and cash sessions (open, cash sales, close)."""

from __future__ import annotations

import uuid
from decimal import Decimal

import pytest
import sqlalchemy as sa

from aris3nb.contract import models as m

MONEY_FIELDS = (
    "subtotal",
    "discount_total",
    "total",
    "unit_price",
    "discount",
    "line_total",
    "amount",
    "paid_total",
    "change_due",
    "opening_amount",
    "expected_amount",
    "counted_amount",
    "difference",
)


@pytest.fixture
def items(service, smoke_admin, smoke_stores):
    """Three RFID items in SMOKE-A, priced 10.00, 25.50 and 4.99."""
    return [row["id"] for row in service.intake(smoke_admin, smoke_stores[0], ["10.00", "25.50", "4.99"])]


def _sale(service, headers, store_id, lines):
    return service.client.post("/aris3/pos/sales", headers=headers, json={"store_id": store_id, "lines": lines})


def _checkout(service, headers, sale_id, *payments):
    return service.client.post(
        f"/aris3/pos/sales/{sale_id}/actions",
        headers=headers,
        json={"action": "CHECKOUT", "payments": [{"method": method, "amount": amount} for method, amount in payments]},
    )


def _open_till(service, headers, store_id, amount="100.00"):
    return service.client.post(
        "/aris3/pos/cash-sessions", headers=headers, json={"store_id": store_id, "opening_amount": amount}
    )


def test_a_draft_sale_prices_its_lines(service, smoke_admin, smoke_stores, items):
    response = _sale(
        service,
        smoke_admin,
        smoke_stores[0],
        [{"stock_item_id": items[0], "discount": "1.50"}, {"stock_item_id": items[1]}],
    )
    assert response.status_code == 201
    sale = response.json()
    assert (sale["status"], sale["subtotal"], sale["discount_total"], sale["total"]) == (
        "DRAFT",
        "35.50",
        "1.50",
        "34.00",
    )
    assert [(line["unit_price"], line["discount"], line["line_total"]) for line in sale["lines"]] == [
        ("10.00", "1.50", "8.50"),
        ("25.50", "0.00", "25.50"),
    ]
    assert sale["payments"] == [] and sale["change_due"] == "0.00"
    service.assert_money_strings(sale, MONEY_FIELDS)
    assert service.stock(items[0]).status == "RFID", "a draft sells nothing"


def test_cash_checkout_needs_an_open_cash_session(service, smoke_admin, smoke_stores, items):
    sale = _sale(service, smoke_admin, smoke_stores[0], [{"stock_item_id": items[0]}]).json()
    response = _checkout(service, smoke_admin, sale["id"], ("CASH", "10.00"))
    assert response.status_code == 409
    assert response.json()["code"] == "CASH_SESSION_REQUIRED"
    assert service.stock(items[0]).status == "RFID"
    # A till in the other store does not help.
    _open_till(service, smoke_admin, smoke_stores[1])
    assert _checkout(service, smoke_admin, sale["id"], ("CASH", "10.00")).status_code == 409


def test_cash_checkout_with_change_books_the_cash_kept(service, smoke_admin, smoke_stores, items):
    till = _open_till(service, smoke_admin, smoke_stores[0]).json()
    sale = _sale(
        service,
        smoke_admin,
        smoke_stores[0],
        [{"stock_item_id": items[0]}, {"stock_item_id": items[2], "discount": "0.99"}],
    ).json()
    assert sale["total"] == "14.00"
    response = _checkout(service, smoke_admin, sale["id"], ("CASH", "20.00"))
    assert response.status_code == 200
    paid = response.json()
    assert (paid["status"], paid["paid_total"], paid["change_due"]) == ("PAID", "20.00", "6.00")
    assert paid["cash_session_id"] == till["id"] and paid["paid_at"]
    assert paid["payments"] == [{"method": "CASH", "amount": "20.00"}]
    service.assert_money_strings(paid, MONEY_FIELDS)
    for item_id in (items[0], items[2]):
        item = service.stock(item_id)
        assert (item.status, item.sellable) == ("SOLD", False)
    with service.db() as session:
        movements = session.execute(
            sa.select(m.CashMovement.kind, m.CashMovement.amount)
            .where(m.CashMovement.cash_session_id == uuid.UUID(till["id"]))
            .order_by(m.CashMovement.id)
        ).all()
    assert movements == [("OPENING", Decimal("100.00")), ("SALE", Decimal("14.00"))]
    assert service.client.get(f"/aris3/pos/sales/{sale['id']}", headers=smoke_admin).json() == paid


def test_split_tender_card_and_cash(service, smoke_admin, smoke_stores, items):
    _open_till(service, smoke_admin, smoke_stores[0])
    sale = _sale(service, smoke_admin, smoke_stores[0], [{"stock_item_id": items[1]}]).json()
    paid = _checkout(service, smoke_admin, sale["id"], ("CARD", "20.00"), ("CASH", "10.00")).json()
    assert (paid["status"], paid["change_due"]) == ("PAID", "4.50")


@pytest.mark.parametrize(
    ("payments", "code"),
    [
        ((("CARD", "9.99"),), "PAYMENT_INSUFFICIENT"),
        ((("CARD", "5.00"), ("TRANSFER", "4.99")), "PAYMENT_INSUFFICIENT"),
        ((), "PAYMENT_INSUFFICIENT"),
        ((("CARD", "10.01"),), "OVERPAYMENT_NOT_ALLOWED"),
        ((("CARD", "9.00"), ("CASH", "0.50"), ("TRANSFER", "5.00")), "OVERPAYMENT_NOT_ALLOWED"),
    ],
)
def test_payments_must_settle_the_total(service, smoke_admin, smoke_stores, items, payments, code):
    _open_till(service, smoke_admin, smoke_stores[0])
    sale = _sale(service, smoke_admin, smoke_stores[0], [{"stock_item_id": items[0]}]).json()
    response = _checkout(service, smoke_admin, sale["id"], *payments)
    assert response.status_code == 422
    assert response.json()["code"] == code
    assert service.stock(items[0]).status == "RFID"


@pytest.mark.parametrize(
    "payment",
    [
        {"method": "BITCOIN", "amount": "1.00"},
        {"method": "CASH", "amount": "0"},
        {"method": "CASH", "amount": "1.001"},
        {"method": "CASH"},
    ],
)
def test_malformed_payments_are_422(service, smoke_admin, smoke_stores, items, payment):
    sale = _sale(service, smoke_admin, smoke_stores[0], [{"stock_item_id": items[0]}]).json()
    response = service.client.post(
        f"/aris3/pos/sales/{sale['id']}/actions",
        headers=smoke_admin,
        json={"action": "CHECKOUT", "payments": [payment]},
    )
    assert response.status_code == 422 and response.json()["code"] == "VALIDATION_ERROR"


def test_only_a_draft_can_be_checked_out_or_canceled(service, smoke_admin, smoke_stores, items):
    sale = _sale(service, smoke_admin, smoke_stores[0], [{"stock_item_id": items[0]}]).json()
    assert _checkout(service, smoke_admin, sale["id"], ("CARD", "10.00")).status_code == 200
    for body in ({"action": "CHECKOUT", "payments": [{"method": "CARD", "amount": "10.00"}]}, {"action": "cancel"}):
        again = service.client.post(f"/aris3/pos/sales/{sale['id']}/actions", headers=smoke_admin, json=body)
        assert again.status_code == 409 and again.json()["code"] == "INVALID_STATE_TRANSITION"


def test_canceling_a_draft_releases_its_items(service, smoke_admin, smoke_stores, items):
    sale = _sale(service, smoke_admin, smoke_stores[0], [{"stock_item_id": items[0]}]).json()
    taken = _sale(service, smoke_admin, smoke_stores[0], [{"stock_item_id": items[0]}])
    assert taken.status_code == 409 and taken.json()["code"] == "STOCK_NOT_AVAILABLE"
    canceled = service.client.post(
        f"/aris3/pos/sales/{sale['id']}/actions", headers=smoke_admin, json={"action": "CANCEL"}
    )
    assert canceled.json()["status"] == "CANCELED" and canceled.json()["canceled_at"]
    assert _sale(service, smoke_admin, smoke_stores[0], [{"stock_item_id": items[0]}]).status_code == 201


def test_sale_lines_are_checked(service, smoke_admin, smoke_stores, items):
    too_much = _sale(service, smoke_admin, smoke_stores[0], [{"stock_item_id": items[2], "discount": "5.00"}])
    assert too_much.status_code == 422 and too_much.json()["code"] == "DISCOUNT_EXCEEDS_PRICE"
    elsewhere = _sale(service, smoke_admin, smoke_stores[1], [{"stock_item_id": items[0]}])
    assert elsewhere.status_code == 409 and elsewhere.json()["code"] == "STOCK_NOT_AVAILABLE"
    assert _sale(service, smoke_admin, smoke_stores[0], [{"stock_item_id": items[0]}] * 2).status_code == 422
    assert _sale(service, smoke_admin, smoke_stores[0], []).status_code == 422
    assert _sale(service, smoke_admin, smoke_stores[0], [{"stock_item_id": 2**70}]).status_code == 422
    assert _sale(service, smoke_admin, smoke_stores[0], [{"stock_item_id": "1"}]).status_code == 422


def test_sold_items_cannot_be_sold_again(service, smoke_admin, smoke_stores, items):
    sale = _sale(service, smoke_admin, smoke_stores[0], [{"stock_item_id": items[0]}]).json()
    _checkout(service, smoke_admin, sale["id"], ("CARD", "10.00"))
    again = _sale(service, smoke_admin, smoke_stores[0], [{"stock_item_id": items[0]}])
    assert again.status_code == 409
    assert again.json()["details"]["items"] == [{"stock_item_id": items[0], "reason": "status is SOLD"}]


def test_roles_auditor_cannot_sell_and_a_cashier_sells_only_in_their_store(service):
    own, other = service.stores("northwind")
    admin = service.auth("northwind.admin")
    own_item, other_item = (service.intake(admin, store.id, ["9.00"])[0]["id"] for store in (own, other))
    auditor = service.auth("northwind.auditor")
    denied = _sale(service, auditor, str(own.id), [{"stock_item_id": own_item}])
    assert denied.status_code == 403 and denied.json()["code"] == "FORBIDDEN"
    assert _open_till(service, auditor, str(own.id)).status_code == 403
    cashier = service.auth(service.store_user(own, "cashier"))
    assert _sale(service, cashier, str(other.id), [{"stock_item_id": other_item}]).status_code == 403
    sale = _sale(service, cashier, str(own.id), [{"stock_item_id": own_item}])
    assert sale.status_code == 201
    other_sale = _sale(service, admin, str(other.id), [{"stock_item_id": other_item}]).json()
    assert service.client.get(f"/aris3/pos/sales/{other_sale['id']}", headers=cashier).status_code == 403
    listed = service.client.get("/aris3/pos/sales", headers=cashier).json()
    assert listed["rows"] and {row["store_id"] for row in listed["rows"]} == {str(own.id)}


def test_sales_listing_filters(service, smoke_admin, smoke_stores, items):
    first = _sale(service, smoke_admin, smoke_stores[0], [{"stock_item_id": items[0]}]).json()
    _sale(service, smoke_admin, smoke_stores[0], [{"stock_item_id": items[1]}])
    _checkout(service, smoke_admin, first["id"], ("CARD", "10.00"))
    paid = service.client.get("/aris3/pos/sales", params={"status": "PAID"}, headers=smoke_admin).json()
    assert [row["id"] for row in paid["rows"]] == [first["id"]]
    in_b = service.client.get("/aris3/pos/sales", params={"store_id": smoke_stores[1]}, headers=smoke_admin).json()
    assert in_b["meta"]["total_rows"] == 0


def test_cash_session_lifecycle(service, smoke_admin, smoke_stores, items):
    store = smoke_stores[0]
    opened = _open_till(service, smoke_admin, store, "50.00")
    assert opened.status_code == 201
    till = opened.json()
    assert (till["status"], till["opening_amount"], till["expected_amount"]) == ("OPEN", "50.00", None)
    second = _open_till(service, smoke_admin, store)
    assert second.status_code == 409 and second.json()["code"] == "CASH_SESSION_ALREADY_OPEN"
    sale = _sale(service, smoke_admin, store, [{"stock_item_id": items[1]}]).json()
    _checkout(service, smoke_admin, sale["id"], ("CASH", "30.00"))
    listed = service.client.get(
        "/aris3/pos/cash-sessions", params={"store_id": store, "status": "OPEN"}, headers=smoke_admin
    ).json()
    assert [row["id"] for row in listed["rows"]] == [till["id"]]
    closed = service.client.post(
        f"/aris3/pos/cash-sessions/{till['id']}/close", headers=smoke_admin, json={"counted_amount": "75.00"}
    )
    assert closed.status_code == 200
    body = closed.json()
    assert (body["status"], body["expected_amount"], body["counted_amount"], body["difference"]) == (
        "CLOSED",
        "75.50",
        "75.00",
        "-0.50",
    )
    assert body["closed_at"]
    service.assert_money_strings({k: v for k, v in body.items() if k != "difference"}, MONEY_FIELDS)
    again = service.client.post(
        f"/aris3/pos/cash-sessions/{till['id']}/close", headers=smoke_admin, json={"counted_amount": "75.00"}
    )
    assert again.status_code == 409 and again.json()["code"] == "INVALID_STATE_TRANSITION"
    assert _open_till(service, smoke_admin, store).status_code == 201, "a closed till makes room for a new one"
    with service.db() as session:
        kinds = session.scalars(
            sa.select(m.CashMovement.kind)
            .where(m.CashMovement.cash_session_id == uuid.UUID(till["id"]))
            .order_by(m.CashMovement.id)
        ).all()
    assert kinds == ["OPENING", "SALE", "CLOSING_ADJUSTMENT"]


def test_closing_an_unknown_session_is_404(service, smoke_admin):
    response = service.client.post(
        f"/aris3/pos/cash-sessions/{uuid.uuid4()}/close", headers=smoke_admin, json={"counted_amount": "1.00"}
    )
    assert response.status_code == 404
