"""ASGI middleware: a byte budget per request body, enforced while it is read.

A route's budget is the default for JSON routes (``intake.json_body_bytes``) unless the code
that reads the body declares another one first (:func:`allow_body`; ``api/image_input.py`` does
it from the number of images the route takes). When the body is first read, a Content-Length
over the budget is refused at once (413 ``PAYLOAD_TOO_LARGE``, nothing read); a body without
one (chunked) is counted as it arrives and refused the moment it passes the budget. Either way
the connection is closed after the answer, so the server never reads the rest.

Nothing else in the app can turn the refusal into a 400 or a 500: once the budget is exceeded,
any answer the app tries to give is replaced by the 413 envelope.
"""

from __future__ import annotations

import math

from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from facesocial.api.errors import envelope
from facesocial.settings import IntakeSettings

BODY_LIMIT_KEY = "facesocial.body_limit"


class BodyTooLargeError(HTTPException):
    """Raised from ``receive``; an HTTPException so that FastAPI's body parsing passes it on."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"The request body exceeds this route's limit of {_size(limit)}")
        self.limit = limit


def allow_body(scope: Scope, limit: int) -> None:
    """Declare this request's body budget (bytes); call before the first read of the body."""
    scope[BODY_LIMIT_KEY] = limit


def image_body_limit(images: int, max_image_bytes: int, intake: IntakeSettings) -> int:
    """Bytes a route with ``images`` images may receive: each in base64 form, plus the fields.

    Base64 takes 4 bytes per 3 (``4·⌈n/3⌉``) and MIME-style encoders add CRLF every 76 characters;
    multipart carries the raw bytes, so the same budget fits both. Capped at
    ``intake.max_body_bytes`` (design document 001: 100 MB).
    """
    encoded = 4 * math.ceil(max_image_bytes / 3)
    encoded += 2 * math.ceil(encoded / 76)
    return min(intake.max_body_bytes, images * encoded + intake.field_allowance_bytes)


class BodyLimitMiddleware:
    def __init__(self, app: ASGIApp, default_limit: int, prefix: str = "/api/") -> None:
        self.app = app
        self.default_limit = default_limit
        self.prefix = prefix

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(self.prefix):
            await self.app(scope, receive, send)
            return
        await _Guard(scope, receive, send, self.default_limit).run(self.app)


class _Guard:
    """One request: counts what ``receive`` hands out, watches what ``send`` answers."""

    def __init__(self, scope: Scope, receive: Receive, send: Send, default_limit: int) -> None:
        self.scope, self._receive, self._send = scope, receive, send
        self.default_limit = default_limit
        headers = Headers(scope=scope)
        self.declared = _content_length(headers)
        self.has_body = "transfer-encoding" in headers or bool(self.declared)
        self.received = 0
        self.body_complete = False
        self.exceeded: BodyTooLargeError | None = None
        self.started = False
        self.replaced = False

    @property
    def limit(self) -> int:
        return int(self.scope.get(BODY_LIMIT_KEY, self.default_limit))

    async def run(self, app: ASGIApp) -> None:
        try:
            await app(self.scope, self.receive, self.send)
        except Exception:
            if self.exceeded is None or self.started:
                raise
            await self._answer_too_large(self.exceeded)

    async def receive(self) -> Message:
        if self.exceeded is not None:
            raise self.exceeded
        limit = self.limit
        if self.declared is not None and self.declared > limit:
            raise self._exceed(limit)
        message = await self._receive()
        if message["type"] == "http.request":
            self.received += len(message.get("body", b""))
            self.body_complete = not message.get("more_body", False)
            if self.received > limit:
                raise self._exceed(limit)
        return message

    async def send(self, message: Message) -> None:
        if self.replaced:
            return  # the app's own answer to a refused body: dropped
        if message["type"] == "http.response.start":
            if self.exceeded is not None:
                # Whatever the app made of the refused body (a 400 from a parser, a 500, its own
                # rendering of the 413), the client gets one answer: this envelope.
                self.replaced = True
                await self._answer_too_large(self.exceeded)
                return
            self.started = True
            if self.has_body and not self.body_complete:
                # The rest of the body stays unread: close instead of draining it for keep-alive.
                message = {**message, "headers": [*message.get("headers", []), (b"connection", b"close")]}
        await self._send(message)

    def _exceed(self, limit: int) -> BodyTooLargeError:
        self.exceeded = BodyTooLargeError(limit)
        return self.exceeded

    async def _answer_too_large(self, exc: BodyTooLargeError) -> None:
        self.started = True
        self.scope.setdefault("state", {})["error"] = ("PAYLOAD_TOO_LARGE", exc.detail)
        response = envelope("PAYLOAD_TOO_LARGE", exc.detail, 413, {"limit_bytes": exc.limit})
        response.headers["Connection"] = "close"
        await response(self.scope, self._receive, self._send)


def _content_length(headers: Headers) -> int | None:
    value = headers.get("content-length")
    if value is None or not value.strip().isdigit():
        return None
    return int(value)


def _size(limit: int) -> str:
    mib = limit / (1024 * 1024)
    return f"{limit} bytes ({mib:.1f} MiB)" if mib >= 1 else f"{limit} bytes"
