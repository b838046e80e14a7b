"""SkyGate's fusion: weighted mean, contributions, decisive and local methods, bands."""

from __future__ import annotations

import pytest

from facesocial.forensics.ai_image.ensemble import DECISIVE_SCORE, MethodWeight, band_of, fuse
from facesocial.forensics.ai_image.report import (
    DEFAULT_WEIGHTS,
    DESCRIPTIONS,
    FACES,
    METADATA,
    METHODS,
    MODEL,
    NOISE,
    TEXTURE,
    MethodResult,
)


def _r(name: str, score: float | None) -> MethodResult:
    return MethodResult(name, score, 1.0, f"{name}@1.0")


WEIGHTS = {name: MethodWeight(w) for name, w in DEFAULT_WEIGHTS.items()}


def test_every_method_has_a_weight_and_a_description() -> None:
    assert set(DEFAULT_WEIGHTS) == set(METHODS) == set(DESCRIPTIONS)
    assert all(0.0 <= w <= 9.99 for w in DEFAULT_WEIGHTS.values())


def test_weighted_mean_and_contributions_sum_to_the_score() -> None:
    results = [_r(MODEL, 0.9), _r(NOISE, 0.2), _r(TEXTURE, 0.4), _r(METADATA, None)]
    verdict = fuse(results, WEIGHTS, ai_threshold=0.6, real_below=0.4)
    w = DEFAULT_WEIGHTS
    expected = (w[MODEL] * 0.9 + w[NOISE] * 0.2 + w[TEXTURE] * 0.4) / (w[MODEL] + w[NOISE] + w[TEXTURE])
    assert verdict.score == pytest.approx(expected)
    assert sum(f["contribution"] for f in verdict.factors) == pytest.approx(expected, abs=2e-4)
    assert verdict.factors[0]["factor"] == MODEL  # largest contribution first
    assert METADATA not in {f["factor"] for f in verdict.factors}  # no opinion: not fused
    assert verdict.decided_by == "weighted_mean"
    assert verdict.band == band_of(expected, 0.6, 0.4)


def test_inactive_or_zero_weight_methods_are_left_out() -> None:
    results = [_r(MODEL, 0.9), _r(NOISE, 0.1)]
    weights = dict(WEIGHTS)
    weights[MODEL] = MethodWeight(3.0, is_active=False)
    assert fuse(results, weights, ai_threshold=0.6, real_below=0.4).score == pytest.approx(0.1)
    weights[MODEL] = MethodWeight(0.0)
    assert fuse(results, weights, ai_threshold=0.6, real_below=0.4).score == pytest.approx(0.1)


def test_a_generator_declaration_decides_alone() -> None:
    results = [_r(MODEL, 0.1), _r(NOISE, 0.1), _r(METADATA, 0.97)]
    verdict = fuse(results, WEIGHTS, ai_threshold=0.6, real_below=0.4)
    assert verdict.score == pytest.approx(0.97) and verdict.band == "ai_generated"
    assert verdict.decided_by == METADATA
    below = fuse(
        [_r(MODEL, 0.1), _r(METADATA, DECISIVE_SCORE - 0.05)], WEIGHTS, ai_threshold=0.6, real_below=0.4
    )
    assert below.decided_by == "weighted_mean"


def test_a_synthetic_face_in_a_real_photo_carries_the_verdict() -> None:
    results = [_r(MODEL, 0.1), _r(NOISE, 0.1), _r(TEXTURE, 0.1), _r(FACES, 0.8)]
    verdict = fuse(results, WEIGHTS, ai_threshold=0.6, real_below=0.4)
    assert verdict.band == "ai_generated" and verdict.decided_by == FACES
    weak = fuse([_r(MODEL, 0.1), _r(FACES, 0.5)], WEIGHTS, ai_threshold=0.6, real_below=0.4)
    assert weak.decided_by == "weighted_mean"


def test_no_opinion_at_all_is_uncertain() -> None:
    verdict = fuse([_r(METADATA, None)], WEIGHTS, ai_threshold=0.6, real_below=0.4)
    assert (verdict.band, verdict.score, verdict.factors, verdict.is_ai_generated) == (
        "uncertain",
        0.5,
        [],
        False,
    )


def test_bands() -> None:
    assert band_of(0.6, 0.6, 0.4) == "ai_generated"
    assert band_of(0.59, 0.6, 0.4) == "uncertain"
    assert band_of(0.4, 0.6, 0.4) == "uncertain"
    assert band_of(0.39, 0.6, 0.4) == "real"
