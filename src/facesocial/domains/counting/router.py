"""``/api/v1/counting/videos``: people counting in uploaded videos, as jobs (docs/api.md
"People counting")."""

from __future__ import annotations

import io
import shutil
import uuid
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from facesocial import errors
from facesocial.api.deps import CallerDep, ContainerDep, rate_limited
from facesocial.api.openapi import error_responses
from facesocial.api.routing import ApiRoute
from facesocial.api.video_form import (
    VIDEO_UPLOAD_ERRORS,
    VideoJobFields,
    received_video,
    video_fields,
    video_request_body,
)
from facesocial.domains.counting.forms import FrameBounds, parse_lines, parse_zones
from facesocial.domains.counting.repository import MAX_ID
from facesocial.domains.counting.service import CountingRequest
from facesocial.services.outcome import Outcome
from facesocial.services.serving_context import routing_key
from facesocial.video.frames import effective_sample_fps, iter_frames
from facesocial.video.probe import VideoInfo, probe_video
from facesocial.video.upload import spool_video_upload

router = APIRouter(
    prefix="/api/v1/counting/videos",
    tags=["people-counting"],
    route_class=ApiRoute,
    redirect_slashes=False,
)
# Uploads count against their own upload limit (document 001's 2 r/s zone); reads and erasure
# against the job-polling limit, so a client polling its video does not starve its uploads.
_UPLOAD_LIMIT = [Depends(rate_limited("counting_videos"))]
_READ_LIMIT = [Depends(rate_limited("jobs"))]
# Pages beyond this are refused (422), not passed to SQL (an offset beyond 2^63 is a 500 there).
_MAX_OFFSET = 10_000_000
_NOT_FOUND = error_responses(errors.CountingVideoNotFoundError)
Status = Literal["pending", "processing", "completed", "failed", "cancelled"]
# ``POST /api/v1/counting/first-frame``: a helper of the line-drawing UI, outside ``/videos``.
frame_router = APIRouter(
    prefix="/api/v1/counting", tags=["people-counting"], route_class=ApiRoute, redirect_slashes=False
)
FIRST_FRAME_QUALITY = 90


class CountingFields(VideoJobFields):
    """The text fields of ``POST /counting/videos`` (multipart, beside the ``video`` file)."""

    sample_fps: float | None = Field(
        default=None,
        ge=0.5,
        le=30.0,
        description="Frames analysed per second of video, 0.5-30 (default counting.default_sample_fps, 5); "
        "lowered to the video's own rate and to counting.max_analyzed_frames over the video",
    )
    lines: str | None = Field(
        default=None,
        description='JSON: [{"name": "door", "start": [x, y], "end": [x, y]}] in source pixels; "in" = '
        "crossing from the left of start→end to its right (as seen on the image, y down)",
    )
    zones: str | None = Field(
        default=None, description='JSON: [{"name": "queue", "polygon": [[x, y], [x, y], [x, y], ...]}]'
    )
    min_confidence: float | None = Field(
        default=None,
        ge=0.05,
        le=0.95,
        description="Confidence a box needs for the tracker's first association (default 0.5)",
    )


@router.post(
    "",
    name="upload_counting_video",
    status_code=202,
    response_model=None,
    dependencies=_UPLOAD_LIMIT,
    openapi_extra=video_request_body(CountingFields),
    responses=error_responses(
        *VIDEO_UPLOAD_ERRORS,
        errors.InvalidCallbackUrlError,
        errors.InvalidCountingLinesError,
        errors.InvalidCountingZonesError,
        errors.ModelUnavailableError,
    ),
)
async def upload_counting_video(request: Request, container: ContainerDep, caller: CallerDep) -> JSONResponse:
    """Queue a video's people counting: 202 with ``video_id`` and ``job_id``; poll ``links.self``.

    Lines and zones are checked against the probed frame size before anything is stored
    (422 ``INVALID_COUNTING_LINES`` / ``INVALID_COUNTING_ZONES``).
    """
    settings = container.settings
    counting = settings.counting
    async with received_video(request, settings, CountingFields) as received:
        fields = received.fields
        bounds = FrameBounds(received.info.width, received.info.height)
        lines = parse_lines(fields.lines, bounds, counting.max_lines)
        zones = parse_zones(fields.zones, bounds, counting.max_zones, counting.max_polygon_points)
        limits = settings.video.model_copy(
            update={
                "default_sample_fps": counting.default_sample_fps,
                "max_sample_fps": counting.max_sample_fps,
                "max_analyzed_frames": counting.max_analyzed_frames,
            }
        )
        counting_request = CountingRequest(
            sample_fps=effective_sample_fps(fields.sample_fps, limits, received.info),
            lines=lines,
            zones=zones,
            min_confidence=fields.min_confidence,
            priority=fields.priority,
            callback_url=received.callback_url,
        )
        key = routing_key(caller, request.headers, request_id=str(uuid.uuid4()))
        service = container.counting
        serving = await run_in_threadpool(service.resolve, key)
        request.state.outcome = Outcome({}, model_version=serving.version)
        body = await run_in_threadpool(
            lambda: service.submit(
                received.upload, received.info, counting_request, caller=caller, serving=serving, key=key
            )
        )
    return JSONResponse({"success": True, **body}, status_code=202)


