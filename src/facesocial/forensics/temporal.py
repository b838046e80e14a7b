"""Temporal signals of one tracked face: identity drift, landmark jitter, blinks.

* ``identity_drift`` — cosine distance between the face embeddings of consecutive analysed frames
  of the same track. A swapped face is re-rendered frame by frame and its identity wavers between
  source and target, most where the swap struggles (profile, occlusion, motion blur).
* ``landmark_jitter`` — second difference of the 5 landmarks after removing the global motion:
  each frame's points are mapped onto the track's mean shape by a similarity (Umeyama), in units
  of the mean eye distance; jitter = RMS of q(t+1) − 2 q(t) + q(t−1). Frame-by-frame synthesis
  flickers; real faces move smoothly.
* ``blink`` — blinks per minute and the longest stretch without one, from the mesh's eye openness
  (advanced level). Only measured at ≥ 8 analysed frames per second (a blink lasts 100–400 ms)
  over ≥ 10 s; weakly suspicious and weighted low (early deepfakes rarely blinked, Li et al. 2018;
  modern ones do).

Both the drift and the jitter depend on the time between frames, so their reference distributions
(``reference/real_faces.json``) are kept per interval bucket (0.1, 0.2, 0.5, 1, 2 s), measured on
real videos outside the evaluation set (docs/deepfake.md: which). A pair/triplet is compared with
the bucket nearest its own interval (log scale). A track's statistic is the MEDIAN percentile of
its pairs, so one bad frame does not make a track suspicious; the worst pairs are reported as
``temporal_inconsistencies``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from facesocial.forensics.calibration import ReferenceTable, surprise
from facesocial.forensics.signals import SignalValue
from facesocial.vision.crops import umeyama_similarity

FloatArray = npt.NDArray[np.float32]

INTERVAL_BUCKETS_S = (0.1, 0.2, 0.5, 1.0, 2.0)
# Blink measurement (module doc).
BLINK_MIN_FPS = 8.0
BLINK_MIN_SECONDS = 10.0
BLINK_OPENNESS = 0.35
# Conservative low resting blink rate: adults blink ~17/min at rest and ~26/min in conversation
# (Bentivoglio et al., Mov. Disord. 1997); 6/min is below most people's rate.
LOW_BLINK_RATE_PER_MIN = 6.0
# A pair/triplet this suspicious is listed as a temporal inconsistency.
REPORT_SUSPICION = 0.67


def bucket_name(kind: str, interval_s: float) -> str:
    """Reference key of ``kind`` at the bucket nearest ``interval_s`` (log scale): ``identity_drift@0.5s``."""
    interval = max(float(interval_s), 1e-3)
    nearest = min(INTERVAL_BUCKETS_S, key=lambda b: abs(math.log(interval / b)))
    return f"{kind}@{nearest:g}s"


def consecutive_cosine_distance(embeddings: npt.ArrayLike) -> npt.NDArray[np.float64]:
    """(T−1,) 1 − cos between rows t and t+1 of (T, D) embeddings (any norm)."""
    e = np.asarray(embeddings, dtype=np.float64)
    if len(e) < 2:
        return np.zeros((0,), np.float64)
    e = e / np.maximum(np.linalg.norm(e, axis=1, keepdims=True), 1e-12)
    return np.asarray(1.0 - np.sum(e[1:] * e[:-1], axis=1), dtype=np.float64)


def normalised_shapes(landmarks: npt.ArrayLike) -> npt.NDArray[np.float64]:
    """(T, K, 2) landmarks mapped by a similarity onto the track's mean shape, in mean-eye-distance units.

    The mean shape is first put in a canonical frame (eye centres at (±0.5, 0)), so the result does
    not depend on where the face is, how large, or how rolled.
    """
    pts = np.asarray(landmarks, dtype=np.float64)
    # Canonical frame per frame first, then the mean, then a final alignment onto the mean.
    canon = np.empty_like(pts)
    for t, p in enumerate(pts):
        left, right = p[0:2].mean(axis=0), p[2:4].mean(axis=0)
        src = np.stack([right, left])
        canon[t] = _apply(umeyama_similarity(src, [[-0.5, 0.0], [0.5, 0.0]]), p)
    mean = canon.mean(axis=0)
    out = np.empty_like(pts)
    for t, p in enumerate(pts):
        out[t] = _apply(umeyama_similarity(p, mean), p)
    return out


def _apply(matrix: npt.NDArray[np.float64], points: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    return np.asarray(points @ matrix[:, :2].T + matrix[:, 2], dtype=np.float64)


def landmark_jitter(landmarks: npt.ArrayLike) -> npt.NDArray[np.float64]:
    """(T−2,) RMS second difference of the normalised 5-point shapes (module doc); eye distance units."""
    pts = np.asarray(landmarks, dtype=np.float64)
    if len(pts) < 3:
        return np.zeros((0,), np.float64)
    q = normalised_shapes(pts)
    second = q[2:] - 2.0 * q[1:-1] + q[:-2]
    return np.asarray(np.sqrt(np.mean(np.sum(second**2, axis=-1), axis=-1)), dtype=np.float64)


@dataclass(frozen=True, slots=True)
class BlinkStats:
    measurable: bool
    blinks: int
    blinks_per_minute: float
    longest_blinkless_s: float
    seconds: float


def blink_stats(openness: npt.ArrayLike, timestamps_ms: npt.ArrayLike) -> BlinkStats:
    """Blinks (entries into both-eyes-closed, openness < 0.35) in a (T,) openness series at (T,) ms."""
    o = np.asarray(openness, dtype=np.float64)
    ts = np.asarray(timestamps_ms, dtype=np.float64) / 1000.0
    if len(o) < 2:
        return BlinkStats(False, 0, 0.0, 0.0, 0.0)
    seconds = float(ts[-1] - ts[0])
    fps = (len(o) - 1) / seconds if seconds > 0 else 0.0
    closed = o < BLINK_OPENNESS
    starts = np.flatnonzero(closed[1:] & ~closed[:-1]) + 1
    if closed[0]:
        starts = np.concatenate([[0], starts])
    marks = np.concatenate([[ts[0]], ts[starts], [ts[-1]]])
    longest = float(np.max(np.diff(marks))) if len(marks) > 1 else seconds
    measurable = fps >= BLINK_MIN_FPS and seconds >= BLINK_MIN_SECONDS
    rate = 60.0 * len(starts) / seconds if seconds > 0 else 0.0
    return BlinkStats(measurable, len(starts), rate, longest, seconds)


def blink_suspicion(stats: BlinkStats) -> float:
    """surprise(P[no blink for the longest stretch]) under a Poisson rate of 6/min (module doc)."""
    p_none = math.exp(-LOW_BLINK_RATE_PER_MIN / 60.0 * stats.longest_blinkless_s)
    return surprise(1.0 - p_none)


@dataclass
class TrackSeries:
    """What one track accumulates over a video (a few numbers per frame: memory stays small)."""

    track_id: int
    frame_numbers: list[int] = field(default_factory=list)
    timestamps_ms: list[int] = field(default_factory=list)
    boxes: list[FloatArray] = field(default_factory=list)
    landmarks: list[FloatArray] = field(default_factory=list)
    embeddings: list[FloatArray] = field(default_factory=list)
    scores: list[float] = field(default_factory=list)
    openness: list[float] = field(default_factory=list)
    types: dict[str, int] = field(default_factory=dict)
    signal_sums: dict[str, list[float]] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.frame_numbers)


@dataclass(frozen=True, slots=True)
class TemporalResult:
    signals: dict[str, SignalValue]
    inconsistencies: list[dict[str, Any]]


def _pair_percentiles(
    kind: str, values: npt.NDArray[np.float64], intervals_s: npt.NDArray[np.float64], table: ReferenceTable
) -> npt.NDArray[np.float64] | None:
    out = np.empty(len(values), np.float64)
    for i, (value, dt) in enumerate(zip(values, intervals_s, strict=True)):
        reference = table.get(bucket_name(kind, dt))
        if reference is None:
            return None
        out[i] = reference.percentile(float(value))
    return out


def _track_signal(
    kind: str,
    values: npt.NDArray[np.float64],
    intervals_s: npt.NDArray[np.float64],
    table: ReferenceTable,
    model: str | None,
) -> tuple[SignalValue, npt.NDArray[np.float64] | None]:
    raw = float(np.median(values))
    reference = table.get(bucket_name(kind, float(np.median(intervals_s))))
    model_ok = reference is not None and (reference.model is None or reference.model == model)
    percentiles = _pair_percentiles(kind, values, intervals_s, table) if model_ok else None
    details: dict[str, Any] = {
        "pairs": len(values),
        "median_interval_s": round(float(np.median(intervals_s)), 3),
    }
    if percentiles is None:
        details["uncalibrated"] = True
        return SignalValue(kind, raw, None, None, details), None
    median = float(np.median(percentiles))
    # The median of the pair percentiles is itself a percentile-like number (0.5 for a typical real
    # track); rare pairs alone do not move it.
    return SignalValue(kind, raw, median, surprise(median), details), percentiles


def temporal_signals(series: TrackSeries, table: ReferenceTable, embedder: str | None) -> TemporalResult:
    """Identity drift, landmark jitter and (when measurable) blink signals of one track."""
    signals: dict[str, SignalValue] = {}
    inconsistencies: list[dict[str, Any]] = []
    ts = np.asarray(series.timestamps_ms, dtype=np.float64)
    if len(series.embeddings) >= 2 and len(series.embeddings) == len(series):
        drift = consecutive_cosine_distance(np.stack(series.embeddings))
        dt = np.diff(ts) / 1000.0
        signal, pct = _track_signal("identity_drift", drift, dt, table, embedder)
        signals[signal.name] = signal
        inconsistencies += _surprising_intervals(series, pct, 1, signal.name, drift)
    if len(series.landmarks) >= 3 and len(series.landmarks) == len(series):
        jitter = landmark_jitter(np.stack(series.landmarks))
        dt = (ts[2:] - ts[:-2]) / 2000.0
        signal, pct = _track_signal("landmark_jitter", jitter, dt, table, None)
        signals[signal.name] = signal
        inconsistencies += _surprising_intervals(series, pct, 2, signal.name, jitter)
    if len(series.openness) == len(series) and len(series) >= 2:
        stats = blink_stats(series.openness, ts)
        details: dict[str, Any] = {
            "blinks": stats.blinks,
            "blinks_per_minute": round(stats.blinks_per_minute, 2),
            "seconds": round(stats.seconds, 2),
            "measurable": stats.measurable,
        }
        if stats.measurable:
            suspicion = blink_suspicion(stats)
            signals["blink"] = SignalValue("blink", stats.longest_blinkless_s, None, suspicion, details)
        else:
            details["why_not"] = f"needs ≥ {BLINK_MIN_FPS:g} analysed frames/s over ≥ {BLINK_MIN_SECONDS:g} s"
            signals["blink"] = SignalValue("blink", stats.longest_blinkless_s, None, None, details)
    return TemporalResult(signals, inconsistencies)


def _surprising_intervals(
    series: TrackSeries,
    pct: npt.NDArray[np.float64] | None,
    span: int,
    kind: str,
    values: npt.NDArray[np.float64],
) -> list[dict[str, Any]]:
    """An interval per step whose suspicion reaches REPORT_SUSPICION; step i covers samples i..i+span."""
    if pct is None:
        return []
    return [
        _interval(series, i, i + span, kind, surprise(p), values[i])
        for i, p in enumerate(pct)
        if surprise(p) >= REPORT_SUSPICION
    ]


def _interval(
    series: TrackSeries, first: int, last: int, kind: str, suspicion: float, value: float
) -> dict[str, Any]:
    return {
        "start_ms": int(series.timestamps_ms[first]),
        "end_ms": int(series.timestamps_ms[last]),
        "track_id": series.track_id,
        "kind": kind,
        "score": round(float(suspicion), 4),
        "value": round(float(value), 5),
    }
