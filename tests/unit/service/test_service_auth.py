"""Login, bearer tokens (expired, forged, garbage, of a gone user), /me and /stores."""

from __future__ import annotations

import datetime as dt
import shutil
import uuid

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from aris3nb.contract import models as m
from aris3nb.core.settings import load_settings
from aris3nb.reference import security
from aris3nb.reference.app import create_app
from aris3nb.reference.security import issue_token, needs_rehash
from aris3nb.reference.smoke_tenant import SMOKE_USERNAME


def _user(service, username: str) -> m.User:
    with service.db() as session:
        return session.scalars(sa.select(m.User).where(m.User.username == username)).one()


def _token_for(user: m.User, secret: str, *, now: dt.datetime | None = None, ttl: int = 600) -> dict[str, str]:
    token, _ = issue_token(secret, user_id=user.id, tenant_id=user.tenant_id, role=user.role, ttl_sec=ttl, now=now)
    return {"Authorization": f"Bearer {token}"}


def test_login_returns_an_expiring_bearer_token_and_the_user(service):
    before = dt.datetime.now(dt.UTC)
    response = service.client.post(
        "/aris3/auth/login", json={"username": "northwind.admin", "password": service.seed_password}
    )
    assert response.status_code == 200
    body = response.json()
    assert body["token_type"] == "bearer" and body["access_token"].count(".") == 2
    expires = dt.datetime.fromisoformat(body["expires_at"].replace("Z", "+00:00"))
    ttl = service.settings.service.token_ttl_sec
    assert before + dt.timedelta(seconds=ttl - 10) < expires < before + dt.timedelta(seconds=ttl + 10)
    assert body["user"]["username"] == "northwind.admin"
    assert body["user"]["role"] == "ADMIN" and body["user"]["store_id"] is None
    assert body["user"]["tenant"]["slug"] == "northwind"
    assert "password" not in response.text and "hash" not in response.text


def test_me_describes_the_caller(service):
    store = service.stores("northwind")[0]
    username = service.store_user(store, "cashier")
    me = service.client.get("/aris3/me", headers=service.login(username)).json()
    assert me["username"] == username and me["role"] == "CASHIER"
    assert me["store_id"] == str(store.id)
    assert me["tenant"]["id"] == str(store.tenant_id)


def test_wrong_password_and_unknown_user_are_refused_alike(service):
    wrong = service.client.post("/aris3/auth/login", json={"username": "northwind.admin", "password": "nope"})
    unknown = service.client.post("/aris3/auth/login", json={"username": "nobody.at.all", "password": "nope"})
    for response in (wrong, unknown):
        assert response.status_code == 401
        assert response.json()["code"] == "INVALID_CREDENTIALS"
        assert response.headers["www-authenticate"] == "Bearer"
    assert wrong.json()["message"] == unknown.json()["message"]


def test_an_inactive_user_cannot_log_in_and_their_token_stops_working(service):
    headers = service.login("bluefin.admin")
    with service.db() as session:
        session.execute(sa.update(m.User).where(m.User.username == "bluefin.admin").values(is_active=False))
    refused = service.client.post(
        "/aris3/auth/login", json={"username": "bluefin.admin", "password": service.seed_password}
    )
    assert refused.status_code == 401 and refused.json()["code"] == "INVALID_CREDENTIALS"
    me = service.client.get("/aris3/me", headers=headers)
    assert me.status_code == 401 and me.json()["code"] == "UNAUTHORIZED"


def test_login_upgrades_a_light_seed_hash_once(service):
    assert needs_rehash(_user(service, "bluefin.auditor").password_hash)
    service.login("bluefin.auditor")
    upgraded = _user(service, "bluefin.auditor").password_hash
    assert not needs_rehash(upgraded)
    service.login("bluefin.auditor")
    assert _user(service, "bluefin.auditor").password_hash == upgraded


def test_a_throwaway_service_keeps_the_light_seed_hashes(seeded_template, tmp_path, service):
    """The embedded target's service (its database deleted with its run) checks the seed's light
    hashes and keeps them: no full-cost upgrade; a wrong password is refused all the same."""
    shutil.copytree(seeded_template, tmp_path / "throwaway")
    url = f"sqlite:///{tmp_path / 'throwaway' / 'aris3.db'}"
    settings = load_settings(target={"exports_dir": tmp_path / "throwaway" / "exports"})
    with TestClient(create_app(url, settings, throwaway=True)) as client:
        engine = sa.create_engine(url)
        query = sa.select(m.User.password_hash).where(m.User.username == "bluefin.auditor")
        with engine.connect() as connection:
            seeded = connection.scalar(query)
        assert needs_rehash(seeded) and not needs_rehash(seeded, security.LIGHT_HASHER)
        password = service.seed_password  # the unit seed's
        ok = client.post("/aris3/auth/login", json={"username": "bluefin.auditor", "password": password})
        assert ok.status_code == 200 and ok.json()["access_token"]
        wrong = client.post("/aris3/auth/login", json={"username": "bluefin.auditor", "password": password + "x"})
        unknown = client.post("/aris3/auth/login", json={"username": "nobody.here", "password": password})
        assert wrong.status_code == unknown.status_code == 401
        with engine.connect() as connection:
            assert connection.scalar(query) == seeded, "no upgrade on a throwaway database"
        engine.dispose()


