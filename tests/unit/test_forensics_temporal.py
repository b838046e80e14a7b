"""Temporal signals: identity drift, landmark jitter after removing global motion, blinks, buckets."""

from __future__ import annotations

import numpy as np
import pytest

from facesocial.forensics.calibration import ReferenceTable, build_reference, surprise
from facesocial.forensics.temporal import (
    TrackSeries,
    blink_stats,
    blink_suspicion,
    bucket_name,
    consecutive_cosine_distance,
    landmark_jitter,
    temporal_signals,
)

SHAPE = np.array([[170, 100], [150, 100], [86, 100], [106, 100], [128, 140]], np.float64)


def moved(shape: np.ndarray, angle_deg: float, scale: float, shift: tuple[float, float]) -> np.ndarray:
    a = np.deg2rad(angle_deg)
    rot = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
    return (shape - 128) @ rot.T * scale + 128 + np.asarray(shift)


def test_jitter_ignores_global_motion() -> None:
    frames = [moved(SHAPE, 3 * t, 1 + 0.05 * t, (7 * t, -4 * t)) for t in range(8)]
    assert landmark_jitter(frames).max() < 1e-6


def test_jitter_sees_shape_flicker_in_eye_distance_units() -> None:
    rng = np.random.default_rng(0)
    steady = [moved(SHAPE, t, 1.0, (3 * t, 0)) for t in range(10)]
    flicker = [p + rng.normal(0, 3.2, p.shape) for p in steady]  # 5 % of the 64 px eye distance
    j = landmark_jitter(flicker)
    assert j.shape == (8,)
    # RMS of a second difference of i.i.d. noise: sqrt(6) × per-axis σ × sqrt(2) per point, in d units.
    assert float(np.median(j)) == pytest.approx(0.05 * np.sqrt(6) * np.sqrt(2), rel=0.5)
    assert landmark_jitter(steady[:2]).shape == (0,)


def test_consecutive_cosine_distance() -> None:
    e = np.array([[1.0, 0.0], [2.0, 0.0], [0.0, 3.0], [-1.0, 0.0]])
    np.testing.assert_allclose(consecutive_cosine_distance(e), [0.0, 1.0, 1.0])
    assert consecutive_cosine_distance(e[:1]).shape == (0,)


def test_blinks_are_counted_and_measurable_only_at_high_rates() -> None:
    ts = np.arange(0, 12_000, 100)  # 10 frames/s for 12 s
    openness = np.ones(len(ts))
    openness[[20, 21, 70, 71]] = 0.1  # blinks at 2.0 s and 7.0 s
    stats = blink_stats(openness, ts)
    assert stats.measurable and stats.blinks == 2
    assert stats.blinks_per_minute == pytest.approx(60 * 2 / 11.9, rel=1e-3)
    assert stats.longest_blinkless_s == pytest.approx(7.0 - 2.0)  # between the two blinks
    slow = blink_stats(openness[::5], ts[::5])  # 2 frames/s: blinks are missed
    assert not slow.measurable


def test_a_long_blinkless_stretch_is_only_weakly_suspicious() -> None:
    ts = np.arange(0, 60_000, 100)
    stats = blink_stats(np.ones(len(ts)), ts)
    assert stats.blinks == 0 and stats.longest_blinkless_s == pytest.approx(59.9)
    # P(no blink in 60 s at 6/min) = e^-6: rare, but the signal's weight stays 0.25.
    assert blink_suspicion(stats) == pytest.approx(surprise(1 - np.exp(-5.99)), abs=1e-3)
    short = blink_stats(np.ones(100), np.arange(0, 10_000, 100))
    assert blink_suspicion(short) < 0.35


@pytest.mark.parametrize(
    ("interval", "name"),
    [
        (0.033, "identity_drift@0.1s"),
        (0.14, "identity_drift@0.1s"),
        (0.15, "identity_drift@0.2s"),
        (0.5, "identity_drift@0.5s"),
        (0.7, "identity_drift@0.5s"),
        (0.72, "identity_drift@1s"),
        (9.0, "identity_drift@2s"),
    ],
)
def test_interval_buckets(interval: float, name: str) -> None:
    assert bucket_name("identity_drift", interval) == name


def test_track_signals_use_the_median_pair_and_report_outliers() -> None:
    rng = np.random.default_rng(1)
    table = ReferenceTable.from_dict(
        {
            "signals": {
                "identity_drift@0.5s": build_reference(
                    "d", rng.uniform(0.0, 0.1, 1000), "upper", model="emb"
                ),
                "landmark_jitter@0.5s": build_reference("j", rng.uniform(0.0, 0.1, 1000), "upper"),
            }
        }
    )
    series = TrackSeries(7)
    base = np.array([1.0, 0.0, 0.0])
    for t in range(12):
        series.timestamps_ms.append(500 * t)
        series.frame_numbers.append(15 * t)
        series.scores.append(0.1)
        series.landmarks.append(moved(SHAPE, t, 1.0, (t, 0)).astype(np.float32))
        # One identity jump at t = 6 (cos distance 1 - cos(60°) = 0.5), steady otherwise.
        angle = np.deg2rad(60) if t == 6 else 0.0
        series.embeddings.append(np.array([np.cos(angle), np.sin(angle), 0.0], np.float32) + 0 * base)
    result = temporal_signals(series, table, "emb")
    drift = result.signals["identity_drift"]
    assert drift.raw == pytest.approx(0.0, abs=1e-6)  # the median pair is steady
    assert drift.suspicion is not None and drift.suspicion < 0.35
    jumps = [i for i in result.inconsistencies if i["kind"] == "identity_drift"]
    assert [(i["start_ms"], i["end_ms"]) for i in jumps] == [(2500, 3000), (3000, 3500)]
    assert all(i["track_id"] == 7 for i in jumps)
    assert result.signals["landmark_jitter"].suspicion is not None
    # Another embedder than the calibrated one: reported, not fused.
    other = temporal_signals(series, table, "another_model").signals["identity_drift"]
    assert other.suspicion is None and other.details["uncalibrated"] is True
    assert "blink" not in result.signals  # no eye openness was recorded
