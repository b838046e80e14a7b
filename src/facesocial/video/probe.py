"""What a video file holds (PyAV/FFmpeg), checked against :class:`VideoLimits` before any analysis.

FFmpeg opens far more than videos: a text file opens as an "ANSI art" video, an image as a
one-frame video, a playlist as a list of other files to fetch. So a file is opened only with an
allow-list of demuxers (the containers of camera and phone videos, and a few audio containers so
that an audio file gets the right answer) and protocols (local files only), and only video streams
with an allow-listed codec count. The verdict comes from the streams found, never from a file name
or a declared Content-Type.

Errors (all :mod:`facesocial.errors`):

* ``EMPTY_VIDEO`` (400): 0 bytes;
* ``UNSUPPORTED_VIDEO`` (415): no allowed container, or a video codec that is not allowed;
* ``NO_VIDEO_STREAM`` (422): a container with audio (or cover art) and no video;
* ``VIDEO_TRUNCATED`` (422): a recognised container whose structure runs past the end of the file
  (:mod:`.container_sniff`), samples indexed beyond the end of the file, or no decodable frame;
* ``VIDEO_TOO_LONG``, ``VIDEO_RESOLUTION_UNSUPPORTED``, ``VIDEO_TOO_MANY_FRAMES`` (422): the limits
  (the longest side is checked coded and as shown, and the pixel aspect ratio must lie within
  1/4..4: frames are decoded at the size shown).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import av.container
import av.stream
import av.video.stream

from facesocial import errors
from facesocial.settings import VideoLimits
from facesocial.video.container_sniff import ContainerShape, sniff_container

# FFmpeg demuxer names (``ffmpeg -demuxers``): "mov" reads MP4/MOV/3GP/M4A, "matroska" reads
# MKV/WebM. The audio ones are here only so that an audio file is told "no video stream".
ACCEPTED_DEMUXERS = ("mov", "matroska", "avi", "mpegts", "ogg", "wav", "mp3", "flac")
# Decoders of camera, phone, screen-recording and web video. FFmpeg names decoders, not formats:
# AV1 is decoded by libdav1d in the PyAV wheels.
ACCEPTED_VIDEO_CODECS = frozenset(
    {
        "h264",
        "hevc",
        "vp8",
        "vp9",
        "av1",
        "libdav1d",
        "mpeg4",
        "mpeg2video",
        "mpeg1video",
        "mjpeg",
        "h263",
        "prores",
        "theora",
    }
)
# Decoders FFmpeg may open while reading stream parameters (avformat_find_stream_info decodes a
# few packets): the video ones above and common audio codecs; nothing else runs on upload bytes.
_PROBE_DECODERS = sorted(
    ACCEPTED_VIDEO_CODECS
    | {"aac", "mp3", "mp3float", "opus", "libopus", "vorbis", "flac", "alac", "ac3", "eac3"}
    | {"amrnb", "amrwb", "pcm_s16le", "pcm_s24le", "pcm_f32le", "pcm_u8", "pcm_alaw", "pcm_mulaw"}
)
_OPEN_OPTIONS = {
    "format_whitelist": ",".join(ACCEPTED_DEMUXERS),
    "protocol_whitelist": "file",
    "codec_whitelist": ",".join(_PROBE_DECODERS),
}
# Names shown for FFmpeg's multi-format demuxers when the signature did not say more.
_CONTAINER_NAMES = {"mov": "mp4", "matroska": "matroska"}


@dataclass(frozen=True, slots=True)
class VideoInfo:
    """One video stream of a file, as its container describes it.

    * ``duration_seconds`` (> 0): of the video stream when the container says, else of the file;
    * ``fps``: average frames per second (``avg_frame_rate``; for variable frame rate the mean);
    * ``width``, ``height``: pixels of the upright picture as shown (rotation applied, non-square
      pixels stretched to square) — the size of :class:`~facesocial.video.frames.Frame` ``rgb``;
    * ``frame_count``: exact when the container lists its frames (MP4, MOV), else
      ``round(duration_seconds * fps)`` (Matroska, WebM, MPEG-TS), or counted from the packets
      when the container gives no duration;
    * ``codec``: FFmpeg's decoder name ("h264", "hevc", "vp9", ...);
    * ``container``: "mp4", "mov", "matroska", "webm", "avi", "mpegts", "ogg";
    * ``has_audio``: an audio stream is present (it is never decoded);
    * ``rotation_degrees``: 0, 90, 180 or 270, clockwise — how far the stored picture is turned
      for display (a phone's "rotate" tag; from the display matrix of the first frame);
    * ``size_bytes``: of the file;
    * ``stream_index``: which stream of the file this is (the first video stream that is not cover art).
    """

    duration_seconds: float
    fps: float
    width: int
    height: int
    frame_count: int
    codec: str
    container: str
    has_audio: bool
    rotation_degrees: int
    size_bytes: int
    stream_index: int = 0

    def summary(self) -> dict[str, Any]:
        """What a job's record and answer say of its video: duration (s), fps, upright size (px),
        frame count, codec and container."""
        return {
            "duration_seconds": self.duration_seconds,
            "fps": self.fps,
            "width": self.width,
            "height": self.height,
            "frame_count": self.frame_count,
            "codec": self.codec,
            "container": self.container,
        }


def open_container(path: Path) -> av.container.InputContainer:
    """Open ``path`` with the allowed demuxers, protocols and probe decoders only.

    Raises ``UNSUPPORTED_VIDEO``, or ``VIDEO_TRUNCATED`` when the file starts like a known
    container but FFmpeg cannot read it.
    """
    try:
        return av.open(str(path), "r", options=dict(_OPEN_OPTIONS), metadata_errors="replace")
    except (av.FFmpegError, OSError, EOFError, ValueError) as exc:
        raise _unreadable(sniff_container(path), exc) from exc


def probe_video(path: Path, limits: VideoLimits) -> VideoInfo:
    """Describe ``path``'s video stream and check it against ``limits``.

    Cost: the container's header, one decoded frame (for the rotation, and to know that the
    stream decodes), and a read of the packet headers only when the container gives no duration
    or its frame estimate is over ``limits.max_frames`` (then counted, not guessed).
    Raises the errors listed in the module docstring.
    """
    size = path.stat().st_size
    if size == 0:
        raise errors.EmptyVideoError()
    shape = sniff_container(path)
    if shape.complete is False:
        raise _truncated(shape.detail)
    container = open_container(path)
    try:
        return _describe(container, path, size, shape, limits)
    except (av.FFmpegError, OSError, EOFError, ValueError) as exc:
        raise _unreadable(shape, exc) from exc
    finally:
        container.close()


def _describe(
    container: av.container.InputContainer, path: Path, size: int, shape: ContainerShape, limits: VideoLimits
) -> VideoInfo:
    stream = _video_stream(container, shape)
    # No codec context: FFmpeg has no decoder for the stream's codec at all.
    codec = stream.codec_context.name if stream.codec_context is not None else "unknown"
    if codec not in ACCEPTED_VIDEO_CODECS:
        raise errors.UnsupportedVideoError(f"The video codec {codec!r} is not supported", codec=codec)
    coded_width, coded_height = stream.codec_context.width, stream.codec_context.height
    if coded_width <= 0 or coded_height <= 0:
        raise _unreadable(shape, None)
    if max(coded_width, coded_height) > limits.max_side:
        raise errors.VideoResolutionUnsupportedError(
            f"The video is {coded_width}x{coded_height}; the longest side may be {limits.max_side} px",
            width=coded_width,
            height=coded_height,
            max_side=limits.max_side,
        )
    _check_display_size(coded_width, coded_height, stream.sample_aspect_ratio, limits)
    if shape.kind in ("mp4", "mov"):
        _check_samples_in_file(stream, size)
    duration, fps, frames, exact = _timing(container, stream)
    if duration is None or (not exact and frames > limits.max_frames):
        duration, frames = _count_packets(path, stream.index, limits, duration)
        if fps <= 0 and duration > 0:
            fps = frames / duration
    if duration > limits.max_duration_seconds:
        raise errors.VideoTooLongError(
            f"The video lasts {duration:.1f} s; the limit is {limits.max_duration_seconds:g} s",
            duration_seconds=round(duration, 3),
            max_duration_seconds=limits.max_duration_seconds,
        )
    if frames > limits.max_frames:
        raise errors.VideoTooManyFramesError(
            f"The video has {frames} frames; the limit is {limits.max_frames}",
            frame_count=frames,
            max_frames=limits.max_frames,
        )
    rotation = _first_frame_rotation(container, stream)
    width, height = display_size(coded_width, coded_height, stream.sample_aspect_ratio, rotation)
    return VideoInfo(
        duration_seconds=duration,
        fps=fps,
        width=width,
        height=height,
        frame_count=frames,
        codec=codec,
        container=shape.kind or _container_name(container.format.name),
        has_audio=any(s.type == "audio" for s in container.streams),
        rotation_degrees=rotation,
        size_bytes=size,
        stream_index=stream.index,
    )


# Pixel aspect ratios (width/height of one stored pixel) accepted: real anamorphic formats stay
# within 1/2..2 (DV 16:11 and 10:11, HDV 4:3, 2:1 "squeeze" lenses); beyond 1/4..4 a file only
# multiplies the decoded frame's size (a 64:1 ``pasp`` box turns 256 coded px into 16384).
MAX_PIXEL_ASPECT = 4


def _check_display_size(
    coded_width: int, coded_height: int, sample_aspect_ratio: Fraction | None, limits: VideoLimits
) -> None:
    """Refuse (``VIDEO_RESOLUTION_UNSUPPORTED``) a pixel aspect ratio outside
    1/:data:`MAX_PIXEL_ASPECT`..:data:`MAX_PIXEL_ASPECT`, or a picture whose longest side *as
    shown* (the size frames are decoded at, video/frames.py) exceeds ``limits.max_side``."""
    width, height = display_size(coded_width, coded_height, sample_aspect_ratio, 0)
    aspect = float(sample_aspect_ratio) if sample_aspect_ratio and sample_aspect_ratio > 0 else 1.0
    if not 1 / MAX_PIXEL_ASPECT <= aspect <= MAX_PIXEL_ASPECT or max(width, height) > limits.max_side:
        raise errors.VideoResolutionUnsupportedError(
            f"The video is shown at {width}x{height} (pixel aspect ratio {aspect:g}); the longest "
            f"side may be {limits.max_side} px, the pixel aspect ratio 1/{MAX_PIXEL_ASPECT} to "
            f"{MAX_PIXEL_ASPECT}",
            width=width,
            height=height,
            max_side=limits.max_side,
        )


def display_size(
    coded_width: int, coded_height: int, sample_aspect_ratio: Fraction | None, rotation_degrees: int
) -> tuple[int, int]:
    """Width and height as shown: non-square pixels stretched to square, then turned upright.

    ``sample_aspect_ratio`` is the pixel's width/height (None or 0: square). Anamorphic video
    (DV, DVD: 720x576 shown as 1024x576) is stretched horizontally, never shrunk.
    """
    width = coded_width
    if sample_aspect_ratio and sample_aspect_ratio > 0 and sample_aspect_ratio != 1:
        width = max(1, round(coded_width * float(sample_aspect_ratio)))
    return (coded_height, width) if rotation_degrees in (90, 270) else (width, coded_height)


def _container_name(demuxer: str) -> str:
    return _CONTAINER_NAMES.get(demuxer.split(",")[0], demuxer)


def _video_stream(
    container: av.container.InputContainer, shape: ContainerShape
) -> av.video.stream.VideoStream:
    cover_art = av.stream.Disposition.attached_pic
    videos = [s for s in container.streams.video if not s.disposition & cover_art]
    if videos:
        return videos[0]
    if container.streams.audio or container.streams.video:
        raise errors.NoVideoStreamError()
    # Opened, yet neither audio nor video: garbage that a demuxer half-accepted, or a cut file.
    raise _unreadable(shape, None)


def _timing(
    container: av.container.InputContainer, stream: av.video.stream.VideoStream
) -> tuple[float | None, float, int, bool]:
    """(duration s or None, fps or 0, frame count, whether the count is the container's own)."""
    duration: float | None = None
    if stream.duration and stream.time_base and stream.duration > 0:
        duration = float(stream.duration * stream.time_base)
    elif container.duration and container.duration > 0:
        duration = container.duration / av.time_base
    fps = 0.0
    for rate in (stream.average_rate, stream.guessed_rate, stream.base_rate):
        if rate and rate > 0:
            fps = float(rate)
            break
    if stream.frames > 0:
        return duration, fps, stream.frames, True
    estimate = round(duration * fps) if duration is not None else 0
    return duration, fps, estimate, False


def _count_packets(path: Path, index: int, limits: VideoLimits, duration: float | None) -> tuple[float, int]:
    """Frames and duration of stream ``index`` from its packets (headers only, nothing decoded).

    Reads a fresh handle of the file (no seeking back: not every container can). Stops as soon
    as either figure passes its limit (the caller then refuses the video).
    """
    count, first, last = 0, math.inf, -math.inf
    with open_container(path) as container:
        stream = container.streams[index]
        time_base = stream.time_base or Fraction(1, 90_000)
        for packet in container.demux(stream):
            if packet.size == 0:
                continue  # the demuxer's end-of-stream marker
            count += 1
            if packet.pts is not None:
                start = float(packet.pts * time_base)
                first = min(first, start)
                last = max(last, start + float((packet.duration or 0) * time_base))
            if count > limits.max_frames or (last - first) > limits.max_duration_seconds:
                break
    counted = last - first if last > first else 0.0
    return (counted if counted > 0 else (duration or 0.0)), count


def _check_samples_in_file(stream: av.video.stream.VideoStream, size: int) -> None:
    """MP4/MOV list every sample's byte range: one past the end of the file means a cut file."""
    for entry in stream.index_entries:
        if entry.pos + entry.size > size:
            raise _truncated(
                f"frames are indexed up to byte {entry.pos + entry.size}, the file has {size} bytes"
            )


def _first_frame_rotation(container: av.container.InputContainer, stream: av.video.stream.VideoStream) -> int:
    """Clockwise display rotation (0/90/180/270) from the first decoded frame's display matrix."""
    for frame in container.decode(stream):
        return clockwise_rotation(frame.rotation)
    raise _truncated("no frame could be decoded")


def clockwise_rotation(counter_clockwise: float) -> int:
    """FFmpeg's display-matrix angle (counter-clockwise, −180..180) as 0/90/180/270 clockwise."""
    return int(-round(counter_clockwise / 90.0) * 90) % 360


def _unreadable(shape: ContainerShape, exc: BaseException | None) -> errors.FaceSocialError:
    if shape.kind is not None:
        reason = shape.detail or (f"FFmpeg: {_reason(exc)}" if exc is not None else "no readable stream")
        return _truncated(reason)
    return errors.UnsupportedVideoError()


def _reason(exc: BaseException) -> str:
    # FFmpeg's messages end with the file's path: a client must not learn where uploads are kept.
    if isinstance(exc, av.FFmpegError) and exc.strerror:
        return str(exc.strerror)
    return type(exc).__name__


def _truncated(detail: str) -> errors.FaceSocialError:
    return errors.VideoTruncatedError(f"The video data is truncated or corrupt: {detail}")
