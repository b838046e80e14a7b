"""Errors of the CompreFace paths in CompreFace's shape: ``{"message": str, "code": int}``.

Every failure on these paths — refused credentials (the auth middleware answers before any
route runs), validation, the services' own errors — is first rendered in the platform's
envelope ``{"success": false, "error": {"code", "message"}}`` (and audited with its platform
code). This pure-ASGI middleware then rewrites that body for the client, so the mapping lives in
one place (:func:`facesocial.compat.compreface.shapes.compreface_error`).
"""

from __future__ import annotations

import json
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from facesocial.compat.compreface.shapes import compreface_error

# The CompreFace services' path prefixes (distinct from the platform's /api/v1/face-*).
PREFIXES = ("/api/v1/recognition/", "/api/v1/detection/", "/api/v1/verification/")
# Whole paths too: "/api/v1/recognition/subjects" starts with a prefix, "/api/v1/recognition" not.
_BARE = tuple(prefix.rstrip("/") for prefix in PREFIXES)


def is_compreface_path(path: str) -> bool:
    return path.startswith(PREFIXES) or path in _BARE


def translate(body: bytes, status: int) -> tuple[bytes, int] | None:
    """The CompreFace body and status for a platform error body, or None if it is not one."""
    try:
        payload: Any = json.loads(body)
    except ValueError:
        return None
    if not isinstance(payload, dict) or payload.get("success") is not False:
        return None
    error = payload.get("error")
    if not isinstance(error, dict) or not isinstance(error.get("code"), str):
        return None
    code, new_status = compreface_error(error["code"], status)
    message = str(error.get("message") or "")
    return json.dumps({"message": message, "code": code}).encode(), new_status


class CompreFaceErrorMiddleware:
    """Rewrites error responses (status >= 400, JSON) on the CompreFace paths."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not is_compreface_path(scope["path"]):
            await self.app(scope, receive, send)
            return
        start: Message | None = None
        chunks: list[bytes] = []

        async def rewriting_send(message: Message) -> None:
            nonlocal start
            if message["type"] == "http.response.start":
                if message["status"] >= 400 and _is_json(message):
                    start = message  # held until the whole (small) error body is here
                    return
                await send(message)
                return
            if message["type"] == "http.response.body" and start is not None:
                chunks.append(message.get("body", b""))
                if message.get("more_body", False):
                    return
                body, status = b"".join(chunks), int(start["status"])
                translated = translate(body, status)
                if translated is not None:
                    body, status = translated
                headers = [(k, v) for k, v in start.get("headers", []) if k.lower() != b"content-length"]
                headers.append((b"content-length", str(len(body)).encode()))
                await send({**start, "status": status, "headers": headers})
                await send({"type": "http.response.body", "body": body, "more_body": False})
                return
            await send(message)

        await self.app(scope, receive, rewriting_send)


def _is_json(message: Message) -> bool:
    for key, value in message.get("headers", []):
        if key.lower() == b"content-type":
            return bytes(value).split(b";", 1)[0].strip().lower() == b"application/json"
    return False
