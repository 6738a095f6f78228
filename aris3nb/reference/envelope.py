"""The error envelope: every error the service answers is built here.

Every error body is ``{"code", "message", "details", "trace_id"}``. Errors raised by the
framework (unknown route, wrong method, invalid request), by the database driver and by the
code itself (``ApiError``) are translated by the handlers installed here; whatever slips
through becomes a bare INTERNAL_ERROR in ``middleware.TraceIdMiddleware``, its details kept
for the server log, never put in the body.

The codes the service answers with:

    400 BAD_REQUEST (unparseable body), IDEMPOTENCY_KEY_REQUIRED, IDEMPOTENCY_KEY_INVALID
    401 UNAUTHORIZED, TOKEN_EXPIRED, INVALID_CREDENTIALS        (with WWW-Authenticate: Bearer)
    403 FORBIDDEN                                                (role, or another store)
    404 NOT_FOUND                                                (also another tenant's ids)
    405 METHOD_NOT_ALLOWED
    409 INVALID_STATE_TRANSITION, STOCK_NOT_AVAILABLE, NOT_IN_TRANSIT, EPC_CONFLICT,
        CASH_SESSION_REQUIRED, CASH_SESSION_ALREADY_OPEN, IDEMPOTENCY_KEY_REUSED,
        EXPORT_FILE_CORRUPT, EXPORT_PATH_UNSAFE, CONFLICT (an unforeseen constraint)
    410 FILE_MISSING
    413 PAYLOAD_TOO_LARGE
    422 VALIDATION_ERROR, PAYMENT_INSUFFICIENT, OVERPAYMENT_NOT_ALLOWED, DISCOUNT_EXCEEDS_PRICE
    500 INTERNAL_ERROR
    503 DB_UNAVAILABLE, SCHEMA_NOT_AT_HEAD (``/ready``), EXPORT_STORAGE_UNAVAILABLE
"""

from __future__ import annotations

import logging
import sqlite3
import uuid
from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

log = logging.getLogger("aris3nb.reference")

TRACE_HEADER = "X-Trace-Id"

_HTTP_CODES = {
    400: "BAD_REQUEST",
    401: "UNAUTHORIZED",
    403: "FORBIDDEN",
    404: "NOT_FOUND",
    405: "METHOD_NOT_ALLOWED",
    406: "NOT_ACCEPTABLE",
    413: "PAYLOAD_TOO_LARGE",
    415: "UNSUPPORTED_MEDIA_TYPE",
    422: "VALIDATION_ERROR",
}


