"""Drift statistics without a server: PSI against hand computation, KS against SciPy, severity
bands, and a stream of confidences and input qualities that shifts (alert) or does not (none)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from facesocial.analytics.drift import (
    PSI_EPSILON,
    compare_feature,
    drift_report,
    ks_test,
    population_stability_index,
    psi_p_value,
    quantile_edges,
    severity_of,
)


def test_psi_of_a_sample_with_itself_is_zero() -> None:
    data = np.random.default_rng(0).normal(size=1000)
    assert population_stability_index(data, data) == pytest.approx(0.0, abs=1e-12)


def test_psi_matches_the_formula_on_known_bins() -> None:
    baseline = np.arange(1000) / 1000.0  # ten quantile bins of exactly 10 % each
    edges = quantile_edges(baseline)
    assert edges.size == 9
    current = np.full(500, 0.01)  # everything in the first bin
    b = np.full(10, 0.1)
    c = np.array([1.0] + [PSI_EPSILON] * 9)
    expected = float(np.sum((c - b) * np.log(c / b)))
    assert population_stability_index(baseline, current) == pytest.approx(expected, rel=1e-9)


def test_values_outside_the_baseline_range_still_count() -> None:
    baseline = np.linspace(0, 1, 1000)
    above = np.full(100, 5.0)  # all beyond the last edge: the last bin, not dropped
    assert population_stability_index(baseline, above) > 2.0


def test_psi_is_asymmetric_and_nan_for_empty_samples() -> None:
    rng = np.random.default_rng(1)
    a, b = rng.normal(0, 1, 3000), rng.normal(0.5, 2, 3000)
    assert population_stability_index(a, b) != pytest.approx(population_stability_index(b, a), rel=1e-3)
    assert math.isnan(population_stability_index([], b))
    assert math.isnan(population_stability_index(a, [math.nan]))


def test_ks_is_scipys() -> None:
    rng = np.random.default_rng(2)
    a, b = rng.normal(0, 1, 400), rng.normal(0.2, 1, 300)
    reference = stats.ks_2samp(a, b)
    assert ks_test(a, b) == (pytest.approx(reference.statistic), pytest.approx(reference.pvalue))


def test_psi_p_value_is_calibrated_without_drift() -> None:
    """Yurdakul (2018): PSI/(1/n+1/m) ~ χ²(bins−1) under no drift; p < 0.05 about 5 % of the time."""
    rng = np.random.default_rng(3)
    runs, n = 300, 2000
    small = sum(
        psi_p_value(population_stability_index(rng.beta(8, 2, n), rng.beta(8, 2, n)), n, n, 10) < 0.05
        for _ in range(runs)
    )
    low, high = stats.binom.interval(0.999, runs, 0.05)
    assert low <= small <= high, small


@pytest.mark.parametrize(
    ("psi", "ks_p", "severity"),
    [
        (0.5, 0.2, "none"),  # large PSI, but no evidence (small windows)
        (0.05, 0.001, "low"),
        (0.15, 0.001, "medium"),
        (0.30, 0.001, "high"),
        (0.80, 1e-9, "critical"),
        (math.nan, 0.001, "none"),
    ],
)
def test_severity_bands(psi: float, ks_p: float, severity: str) -> None:
    assert severity_of(psi, ks_p) == severity


def stream(rng: np.random.Generator, n: int, *, shifted: bool) -> dict[str, np.ndarray]:
    """Detector confidences and image qualities of n requests; the shifted stream is what a
    darker camera gives: lower qualities and less certain detections."""
    if shifted:
        return {"confidence": rng.beta(4, 4, n), "quality": rng.normal(0.45, 0.12, n)}
    return {"confidence": rng.beta(8, 2, n), "quality": rng.normal(0.70, 0.10, n)}


def test_a_shifted_stream_alerts() -> None:
    rng = np.random.default_rng(4)
    report = drift_report(stream(rng, 3000, shifted=False), stream(rng, 1000, shifted=True))
    assert report.features["confidence"].psi > 0.25
    assert report.features["quality"].psi > 0.25
    assert report.severity in ("high", "critical")
    assert report.alerted
    assert report.drift_type in ("prediction", "covariate")
    assert report.model_drift_score is not None and report.model_drift_score > 0.3
    assert report.data_drift_score is not None and report.data_drift_score > 0.3


def test_an_unshifted_stream_never_alerts() -> None:
    rng = np.random.default_rng(5)
    for _ in range(50):
        report = drift_report(stream(rng, 3000, shifted=False), stream(rng, 500, shifted=False))
        assert not report.alerted
        assert report.severity in ("none", "low")


def test_a_mild_shift_is_medium_not_an_alert() -> None:
    rng = np.random.default_rng(6)
    feature = compare_feature("confidence", rng.beta(8, 2, 5000), rng.beta(8, 2.6, 5000))
    assert 0.1 <= feature.psi < 0.25
    assert feature.severity == "medium"


def test_too_few_values_are_reported_but_not_rated() -> None:
    rng = np.random.default_rng(7)
    feature = compare_feature("confidence", rng.beta(8, 2, 20), rng.beta(2, 8, 20))
    assert not feature.enough_data
    assert feature.severity == "none"
    assert feature.as_dict()["n_current"] == 20


def test_features_in_one_window_only_are_ignored() -> None:
    rng = np.random.default_rng(8)
    report = drift_report(
        {"confidence": rng.random(100), "width": rng.random(100)}, {"confidence": rng.random(100)}
    )
    assert set(report.features) == {"confidence"}
    assert report.data_drift_score is None
