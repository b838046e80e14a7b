"""Frame sampling by presentation time, upright frames, truncation mid-stream, the sample-rate rules."""

from __future__ import annotations

import dataclasses
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from facesocial import errors
from facesocial.settings import VideoLimits
from facesocial.video.frames import FrameReader, effective_sample_fps, iter_frames, planned_samples
from facesocial.video.probe import VideoInfo, probe_video
from facesocial.video.synthetic import frame_pattern, read_pattern, write_video

LIMITS = VideoLimits()
RED = np.array([255, 0, 0])


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("frames")


@pytest.fixture(scope="module")
def clip(folder: Path) -> Path:
    return write_video(folder / "clip.mp4", seconds=2.0, fps=30)


def sampled(
    path: Path, sample_fps: float, max_frames: int = 1000
) -> tuple[list[tuple[int, int, int]], FrameReader]:
    info = probe_video(path, LIMITS)
    reader = iter_frames(path, info, sample_fps, max_frames)
    rows = [(frame.index, frame.timestamp_ms, read_pattern(frame.rgb)) for frame in reader]
    return rows, reader


def test_30fps_sampled_at_2fps_every_500ms(clip: Path) -> None:
    rows, reader = sampled(clip, 2.0)
    # (source frame number, ms, the frame number painted into that frame's pixels)
    assert rows == [(0, 0, 0), (15, 500, 15), (30, 1000, 30), (45, 1500, 45)]
    assert (reader.decoded_frames, reader.sampled_frames, reader.truncated, reader.overrun) == (
        60,
        4,
        False,
        False,
    )


def test_sampling_at_the_source_rate_keeps_every_frame(clip: Path) -> None:
    rows, _ = sampled(clip, 30.0)
    assert [r[0] for r in rows] == list(range(60)) == [r[2] for r in rows]
    assert [r[1] for r in rows] == [round(i * 1000 / 30) for i in range(60)]


def test_max_frames_stops_early(clip: Path) -> None:
    rows, reader = sampled(clip, 10.0, max_frames=3)
    assert [r[1] for r in rows] == [0, 100, 200]
    assert reader.decoded_frames == 7  # it stopped decoding at the third sample


def test_variable_frame_rate_is_sampled_by_time(folder: Path) -> None:
    times = [0.0, 0.1, 0.15, 0.2, 0.9, 1.0, 1.05, 1.6, 2.0]
    path = write_video(folder / "vfr.mp4", frame_times=times)
    rows, _ = sampled(path, 2.0)
    # Slots of 500 ms: 0.0 | 0.9 | 1.0 | 1.6 | 2.0 (the first frame of each slot).
    assert rows == [(0, 0, 0), (4, 900, 4), (5, 1000, 5), (7, 1600, 7), (8, 2000, 8)]


@pytest.mark.parametrize(
    ("matrix_ccw", "red_corner"),
    [(-90, "top-right"), (90, "bottom-left"), (180, "bottom-right"), (None, "top-left")],
)
def test_frames_come_out_upright(folder: Path, matrix_ccw: int | None, red_corner: str) -> None:
    # The stored picture has its red square top-left; shown turned 90° clockwise (a phone's
    # rotate=90, display matrix −90), that corner is at the top right.
    path = write_video(folder / f"rot{matrix_ccw}.mp4", display_rotation_ccw=matrix_ccw)
    info = probe_video(path, LIMITS)
    frame = next(iter_frames(path, info, 2.0, 1))
    height, width = frame.rgb.shape[:2]
    assert (width, height) == (info.width, info.height)
    corners = {
        "top-left": frame.rgb[3, 3],
        "top-right": frame.rgb[3, width - 4],
        "bottom-left": frame.rgb[height - 4, 3],
        "bottom-right": frame.rgb[height - 4, width - 4],
    }
    for name, pixel in corners.items():
        is_red = bool(np.abs(pixel.astype(int) - RED).max() < 40)
        assert is_red == (name == red_corner), (name, pixel)


def test_non_square_pixels_come_out_stretched(folder: Path) -> None:
    path = write_video(folder / "sar.mp4", sample_aspect_ratio=Fraction(2, 1))
    info = probe_video(path, LIMITS)
    frame = next(iter_frames(path, info, 2.0, 1))
    assert frame.rgb.shape == (96, 256, 3) and frame.rgb.dtype == np.uint8


def _blank_packets(source: Path, target: Path, first: int) -> Path:
    """A copy of ``source`` whose video packets from number ``first`` on are 0xFF bytes."""
    with av.open(str(source)) as container:
        entries = [(e.pos, e.size) for e in container.streams.video[0].index_entries]
    data = bytearray(source.read_bytes())
    for pos, size in entries[first:]:
        data[pos : pos + size] = b"\xff" * size
    target.write_bytes(bytes(data))
    return target


