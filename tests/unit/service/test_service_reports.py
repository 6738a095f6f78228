"""GET /aris3/reports/overview: date range rules, numbers against what was sold, scoping."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from decimal import Decimal

import pytest
import sqlalchemy as sa

from aris3nb.contract import models as m
from aris3nb.reference.seed import EPOCH, WINDOW_DAYS

SEED_FROM = EPOCH.date()
SEED_TO = SEED_FROM + dt.timedelta(days=WINDOW_DAYS)  # 92 days inclusive: the whole seeded calendar


def _report(service, headers, **params):
    return service.client.get("/aris3/reports/overview", params=params, headers=headers)


@pytest.mark.parametrize(
    ("params", "fragment"),
    [
        ({"from": "2026-01-01", "to": "2026-04-03"}, "at most 92 days"),
        ({"from": "2026-05-02", "to": "2026-05-01"}, "must not be after"),
        ({"from": "2026-02-30"}, None),
        ({"to": "yesterday"}, None),
        ({"from": "0001-01-01", "to": "0001-01-02"}, "between"),
        ({"to": "9999-12-31"}, "between"),
    ],
)
def test_bad_ranges_are_422(service, smoke_admin, params, fragment):
    response = _report(service, smoke_admin, **params)
    assert response.status_code == 422
    assert response.json()["code"] == "VALIDATION_ERROR"
    if fragment:
        assert fragment in response.json()["message"]


def test_ninety_two_days_inclusive_is_allowed_and_defaults_are_the_last_30_days(service, smoke_admin):
    assert _report(service, smoke_admin, **{"from": "2026-01-01", "to": "2026-04-02"}).status_code == 200
    body = _report(service, smoke_admin).json()
    today = dt.datetime.now(dt.UTC).date()
    assert body["to"] == today.isoformat()
    assert body["from"] == (today - dt.timedelta(days=29)).isoformat()


def test_an_empty_range_reports_zeroes(service, smoke_admin):
    body = _report(service, smoke_admin, **{"from": "2026-01-01", "to": "2026-01-31"}).json()
    assert body == {
        "store_id": None,
        "from": "2026-01-01",
        "to": "2026-01-31",
        "gross_sales": "0.00",
        "net_sales": "0.00",
        "discount_total": "0.00",
        "order_count": 0,
        "average_ticket": "0.00",
        "canceled_count": 0,
        "tenders": [],
        "change_total": "0.00",
    }


def test_the_seeded_sales_add_up_as_sql_says(service):
    tenant = service.tenant("northwind")
    with service.db() as session:
        sales = session.scalars(sa.select(m.Sale).where(m.Sale.tenant_id == tenant.id)).all()
        payments = session.execute(
            sa.select(m.Payment.method, m.Payment.amount)
            .join(m.Sale, m.Sale.id == m.Payment.sale_id)
            .where(m.Sale.tenant_id == tenant.id, m.Sale.status == "PAID")
        ).all()
    paid = [s for s in sales if s.status == "PAID"]
    assert paid, "the seed should have paid sales"
    tenders: dict[str, list[Decimal]] = defaultdict(list)
    for method, amount in payments:
        tenders[method].append(amount)
    body = _report(
        service, service.auth("northwind.auditor"), **{"from": SEED_FROM.isoformat(), "to": SEED_TO.isoformat()}
    ).json()
    net = sum(s.total for s in paid)
    assert body["gross_sales"] == str(sum(s.subtotal for s in paid))
    assert body["net_sales"] == str(net)
    assert body["discount_total"] == str(sum(s.discount_total for s in paid))
    assert body["order_count"] == len(paid)
    assert body["canceled_count"] == sum(1 for s in sales if s.status == "CANCELED")
    assert body["average_ticket"] == str((net / len(paid)).quantize(Decimal("0.01")))
    assert body["tenders"] == [
        {"method": k, "amount": str(sum(v)), "count": len(v)} for k, v in sorted(tenders.items())
    ]


def test_todays_sales_are_reported_with_their_tenders(service, smoke_admin, smoke_stores):
    store_a, store_b = smoke_stores
    service.client.post(
        "/aris3/pos/cash-sessions", headers=smoke_admin, json={"store_id": store_a, "opening_amount": "20.00"}
    )
    items = [row["id"] for row in service.intake(smoke_admin, store_a, ["10.00", "20.00", "5.00", "7.00"])]
    other = service.intake(smoke_admin, store_b, ["99.00"])[0]["id"]

    def sell(store, lines, payments):
        sale = service.client.post(
            "/aris3/pos/sales", headers=smoke_admin, json={"store_id": store, "lines": lines}
        ).json()
        if payments is None:
            service.client.post(
                f"/aris3/pos/sales/{sale['id']}/actions", headers=smoke_admin, json={"action": "CANCEL"}
            )
            return
        response = service.client.post(
            f"/aris3/pos/sales/{sale['id']}/actions",
            headers=smoke_admin,
            json={"action": "CHECKOUT", "payments": payments},
        )
        assert response.status_code == 200, response.text

    sell(
        store_a,
        [{"stock_item_id": items[0], "discount": "1.00"}, {"stock_item_id": items[1]}],
        [{"method": "CASH", "amount": "30.00"}],
    )  # net 29.00, change 1.00
    sell(store_a, [{"stock_item_id": items[2]}], [{"method": "CARD", "amount": "5.00"}])
    sell(store_a, [{"stock_item_id": items[3]}], None)
    sell(store_b, [{"stock_item_id": other}], [{"method": "TRANSFER", "amount": "99.00"}])

    body = _report(service, smoke_admin, store_id=store_a).json()
    assert {
        k: body[k]
        for k in (
            "store_id",
            "gross_sales",
            "net_sales",
            "discount_total",
            "order_count",
            "average_ticket",
            "canceled_count",
            "change_total",
        )
    } == {
        "store_id": store_a,
        "gross_sales": "35.00",
        "net_sales": "34.00",
        "discount_total": "1.00",
        "order_count": 2,
        "average_ticket": "17.00",
        "canceled_count": 1,
        "change_total": "1.00",
    }
    assert body["tenders"] == [
        {"method": "CARD", "amount": "5.00", "count": 1},
        {"method": "CASH", "amount": "30.00", "count": 1},
    ]
    everything = _report(service, smoke_admin).json()
    assert (everything["net_sales"], everything["order_count"]) == ("133.00", 3)
    yesterday = (dt.datetime.now(dt.UTC).date() - dt.timedelta(days=1)).isoformat()
    assert _report(service, smoke_admin, **{"from": yesterday, "to": yesterday}).json()["order_count"] == 0


def test_reports_are_store_scoped_and_role_limited(service):
    own, other = service.stores("northwind")
    manager = service.auth(service.store_user(own, "manager"))
    window = {"from": SEED_FROM.isoformat(), "to": SEED_TO.isoformat()}
    mine = _report(service, manager, **window).json()
    assert mine["store_id"] == str(own.id)
    assert mine == _report(service, service.auth("northwind.admin"), store_id=str(own.id), **window).json()
    assert _report(service, manager, store_id=str(other.id)).status_code == 403
    assert _report(service, service.auth(service.store_user(own, "cashier"))).status_code == 403
