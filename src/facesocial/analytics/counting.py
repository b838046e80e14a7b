"""Line-crossing and zone counting over tracked points, with direction and debounce.

Both counters take one point per track per sampled frame (the engine passes each box's
bottom-centre, where the person stands) and emit :class:`Crossing` records; they know nothing of
boxes, detectors or video.

**Lines.** A :class:`CountingLine` is a directed segment ``start → end`` in image pixels
(x right, y *down*). A point's side is the sign of the 2-D cross product
``(end − start) × (p − start) = dx·(py − sy) − dy·(px − sx)``: positive is the **right** of the
line as seen walking from ``start`` to ``end`` on the screen, negative its **left**.
Crossing from the left to the right is ``"in"``; from the right to the left ``"out"``.

Worked example: ``door`` from ``start=(0, 100)`` to ``end=(200, 100)`` points right across the
screen. Walking that way on the screen, your right hand points down (y grows downward), so the
lower half ``y > 100`` is the right side. A person whose feet go from ``(50, 80)`` to
``(50, 130)`` walks down the screen, left → right: ``"in"``; walking up is ``"out"``. Swap
``start`` and ``end`` to swap the directions. For a vertical line ``(100, 0) → (100, 200)``
(pointing down) the right side is ``x < 100``: moving leftwards is ``"in"``.

A crossing counts only when the path crosses the *segment*: the point where the step from the last
point on the old side to the first point on the new side meets the line must lie between ``start``
and ``end`` (passing beyond either end counts nothing, however far the line's extension is
crossed).

Debounce (a person lingering on the line counts once; jitter does not flap):

* points within the *band* around the line (half-width ``margin`` pixels or ``relative_margin``
  of the person's box height, whichever is larger; by default 3 px / 3 %) change nothing — a
  track must leave the band on the other side before a crossing is pending (hysteresis), and
  after a crossing it counts back only once beyond the band on the first side;
* the new side must then hold for ``min_frames`` updates *and* ``min_ms`` of video time before
  the crossing counts (the event carries the time and point where the line was crossed);
* coming back to the old side before that cancels the pending crossing: nothing counts, in
  either direction;
* a track first seen on one side has not crossed anything (its first side is just noted; first
  seen inside the band, the side of the line it stands on);
* a track that ends (:meth:`LineCounter.end_track`) while a crossing is pending has left the
  scene on the new side: it counts when it held that side for at least one update (a person who
  crosses a line near the frame edge and walks out cannot hold the side for ``min_frames``); so
  does a track last seen past the line but still inside the band.

**Zones.** A :class:`CountingZone` is a simple polygon (≥ 3 points, not self-intersecting —
callers validate). A track is inside when its point is inside the polygon (even-odd rule) or on
its boundary (a person whose box is clipped at the frame's edge stands on a zone edge drawn there).
``"entry"`` is emitted when being inside has held for ``min_frames``/``min_ms`` (also for a track
first seen inside: occupancy counts whoever is in the zone), ``"exit"`` when being outside has held
as long after an entry, or when the track ends while inside (at its last time). Occupancy = entries
− exits; ``peak`` is its maximum.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

Point = tuple[float, float]
Direction = Literal["in", "out"]
CrossingKind = Literal["cross_line", "entry", "exit"]

# A crossing point within this fraction of the segment's length beyond an end still counts
# (the step's intersection is computed in floating point; an exact endpoint hit must count).
_EXTENT_TOLERANCE = 1e-9
# A zone point this close (pixels) to an edge is on it, hence inside (floating-point slack only).
_EDGE_TOLERANCE = 1e-6


def _finite_point(value: Point, what: str) -> Point:
    if len(value) != 2 or not all(math.isfinite(float(v)) for v in value):
        raise ValueError(f"{what} must be two finite numbers, got {value!r}")
    return (float(value[0]), float(value[1]))


@dataclass(frozen=True, slots=True)
class CountingLine:
    """A directed counting line in source-video pixels; ``"in"`` = left → right of start→end.

    Raises ValueError when a point is not finite or ``start == end``.
    """

    name: str
    start: Point
    end: Point

    def __post_init__(self) -> None:
        start = _finite_point(self.start, "start")
        end = _finite_point(self.end, "end")
        if start == end:
            raise ValueError(f"line {self.name!r}: start and end are the same point")
        object.__setattr__(self, "start", start)
        object.__setattr__(self, "end", end)

    def signed_distance(self, point: Point) -> float:
        """Pixels from the line through start→end: > 0 on its right, < 0 on its left."""
        (sx, sy), (ex, ey) = self.start, self.end
        dx, dy = ex - sx, ey - sy
        return (dx * (point[1] - sy) - dy * (point[0] - sx)) / math.hypot(dx, dy)

    def crossing_point(self, before: Point, after: Point) -> Point | None:
        """Where the step ``before → after`` meets the segment, or None when it meets the line
        outside the segment (or runs parallel to it)."""
        (sx, sy), (ex, ey) = self.start, self.end
        dx, dy = ex - sx, ey - sy
        mx, my = after[0] - before[0], after[1] - before[1]
        denominator = dx * my - dy * mx
        if denominator == 0:
            return None
        # Solve start + u·(end − start) = before + v·(after − before) for u (along the line).
        u = ((before[0] - sx) * my - (before[1] - sy) * mx) / denominator
        if u < -_EXTENT_TOLERANCE or u > 1 + _EXTENT_TOLERANCE:
            return None
        return (sx + u * dx, sy + u * dy)


@dataclass(frozen=True, slots=True)
class CountingZone:
    """A polygon zone in source-video pixels (≥ 3 finite points). Raises ValueError otherwise."""

    name: str
    polygon: tuple[Point, ...]

    def __post_init__(self) -> None:
        points = tuple(_finite_point(p, "polygon point") for p in self.polygon)
        if len(points) < 3:
            raise ValueError(f"zone {self.name!r}: a polygon needs at least 3 points")
        if _polygon_area(points) == 0:
            raise ValueError(f"zone {self.name!r}: the polygon has no area")
        object.__setattr__(self, "polygon", points)

    def contains(self, point: Point) -> bool:
        """Even-odd (ray casting) inside test; a point on an edge or vertex (within
        :data:`_EDGE_TOLERANCE` px) is inside — boxes are clipped to the image, so a person cut
        off by the frame's bottom stands exactly on a zone edge drawn along it."""
        x, y = point
        inside = False
        n = len(self.polygon)
        for i in range(n):
            x1, y1 = self.polygon[i]
            x2, y2 = self.polygon[(i + 1) % n]
            if _on_segment(point, (x1, y1), (x2, y2)):
                return True
            if (y1 > y) != (y2 > y):
                x_cross = x1 + (y - y1) * (x2 - x1) / (y2 - y1)
                if x < x_cross:
                    inside = not inside
        return inside


