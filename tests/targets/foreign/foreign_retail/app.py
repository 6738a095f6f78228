"""The foreign target's HTTP service (FastAPI).

Contract (deliberately unlike the ARIS3 reference double's):

* ``GET /health`` → 200 ``{"ok": true, "service": "foreign", "version": "2.4.1"}`` (no database).
* ``GET /ready`` → 200 ``{"ready": true, "db_revision": "<alembic revision>"}`` when the database
  answers and is at this code's head; else 503 ``{"ready": false, "db_revision": ..., "reason": ...}``.
* ``POST /api/v2/session/token`` with ``{"username_or_email": ..., "password": ...}`` → 200
  ``{"access_token": ..., "token_type": "bearer", "expires_in": 3600}``; 401 on bad credentials;
  422 (FastAPI's ``{"detail": [...]}``) when a field is missing, e.g. ``username``.
* Bearer token required on everything under ``/api/v2`` except the token route:
  ``/session/whoami``, ``/inventory``, ``/consignments[/{id}]``, ``/receipts[/{id}]``,
  ``/reports/summary``, ``/exports`` and ``/exports/{id}/file``. Lists answer
  ``{"data": [...], "page": {"offset", "limit", "total"}}``; errors ``{"error": {"code", "message"}}``.

Run it with ``uvicorn foreign_retail.app:create_app --factory`` (settings from the environment:
``FOREIGN_DATABASE_URL``, ``FOREIGN_EXPORTS_DIR``, ``FOREIGN_TOKEN_SECRET``).
"""

# No `from __future__ import annotations`: FastAPI resolves the dependency aliases (Db, Me)
# defined inside create_app from the evaluated annotations.
import contextlib
import datetime as dt
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Annotated, Any, Literal

import sqlalchemy as sa
from fastapi import Depends, FastAPI, Query, Request
from fastapi.responses import FileResponse, JSONResponse
from pydantic import BaseModel
from sqlalchemy.orm import Session, aliased

from foreign_retail import SERVICE_NAME, __version__
from foreign_retail.db import create_engine, current_revision, database_url, head_revision
from foreign_retail.models import (
    Account,
    Consignment,
    ConsignmentEvent,
    ConsignmentItem,
    InventoryUnit,
    Merchant,
    Outlet,
    Receipt,
    ReceiptItem,
    ReceiptTender,
    ReportExport,
    Till,
    TillShift,
    activity_journal,
)
from foreign_retail.security import TOKEN_TTL_SEC, TokenSigner, verify_password

EXPORTS_DIR_ENV = "FOREIGN_EXPORTS_DIR"
MAX_REPORT_DAYS = 366
UnitState = Literal["ON_HAND", "RESERVED", "SHIPPING", "SOLD"]
Phase = Literal["OPEN", "SHIPPED", "DELIVERED", "VOID"]
ReceiptState = Literal["OPEN", "SETTLED", "VOIDED"]
Limit = Annotated[int, Query(ge=1, le=500)]
Offset = Annotated[int, Query(ge=0)]


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


class LoginBody(BaseModel):
    username_or_email: str
    password: str


class Caller(BaseModel):
    account_id: uuid.UUID
    merchant_id: uuid.UUID


def iso(value: dt.datetime | None) -> str | None:
    if value is None:
        return None
    value = value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)
    return value.isoformat().replace("+00:00", "Z")


def page(offset: int, limit: int, total: int) -> dict[str, int]:
    return {"offset": offset, "limit": limit, "total": total}


