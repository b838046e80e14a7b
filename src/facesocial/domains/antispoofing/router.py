"""``/api/v1/antispoofing``: passive checks (image, clip) and active liveness sessions.

Limits: document 001's gateway gives this service burst 15 and 90 s timeouts; the API counts
every call against the ``antispoofing`` rate limit (10 r/s, burst 15) per caller.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, StringConstraints
from starlette.concurrency import run_in_threadpool

from facesocial import errors
from facesocial.api.deps import CallerDep, ContainerDep, ContextDep, DecodeGateDep, rate_limited
from facesocial.api.image_input import ImageForm, ImageUpload, image_form
from facesocial.api.openapi import IMAGE_ERRORS, error_responses, image_request_body
from facesocial.api.routing import ApiRoute
from facesocial.api.video_form import (
    VIDEO_UPLOAD_ERRORS,
    VideoJobFields,
    received_video,
    video_request_body,
)
from facesocial.domains.antispoofing.frames_input import read_frames
from facesocial.domains.antispoofing.service import VideoCheckRequest
from facesocial.domains.antispoofing.ws import liveness_socket
from facesocial.services.outcome import Outcome
from facesocial.services.serving_context import ServingScope

router = APIRouter(
    prefix="/api/v1/antispoofing",
    tags=["antispoofing"],
    route_class=ApiRoute,
    redirect_slashes=False,
)
_LIMIT = [Depends(rate_limited("antispoofing"))]
_SESSION_ERRORS = (
    errors.LivenessSessionNotFoundError,
    errors.LivenessSessionExpiredError,
    errors.LivenessSessionClosedError,
    errors.LivenessSessionBusyError,
)


def _name_liveness(request: Request, body: dict[str, Any]) -> None:
    """The audit row of a clip check names the liveness version that served (or will, queued)."""
    serving = body.get("serving", {}).get("liveness")
    if serving is not None:
        request.state.outcome = Outcome(
            {}, confidence=body.get("confidence_score"), model_version=serving["version"]
        )


class CheckForm(ImageForm):
    image: ImageUpload = Field(description="The image (JPEG, PNG, WebP, HEIC, AVIF, ...)")
    face_index: int | None = Field(
        default=None, ge=0, description="Which face (0 = the largest, the default)"
    )


class CheckVideoFields(VideoJobFields):
    """The text fields of ``check-video`` (multipart, beside the ``video`` file); ``priority`` and
    ``callback_url`` apply when the clip is long enough to be queued as a job."""

    request_source: str | None = Field(default=None, max_length=50, description="login, payment, ...")


class SessionCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    user_id: uuid.UUID | None = Field(
        default=None,
        description="The user this session is for (register/verify must then name the same user)",
    )
    challenges: list[Annotated[str, StringConstraints(max_length=32)]] | None = Field(
        default=None,
        max_length=6,
        description="A fixed challenge list (turn_left, turn_right, look_up, nod, blink, smile, open_mouth); "
        "default: a random sequence of two head moves and one face action",
    )
    timeout_seconds: int | None = Field(
        default=None, description="Seconds until the session expires (default 30)"
    )
    max_attempts: int | None = Field(
        default=None, description="Timed-out challenge windows allowed (default 3)"
    )


@router.post(
    "/check",
    name="antispoofing_check",
    response_model=None,
    dependencies=_LIMIT,
    openapi_extra=image_request_body(CheckForm),
    responses=error_responses(
        *IMAGE_ERRORS, errors.NoFaceFoundError, errors.FaceIndexOutOfRangeError, errors.ModelUnavailableError
    ),
)
def check(
    request: Request,
    container: ContainerDep,
    caller: CallerDep,
    ctx: ContextDep,
    gate: DecodeGateDep,
    form: Annotated[CheckForm, image_form(CheckForm)],
) -> dict[str, Any]:
    """Passive check of one face: ``is_live``, ``confidence_score``, ``spoof_type``, ``risk_level``."""
    with gate.admit(form.pixel_weight(container.settings.limits)):
        scope = ServingScope.for_request(container, caller, request.headers)
        outcome = container.antispoofing.check_image(
            form.image.data, form.face_index, caller=caller, ctx=ctx, scope=scope
        )
    request.state.outcome = outcome
    return {"success": True, **outcome.body}


@router.post(
    "/check-video",
    name="antispoofing_check_video",
    response_model=None,
    dependencies=_LIMIT,
    openapi_extra=video_request_body(CheckVideoFields),
    responses={
        202: {"description": "A longer clip was queued as a job; poll status_url"},
        **error_responses(*VIDEO_UPLOAD_ERRORS, errors.NoFaceFoundError, errors.InvalidCallbackUrlError),
    },
)
async def check_video(
    request: Request, container: ContainerDep, caller: CallerDep, ctx: ContextDep
) -> JSONResponse:
    """Passive check over a clip, with motion cues; 200 when short, else 202 and a job."""
    async with received_video(request, container.settings, CheckVideoFields) as received:
        fields = received.fields
        status, body = await run_in_threadpool(
            lambda: container.antispoofing.check_video(
                received.upload,
                received.info,
                VideoCheckRequest(fields.priority, received.callback_url, fields.request_source),
                caller=caller,
                ctx=ctx,
                scope=ServingScope.for_request(container, caller, request.headers),
            )
        )
    _name_liveness(request, body)
    return JSONResponse({"success": True, **body}, status_code=status)


@router.get(
    "/checks/{check_id}",
    name="antispoofing_get_check",
    response_model=None,
    dependencies=[Depends(rate_limited("jobs"))],
    responses=error_responses(errors.CheckNotFoundError),
)
def get_check(container: ContainerDep, caller: CallerDep, check_id: str) -> dict[str, Any]:
    """A stored check (a queued clip's status and progress, then its result)."""
    return {"success": True, **container.antispoofing.get_check(check_id[:64], caller)}


@router.post(
    "/liveness/sessions",
    name="liveness_create_session",
    response_model=None,
    status_code=201,
    dependencies=_LIMIT,
    responses=error_responses(errors.InvalidChallengesError),
)
def create_session(
    container: ContainerDep, caller: CallerDep, body: SessionCreate | None = None
) -> JSONResponse:
    """Open an active liveness session: ``session_token`` (shown once), challenges, ``expires_at``."""
    body = body or SessionCreate()
    created = container.liveness.create(
        caller=caller,
        user_id=body.user_id,
        challenges=body.challenges,
        timeout_seconds=body.timeout_seconds,
        max_attempts=body.max_attempts,
    )
    token = created["session_token"]
    created["frames_url"] = f"/api/v1/antispoofing/liveness/sessions/{token}/frames"
    created["ws_url"] = f"/api/v1/antispoofing/liveness/sessions/{token}/ws"
    return JSONResponse({"success": True, **created}, status_code=201)


@router.get(
    "/liveness/sessions/{token}",
    name="liveness_get_session",
    response_model=None,
    dependencies=[Depends(rate_limited("jobs"))],
    responses=error_responses(errors.LivenessSessionNotFoundError),
)
def get_session(container: ContainerDep, caller: CallerDep, token: str) -> dict[str, Any]:
    """Status, per-challenge results, ``overall_result``, ``failure_reason``, attempts used."""
    return {"success": True, **container.liveness.status(token, caller.tenant_id)}


@router.post(
    "/liveness/sessions/{token}/frames",
    name="liveness_frames",
    response_model=None,
    dependencies=_LIMIT,
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "multipart/form-data": {
                    "schema": {
                        "type": "object",
                        "properties": {
                            "frames": {"type": "array", "items": {"type": "string", "format": "binary"}},
                            "timestamps_ms": {"type": "array", "items": {"type": "number"}},
                            "video": {"type": "string", "format": "binary"},
                        },
                    }
                }
            },
        }
    },
    responses=error_responses(
        *_SESSION_ERRORS,
        *VIDEO_UPLOAD_ERRORS,
        errors.InvalidFramesError,
        errors.TooManyFramesError,
        errors.ImageTooLargeError,
        errors.EmptyImageError,
    ),
)
async def post_frames(
    request: Request, container: ContainerDep, caller: CallerDep, token: str
) -> dict[str, Any]:
    """Frames (with ``timestamps_ms``) or one short clip for the session; the session's new state."""
    # The session is looked up first: frames for an unknown, closed or expired session are refused
    # before the body is read.
    await run_in_threadpool(container.liveness.require_open, token, caller.tenant_id)
    frames, input_type = await read_frames(request, container.settings)
    view = await run_in_threadpool(container.liveness.submit, token, caller.tenant_id, frames, input_type)
    return {"success": True, **view}


router.add_api_websocket_route("/liveness/sessions/{token}/ws", liveness_socket, name="liveness_ws")
