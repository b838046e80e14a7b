"""Receiving a streamed ``video`` part with its text fields: one intake for every video route.

Video routes read their body with :func:`facesocial.video.upload.spool_video_upload`, which hands
back the multipart text fields as strings; :func:`received_video` validates them with a pydantic
model (``VALIDATION_ERROR`` in the same shape as every other route's fields), probes the file and
checks the callback URL, and removes whatever is left of the upload when the route is done.
"""

from __future__ import annotations

import shutil
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request

from facesocial import errors
from facesocial.jobs.callbacks import validate_callback_url
from facesocial.settings import Settings
from facesocial.video.probe import VideoInfo, probe_video
from facesocial.video.upload import SpooledUpload, spool_video_upload

M = TypeVar("M", bound=BaseModel)

# What receiving a video can answer (besides VALIDATION_ERROR and INVALID_CALLBACK_URL).
VIDEO_UPLOAD_ERRORS: tuple[type[errors.FaceSocialError], ...] = (
    errors.UnsupportedMediaTypeError,
    errors.EmptyVideoError,
    errors.VideoTooLargeError,
    errors.UnsupportedVideoError,
    errors.NoVideoStreamError,
    errors.VideoTruncatedError,
    errors.VideoTooLongError,
    errors.VideoResolutionUnsupportedError,
    errors.VideoTooManyFramesError,
)


class VideoJobFields(BaseModel):
    """The fields every video route that may queue a job takes (subclasses add their own)."""

    model_config = ConfigDict(extra="forbid")

    priority: int = Field(default=5, ge=1, le=10, description="1-10, higher = more urgent")
    callback_url: str | None = Field(
        default=None, max_length=2048, description="POSTed when the job ends, signed (docs/jobs.md)"
    )


J = TypeVar("J", bound=VideoJobFields)


@dataclass(frozen=True, slots=True)
class ReceivedVideo(Generic[J]):
    upload: SpooledUpload  # the file in a spool folder of its own, removed after the route
    fields: J
    info: VideoInfo
    callback_url: str | None  # validated (None when not asked for)


@asynccontextmanager
async def received_video(
    request: Request, settings: Settings, fields: type[J]
) -> AsyncIterator[ReceivedVideo[J]]:
    """Stream the upload to ``<spool>/incoming/<hex>/``, validate ``fields``, probe the video,
    check the callback URL; the folder goes when the block ends (a job moves its file out first).

    Raises the errors of :func:`spool_video_upload` and :func:`probe_video`, ``VALIDATION_ERROR``
    and ``INVALID_CALLBACK_URL``.
    """
    incoming = settings.resolved_spool_dir() / "incoming" / uuid.uuid4().hex
    incoming.mkdir(parents=True, exist_ok=True)
    try:
        upload = await spool_video_upload(request, incoming, settings.video, settings.intake)
        values = video_fields(fields, upload.fields)
        info = await run_in_threadpool(probe_video, upload.path, settings.video)
        callback = None
        if values.callback_url:
            callback = await run_in_threadpool(
                validate_callback_url, values.callback_url, settings.jobs.callback_allow_private
            )
        yield ReceivedVideo(upload, values, info, callback)
    finally:
        shutil.rmtree(incoming, ignore_errors=True)


def video_request_body(fields: type[BaseModel]) -> dict[str, Any]:
    """``openapi_extra`` of a route taking multipart ``video`` (required) plus ``fields``."""
    return {
        "requestBody": {
            "required": True,
            "content": {
                "multipart/form-data": {
                    "schema": {
                        "type": "object",
                        "required": ["video"],
                        "properties": {
                            "video": {"type": "string", "format": "binary"},
                            **fields.model_json_schema()["properties"],
                        },
                    }
                }
            },
        }
    }


def video_fields(model: type[M], raw: dict[str, str]) -> M:
    """``raw`` (empty strings = absent, as FastAPI's Form) validated by ``model``.

    Raises ``RequestValidationError`` (rendered as 422 ``VALIDATION_ERROR`` naming each field).
    """
    try:
        return model.model_validate({k: v for k, v in raw.items() if v != ""})
    except ValidationError as exc:
        raise RequestValidationError(
            [
                {"type": e["type"], "loc": ("body", *e["loc"]), "msg": e["msg"]}
                for e in exc.errors(include_url=False, include_input=False, include_context=False)
            ]
        ) from None
