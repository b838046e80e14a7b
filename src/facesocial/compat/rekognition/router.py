"""``POST /rekognition`` (and ``/rekognition/``): AWS Rekognition's JSON protocol 1.1.

A request names its action in ``X-Amz-Target: RekognitionService.<Action>``, carries a JSON body
(``Content-Type: application/x-amz-json-1.1``) and is signed with AWS SigV4 for service
``rekognition`` (any region). The access key id is a platform API key and the secret access key
is the same key: the server looks the key up (the failed-authentication limit of
``api/auth_middleware.py`` applies), then checks the signature with it (compat/rekognition/
sigv4.py). Answers are Rekognition's shapes; errors ``{"__type", "message"}`` with HTTP 400
(Rekognition's codes; 500/503 for server faults), so botocore raises ``ClientError`` with the
code. Outside ``/api/``: the app's auth, audit and body-limit middlewares do not see these
requests; this router does their work itself (one audit row per call, service ``rekognition``).
"""

from __future__ import annotations

import contextlib
import json
import logging
import time
import uuid
from typing import Any

import anyio.to_thread
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from starlette.datastructures import Headers

from facesocial import errors
from facesocial.api.audit_middleware import context_from_scope
from facesocial.api.auth_middleware import Gatekeeper, client_key
from facesocial.api.body_limit import image_body_limit
from facesocial.api.deps import rate_limited
from facesocial.compat.rekognition import sigv4
from facesocial.compat.rekognition.actions import ACTIONS, Call, image_bytes
from facesocial.compat.rekognition.errors import RekognitionError, translate, unrecognized_client
from facesocial.container import Container
from facesocial.services.audit import OperationRecord
from facesocial.services.principal import Principal
from facesocial.services.serving_context import ServingScope
from facesocial.vision.decode_gate import DecodeGate
from facesocial.vision.image import probe_image

log = logging.getLogger(__name__)

PATH = "/rekognition"
TARGET_PREFIX = "RekognitionService."
CONTENT_TYPE = "application/x-amz-json-1.1"
# The platform rate limit each action counts against (settings.rate_limits.limits).
RATE_LIMITS: dict[str, str] = {"DetectFaces": "face_detection"}
DEFAULT_RATE_LIMIT = "face_recognition"

router = APIRouter(tags=["rekognition"])


@router.post(PATH, include_in_schema=False)
@router.post(PATH + "/", include_in_schema=False)
async def rekognition(request: Request) -> Response:
    """One Rekognition call; see the module docstring. Never raises: every error is answered
    in Rekognition's shape."""
    container: Container = request.app.state.container
    started = time.perf_counter()
    request_id = str(uuid.uuid4())
    target = request.headers.get("x-amz-target", "")
    action = target[len(TARGET_PREFIX) :] if target.startswith(TARGET_PREFIX) else target
    principal: Principal | None = None
    error: RekognitionError | None = None
    result: dict[str, Any] = {}
    try:
        body = await _read_body(request, container)
        principal = await anyio.to_thread.run_sync(_authenticate, request, container, body)
        payload = _payload(body)
        handler = ACTIONS.get(action) if target.startswith(TARGET_PREFIX) else None
        if handler is None:
            raise RekognitionError(
                "UnknownOperationException",
                f"Operation {target or '(no X-Amz-Target)'} is not supported by this endpoint; "
                f"supported: {', '.join(sorted(ACTIONS))}",
            )
        caller = principal
        ctx = context_from_scope(request.scope, api_key_id=str(caller.api_key_id))
        call = Call(
            container=container,
            caller=caller,
            ctx=ctx,
            scope=ServingScope.for_request(container, caller, request.headers),
            region=_region(request),
        )
        gate: DecodeGate = request.app.state.decode_gate
        limit = rate_limited(RATE_LIMITS.get(action, DEFAULT_RATE_LIMIT))

        def run() -> dict[str, Any]:
            limit(request, caller, container)
            with gate.admit(_pixel_weight(payload, container)):
                return handler(call, payload)

        result = await anyio.to_thread.run_sync(run)
    except RekognitionError as exc:
        error = exc
    except errors.FaceSocialError as exc:
        error = translate(exc)
    except Exception:
        log.exception("Rekognition %s failed", action)
        error = RekognitionError("InternalServerError", "Internal server error", 500)
    if error is None:
        response = _answer(200, result, request_id)
    else:
        response = _answer(error.status, error.body(), request_id)
        response.headers["x-amzn-ErrorType"] = error.code
    await _audit(container, request, action, principal, response, error, started)
    return response


