"""probe_video on videos written here with PyAV: every error code, and no 500 for any byte string."""

from __future__ import annotations

import io
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from facesocial import errors
from facesocial.settings import VideoLimits
from facesocial.video.container_sniff import sniff_container
from facesocial.video.probe import clockwise_rotation, probe_video
from facesocial.video.synthetic import write_audio, write_video

LIMITS = VideoLimits()


@pytest.fixture(scope="module")
def samples(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("videos")
    write_video(folder / "mpeg4.mp4")  # 2 s, 30 fps, 128x96, index at the end
    write_video(folder / "h264_faststart.mp4", codec="libx264", faststart=True, seconds=3.0, fps=25)
    write_video(folder / "with_audio.mp4", audio=True)
    write_video(folder / "vp9.webm", codec="libvpx-vp9", container_format="webm")
    write_video(folder / "mpeg4.avi", container_format="avi")
    write_video(folder / "h264.ts", codec="libx264", container_format="mpegts")
    write_video(folder / "phone_rotate90.mp4", display_rotation_ccw=-90)  # a phone's "rotate=90"
    write_video(folder / "anamorphic.mp4", sample_aspect_ratio=Fraction(2, 1))
    write_video(folder / "mjpeg.avi", codec="mjpeg", container_format="avi")
    write_audio(folder / "voice.m4a")
    write_audio(folder / "voice.wav", codec="pcm_s16le")
    buffer = io.BytesIO()
    Image.fromarray(np.full((64, 64, 3), 200, np.uint8)).save(buffer, format="PNG")
    (folder / "image.png").write_bytes(buffer.getvalue())
    buffer = io.BytesIO()
    Image.fromarray(np.full((64, 64, 3), 200, np.uint8)).save(buffer, format="JPEG")
    (folder / "image.jpg").write_bytes(buffer.getvalue())
    (folder / "notes.txt").write_text("hello, this is not a video\n" * 40)
    (folder / "empty.mp4").write_bytes(b"")
    return folder


@pytest.mark.parametrize(
    ("name", "codec", "container", "size", "frames", "fps", "audio"),
    [
        ("mpeg4.mp4", "mpeg4", "mp4", (128, 96), 60, 30.0, False),
        ("h264_faststart.mp4", "h264", "mp4", (128, 96), 75, 25.0, False),
        ("with_audio.mp4", "mpeg4", "mp4", (128, 96), 60, 30.0, True),
        ("vp9.webm", "vp9", "webm", (128, 96), 60, 30.0, False),
        ("mpeg4.avi", "mpeg4", "avi", (128, 96), 60, 30.0, False),
        ("h264.ts", "h264", "mpegts", (128, 96), 60, 30.0, False),
        ("mjpeg.avi", "mjpeg", "avi", (128, 96), 60, 30.0, False),
    ],
)
def test_describes_each_container(
    samples: Path,
    name: str,
    codec: str,
    container: str,
    size: tuple[int, int],
    frames: int,
    fps: float,
    audio: bool,
) -> None:
    path = samples / name
    info = probe_video(path, LIMITS)
    assert (info.codec, info.container, info.has_audio) == (codec, container, audio)
    assert (info.width, info.height) == size
    assert info.rotation_degrees == 0
    assert info.fps == pytest.approx(fps, rel=0.01)
    # MP4 lists its frames; the others are estimated from duration x fps.
    assert abs(info.frame_count - frames) <= 1
    assert info.duration_seconds == pytest.approx(frames / fps, abs=0.1)
    assert info.size_bytes == path.stat().st_size


def test_phone_rotation_gives_upright_size(samples: Path) -> None:
    info = probe_video(samples / "phone_rotate90.mp4", LIMITS)
    # Stored 128x96 landscape, shown turned 90° clockwise: 96 wide, 128 high.
    assert (info.rotation_degrees, info.width, info.height) == (90, 96, 128)


def test_non_square_pixels_are_stretched(samples: Path) -> None:
    info = probe_video(samples / "anamorphic.mp4", LIMITS)
    assert (info.width, info.height) == (256, 96)


@pytest.mark.parametrize(
    ("matrix_ccw", "clockwise"), [(0, 0), (-90, 90), (90, 270), (180, 180), (-180, 180), (-89.6, 90)]
)
def test_display_matrix_angle_to_clockwise(matrix_ccw: float, clockwise: int) -> None:
    assert clockwise_rotation(matrix_ccw) == clockwise


@pytest.mark.parametrize(
    ("name", "code", "status"),
    [
        ("empty.mp4", "EMPTY_VIDEO", 400),
        ("voice.m4a", "NO_VIDEO_STREAM", 422),
        ("voice.wav", "NO_VIDEO_STREAM", 422),
        ("image.png", "UNSUPPORTED_VIDEO", 415),
        ("image.jpg", "UNSUPPORTED_VIDEO", 415),
        ("notes.txt", "UNSUPPORTED_VIDEO", 415),  # FFmpeg alone opens it as an "ANSI art" video
    ],
)
def test_refusals(samples: Path, name: str, code: str, status: int) -> None:
    with pytest.raises(errors.FaceSocialError) as caught:
        probe_video(samples / name, LIMITS)
    assert (caught.value.code, caught.value.status) == (code, status)


@pytest.mark.parametrize(
    ("limits", "code"),
    [
        (LIMITS.model_copy(update=dict(max_duration_seconds=1.5)), "VIDEO_TOO_LONG"),
        (LIMITS.model_copy(update=dict(max_side=100)), "VIDEO_RESOLUTION_UNSUPPORTED"),
        (LIMITS.model_copy(update=dict(max_frames=59)), "VIDEO_TOO_MANY_FRAMES"),
    ],
)
@pytest.mark.parametrize("name", ["mpeg4.mp4", "vp9.webm"])
def test_limits(samples: Path, name: str, limits: VideoLimits, code: str) -> None:
    with pytest.raises(errors.FaceSocialError) as caught:
        probe_video(samples / name, limits)
    assert caught.value.code == code and caught.value.status == 422


def test_limits_just_met_pass(samples: Path) -> None:
    limits = LIMITS.model_copy(update=dict(max_duration_seconds=2.0, max_side=128, max_frames=60))
    assert probe_video(samples / "mpeg4.mp4", limits).frame_count == 60


def test_webm_over_frame_estimate_is_counted_not_guessed(tmp_path: Path) -> None:
    # WebM does not list its frames: 5 frames over 2 s at a nominal 30 fps are estimated at 61.
    path = write_video(
        tmp_path / "sparse.webm", codec="libvpx-vp9", container_format="webm", frame_times=[0, 0.5, 1, 1.5, 2]
    )
    assert probe_video(path, LIMITS).frame_count == 61
    # An estimate over the limit is checked by counting the packets, not refused on a guess.
    counted = probe_video(path, LIMITS.model_copy(update=dict(max_frames=10)))
    assert counted.frame_count == 5 and counted.duration_seconds == pytest.approx(2.03, abs=0.05)


@pytest.mark.parametrize(
    "name", ["mpeg4.mp4", "h264_faststart.mp4", "with_audio.mp4", "vp9.webm", "mpeg4.avi"]
)
@pytest.mark.parametrize("fraction", [0.05, 0.25, 0.5, 0.75, 0.95, 0.995])
def test_truncated_files_are_told_apart(samples: Path, tmp_path: Path, name: str, fraction: float) -> None:
    data = (samples / name).read_bytes()
    cut = tmp_path / "cut"
    cut.write_bytes(data[: int(len(data) * fraction)])
    with pytest.raises(errors.FaceSocialError) as caught:
        probe_video(cut, LIMITS)
    assert caught.value.code == "VIDEO_TRUNCATED", caught.value.message
    assert str(cut) not in caught.value.message  # no server paths in client messages


def test_mp4_cut_in_half_says_why(samples: Path, tmp_path: Path) -> None:
    data = (samples / "mpeg4.mp4").read_bytes()
    cut = tmp_path / "half.mp4"
    cut.write_bytes(data[: len(data) // 2])
    shape = sniff_container(cut)
    assert (shape.kind, shape.complete) == ("mp4", False)
    assert "mdat" in shape.detail  # the media data box runs past the end; no moov after it


def test_fuzz_never_escapes_as_a_500(samples: Path, tmp_path: Path) -> None:
    """Random bytes, random bytes behind real headers, and real files with bytes overwritten."""
    rng = np.random.default_rng(8)
    originals = [(samples / n).read_bytes() for n in ("mpeg4.mp4", "h264_faststart.mp4", "vp9.webm")]
    cases: list[bytes] = [rng.bytes(int(rng.integers(1, 20_000))) for _ in range(40)]
    cases += [data[:64] + rng.bytes(4000) for data in originals]
    cases += [b"\x00" * 1000, b"\x00\x00\x00\x08ftyp", b"\x1a\x45\xdf\xa3\x01", b"RIFF\xff\xff\xff\xffAVI "]
    for _ in range(30):
        data = bytearray(originals[int(rng.integers(len(originals)))])
        start = int(rng.integers(0, len(data) - 64))
        data[start : start + 64] = rng.bytes(64)
        cases.append(bytes(data))
    outcomes: dict[str, int] = {}
    for number, data in enumerate(cases):
        path = tmp_path / f"case{number}"
        path.write_bytes(data)
        try:
            probe_video(path, LIMITS)
            outcome = "ok"
        except errors.FaceSocialError as exc:  # anything else fails the test (a 500)
            assert 400 <= exc.status < 500, exc
            outcome = exc.code
        outcomes[outcome] = outcomes.get(outcome, 0) + 1
    assert outcomes.get("UNSUPPORTED_VIDEO", 0) >= 40  # the random ones at least
