"""Multi-person tracking by detection, ByteTrack-style (Zhang et al., "ByteTrack: Multi-Object
Tracking by Associating Every Detection Box", ECCV 2022, and its reference code).

Each :meth:`PersonTracker.update` takes one frame's person boxes and confidences:

1. every live track's box is predicted to the frame's time by a Kalman filter with a constant
   velocity model on ``(cx, cy, w, h)`` (BoT-SORT's xywh variant of ByteTrack's filter; noise
   proportional to the box size, the constants of the reference code, whose unit of time is one
   frame at 30 frames/s — here time is real milliseconds, converted, so sparse sampling widens
   the prediction's uncertainty instead of breaking it);
2. *high* detections (``score ≥ high_score``) are matched to the confirmed and the lost tracks by
   ``1 − IoU`` with ``scipy.optimize.linear_sum_assignment``; a pair needs IoU ≥ ``match_iou`` —
   or, as a fallback ranked after every IoU match (cost 1 + d / gate), its centre within
   ``gate = (0.25 + max_heights_per_second · Δt) · h`` of the predicted centre (``h`` the predicted
   box height, ``Δt`` seconds since the track was last matched) and a height within a factor
   1.5. ByteTrack matches by IoU alone at 30 frames/s; sampled video (the API's default is
   5 frames/s, and a new track has no velocity yet) moves a person by more than their width
   between samples, where no IoU is left to match;
3. the confirmed tracks still unmatched are matched to the *low* detections
   (``low_score ≤ score < high_score``: the occluded or blurred people ByteTrack recovers) with
   IoU ≥ ``low_match_iou``; those still unmatched become *lost*;
4. tentative tracks are matched to the remaining high detections (IoU ≥ ``tentative_match_iou``,
   with the same distance fallback);
   a tentative track missed once is dropped;
5. the remaining high detections with ``score ≥ new_track_score`` start tentative tracks;
6. a tentative track becomes confirmed after ``min_hits`` consecutive matches and only then gets a
   public id (1, 2, … in order of confirmation); a lost track unseen for more than
   ``max_missed_seconds`` of video time ends (a person who comes back later gets a new id); so
   does a track matched only by low detections for more than ``max_low_only_seconds`` — not in
   ByteTrack, where a low box on static clutter (a post, a bin) can hold a person's track in
   place for ever after they left: with NanoDet's scores on PETS09-S2L1 such zombie tracks were
   two thirds of the false positives (943 → 334; MOTA 0.68 → 0.81 with the limit, docs/accuracy.md).

Low detections never start tracks, so clutter below ``high_score`` cannot create people.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

# scipy ships no type information (pyproject's mypy overrides may list it; then this is unused).
from scipy.optimize import linear_sum_assignment  # type: ignore[import-untyped, unused-ignore]

from facesocial.vision.geometry import iou_matrix

FloatArray = npt.NDArray[np.float64]

# ByteTrack/BoT-SORT's Kalman noise: standard deviations as fractions of the box's width/height,
# per frame at 30 frames/s (reference code: std_weight_position = 1/20, std_weight_velocity = 1/160).
_STD_POSITION = 1.0 / 20.0
_STD_VELOCITY = 1.0 / 160.0
_REFERENCE_FPS = 30.0
# Cost of an impossible pair (below the IoU gate): the assignment takes one only when nothing
# else is left, and such pairs are dropped afterwards.
_GATED = 1e6
# The distance fallback's limit on the height change between prediction and detection.
_MAX_HEIGHT_RATIO = 1.5


@dataclass(frozen=True, slots=True)
class TrackerSettings:
    """Thresholds of :class:`PersonTracker` (see the module docstring for their role).

    Scores are detector confidences 0..1; IoUs 0..1; ``min_hits`` ≥ 1; ``max_missed_seconds`` and
    ``max_low_only_seconds`` ≥ 0 of video time; ``max_heights_per_second`` ≥ 0 (0 turns it off)
    sizes the distance fallback of high detections (module docstring, step 2). Defaults follow
    ByteTrack's reference (``track_thresh`` 0.5, new tracks at ``track_thresh + 0.1``, low boxes
    from 0.1, first match ``match_thresh`` 0.8 as a cost = IoU ≥ 0.2, second match IoU ≥ 0.5,
    tentative IoU ≥ 0.3, a track buffer of 30 frames at 30 frames/s = 1 s, activation on the
    second hit); the fallback's 1 body height per second is a brisk walk (1.4 m/s for a 1.7 m
    person is 0.8); the low-only limit: on PETS09-S2L1 with NanoDet, 1 s, 2 s and no limit gave
    IDF1 0.618, 0.659, 0.616 and MOTA 0.818, 0.813, 0.677.
    """

    high_score: float = 0.5
    low_score: float = 0.1
    new_track_score: float = 0.6
    match_iou: float = 0.2
    low_match_iou: float = 0.5
    tentative_match_iou: float = 0.3
    min_hits: int = 2
    max_missed_seconds: float = 1.0
    max_heights_per_second: float = 1.0
    max_low_only_seconds: float = 2.0

    def __post_init__(self) -> None:
        scores = (self.high_score, self.low_score, self.new_track_score)
        ious = (self.match_iou, self.low_match_iou, self.tentative_match_iou)
        if not all(0.0 <= v <= 1.0 for v in (*scores, *ious)):
            raise ValueError("tracker scores and IoUs must be within 0..1")
        if self.low_score > self.high_score:
            raise ValueError("low_score must not exceed high_score")
        rates = (self.max_missed_seconds, self.max_low_only_seconds, self.max_heights_per_second)
        if self.min_hits < 1 or not all(v >= 0 for v in rates):
            raise ValueError(
                "min_hits ≥ 1; max_missed_seconds, max_low_only_seconds, max_heights_per_second ≥ 0"
            )

    def replace(self, **changes: float | int) -> TrackerSettings:
        """A copy with ``changes`` (field name → value), validated."""
        return dataclasses.replace(self, **changes)  # type: ignore[arg-type]


@dataclass(frozen=True, slots=True)
class TrackerStep:
    """One update's result: ``keys`` (N,) int64, the internal key of the track each detection
    joined (≥ 1; 0 = none: a low detection left over, or a high one too weak to start a track);
    ``ended`` the keys of tracks that ended in this update (lost too long, or tentative and
    missed). Keys are internal; :meth:`PersonTracker.public_ids` maps confirmed ones to ids."""

    keys: npt.NDArray[np.int64]
    ended: tuple[int, ...]


@dataclass(slots=True)
class _Track:
    key: int
    mean: FloatArray  # (8,) cx, cy, w, h and their velocities (px per reference frame)
    covariance: FloatArray  # (8, 8)
    last_ms: int  # last matched
    state_ms: int  # the time ``mean`` refers to (predicted up to)
    last_high_ms: int  # last matched by a high detection
    hits: int = 1
    confirmed: bool = False
    lost: bool = False
    predicted_box: FloatArray = field(default_factory=lambda: np.zeros(4))


class PersonTracker:
    """ByteTrack-style tracker of person boxes (module docstring). One instance per stream."""

    def __init__(self, settings: TrackerSettings | None = None) -> None:
        self.settings = settings if settings is not None else TrackerSettings()
        self._tracks: list[_Track] = []
        self._next_key = 1
        self._public: dict[int, int] = {}
        self._last_ms: int | None = None

    def public_ids(self) -> dict[int, int]:
        """Internal key → public track id (≥ 1) of every track confirmed so far."""
        return dict(self._public)

    def end_all(self) -> tuple[int, ...]:
        """End every live track (end of stream); their keys."""
        keys = tuple(t.key for t in self._tracks)
        self._tracks = []
        return keys

    def update(self, boxes: npt.ArrayLike, scores: npt.ArrayLike, timestamp_ms: int) -> TrackerStep:
        """Track one frame: ``boxes`` (N, 4) xyxy pixels, ``scores`` (N,) 0..1 at ``timestamp_ms``.

        Raises ValueError on mismatched shapes or when time goes backwards.
        """
        detections = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
        confidences = np.asarray(scores, dtype=np.float64).reshape(-1)
        if len(detections) != len(confidences):
            raise ValueError(f"{len(detections)} boxes but {len(confidences)} scores")
        if self._last_ms is not None and timestamp_ms < self._last_ms:
            raise ValueError(f"timestamp {timestamp_ms} ms precedes the last update's ({self._last_ms} ms)")
        self._last_ms = timestamp_ms
        s = self.settings
        for track in self._tracks:
            _predict(track, timestamp_ms)
        keys = np.zeros(len(detections), dtype=np.int64)
        high = [i for i in range(len(detections)) if confidences[i] >= s.high_score]
        low = [i for i in range(len(detections)) if s.low_score <= confidences[i] < s.high_score]
        seen: set[int] = set()

        # 1. confirmed (tracked or lost) tracks ← high detections.
        pool = [t for t in self._tracks if t.confirmed]
        matched, high = self._match(pool, high, detections, s.match_iou, timestamp_ms)
        self._apply(matched, detections, keys, timestamp_ms, seen, strong=True)
        # 2. confirmed tracks tracked until now ← low detections; the rest become lost.
        pool = [t for t in self._tracks if t.confirmed and not t.lost and t.key not in seen]
        matched, _ = self._match(pool, low, detections, s.low_match_iou)
        self._apply(matched, detections, keys, timestamp_ms, seen, strong=False)
        # 3. tentative tracks ← remaining high detections.
        pool = [t for t in self._tracks if not t.confirmed]
        matched, high = self._match(pool, high, detections, s.tentative_match_iou, timestamp_ms)
        self._apply(matched, detections, keys, timestamp_ms, seen, strong=True)

        ended: list[int] = []
        alive: list[_Track] = []
        for track in self._tracks:
            if (timestamp_ms - track.last_high_ms) / 1000.0 > s.max_low_only_seconds:
                ended.append(track.key)  # held only by low detections for too long
            elif track.key in seen:
                alive.append(track)
            elif not track.confirmed:
                ended.append(track.key)  # a tentative track missed once is dropped
            elif (timestamp_ms - track.last_ms) / 1000.0 > s.max_missed_seconds:
                ended.append(track.key)
            else:
                track.lost = True
                alive.append(track)
        self._tracks = alive
        # 4. new tentative tracks from the strong detections left over.
        for row in high:
            if confidences[row] >= s.new_track_score:
                track = _new_track(self._next_key, detections[row], timestamp_ms)
                self._next_key += 1
                self._confirm_if_due(track)
                self._tracks.append(track)
                keys[row] = track.key
        return TrackerStep(keys, tuple(ended))

    # --- internals -------------------------------------------------------------------------------

    def _match(
        self,
        tracks: list[_Track],
        rows: list[int],
        detections: FloatArray,
        min_iou: float,
        timestamp_ms: int | None = None,
    ) -> tuple[list[tuple[_Track, int]], list[int]]:
        """Pairs (track, detection row) of the minimum-cost assignment that pass the gate (IoU ≥
        ``min_iou``, or with ``timestamp_ms`` given the distance fallback), and the rows left
        unmatched (in their order)."""
        if not tracks or not rows:
            return [], rows
        predicted = np.stack([t.predicted_box for t in tracks])
        candidates = detections[rows]
        iou = iou_matrix(predicted, candidates)
        cost = np.where(iou >= min_iou, 1.0 - iou, _GATED)
        if timestamp_ms is not None and self.settings.max_heights_per_second > 0:
            cost = np.minimum(cost, self._distance_cost(tracks, predicted, candidates, timestamp_ms))
        track_index, row_index = linear_sum_assignment(cost)
        pairs = [
            (tracks[int(ti)], rows[int(ri)])
            for ti, ri in zip(track_index, row_index, strict=True)
            if cost[ti, ri] < _GATED
        ]
        used = {row for _, row in pairs}
        return pairs, [row for row in rows if row not in used]

    def _distance_cost(
        self, tracks: list[_Track], predicted: FloatArray, candidates: FloatArray, timestamp_ms: int
    ) -> FloatArray:
        """1 + d / gate where the centre distance d is within the gate and heights agree; else gated."""
        heights = predicted[:, 3] - predicted[:, 1]
        elapsed = np.array([(timestamp_ms - t.last_ms) / 1000.0 for t in tracks])
        gate = (0.25 + self.settings.max_heights_per_second * elapsed) * heights
        centres = (predicted[:, :2] + predicted[:, 2:]) / 2.0
        found = (candidates[:, :2] + candidates[:, 2:]) / 2.0
        distance = np.linalg.norm(centres[:, None, :] - found[None, :, :], axis=2)
        ratio = (candidates[None, :, 3] - candidates[None, :, 1]) / np.maximum(heights[:, None], 1e-6)
        ok = (distance <= gate[:, None]) & (ratio <= _MAX_HEIGHT_RATIO) & (ratio >= 1.0 / _MAX_HEIGHT_RATIO)
        return np.where(ok, 1.0 + distance / np.maximum(gate[:, None], 1e-6), _GATED)

    def _apply(
        self,
        pairs: list[tuple[_Track, int]],
        detections: FloatArray,
        keys: npt.NDArray[np.int64],
        timestamp_ms: int,
        seen: set[int],
        *,
        strong: bool,
    ) -> None:
        for track, row in pairs:
            _correct(track, detections[row])
            track.last_ms = timestamp_ms
            if strong:
                track.last_high_ms = timestamp_ms
            track.hits += 1
            track.lost = False
            self._confirm_if_due(track)
            keys[row] = track.key
            seen.add(track.key)

    def _confirm_if_due(self, track: _Track) -> None:
        if not track.confirmed and track.hits >= self.settings.min_hits:
            track.confirmed = True
            self._public[track.key] = len(self._public) + 1


def _xywh(box: FloatArray) -> FloatArray:
    x1, y1, x2, y2 = box
    return np.array([(x1 + x2) / 2.0, (y1 + y2) / 2.0, max(x2 - x1, 1e-3), max(y2 - y1, 1e-3)])


def _xyxy(state: FloatArray) -> FloatArray:
    cx, cy, w, h = state[:4]
    return np.array([cx - w / 2.0, cy - h / 2.0, cx + w / 2.0, cy + h / 2.0])


def _new_track(key: int, box: FloatArray, timestamp_ms: int) -> _Track:
    measured = _xywh(box)
    w, h = measured[2], measured[3]
    size = np.array([w, h, w, h])
    std = np.concatenate([2.0 * _STD_POSITION * size, 10.0 * _STD_VELOCITY * size])
    mean = np.concatenate([measured, np.zeros(4)])
    return _Track(
        key, mean, np.diag(std**2), timestamp_ms, timestamp_ms, timestamp_ms, predicted_box=box.copy()
    )


def _predict(track: _Track, timestamp_ms: int) -> None:
    """Move the track's state to ``timestamp_ms`` (Kalman predict); sets ``predicted_box``.

    The reference filter steps one frame (at 30 frames/s) at a time; here the step is the elapsed
    time in such frames, and the process noise grows with it (a random walk's variance is linear
    in time)."""
    steps = max(0.0, (timestamp_ms - track.state_ms) / 1000.0 * _REFERENCE_FPS)
    track.state_ms = max(track.state_ms, timestamp_ms)
    if steps > 0:
        transition = np.eye(8)
        transition[:4, 4:] = np.eye(4) * steps
        w, h = track.mean[2], track.mean[3]
        size = np.array([w, h, w, h])
        noise = np.diag(np.concatenate([(_STD_POSITION * size) ** 2, (_STD_VELOCITY * size) ** 2]) * steps)
        track.mean = transition @ track.mean
        track.covariance = transition @ track.covariance @ transition.T + noise
        # A box cannot shrink below a pixel however its size velocity extrapolates.
        track.mean[2:4] = np.maximum(track.mean[2:4], 1.0)
    track.predicted_box = _xyxy(track.mean)


def _correct(track: _Track, box: FloatArray) -> None:
    """Kalman update of the (already predicted) track with a measured xyxy ``box``."""
    measured = _xywh(box)
    w, h = track.mean[2], track.mean[3]
    size = np.array([w, h, w, h])
    measurement_noise = np.diag((_STD_POSITION * size) ** 2)
    projection = np.eye(4, 8)
    projected_cov = projection @ track.covariance @ projection.T + measurement_noise
    gain = np.linalg.solve(projected_cov, projection @ track.covariance).T
    track.mean = track.mean + gain @ (measured - projection @ track.mean)
    track.covariance = track.covariance - gain @ projected_cov @ gain.T
