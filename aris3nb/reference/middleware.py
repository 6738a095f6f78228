"""The service's two ASGI middlewares, outermost first:

* ``TraceIdMiddleware`` gives each request its trace id (the caller's ``X-Trace-Id`` when it
  is a safe token, else a fresh one), echoes it on every response, and is the last line
  against a leak: an exception nothing else handled is logged with its trace id and
  answered with a bare INTERNAL_ERROR envelope.
* ``BodySizeLimitMiddleware`` refuses oversized request bodies with a 413 envelope.
"""

from __future__ import annotations

import re
import uuid

from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from aris3nb.reference.envelope import error_response, log

_SAFE_TRACE_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")


def _trace_id_for(scope: Scope) -> str:
    for name, value in scope.get("headers", ()):
        if name == b"x-trace-id":
            text = value.decode("latin-1")
            if _SAFE_TRACE_ID.fullmatch(text):
                return text
            break
    return uuid.uuid4().hex


class TraceIdMiddleware:
    """Gives each request its trace id, echoes it, and is the last line against a 500 leak.

    It sits inside Starlette's own error middleware, so an exception nothing else handled
    is logged here with its trace id and answered with a bare INTERNAL_ERROR envelope.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        trace_id = _trace_id_for(scope)
        scope.setdefault("state", {})["trace_id"] = trace_id
        started = False

        async def send_with_trace_id(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                headers = [(k, v) for k, v in message.get("headers", []) if k.lower() != b"x-trace-id"]
                headers.append((b"x-trace-id", trace_id.encode()))
                message = {**message, "headers": headers}
            await send(message)

        try:
            await self.app(scope, receive, send_with_trace_id)
        except Exception:
            log.exception("unhandled error in %s %s (trace_id=%s)", scope.get("method"), scope.get("path"), trace_id)
            if started:
                raise
            response = error_response(
                trace_id, 500, "INTERNAL_ERROR", "internal error; quote the trace id when reporting it"
            )
            await response(scope, receive, send)


class BodySizeLimitMiddleware:
    """Refuses request bodies over ``max_bytes`` with a 413 envelope, declared or streamed."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        too_large = f"the request body is larger than {self.max_bytes} bytes"
        declared = dict(scope.get("headers", ())).get(b"content-length", b"")
        if declared.isdigit() and int(declared) > self.max_bytes:
            trace_id = scope.get("state", {}).get("trace_id") or uuid.uuid4().hex
            await error_response(trace_id, 413, "PAYLOAD_TOO_LARGE", too_large)(scope, receive, send)
            return
        received = 0

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > self.max_bytes:
                # Raised while the endpoint reads its body, so the handlers answer it.
                raise StarletteHTTPException(413, too_large)
            return message

        await self.app(scope, counting_receive, send)