@pytest.mark.parametrize("codec", ["mpeg4", "libx264"])
def test_decode_error_mid_stream_stops_and_flags(folder: Path, codec: str) -> None:
    source = write_video(folder / f"{codec}.mp4", codec=codec)
    info = probe_video(source, LIMITS)
    broken = _blank_packets(source, folder / f"{codec}-broken.mp4", first=30)
    reader = iter_frames(broken, info, 30.0, 1000)
    frames = list(reader)
    assert len(frames) == 30 and reader.truncated and reader.error
    assert [read_pattern(f.rgb) for f in frames] == list(range(30))  # the good ones are intact


def test_decode_error_before_any_frame_raises(folder: Path, clip: Path) -> None:
    info = probe_video(clip, LIMITS)
    broken = _blank_packets(clip, folder / "all-broken.mp4", first=0)
    with pytest.raises(errors.FaceSocialError) as caught:
        list(iter_frames(broken, info, 2.0, 10))
    assert caught.value.code == "VIDEO_TRUNCATED"


def test_a_stream_longer_than_its_header_is_cut(folder: Path) -> None:
    path = write_video(folder / "four-seconds.mp4", seconds=4.0)
    lying = dataclasses.replace(probe_video(path, LIMITS), duration_seconds=0.5, frame_count=15)
    reader = iter_frames(path, lying, 2.0, 1000)
    stamps = [frame.timestamp_ms for frame in reader]
    assert reader.overrun and stamps == [0, 500, 1000, 1500, 2000, 2500]  # cut after 0.5 + 2 s


def test_closing_early_releases_the_file(clip: Path) -> None:
    info = probe_video(clip, LIMITS)
    with iter_frames(clip, info, 30.0, 1000) as reader:
        next(reader)
    assert reader.decoded_frames == 1
    with pytest.raises(StopIteration):
        next(reader)


def _info(duration: float, fps: float) -> VideoInfo:
    return VideoInfo(duration, fps, 64, 64, round(duration * fps), "h264", "mp4", False, 0, 1000)


@pytest.mark.parametrize(
    ("requested", "info", "expected"),
    [
        (None, _info(10, 30), 2.0),  # the default
        (5.0, _info(10, 30), 5.0),
        (50.0, _info(10, 30), 10.0),  # clamped to max_sample_fps
        (8.0, _info(10, 5), 5.0),  # never above the video's own rate
        (None, _info(600, 30), 1.0),  # 600 frames at most over 600 s
        (10.0, _info(120, 30), 5.0),
    ],
)
def test_effective_sample_fps(requested: float | None, info: VideoInfo, expected: float) -> None:
    assert effective_sample_fps(requested, LIMITS, info) == pytest.approx(expected)
    assert planned_samples(info, effective_sample_fps(requested, LIMITS, info), 10**6) <= 600


@pytest.mark.parametrize("requested", [0.0, -1.0, float("nan"), float("inf")])
def test_effective_sample_fps_refuses_nonsense(requested: float) -> None:
    with pytest.raises(errors.FaceSocialError) as caught:
        effective_sample_fps(requested, LIMITS, _info(10, 30))
    assert caught.value.code == "VALIDATION_ERROR"


@pytest.mark.parametrize(
    ("sample_fps", "max_frames"), [(2.0, 1000), (30.0, 1000), (7.0, 1000), (10.0, 3), (0.4, 10)]
)
def test_planned_samples_matches_what_is_yielded(clip: Path, sample_fps: float, max_frames: int) -> None:
    info = probe_video(clip, LIMITS)
    assert planned_samples(info, sample_fps, max_frames) == len(
        list(iter_frames(clip, info, sample_fps, max_frames))
    )


def test_avi_with_b_frames_keeps_every_frame_in_order(folder: Path) -> None:
    """AVI stores no presentation times: with B-frames FFmpeg's guesses come out scrambled
    (0.1, 0.4, 0.3, 0.5, 0.2, ... s). Sampling by those times skipped about half the frames of
    PETS09's vtest.avi; the reader numbers AVI frames by decode position instead."""
    path = folder / "bframes.avi"
    with av.open(str(path), "w", format="avi") as container:
        stream = container.add_stream("libx264", rate=10)
        stream.width, stream.height, stream.pix_fmt = 128, 96, "yuv420p"
        stream.options = {"bf": "3", "g": "12"}
        for index in range(40):
            frame = av.VideoFrame.from_ndarray(frame_pattern(index, 128, 96), format="rgb24")
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    with av.open(str(path)) as container:
        guessed = [frame.time for frame in container.decode(video=0)]
    assert guessed != sorted(guessed), "the encoder no longer makes scrambled AVI times: test moot"
    rows, reader = sampled(path, 10.0)
    assert [pattern for _, _, pattern in rows] == list(range(40))
    assert [ms for _, ms, _ in rows] == [100 * i for i in range(40)]
    assert reader.sampled_frames == 40
    rows, _ = sampled(path, 2.0)
    assert [pattern for _, _, pattern in rows] == list(range(0, 40, 5))
