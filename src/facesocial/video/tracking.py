"""Faces tracked across sampled video frames: one stable id per person while they stay in view.

Each :meth:`FaceTracker.update` matches the frame's detections to the live tracks by a cost that
combines where the face is and, when embeddings are given, who it is:

* motion: ``1 − IoU`` between the detection and the track's box predicted at this time (constant
  velocity from its last two sightings), and the centre distance in face sizes relative to the
  largest shift allowed for the elapsed time;
* appearance: the cosine distance between the detection's embedding and the track's running mean.

Pairs that cannot be the same face are gated out before the assignment, never matched: a centre
shift beyond ``max_shift_base + max_shift_per_second · Δt`` face sizes, a size change beyond
``max_scale_change``, or (with embeddings) a cosine similarity below ``min_similarity``. The
assignment itself is ``scipy.optimize.linear_sum_assignment`` (minimum total cost; gated pairs carry
a prohibitive cost and are dropped if chosen). Unmatched detections start new tracks; a track
missed by the previous update and unseen for more than ``max_missed_seconds`` ends, and the face
gets a new id if it comes back (so samples further apart than that do not end tracks by
themselves). :meth:`FaceTracker.end_tracks` ends them all at a known shot boundary.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

# scipy ships no type information (pyproject's mypy overrides may list it; then this is unused).
from scipy.optimize import linear_sum_assignment  # type: ignore[import-untyped, unused-ignore]

from facesocial.vision.geometry import iou_matrix, l2_normalise

# Cost of a gated pair: far above any real cost (each is ≤ 1), so the assignment takes one only
# when nothing else is left; such pairs are dropped afterwards.
_GATED = 1e6
# Weight of the newest embedding in a track's running mean (the mean follows pose and light
# changes within a few sightings, yet one blurred frame cannot swing it).
_EMBEDDING_MOMENTUM = 0.3


@dataclass(frozen=True, slots=True)
class TrackSummary:
    """One track: ``track_id`` (≥ 1), first and last time it was seen (ms of video time), and
    ``frames_seen``, the number of updates that matched it."""

    track_id: int
    first_timestamp_ms: int
    last_timestamp_ms: int
    frames_seen: int


@dataclass(slots=True)
class _Track:
    track_id: int
    box: npt.NDArray[np.float64]  # last seen, xyxy
    first_ms: int
    last_ms: int
    frames_seen: int = 1
    velocity: npt.NDArray[np.float64] = field(default_factory=lambda: np.zeros(2))  # centre, px / s
    embedding: npt.NDArray[np.float32] | None = None

    def predicted(self, timestamp_ms: int) -> npt.NDArray[np.float64]:
        """The last box moved by the centre's velocity (its size is kept)."""
        shift = self.velocity * ((timestamp_ms - self.last_ms) / 1000.0)
        moved: npt.NDArray[np.float64] = self.box + np.concatenate([shift, shift])
        return moved


