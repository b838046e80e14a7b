"""ASGI middleware: one ``audit.ai_operations_log`` row per API call, whatever its outcome.

Pure ASGI (not BaseHTTPMiddleware) so that the routing information and ``request.state``
written by the endpoint are visible here after the response.
"""

from __future__ import annotations

import ipaddress
import logging
import time
from typing import Any

import anyio.to_thread
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from facesocial.metrics import method_label
from facesocial.services.audit import MAX_USER_AGENT, UNMATCHED, AuditLog, OperationRecord
from facesocial.services.context import RequestContext

log = logging.getLogger(__name__)

# scope["state"] key: set (by the auth middleware) on requests that get no audit row.
SKIP_AUDIT = "skip_audit"


class AuditMiddleware:
    def __init__(self, app: ASGIApp, audit: AuditLog, prefix: str = "/api/") -> None:
        self.app = app
        self.audit = audit
        self.prefix = prefix

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(self.prefix):
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = {"code": 500, "bytes": 0}

        async def counting_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
            elif message["type"] == "http.response.body":
                status["bytes"] += len(message.get("body", b""))
            await send(message)

        try:
            await self.app(scope, receive, counting_send)
        finally:
            # Refused by the failed-authentication limit: no row. Without credentials, one row
            # per request would let anyone fill the database at connection rate; the metrics
            # still count these, and the failures that led to the block were audited.
            if not scope.get("state", {}).get(SKIP_AUDIT):
                await self._write(scope, status, started)

    async def _write(self, scope: Scope, status: dict[str, int], started: float) -> None:
        record = _record(scope, status, started)
        ctx = _context(scope)
        try:
            await anyio.to_thread.run_sync(self.audit.record, record, ctx)
        except Exception:  # auditing must never turn a served request into an error
            log.exception("could not write the audit record")


def _record(scope: Scope, status: dict[str, int], started: float) -> OperationRecord:
    state: dict[str, Any] = scope.get("state", {})
    path: str = scope["path"]
    parts = path.strip("/").split("/")
    service = parts[2].replace("-", "_") if len(parts) > 2 else "api"
    route = scope.get("route")
    # A request refused before routing (401, 413, 429) has no route yet: find the one it asked for.
    template = getattr(route, "path", None) if route is not None else _route_template(scope)
    operation = getattr(route, "name", None) or "unknown"
    outcome = state.get("outcome")
    error = state.get("error")
    failed = status["code"] >= 400
    return OperationRecord(
        service_name=service[:50],
        operation_type=operation[:50],
        # The route template, or the raw path when none matched (cut to the column: 100).
        endpoint=f"{method_label(scope['method'])} {getattr(route, 'path', path)}"[:100],
        route=f"{method_label(scope['method'])} {template}" if template else UNMATCHED,
        processing_time_ms=round((time.perf_counter() - started) * 1000),
        request_size_bytes=_content_length(scope),
        response_size_bytes=status["bytes"],
        operation_result="error" if failed else "success",
        error_code=error[0] if error else (f"HTTP_{status['code']}" if failed else None),
        error_message=error[1] if error else None,
        confidence_score=getattr(outcome, "confidence", None),
        model_version=getattr(outcome, "model_version", None),
        user_id=getattr(outcome, "user_id", None),
        status_code=status["code"],
        api_key_uuid=getattr(state.get("principal"), "api_key_id", None),
        tenant_id=getattr(state.get("principal"), "tenant_id", None),
    )


def _route_template(scope: Scope) -> str | None:
    """The path template of the application's route this request matches (fully, or by path
    only: a 405), None when it matches none (a 404 for an unknown path)."""
    routes = getattr(getattr(scope.get("app"), "router", None), "routes", None) or ()
    partial = None
    for candidate in routes:
        try:
            match, _ = candidate.matches(scope)
        except Exception:  # a route that cannot judge this scope matches nothing
            continue
        if match == Match.FULL:
            template: str | None = getattr(candidate, "path", None)
            return template
        if match == Match.PARTIAL and partial is None:
            partial = getattr(candidate, "path", None)
    return partial


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", []):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


def _context(scope: Scope) -> RequestContext:
    state: dict[str, Any] = scope.get("state", {})
    ctx = state.get("context")
    if isinstance(ctx, RequestContext):
        return ctx
    return context_from_scope(scope, api_key_id=None)


def context_from_scope(scope: Scope, api_key_id: str | None) -> RequestContext:
    headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope.get("headers", [])}
    client = scope.get("client")
    return RequestContext(
        ip_address=_ip(client[0]) if client else None,
        # Cut here, so every row made from this context (audit, recognition sessions) holds at
        # most this much of it: a 60,000-character User-Agent is the client's, not ours, to keep.
        user_agent=headers["user-agent"][:MAX_USER_AGENT] if "user-agent" in headers else None,
        api_key_id=api_key_id,
        request_source=headers.get("x-request-source", "api")[:50],
    )


def _ip(host: str) -> str | None:
    """Only real addresses reach the INET column (test clients report a host name)."""
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        return None
