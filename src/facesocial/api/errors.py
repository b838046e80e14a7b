"""Render every error as ``{"success": false, "error": {"code", "message"}}``."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from facesocial import errors

log = logging.getLogger(__name__)

_HTTP_CODES = {
    400: "BAD_REQUEST",
    401: "UNAUTHORIZED",
    403: "FORBIDDEN",
    404: "NOT_FOUND",
    405: "METHOD_NOT_ALLOWED",
    413: "PAYLOAD_TOO_LARGE",
    415: "UNSUPPORTED_MEDIA_TYPE",
    429: "RATE_LIMITED",
}


def envelope(code: str, message: str, status: int, details: Any = None) -> JSONResponse:
    error: dict[str, Any] = {"code": code, "message": message}
    if details:
        error["details"] = details
    return JSONResponse({"success": False, "error": error}, status_code=status)


def remember(request: Request, code: str, message: str) -> None:
    """Leave the error where the audit middleware finds it."""
    request.state.error = (code, message)


def install(app: FastAPI) -> None:
    @app.exception_handler(errors.FaceSocialError)
    async def _domain(request: Request, exc: errors.FaceSocialError) -> JSONResponse:
        remember(request, exc.code, exc.message)
        response = envelope(exc.code, exc.message, exc.status, exc.details or None)
        if "retry_after" in exc.details:
            response.headers["Retry-After"] = str(exc.details["retry_after"])
        return response

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = [
            {"field": ".".join(str(p) for p in e.get("loc", ()) if p != "body"), "problem": e.get("msg")}
            for e in exc.errors()
        ]
        message = "; ".join(f"{p['field']}: {p['problem']}" for p in problems) or "Invalid request"
        remember(request, "VALIDATION_ERROR", message)
        return envelope("VALIDATION_ERROR", message, 422, problems)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = _HTTP_CODES.get(exc.status_code, "HTTP_ERROR")
        remember(request, code, str(exc.detail))
        return envelope(code, str(exc.detail), exc.status_code)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        # Details go to the log, not to the client.
        log.exception("unhandled error on %s", request.url.path)
        remember(request, "INTERNAL_ERROR", type(exc).__name__)
        return envelope("INTERNAL_ERROR", "Internal error", 500)
