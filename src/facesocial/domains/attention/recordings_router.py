"""``/api/v1/attention/videos``: recorded meetings analysed as jobs (docs/attention.md "Recordings")."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse, Response
from pydantic import Field
from starlette.concurrency import run_in_threadpool

from facesocial import errors
from facesocial.api.deps import CallerDep, ContainerDep, rate_limited
from facesocial.api.openapi import error_responses
from facesocial.api.routing import ApiRoute
from facesocial.api.video_form import VIDEO_UPLOAD_ERRORS, VideoJobFields, received_video, video_request_body
from facesocial.domains.attention.recordings import RecordingRequest
from facesocial.video.frames import effective_sample_fps

router = APIRouter(
    prefix="/api/v1/attention/videos",
    tags=["attention"],
    route_class=ApiRoute,
    redirect_slashes=False,
)
# Uploads count against their own upload limit (document 001's 2 r/s zone); reads and erasure
# against the job-polling limit, so a client polling its recording does not starve its uploads.
_UPLOAD_LIMIT = [Depends(rate_limited("attention_videos"))]
_READ_LIMIT = [Depends(rate_limited("jobs"))]
# Pages beyond this are refused (422), not passed to SQL (an offset beyond 2^63 is a 500 there).
_MAX_OFFSET = 10_000_000


class RecordingFields(VideoJobFields):
    """The text fields of ``POST /videos`` (multipart, beside the ``video`` file)."""

    sample_fps: float | None = Field(
        default=None,
        gt=0,
        description="Frames analysed per second of video (default attention.video_sample_fps, 5)",
    )
    meeting_id: str | None = Field(
        default=None,
        max_length=64,
        description="A meeting of your tenant: its participants, alerts and metrics get the recording's",
    )


@router.post(
    "",
    name="upload_recording",
    status_code=202,
    response_model=None,
    dependencies=_UPLOAD_LIMIT,
    openapi_extra=video_request_body(RecordingFields),
    responses=error_responses(
        *VIDEO_UPLOAD_ERRORS, errors.InvalidCallbackUrlError, errors.MeetingNotFoundError
    ),
)
async def upload_recording(request: Request, container: ContainerDep, caller: CallerDep) -> JSONResponse:
    """Queue a recording's attention analysis: 202 with ``id`` and ``job_id``; poll ``status_url``."""
    settings = container.settings
    async with received_video(request, settings, RecordingFields) as received:
        fields = received.fields
        requested = fields.sample_fps or settings.attention.video_sample_fps
        recording = RecordingRequest(
            sample_fps=effective_sample_fps(requested, settings.video, received.info),
            priority=fields.priority,
            callback_url=received.callback_url,
            meeting_id=fields.meeting_id,
        )
        body = await run_in_threadpool(
            lambda: container.recordings.submit(received.upload, received.info, recording, caller=caller)
        )
    return JSONResponse({"success": True, **body}, status_code=202)


@router.get("", name="list_recordings", response_model=None, dependencies=_READ_LIMIT)
def list_recordings(
    container: ContainerDep,
    caller: CallerDep,
    offset: Annotated[int, Query(ge=0, le=_MAX_OFFSET)] = 0,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    meeting_id: Annotated[str | None, Query(max_length=64)] = None,
) -> dict[str, Any]:
    """The tenant's recordings, newest first, with status and progress."""
    return {"success": True, **container.recordings.list_recordings(caller, offset, limit, meeting_id)}


@router.get(
    "/{recording_id}",
    name="get_recording",
    response_model=None,
    dependencies=_READ_LIMIT,
    responses=error_responses(errors.RecordingNotFoundError),
)
def get_recording(container: ContainerDep, caller: CallerDep, recording_id: str) -> dict[str, Any]:
    """Status and progress while it runs; the results and alerts once completed."""
    return {"success": True, **container.recordings.get(recording_id[:64], caller)}


@router.get(
    "/{recording_id}/timeline",
    name="recording_timeline",
    response_model=None,
    dependencies=_READ_LIMIT,
    responses=error_responses(errors.RecordingNotFoundError),
)
def recording_timeline(
    container: ContainerDep,
    caller: CallerDep,
    recording_id: str,
    offset: Annotated[int, Query(ge=0, le=_MAX_OFFSET)] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> dict[str, Any]:
    """A page of the per-frame rows: time, faces with their scores, mean attention."""
    return {"success": True, **container.recordings.timeline(recording_id[:64], caller, offset, limit)}


@router.get(
    "/{recording_id}/chart.png",
    name="recording_chart",
    response_class=Response,
    dependencies=_READ_LIMIT,
    responses={
        200: {"content": {"image/png": {}}, "description": "Attention over time, one line per participant"},
        **error_responses(errors.RecordingNotFoundError, errors.RecordingNotReadyError),
    },
)
def recording_chart(container: ContainerDep, caller: CallerDep, recording_id: str) -> Response:
    """Attention (0-100) over time (s), a line per participant, alert spans shaded (PNG)."""
    png = container.recordings.chart(recording_id[:64], caller)
    return Response(png, media_type="image/png", headers={"Cache-Control": "private, max-age=60"})


@router.delete(
    "/{recording_id}",
    name="delete_recording",
    response_model=None,
    dependencies=_READ_LIMIT,
    responses=error_responses(errors.RecordingNotFoundError),
)
def delete_recording(container: ContainerDep, caller: CallerDep, recording_id: str) -> dict[str, Any]:
    """Erase the recording, its analysis, timeline and meeting rows; cancels a pending job."""
    return {"success": True, **container.recordings.delete(recording_id[:64], caller)}