def _on_segment(point: Point, a: Point, b: Point) -> bool:
    """Whether ``point`` lies on the segment a–b within :data:`_EDGE_TOLERANCE` pixels."""
    (px, py), (ax, ay), (bx, by) = point, a, b
    dx, dy = bx - ax, by - ay
    length_sq = dx * dx + dy * dy
    t = 0.0 if length_sq == 0 else max(0.0, min(1.0, ((px - ax) * dx + (py - ay) * dy) / length_sq))
    return math.hypot(px - (ax + t * dx), py - (ay + t * dy)) <= _EDGE_TOLERANCE


def _polygon_area(points: tuple[Point, ...]) -> float:
    twice = 0.0
    for i, (x1, y1) in enumerate(points):
        x2, y2 = points[(i + 1) % len(points)]
        twice += x1 * y2 - x2 * y1
    return abs(twice) / 2.0


@dataclass(frozen=True, slots=True)
class Debounce:
    """How long a new side (or inside/outside) must hold before it counts.

    ``min_frames`` updates (≥ 1) and ``min_ms`` of video time (≥ 0), both. The band around a line
    where points change nothing (lines only) has a half-width of ``margin`` pixels (≥ 0) or
    ``relative_margin`` (≥ 0) times the person's box height when the caller gives it, whichever
    is larger.

    Defaults: 2 updates and 200 ms between the first and the latest update on the new side (at
    5 frames/s two samples; at 25 frames/s six — a step, not a sway), and a band of 3 px or 3 %
    of the box height, whichever is larger (4.5 px for a person 150 px tall). Measured with
    ``facesocial eval tracking`` (docs/accuracy.md, "People tracking and counting"): any band from
    2 px to 5 % of the height removes the flapping of people who stand *on* a line or walk along
    it — PETS09-S2L1 with NanoDet, centre-line count error 11 → 5 of 63 crossings at 10 frames/s;
    at 5 frames/s 4 → 6, where the 4 was luck: a man standing on ``h_centre`` counted 2 in and 2
    out, cancelling 4 crossings NanoDet missed. On ground-truth boxes 3 px / 3 % loses no
    crossing (0 of 63 at 5 and 10 frames/s, 0 of 5 on TUD-Campus) and 5 % loses one; ~1 px of
    jitter (σ) on a line for 6 s stays inside it (tests/unit/test_counting_regressions.py).
    """

    min_frames: int = 2
    min_ms: int = 200
    margin: float = 3.0
    relative_margin: float = 0.03

    def __post_init__(self) -> None:
        if self.min_frames < 1 or self.min_ms < 0 or not (self.margin >= 0 and self.relative_margin >= 0):
            raise ValueError("debounce: min_frames ≥ 1, min_ms ≥ 0, margin ≥ 0, relative_margin ≥ 0")


