"""PersonTracker (ByteTrack-style) and CountingEngine on synthetic person boxes."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
import pytest

from facesocial.analytics.counting import Debounce
from facesocial.analytics.people_counting import (
    CountingEngine,
    CountingLine,
    CountingSettings,
    CountingZone,
)
from facesocial.analytics.tracking import PersonTracker, TrackerSettings
from facesocial.models.manifest import ModelRef
from facesocial.vision.persons import PersonBoxes

W, H = 30.0, 80.0  # a pedestrian box


def person(cx: float, bottom: float) -> list[float]:
    return [cx - W / 2, bottom - H, cx + W / 2, bottom]


def public(tracker: PersonTracker, keys: np.ndarray) -> list[int]:
    ids = tracker.public_ids()
    return [ids.get(int(k), 0) for k in keys]


def test_two_people_crossing_keep_their_ids() -> None:
    # A walks right, B walks left on nearly the same row, 60 px/s at 10 frames/s; they overlap
    # for several frames in the middle (the Kalman prediction carries each through).
    tracker = PersonTracker()
    history = []
    for step in range(40):
        t = step * 100
        boxes = [person(100 + 0.06 * t, 200), person(340 - 0.06 * t, 205)]
        history.append(public(tracker, tracker.update(boxes, [0.9, 0.8], t).keys))
    settled = history[2:]
    assert all(ids == settled[0] for ids in settled), history
    assert sorted(settled[0]) == [1, 2]


def test_birth_after_min_hits_and_a_one_frame_false_positive_gets_no_id() -> None:
    tracker = PersonTracker(TrackerSettings(min_hits=3))
    first = tracker.update([person(100, 200), person(300, 200)], [0.9, 0.9], 0)
    assert public(tracker, first.keys) == [0, 0]  # tentative
    tracker.update([person(102, 200)], [0.9], 100)  # the one at x=300 was a false positive
    third = tracker.update([person(104, 200)], [0.9], 200)
    assert public(tracker, third.keys) == [1]
    assert len(tracker.public_ids()) == 1


def test_low_score_detections_continue_a_track_but_never_start_one() -> None:
    tracker = PersonTracker()
    for step in range(3):
        tracker.update([person(100 + 5 * step, 200)], [0.9], step * 100)
    # Occluded: the detector's score drops to 0.2 (below high_score 0.5, above low_score 0.1).
    occluded = tracker.update([person(115, 200), person(400, 200)], [0.2, 0.3], 300)
    assert public(tracker, occluded.keys) == [1, 0]
    assert occluded.keys[1] == 0  # the low one far away is not a person to track
    for step in range(4, 8):  # it never becomes one
        step_result = tracker.update([person(400, 200)], [0.3], step * 100)
        assert step_result.keys.tolist() == [0]


def test_a_short_gap_keeps_the_id_and_a_long_one_ends_the_track() -> None:
    tracker = PersonTracker(TrackerSettings(max_missed_seconds=1.0))
    for step in range(10):
        tracker.update([person(100 + 6 * step, 200)], [0.9], step * 100)
    # Unseen for 0.8 s (occluded), then back 48 px further, where its velocity predicts.
    for t in range(1000, 1800, 100):
        tracker.update(np.zeros((0, 4)), np.zeros(0), t)
    back = tracker.update([person(100 + 6 * 18, 200)], [0.9], 1800)
    assert public(tracker, back.keys) == [1]
    # Gone for 1.5 s: the track ends, and whoever appears there is someone new.
    ended: list[int] = []
    for t in range(1900, 3400, 100):
        ended.extend(tracker.update(np.zeros((0, 4)), np.zeros(0), t).ended)
    assert len(ended) == 1
    tracker.update([person(300, 200)], [0.9], 3400)
    again = tracker.update([person(302, 200)], [0.9], 3500)
    assert public(tracker, again.keys) == [2]


def test_sparse_sampling_follows_a_walker_by_its_velocity() -> None:
    # 2 frames/s; the walker moves 40 px (more than its width) between samples, so the raw boxes
    # of consecutive samples barely overlap: the predicted box must be moved by the velocity.
    tracker = PersonTracker()
    ids = []
    for step in range(12):
        t = step * 500
        keys = tracker.update([person(100 + 0.08 * t, 200 + 0.01 * t)], [0.9], t).keys
        ids.append(public(tracker, keys)[0])
    assert ids[1:] == [1] * 11, ids


def test_invalid_input_is_rejected() -> None:
    tracker = PersonTracker()
    with pytest.raises(ValueError):
        tracker.update([person(1, 100)], [0.9, 0.8], 0)
    tracker.update([person(1, 100)], [0.9], 100)
    with pytest.raises(ValueError, match="precedes"):
        tracker.update([person(1, 100)], [0.9], 50)
    with pytest.raises(ValueError):
        TrackerSettings(low_score=0.6, high_score=0.5)


# --- the engine -------------------------------------------------------------------------------------

DOOR = CountingLine("door", (0.0, 300.0), (640.0, 300.0))  # walking down = in


def walker_frames(
    walkers: Sequence[tuple[float, float, float, int, int]], frames: int, step_ms: int = 200
) -> list[tuple[list[list[float]], list[float], int, int]]:
    """(boxes, scores, timestamp_ms, frame_index) per frame; a walker is (x, y0, px/s down,
    first frame, last frame)."""
    out = []
    for index in range(frames):
        t = index * step_ms
        boxes = [
            person(x, y0 + speed * t / 1000.0)
            for x, y0, speed, first, last in walkers
            if first <= index <= last
        ]
        out.append((boxes, [0.9] * len(boxes), t, index))
    return out


class _FixedDetector:
    """A detector stand-in returning scripted boxes per call (the engine's wiring is the point)."""

    model = ModelRef("scripted", "1")

    def __init__(self, script: list[tuple[list[list[float]], list[float], int, int]]) -> None:
        self._script = iter(script)
        self.min_confidences: list[float] = []

    def detect(self, rgb: npt.NDArray[np.uint8], *, min_confidence: float = 0.3) -> PersonBoxes:
        boxes, scores, _, _ = next(self._script)
        self.min_confidences.append(min_confidence)
        return PersonBoxes(np.asarray(boxes, np.float32).reshape(-1, 4), np.asarray(scores, np.float32))


def test_engine_counts_tracks_and_builds_the_outcome() -> None:
    # Two walk down across the door, one (seen from 2 s at y=420) walks up across it, one stays above.
    walkers = [(100, 200, 60, 0, 30), (300, 180, 80, 0, 30), (500, 560, -70, 10, 40), (600, 100, 0, 0, 40)]
    script = walker_frames(walkers, 41)
    detector = _FixedDetector(script)
    frame = np.zeros((480, 640, 3), np.uint8)
    zone = CountingZone("below", ((0, 300), (640, 300), (640, 480), (0, 480)))
    engine = CountingEngine(detector, [DOOR], [zone])
    progress: list[int] = []
    outcome = engine.process(((frame, t, i) for _, _, t, i in script), on_frame=progress.append)

    assert progress == list(range(1, 42))
    assert detector.min_confidences == [0.1] * 41  # the low score, for ByteTrack's second stage
    assert [c.as_dict() for c in outcome.lines] == [{"name": "door", "in": 2, "out": 1}]
    assert outcome.model == ModelRef("scripted", "1")
    assert len(outcome.tracks) == 4 and outcome.people_max == 4
    # Ids were written back onto the tentative first detections: every box has an id.
    assert all(f.track_ids.all() for f in outcome.frames)
    first = outcome.tracks[0]
    assert first.trajectory[0].t_ms == 0 and first.frames_seen == 31
    assert first.velocity == pytest.approx((0.0, 60.0), abs=1.0)
    # Events in time order, counts_after cumulative in that order.
    lines = [e for e in outcome.events if e.line == "door"]
    assert [e.timestamp_ms for e in lines] == sorted(e.timestamp_ms for e in lines)
    assert [dict(e.counts_after) for e in lines][-1] == {"in": 2, "out": 1}
    # Zone: the two walking down enter; the one walking up was first seen inside and leaves.
    zone_totals = outcome.zones[0].as_dict()
    assert zone_totals["entered"] == 3 and zone_totals["exited"] == 3
    # Timeline: one point per second, cumulative, ending at the totals.
    assert [p.second for p in outcome.timeline] == list(range(9))
    assert outcome.timeline[-1].lines["door"] == {"in": 2, "out": 1}
    assert outcome.timeline[0].lines["door"] == {"in": 0, "out": 0}
    summary = outcome.summary()
    assert summary["tracks"] == 4 and summary["lines"] == [{"name": "door", "in": 2, "out": 1}]


def test_engine_drops_events_of_tracks_never_confirmed() -> None:
    engine = CountingEngine(None, [DOOR], settings=CountingSettings(tracker=TrackerSettings(min_hits=5)))
    # A track seen on 4 frames only (never confirmed), crossing the door.
    for index, bottom in enumerate([290, 298, 310, 320]):
        engine.feed_detections([person(100, bottom)], [0.9], index * 200, index)
    outcome = engine.finish()
    assert outcome.events == () and outcome.tracks == ()
    assert outcome.lines[0].as_dict() == {"name": "door", "in": 0, "out": 0}


def test_a_crossing_pending_when_the_stream_ends_is_counted_in_time_order() -> None:
    settings = CountingSettings(line_debounce=Debounce(min_frames=3, min_ms=0))
    engine = CountingEngine(None, [DOOR], settings=settings)
    # Track A crosses at frame 3 and is never seen again (its crossing settles when it ends, at
    # frame 9, after 1 s unseen); B crosses at frame 6 and holds the new side until frame 8.
    for index in range(10):
        boxes = []
        if index <= 3:
            boxes.append(person(100, 275 + 10 * index))
        boxes.append(person(400, 250 + 10 * index))
        engine.feed_detections(boxes, [0.9] * len(boxes), index * 200, index)
    outcome = engine.finish()
    assert [(e.track_id, e.frame_index, dict(e.counts_after)) for e in outcome.events] == [
        (1, 3, {"in": 1, "out": 0}),
        (2, 6, {"in": 2, "out": 0}),
    ]


def test_engine_rejects_bad_use() -> None:
    with pytest.raises(ValueError, match="duplicate"):
        CountingEngine(None, [DOOR, DOOR])
    engine = CountingEngine(None, [DOOR])
    with pytest.raises(ValueError, match="no detector"):
        engine.feed(np.zeros((4, 4, 3), np.uint8), 0, 0)
    engine.finish()
    with pytest.raises(ValueError, match="finished"):
        engine.feed_detections([], [], 0, 0)
    assert engine.finish() is engine.finish()


def test_a_track_held_only_by_low_detections_ends() -> None:
    # A person walks away, but a low-score box on static clutter where they stood keeps matching
    # the track (ByteTrack's second stage): after max_low_only_seconds the track ends anyway.
    tracker = PersonTracker(TrackerSettings(max_low_only_seconds=2.0, max_missed_seconds=1.0))
    for step in range(5):
        tracker.update([person(100, 200)], [0.9], step * 100)
    ended: list[int] = []
    held = []
    for step in range(5, 40):
        result = tracker.update([person(100, 200)], [0.2], step * 100)
        ended.extend(result.ended)
        held.append(public(tracker, result.keys)[0])
    assert ended == [1]  # its internal key
    # Held while the low box was plausible (up to 2 s after the last strong sighting at 400 ms).
    assert held[: 2400 // 100 - 5] == [1] * (2400 // 100 - 5)
    assert held[-1] == 0


@pytest.mark.parametrize(
    ("min_confidence", "high", "low", "new"),
    [(0.3, 0.3, 0.1, 0.4), (0.05, 0.05, 0.05, 0.15), (0.95, 0.95, 0.1, 1.0)],
)
def test_min_confidence_sets_the_tracker_thresholds(
    min_confidence: float, high: float, low: float, new: float
) -> None:
    tracker = CountingSettings().with_min_confidence(min_confidence).tracker
    assert (tracker.high_score, tracker.low_score, tracker.new_track_score) == pytest.approx((high, low, new))
    with pytest.raises(ValueError):
        CountingSettings().with_min_confidence(1.5)