@router.get("", name="list_counting_videos", response_model=None, dependencies=_READ_LIMIT)
def list_counting_videos(
    container: ContainerDep,
    caller: CallerDep,
    status: Annotated[Status | None, Query()] = None,
    offset: Annotated[int, Query(ge=0, le=_MAX_OFFSET)] = 0,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
) -> dict[str, Any]:
    """The tenant's counting videos, newest first, with status and progress."""
    return {"success": True, **container.counting.list_videos(caller, status, offset, limit)}


@router.get(
    "/{video_id}",
    name="get_counting_video",
    response_model=None,
    dependencies=_READ_LIMIT,
    responses=_NOT_FOUND,
)
def get_counting_video(container: ContainerDep, caller: CallerDep, video_id: str) -> dict[str, Any]:
    """Status and progress while it runs; once completed ``lines: [{name, in, out}]``, ``zones``,
    ``totals``, the serving model version."""
    return {"success": True, **container.counting.get(video_id[:MAX_ID], caller)}


@router.get(
    "/{video_id}/events",
    name="counting_events",
    response_model=None,
    dependencies=_READ_LIMIT,
    responses=_NOT_FOUND,
)
def counting_events(
    container: ContainerDep,
    caller: CallerDep,
    video_id: str,
    line: Annotated[str | None, Query(max_length=100)] = None,
    zone: Annotated[str | None, Query(max_length=100)] = None,
    offset: Annotated[int, Query(ge=0, le=_MAX_OFFSET)] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> dict[str, Any]:
    """A page of the line crossings and zone entries/exits in video order (``line``/``zone``: one
    counter's), each with the counter's totals after it."""
    return {
        "success": True,
        **container.counting.events(video_id[:MAX_ID], caller, line, zone, offset, limit),
    }


@router.get(
    "/{video_id}/tracks",
    name="counting_tracks",
    response_model=None,
    dependencies=_READ_LIMIT,
    responses=_NOT_FOUND,
)
def counting_tracks(
    container: ContainerDep,
    caller: CallerDep,
    video_id: str,
    trajectory: bool = True,
    offset: Annotated[int, Query(ge=0, le=_MAX_OFFSET)] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> dict[str, Any]:
    """A page of the tracked people: first/last time, last position, velocity (px/s), and the
    trajectory (box bottom-centres, source pixels) unless ``trajectory=false``."""
    return {
        "success": True,
        **container.counting.tracks(video_id[:MAX_ID], caller, offset, limit, trajectory=trajectory),
    }


@router.get(
    "/{video_id}/detections",
    name="counting_detections",
    response_model=None,
    dependencies=_READ_LIMIT,
    responses=_NOT_FOUND,
)
def counting_detections(
    container: ContainerDep,
    caller: CallerDep,
    video_id: str,
    frame: Annotated[int | None, Query(ge=0, le=_MAX_OFFSET)] = None,
    offset: Annotated[int, Query(ge=0, le=_MAX_OFFSET)] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> dict[str, Any]:
    """A page of the person boxes (source pixels) with their track ids; ``frame``: one source
    frame's (frame indexes are those of the sampled frames, see ``frame_index``)."""
    return {
        "success": True,
        **container.counting.detections(video_id[:MAX_ID], caller, frame, offset, limit),
    }


@router.get(
    "/{video_id}/timeline",
    name="counting_timeline",
    response_model=None,
    dependencies=_READ_LIMIT,
    responses=error_responses(errors.CountingVideoNotFoundError, errors.CountingNotReadyError),
)
def counting_timeline(
    container: ContainerDep,
    caller: CallerDep,
    video_id: str,
    offset: Annotated[int, Query(ge=0, le=_MAX_OFFSET)] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 1000,
) -> dict[str, Any]:
    """Cumulative counts per line (in/out) and zone (in/out/inside) at the end of each second."""
    return {"success": True, **container.counting.timeline(video_id[:MAX_ID], caller, offset, limit)}


@router.get(
    "/{video_id}/preview.mp4",
    name="counting_preview",
    response_class=Response,
    dependencies=_READ_LIMIT,
    responses={
        200: {"content": {"video/mp4": {}}, "description": "Boxes, track ids, lines and counters (H.264)"},
        **error_responses(
            errors.CountingVideoNotFoundError, errors.CountingNotReadyError, errors.NotFoundError
        ),
    },
)
def counting_preview(container: ContainerDep, caller: CallerDep, video_id: str) -> Response:
    """The annotated preview: the first ``counting.preview_seconds`` (20) at the sample rate."""
    mp4 = container.counting.preview(video_id[:MAX_ID], caller)
    return Response(mp4, media_type="video/mp4", headers={"Cache-Control": "private, max-age=60"})


@router.delete(
    "/{video_id}",
    name="delete_counting_video",
    response_model=None,
    dependencies=_READ_LIMIT,
    responses=_NOT_FOUND,
)
def delete_counting_video(container: ContainerDep, caller: CallerDep, video_id: str) -> dict[str, Any]:
    """Erase the video's rows (detections, tracks, events, inference, preview); cancels its job."""
    return {"success": True, **container.counting.delete(video_id[:MAX_ID], caller)}


class FirstFrameFields(BaseModel):
    """``POST /counting/first-frame`` takes no field besides ``video``."""

    model_config = ConfigDict(extra="forbid")


@frame_router.post(
    "/first-frame",
    name="counting_first_frame",
    response_class=Response,
    dependencies=_UPLOAD_LIMIT,
    openapi_extra=video_request_body(FirstFrameFields),
    responses={
        200: {
            "content": {"image/jpeg": {}},
            "description": "The first frame, upright, at the video's size (the pixels lines are given in)",
        },
        **error_responses(*VIDEO_UPLOAD_ERRORS),
    },
)
async def counting_first_frame(request: Request, container: ContainerDep, caller: CallerDep) -> Response:
    """The first frame of an uploaded video as a JPEG, at the size lines and zones are given in
    (``X-Video-Width`` / ``X-Video-Height``), for clients that cannot decode the video themselves.

    The upload is probed as every video route does (the ``VIDEO_*`` codes and limits) and is not
    stored: the file is removed when the answer is sent.
    """
    settings = container.settings
    incoming = settings.resolved_spool_dir() / "incoming" / uuid.uuid4().hex
    incoming.mkdir(parents=True, exist_ok=True)
    try:
        upload = await spool_video_upload(request, incoming, settings.video, settings.intake)
        video_fields(FirstFrameFields, upload.fields)
        info = await run_in_threadpool(probe_video, upload.path, settings.video)
        jpeg = await run_in_threadpool(_first_frame_jpeg, upload.path, info)
    finally:
        shutil.rmtree(incoming, ignore_errors=True)
    return Response(
        jpeg,
        media_type="image/jpeg",
        headers={
            "Cache-Control": "no-store",
            "X-Video-Width": str(info.width),
            "X-Video-Height": str(info.height),
            "X-Video-Duration": f"{info.duration_seconds:.3f}",
        },
    )


def _first_frame_jpeg(path: Path, info: VideoInfo) -> bytes:
    """The first decodable frame, upright (square pixels, rotation applied) as JPEG bytes.
    Raises ``VIDEO_TRUNCATED`` (422) when no frame decodes."""
    from PIL import Image

    with iter_frames(path, info, sample_fps=1.0, max_frames=1) as frames:
        frame = next(frames, None)
    if frame is None:
        raise errors.VideoTruncatedError("No frame of the video could be decoded")
    out = io.BytesIO()
    Image.fromarray(frame.rgb).save(out, format="JPEG", quality=FIRST_FRAME_QUALITY)
    return out.getvalue()
