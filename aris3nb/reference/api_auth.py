"""Logging in (a bearer token for a username and password), who the caller is, and the
stores of the caller's tenant."""

from __future__ import annotations

import functools
from typing import Any

import sqlalchemy as sa
from argon2 import PasswordHasher
from fastapi import APIRouter, Request

from aris3nb.contract import models as m
from aris3nb.reference.audit import record_audit
from aris3nb.reference.dependencies import AnyCaller, DbSession, State
from aris3nb.reference.envelope import ApiError, trace_id_of, unauthorized
from aris3nb.reference.schemas import LoginBody
from aris3nb.reference.security import hash_password, issue_token, needs_rehash, verify_password
from aris3nb.reference.views import store_view, timestamp, user_view

router = APIRouter(prefix="/aris3", tags=["auth"])


def _bad_credentials() -> ApiError:
    # One answer whatever was wrong (unknown user, wrong password, disabled account).
    return unauthorized("INVALID_CREDENTIALS", "wrong username or password")


@functools.cache
def _decoy_hash(hasher: PasswordHasher) -> str:
    """A hash to verify against when the username is unknown, so that an unknown user
    takes as long to refuse as a wrong password (no username probing by timing)."""
    return hash_password("decoy password that matches nothing", hasher)


@router.post("/auth/login")
def login(body: LoginBody, request: Request, session: DbSession, state: State) -> dict[str, Any]:
    user = session.scalar(sa.select(m.User).where(m.User.username == body.username))
    tenant = session.get(m.Tenant, user.tenant_id) if user is not None else None
    # Password hashing is slow on purpose: do it outside any transaction (on SQLite this
    # request's transaction holds the write lock, which every other writer would wait for).
    session.expunge_all()
    session.rollback()
    if user is None or tenant is None:
        verify_password(_decoy_hash(state.hasher), body.password)
        raise _bad_credentials()
    if not verify_password(user.password_hash, body.password) or not user.is_active:
        raise _bad_credentials()
    if needs_rehash(user.password_hash, state.hasher):
        # Seeded accounts carry light hashing parameters; upgrade on first real use (unless
        # the password changed meanwhile).
        upgraded = hash_password(body.password, state.hasher)
        session.execute(
            sa.update(m.User)
            .where(m.User.id == user.id, m.User.password_hash == user.password_hash)
            .values(password_hash=upgraded)
        )
    token, expires_at = issue_token(
        state.token_secret, user_id=user.id, tenant_id=user.tenant_id, role=user.role, ttl_sec=state.token_ttl_sec
    )
    record_audit(
        session,
        tenant_id=user.tenant_id,
        actor_id=user.id,
        trace_id=trace_id_of(request),
        action="auth.login",
        entity_type="user",
        entity_id=user.id,
    )
    session.commit()
    return {
        "access_token": token,
        "token_type": "bearer",
        "expires_at": timestamp(expires_at),
        "user": user_view(user, tenant),
    }


@router.get("/me")
def me(caller: AnyCaller, session: DbSession) -> dict[str, Any]:
    user = session.get_one(m.User, caller.user_id)
    return user_view(user, session.get_one(m.Tenant, user.tenant_id))


@router.get("/stores")
def stores(caller: AnyCaller, session: DbSession) -> dict[str, Any]:
    rows = session.scalars(sa.select(m.Store).where(m.Store.tenant_id == caller.tenant_id).order_by(m.Store.code))
    return {"rows": [store_view(store) for store in rows]}
