"""Fixtures for the reference service's contract tests: a seeded SQLite database (seeded
once per session, copied per test with its export files) and the app in-process over
httpx (TestClient), plus a guard that fails any test that ever sees a 500, a traceback or
an error without the envelope.
"""

from __future__ import annotations

import contextlib
import re
import shutil
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from pydantic import SecretStr
from sqlalchemy.orm import Session

from aris3nb import migrate
from aris3nb.contract import models as m
from aris3nb.core.db import create_engine
from aris3nb.core.settings import Settings, load_settings
from aris3nb.reference.app import create_app
from aris3nb.reference.seed import SMOKE_USERNAME, seed_database

SEED_SCALE = 300
SEED_PASSWORD = "unit-seed-pass"
SMOKE_PASSWORD = "unit-smoke-pass"
SECRET = "unit-test-secret-key-0123456789abcdef"
MONEY = re.compile(r"^\d+\.\d{2}$")


def check_response(response: httpx.Response) -> None:
    """What every response of the service must honour, whatever the test is about."""
    response.read()
    assert b"Traceback" not in response.content
    assert response.status_code < 500 or response.status_code == 503, response.text
    assert response.headers.get("x-trace-id"), "every response carries X-Trace-Id"
    if response.status_code >= 400:
        body = response.json()
        assert set(body) == {"code", "message", "details", "trace_id"}, body
        assert body["trace_id"] == response.headers["x-trace-id"]
        assert body["code"].isupper() and body["message"]


@pytest.fixture(scope="session")
def seeded_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated, seeded database and its export files, made once and copied per test."""
    folder = tmp_path_factory.mktemp("seeded")
    url = f"sqlite:///{folder / 'aris3.db'}"
    migrate.upgrade(url)
    seed_database(
        url,
        scale=SEED_SCALE,
        exports_dir=folder / "exports",
        seed_password=SEED_PASSWORD,
        smoke_password=SMOKE_PASSWORD,
    )
    return folder


@dataclass
class Service:
    """The app under test, its database and the helpers tests share."""

    client: TestClient
    url: str
    exports_dir: Path
    settings: Settings
    token_cache: dict[str, dict[str, str]]
    seed_password: str = SEED_PASSWORD

    @property
    def secret(self) -> str:
        assert self.settings.service.secret_key is not None
        return self.settings.service.secret_key.get_secret_value()

    @contextlib.contextmanager
    def db(self) -> Iterator[Session]:
        """A direct ORM session on the service's database (committed on success)."""
        engine = create_engine(self.url)
        try:
            with Session(engine, expire_on_commit=False) as session:
                yield session
                session.commit()
        finally:
            engine.dispose()

    def auth(self, username: str) -> dict[str, str]:
        """Bearer headers for ``username``, logged in once per test session.

        Every test's database is a copy of one seeded template and every app shares one
        secret, so a token from the real login stays valid across tests; this spares each
        test the deliberately slow password hashing of a first login.
        """
        if username not in self.token_cache:
            self.token_cache[username] = self.login(username)
        return self.token_cache[username]

    def login(self, username: str, password: str | None = None) -> dict[str, str]:
        """Bearer headers from a real login now."""
        if password is None:
            password = SMOKE_PASSWORD if username == SMOKE_USERNAME else SEED_PASSWORD
        response = self.client.post("/aris3/auth/login", json={"username": username, "password": password})
        assert response.status_code == 200, response.text
        return {"Authorization": f"Bearer {response.json()['access_token']}"}

    def tenant(self, slug: str) -> m.Tenant:
        with self.db() as session:
            return session.scalars(sa.select(m.Tenant).where(m.Tenant.slug == slug)).one()

    def stores(self, slug: str) -> list[m.Store]:
        """The tenant's stores ordered by code."""
        with self.db() as session:
            return list(
                session.scalars(
                    sa.select(m.Store)
                    .join(m.Tenant, m.Tenant.id == m.Store.tenant_id)
                    .where(m.Tenant.slug == slug)
                    .order_by(m.Store.code)
                )
            )

    def store_user(self, store: m.Store, role: str) -> str:
        """The seeded username of ``role`` (manager, cashier) in ``store``."""
        with self.db() as session:
            slug = session.get_one(m.Tenant, store.tenant_id).slug
        return f"{slug}.{store.code.lower()}.{role}"

    def intake(
        self, headers: dict[str, str], store_id: uuid.UUID | str, prices: list[str], status: str = "RFID"
    ) -> list[dict[str, Any]]:
        """New stock through the API, one item per sale price; returns the created rows."""
        items = [
            {
                "sku": f"T-{i:03d}",
                "description": f"Test item {i}",
                "epc": uuid.uuid4().hex,
                "cost_price": "1.00",
                "sale_price": price,
                "status": status,
            }
            for i, price in enumerate(prices)
        ]
        response = self.client.post("/aris3/stock", headers=headers, json={"store_id": str(store_id), "items": items})
        assert response.status_code == 201, response.text
        return response.json()["rows"]

    def stock(self, item_id: int) -> m.StockItem:
        with self.db() as session:
            return session.get_one(m.StockItem, item_id)

    @staticmethod
    def assert_money_strings(value: Any, fields: tuple[str, ...]) -> None:
        """Every ``fields`` key anywhere in ``value`` holds a two-decimal string."""
        if isinstance(value, dict):
            for key, item in value.items():
                if key in fields and item is not None:
                    assert isinstance(item, str) and MONEY.match(item), f"{key}={item!r}"
                Service.assert_money_strings(item, fields)
        elif isinstance(value, list):
            for item in value:
                Service.assert_money_strings(item, fields)


@pytest.fixture(scope="session")
def token_cache() -> dict[str, dict[str, str]]:
    return {}


@pytest.fixture
def service(seeded_template: Path, tmp_path: Path, token_cache: dict[str, dict[str, str]]) -> Iterator[Service]:
    shutil.copytree(seeded_template, tmp_path / "db")
    url = f"sqlite:///{tmp_path / 'db' / 'aris3.db'}"
    settings = load_settings(
        service={"secret_key": SecretStr(SECRET), "token_ttl_sec": 3600},
        target={"exports_dir": tmp_path / "db" / "exports"},
    )
    with TestClient(create_app(url, settings)) as client:
        client.event_hooks["response"].append(check_response)
        yield Service(
            client=client,
            url=url,
            exports_dir=settings.resolved_exports_dir(),
            settings=settings,
            token_cache=token_cache,
        )


@pytest.fixture
def smoke_admin(service: Service) -> dict[str, str]:
    """Headers of the smoke tenant's admin: a tenant with two stores, no stock, no cash session."""
    return service.auth(SMOKE_USERNAME)


@pytest.fixture
def smoke_stores(service: Service) -> tuple[str, str]:
    store_a, store_b = service.stores("smoke")
    return str(store_a.id), str(store_b.id)