class FaceTracker:
    """Assigns track ids to per-frame face boxes (see the module docstring for the method).

    Parameters (face sizes are ``sqrt(width · height)`` of a box):

    * ``iou_weight``, ``distance_weight``, ``appearance_weight``: weights of ``1 − IoU``, of the
      relative centre shift and of the cosine distance in the cost (normalised by their sum; the
      appearance term only counts when embeddings are given);
    * ``max_missed_seconds``: how long a track survives unseen;
    * ``min_similarity``: the lowest cosine similarity of a detection to a track's mean embedding
      that may still be the same person — a gate against clearly different faces, not an identity
      test. The default 0.35 is for faceres embeddings, from ../shared/data at 2 frames/s with
      BlazeFace: a person against their own track's mean scored ≥ 0.42 (deepfake_samples'
      yhffcuhhjy.mp4; 0.81–0.89 on the other clips), while other people scored 0.40–0.46 against
      the speaker's mean right after a scene cut of face_recognition_identities' Hamilton clip.
      So a different face that appears where a tracked one was, just after a cut, can continue
      its track: call :meth:`end_tracks` at shot boundaries when they are known.
      dlib_resnet_v1 scores everyone there 0.82–0.95 (pass ~0.9 or no embeddings);
    * ``max_shift_base``, ``max_shift_per_second``: the largest centre shift (face sizes) allowed
      between the predicted and the detected box, growing with the time since the track was seen;
    * ``max_scale_change``: the largest ratio of face sizes between a track and a detection.
    """

    def __init__(
        self,
        *,
        iou_weight: float = 1.0,
        distance_weight: float = 1.0,
        appearance_weight: float = 1.0,
        max_missed_seconds: float = 1.0,
        min_similarity: float = 0.35,
        max_shift_base: float = 0.5,
        max_shift_per_second: float = 2.0,
        max_scale_change: float = 1.6,
    ) -> None:
        if min(iou_weight, distance_weight, appearance_weight) < 0 or iou_weight + distance_weight <= 0:
            raise ValueError("weights must be ≥ 0, and iou_weight + distance_weight > 0")
        if max_missed_seconds < 0 or max_shift_base <= 0 or max_shift_per_second < 0 or max_scale_change < 1:
            raise ValueError("invalid gating parameters")
        self.iou_weight = iou_weight
        self.distance_weight = distance_weight
        self.appearance_weight = appearance_weight
        self.max_missed_seconds = max_missed_seconds
        self.min_similarity = min_similarity
        self.max_shift_base = max_shift_base
        self.max_shift_per_second = max_shift_per_second
        self.max_scale_change = max_scale_change
        self._live: list[_Track] = []
        self._ended: list[_Track] = []
        self._next_id = 1
        self._last_ms: int | None = None

    def update(
        self,
        boxes: npt.ArrayLike,
        timestamp_ms: int,
        embeddings: npt.ArrayLike | None = None,
    ) -> npt.NDArray[np.int64]:
        """Track ids (N,) int64 for ``boxes`` (N, 4) xyxy pixels of the frame at ``timestamp_ms``.

        ``embeddings`` (N, D), one per box (normalised here), make identity part of the match.
        Timestamps must not decrease. Raises ValueError on mismatched shapes or a step back in time.
        """
        detections = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
        vectors = None if embeddings is None else l2_normalise(embeddings)
        if vectors is not None and len(vectors) != len(detections):
            raise ValueError(f"{len(detections)} boxes but {len(vectors)} embeddings")
        if self._last_ms is not None and timestamp_ms < self._last_ms:
            raise ValueError(f"timestamp {timestamp_ms} ms precedes the last update's ({self._last_ms} ms)")
        self._end_missed(timestamp_ms)
        self._last_ms = timestamp_ms
        ids = np.zeros(len(detections), dtype=np.int64)
        matched = self._assign(detections, vectors, timestamp_ms)
        for row, track in matched.items():
            self._see(track, detections[row], None if vectors is None else vectors[row], timestamp_ms)
            ids[row] = track.track_id
        for row in range(len(detections)):
            if row not in matched:
                track = _Track(self._next_id, detections[row].copy(), timestamp_ms, timestamp_ms)
                track.embedding = None if vectors is None else vectors[row].copy()
                self._next_id += 1
                self._live.append(track)
                ids[row] = track.track_id
        return ids

    def end_tracks(self) -> None:
        """End every live track (a shot boundary: whoever appears next gets a new id)."""
        self._ended.extend(self._live)
        self._live = []

    def tracks(self) -> list[TrackSummary]:
        """Every track so far (ended and live), by id."""
        every = sorted([*self._ended, *self._live], key=lambda t: t.track_id)
        return [TrackSummary(t.track_id, t.first_ms, t.last_ms, t.frames_seen) for t in every]

    def cost_matrix(
        self, boxes: npt.ArrayLike, timestamp_ms: int, embeddings: npt.ArrayLike | None = None
    ) -> npt.NDArray[np.float64]:
        """The (live tracks, detections) cost the next update would use; gated pairs are ``inf``.

        For inspection and tests; changes nothing.
        """
        detections = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
        vectors = None if embeddings is None else l2_normalise(embeddings)
        live = [t for t in self._live if not self._missed_too_long(t, timestamp_ms)]
        cost = self._cost(live, detections, vectors, timestamp_ms)
        return np.where(cost >= _GATED, np.inf, cost)

    # --- internals -------------------------------------------------------------------------------

    def _missed_too_long(self, track: _Track, timestamp_ms: int) -> bool:
        # A track seen in the previous update was not missed, however far apart the samples are.
        if track.last_ms == self._last_ms:
            return False
        return (timestamp_ms - track.last_ms) / 1000.0 > self.max_missed_seconds

    def _end_missed(self, timestamp_ms: int) -> None:
        still: list[_Track] = []
        for track in self._live:
            (self._ended if self._missed_too_long(track, timestamp_ms) else still).append(track)
        self._live = still

    def _assign(
        self,
        detections: npt.NDArray[np.float64],
        vectors: npt.NDArray[np.float32] | None,
        timestamp_ms: int,
    ) -> dict[int, _Track]:
        if not self._live or not len(detections):
            return {}
        cost = self._cost(self._live, detections, vectors, timestamp_ms)
        rows, cols = linear_sum_assignment(cost)
        return {int(c): self._live[int(r)] for r, c in zip(rows, cols, strict=True) if cost[r, c] < _GATED}

    def _cost(
        self,
        tracks: list[_Track],
        detections: npt.NDArray[np.float64],
        vectors: npt.NDArray[np.float32] | None,
        timestamp_ms: int,
    ) -> npt.NDArray[np.float64]:
        if not tracks or not len(detections):
            return np.zeros((len(tracks), len(detections)))
        predicted = np.stack([t.predicted(timestamp_ms) for t in tracks])
        gaps = np.array([(timestamp_ms - t.last_ms) / 1000.0 for t in tracks])
        iou = iou_matrix(predicted, detections)
        track_size = _sizes(predicted)[:, None]
        detection_size = _sizes(detections)[None, :]
        mean_size = np.maximum((track_size + detection_size) / 2.0, 1e-6)
        shift = np.linalg.norm(_centres(predicted)[:, None, :] - _centres(detections)[None, :, :], axis=2)
        allowed = (self.max_shift_base + self.max_shift_per_second * gaps)[:, None]
        relative_shift = shift / mean_size / allowed
        smaller = np.maximum(np.minimum(track_size, detection_size), 1e-6)
        scale = np.maximum(track_size, detection_size) / smaller
        gated = (relative_shift > 1.0) | (scale > self.max_scale_change)
        total = self.iou_weight * (1.0 - iou) + self.distance_weight * np.minimum(relative_shift, 1.0)
        weight = self.iou_weight + self.distance_weight
        track_vectors = [t.embedding for t in tracks]
        if vectors is not None and self.appearance_weight > 0 and all(v is not None for v in track_vectors):
            similarity = np.stack([v for v in track_vectors if v is not None]) @ vectors.T
            gated |= similarity < self.min_similarity
            span = max(1.0 - self.min_similarity, 1e-6)
            total = total + self.appearance_weight * np.clip((1.0 - similarity) / span, 0.0, 1.0)
            weight += self.appearance_weight
        return np.where(gated, _GATED, total / weight)

    def _see(
        self,
        track: _Track,
        box: npt.NDArray[np.float64],
        vector: npt.NDArray[np.float32] | None,
        timestamp_ms: int,
    ) -> None:
        gap = (timestamp_ms - track.last_ms) / 1000.0
        if gap > 0:
            step = (_centres(box[None, :])[0] - _centres(track.box[None, :])[0]) / gap
            # After the first step, halfway between the old estimate and the newest step: faces
            # change direction often, and detector boxes jitter.
            track.velocity = step if track.frames_seen == 1 else 0.5 * track.velocity + 0.5 * step
        track.box = box.copy()
        track.last_ms = timestamp_ms
        track.frames_seen += 1
        if vector is not None:
            if track.embedding is None:
                track.embedding = vector.copy()
            else:
                mixed = (1 - _EMBEDDING_MOMENTUM) * track.embedding + _EMBEDDING_MOMENTUM * vector
                track.embedding = l2_normalise(mixed)[0]


def _sizes(boxes: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    widths = np.clip(boxes[:, 2] - boxes[:, 0], 0, None)
    heights = np.clip(boxes[:, 3] - boxes[:, 1], 0, None)
    sizes: npt.NDArray[np.float64] = np.sqrt(widths * heights)
    return sizes


def _centres(boxes: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    return np.stack([(boxes[:, 0] + boxes[:, 2]) / 2.0, (boxes[:, 1] + boxes[:, 3]) / 2.0], axis=1)
