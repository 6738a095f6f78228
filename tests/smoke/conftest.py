"""The smoke suite's target and client, the same for both of its modes.

* Default: a fresh temporary SQLite database, migrated and seeded (small scale), and the
  reference service in-process (FastAPI's TestClient, an ``httpx.Client``).
* Live: when ``ARIS3_SMOKE_BASE_URL`` is set, real HTTP against that deployment, logged in
  as ``ARIS3_SMOKE_USERNAME`` (default ``smoke.admin``) with ``ARIS3_SMOKE_PASSWORD``
  (default: the settings' smoke password).

Either way the tests only touch the smoke tenant (the session refuses to start if the
account belongs to another tenant) and make everything they need themselves, with names
and idempotency keys unique to the run, so they can be repeated against the same database.

Every test carries its playbook area (``@pytest.mark.area(...)``), recorded as a JUnit
property so that reports can be read per area.
"""

from __future__ import annotations

import contextlib
import gc
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from aris3nb.reference.smoke_tenant import SMOKE_STORE_CODES, SMOKE_TENANT_SLUG, SMOKE_USERNAME

AREAS = ("auth", "stock", "transfers", "pos", "reports", "exports")
BASE_URL_ENV = "ARIS3_SMOKE_BASE_URL"
USERNAME_ENV = "ARIS3_SMOKE_USERNAME"
PASSWORD_ENV = "ARIS3_SMOKE_PASSWORD"
LIVE_TIMEOUT = httpx.Timeout(30.0, connect=5.0)
IN_PROCESS_SEED_SCALE = 200


def pytest_unconfigure(config: pytest.Config) -> None:
    """The run is over and its reports written: the process ends without the interpreter's last
    garbage collections over what the run loaded (~0.1 s of every gate's smoke check)."""
    gc.freeze()


@pytest.fixture(autouse=True)
def _record_area(request: pytest.FixtureRequest, record_property: Any) -> None:
    marker = request.node.get_closest_marker("area")
    if marker is None or not marker.args or marker.args[0] not in AREAS:
        pytest.fail(
            f"{request.node.nodeid} must be marked with @pytest.mark.area(...) naming one of {', '.join(AREAS)}"
        )
    record_property("area", marker.args[0])


class SmokeApi:
    """The ARIS3 API as the smoke tests use it, over any ``httpx.Client``."""

    def __init__(self, http: httpx.Client, username: str, password: str, run_id: str) -> None:
        self.http = http
        self.username = username
        self.password = password
        self.run_id = run_id
        self.headers: dict[str, str] = {}

    def call(self, method: str, path: str, *, expect: int, auth: bool = True, **kwargs: Any) -> httpx.Response:
        """Send a request and insist on its status; a mismatch shows the body (the envelope)."""
        headers = {**(self.headers if auth else {}), **kwargs.pop("headers", {})}
        response = self.http.request(method, path, headers=headers, **kwargs)
        assert response.status_code == expect, (
            f"{method} {path}: expected {expect}, got {response.status_code}: {response.text[:500]}"
        )
        return response

    def get(self, path: str, *, expect: int = 200, **kwargs: Any) -> Any:
        return self.call("GET", path, expect=expect, **kwargs).json()

    def post(self, path: str, body: Any, *, expect: int = 200, **kwargs: Any) -> Any:
        return self.call("POST", path, expect=expect, json=body, **kwargs).json()

    def log_in(self) -> dict[str, Any]:
        body = self.post("/aris3/auth/login", {"username": self.username, "password": self.password}, auth=False)
        self.headers = {"Authorization": f"Bearer {body['access_token']}"}
        return body

    def unique(self, label: str) -> str:
        """A name no earlier run used (EPCs, idempotency keys)."""
        return f"SMK{self.run_id}{label}{uuid.uuid4().hex[:8]}".upper()[:32]

    def intake(self, store_id: str, prices: list[str], status: str = "RFID") -> list[dict[str, Any]]:
        """New items (one per price) whose descriptions share a tag no other call uses."""
        batch = self.unique("B")
        items = [
            {
                "sku": f"SMOKE-{i}",
                "description": f"Smoke item {batch} #{i}",
                "epc": self.unique("E"),
                "cost_price": "1.00",
                "sale_price": price,
                "status": status,
            }
            for i, price in enumerate(prices)
        ]
        return self.post("/aris3/stock", {"store_id": store_id, "items": items}, expect=201)["rows"]

    def stock_of(self, rows: list[dict[str, Any]], **params: Any) -> dict[str, Any]:
        """The stock listing narrowed to the batch ``rows`` came from (see ``intake``)."""
        batch = rows[0]["description"].rsplit(" #", 1)[0]
        return self.get("/aris3/stock", params={"q": batch, "page_size": 500, **params})


@contextlib.contextmanager
def _in_process_client(folder: Path, password: str) -> Iterator[httpx.Client]:
    from fastapi.testclient import TestClient

    from aris3nb import migrate
    from aris3nb.core.settings import load_settings
    from aris3nb.reference.app import create_app
    from aris3nb.reference.seed import seed_database

    url = f"sqlite:///{folder / 'aris3.db'}"
    migrate.upgrade(url)
    seed_database(url, scale=IN_PROCESS_SEED_SCALE, exports_dir=folder / "exports", smoke_password=password)
    with TestClient(create_app(url, load_settings(target={"exports_dir": folder / "exports"}))) as client:
        yield client


def _smoke_password() -> str:
    """``ARIS3_SMOKE_PASSWORD`` as the gate gives it, else the settings' (their default): the
    settings are loaded only then (~0.2 s of every gate's smoke start)."""
    if PASSWORD_ENV in os.environ:
        return os.environ[PASSWORD_ENV]
    from aris3nb.core.settings import Settings

    return Settings().service.smoke_password.get_secret_value()


@pytest.fixture(scope="session")
def smoke_api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SmokeApi]:
    password = _smoke_password()
    username = os.environ.get(USERNAME_ENV) or SMOKE_USERNAME
    run_id = uuid.uuid4().hex[:6]
    base_url = os.environ.get(BASE_URL_ENV)
    with contextlib.ExitStack() as stack:
        if base_url:
            http = stack.enter_context(httpx.Client(base_url=base_url, timeout=LIVE_TIMEOUT))
        else:
            http = stack.enter_context(_in_process_client(tmp_path_factory.mktemp("smoke"), password))
        api = SmokeApi(http, username, password, run_id)
        tenant = api.log_in()["user"]["tenant"]["slug"]
        if tenant != SMOKE_TENANT_SLUG:
            pytest.exit(
                f"{username} belongs to tenant {tenant!r}, not {SMOKE_TENANT_SLUG!r}: the smoke suite only "
                f"writes to the smoke tenant",
                returncode=2,
            )
        yield api


@pytest.fixture(scope="session")
def smoke_stores(smoke_api: SmokeApi) -> dict[str, str]:
    """Store code -> id of the smoke tenant's two stores."""
    stores = {row["code"]: row["id"] for row in smoke_api.get("/aris3/stores")["rows"]}
    missing = [code for code in SMOKE_STORE_CODES if code not in stores]
    assert not missing, f"the smoke tenant lacks {'store' if len(missing) == 1 else 'stores'} {', '.join(missing)}"
    return {code: stores[code] for code in SMOKE_STORE_CODES}
