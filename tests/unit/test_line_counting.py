"""LineCounter / ZoneCounter on synthetic trajectories: direction, debounce, segment extent, zones."""

from __future__ import annotations

import math
from collections.abc import Sequence

import pytest

from facesocial.analytics.counting import (
    CountingLine,
    CountingZone,
    Crossing,
    Debounce,
    LineCounter,
    ZoneCounter,
    check_unique_names,
)

# The module docstring's worked example: pointing right across the screen, so "in" = walking down.
DOOR = CountingLine("door", (0.0, 100.0), (200.0, 100.0))
STEP_MS = 200  # 5 frames/s
DOWN = CountingLine("v", (100, 0), (100, 200))
DIAGONAL = CountingLine("d", (0, 0), (200, 200))


def walk(
    counter: LineCounter | ZoneCounter,
    points: Sequence[tuple[float, float]],
    track: int = 1,
    start_ms: int = 0,
) -> list[Crossing]:
    events = []
    for i, point in enumerate(points):
        event = counter.update(track, point, start_ms + i * STEP_MS, i)
        if event is not None:
            events.append(event)
    return events


def vertical(x: float, ys: Sequence[float]) -> list[tuple[float, float]]:
    return [(x, y) for y in ys]


@pytest.mark.parametrize(
    ("line", "points", "expected"),
    [
        # The docstring's example: down the screen across a rightward line = in; up = out.
        (DOOR, vertical(50, [80, 90, 110, 120, 130]), "in"),
        (DOOR, vertical(50, [130, 120, 90, 80, 70]), "out"),
        # Swapping start and end swaps the directions.
        (CountingLine("door", (200, 100), (0, 100)), vertical(50, [80, 90, 110, 120, 130]), "out"),
        # A downward vertical line: its right side is x < 100, so walking left is in.
        (CountingLine("v", (100, 0), (100, 200)), [(150, 50), (120, 50), (80, 50), (60, 50), (40, 50)], "in"),
        (
            CountingLine("v", (100, 0), (100, 200)),
            [(40, 50), (60, 50), (120, 50), (140, 50), (160, 50)],
            "out",
        ),
        # A diagonal line from top-left to bottom-right: the right side is below-left of it.
        (
            CountingLine("d", (0, 0), (200, 200)),
            [(150, 50), (120, 80), (80, 120), (60, 140), (40, 160)],
            "in",
        ),
    ],
)
def test_direction(line: CountingLine, points: list[tuple[float, float]], expected: str) -> None:
    counter = LineCounter(line)
    events = walk(counter, points)
    assert [e.direction for e in events] == [expected]
    assert (counter.count_in, counter.count_out) == ((1, 0) if expected == "in" else (0, 1))
    assert events[0].kind == "cross_line" and events[0].name == line.name


def test_event_carries_where_and_when_the_line_was_crossed() -> None:
    events = walk(LineCounter(DOOR), vertical(50, [80, 90, 110, 120, 130]))
    (event,) = events
    # The step from y=90 (frame 1) to y=110 (frame 2) crosses y=100 at x=50.
    assert event.frame_index == 2 and event.timestamp_ms == 2 * STEP_MS
    assert event.point == pytest.approx((50.0, 100.0))


def test_lingering_on_the_line_with_jitter_counts_once() -> None:
    # Walks up to the line, stands on it for 6 s with ±4 px of detector jitter (flipping sides on
    # alternate samples), then walks on: one crossing, no flapping.
    ys = [70, 80, 90] + [100 + (4 if i % 2 else -4) for i in range(30)] + [115, 125, 135, 145]
    counter = LineCounter(DOOR)
    events = walk(counter, vertical(50, ys))
    assert [e.direction for e in events] == ["in"]
    assert (counter.count_in, counter.count_out) == (1, 0)