def test_login_is_audited(service):
    service.login(SMOKE_USERNAME)
    user = _user(service, SMOKE_USERNAME)
    with service.db() as session:
        events = session.scalars(sa.select(m.AuditEvent).where(m.AuditEvent.actor_id == user.id)).all()
    assert [e.action for e in events] == ["auth.login"]
    assert events[0].tenant_id == user.tenant_id and events[0].trace_id


def test_an_expired_token_is_refused_as_expired(service):
    user = _user(service, "northwind.admin")
    an_hour_ago = dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)
    response = service.client.get("/aris3/me", headers=_token_for(user, service.secret, now=an_hour_ago, ttl=60))
    assert response.status_code == 401
    assert response.json()["code"] == "TOKEN_EXPIRED"
    assert response.headers["www-authenticate"] == "Bearer"


def test_a_token_accepted_once_still_expires_on_time(service, monkeypatch):
    """Verified tokens are remembered, but their expiry is checked on every request."""
    user = _user(service, "northwind.admin")
    headers = _token_for(user, service.secret, ttl=60)
    assert service.client.get("/aris3/me", headers=headers).status_code == 200
    now = security.time.time()
    monkeypatch.setattr(security.time, "time", lambda: now + 61)
    response = service.client.get("/aris3/me", headers=headers)
    assert response.status_code == 401 and response.json()["code"] == "TOKEN_EXPIRED"


def test_a_remembered_token_is_accepted_only_with_the_secret_that_signed_it():
    token, _ = issue_token("a" * 32, user_id=uuid.uuid4(), tenant_id=uuid.uuid4(), role="ADMIN", ttl_sec=60)
    assert security.decode_token("a" * 32, token).role == "ADMIN"
    with pytest.raises(security.InvalidToken, match="token invalid"):
        security.decode_token("b" * 32, token)
    with pytest.raises(security.InvalidToken, match="token invalid"):
        security.decode_token("a" * 32, token[:-2] + ("A" if token[-2] != "A" else "B") + token[-1])


def test_a_fresh_token_made_with_the_service_secret_is_accepted(service):
    user = _user(service, "northwind.admin")
    assert service.client.get("/aris3/me", headers=_token_for(user, service.secret)).status_code == 200


def test_missing_garbage_and_forged_tokens_are_unauthorized(service):
    user = _user(service, "northwind.admin")
    for headers in (
        {},
        {"Authorization": "Bearer"},
        {"Authorization": "Basic dXNlcjpwYXNz"},
        {"Authorization": "Bearer not.a.token"},
        {"Authorization": "Bearer " + "x" * 5000},
        _token_for(user, "some-other-secret-that-is-long-enough"),
    ):
        response = service.client.get("/aris3/me", headers=headers)
        assert response.status_code == 401, headers
        assert response.json()["code"] == "UNAUTHORIZED"
        assert response.headers["www-authenticate"] == "Bearer"


def test_the_token_of_a_deleted_user_is_unauthorized(service):
    user = _user(service, "northwind.auditor")
    headers = _token_for(user, service.secret)
    with service.db() as session:
        session.execute(sa.delete(m.AuditEvent).where(m.AuditEvent.actor_id == user.id))
        session.execute(sa.delete(m.User).where(m.User.id == user.id))
    response = service.client.get("/aris3/me", headers=headers)
    assert response.status_code == 401 and response.json()["code"] == "UNAUTHORIZED"


def test_a_validation_error_never_echoes_the_password(service):
    response = service.client.post("/aris3/auth/login", json={"username": "x", "password": ["s3cret-value-xyz"]})
    assert response.status_code == 422
    assert "s3cret-value-xyz" not in response.text
    extra = service.client.post("/aris3/auth/login", json={"username": "x", "password": "s3cret-value-xyz", "otp": 1})
    assert extra.status_code == 422 and "s3cret-value-xyz" not in extra.text


def test_stores_lists_only_the_callers_tenant(service):
    rows = service.client.get("/aris3/stores", headers=service.login(SMOKE_USERNAME)).json()["rows"]
    assert [row["code"] for row in rows] == ["SMOKE-A", "SMOKE-B"]
