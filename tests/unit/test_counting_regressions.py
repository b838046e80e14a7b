"""Regressions of people counting found by attack (issue 13): names, zone edges, lingering on a
line, anamorphic video. Each test failed before its fix."""

from __future__ import annotations

import json
import struct
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from facesocial import errors
from facesocial.analytics.counting import CountingLine, CountingZone, Debounce, LineCounter
from facesocial.analytics.people_counting import CountingEngine
from facesocial.domains.counting.forms import FrameBounds, parse_lines, parse_zones
from facesocial.settings import VideoLimits
from facesocial.video.probe import probe_video

BOUNDS = FrameBounds(480, 360)


def synthetic_mp4(path: Path, width: int = 160, height: int = 120, frames: int = 10, fps: int = 10) -> Path:
    """A small H.264 MP4 of flat grey frames (PyAV writes the moov after the mdat)."""
    with av.open(str(path), "w", format="mp4") as out:
        stream = out.add_stream("libx264", rate=Fraction(fps))
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.options = {"preset": "ultrafast"}
        for i in range(frames):
            rgb = np.full((height, width, 3), (i * 11) % 255, np.uint8)
            for packet in stream.encode(av.VideoFrame.from_ndarray(rgb, format="rgb24")):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return path


def add_pasp(data: bytes, h_spacing: int, v_spacing: int) -> bytes:
    """``data`` (an MP4 as :func:`synthetic_mp4` writes it) with a ``pasp`` box (pixel aspect
    ratio h:v, ISO/IEC 14496-12 §12.1.4) appended to its first video sample entry."""
    buf = bytearray(data)

    def find(start: int, end: int, name: bytes) -> tuple[int, int]:
        i = start
        while i < end:
            size, kind = struct.unpack(">I4s", buf[i : i + 8])
            if kind == name:
                return i, size
            i += size
        raise KeyError(name)

    ancestors: list[int] = []
    start, end = 0, len(buf)
    for name in (b"moov", b"trak", b"mdia", b"minf", b"stbl", b"stsd"):
        i, size = find(start, end, name)
        ancestors.append(i)
        start, end = i + 8, i + size
    entry = ancestors[-1] + 16  # stsd: version/flags, entry count, then the first entry
    entry_size = struct.unpack(">I", buf[entry : entry + 4])[0]
    buf[entry + entry_size : entry + entry_size] = struct.pack(">I4sII", 16, b"pasp", h_spacing, v_spacing)
    for offset in (*ancestors, entry):
        size = struct.unpack(">I", buf[offset : offset + 4])[0]
        buf[offset : offset + 4] = struct.pack(">I", size + 16)
    return bytes(buf)


# --- names -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    [
        "door\u0085",  # NEL: a C1 control (Cc)
        "a\u009bb",  # CSI: a C1 control, a terminal escape introducer
        "\u202erood",  # RIGHT-TO-LEFT OVERRIDE (Cf)
        "\u200b",  # ZERO WIDTH SPACE (Cf): an invisible name
        "a\u2028b",  # LINE SEPARATOR (Zl)
        "a\u2029b",  # PARAGRAPH SEPARATOR (Zp)
        "door\ud800",  # a lone surrogate (Cs): no UTF-8 encoder takes it
    ],
)
def test_names_with_control_format_separator_or_surrogate_characters_are_refused(name: str) -> None:
    line = json.dumps([{"name": name, "start": [0, 10], "end": [100, 10]}])
    with pytest.raises(errors.InvalidCountingLinesError):
        parse_lines(line, BOUNDS, 16)
    zone = json.dumps([{"name": name, "polygon": [[0, 0], [100, 0], [100, 100]]}])
    with pytest.raises(errors.InvalidCountingZonesError):
        parse_zones(zone, BOUNDS, 16, 64)


def test_a_lone_surrogate_written_as_a_json_escape_is_refused_and_the_reason_encodes() -> None:
    raw = '[{"name": "door\\ud800", "start": [0, 10], "end": [100, 10]}]'
    with pytest.raises(errors.InvalidCountingLinesError) as caught:
        parse_lines(raw, BOUNDS, 16)
    json.dumps(caught.value.to_dict(), ensure_ascii=False).encode("utf-8")  # the 422 body renders
    extra_key = '[{"name": "door", "start": [0, 10], "end": [100, 10], "x\\ud800": 1}]'
    with pytest.raises(errors.InvalidCountingLinesError) as caught:
        parse_lines(extra_key, BOUNDS, 16)
    json.dumps(caught.value.to_dict(), ensure_ascii=False).encode("utf-8")


@pytest.mark.parametrize("name", ["Tür 2", "入口", "café door", "door-1 (north)"])
def test_ordinary_unicode_names_still_pass(name: str) -> None:
    lines = parse_lines(json.dumps([{"name": name, "start": [0, 10], "end": [100, 10]}]), BOUNDS, 16)
    assert [line.name for line in lines] == [name]


# --- zones reaching the frame edge -------------------------------------------------------------


def test_a_person_standing_at_the_bottom_of_a_zone_that_reaches_the_frame_edge_is_inside() -> None:
    """Boxes are clipped to the image: feet cut off by the frame's bottom stand at y == height,
    on the edge of a zone drawn along it."""
    zone = CountingZone("near", ((0, 180), (480, 180), (480, 360), (0, 360)))

    def entered(bottom: float) -> int:
        engine = CountingEngine(None, [], [zone])
        for n in range(10):
            engine.feed_detections(
                np.array([[200, 200, 260, bottom]], np.float32), np.array([0.9], np.float32), n * 200, n
            )
        return engine.finish().zones[0].entered

    assert entered(359.0) == 1
    assert entered(360.0) == 1


