"""Render every error as ``{"success": false, "error": {"code", "message"}}``."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect

from facesocial import errors

log = logging.getLogger(__name__)

# Seconds a client should wait after a 503 SERVICE_UNAVAILABLE (a store is down): long enough
# for a restart or failover to show, short enough that clients come back soon.
RETRY_AFTER_SECONDS = 5

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
        details: Any = exc.details or None
        if exc.code == "VALIDATION_ERROR" and isinstance(exc.details.get("fields"), list):
            # The same shape as a schema validation error: one {field, problem} per field.
            details = [{"field": field, "problem": exc.message} for field in exc.details["fields"]]
        response = envelope(exc.code, exc.message, exc.status, details)
        if "retry_after" in exc.details:
            response.headers["Retry-After"] = str(exc.details["retry_after"])
        elif exc.code == "SERVICE_UNAVAILABLE":
            response.headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
        return response

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        return _validation_failed(request, [_problem(e) for e in exc.errors()])

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code == 400:
            # Starlette's and FastAPI's 400s all mean a body that could not be parsed (FastAPI:
            # "There was an error parsing the body"): the documented answer for a malformed body
            # is VALIDATION_ERROR naming the body, whichever layer noticed.
            return _validation_failed(request, [{"field": "body", "problem": str(exc.detail)}])
        code = _HTTP_CODES.get(exc.status_code, "HTTP_ERROR")
        remember(request, code, str(exc.detail))
        return envelope(code, str(exc.detail), exc.status_code)

    @app.exception_handler(ClientDisconnect)
    async def _client_gone(request: Request, exc: ClientDisconnect) -> JSONResponse:
        # The client closed the connection before sending its whole body: its own doing, not a
        # bug of ours (no traceback, no 5xx in the metrics). Nobody receives this answer; the
        # audit row and the metrics record it as a client error.
        log.info("client disconnected before the end of its request body on %s", request.url.path)
        error = errors.ClientDisconnectedError()
        remember(request, error.code, error.message)
        return envelope(error.code, error.message, error.status)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        # A store failure raised outside the routes (e.g. in a middleware) still gets its 503.
        translated = store_unavailable(exc) or refused_value(exc)
        if translated is not None:
            return await _domain(request, translated)
        # Details go to the log, not to the client.
        log.exception("unhandled error on %s", request.url.path)
        remember(request, "INTERNAL_ERROR", type(exc).__name__)
        return envelope("INTERNAL_ERROR", "Internal error", 500)

    async def _store_down(request: Request, exc: Exception) -> JSONResponse:
        translated = store_unavailable(exc)
        if translated is None:
            return await _unexpected(request, exc)
        return await _domain(request, translated)

    for store_error in _store_error_classes():
        app.add_exception_handler(store_error, _store_down)


def _problem(error: Any) -> dict[str, Any]:
    """One ``{field, problem}`` of a validation error; a problem of the body as a whole (not JSON,
    not an object) is named "body"."""
    loc = tuple(error.get("loc", ()))
    if error.get("type") == "json_invalid" and len(loc) == 2 and isinstance(loc[1], int):
        # FastAPI's own JSON syntax error puts the character offset where a field name goes.
        detail = (error.get("ctx") or {}).get("error", "JSON decode error")
        detail = str(detail).removesuffix(" at")  # "Invalid control character at": one "at" only
        return {"field": "body", "problem": f"The body is not valid JSON: {detail} at character {loc[1]}"}
    field = ".".join(str(p) for p in loc if p != "body") or "body"
    return {"field": field, "problem": error.get("msg")}


def _validation_failed(request: Request, problems: list[dict[str, Any]]) -> JSONResponse:
    message = "; ".join(f"{p['field']}: {p['problem']}" for p in problems) or "Invalid request"
    remember(request, "VALIDATION_ERROR", message)
    return envelope("VALIDATION_ERROR", message, 422, problems)


def _store_error_classes() -> tuple[type[Exception], ...]:
    """Exception classes that may mean a store is unreachable (checked by :func:`store_unavailable`)
    or refused a value of the request (DataError, :func:`refused_value`)."""
    import psycopg
    from sqlalchemy import exc as sa

    return (
        sa.OperationalError,
        sa.InterfaceError,
        sa.TimeoutError,
        sa.DisconnectionError,
        sa.DataError,
        psycopg.Error,
    )


def store_unavailable(exc: BaseException) -> errors.FaceSocialError | None:
    """The 503 a connection-level database failure deserves, or None for any other error.

    Connection-level: SQLAlchemy's ``OperationalError``/``InterfaceError`` (lost or refused
    connection, server shut down, statement cancelled, SQLite "database is locked" after its busy
    timeout), a pool checkout timeout, an invalidated connection, and the same psycopg errors when
    raised directly. Integrity, data and programming errors are not: they stay bugs (500) or the
    caller's mistake. Every such failure is logged once here, with the exception's class and first
    line (PostgreSQL connection messages name host and port, never the password).
    """
    import psycopg
    from sqlalchemy import exc as sa

    down = isinstance(exc, sa.OperationalError | sa.InterfaceError | sa.TimeoutError | sa.DisconnectionError)
    down = down or (isinstance(exc, sa.DBAPIError) and exc.connection_invalidated)
    down = down or isinstance(exc, psycopg.OperationalError | psycopg.InterfaceError)
    if not down:
        return None
    reason = describe(exc.orig if isinstance(exc, sa.DBAPIError) and exc.orig is not None else exc)
    log.warning("database unavailable: %s", reason)
    if "database is locked" in reason:
        message = "The database is locked by another writer; retry shortly"
    else:
        message = "The database is not answering; retry shortly"
    return errors.DatabaseUnavailableError(message, retry_after=RETRY_AFTER_SECONDS)


def refused_value(exc: BaseException) -> errors.FaceSocialError | None:
    """422 ``VALIDATION_ERROR`` for a value the database refused (a DataError), or None.

    A DataError is PostgreSQL's SQLSTATE class 22 ("data exception": a NUL in text, a number out
    of range, ...): the value came from the request. Routes validate their input before it
    reaches SQL; this keeps one that slipped through the caller's mistake instead of a 500.
    """
    import psycopg
    from sqlalchemy import exc as sa

    if not isinstance(exc, sa.DataError | psycopg.DataError):
        return None
    log.warning(
        "database refused a value: %s",
        describe(exc.orig if isinstance(exc, sa.DBAPIError) and exc.orig is not None else exc),
    )
    return errors.ValidationFailedError(
        "A value in the request cannot be stored (a character or number out of range)"
    )


def describe(exc: BaseException) -> str:
    """``Class: first line`` of an error, for logs and readiness (no tracebacks, no stack)."""
    first = (str(exc).strip().splitlines() or [""])[0][:200]
    return f"{type(exc).__name__}: {first}" if first else type(exc).__name__
