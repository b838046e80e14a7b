"""Small synthetic videos written with PyAV, for tests and benchmarks (no sample files needed).

Every frame shows its own number as 8 black/white blocks along the top (bit 7 first), so a reader
can tell which source frame it got, and a red square in the top-left corner of the upright
picture, so a reader can tell which way up it is.
"""

from __future__ import annotations

from collections.abc import Sequence
from fractions import Fraction
from pathlib import Path

import av
import av.audio.stream
import av.container
import av.video.stream
import numpy as np
import numpy.typing as npt

BITS = 8


def frame_pattern(index: int, width: int, height: int) -> npt.NDArray[np.uint8]:
    """The upright RGB picture (height, width, 3) of frame ``index`` (its low 8 bits shown)."""
    rgb = np.full((height, width, 3), 96, np.uint8)
    block = width // BITS
    band = max(8, height // 4)
    for bit in range(BITS):
        on = (index >> (BITS - 1 - bit)) & 1
        rgb[band : 2 * band, bit * block : (bit + 1) * block] = 255 if on else 0
    corner = max(8, min(width, height) // 5)
    rgb[:corner, :corner] = (255, 0, 0)
    return rgb


def read_pattern(rgb: npt.NDArray[np.uint8]) -> int:
    """The frame number shown by :func:`frame_pattern` (low 8 bits), read from an upright frame."""
    height, width = rgb.shape[:2]
    block = width // BITS
    band = max(8, height // 4)
    value = 0
    for bit in range(BITS):
        patch = rgb[band + 2 : 2 * band - 2, bit * block + 2 : (bit + 1) * block - 2].astype(np.float64)
        value = (value << 1) | int(patch.mean() > 128)
    return value


def write_video(
    path: Path,
    *,
    seconds: float = 2.0,
    fps: int = 30,
    width: int = 128,
    height: int = 96,
    codec: str = "mpeg4",
    container_format: str | None = None,
    display_rotation_ccw: int | None = None,
    frame_times: Sequence[float] | None = None,
    audio: bool = False,
    faststart: bool = False,
    sample_aspect_ratio: Fraction | None = None,
) -> Path:
    """Write a test video; returns ``path``.

    ``width`` x ``height`` is the stored picture. ``display_rotation_ccw`` is passed to PyAV's
    ``set_display_rotation`` (degrees counter-clockwise, FFmpeg's display-matrix convention; a
    phone's "rotate=90" tag is −90). ``frame_times`` (seconds, increasing) make a variable frame
    rate video (time base 1/1000). ``faststart`` puts the MP4 index before the media data.
    """
    options = {"movflags": "faststart"} if faststart else {}
    times = list(frame_times) if frame_times is not None else [i / fps for i in range(round(seconds * fps))]
    with av.open(str(path), "w", format=container_format, options=options) as container:
        stream = container.add_stream(codec, rate=fps)
        assert isinstance(stream, av.video.stream.VideoStream)
        stream.width, stream.height = width, height
        stream.pix_fmt = "yuvj420p" if codec == "mjpeg" else "yuv420p"
        if codec in ("libx264", "h264"):
            stream.options = {"preset": "ultrafast"}
        if sample_aspect_ratio is not None:
            stream.codec_context.sample_aspect_ratio = sample_aspect_ratio
        if frame_times is not None:
            stream.codec_context.time_base = Fraction(1, 1000)
        if display_rotation_ccw is not None:
            stream.set_display_rotation(display_rotation_ccw)
        audio_stream = _add_audio(container, "aac") if audio else None
        for index, when in enumerate(times):
            frame = av.VideoFrame.from_ndarray(frame_pattern(index, width, height), format="rgb24")
            if frame_times is not None:
                frame.pts = round(when * 1000)
                frame.time_base = Fraction(1, 1000)
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
        if audio_stream is not None:
            _write_tone(container, audio_stream, seconds)
    return path


def write_audio(
    path: Path, *, seconds: float = 1.0, codec: str = "aac", container_format: str | None = None
) -> Path:
    """An audio-only file (a 440 Hz tone, mono 16 kHz): ``aac`` in .m4a, ``pcm_s16le`` in .wav."""
    with av.open(str(path), "w", format=container_format) as container:
        _write_tone(container, _add_audio(container, codec), seconds)
    return path


def _add_audio(container: av.container.OutputContainer, codec: str) -> av.audio.stream.AudioStream:
    stream = container.add_stream(codec, rate=16_000)
    assert isinstance(stream, av.audio.stream.AudioStream)
    stream.layout = "mono"
    return stream


def _write_tone(
    container: av.container.OutputContainer, stream: av.audio.stream.AudioStream, seconds: float
) -> None:
    fmt = stream.codec_context.format.name if stream.codec_context.format else "fltp"
    step = 1024
    total = round(seconds * 16_000)
    for start in range(0, total, step):
        t = np.arange(start, min(total, start + step)) / 16_000
        wave = 0.2 * np.sin(2 * np.pi * 440 * t)
        samples = (wave * 32767).astype(np.int16) if fmt.startswith("s16") else wave.astype(np.float32)
        frame = av.AudioFrame.from_ndarray(samples[None, :], format=fmt, layout="mono")
        frame.sample_rate = 16_000
        frame.pts = start
        for packet in stream.encode(frame):
            container.mux(packet)
    for packet in stream.encode():
        container.mux(packet)
