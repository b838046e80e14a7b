"""People counting over a stream of frames: person detector → tracker → line and zone counters.

:class:`CountingEngine` takes sampled frames ``(rgb, timestamp_ms, frame_index)`` in time order,
runs the person detector on each (any object with ``model`` and
``detect(rgb, *, min_confidence) -> boxes/scores``: :mod:`facesocial.vision.persons`), tracks the
boxes with :class:`~facesocial.analytics.tracking.PersonTracker` and feeds each track's
bottom-centre point (where the person stands) to one
:class:`~facesocial.analytics.counting.LineCounter` per line and one
:class:`~facesocial.analytics.counting.ZoneCounter` per zone. :meth:`CountingEngine.finish`
returns a :class:`CountingOutcome`.

Track ids are given when a track is confirmed (``min_hits`` matched updates), numbered 1, 2, …
in that order, and written back onto the detections it matched while tentative, so trajectories
start where the person was first seen. Detections that never belonged to a confirmed track keep
``track_id`` 0; tracks never confirmed are dropped with their events.

Usage::

    engine = CountingEngine(detector, [CountingLine("door", (0, 200), (640, 200))], [])
    outcome = engine.process((f.rgb, f.timestamp_ms, f.index) for f in reader)
    outcome.lines[0].as_dict()   # {"name": "door", "in": 3, "out": 1}
"""

from __future__ import annotations

import bisect
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from facesocial.analytics.counting import (
    CountingLine,
    CountingZone,
    Crossing,
    CrossingKind,
    Debounce,
    Direction,
    LineCounter,
    Point,
    ZoneCounter,
    check_unique_names,
)
from facesocial.analytics.tracking import PersonTracker, TrackerSettings
from facesocial.models.manifest import ModelRef

__all__ = [
    "CountingEngine",
    "CountingEvent",
    "CountingLine",
    "CountingOutcome",
    "CountingSettings",
    "CountingZone",
    "FrameTracks",
    "LineCount",
    "TimelinePoint",
    "TrackRecord",
    "TrajectoryPoint",
    "ZoneCount",
]


class _Boxes(Protocol):
    @property
    def boxes(self) -> npt.NDArray[np.float32]: ...  # (N, 4) xyxy source pixels

    @property
    def scores(self) -> npt.NDArray[np.float32]: ...  # (N,) 0..1


class BoxDetector(Protocol):
    """What the engine needs of a person detector (facesocial.vision.persons.PersonDetector fits)."""

    @property
    def model(self) -> ModelRef: ...

    def detect(self, rgb: npt.NDArray[np.uint8], *, min_confidence: float = 0.3) -> _Boxes: ...


@dataclass(frozen=True, slots=True)
class CountingSettings:
    """Tracker thresholds and counting debounce.

    ``tracker``: see :class:`~facesocial.analytics.tracking.TrackerSettings` (its ``high_score``
    is the confidence a detection needs to start or first-match a track; the detector is asked
    for everything down to ``tracker.low_score``). ``line_debounce`` / ``zone_debounce``: see
    :class:`~facesocial.analytics.counting.Debounce`. ``keep_frames``: keep every frame's
    detections in the outcome (the API stores them; a benchmark need not).
    """

    tracker: TrackerSettings = field(default_factory=TrackerSettings)
    line_debounce: Debounce = field(default_factory=Debounce)
    zone_debounce: Debounce = field(default_factory=Debounce)
    keep_frames: bool = True

    def with_min_confidence(self, min_confidence: float) -> CountingSettings:
        """These settings with the tracker's ``high_score`` set to a request's ``min_confidence``
        (0..1), ``new_track_score`` to 0.1 above it (ByteTrack's ``track_thresh + 0.1``, at most 1)
        and ``low_score`` lowered to it when it was above. Raises ValueError out of 0..1."""
        if not 0.0 <= min_confidence <= 1.0:
            raise ValueError("min_confidence must be within 0..1")
        tracker = self.tracker.replace(
            high_score=min_confidence,
            low_score=min(self.tracker.low_score, min_confidence),
            new_track_score=min(1.0, min_confidence + 0.1),
        )
        return CountingSettings(tracker, self.line_debounce, self.zone_debounce, self.keep_frames)