@dataclass(frozen=True, slots=True)
class Crossing:
    """One counted event of one counter.

    ``kind`` cross_line | entry | exit; ``direction`` in | out (entry = in, exit = out);
    ``name`` the line's or zone's name; ``track_id`` the key the caller passed; ``timestamp_ms``
    and ``frame_index`` of the update where the line was crossed (or the zone entered/left);
    ``point`` where (for lines the point on the segment; for zones the track's point).
    """

    kind: CrossingKind
    direction: Direction
    name: str
    track_id: int
    timestamp_ms: int
    frame_index: int
    point: Point


@dataclass(slots=True)
class _Pending:
    side: int
    since_ms: int
    frame_index: int
    frames: int
    point: Point | None  # where the segment was crossed (None: outside its extent)


@dataclass(slots=True)
class _LineState:
    side: int = 0  # settled side: -1 left, +1 right, 0 not yet known
    last_point: Point | None = None  # last point seen beyond the band on the settled side
    pending: _Pending | None = None
    # The latest point past the line but inside the band (no pending crossing yet): where a track
    # that ends there left the scene (counted by end_track).
    across: Point | None = None
    across_ms: int = 0  # when and in which frame ``across`` was first reached
    across_frame: int = 0


class LineCounter:
    """Counts directed crossings of one :class:`CountingLine` (rules in the module docstring).

    Feed :meth:`update` with each track's point in time order (per track); read ``count_in`` /
    ``count_out``; call :meth:`end_track` when a track ends.
    """

    def __init__(self, line: CountingLine, debounce: Debounce = Debounce()) -> None:
        self.line = line
        self.debounce = debounce
        self.count_in = 0
        self.count_out = 0
        self._states: dict[int, _LineState] = {}

    def update(
        self, track_id: int, point: Point, timestamp_ms: int, frame_index: int, height: float = 0.0
    ) -> Crossing | None:
        """Note ``track_id`` at ``point`` (pixels) at ``timestamp_ms`` (``height``: its box height
        in pixels, for the relative band; 0 = unknown); the crossing it completes, if any."""
        state = self._states.setdefault(track_id, _LineState())
        distance = self.line.signed_distance(point)
        band = max(self.debounce.margin, self.debounce.relative_margin * height)
        raw = 0 if distance == 0 else (1 if distance > 0 else -1)
        observed = 0 if abs(distance) <= band else raw
        if observed == 0 and state.side == 0 and raw != 0:
            # First seen inside the band: the side of the line it stands on is where it came from
            # (a track that starts 1 px right of the line and walks left has crossed it).
            state.side, state.last_point = raw, point
            return None
        if observed == 0:
            # In the band: neither confirms nor cancels a pending crossing (hysteresis).
            if state.side == 0 or raw != -state.side:
                state.across = None  # on the settled side of the line (or side not yet known)
                return None
            if state.across is None:
                state.across_ms, state.across_frame = timestamp_ms, frame_index
            state.across = point
            return None
        state.across = None
        if state.side == 0:
            state.side, state.last_point = observed, point
            return None
        if observed == state.side:
            state.pending = None  # back on the settled side before the debounce: no crossing
            state.last_point = point
            return None
        pending = state.pending
        if pending is None:
            before = state.last_point if state.last_point is not None else point
            crossed = self.line.crossing_point(before, point)
            pending = state.pending = _Pending(observed, timestamp_ms, frame_index, 0, crossed)
        pending.frames += 1
        held_ms = timestamp_ms - pending.since_ms
        if pending.frames >= self.debounce.min_frames and held_ms >= self.debounce.min_ms:
            return self._settle(track_id, state, point)
        return None

    def end_track(self, track_id: int) -> Crossing | None:
        """Forget ``track_id``; a crossing still pending counts (it left on the new side), and so
        does a track last seen past the line inside the band (it left the scene across the line)."""
        state = self._states.pop(track_id, None)
        if state is None or state.last_point is None:
            return None
        if state.pending is None and state.across is not None:
            crossed = self.line.crossing_point(state.last_point, state.across)
            state.pending = _Pending(-state.side, state.across_ms, state.across_frame, 1, crossed)
        if state.pending is None:
            return None
        return self._settle(track_id, state, state.last_point)

    def _settle(self, track_id: int, state: _LineState, point: Point) -> Crossing | None:
        pending = state.pending
        assert pending is not None  # the callers checked
        state.side, state.last_point, state.pending = pending.side, point, None
        if pending.point is None:
            return None  # crossed the line's extension, not the segment
        direction: Direction = "in" if pending.side > 0 else "out"
        if direction == "in":
            self.count_in += 1
        else:
            self.count_out += 1
        when, frame = pending.since_ms, pending.frame_index
        return Crossing("cross_line", direction, self.line.name, track_id, when, frame, pending.point)


