"""Bad input of every kind gets the error envelope with a fitting 4xx: never a 500, never a
traceback (the ``service`` fixture's response hook checks both on every response)."""

from __future__ import annotations

import re
import uuid

import pytest


def test_malformed_json_is_a_422_envelope(service, smoke_admin):
    response = service.client.post(
        "/aris3/stock", headers={**smoke_admin, "Content-Type": "application/json"}, content=b'{"store_id": '
    )
    assert response.status_code == 422
    body = response.json()
    assert body["code"] == "VALIDATION_ERROR"
    assert body["details"][0]["type"] == "json_invalid"


@pytest.mark.parametrize("content", [b"", b"null", b"[]", b'"text"', b"42", b"{}", b'{"store_id": null}'])
def test_a_body_of_the_wrong_shape_is_422(service, smoke_admin, content):
    response = service.client.post(
        "/aris3/transfers", headers={**smoke_admin, "Content-Type": "application/json"}, content=content
    )
    assert response.status_code == 422
    assert response.json()["code"] == "VALIDATION_ERROR"


@pytest.mark.parametrize("content", [b"[" * 200_000 + b"]" * 200_000, b'{"n": ' + b"9" * 5000 + b"}"])
def test_json_the_parser_cannot_take_is_refused_cleanly(service, smoke_admin, content):
    response = service.client.post(
        "/aris3/transfers", headers={**smoke_admin, "Content-Type": "application/json"}, content=content
    )
    assert 400 <= response.status_code < 500


def test_a_non_json_content_type_is_refused(service, smoke_admin):
    response = service.client.post(
        "/aris3/auth/login", headers={"Content-Type": "text/plain"}, content=b'{"username": "a", "password": "b"}'
    )
    assert 400 <= response.status_code < 500


def test_an_oversized_body_is_413(service, smoke_admin):
    oversized = b'{"pad": "' + b"x" * (2 << 20) + b'"}'
    declared = service.client.post(
        "/aris3/stock", headers={**smoke_admin, "Content-Type": "application/json"}, content=oversized
    )
    streamed = service.client.post(
        "/aris3/stock",
        headers={**smoke_admin, "Content-Type": "application/json"},
        content=iter([oversized[i : i + 65536] for i in range(0, len(oversized), 65536)]),
    )
    assert "content-length" not in streamed.request.headers
    for response in (declared, streamed):
        assert response.status_code == 413
        assert response.json()["code"] == "PAYLOAD_TOO_LARGE"


@pytest.mark.parametrize(
    "path",
    [
        "/aris3/transfers/not-a-uuid",
        "/aris3/pos/sales/123",
        "/aris3/exports/%00",
        "/aris3/exports/" + "f" * 500 + "/download",
    ],
)
def test_bad_ids_in_paths_are_422(service, smoke_admin, path):
    response = service.client.get(path, headers=smoke_admin)
    assert response.status_code == 422
    assert response.json()["code"] == "VALIDATION_ERROR"


def test_unknown_fields_are_refused(service, smoke_admin):
    response = service.client.post(
        "/aris3/pos/cash-sessions",
        headers=smoke_admin,
        json={"store_id": str(uuid.uuid4()), "opening_amount": "1.00", "drawer": 2},
    )
    assert response.status_code == 422
    assert response.json()["details"][0]["loc"] == ["body", "drawer"]


def test_a_huge_page_size_is_422(service, smoke_admin):
    for path in ("/aris3/stock", "/aris3/transfers", "/aris3/pos/sales", "/aris3/pos/cash-sessions", "/aris3/exports"):
        response = service.client.get(path, params={"page_size": 10_000}, headers=smoke_admin)
        assert response.status_code == 422, path


_GARBAGE_BODIES = [
    None,
    {},
    [],
    "x",
    0,
    {"store_id": "x"},
    {"action": None},
    {"items": [{}] * 3},
    {"stock_item_ids": [2**64]},
    {"lines": [{"stock_item_id": -1}]},
    {"kind": "STOCK", "store_id": 5},
]
_PATH_VALUES = ["not-an-id", str(uuid.uuid4()), "0", "-1", str(2**64), "%20"]


def _routes(app):
    for path, operations in app.openapi()["paths"].items():
        for method in operations:
            yield method.upper(), path


def test_no_route_answers_500_to_garbage(service, smoke_admin):
    """Every route, every method, with garbage ids and bodies, authenticated or not."""
    calls = 0
    for method, template in _routes(service.client.app):
        for value in _PATH_VALUES:
            path = re.sub(r"\{[^}]+\}", value, template)
            for headers in ({}, {**smoke_admin, "Idempotency-Key": f"garbage-{calls}"}):
                for body in _GARBAGE_BODIES if method == "POST" else [None]:
                    response = service.client.request(method, path, headers=headers, json=body)
                    assert response.status_code < 500 or (template == "/ready" and response.status_code == 503)
                    calls += 1
    assert calls > 300


def test_an_unexpected_error_is_a_bare_500_envelope_and_is_logged(service, caplog):
    app = service.client.app

    def explode() -> None:
        raise RuntimeError("secret internals: /srv/db password=hunter2")

    def bad_sql() -> None:
        with service.db() as session:  # a programming error in SQL is a bug, not an outage
            session.execute(__import__("sqlalchemy").text("SELEC nonsense"))

    app.add_api_route("/explode", explode)
    app.add_api_route("/bad-sql", bad_sql)
    service.client.event_hooks["response"] = []  # these two 500s are the point of the test
    for path in ("/explode", "/bad-sql"):
        response = service.client.get(path, headers={"X-Trace-Id": "boom-1"})
        assert response.status_code == 500
        assert response.json() == {
            "code": "INTERNAL_ERROR",
            "message": response.json()["message"],
            "details": None,
            "trace_id": "boom-1",
        }
        assert "hunter2" not in response.text and "Traceback" not in response.text and "SELEC" not in response.text
        assert response.headers["x-trace-id"] == "boom-1"
    assert "boom-1" in caplog.text and "hunter2" in caplog.text, "the details go to the server log"