@dataclass(frozen=True, slots=True)
class FrameTracks:
    """One sampled frame's detections: ``boxes`` (N, 4) float32 xyxy source pixels, ``scores`` (N,)
    0..1, ``track_ids`` (N,) int64 (≥ 1, or 0 = no confirmed track)."""

    frame_index: int
    timestamp_ms: int
    boxes: npt.NDArray[np.float32]
    scores: npt.NDArray[np.float32]
    track_ids: npt.NDArray[np.int64]

    def as_dict(self) -> dict[str, Any]:
        return {
            "frame_index": self.frame_index,
            "timestamp_ms": self.timestamp_ms,
            "detections": [
                {"box": [round(float(v), 1) for v in box], "score": round(float(s), 4), "track_id": int(t)}
                for box, s, t in zip(self.boxes, self.scores, self.track_ids, strict=True)
            ],
        }


@dataclass(frozen=True, slots=True)
class TrajectoryPoint:
    """A track's bottom-centre ``x, y`` (source pixels) at ``t_ms`` (video time)."""

    x: float
    y: float
    t_ms: int

    def as_dict(self) -> dict[str, float | int]:
        return {"x": round(self.x, 1), "y": round(self.y, 1), "t_ms": self.t_ms}


@dataclass(frozen=True, slots=True)
class TrackRecord:
    """One confirmed track over the whole stream.

    ``frames_seen`` updates matched (incl. tentative ones); ``last_box`` xyxy; ``velocity``
    (vx, vy) of the bottom-centre in px/s over the last second seen (0, 0 for one point);
    ``mean_score`` the mean detection confidence; ``trajectory`` one point per matched frame.
    """

    track_id: int
    first_timestamp_ms: int
    last_timestamp_ms: int
    first_frame_index: int
    last_frame_index: int
    frames_seen: int
    last_box: tuple[float, float, float, float]
    velocity: tuple[float, float]
    mean_score: float
    trajectory: tuple[TrajectoryPoint, ...]

    def as_dict(self) -> dict[str, Any]:
        return {
            "track_id": self.track_id,
            "first_timestamp_ms": self.first_timestamp_ms,
            "last_timestamp_ms": self.last_timestamp_ms,
            "frames_seen": self.frames_seen,
            "last_box": [round(v, 1) for v in self.last_box],
            "velocity": [round(v, 2) for v in self.velocity],
            "mean_score": round(self.mean_score, 4),
            "trajectory": [p.as_dict() for p in self.trajectory],
        }


@dataclass(frozen=True, slots=True)
class CountingEvent:
    """A counted event: ``type`` cross_line | entry | exit, ``direction`` in | out, ``line`` or
    ``zone`` (the other is None), ``track_id``, ``timestamp_ms`` / ``frame_index`` where it
    happened, ``point`` (x, y) pixels, and ``counts_after`` — that counter's totals including
    this event: lines ``{"in", "out"}``, zones ``{"in", "out", "inside"}`` (in = entered,
    out = exited, inside = occupancy)."""

    type: CrossingKind
    direction: Direction
    line: str | None
    zone: str | None
    track_id: int
    timestamp_ms: int
    frame_index: int
    point: Point
    counts_after: Mapping[str, int]

    def as_dict(self) -> dict[str, Any]:
        return {
            "type": self.type,
            "direction": self.direction,
            "line": self.line,
            "zone": self.zone,
            "track_id": self.track_id,
            "timestamp_ms": self.timestamp_ms,
            "frame_index": self.frame_index,
            "point": [round(self.point[0], 1), round(self.point[1], 1)],
            "counts_after": dict(self.counts_after),
        }


@dataclass(frozen=True, slots=True)
class LineCount:
    """A line's totals: ``count_in`` (left → right of start→end), ``count_out``."""

    name: str
    count_in: int
    count_out: int

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "in": self.count_in, "out": self.count_out}


@dataclass(frozen=True, slots=True)
class ZoneCount:
    """A zone's ``entered`` / ``exited`` totals and ``peak`` occupancy (entries − exits, in time
    order). Every track ends with the stream, so a track still inside exits then: entered ==
    exited in a finished outcome."""

    name: str
    entered: int
    exited: int
    peak: int

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "entered": self.entered, "exited": self.exited, "peak": self.peak}


@dataclass(frozen=True, slots=True)
class TimelinePoint:
    """Cumulative counts at the end of second ``second`` of video time (events with
    ``timestamp_ms < (second + 1) · 1000``), and ``people``: the most confirmed tracks seen on
    one frame within that second."""

    second: int
    lines: Mapping[str, Mapping[str, int]]  # name → {"in", "out"}
    zones: Mapping[str, Mapping[str, int]]  # name → {"in", "out", "inside"}
    people: int

    def as_dict(self) -> dict[str, Any]:
        return {
            "second": self.second,
            "t_ms": self.second * 1000,
            "lines": {k: dict(v) for k, v in self.lines.items()},
            "zones": {k: dict(v) for k, v in self.zones.items()},
            "people": self.people,
        }


