"""The annotated preview MP4: frame count and rate, scaled even size, boxes drawn, none for 0 s."""

from __future__ import annotations

import io
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from facesocial.domains.counting.forms import LineSpec, ZoneSpec
from facesocial.domains.counting.preview import CounterEvent, FrameBoxes, render_preview
from facesocial.settings import VideoLimits
from facesocial.video.frames import iter_frames
from facesocial.video.probe import probe_video
from facesocial.video.synthetic import write_video

ORANGE = np.array([230, 159, 0], dtype=np.float64)  # track 1's colour


def decoded(data: bytes) -> tuple[list[np.ndarray], Fraction | None, str]:
    with av.open(io.BytesIO(data)) as container:
        stream = container.streams.video[0]
        frames = [f.to_ndarray(format="rgb24") for f in container.decode(stream)]
        return frames, stream.average_rate, stream.codec_context.name


@pytest.mark.parametrize(
    ("size", "max_side", "expected"),
    [
        ((128, 96), 640, (128, 96)),  # never enlarged
        ((101, 75), 640, (100, 74)),  # yuv420p: even sides
        ((320, 240), 64, (64, 48)),  # the long side fits max_side
        ((240, 320), 64, (48, 64)),  # portrait too
    ],
)
def test_size_rate_and_frame_count(
    tmp_path: Path, size: tuple[int, int], max_side: int, expected: tuple[int, int]
) -> None:
    path = write_video(
        tmp_path / "video", seconds=3.0, fps=10, width=size[0], height=size[1], container_format="mp4"
    )
    info = probe_video(path, VideoLimits())
    data = render_preview(path, info, 5.0, {}, [], [], [], seconds=2.0, max_side=max_side)
    assert data is not None
    frames, rate, codec = decoded(data)
    assert codec == "h264" and rate == 5
    assert len(frames) == 10  # 2 s at 5 frames/s: plays at the video's speed
    assert frames[0].shape == (expected[1], expected[0], 3)
    assert not (tmp_path / "preview.mp4").exists()  # the work file beside the video is removed


def test_no_preview_for_zero_seconds(tmp_path: Path) -> None:
    path = write_video(tmp_path / "video", seconds=1.0, fps=10, container_format="mp4")
    info = probe_video(path, VideoLimits())
    assert render_preview(path, info, 5.0, {}, [], [], [], seconds=0.0, max_side=640) is None


def test_boxes_lines_and_zones_are_drawn_where_they_are(tmp_path: Path) -> None:
    path = write_video(tmp_path / "video", seconds=1.0, fps=10, width=128, height=96, container_format="mp4")
    info = probe_video(path, VideoLimits())
    with iter_frames(path, info, 5.0, 10) as reader:
        sampled = [(f.index, f.rgb) for f in reader]
    box = FrameBoxes(np.array([[20, 30, 60, 90]], np.float32), np.array([1], np.int64))
    boxes = {index: box for index, _ in sampled}
    line = LineSpec("door", (0.0, 10.0), (128.0, 10.0))
    zone = ZoneSpec("z", ((100.0, 40.0), (120.0, 40.0), (120.0, 80.0)))
    events = [CounterEvent(0, "door", None, "in")]
    data = render_preview(path, info, 5.0, boxes, [line], [zone], events, seconds=1.0, max_side=640)
    assert data is not None
    frames, _, _ = decoded(data)
    assert len(frames) == len(sampled) == 5
    drawn, source = frames[2].astype(np.float64), sampled[2][1].astype(np.float64)
    # The box's left edge (x = 20..21, below the label) is track 1's orange, not the picture.
    edge = drawn[50:85, 20:22].reshape(-1, 3).mean(axis=0)
    assert (
        np.linalg.norm(edge - ORANGE)
        < 60
        < np.linalg.norm(source[50:85, 20:22].reshape(-1, 3).mean(axis=0) - ORANGE)
    )
    # The line is red across the frame (right of the counters' box), away from it the picture stays.
    assert drawn[9:12, 100:125, 0].mean() > 180 and drawn[9:12, 100:125, 1:].mean() < 110
    assert np.abs(drawn[60:80, 70:90] - source[60:80, 70:90]).mean() < 20


def test_each_line_has_its_own_colour_and_arrow_place(tmp_path: Path) -> None:
    """Two lines crossing in their middles: the second is drawn in its own colour (magenta), and
    the arrows stand at 1/3 and 2/3 of their lines, not both at the crossing."""
    path = write_video(tmp_path / "video", seconds=0.4, fps=10, width=320, height=240, container_format="mp4")
    info = probe_video(path, VideoLimits())
    vertical = LineSpec("v", (160.0, 240.0), (160.0, 0.0))  # up: "in" = walking right
    horizontal = LineSpec("h", (0.0, 120.0), (320.0, 120.0))  # right: "in" = walking down
    data = render_preview(path, info, 5.0, {}, [vertical, horizontal], [], [], seconds=0.4, max_side=640)
    assert data is not None
    drawn = decoded(data)[0][0].astype(np.float64)
    magenta = np.array([255.0, 0.0, 255.0])
    assert np.linalg.norm(drawn[119:122, 250:300].reshape(-1, 3).mean(axis=0) - magenta) < 70
    # v's arrow at 1/3 of the way up (y = 160) points right, in v's red; h's at 2/3 across
    # (x ≈ 213) points down, in h's magenta; nothing hangs below h at 1/3 across (x ≈ 107).
    red_arrow = drawn[159:161, 164:171].reshape(-1, 3).mean(axis=0)
    assert red_arrow[0] - red_arrow[1] > 60 and red_arrow[0] - red_arrow[2] > 60
    magenta_arrow = drawn[124:131, 212:215].reshape(-1, 3).mean(axis=0)
    assert min(magenta_arrow[0], magenta_arrow[2]) - magenta_arrow[1] > 80
    plain = drawn[124:131, 105:108].reshape(-1, 3).mean(axis=0)
    assert max(plain) - min(plain) < 30
