"""Per-request context: the service's state, the request's database session, the caller
(who they are, from the bearer token), what their role allows, and which stores they may
touch. Every endpoint gets tenant, role and store scoping from here and nowhere else.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import sqlalchemy as sa
from argon2 import PasswordHasher
from fastapi import Depends, Query, Request
from sqlalchemy.orm import Session

from aris3nb.contract import models as m
from aris3nb.reference.database import ReadinessProbe, SessionFactories
from aris3nb.reference.envelope import forbidden, not_found, trace_id_of, unauthorized
from aris3nb.reference.security import STANDARD_HASHER, InvalidToken, decode_token
from aris3nb.reference.views import page_meta

# What each role may do (all roles may read stock; store-scoped users stay in their store).
STOCK_READERS = m.ROLES
STOCK_WRITERS = ("ADMIN", "MANAGER")
TRANSFER_WRITERS = ("ADMIN", "MANAGER")
TRANSFER_READERS = ("ADMIN", "MANAGER", "AUDITOR")
POS_USERS = ("ADMIN", "MANAGER", "CASHIER")
REPORT_READERS = ("ADMIN", "MANAGER", "AUDITOR")
EXPORT_USERS = ("ADMIN", "MANAGER", "AUDITOR")

_READ_ONLY_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
MAX_PAGE = 1_000_000
MAX_PAGE_SIZE = 500


@dataclass(frozen=True)
class ServiceState:
    """What every request of one app instance shares."""

    sessions: SessionFactories
    probe: ReadinessProbe
    token_secret: str
    token_ttl_sec: int
    exports_dir: Path
    hasher: PasswordHasher = STANDARD_HASHER  # the parameters logins check and upgrade hashes to


def service_state(request: Request) -> ServiceState:
    return request.app.state.service


async def db_session(request: Request) -> AsyncIterator[Session]:
    """The request's session; write requests begin as writers. Endpoints commit explicitly.

    Made and closed on the event loop, not in a worker thread (two thread hand-offs fewer per
    request): making one does no I/O (the endpoint's first statement, in its worker thread,
    begins the transaction), and closing one at most rolls back a transaction the endpoint
    left open, which never waits for a lock."""
    state = service_state(request)
    factory = state.sessions.reader if request.method in _READ_ONLY_METHODS else state.sessions.writer
    session = factory()
    try:
        yield session
    finally:
        session.close()


DbSession = Annotated[Session, Depends(db_session)]


async def _service_state(request: Request) -> ServiceState:
    return service_state(request)


State = Annotated[ServiceState, Depends(_service_state)]


@dataclass(frozen=True)
class Caller:
    """The authenticated user of a request, as the database says now (not the token)."""

    user_id: uuid.UUID
    tenant_id: uuid.UUID
    role: str
    store_id: uuid.UUID | None
    trace_id: str

    def require_store(self, store_id: uuid.UUID) -> None:
        """403 unless the caller may act on ``store_id`` (unscoped users may act on all)."""
        if self.store_id is not None and self.store_id != store_id:
            raise forbidden("your account is limited to its own store")

    def store_filter(self, requested: uuid.UUID | None) -> uuid.UUID | None:
        """The store a listing is limited to: the requested one (if allowed) or the caller's."""
        if requested is not None:
            self.require_store(requested)
            return requested
        return self.store_id


def _bearer_token(request: Request) -> str:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise unauthorized("UNAUTHORIZED", "a bearer token is required")
    return token.strip()


def current_caller(request: Request, session: DbSession, state: State) -> Caller:
    token = _bearer_token(request)
    try:
        claims = decode_token(state.token_secret, token)
    except InvalidToken as exc:
        if exc.reason == "token expired":
            raise unauthorized("TOKEN_EXPIRED", "the token has expired; log in again") from exc
        raise unauthorized("UNAUTHORIZED", "the token is not valid") from exc
    user = session.get(m.User, claims.user_id)
    if user is None or not user.is_active or user.tenant_id != claims.tenant_id:
        raise unauthorized("UNAUTHORIZED", "the token's account no longer exists or is disabled")
    return Caller(
        user_id=user.id, tenant_id=user.tenant_id, role=user.role, store_id=user.store_id, trace_id=trace_id_of(request)
    )


def require_roles(*roles: str) -> Any:
    """A dependency giving the caller, or 403 when their role is not one of ``roles``."""

    async def _caller_with_role(caller: Annotated[Caller, Depends(current_caller)]) -> Caller:
        if caller.role not in roles:
            raise forbidden(f"role {caller.role} may not do this")
        return caller

    return Depends(_caller_with_role)


AnyCaller = Annotated[Caller, Depends(current_caller)]


def tenant_store(session: Session, caller: Caller, store_id: uuid.UUID) -> m.Store:
    """The caller's tenant's store ``store_id`` (404 otherwise), if the caller may use it (403)."""
    store = session.scalar(sa.select(m.Store).where(m.Store.id == store_id, m.Store.tenant_id == caller.tenant_id))
    if store is None:
        raise not_found("store")
    caller.require_store(store.id)
    return store


@dataclass(frozen=True)
class Paging:
    page: int
    page_size: int

    @property
    def offset(self) -> int:
        return (self.page - 1) * self.page_size


async def paging(
    page: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 1,
    page_size: Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE)] = 50,
) -> Paging:
    return Paging(page=page, page_size=page_size)


PagingParams = Annotated[Paging, Depends(paging)]


def count_rows(session: Session, query: sa.Select[Any]) -> int:
    return session.scalar(sa.select(sa.func.count()).select_from(query.order_by(None).subquery())) or 0


def paged(
    session: Session,
    query: sa.Select[Any],
    paging: Paging,
    order_by: tuple[Any, ...],
    view: Callable[[Any], dict[str, Any]],
) -> dict[str, Any]:
    """One page of ``query``'s rows, rendered by ``view``, with the paging meta of a list."""
    total = count_rows(session, query)
    rows = session.scalars(query.order_by(*order_by).offset(paging.offset).limit(paging.page_size))
    return {"meta": page_meta(paging.page, paging.page_size, total), "rows": [view(row) for row in rows]}
