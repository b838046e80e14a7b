"""Sampled frames of a probed video: decoded with PyAV, chosen by presentation time, upright.

One frame is kept per ``1/sample_fps`` seconds of presentation time (the first decoded frame of
each slot ``floor((t - t_first) * sample_fps)``), so variable-frame-rate video (phones) is
sampled evenly in time, not every n-th frame. Only the frames kept are converted to RGB; at most
the frame being decoded and the one handed out are in memory (plus the decoder's own reference
frames).

A decode or read error after some frames stops the iteration and sets
:attr:`FrameReader.truncated` (the frames before it are still good); before the first frame it
raises ``VIDEO_TRUNCATED``. A stream that goes on well past what its header declared (more than
twice its frames, or two seconds past its duration) is cut there and :attr:`FrameReader.overrun`
is set: the limits were checked against the header.
"""

from __future__ import annotations

import math
from collections.abc import Generator, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

import av
import av.container
import av.video.frame
import av.video.stream
import numpy as np
import numpy.typing as npt

from facesocial import errors
from facesocial.settings import VideoLimits
from facesocial.video.probe import VideoInfo, open_container

# Slot arithmetic tolerance (seconds·fps): a frame stamped 0.49999 s at 2 fps belongs to slot 1.
_SLOT_EPSILON = 1e-6
# How far past its header a stream may run before it is cut (see the module docstring).
_OVERRUN_SECONDS = 2.0


@dataclass(frozen=True, slots=True)
class Frame:
    """One sampled frame.

    ``index``: the frame's number in the source (0-based, presentation order);
    ``timestamp_ms``: its presentation time from the start of the video stream (≥ 0);
    ``rgb``: (H, W, 3) uint8, upright per the rotation metadata, square pixels — H, W are the
    probe's ``height``, ``width``.
    """

    index: int
    timestamp_ms: int
    rgb: npt.NDArray[np.uint8]


def effective_sample_fps(requested: float | None, limits: VideoLimits, info: VideoInfo) -> float:
    """The sample rate to use (frames analysed per second of video).

    ``requested`` (default ``limits.default_sample_fps``) is clamped to ``limits.max_sample_fps``
    and to the video's own frame rate, then lowered so that at most ``limits.max_analyzed_frames``
    frames are analysed over ``info.duration_seconds``. Raises ``VALIDATION_ERROR`` when
    ``requested`` is not a positive finite number.
    """
    fps = limits.default_sample_fps if requested is None else requested
    if not math.isfinite(fps) or fps <= 0:
        raise errors.ValidationFailedError("sample_fps must be a positive number", fields=["sample_fps"])
    fps = min(fps, limits.max_sample_fps)
    if info.fps > 0:
        fps = min(fps, info.fps)
    if info.duration_seconds > 0:
        fps = min(fps, limits.max_analyzed_frames / info.duration_seconds)
    return fps


def planned_samples(info: VideoInfo, sample_fps: float, max_frames: int) -> int:
    """How many frames :func:`iter_frames` will yield (for progress reports).

    Exact for constant frame rate; an estimate for variable frame rate or a cut file.
    """
    if info.frame_count <= 0 or sample_fps <= 0:
        return 0
    last_frame_time = max(0.0, info.duration_seconds - (1.0 / info.fps if info.fps > 0 else 0.0))
    slots = math.floor(last_frame_time * sample_fps + _SLOT_EPSILON) + 1
    return max(0, min(slots, info.frame_count, max_frames))