@dataclass(slots=True)
class _ZoneState:
    inside: bool = False  # settled: counted as inside (entered, not yet exited)
    pending_since_ms: int | None = None
    pending_frame: int = 0
    pending_frames: int = 0
    pending_point: Point = (0.0, 0.0)
    last_ms: int = 0
    last_frame: int = 0
    last_point: Point = (0.0, 0.0)


class ZoneCounter:
    """Entries, exits and occupancy of one :class:`CountingZone` (rules in the module docstring)."""

    def __init__(self, zone: CountingZone, debounce: Debounce = Debounce()) -> None:
        self.zone = zone
        self.debounce = debounce
        self.entered = 0
        self.exited = 0
        self.peak = 0
        self._states: dict[int, _ZoneState] = {}

    @property
    def occupancy(self) -> int:
        """Tracks counted inside now (entries − exits)."""
        return self.entered - self.exited

    def update(
        self, track_id: int, point: Point, timestamp_ms: int, frame_index: int, height: float = 0.0
    ) -> Crossing | None:
        """Note ``track_id`` at ``point``; the entry or exit it completes, if any (``height`` is
        accepted for a uniform call with :meth:`LineCounter.update` and not used)."""
        state = self._states.setdefault(track_id, _ZoneState())
        state.last_ms, state.last_frame, state.last_point = timestamp_ms, frame_index, point
        if self.zone.contains(point) == state.inside:
            state.pending_since_ms = None
            return None
        if state.pending_since_ms is None:
            state.pending_since_ms, state.pending_frame = timestamp_ms, frame_index
            state.pending_frames, state.pending_point = 0, point
        state.pending_frames += 1
        held_ms = timestamp_ms - state.pending_since_ms
        if state.pending_frames < self.debounce.min_frames or held_ms < self.debounce.min_ms:
            return None
        return self._flip(track_id, state, state.pending_since_ms, state.pending_frame, state.pending_point)

    def end_track(self, track_id: int) -> Crossing | None:
        """Forget ``track_id``; a track counted inside exits at its last time and point."""
        state = self._states.pop(track_id, None)
        if state is None or not state.inside:
            return None
        return self._flip(track_id, state, state.last_ms, state.last_frame, state.last_point)

    def _flip(self, track_id: int, state: _ZoneState, when: int, frame: int, point: Point) -> Crossing:
        state.inside = not state.inside
        state.pending_since_ms = None
        if state.inside:
            self.entered += 1
            self.peak = max(self.peak, self.occupancy)
            return Crossing("entry", "in", self.zone.name, track_id, when, frame, point)
        self.exited += 1
        return Crossing("exit", "out", self.zone.name, track_id, when, frame, point)


def check_unique_names(lines: Iterable[CountingLine], zones: Iterable[CountingZone]) -> None:
    """Raise ValueError when two lines (or two zones) share a name."""
    for kind, names in (("line", [line.name for line in lines]), ("zone", [zone.name for zone in zones])):
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"duplicate {kind} names: {', '.join(duplicates)}")
