"""``/api/v1/deepfake-detection``: images now, videos as jobs (document 001: 300 s, 500 MB)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse
from pydantic import Field
from starlette.concurrency import run_in_threadpool

from facesocial import errors
from facesocial.api.deps import CallerDep, ContainerDep, ContextDep, DecodeGateDep, rate_limited
from facesocial.api.forms import Flag
from facesocial.api.image_input import ImageForm, ImageUpload, image_form
from facesocial.api.openapi import IMAGE_ERRORS, error_responses, image_request_body
from facesocial.api.routing import ApiRoute
from facesocial.api.video_form import VIDEO_UPLOAD_ERRORS, VideoJobFields, received_video, video_request_body
from facesocial.domains.deepfake.service import VideoRequest
from facesocial.services.serving_context import ServingScope
from facesocial.video.frames import effective_sample_fps

router = APIRouter(
    prefix="/api/v1/deepfake-detection",
    tags=["deepfake-detection"],
    route_class=ApiRoute,
    redirect_slashes=False,
)
# Analyses (uploads) count against document 001's upload limit; reading and erasing results
# against the job-polling limit, so a client polling its video does not starve its uploads.
_UPLOAD_LIMIT = [Depends(rate_limited("deepfake_detection"))]
_READ_LIMIT = [Depends(rate_limited("jobs"))]
# Pages beyond this are refused (422), not passed to SQL (an offset beyond 2^63 is a 500 there).
_MAX_OFFSET = 10_000_000

Level = Literal["basic", "standard", "advanced"]
_LEVEL_HELP = (
    "basic: learned classifier + frequency; standard: + blending boundary and colour/noise mismatch; "
    "advanced: + every signal and a finer heatmap (docs/deepfake.md)"
)


class DeepfakeImageForm(ImageForm):
    image: ImageUpload = Field(description="The image (JPEG, PNG, WebP, HEIC, AVIF, ...)")
    detection_level: Level = Field(default="standard", description=_LEVEL_HELP)
    return_heatmap: Flag = Field(default=True, description="Include the inconsistency heatmap (PNG, base64)")


class VideoFields(VideoJobFields):
    """The text fields of ``analyze-video`` (multipart, beside the ``video`` file)."""

    sample_fps: float | None = Field(
        default=None, gt=0, description="Frames analysed per second of video (default: the server's)"
    )
    detection_level: Level = Field(default="standard", description=_LEVEL_HELP)


@router.post(
    "/analyze",
    name="analyze",
    response_model=None,
    dependencies=_UPLOAD_LIMIT,
    openapi_extra=image_request_body(DeepfakeImageForm),
    responses=error_responses(*IMAGE_ERRORS, errors.ModelUnavailableError),
)
def analyze(
    request: Request,
    container: ContainerDep,
    caller: CallerDep,
    ctx: ContextDep,
    gate: DecodeGateDep,
    form: Annotated[DeepfakeImageForm, image_form(DeepfakeImageForm)],
) -> dict[str, Any]:
    """Judge one image: verdict band (real / uncertain / fake), scores, areas, heatmap, model version."""
    with gate.admit(form.pixel_weight(container.settings.limits)):
        outcome = container.deepfake.analyze_image(
            form.image.data,
            form.detection_level,
            caller=caller,
            ctx=ctx,
            return_heatmap=form.return_heatmap,
            scope=ServingScope.for_request(container, caller, request.headers),
        )
    request.state.outcome = outcome
    return {"success": True, **outcome.body}


@router.post(
    "/analyze-video",
    name="analyze_video",
    status_code=202,
    response_model=None,
    dependencies=_UPLOAD_LIMIT,
    openapi_extra=video_request_body(VideoFields),
    responses=error_responses(*VIDEO_UPLOAD_ERRORS, errors.InvalidCallbackUrlError),
)
async def analyze_video(
    request: Request, container: ContainerDep, caller: CallerDep, ctx: ContextDep
) -> JSONResponse:
    """Queue a video analysis: 202 with ``analysis_id`` and ``job_id``; poll ``status_url``."""
    settings = container.settings
    async with received_video(request, settings, VideoFields) as received:
        fields = received.fields
        video_request = VideoRequest(
            level=fields.detection_level,
            priority=fields.priority,
            sample_fps=effective_sample_fps(fields.sample_fps, settings.video, received.info),
            callback_url=received.callback_url,
        )
        body = await run_in_threadpool(
            lambda: container.deepfake.submit_video(
                received.upload,
                received.info,
                video_request,
                caller=caller,
                ctx=ctx,
                scope=ServingScope.for_request(container, caller, request.headers),
            )
        )
    return JSONResponse({"success": True, **body}, status_code=202)


@router.get(
    "/analyses/{analysis_id}",
    name="get_analysis",
    response_model=None,
    responses=error_responses(errors.AnalysisNotFoundError),
)
def get_analysis(
    container: ContainerDep,
    caller: CallerDep,
    analysis_id: str,
    frames_offset: Annotated[int, Query(ge=0, le=_MAX_OFFSET)] = 0,
    frames_limit: Annotated[int, Query(ge=0, le=1000)] = 100,
) -> dict[str, Any]:
    """Status and progress; when completed the results and a page of ``frame_analyses``."""
    return {"success": True, **container.deepfake.get(analysis_id[:64], caller, frames_offset, frames_limit)}


@router.delete(
    "/analyses/{analysis_id}",
    name="delete_analysis",
    response_model=None,
    responses=error_responses(errors.AnalysisNotFoundError),
)
def delete_analysis(container: ContainerDep, caller: CallerDep, analysis_id: str) -> dict[str, Any]:
    """Erase an analysis, its frames, its content features and any spooled file; cancels its job."""
    return {"success": True, **container.deepfake.delete(analysis_id[:64], caller)}