async def _read_body(request: Request, container: Container) -> bytes:
    """The body, up to two images' worth of base64 plus fields (CompareFaces is the largest)."""
    limit = image_body_limit(2, container.settings.limits.max_image_bytes, container.settings.intake)
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise RekognitionError("ImageTooLargeException", f"The request body exceeds {limit} bytes")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise RekognitionError("ImageTooLargeException", f"The request body exceeds {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def _authenticate(request: Request, container: Container, body: bytes) -> Principal:
    """The key named by the SigV4 credential, once its signature checks out with that key."""
    auth = sigv4.parse_authorization(request.headers.get("authorization"))
    gatekeeper = Gatekeeper(container)
    client = client_key(request.scope)
    try:
        principal = gatekeeper.caller(Headers({"x-api-key": auth.access_key}), client)
    except errors.FaceSocialError as exc:
        if exc.status == 401:
            raise unrecognized_client() from None
        raise
    headers: dict[str, list[str]] = {}
    for name, value in request.headers.raw:
        headers.setdefault(name.decode("latin-1").lower(), []).append(value.decode("latin-1"))
    raw_path = request.scope.get("raw_path") or request.url.path.encode()
    try:
        sigv4.check_request(
            auth,
            request.method,
            raw_path.decode("latin-1"),
            request.scope.get("query_string", b"").decode("latin-1"),
            headers,
            body,
            auth.access_key,
        )
    except RekognitionError:
        gatekeeper.count_public_failure(client)  # a wrong secret is a failed authentication too
        raise
    return principal


def _payload(body: bytes) -> dict[str, Any]:
    try:
        payload = json.loads(body or b"{}")
    except ValueError:
        raise RekognitionError("SerializationException", "The request body is not JSON") from None
    if not isinstance(payload, dict):
        raise RekognitionError("SerializationException", "The request body must be a JSON object")
    return payload


def _pixel_weight(payload: dict[str, Any], container: Container) -> int:
    """Pixels the call holds decoded at once (the decode gate's unit), from the image headers."""
    total = 0
    for name in ("Image", "SourceImage", "TargetImage"):
        if name in payload:
            # A bad image weighs nothing here: the action raises the same error itself.
            with contextlib.suppress(RekognitionError, errors.FaceSocialError):
                total += probe_image(image_bytes(payload, name), container.settings.limits).pixels
    return total


def _region(request: Request) -> str:
    try:
        return sigv4.parse_authorization(request.headers.get("authorization")).region
    except RekognitionError:
        return "us-east-1"


def _answer(status: int, body: dict[str, Any], request_id: str) -> Response:
    return JSONResponse(
        body, status_code=status, media_type=CONTENT_TYPE, headers={"x-amzn-RequestId": request_id}
    )


async def _audit(
    container: Container,
    request: Request,
    action: str,
    principal: Principal | None,
    response: Response,
    error: RekognitionError | None,
    started: float,
) -> None:
    record = OperationRecord(
        service_name="rekognition",
        operation_type=(action or "unknown")[:50],
        endpoint=f"POST {PATH}",
        processing_time_ms=round((time.perf_counter() - started) * 1000),
        request_size_bytes=_length(request),
        response_size_bytes=len(response.body),
        operation_result="error" if error is not None else "success",
        error_code=error.code[:50] if error is not None else None,
        error_message=error.message if error is not None else None,
        confidence_score=None,
        model_version=None,
        user_id=None,
        status_code=response.status_code,
        api_key_uuid=principal.api_key_id if principal is not None else None,
    )
    api_key = str(principal.api_key_id) if principal is not None and principal.api_key_id else None
    ctx = context_from_scope(request.scope, api_key_id=api_key)
    try:
        await anyio.to_thread.run_sync(container.audit.record, record, ctx)
    except Exception:  # auditing must never turn a served request into an error
        log.exception("could not write the audit record")


def _length(request: Request) -> int | None:
    value = request.headers.get("content-length")
    return int(value) if value is not None and value.isdigit() else None
