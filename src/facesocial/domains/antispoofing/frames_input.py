"""The body of ``POST .../liveness/sessions/{token}/frames``: still frames or one short clip.

multipart/form-data with either repeated ``frames`` file parts (JPEG, PNG, WebP, ...; each at most
``limits.max_image_bytes``) and optional ``timestamps_ms`` (one per frame: repeated text parts, or
one part holding a comma-separated or JSON list), or one ``video`` file part (a short clip, dated
by its presentation times and sampled at ``antispoofing.session_video_fps``). The body budget is
``max_frames_per_request`` frames' worth, at most ``intake.max_body_bytes``.

Refusals: ``VALIDATION_ERROR`` (broken multipart, both or neither kind of part, unknown fields,
timestamps that are not numbers or do not match the frames), ``TOO_MANY_FRAMES`` (413), the video
errors of :mod:`facesocial.video.probe`, ``IMAGE_TOO_LARGE`` (413) for a frame over the limit.
"""

from __future__ import annotations

import json
import math
import shutil
import uuid
from pathlib import Path

import cv2
import numpy as np
from fastapi import HTTPException
from starlette.datastructures import UploadFile
from starlette.requests import Request

from facesocial import errors
from facesocial.api.body_limit import allow_body
from facesocial.domains.antispoofing.liveness import InputFrame
from facesocial.settings import Settings
from facesocial.video.frames import FrameReader
from facesocial.video.probe import probe_video

# Frames of a clip are analysed at most this large (longest side): a selfie's face stays well
# above the detector's minimum, and a request never holds more than ~100 MB of pixels.
CLIP_FRAME_SIDE = 640
_COPY_BLOCK = 1024 * 1024


async def read_frames(request: Request, settings: Settings) -> tuple[list[InputFrame], str]:
    """The request's frames (in order) and its input type (``image`` frames or ``video``)."""
    limits = settings.antispoofing
    max_frames = limits.max_frames_per_request
    per_frame = settings.limits.max_image_bytes
    budget = min(settings.intake.max_body_bytes, max(per_frame * 4, settings.video.max_video_bytes // 10))
    allow_body(request.scope, budget)
    frames: list[bytes] = []
    stamps: list[str] = []
    video: UploadFile | None = None
    try:
        async with request.form(
            max_files=max_frames + 2, max_fields=max_frames + 4, max_part_size=64 * 1024
        ) as form:
            for name, value in form.multi_items():
                if name == "frames":
                    if not isinstance(value, UploadFile):
                        raise errors.ValidationFailedError("frames must be file parts", fields=["frames"])
                    if len(frames) >= max_frames:
                        raise errors.TooManyFramesError(f"At most {max_frames} frames per request")
                    data = await value.read(per_frame + 1)
                    if len(data) > per_frame:
                        raise errors.ImageTooLargeError(f"A frame exceeds {per_frame} bytes")
                    if not data:
                        raise errors.EmptyImageError("A frame part is empty")
                    frames.append(data)
                elif name == "timestamps_ms":
                    if not isinstance(value, str):
                        raise errors.ValidationFailedError(
                            "timestamps_ms must be text", fields=["timestamps_ms"]
                        )
                    stamps.append(value)
                elif name == "video":
                    if not isinstance(value, UploadFile) or video is not None:
                        raise errors.ValidationFailedError("Send one video file part", fields=["video"])
                    video = value
                else:
                    raise errors.ValidationFailedError(f"Unknown field {name!r}", fields=[name])
            if video is not None:
                if frames or stamps:
                    raise errors.ValidationFailedError(
                        "Send either frames (with timestamps_ms) or one video, not both",
                        fields=["frames", "video"],
                    )
                return await _clip(video, settings), "video"
    except HTTPException as exc:
        if exc.status_code != 400:
            raise
        raise errors.ValidationFailedError(f"The multipart body was refused: {exc.detail}") from exc
    if not frames:
        raise errors.ValidationFailedError("Send frames (file parts) or a video part", fields=["frames"])
    times = _timestamps(stamps, len(frames))
    return [InputFrame(client_ms=t, data=d) for d, t in zip(frames, times, strict=True)], "image"


# Timestamps beyond this (ms, ~31 years) are no capture time of a session; refusing them keeps
# float arithmetic on the session clock exact.
MAX_TIMESTAMP_MS = 1e12


def _timestamps(raw: list[str], count: int) -> list[float | None]:
    if not raw:
        return [None] * count
    values: list[float] = []
    for text in raw:
        values.extend(_numbers(text.strip()))
    if len(values) != count:
        raise errors.ValidationFailedError(
            f"{len(values)} timestamps for {count} frames: give one per frame", fields=["timestamps_ms"]
        )
    return list(values)


def _numbers(text: str) -> list[float]:
    """One field's numbers: a comma-separated or a flat JSON list of finite numbers ≤ 1e12 ms."""
    refusal = errors.ValidationFailedError(
        "timestamps_ms must be numbers of milliseconds (comma-separated or a JSON list), |t| ≤ 1e12",
        fields=["timestamps_ms"],
    )
    try:
        parsed = (
            json.loads(text) if text.startswith("[") else [float(v) for v in text.split(",") if v.strip()]
        )
    except (ValueError, RecursionError):  # JSONDecodeError is a ValueError; deep nesting recurses
        raise refusal from None
    if not isinstance(parsed, list):
        raise refusal
    values = []
    for item in parsed:
        if isinstance(item, bool) or not isinstance(item, (int, float)):
            raise refusal
        try:
            value = float(item)
        except OverflowError:  # an integer too large for a float
            raise refusal from None
        if not math.isfinite(value) or abs(value) > MAX_TIMESTAMP_MS:
            raise refusal
        values.append(value)
    return values


async def _clip(video: UploadFile, settings: Settings) -> list[InputFrame]:
    from starlette.concurrency import run_in_threadpool

    folder = settings.resolved_spool_dir() / "incoming" / uuid.uuid4().hex
    folder.mkdir(parents=True, exist_ok=True)
    try:
        path = folder / "clip.upload"
        with path.open("wb") as out:
            while block := await video.read(_COPY_BLOCK):
                out.write(block)
        return await run_in_threadpool(_decode_clip, path, settings)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _decode_clip(path: Path, settings: Settings) -> list[InputFrame]:
    limits = settings.antispoofing
    info = probe_video(path, settings.video)
    fps = min(limits.session_video_fps, max(info.fps, 0.1))
    frames: list[InputFrame] = []
    with FrameReader(path, info, fps, limits.max_frames_per_request) as reader:
        for frame in reader:
            rgb: np.ndarray = frame.rgb
            side = max(rgb.shape[:2])
            if side > CLIP_FRAME_SIDE:
                scale = CLIP_FRAME_SIDE / side
                size = (max(1, round(rgb.shape[1] * scale)), max(1, round(rgb.shape[0] * scale)))
                rgb = cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)
            frames.append(InputFrame(client_ms=float(frame.timestamp_ms), rgb=np.ascontiguousarray(rgb)))
    if not frames:
        raise errors.VideoTruncatedError("No frame of the clip could be decoded")
    return frames
