"""Exports: CSV files of a tenant's stock or paid sales, written under the exports folder
with their row count, size and SHA-256 recorded; created idempotently, listed, downloaded
(after verifying the file against its record).
"""

from __future__ import annotations

import logging
import uuid
from typing import Annotated, Any

import sqlalchemy as sa
from fastapi import APIRouter, Header
from fastapi.responses import JSONResponse, StreamingResponse
from sqlalchemy.orm import Session

from aris3nb.contract import models as m
from aris3nb.reference.audit import record_audit
from aris3nb.reference.dependencies import (
    EXPORT_USERS,
    Caller,
    DbSession,
    PagingParams,
    State,
    paged,
    require_roles,
    tenant_store,
)
from aris3nb.reference.envelope import ApiError, forbidden, not_found
from aris3nb.reference.export_files import export_relative_path, export_rows, write_export_file
from aris3nb.reference.export_storage import iter_file, open_verified
from aris3nb.reference.idempotency import IdempotentRequest, replay_response, request_hash, require_key
from aris3nb.reference.schemas import ExportCreateBody
from aris3nb.reference.views import export_view

router = APIRouter(prefix="/aris3/exports", tags=["exports"])

log = logging.getLogger(__name__)

ENDPOINT = "POST /aris3/exports"
Exporter = Annotated[Caller, require_roles(*EXPORT_USERS)]


@router.post("", status_code=201)
def create_export(
    body: ExportCreateBody,
    session: DbSession,
    state: State,
    caller: Exporter,
    idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key")] = None,
) -> Any:
    key = require_key(idempotency_key)
    if body.store_id is not None:
        tenant_store(session, caller, body.store_id)
    # The key is bound to what gets exported: a store-scoped user who names no store
    # exports their own store, which is not the same request as a tenant-wide one.
    wanted = body.model_copy(update={"store_id": body.store_id or caller.store_id})
    request = IdempotentRequest(caller.tenant_id, ENDPOINT, key, request_hash(wanted))
    if (earlier := request.earlier_response(session)) is not None:
        return replay_response(*earlier)
    store_id = wanted.store_id
    export_id = uuid.uuid4()
    # Writing the file can take long: end the transaction first (on SQLite it holds the
    # write lock). A concurrent request with the same key is caught at commit below.
    session.rollback()
    try:
        # The rows stream on a connection of their own: streaming options (server-side
        # cursors on PostgreSQL) must not leak into the request's transaction.
        with state.sessions.read_connection() as conn:
            header, rows = export_rows(conn, body.kind, caller.tenant_id, store_id)
            written = write_export_file(
                state.exports_dir, export_relative_path(caller.tenant_id, export_id), header, rows
            )
    except OSError as exc:
        log.error(
            "cannot write export %s under %s (trace_id=%s): %s", export_id, state.exports_dir, caller.trace_id, exc
        )
        raise ApiError(
            503, "EXPORT_STORAGE_UNAVAILABLE", "the export file could not be written; try again later"
        ) from exc
    record = m.ExportRecord(
        id=export_id,
        tenant_id=caller.tenant_id,
        store_id=store_id,
        requested_by=caller.user_id,
        kind=body.kind,
        file_format=body.format,
        status="READY",
        file_path=written.relative_path,
        row_count=written.row_count,
        size_bytes=written.size_bytes,
        sha256=written.sha256,
        filters={"store_id": str(store_id) if store_id else None},
        created_at=m.utcnow(),
    )
    session.add(record)
    response = export_view(record)
    request.remember(session, 201, response)
    record_audit(
        session,
        tenant_id=caller.tenant_id,
        actor_id=caller.user_id,
        trace_id=caller.trace_id,
        action="export.create",
        entity_type="export",
        entity_id=export_id,
        details={"kind": body.kind, "rows": written.row_count, "sha256": written.sha256},
    )
    try:
        session.commit()
    except sa.exc.IntegrityError:
        # A concurrent request with the same key committed first: answer as its replay
        # (or 409 if its body differed), and drop the file this one wrote for nothing.
        session.rollback()
        (state.exports_dir / written.relative_path).unlink(missing_ok=True)
        earlier = request.earlier_response(session)
        if earlier is None:
            raise
        return replay_response(*earlier)
    except BaseException:
        (state.exports_dir / written.relative_path).unlink(missing_ok=True)
        raise
    return JSONResponse(response, status_code=201)


def _visible_exports(caller: Caller) -> sa.Select[Any]:
    query = sa.select(m.ExportRecord).where(m.ExportRecord.tenant_id == caller.tenant_id)
    if caller.store_id is not None:
        query = query.where(m.ExportRecord.store_id == caller.store_id)
    return query


@router.get("")
def list_exports(session: DbSession, caller: Exporter, paging: PagingParams) -> dict[str, Any]:
    query = _visible_exports(caller)
    return paged(session, query, paging, (m.ExportRecord.created_at.desc(), m.ExportRecord.id), export_view)


def _load_export(session: Session, caller: Caller, export_id: uuid.UUID) -> m.ExportRecord:
    record = session.scalar(
        sa.select(m.ExportRecord).where(m.ExportRecord.id == export_id, m.ExportRecord.tenant_id == caller.tenant_id)
    )
    if record is None:
        raise not_found("export")
    if caller.store_id is not None and record.store_id != caller.store_id:
        raise forbidden("your account is limited to its own store")
    return record


@router.get("/{export_id}")
def get_export(export_id: uuid.UUID, session: DbSession, caller: Exporter) -> dict[str, Any]:
    return export_view(_load_export(session, caller, export_id))


@router.get("/{export_id}/download")
def download_export(export_id: uuid.UUID, session: DbSession, state: State, caller: Exporter) -> StreamingResponse:
    record = _load_export(session, caller, export_id)
    handle = open_verified(state.exports_dir, record)
    filename = f"{record.kind.lower()}_{record.id}.{record.file_format.lower()}"
    return StreamingResponse(
        iter_file(handle),
        media_type="text/csv; charset=utf-8",
        headers={
            "Content-Disposition": f'attachment; filename="{filename}"',
            "Content-Length": str(record.size_bytes),
            "ETag": f'"{record.sha256}"',
            "X-Content-SHA256": record.sha256,
        },
    )