def test_jitter_across_the_line_without_walking_on_counts_nothing() -> None:
    ys = [96, 104, 96, 104, 96, 104, 97, 103, 96, 104, 95]
    counter = LineCounter(DOOR)
    assert walk(counter, vertical(50, ys)) == []
    assert (counter.count_in, counter.count_out) == (0, 0)


def test_a_step_back_within_the_debounce_counts_nothing() -> None:
    # Crosses, holds the new side for one sample (less than min_frames=2), comes back, walks away.
    counter = LineCounter(DOOR)
    assert walk(counter, vertical(50, [80, 90, 110, 90, 80, 70])) == []
    assert (counter.count_in, counter.count_out) == (0, 0)


def test_crossing_and_coming_back_later_counts_both_ways() -> None:
    counter = LineCounter(DOOR)
    events = walk(counter, vertical(50, [80, 90, 110, 120, 130, 140, 120, 90, 80, 70]))
    assert [e.direction for e in events] == ["in", "out"]


def test_min_ms_holds_at_a_high_frame_rate() -> None:
    # At 25 frames/s (40 ms) two samples on the new side span only 40 ms: with min_ms=200 the
    # crossing (first on the new side at frame 2, 80 ms) counts at frame 7 (280 ms), not before.
    counter = LineCounter(DOOR, Debounce(min_frames=2, min_ms=200))
    ys = [90, 95, 105, 106, 107, 108, 109, 110, 111]
    events = [counter.update(1, (50, y), i * 40, i) for i, y in enumerate(ys)]
    assert [i for i, e in enumerate(events) if e is not None] == [7]
    assert events[7] is not None and events[7].frame_index == 2


@pytest.mark.parametrize(
    ("x", "counted"),
    [(50.0, True), (0.0, True), (200.0, True), (-1.0, False), (260.0, False), (-500.0, False)],
)
def test_only_crossings_within_the_segment_count(x: float, counted: bool) -> None:
    counter = LineCounter(DOOR)
    events = walk(counter, vertical(x, [80, 90, 110, 120, 130]))
    assert len(events) == int(counted)
    assert counter.count_in == int(counted)


def test_segment_extent_uses_the_step_that_crossed() -> None:
    # A diagonal walk crosses y=100 at x=190 (inside the segment) although it ends at x=260.
    counter = LineCounter(DOOR)
    events = walk(counter, [(150, 60), (170, 80), (210, 120), (240, 150), (260, 170)])
    assert len(events) == 1 and events[0].point[0] == pytest.approx(190.0)


def test_a_track_first_seen_on_a_side_has_not_crossed() -> None:
    counter = LineCounter(DOOR)
    assert walk(counter, vertical(50, [130, 140, 150, 160])) == []


def test_band_points_change_nothing() -> None:
    # With a 10 px band, standing 5 px past the line never counts; leaving the band does.
    counter = LineCounter(DOOR, Debounce(margin=10.0))
    assert walk(counter, vertical(50, [80, 90, 105, 105, 105, 105, 95, 105])) == []
    events = walk(counter, vertical(50, [105, 115, 125, 135]), start_ms=10_000)
    assert [e.direction for e in events] == ["in"]


def test_a_track_that_ends_while_pending_counts_its_crossing() -> None:
    # Crosses near the frame edge and is lost after one sample on the new side.
    counter = LineCounter(DOOR)
    assert walk(counter, vertical(50, [80, 90, 110])) == []
    event = counter.end_track(1)
    assert event is not None and event.direction == "in" and event.timestamp_ms == 2 * STEP_MS
    assert counter.end_track(1) is None  # forgotten


def test_tracks_are_counted_independently() -> None:
    counter = LineCounter(DOOR)
    for track in range(1, 4):
        walk(counter, vertical(20.0 * track, [80, 90, 110, 120, 130]), track=track)
    walk(counter, vertical(150, [130, 110, 90, 80, 70]), track=9)
    assert (counter.count_in, counter.count_out) == (3, 1)


