"""``WS /api/v1/antispoofing/liveness/sessions/{token}/ws``: frames in, instructions and progress out.

Protocol. On connect the server sends the session's state (``type`` ``instruction``: the current
challenge and what to do). The client then sends binary messages, each one encoded frame (JPEG,
PNG, WebP), optionally preceded by a text message ``{"timestamp_ms": <capture time, ms>}`` (else
the frame is dated by its arrival). After every frame the server answers with one JSON message:
``type`` ``progress`` while the session is active, ``result`` when it ended (then the socket
closes with 1000), or ``error`` with ``code`` and ``message`` (the socket stays open for errors of
a frame, e.g. an undecodable image, and closes with 1008 when the session cannot take frames).
A text message ``{"type": "status"}`` asks for the state without a frame.

Credentials. The session token in the path is the credential: a browser cannot set headers on a
WebSocket and should not hold an API key, and the token (256 random bits, issued to the tenant
over an authenticated call, valid for this one session until it expires) gives no other access.
An ``X-API-Key`` header or ``api_key`` query parameter may be sent too; it must then be valid and
belong to the session's tenant. Frames are processed one at a time per socket: a client that
sends faster than the server measures is slowed by the socket's own flow control.
"""

from __future__ import annotations

import json
import logging
import math
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.websockets import WebSocket, WebSocketDisconnect

from facesocial import errors
from facesocial.domains.antispoofing.frames_input import MAX_TIMESTAMP_MS
from facesocial.domains.antispoofing.liveness import InputFrame

log = logging.getLogger(__name__)
# A control message is a small JSON object; anything longer is refused before parsing.
MAX_CONTROL_CHARS = 4096
_FINAL = (
    errors.LivenessSessionNotFoundError,
    errors.LivenessSessionExpiredError,
    errors.LivenessSessionClosedError,
)


async def liveness_socket(websocket: WebSocket, token: str) -> None:
    container = websocket.app.state.container
    api_key = websocket.headers.get("x-api-key") or websocket.query_params.get("api_key")
    try:
        tenant = None
        if api_key:
            principal = await run_in_threadpool(container.keys.authenticate, api_key)
            tenant = principal.tenant_id
        view = await run_in_threadpool(container.liveness.status, token, tenant)
    except errors.FaceSocialError as exc:
        await websocket.close(code=1008, reason=exc.code)
        return
    await websocket.accept()
    if view["session_status"] != "active":
        await websocket.send_json({"type": "result", **view})
        await websocket.close(code=1000)
        return
    await websocket.send_json({"type": "instruction", **view})
    max_bytes = container.settings.limits.max_image_bytes
    stamp: float | None = None
    try:
        while True:
            message = await websocket.receive()
            if message["type"] == "websocket.disconnect":
                return
            text, data = message.get("text"), message.get("bytes")
            if text is not None:
                reply, stamp = _control(text, stamp)
                if reply is not None:
                    if reply.get("type") == "status":
                        reply = {
                            "type": "progress",
                            **await run_in_threadpool(container.liveness.status, token, tenant),
                        }
                    await websocket.send_json(reply)
                continue
            if not data:
                continue
            if len(data) > max_bytes:
                await websocket.send_json(
                    _error(errors.ImageTooLargeError(f"A frame exceeds {max_bytes} bytes"))
                )
                continue
            frame = InputFrame(client_ms=stamp, data=bytes(data))
            stamp = None
            try:
                view = await run_in_threadpool(
                    container.liveness.submit, token, tenant, [frame], "live_stream"
                )
            except _FINAL as exc:
                await websocket.send_json(_error(exc))
                await websocket.close(code=1008)
                return
            except errors.FaceSocialError as exc:
                await websocket.send_json(_error(exc))
                continue
            if view["session_status"] != "active":
                await websocket.send_json({"type": "result", **view})
                await websocket.close(code=1000)
                return
            await websocket.send_json({"type": "progress", **view})
    except WebSocketDisconnect:
        return


def _control(text: str, stamp: float | None) -> tuple[dict[str, Any] | None, float | None]:
    """A text message: the next frame's timestamp, or a status request; an error reply otherwise."""
    not_json = _error(errors.ValidationFailedError("Text messages are JSON objects"))
    if len(text) > MAX_CONTROL_CHARS:
        return not_json, stamp
    try:
        body = json.loads(text)
    except (ValueError, RecursionError):  # bad JSON, a 5000-digit number, deep nesting
        return not_json, stamp
    if not isinstance(body, dict):
        return not_json, stamp
    if body.get("type") == "status":
        return {"type": "status"}, stamp
    value = body.get("timestamp_ms")
    bad = _error(
        errors.ValidationFailedError("timestamp_ms must be a finite number of milliseconds, |t| <= 1e12")
    )
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return bad, stamp
    try:
        number = float(value)
    except OverflowError:
        return bad, stamp
    if not math.isfinite(number) or abs(number) > MAX_TIMESTAMP_MS:
        return bad, stamp
    return None, number


def _error(exc: errors.FaceSocialError) -> dict[str, Any]:
    return {"type": "error", **exc.to_dict()}