@dataclass(frozen=True, slots=True)
class CountingOutcome:
    """Everything one stream produced.

    ``frames`` (empty when ``keep_frames`` is off), ``tracks`` (confirmed, by id), ``events``
    (time order), ``lines``/``zones`` totals in the order given, ``timeline`` one point per second
    from 0 to the last frame's second, ``frames_processed``, ``people_max`` (most confirmed
    tracks on one frame), ``model`` (the detector's, None when detections were fed directly),
    ``stage_ms`` total milliseconds in ``detect``, ``track``, ``count``.
    """

    frames: tuple[FrameTracks, ...]
    tracks: tuple[TrackRecord, ...]
    events: tuple[CountingEvent, ...]
    lines: tuple[LineCount, ...]
    zones: tuple[ZoneCount, ...]
    timeline: tuple[TimelinePoint, ...]
    frames_processed: int
    people_max: int
    model: ModelRef | None
    stage_ms: Mapping[str, float]

    def summary(self) -> dict[str, Any]:
        """The job summary (counting_videos.summary): lines, zones, timeline, tracks, people_max."""
        return {
            "lines": [c.as_dict() for c in self.lines],
            "zones": [c.as_dict() for c in self.zones],
            "timeline": [p.as_dict() for p in self.timeline],
            "tracks": len(self.tracks),
            "people_max": self.people_max,
            "frames_processed": self.frames_processed,
        }


@dataclass(slots=True)
class _FrameLog:
    frame_index: int
    timestamp_ms: int
    boxes: npt.NDArray[np.float32]
    scores: npt.NDArray[np.float32]
    keys: npt.NDArray[np.int64]  # the tracker's internal keys (0 = none)


@dataclass(slots=True)
class _Raw:
    crossing: Crossing
    order: int


def bottom_centre(box: npt.ArrayLike) -> Point:
    """The middle of a box's bottom edge (xyxy → (x, y)): where a standing person's feet are."""
    x1, _, x2, y2 = (float(v) for v in np.asarray(box).reshape(4))
    return ((x1 + x2) / 2.0, y2)