@pytest.mark.parametrize(
    ("start", "end"),
    [((0, 0), (0, 0)), ((math.nan, 0), (1, 1)), ((0, 0), (math.inf, 1))],
)
def test_invalid_lines_are_rejected(start: tuple[float, float], end: tuple[float, float]) -> None:
    with pytest.raises(ValueError):
        CountingLine("bad", start, end)


# --- zones ----------------------------------------------------------------------------------------

SQUARE = CountingZone("square", ((100, 100), (200, 100), (200, 200), (100, 200)))


def test_zone_entry_exit_and_occupancy() -> None:
    counter = ZoneCounter(SQUARE)
    points = [(50, 150), (80, 150), (120, 150), (140, 150), (160, 150), (180, 150), (220, 150), (240, 150)]
    events = walk(counter, points)
    assert [(e.kind, e.direction) for e in events] == [("entry", "in"), ("exit", "out")]
    assert events[0].frame_index == 2 and events[1].frame_index == 6
    assert (counter.entered, counter.exited, counter.occupancy, counter.peak) == (1, 1, 0, 1)


def test_zone_dwell_debounce_ignores_a_brush_past() -> None:
    counter = ZoneCounter(SQUARE)
    assert walk(counter, [(80, 150), (105, 150), (80, 150), (60, 150)]) == []
    assert counter.entered == 0


def test_zone_peak_and_a_track_ending_inside_exits() -> None:
    counter = ZoneCounter(SQUARE)
    for track in (1, 2, 3):
        walk(counter, [(150, 150), (150, 151), (150, 152)], track=track)
    assert (counter.entered, counter.occupancy, counter.peak) == (3, 3, 3)  # first seen inside = entry
    event = counter.end_track(2)
    assert event is not None and event.kind == "exit" and event.timestamp_ms == 2 * STEP_MS
    assert (counter.occupancy, counter.peak) == (2, 3)
    assert counter.end_track(2) is None


def test_concave_zone() -> None:
    # An L shape: the notch (150, 50) is outside.
    zone = CountingZone("L", ((0, 0), (100, 0), (100, 100), (200, 100), (200, 200), (0, 200)))
    assert zone.contains((50, 50)) and zone.contains((150, 150))
    assert not zone.contains((150, 50)) and not zone.contains((250, 150))


@pytest.mark.parametrize(
    "polygon",
    [((0, 0), (1, 1)), ((0, 0), (1, 1), (2, 2)), ((0, 0), (1, math.nan), (2, 0))],
)
def test_invalid_zones_are_rejected(polygon: tuple[tuple[float, float], ...]) -> None:
    with pytest.raises(ValueError):
        CountingZone("bad", polygon)


def test_duplicate_names_are_rejected() -> None:
    with pytest.raises(ValueError, match="door"):
        check_unique_names([DOOR, DOOR], [])
    check_unique_names([DOOR], [SQUARE])


def test_the_relative_band_stops_a_wobble_along_the_line() -> None:
    # Walking along the door with the box bottom wobbling ±3 px in runs of three samples (long
    # enough for the time rule): without a band every wobble is a crossing; with a band of 5 % of
    # the height, a person 80 px tall has 4 px, and the wobble stays inside it.
    ys = [100 + (3 if (i // 3) % 2 else -3) for i in range(24)]
    points = [(10.0 + 5 * i, float(y)) for i, y in enumerate(ys)]
    bare = LineCounter(DOOR, Debounce(margin=0.0, relative_margin=0.0))
    assert [bare.update(1, p, i * STEP_MS, i, height=80.0) is not None for i, p in enumerate(points)].count(
        True
    ) >= 4
    for banded in (LineCounter(DOOR, Debounce(relative_margin=0.05)), LineCounter(DOOR)):  # 4 px; 3 px
        events = [banded.update(1, p, i * STEP_MS, i, height=80.0) for i, p in enumerate(points)]
        assert [e for e in events if e is not None] == []
