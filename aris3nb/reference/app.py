"""The reference ARIS3 service as a FastAPI application: ``create_app`` wires the engine,
the token secret, the exports folder, the error envelope and the routers together.

It keeps ARIS3's HTTP contract so that the playbook can run against it on a fresh machine;
the contract's rules live in the ``api_*`` modules, one per area.
"""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import AsyncIterator

from fastapi import FastAPI

from aris3nb.core.errors import InvalidSettings
from aris3nb.core.settings import Settings
from aris3nb.migrate import head_revision
from aris3nb.reference import (
    api_auth,
    api_cash_sessions,
    api_exports,
    api_health,
    api_reports,
    api_sales,
    api_stock,
    api_transfers,
)
from aris3nb.reference.database import ReadinessProbe, SessionFactories, create_service_engine
from aris3nb.reference.dependencies import ServiceState
from aris3nb.reference.envelope import install_error_handlers
from aris3nb.reference.middleware import BodySizeLimitMiddleware, TraceIdMiddleware
from aris3nb.reference.security import LIGHT_HASHER, STANDARD_HASHER

#: Request bodies larger than this are refused (413) before they are parsed.
MAX_BODY_BYTES = 1 << 20
#: RFC 7518 section 3.2: an HS256 key must be at least as long as the hash.
MIN_SECRET_BYTES = 32

ROUTERS = (api_health, api_auth, api_stock, api_transfers, api_sales, api_cash_sessions, api_reports, api_exports)


def create_app(database_url: str, settings: Settings, *, throwaway: bool = False) -> FastAPI:
    """The service on ``database_url``; its engines are disposed of when the app shuts down.

    Tokens are signed with ``settings.service.secret_key``, or with a random secret of this app
    instance when none is set (tokens then die with the process). ``throwaway``: the database
    is deleted with the run that made it (the embedded target); logins then keep the seed's
    light password hashes instead of checking and upgrading them at full cost.
    """
    secret = (
        settings.service.secret_key.get_secret_value()
        if settings.service.secret_key
        else secrets.token_urlsafe(MIN_SECRET_BYTES)
    )
    if len(secret.encode()) < MIN_SECRET_BYTES:
        raise InvalidSettings(f"ARIS3_SECRET_KEY must be at least {MIN_SECRET_BYTES} bytes long to sign tokens safely")
    engine = create_service_engine(database_url)
    probe = ReadinessProbe(database_url, head_revision())
    state = ServiceState(
        sessions=SessionFactories.for_engine(engine),
        probe=probe,
        token_secret=secret,
        token_ttl_sec=settings.service.token_ttl_sec,
        exports_dir=settings.resolved_exports_dir(),
        hasher=LIGHT_HASHER if throwaway else STANDARD_HASHER,
    )

    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        try:
            yield
        finally:
            probe.dispose()
            engine.dispose()

    app = FastAPI(title="ARIS3 reference service", version="1.0", lifespan=lifespan)
    app.state.service = state
    install_error_handlers(app)
    app.add_middleware(BodySizeLimitMiddleware, max_bytes=MAX_BODY_BYTES)
    app.add_middleware(TraceIdMiddleware)  # added last: outermost, so every response gets its trace id
    for module in ROUTERS:
        app.include_router(module.router)
    return app