class CountingEngine:
    """Detector + tracker + counters over one stream (see the module docstring).

    ``detector`` may be None when detections are fed with :meth:`feed_detections` (evaluation on
    ground-truth boxes, tests). ``lines``/``zones`` names must be unique (ValueError otherwise).
    One engine serves one stream; it is not thread-safe.
    """

    def __init__(
        self,
        detector: BoxDetector | None,
        lines: Sequence[CountingLine] = (),
        zones: Sequence[CountingZone] = (),
        settings: CountingSettings | None = None,
    ) -> None:
        check_unique_names(lines, zones)
        self.detector = detector
        self.settings = settings if settings is not None else CountingSettings()
        self.lines = tuple(lines)
        self.zones = tuple(zones)
        self._tracker = PersonTracker(self.settings.tracker)
        self._line_counters = [LineCounter(line, self.settings.line_debounce) for line in self.lines]
        self._zone_counters = [ZoneCounter(zone, self.settings.zone_debounce) for zone in self.zones]
        self._counters: list[LineCounter | ZoneCounter] = [*self._line_counters, *self._zone_counters]
        self._frames: list[_FrameLog] = []
        self._raw: list[_Raw] = []
        self._stage_ms = {"detect": 0.0, "track": 0.0, "count": 0.0}
        self._frames_processed = 0
        self._finished: CountingOutcome | None = None

    def process(
        self,
        frames: Iterable[tuple[npt.NDArray[np.uint8], int, int]],
        on_frame: Callable[[int], None] | None = None,
    ) -> CountingOutcome:
        """Feed every ``(rgb (H, W, 3) uint8, timestamp_ms, frame_index)`` and finish;
        ``on_frame(frames_processed)`` is called after each (progress)."""
        for rgb, timestamp_ms, frame_index in frames:
            self.feed(rgb, timestamp_ms, frame_index)
            if on_frame is not None:
                on_frame(self._frames_processed)
        return self.finish()

    def feed(self, rgb: npt.NDArray[np.uint8], timestamp_ms: int, frame_index: int) -> FrameTracks:
        """Detect, track and count one frame; its detections with the ids known so far
        (tentative tracks show 0 here; :meth:`finish` fills them in). Raises ValueError when no
        detector was given or time goes backwards."""
        if self.detector is None:
            raise ValueError("this engine has no detector: use feed_detections")
        started = time.perf_counter()
        found = self.detector.detect(rgb, min_confidence=self.settings.tracker.low_score)
        self._stage_ms["detect"] += (time.perf_counter() - started) * 1000.0
        return self.feed_detections(found.boxes, found.scores, timestamp_ms, frame_index)

    def feed_detections(
        self, boxes: npt.ArrayLike, scores: npt.ArrayLike, timestamp_ms: int, frame_index: int
    ) -> FrameTracks:
        """Track and count one frame's given detections: ``boxes`` (N, 4) xyxy pixels, ``scores``
        (N,) 0..1. Raises ValueError on mismatched shapes, after :meth:`finish`, or when time goes
        backwards."""
        if self._finished is not None:
            raise ValueError("the engine has finished")
        box_array = np.asarray(boxes, dtype=np.float32).reshape(-1, 4)
        score_array = np.asarray(scores, dtype=np.float32).reshape(-1)
        if len(box_array) != len(score_array):
            raise ValueError(f"{len(box_array)} boxes but {len(score_array)} scores")
        started = time.perf_counter()
        step = self._tracker.update(box_array, score_array, timestamp_ms)
        tracked = time.perf_counter()
        self._stage_ms["track"] += (tracked - started) * 1000.0
        for key in step.ended:
            self._end_key(key)
        for row, key in enumerate(step.keys):
            if key:
                point = bottom_centre(box_array[row])
                height = float(box_array[row, 3] - box_array[row, 1])
                for counter in self._counters:
                    self._note(counter.update(int(key), point, timestamp_ms, frame_index, height))
        self._stage_ms["count"] += (time.perf_counter() - tracked) * 1000.0
        self._frames_processed += 1
        # Kept even without keep_frames: trajectories and ids are built from it at the end.
        self._frames.append(_FrameLog(frame_index, timestamp_ms, box_array, score_array, step.keys))
        return FrameTracks(frame_index, timestamp_ms, box_array, score_array, self._public_ids(step.keys))

    def finish(self) -> CountingOutcome:
        """End every track, settle pending crossings and build the outcome (idempotent)."""
        if self._finished is not None:
            return self._finished
        started = time.perf_counter()
        for key in self._tracker.end_all():
            self._end_key(key)
        public = self._tracker.public_ids()
        frames = tuple(
            FrameTracks(log.frame_index, log.timestamp_ms, log.boxes, log.scores, _map_ids(log.keys, public))
            for log in self._frames
        )
        events = self._events(public)
        self._stage_ms["count"] += (time.perf_counter() - started) * 1000.0
        outcome = CountingOutcome(
            frames=frames if self.settings.keep_frames else (),
            tracks=_tracks(frames),
            events=events,
            lines=self._line_totals(events),
            zones=self._zone_totals(events),
            timeline=self._timeline(frames, events),
            frames_processed=self._frames_processed,
            people_max=max((int(np.count_nonzero(f.track_ids)) for f in frames), default=0),
            model=None if self.detector is None else self.detector.model,
            stage_ms=dict(self._stage_ms),
        )
        self._frames = []
        self._finished = outcome
        return outcome

    # --- internals -------------------------------------------------------------------------------

    def _note(self, crossing: Crossing | None) -> None:
        if crossing is not None:
            self._raw.append(_Raw(crossing, len(self._raw)))

    def _end_key(self, key: int) -> None:
        for counter in self._counters:
            self._note(counter.end_track(key))

    def _public_ids(self, keys: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
        return _map_ids(keys, self._tracker.public_ids())

    def _events(self, public: Mapping[int, int]) -> tuple[CountingEvent, ...]:
        # Counters emit in the order they settle (a track's pending crossing settles when it ends,
        # later than other tracks' events): sort by time, then recount so counts_after is in order.
        kept = [r for r in self._raw if r.crossing.track_id in public]
        kept.sort(key=lambda r: (r.crossing.timestamp_ms, r.order))
        totals: dict[tuple[str, str], dict[str, int]] = {}
        events: list[CountingEvent] = []
        for raw in kept:
            c = raw.crossing
            is_line = c.kind == "cross_line"
            counts = totals.setdefault(("line" if is_line else "zone", c.name), {"in": 0, "out": 0})
            counts[c.direction] += 1
            after = dict(counts) if is_line else {**counts, "inside": counts["in"] - counts["out"]}
            events.append(
                CountingEvent(
                    c.kind,
                    c.direction,
                    c.name if is_line else None,
                    None if is_line else c.name,
                    public[c.track_id],
                    c.timestamp_ms,
                    c.frame_index,
                    c.point,
                    after,
                )
            )
        return tuple(events)

    def _line_totals(self, events: Sequence[CountingEvent]) -> tuple[LineCount, ...]:
        # From the kept events: the live counters also counted tracks that were never confirmed.
        return tuple(
            LineCount(
                line.name,
                sum(1 for e in events if e.line == line.name and e.direction == "in"),
                sum(1 for e in events if e.line == line.name and e.direction == "out"),
            )
            for line in self.lines
        )

    def _zone_totals(self, events: Sequence[CountingEvent]) -> tuple[ZoneCount, ...]:
        totals = []
        for zone in self.zones:
            inside = peak = entered = exited = 0
            for event in events:
                if event.zone != zone.name:
                    continue
                if event.direction == "in":
                    entered, inside = entered + 1, inside + 1
                    peak = max(peak, inside)
                else:
                    exited, inside = exited + 1, inside - 1
            totals.append(ZoneCount(zone.name, entered, exited, peak))
        return tuple(totals)

    def _timeline(
        self, frames: Sequence[FrameTracks], events: Sequence[CountingEvent]
    ) -> tuple[TimelinePoint, ...]:
        if not frames:
            return ()
        last_second = frames[-1].timestamp_ms // 1000
        people = [0] * (last_second + 1)
        for frame in frames:
            second = frame.timestamp_ms // 1000
            people[second] = max(people[second], int(np.count_nonzero(frame.track_ids)))
        times = [e.timestamp_ms for e in events]
        points = []
        for second in range(last_second + 1):
            upto = bisect.bisect_left(times, (second + 1) * 1000)
            lines: dict[str, dict[str, int]] = {line.name: {"in": 0, "out": 0} for line in self.lines}
            zones: dict[str, dict[str, int]] = {z.name: {"in": 0, "out": 0, "inside": 0} for z in self.zones}
            for event in events[:upto]:
                if event.line is not None:
                    lines[event.line][event.direction] += 1
                elif event.zone is not None:
                    zone = zones[event.zone]
                    zone[event.direction] += 1
                    zone["inside"] = zone["in"] - zone["out"]
            points.append(TimelinePoint(second, lines, zones, people[second]))
        return tuple(points)


def _map_ids(keys: npt.NDArray[np.int64], public: Mapping[int, int]) -> npt.NDArray[np.int64]:
    return np.array([public.get(int(k), 0) for k in keys], dtype=np.int64)


def _tracks(frames: Sequence[FrameTracks]) -> tuple[TrackRecord, ...]:
    seen: dict[int, list[tuple[FrameTracks, int]]] = {}
    for frame in frames:
        for row, track_id in enumerate(frame.track_ids):
            if track_id:
                seen.setdefault(int(track_id), []).append((frame, row))
    records = []
    for track_id in sorted(seen):
        hits = seen[track_id]
        trajectory = tuple(
            TrajectoryPoint(*bottom_centre(frame.boxes[row]), frame.timestamp_ms) for frame, row in hits
        )
        last_frame, last_row = hits[-1]
        records.append(
            TrackRecord(
                track_id=track_id,
                first_timestamp_ms=hits[0][0].timestamp_ms,
                last_timestamp_ms=last_frame.timestamp_ms,
                first_frame_index=hits[0][0].frame_index,
                last_frame_index=last_frame.frame_index,
                frames_seen=len(hits),
                last_box=tuple(float(v) for v in last_frame.boxes[last_row]),  # type: ignore[arg-type]
                velocity=_velocity(trajectory),
                mean_score=float(np.mean([frame.scores[row] for frame, row in hits])),
                trajectory=trajectory,
            )
        )
    return tuple(records)


def _velocity(trajectory: Sequence[TrajectoryPoint]) -> tuple[float, float]:
    """px/s of the bottom-centre over the last second seen (first point ≥ 1 s before the last)."""
    last = trajectory[-1]
    first = next((p for p in trajectory if last.t_ms - p.t_ms <= 1000), last)
    if first is last or last.t_ms == first.t_ms:
        return (0.0, 0.0)
    seconds = (last.t_ms - first.t_ms) / 1000.0
    return ((last.x - first.x) / seconds, (last.y - first.y) / seconds)