def test_zone_boundary_points_are_inside_and_outside_points_are_not() -> None:
    zone = CountingZone("z", ((0, 0), (100, 0), (50, 100)))
    for point in [(0, 0), (100, 0), (50, 100), (50, 0), (25, 50), (75, 50)]:
        assert zone.contains(point), point
    for point in [(50, -0.01), (24.9, 50), (75.1, 50), (101, 0), (50, 100.01)]:
        assert not zone.contains(point), point
    assert zone.contains((50, 50))


# --- lingering on a line -----------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(8))
def test_a_person_who_stands_on_a_line_then_walks_on_counts_once(seed: int) -> None:
    """Down to the line y = 300, 6 s on it with the box bottom jittering by ~1 px (5 samples/s),
    then on down: one ``in``, no ``out`` (the default band absorbs the jitter)."""
    rng = np.random.default_rng(seed)
    engine = CountingEngine(None, [CountingLine("door", (0, 300), (640, 300))], [])
    feet = [*np.linspace(200, 300, 10), *(300 + rng.normal(0, 1.0, 30)), *np.linspace(300, 420, 10)]
    for n, y in enumerate(feet):
        engine.feed_detections(
            np.array([[300, y - 150, 360, y]], np.float32), np.array([0.9], np.float32), n * 200, n
        )
    door = engine.finish().lines[0]
    assert (door.count_in, door.count_out) == (1, 0)


def test_a_person_who_lingers_then_goes_back_counts_nothing() -> None:
    counter = LineCounter(CountingLine("door", (0, 300), (640, 300)))
    rng = np.random.default_rng(7)
    ys = [*np.linspace(200, 300, 10), *(300 + rng.normal(0, 1.0, 30)), *np.linspace(300, 200, 10)]
    for n, y in enumerate(ys):
        counter.update(1, (320.0, float(y)), n * 200, n, 150.0)
    counter.end_track(1)
    assert (counter.count_in, counter.count_out) == (0, 0)


def test_crossing_back_counts_again_only_beyond_the_band_on_the_other_side() -> None:
    """Band = max(margin, relative_margin × box height) = 10 px here."""
    counter = LineCounter(CountingLine("door", (0, 300), (640, 300)), Debounce(margin=10.0))
    path = [250, 280, 320, 330, 340, 295, 292, 295, 340, 350, 280, 270, 260]
    events = [counter.update(1, (320.0, float(y)), n * 200, n) for n, y in enumerate(path)]
    assert [e.direction for e in events if e is not None] == ["in", "out"]
    assert (counter.count_in, counter.count_out) == (1, 1)


def test_a_track_that_ends_past_the_line_inside_the_band_has_crossed() -> None:
    """A person who walks across and out of view while still inside the band counts."""
    counter = LineCounter(CountingLine("door", (0, 300), (640, 300)), Debounce(margin=10.0))
    for n, y in enumerate([250, 270, 290, 305]):
        assert counter.update(1, (320.0, float(y)), n * 200, n) is None
    crossing = counter.end_track(1)
    assert crossing is not None and crossing.direction == "in" and crossing.timestamp_ms == 600
    assert crossing.point == pytest.approx((320.0, 300.0))
    # ... but one who ends on the near side of the line inside the band has not.
    other = LineCounter(CountingLine("door", (0, 300), (640, 300)), Debounce(margin=10.0))
    for n, y in enumerate([250, 270, 295]):
        other.update(2, (320.0, float(y)), n * 200, n)
    assert other.end_track(2) is None


# --- anamorphic video --------------------------------------------------------------------------


def test_an_anamorphic_video_wider_than_the_limit_as_shown_is_refused(tmp_path: Path) -> None:
    """256×64 coded with a 64:1 pixel aspect ratio is shown (and decoded) 16384×64."""
    base = synthetic_mp4(tmp_path / "base.mp4", width=256, height=64, frames=5)
    wide = tmp_path / "wide.mp4"
    wide.write_bytes(add_pasp(base.read_bytes(), 64, 1))
    with pytest.raises(errors.VideoResolutionUnsupportedError) as caught:
        probe_video(wide, VideoLimits())
    assert caught.value.details["width"] == 16384


def test_a_pixel_aspect_ratio_beyond_4_is_refused_even_within_the_side_limit(tmp_path: Path) -> None:
    base = synthetic_mp4(tmp_path / "base.mp4", width=64, height=64, frames=5)
    odd = tmp_path / "odd.mp4"
    odd.write_bytes(add_pasp(base.read_bytes(), 1, 8))  # 8 px tall per 1 px wide: 8×64 shown
    with pytest.raises(errors.VideoResolutionUnsupportedError):
        probe_video(odd, VideoLimits())


def test_an_ordinary_anamorphic_video_is_accepted_at_its_display_size(tmp_path: Path) -> None:
    base = synthetic_mp4(tmp_path / "base.mp4", width=720, height=576, frames=5)
    dv = tmp_path / "dv.mp4"
    dv.write_bytes(add_pasp(base.read_bytes(), 16, 11))  # PAL DV widescreen-ish 16:11
    info = probe_video(dv, VideoLimits())
    assert (info.width, info.height) == (round(720 * 16 / 11), 576)
