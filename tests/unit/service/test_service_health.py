"""/health, /ready, trace ids and the envelope of framework errors (unknown route, 405)."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from aris3nb import migrate
from aris3nb.core.errors import InvalidSettings
from aris3nb.core.settings import load_settings
from aris3nb.reference.app import create_app


def test_health_answers_ok_with_a_trace_id(service):
    response = service.client.get("/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
    assert len(response.headers["x-trace-id"]) == 32


def test_a_safe_trace_id_is_echoed_and_an_unsafe_one_replaced(service):
    assert (
        service.client.get("/health", headers={"X-Trace-Id": "deploy-42.a_b"}).headers["x-trace-id"] == "deploy-42.a_b"
    )
    for unsafe in ("has space", "x" * 65, "semi;colon", "<script>"):
        echoed = service.client.get("/health", headers={"X-Trace-Id": unsafe}).headers["x-trace-id"]
        assert echoed != unsafe and len(echoed) == 32


def test_the_trace_id_of_an_error_is_in_its_envelope(service):
    response = service.client.get("/aris3/me", headers={"X-Trace-Id": "trace-me-1"})
    assert response.status_code == 401
    assert response.json()["trace_id"] == "trace-me-1"


def test_ready_reports_the_head_revision(service):
    response = service.client.get("/ready")
    assert response.status_code == 200
    assert response.json() == {"status": "ready", "revision": migrate.head_revision()}


def test_ready_is_503_schema_not_at_head_after_a_downgrade(service):
    migrate.downgrade(service.url, "0004_exports_idempotency")
    response = service.client.get("/ready")
    assert response.status_code == 503
    body = response.json()
    assert body["code"] == "SCHEMA_NOT_AT_HEAD"
    assert body["details"] == {
        "current_revision": "0004_exports_idempotency",
        "expected_revision": migrate.head_revision(),
    }
    assert service.client.get("/health").status_code == 200


def _client_on(path: Path, tmp_path: Path) -> TestClient:
    return TestClient(create_app(f"sqlite:///{path}", load_settings(target={"exports_dir": tmp_path / "exports"})))


def test_ready_is_503_db_unavailable_when_the_file_is_not_a_database(tmp_path):
    garbage = tmp_path / "garbage.db"
    garbage.write_bytes(b"this is not an SQLite database file, just bytes" * 100)
    with _client_on(garbage, tmp_path) as client:
        response = client.get("/ready")
        assert response.status_code == 503
        assert response.json()["code"] == "DB_UNAVAILABLE"
        # Requests that need the database get the envelope too, never a 500.
        login = client.post("/aris3/auth/login", json={"username": "a", "password": "b"})
        assert login.status_code == 503 and login.json()["code"] == "DB_UNAVAILABLE"
        assert b"Traceback" not in login.content


def test_a_missing_database_file_is_unavailable_and_never_created(tmp_path):
    missing = tmp_path / "missing.db"
    with _client_on(missing, tmp_path) as client:
        assert client.get("/health").json() == {"status": "ok"}
        response = client.get("/ready")
        assert response.status_code == 503 and response.json()["code"] == "DB_UNAVAILABLE"
        assert client.post("/aris3/auth/login", json={"username": "a", "password": "b"}).status_code == 503
    assert not missing.exists()


def test_an_empty_database_is_not_at_head(tmp_path):
    empty = tmp_path / "empty.db"
    migrate.upgrade(f"sqlite:///{empty}", "base")
    with _client_on(empty, tmp_path) as client:
        response = client.get("/ready")
    assert response.status_code == 503
    assert response.json()["code"] == "SCHEMA_NOT_AT_HEAD"
    assert response.json()["details"]["current_revision"] is None


def test_unknown_route_is_a_404_envelope(service):
    response = service.client.get("/aris3/nothing-here")
    assert response.status_code == 404
    assert response.json()["code"] == "NOT_FOUND"


def test_wrong_method_is_a_405_envelope_with_allow(service):
    response = service.client.delete("/health")
    assert response.status_code == 405
    assert response.json()["code"] == "METHOD_NOT_ALLOWED"
    assert "GET" in response.headers["allow"]


def test_a_short_token_secret_is_refused(tmp_path):
    with pytest.raises(InvalidSettings, match="at least 32 bytes"):
        create_app(f"sqlite:///{tmp_path / 'a.db'}", load_settings(service={"secret_key": SecretStr("too-short")}))