def create_app(
    url: str | None = None, exports_dir: Path | str | None = None, token_secret: str | None = None
) -> FastAPI:
    engine = create_engine(database_url(url))
    exports_root = exports_dir or os.environ.get(EXPORTS_DIR_ENV)
    exports_root = Path(exports_root).resolve() if exports_root else None
    signer = TokenSigner(token_secret)
    head = head_revision()

    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        yield
        engine.dispose()

    app = FastAPI(title="foreign_retail", version=__version__, lifespan=lifespan)
    app.state.engine = engine

    @app.exception_handler(ApiError)
    async def _api_error(_request: Request, exc: ApiError) -> JSONResponse:
        headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
        return JSONResponse({"error": {"code": exc.code, "message": exc.message}}, exc.status, headers=headers)

    def session() -> Iterator[Session]:
        with Session(engine) as db:
            yield db

    Db = Annotated[Session, Depends(session)]

    def caller(request: Request, db: Db) -> Caller:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token:
            raise ApiError(401, "unauthenticated", "send Authorization: Bearer <access_token>")
        claims = signer.verify(token.strip())
        if claims is None:
            raise ApiError(401, "invalid_token", "the bearer token is malformed, forged or expired")
        account = db.get(Account, uuid.UUID(claims["sub"]))
        if account is None or not account.enabled:
            raise ApiError(401, "invalid_token", "the token's account no longer exists or is disabled")
        return Caller(account_id=account.account_id, merchant_id=account.merchant_id)

    Me = Annotated[Caller, Depends(caller)]

    def outlet_codes(db: Session, me: Caller) -> dict[uuid.UUID, str]:
        rows = db.execute(sa.select(Outlet.outlet_id, Outlet.outlet_code).where(Outlet.merchant_id == me.merchant_id))
        return dict(rows.all())

    def outlet_id_of(db: Session, me: Caller, code: str | None) -> uuid.UUID | None:
        if code is None:
            return None
        found = {c: i for i, c in outlet_codes(db, me).items()}.get(code)
        if found is None:
            raise ApiError(404, "unknown_outlet", f"no outlet {code!r} in your merchant")
        return found

    @app.get("/health")
    def health() -> dict[str, Any]:
        return {"ok": True, "service": SERVICE_NAME, "version": __version__}

    @app.get("/ready")
    def ready() -> JSONResponse:
        try:
            with engine.connect() as conn:
                revision = current_revision(conn)
        except sa.exc.SQLAlchemyError as exc:
            reason = f"database unreachable: {type(exc.orig or exc).__name__}"
            return JSONResponse({"ready": False, "db_revision": None, "reason": reason}, 503)
        if revision != head:
            return JSONResponse(
                {
                    "ready": False,
                    "db_revision": revision,
                    "expected_revision": head,
                    "reason": f"database at {revision!r}, this code needs {head!r}",
                },
                503,
            )
        return JSONResponse({"ready": True, "db_revision": revision})

    @app.post("/api/v2/session/token")
    def issue_token(body: LoginBody, db: Db) -> dict[str, Any]:
        name = body.username_or_email.strip()
        account = db.scalars(
            sa.select(Account).where(sa.or_(Account.login_name == name, sa.func.lower(Account.email) == name.lower()))
        ).first()
        if account is None or not account.enabled or not verify_password(body.password, account.pw_digest):
            raise ApiError(401, "invalid_credentials", "unknown account or wrong password")
        db.execute(
            activity_journal.insert().values(
                occurred_on=dt.datetime.now(dt.UTC),
                merchant_id=account.merchant_id,
                actor_account_id=account.account_id,
                verb="session.opened",
                subject_kind="account",
                subject_ref=str(account.account_id),
                detail=None,
            )
        )
        db.commit()
        token = signer.issue({"sub": str(account.account_id), "mid": str(account.merchant_id)})
        return {"access_token": token, "token_type": "bearer", "expires_in": TOKEN_TTL_SEC}

    @app.get("/api/v2/session/whoami")
    def whoami(me: Me, db: Db) -> dict[str, Any]:
        account = db.get(Account, me.account_id)
        merchant = db.get(Merchant, me.merchant_id)
        return {
            "account_id": str(account.account_id),
            "login_name": account.login_name,
            "email": account.email,
            "access_level": account.access_level,
            "merchant": merchant.handle,
        }

    @app.get("/api/v2/inventory")
    def inventory(
        me: Me,
        db: Db,
        outlet: str | None = None,
        state: UnitState | None = None,
        article: str | None = None,
        limit: Limit = 50,
        offset: Offset = 0,
    ) -> dict[str, Any]:
        codes = outlet_codes(db, me)
        filters = [InventoryUnit.merchant_id == me.merchant_id]
        if outlet is not None:
            filters.append(InventoryUnit.outlet_id == outlet_id_of(db, me, outlet))
        if article is not None:
            filters.append(InventoryUnit.article_code == article)
        by_state = dict(
            db.execute(
                sa.select(InventoryUnit.unit_state, sa.func.count()).where(*filters).group_by(InventoryUnit.unit_state)
            ).all()
        )
        if state is not None:
            filters.append(InventoryUnit.unit_state == state)
        total = db.scalar(sa.select(sa.func.count()).select_from(InventoryUnit).where(*filters))
        units = db.scalars(
            sa.select(InventoryUnit).where(*filters).order_by(InventoryUnit.rfid_tag).limit(limit).offset(offset)
        )
        data = [
            {
                "unit_id": str(u.unit_id),
                "outlet": codes[u.outlet_id],
                "article_code": u.article_code,
                "label": u.label,
                "rfid_tag": u.rfid_tag,
                "unit_state": u.unit_state,
                "shelf": u.shelf,
                "list_price_minor": u.list_price_minor,
                "changed_on": iso(u.changed_on),
            }
            for u in units
        ]
        return {"data": data, "page": page(offset, limit, total), "by_state": by_state}

    def consignment_row(c: Consignment, codes: dict[uuid.UUID, str], item_count: int) -> dict[str, Any]:
        return {
            "consignment_id": str(c.consignment_id),
            "from_outlet": codes[c.from_outlet_id],
            "to_outlet": codes[c.to_outlet_id],
            "phase": c.phase,
            "item_count": item_count,
            "opened_on": iso(c.opened_on),
            "shipped_on": iso(c.shipped_on),
            "delivered_on": iso(c.delivered_on),
        }

    @app.get("/api/v2/consignments")
    def consignments(
        me: Me, db: Db, phase: Phase | None = None, limit: Limit = 50, offset: Offset = 0
    ) -> dict[str, Any]:
        codes = outlet_codes(db, me)
        filters = [Consignment.merchant_id == me.merchant_id]
        if phase is not None:
            filters.append(Consignment.phase == phase)
        total = db.scalar(sa.select(sa.func.count()).select_from(Consignment).where(*filters))
        counts = (
            sa.select(ConsignmentItem.consignment_id, sa.func.count().label("n"))
            .group_by(ConsignmentItem.consignment_id)
            .subquery()
        )
        rows = db.execute(
            sa.select(Consignment, sa.func.coalesce(counts.c.n, 0))
            .outerjoin(counts, counts.c.consignment_id == Consignment.consignment_id)
            .where(*filters)
            .order_by(Consignment.opened_on, Consignment.consignment_id)
            .limit(limit)
            .offset(offset)
        )
        return {"data": [consignment_row(c, codes, n) for c, n in rows], "page": page(offset, limit, total)}

    @app.get("/api/v2/consignments/{consignment_id}")
    def consignment(consignment_id: uuid.UUID, me: Me, db: Db) -> dict[str, Any]:
        c = db.get(Consignment, consignment_id)
        if c is None or c.merchant_id != me.merchant_id:
            raise ApiError(404, "not_found", f"no consignment {consignment_id}")
        codes = outlet_codes(db, me)
        items = db.execute(
            sa.select(ConsignmentItem, InventoryUnit)
            .join(InventoryUnit, InventoryUnit.unit_id == ConsignmentItem.unit_id)
            .where(ConsignmentItem.consignment_id == consignment_id)
            .order_by(InventoryUnit.rfid_tag)
        ).all()
        events = db.scalars(
            sa.select(ConsignmentEvent)
            .where(ConsignmentEvent.consignment_id == consignment_id)
            .order_by(ConsignmentEvent.happened_on)
        ).all()
        return {
            **consignment_row(c, codes, len(items)),
            "items": [
                {
                    "unit_id": str(u.unit_id),
                    "rfid_tag": u.rfid_tag,
                    "item_phase": i.item_phase,
                    "unit_state": u.unit_state,
                    "unit_outlet": codes.get(u.outlet_id),
                }
                for i, u in items
            ],
            "events": [
                {"event_kind": e.event_kind, "at_outlet": codes.get(e.at_outlet_id), "happened_on": iso(e.happened_on)}
                for e in events
            ],
        }

    def receipt_row(r: Receipt, codes: dict[uuid.UUID, str]) -> dict[str, Any]:
        return {
            "receipt_id": str(r.receipt_id),
            "receipt_no": r.receipt_no,
            "outlet": codes[r.outlet_id],
            "receipt_state": r.receipt_state,
            "gross_minor": r.gross_minor,
            "issued_on": iso(r.issued_on),
        }

    @app.get("/api/v2/receipts")
    def receipts(
        me: Me,
        db: Db,
        outlet: str | None = None,
        state: ReceiptState | None = None,
        limit: Limit = 50,
        offset: Offset = 0,
    ) -> dict[str, Any]:
        codes = outlet_codes(db, me)
        filters = [Receipt.merchant_id == me.merchant_id]
        if outlet is not None:
            filters.append(Receipt.outlet_id == outlet_id_of(db, me, outlet))
        if state is not None:
            filters.append(Receipt.receipt_state == state)
        total = db.scalar(sa.select(sa.func.count()).select_from(Receipt).where(*filters))
        rows = db.scalars(
            sa.select(Receipt)
            .where(*filters)
            .order_by(Receipt.issued_on.desc(), Receipt.receipt_no)
            .limit(limit)
            .offset(offset)
        )
        return {"data": [receipt_row(r, codes) for r in rows], "page": page(offset, limit, total)}

    @app.get("/api/v2/receipts/{receipt_id}")
    def receipt(receipt_id: uuid.UUID, me: Me, db: Db) -> dict[str, Any]:
        r = db.get(Receipt, receipt_id)
        if r is None or r.merchant_id != me.merchant_id:
            raise ApiError(404, "not_found", f"no receipt {receipt_id}")
        items = db.scalars(
            sa.select(ReceiptItem).where(ReceiptItem.receipt_id == receipt_id).order_by(ReceiptItem.line_no)
        ).all()
        tenders = db.scalars(
            sa.select(ReceiptTender).where(ReceiptTender.receipt_id == receipt_id).order_by(ReceiptTender.tender_kind)
        ).all()
        till = db.execute(
            sa.select(Till.till_label, TillShift.shift_state)
            .join(TillShift, TillShift.till_id == Till.till_id)
            .where(TillShift.shift_id == r.shift_id)
        ).first()
        return {
            **receipt_row(r, outlet_codes(db, me)),
            "settled_on": iso(r.settled_on),
            "till": {"till_label": till[0], "shift_state": till[1]} if till else None,
            "items": [
                {
                    "line_no": i.line_no,
                    "unit_id": str(i.unit_id),
                    "price_minor": i.price_minor,
                    "discount_minor": i.discount_minor,
                }
                for i in items
            ],
            "tenders": [
                {"tender_kind": t.tender_kind, "amount_minor": t.amount_minor, "change_minor": t.change_minor}
                for t in tenders
            ],
        }

    @app.get("/api/v2/reports/summary")
    def report_summary(
        me: Me, db: Db, date_from: dt.date | None = None, date_to: dt.date | None = None
    ) -> dict[str, Any]:
        if date_from and date_to:
            if date_to < date_from:
                raise ApiError(422, "bad_range", "date_to is before date_from")
            if (date_to - date_from).days + 1 > MAX_REPORT_DAYS:
                raise ApiError(422, "range_too_long", f"a summary covers at most {MAX_REPORT_DAYS} days")
        filters = [Receipt.merchant_id == me.merchant_id]
        if date_from:
            filters.append(Receipt.issued_on >= dt.datetime.combine(date_from, dt.time(), dt.UTC))
        if date_to:
            filters.append(Receipt.issued_on < dt.datetime.combine(date_to + dt.timedelta(days=1), dt.time(), dt.UTC))
        settled = [*filters, Receipt.receipt_state == "SETTLED"]
        counts = dict(
            db.execute(
                sa.select(Receipt.receipt_state, sa.func.count()).where(*filters).group_by(Receipt.receipt_state)
            ).all()
        )
        gross = db.scalar(sa.select(sa.func.coalesce(sa.func.sum(Receipt.gross_minor), 0)).where(*settled))
        tenders = dict(
            db.execute(
                sa.select(
                    ReceiptTender.tender_kind, sa.func.sum(ReceiptTender.amount_minor - ReceiptTender.change_minor)
                )
                .join(Receipt, Receipt.receipt_id == ReceiptTender.receipt_id)
                .where(*settled)
                .group_by(ReceiptTender.tender_kind)
            ).all()
        )
        o = aliased(Outlet)
        by_outlet = db.execute(
            sa.select(o.outlet_code, sa.func.count(), sa.func.sum(Receipt.gross_minor))
            .join(o, o.outlet_id == Receipt.outlet_id)
            .where(*settled)
            .group_by(o.outlet_code)
            .order_by(o.outlet_code)
        ).all()
        inventory = dict(
            db.execute(
                sa.select(InventoryUnit.unit_state, sa.func.count())
                .where(InventoryUnit.merchant_id == me.merchant_id)
                .group_by(InventoryUnit.unit_state)
            ).all()
        )
        merchant = db.get(Merchant, me.merchant_id)
        return {
            "merchant": merchant.handle,
            "currency": merchant.currency_code,
            "period": {"date_from": date_from and date_from.isoformat(), "date_to": date_to and date_to.isoformat()},
            "receipts": {
                "settled": counts.get("SETTLED", 0),
                "voided": counts.get("VOIDED", 0),
                "open": counts.get("OPEN", 0),
            },
            "gross_minor": int(gross),
            "tenders_minor": {k: int(v) for k, v in tenders.items()},
            "by_outlet": [{"outlet": code, "settled": n, "gross_minor": int(g)} for code, n, g in by_outlet],
            "inventory": inventory,
        }

    def export_row(e: ReportExport) -> dict[str, Any]:
        done = e.export_state == "DONE"
        return {
            "export_id": str(e.export_id),
            "report_kind": e.report_kind,
            "export_state": e.export_state,
            "file_name": e.file_name,
            "byte_size": e.byte_size,
            "row_total": e.row_total,
            "sha256": e.content_sha256,
            "generated_on": iso(e.generated_on),
            "download": f"/api/v2/exports/{e.export_id}/file" if done else None,
        }

    @app.get("/api/v2/exports")
    def exports(me: Me, db: Db, limit: Limit = 50, offset: Offset = 0) -> dict[str, Any]:
        filters = [ReportExport.merchant_id == me.merchant_id]
        total = db.scalar(sa.select(sa.func.count()).select_from(ReportExport).where(*filters))
        rows = db.scalars(
            sa.select(ReportExport)
            .where(*filters)
            .order_by(ReportExport.generated_on.desc(), ReportExport.export_id)
            .limit(limit)
            .offset(offset)
        )
        return {"data": [export_row(e) for e in rows], "page": page(offset, limit, total)}

    @app.get("/api/v2/exports/{export_id}/file")
    def export_file(export_id: uuid.UUID, me: Me, db: Db) -> FileResponse:
        e = db.get(ReportExport, export_id)
        if e is None or e.merchant_id != me.merchant_id:
            raise ApiError(404, "not_found", f"no export {export_id}")
        if e.export_state != "DONE" or not e.file_name:
            raise ApiError(409, "not_ready", f"export {export_id} is {e.export_state}, it has no file")
        if exports_root is None:
            raise ApiError(503, "exports_unconfigured", f"the service has no {EXPORTS_DIR_ENV}")
        path = (exports_root / e.file_name).resolve()
        if not path.is_relative_to(exports_root) or not path.is_file():
            raise ApiError(404, "file_missing", f"the file of export {export_id} is not in the exports folder")
        return FileResponse(path, media_type="text/csv", headers={"X-Content-SHA256": e.content_sha256 or ""})

    return app
