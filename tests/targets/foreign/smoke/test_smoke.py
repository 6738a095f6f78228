"""Post-deploy smoke test of the foreign target, read-only.

Two modes:

* live: ``FOREIGN_BASE_URL`` is set; real HTTP to it, logged in as ``FOREIGN_SMOKE_USER`` with
  ``FOREIGN_SMOKE_PASSWORD`` (both required then);
* in-process (no base URL): a temporary SQLite database migrated to head and seeded at a small
  scale, and the app behind FastAPI's TestClient.

The tests carry no area markers: the playbook areas (auth, stock, transfers, POS, reports,
exports) are assigned by the ``[[smoke.areas]]`` rules of ``aris3nb.toml`` from the test ids,
one class per area. ``test_service_reports_health_and_readiness`` belongs to no area on purpose.

Only the login writes (one ``activity_journal`` row per login); nothing else changes data, so
the integrity invariants hold after a smoke run.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

BASE_URL_ENV = "FOREIGN_BASE_URL"
USER_ENV = "FOREIGN_SMOKE_USER"
PASSWORD_ENV = "FOREIGN_SMOKE_PASSWORD"
IN_PROCESS_SCALE = 12
IN_PROCESS_USER, IN_PROCESS_PASSWORD = "smoke.inprocess", "in-process-smoke-password"


@contextlib.contextmanager
def _in_process(folder: Path, user: str, password: str) -> Iterator[httpx.Client]:
    from alembic import command
    from alembic.config import Config
    from fastapi.testclient import TestClient
    from foreign_retail.app import create_app
    from foreign_retail.db import ALEMBIC_INI
    from foreign_retail.seed import seed_database

    url = f"sqlite:///{folder / 'foreign.db'}"
    config = Config(str(ALEMBIC_INI), cmd_opts=argparse.Namespace(x=[f"database_url={url}"]))
    config.attributes["library_call"] = True
    command.upgrade(config, "head")
    seed_database(url, IN_PROCESS_SCALE, folder / "exports", user, password)
    with TestClient(create_app(url, folder / "exports")) as client:
        yield client


@pytest.fixture(scope="session")
def credentials() -> tuple[str, str]:
    if not os.environ.get(BASE_URL_ENV):
        return os.environ.get(USER_ENV) or IN_PROCESS_USER, os.environ.get(PASSWORD_ENV) or IN_PROCESS_PASSWORD
    user, password = os.environ.get(USER_ENV), os.environ.get(PASSWORD_ENV)
    if not user or not password:
        pytest.fail(f"{BASE_URL_ENV} is set: set {USER_ENV} and {PASSWORD_ENV} too", pytrace=False)
    return user, password


@pytest.fixture(scope="session")
def http(tmp_path_factory: pytest.TempPathFactory, credentials: tuple[str, str]) -> Iterator[httpx.Client]:
    base_url = os.environ.get(BASE_URL_ENV)
    if base_url:
        with httpx.Client(base_url=base_url, timeout=httpx.Timeout(30.0, connect=5.0)) as client:
            yield client
    else:
        with _in_process(tmp_path_factory.mktemp("foreign"), *credentials) as client:
            yield client


def _login(http: httpx.Client, name: str, password: str) -> httpx.Response:
    return http.post("/api/v2/session/token", json={"username_or_email": name, "password": password})


@pytest.fixture(scope="session")
def token(http: httpx.Client, credentials: tuple[str, str]) -> str:
    response = _login(http, *credentials)
    assert response.status_code == 200, f"login: {response.status_code} {response.text[:300]}"
    return response.json()["access_token"]


class Api:
    def __init__(self, http: httpx.Client, token: str) -> None:
        self.http, self.headers = http, {"Authorization": f"Bearer {token}"}

    def get(self, path: str, expect: int = 200, **params: Any) -> Any:
        response = self.http.get(path, params=params, headers=self.headers)
        assert response.status_code == expect, f"GET {path} {params}: {response.status_code} {response.text[:300]}"
        return response.json() if response.headers.get("content-type", "").startswith("application/json") else response


@pytest.fixture(scope="session")
def api(http: httpx.Client, token: str) -> Api:
    return Api(http, token)


def test_service_reports_health_and_readiness(http: httpx.Client) -> None:
    health = http.get("/health")
    assert health.status_code == 200 and health.json()["ok"] is True
    ready = http.get("/ready")
    assert ready.status_code == 200, ready.text
    assert ready.json()["ready"] is True and ready.json()["db_revision"]


class TestSessionTokens:
    def test_the_smoke_account_gets_a_bearer_token(self, http, credentials):
        body = _login(http, *credentials).json()
        assert body["token_type"] == "bearer" and body["access_token"] and body["expires_in"] > 0

    def test_whoami_names_the_smoke_account(self, api, credentials):
        me = api.get("/api/v2/session/whoami")
        assert credentials[0] in (me["login_name"], me["email"])

    def test_the_email_logs_in_too(self, api, http, credentials):
        email = api.get("/api/v2/session/whoami")["email"]
        assert _login(http, email, credentials[1]).status_code == 200

    def test_a_wrong_password_is_401(self, http, credentials):
        response = _login(http, credentials[0], credentials[1] + "-wrong")
        assert response.status_code == 401 and response.json()["error"]["code"] == "invalid_credentials"

    def test_the_reference_login_body_is_422_naming_the_field(self, http, credentials):
        response = http.post("/api/v2/session/token", json={"username": credentials[0], "password": credentials[1]})
        assert response.status_code == 422 and "username_or_email" in response.text

    @pytest.mark.parametrize("authorization", [None, "Bearer forged.token", "Basic c21va2U6c21va2U="])
    def test_without_a_valid_token_it_is_401(self, http, authorization):
        headers = {"Authorization": authorization} if authorization else {}
        response = http.get("/api/v2/inventory", headers=headers)
        assert response.status_code == 401 and response.headers["www-authenticate"] == "Bearer"


class TestInventoryUnits:
    def test_the_listing_totals_add_up(self, api):
        body = api.get("/api/v2/inventory", limit=20)
        assert body["page"]["total"] == sum(body["by_state"].values()) > 0
        assert 0 < len(body["data"]) <= 20

    def test_the_state_filter_keeps_one_state(self, api):
        by_state = api.get("/api/v2/inventory", limit=1)["by_state"]
        for state, count in by_state.items():
            body = api.get("/api/v2/inventory", state=state, limit=500)
            assert {u["unit_state"] for u in body["data"]} == {state}
            assert body["page"]["total"] == body["by_state"][state] == count

    def test_the_outlet_filter_keeps_one_outlet(self, api):
        outlet = api.get("/api/v2/inventory", limit=1)["data"][0]["outlet"]
        assert {u["outlet"] for u in api.get("/api/v2/inventory", outlet=outlet, limit=500)["data"]} == {outlet}
        assert api.get("/api/v2/inventory", expect=404, outlet="NO-SUCH-OUTLET")["error"]["code"] == "unknown_outlet"

    @pytest.mark.parametrize("limit", [0, 501])
    def test_a_limit_out_of_range_is_422(self, api, limit):
        api.get("/api/v2/inventory", expect=422, limit=limit)


class TestConsignments:
    def test_the_listing_and_its_phase_filter(self, api):
        body = api.get("/api/v2/consignments", limit=500)
        assert body["page"]["total"] > 0
        for phase in {c["phase"] for c in body["data"]}:
            assert {c["phase"] for c in api.get("/api/v2/consignments", phase=phase, limit=500)["data"]} == {phase}

    def test_delivered_units_sit_at_the_destination(self, api):
        delivered = api.get("/api/v2/consignments", phase="DELIVERED", limit=3)["data"]
        if not delivered:
            pytest.skip("no delivered consignment in this deployment")
        for summary in delivered:
            detail = api.get(f"/api/v2/consignments/{summary['consignment_id']}")
            assert detail["item_count"] == len(detail["items"]) > 0
            assert detail["events"][0]["event_kind"] == "OPENED"
            assert "DELIVERED" in {e["event_kind"] for e in detail["events"]}
            assert {i["unit_outlet"] for i in detail["items"]} == {detail["to_outlet"]}

    def test_an_unknown_consignment_is_404(self, api):
        api.get("/api/v2/consignments/00000000-0000-4000-8000-000000000000", expect=404)


class TestTillsAndReceipts:
    def test_settled_receipts_balance(self, api):
        settled = api.get("/api/v2/receipts", state="SETTLED", limit=5)["data"]
        assert settled, "no settled receipt"
        for summary in settled:
            receipt = api.get(f"/api/v2/receipts/{summary['receipt_id']}")
            assert sum(i["price_minor"] - i["discount_minor"] for i in receipt["items"]) == receipt["gross_minor"]
            assert sum(t["amount_minor"] - t["change_minor"] for t in receipt["tenders"]) == receipt["gross_minor"]
            assert receipt["till"] is not None

    def test_voided_receipts_have_no_tenders(self, api):
        voided = api.get("/api/v2/receipts", state="VOIDED", limit=3)["data"]
        for summary in voided:
            assert api.get(f"/api/v2/receipts/{summary['receipt_id']}")["tenders"] == []

    def test_an_unknown_state_is_422(self, api):
        api.get("/api/v2/receipts", expect=422, state="PAID")


class TestReportSummary:
    def test_the_summary_agrees_with_the_receipts(self, api):
        summary = api.get("/api/v2/reports/summary")
        settled_total = api.get("/api/v2/receipts", state="SETTLED", limit=1)["page"]["total"]
        assert summary["receipts"]["settled"] == settled_total
        assert sum(o["gross_minor"] for o in summary["by_outlet"]) == summary["gross_minor"]
        assert sum(summary["tenders_minor"].values()) == summary["gross_minor"]

    def test_a_date_range_narrows_it(self, api):
        whole = api.get("/api/v2/reports/summary")
        day = api.get("/api/v2/reports/summary", date_from="1999-01-01", date_to="1999-01-01")
        assert day["receipts"]["settled"] == 0 and day["gross_minor"] == 0
        assert day["inventory"] == whole["inventory"]

    @pytest.mark.parametrize(
        ("date_from", "date_to", "code"),
        [("2024-01-01", "2025-06-30", "range_too_long"), ("2025-02-01", "2025-01-01", "bad_range")],
    )
    def test_a_bad_range_is_422(self, api, date_from, date_to, code):
        body = api.get("/api/v2/reports/summary", expect=422, date_from=date_from, date_to=date_to)
        assert body["error"]["code"] == code


class TestExportFiles:
    def test_done_exports_carry_their_digest(self, api):
        done = [e for e in api.get("/api/v2/exports", limit=500)["data"] if e["export_state"] == "DONE"]
        assert done, "no finished export"
        for export in done:
            assert len(export["sha256"]) == 64 and export["byte_size"] > 0 and export["download"]

    def test_a_download_matches_its_recorded_sha256(self, api):
        export = next(e for e in api.get("/api/v2/exports", limit=500)["data"] if e["export_state"] == "DONE")
        response = api.get(export["download"])
        assert hashlib.sha256(response.content).hexdigest() == export["sha256"] == response.headers["x-content-sha256"]
        assert len(response.content) == export["byte_size"]

    def test_an_unknown_export_is_404(self, api):
        api.get("/api/v2/exports/00000000-0000-4000-8000-000000000000/file", expect=404)