class ApiError(Exception):
    """An expected failure of a request, answered with the envelope and ``status``."""

    def __init__(
        self, status: int, code: str, message: str, details: Any = None, headers: Mapping[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.details = details
        self.headers = dict(headers or {})


def not_found(what: str) -> ApiError:
    return ApiError(404, "NOT_FOUND", f"{what} not found")


def forbidden(message: str) -> ApiError:
    return ApiError(403, "FORBIDDEN", message)


def invalid_transition(entity: str, status: str, action: str) -> ApiError:
    return ApiError(
        409,
        "INVALID_STATE_TRANSITION",
        f"cannot {action} a {entity} that is {status}",
        {"status": status, "action": action},
    )


def unauthorized(code: str, message: str) -> ApiError:
    return ApiError(401, code, message, headers={"WWW-Authenticate": "Bearer"})


def trace_id_of(request: Request) -> str:
    trace_id = getattr(request.state, "trace_id", None)
    return trace_id if isinstance(trace_id, str) else uuid.uuid4().hex


def error_response(
    trace_id: str, status: int, code: str, message: str, details: Any = None, headers: Mapping[str, str] | None = None
) -> JSONResponse:
    body = {"code": code, "message": message, "details": details, "trace_id": trace_id}
    return JSONResponse(body, status_code=status, headers={**(headers or {}), TRACE_HEADER: trace_id})


def _validation_details(errors: list[Any]) -> list[dict[str, Any]]:
    # Only where and why: pydantic's "input" and "ctx" may echo secrets (a password) or
    # hold objects that are not JSON.
    return [
        {
            "loc": [str(part) if not isinstance(part, int) else part for part in err.get("loc", ())],
            "message": str(err.get("msg", "invalid value")),
            "type": str(err.get("type", "value_error")),
        }
        for err in errors
    ]


async def _api_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ApiError)
    return error_response(trace_id_of(request), exc.status, exc.code, exc.message, exc.details, exc.headers)


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    code = _HTTP_CODES.get(exc.status_code, "HTTP_ERROR")
    if exc.status_code == 404:
        message = f"no route {request.method} {request.url.path}"
    elif exc.status_code == 405:
        message = f"method {request.method} is not allowed on {request.url.path}"
    else:
        message = str(exc.detail)
    return error_response(trace_id_of(request), exc.status_code, code, message, None, exc.headers)


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    details = _validation_details(list(exc.errors()))
    malformed = any(d["type"] == "json_invalid" for d in details)
    message = "the request body is not valid JSON" if malformed else "the request is invalid"
    return error_response(trace_id_of(request), 422, "VALIDATION_ERROR", message, details)


def _driver_reason(exc: Exception) -> str:
    orig = getattr(exc, "orig", None) or exc
    lines = str(orig).strip().splitlines()
    return f"{type(orig).__name__}: {lines[0] if lines else ''}"


#: PostgreSQL's "undefined table / column": the schema is not the one the code expects.
_SCHEMA_MISMATCH_SQLSTATES = frozenset({"42P01", "42703"})
_SQLITE_SCHEMA_MISMATCH = ("no such table", "no such column")


def _means_unavailable(exc: Exception) -> bool:
    """Whether a driver error says the database cannot serve us, rather than that our SQL
    is wrong (a bug, answered 500). A missing table or column counts as unavailable: the
    schema is not the one the service was built for."""
    orig = getattr(exc, "orig", None)
    if getattr(orig, "sqlstate", None) in _SCHEMA_MISMATCH_SQLSTATES:
        return True
    if isinstance(exc, sa.exc.ProgrammingError):
        return False
    if getattr(orig, "sqlite_errorcode", None) == sqlite3.SQLITE_ERROR:  # SQLite's generic "SQL error"
        return str(orig).startswith(_SQLITE_SCHEMA_MISMATCH)
    # Connection lost, locked past the busy timeout, I/O error, "file is not a database".
    return isinstance(exc, (sa.exc.OperationalError, sa.exc.InterfaceError)) or type(exc) is sa.exc.DatabaseError


async def _database_error(request: Request, exc: Exception) -> JSONResponse:
    if not _means_unavailable(exc):
        raise exc  # a programming error: TraceIdMiddleware logs it and answers 500
    log.warning(
        "database unavailable in %s %s (trace_id=%s): %s",
        request.method,
        request.url.path,
        trace_id_of(request),
        _driver_reason(exc),
    )
    return error_response(trace_id_of(request), 503, "DB_UNAVAILABLE", "the database is unavailable; try again later")


async def _integrity_error(request: Request, exc: Exception) -> JSONResponse:
    # A constraint the code did not check first (or lost a race on): the request conflicts
    # with the data, it did not break the server.
    log.warning(
        "integrity error in %s %s (trace_id=%s): %s",
        request.method,
        request.url.path,
        trace_id_of(request),
        _driver_reason(exc),
    )
    return error_response(trace_id_of(request), 409, "CONFLICT", "the request conflicts with existing data")


async def _data_error(request: Request, exc: Exception) -> JSONResponse:
    log.warning(
        "data error in %s %s (trace_id=%s): %s",
        request.method,
        request.url.path,
        trace_id_of(request),
        _driver_reason(exc),
    )
    return error_response(trace_id_of(request), 422, "VALIDATION_ERROR", "a value does not fit the database")


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(ApiError, _api_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(sa.exc.IntegrityError, _integrity_error)
    app.add_exception_handler(sa.exc.DataError, _data_error)
    app.add_exception_handler(sa.exc.DatabaseError, _database_error)