class FrameReader(Iterator[Frame]):
    """Iterator over the sampled frames of one video; also a context manager (closes the file).

    After (or during) the iteration: ``decoded_frames`` (frames decoded so far), ``sampled_frames``
    (frames yielded), ``truncated`` (a decode/read error stopped it after some frames; ``error``
    says which), ``overrun`` (the stream ran past its header and was cut).
    """

    def __init__(
        self, path: Path, info: VideoInfo, sample_fps: float, max_frames: int, *, threads: int = 0
    ) -> None:
        if sample_fps <= 0:
            raise ValueError("sample_fps must be positive")
        self.path = path
        self.info = info
        self.sample_fps = sample_fps
        self.max_frames = max_frames
        self.threads = threads
        self.decoded_frames = 0
        self.sampled_frames = 0
        self.truncated = False
        self.overrun = False
        self.error: str | None = None
        self._container: av.container.InputContainer | None = None
        self._frames = self._generate()

    def __next__(self) -> Frame:
        return next(self._frames)

    def __iter__(self) -> FrameReader:
        return self

    def __enter__(self) -> FrameReader:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        """Stop decoding and close the file (also done when the iteration ends)."""
        self._frames.close()
        if self._container is not None:
            self._container.close()
            self._container = None

    def _generate(self) -> Generator[Frame, None, None]:
        if self.max_frames <= 0:
            return
        container = self._container = open_container(self.path)
        try:
            yield from self._decode(container)
        finally:
            container.close()
            self._container = None

    def _decode(self, container: av.container.InputContainer) -> Iterator[Frame]:
        stream = container.streams[self.info.stream_index]
        if not isinstance(stream, av.video.stream.VideoStream):
            raise errors.UnsupportedVideoError("The probed video stream is not in the file")
        stream.thread_type = "AUTO"  # frame and slice threads
        stream.codec_context.thread_count = self.threads
        origin: float | None = None
        if stream.start_time is not None and stream.time_base:
            origin = float(stream.start_time * stream.time_base)
        frame_step = 1.0 / self.info.fps if self.info.fps > 0 else 0.0
        decode_cap = 2 * max(self.info.frame_count, 1) + 2 * math.ceil(self.info.fps) + 60
        time_cap = self.info.duration_seconds + _OVERRUN_SECONDS
        first: float | None = None
        previous: float | None = None
        last_slot = -1
        # AVI has no presentation times (see below): number its frames by decode position.
        by_position = "avi" in container.format.name.split(",") and frame_step > 0
        frames = _decoded(container, stream)
        while True:
            try:
                frame = next(frames)
            except StopIteration:
                return
            except (av.FFmpegError, OSError, EOFError, ValueError) as exc:
                if self.decoded_frames == 0:
                    raise errors.VideoTruncatedError(
                        "The video data is truncated or corrupt: no frame could be decoded"
                    ) from exc
                self.truncated = True
                self.error = _reason(exc)
                return
            index = self.decoded_frames
            self.decoded_frames += 1
            when = frame.time
            if by_position or (when is not None and previous is not None and when <= previous):
                # Decoded frames come in presentation order, so a time that does not move forward
                # is a made-up one (AVI stores no presentation times; with B-frames FFmpeg's guesses
                # come out as 1, 4, 3, 5, 2, ... frame periods): from here on, time = position.
                by_position = by_position or frame_step > 0
                when = (previous + frame_step) if previous is not None else 0.0
            elif when is None:  # no timestamp: one frame after the previous one
                when = (previous + frame_step) if previous is not None else 0.0
            previous = when
            if origin is None:
                origin = when
            if first is None:
                first = when
            elapsed = when - origin
            if self.decoded_frames > decode_cap or elapsed > time_cap:
                self.overrun = True
                return
            slot = math.floor((when - first) * self.sample_fps + _SLOT_EPSILON)
            if slot <= last_slot:
                continue
            last_slot = slot
            self.sampled_frames += 1
            yield Frame(index, max(0, round(elapsed * 1000)), self._upright(frame))
            if self.sampled_frames >= self.max_frames:
                return

    def _upright(self, frame: av.video.frame.VideoFrame) -> npt.NDArray[np.uint8]:
        info = self.info
        turned = info.rotation_degrees in (90, 270)
        width, height = (info.height, info.width) if turned else (info.width, info.height)
        if (frame.width, frame.height) != (width, height):
            # Non-square pixels (and, rarely, a mid-stream size change): scaled to the probed size.
            rgb = frame.to_ndarray(format="rgb24", width=width, height=height)
        else:
            rgb = frame.to_ndarray(format="rgb24")
        if info.rotation_degrees:
            # np.rot90 turns counter-clockwise; the picture must turn clockwise by the rotation.
            rgb = np.rot90(rgb, k=-(info.rotation_degrees // 90))
        return np.ascontiguousarray(rgb, dtype=np.uint8)


def iter_frames(path: Path, info: VideoInfo, sample_fps: float, max_frames: int) -> FrameReader:
    """The sampled frames of ``path`` (probed as ``info``): at most ``max_frames``, one per
    ``1/sample_fps`` s of presentation time. Iterate the returned :class:`FrameReader`; read its
    ``truncated`` flag afterwards. Raises ``VIDEO_TRUNCATED`` when no frame decodes at all."""
    return FrameReader(path, info, sample_fps, max_frames)


def _decoded(
    container: av.container.InputContainer, stream: av.video.stream.VideoStream
) -> Iterator[av.video.frame.VideoFrame]:
    for packet in container.demux(stream):
        yield from stream.decode(packet)


def _reason(exc: BaseException) -> str:
    if isinstance(exc, av.FFmpegError) and exc.strerror:
        return str(exc.strerror)
    return type(exc).__name__
