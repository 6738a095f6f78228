"""``/health`` (the process answers; no database) and ``/ready`` (the database answers and
is migrated to the code's head revision)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from aris3nb.reference.dependencies import State
from aris3nb.reference.envelope import error_response, trace_id_of

router = APIRouter(tags=["health"])


@router.get("/health")
async def health() -> dict[str, Any]:
    # async on purpose: answered on the event loop, never queued behind busy worker threads.
    return {"status": "ok"}


@router.get("/ready")
def ready(request: Request, state: State) -> Any:
    result = state.probe.check()
    if result.code is None:
        return {"status": "ready", "revision": result.current_revision}
    details = None
    if result.code == "SCHEMA_NOT_AT_HEAD":
        details = {"current_revision": result.current_revision, "expected_revision": result.expected_revision}
    return error_response(trace_id_of(request), 503, result.code, result.message, details)
