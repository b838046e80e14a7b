"""Distribution drift of a model's inputs and outputs: population-stability index and KS test.

A *baseline* sample (e.g. last week's detector confidences) is compared with a *current* one (the
last day's). Two statistics per feature:

* **PSI** (population-stability index) over 10 quantile bins of the baseline:
  ``PSI = Σ_i (c_i − b_i) · ln(c_i / b_i)``, with ``b_i``/``c_i`` the baseline/current fractions in
  bin ``i`` (empty bins floored at ε = 1e-4 so the logarithm is finite). Quantile bins give each bin
  ≈ 10 % of the baseline, so every bin carries weight. The usual reading (credit-scoring practice,
  studied in Yurdakul, *Statistical properties of population stability index*, Western Michigan
  University, 2018): < 0.1 no material change, 0.1–0.25 moderate, > 0.25 significant.
  Yurdakul also shows that without drift ``PSI / (1/n + 1/m)`` is approximately χ² with
  ``bins − 1`` degrees of freedom, which gives PSI a p-value (:attr:`FeatureDrift.psi_p_value`).
* **KS** — the two-sample Kolmogorov–Smirnov statistic ``D`` (largest gap between the two
  empirical CDFs, 0..1) and its p-value, through :func:`scipy.stats.ks_2samp`.

Severity (:func:`severity_of`) needs both: a PSI band says how *large* the shift is, and the KS
p-value below ``alpha`` (0.01) says the shift is *real* and not the noise of a small window (PSI of
two small samples of one distribution easily exceeds 0.1). Our bands:

=========  ==========================================================
none       KS p ≥ alpha (no evidence of a change), or too few samples
low        KS p < alpha but PSI < 0.1 (detectable, not material)
medium     KS p < alpha and 0.1 ≤ PSI < 0.25
high       KS p < alpha and 0.25 ≤ PSI < 0.5
critical   KS p < alpha and PSI ≥ 0.5 (twice the "significant" line)
=========  ==========================================================

A check alerts when its worst feature is ``high`` or worse (PSI > 0.25: the industry's
"significant" line); ``ALERT_PSI`` is stored as the check's ``alert_threshold``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
from scipy import stats

Severity = Literal["none", "low", "medium", "high", "critical"]
SEVERITIES: tuple[Severity, ...] = ("none", "low", "medium", "high", "critical")

PSI_BINS = 10
PSI_EPSILON = 1e-4
# PSI bands (Yurdakul 2018; credit-scoring practice): moderate, significant, and our critical.
PSI_MODERATE = 0.1
PSI_SIGNIFICANT = 0.25
PSI_CRITICAL = 0.5
ALERT_PSI = PSI_SIGNIFICANT
# The KS p-value below which a shift counts as real (1 %: drift checks run often, so a 5 % level
# would raise a false alarm on one check in twenty).
KS_ALPHA = 0.01
# Below this many values in either window a feature is reported but never rated above "none".
MIN_SAMPLES = 30


def _finite(values: npt.ArrayLike) -> npt.NDArray[np.float64]:
    array = np.asarray(values, dtype=np.float64).ravel()
    return array[np.isfinite(array)]


def quantile_edges(baseline: npt.ArrayLike, bins: int = PSI_BINS) -> npt.NDArray[np.float64]:
    """The inner edges of ``bins`` quantile bins of ``baseline`` (≤ bins − 1 values, ascending).

    Repeated quantiles (a baseline with many equal values) are merged, so there may be fewer bins.
    A value ``x`` falls in bin ``searchsorted(edges, x, side="right")``: bins are ``[e_i, e_{i+1})``,
    the first and last open-ended, so current values outside the baseline's range still count.
    """
    data = _finite(baseline)
    if data.size == 0:
        return np.empty(0, dtype=np.float64)
    quantiles = np.quantile(data, np.linspace(0.0, 1.0, bins + 1)[1:-1])
    return np.unique(quantiles)


def bin_fractions(values: npt.ArrayLike, edges: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """Fraction of ``values`` in each bin of ``edges`` (length ``len(edges) + 1``, sums to 1)."""
    data = _finite(values)
    counts = np.bincount(np.searchsorted(edges, data, side="right"), minlength=edges.size + 1)
    total = counts.sum()
    return counts / total if total else np.zeros(edges.size + 1, dtype=np.float64)


def population_stability_index(
    baseline: npt.ArrayLike,
    current: npt.ArrayLike,
    *,
    bins: int = PSI_BINS,
    epsilon: float = PSI_EPSILON,
) -> float:
    """PSI of ``current`` against ``baseline`` over quantile bins of the baseline (≥ 0, unbounded).

    0 for identical bin shares; ≈ 0.02 for two samples of 5000 from one distribution; > 0.25 for a
    shift a model owner should look at. NaN/inf values are dropped; an empty sample gives NaN.

    >>> rng = np.random.default_rng(0)
    >>> population_stability_index(rng.normal(0, 1, 5000), rng.normal(1, 1, 5000)) > 0.25
    True
    """
    base = _finite(baseline)
    cur = _finite(current)
    if base.size == 0 or cur.size == 0:
        return math.nan
    edges = quantile_edges(base, bins)
    b = np.maximum(bin_fractions(base, edges), epsilon)
    c = np.maximum(bin_fractions(cur, edges), epsilon)
    return float(np.sum((c - b) * np.log(c / b)))


def psi_p_value(psi: float, n_baseline: int, n_current: int, bins: int) -> float:
    """P(PSI ≥ ``psi``) when both samples come from one distribution (Yurdakul 2018:
    ``PSI / (1/n + 1/m) ~ χ²(bins − 1)``); NaN when it cannot be computed."""
    if not math.isfinite(psi) or n_baseline <= 0 or n_current <= 0 or bins < 2:
        return math.nan
    scale = 1.0 / n_baseline + 1.0 / n_current
    return float(stats.chi2.sf(psi / scale, bins - 1))


def ks_test(baseline: npt.ArrayLike, current: npt.ArrayLike) -> tuple[float, float]:
    """Two-sample Kolmogorov–Smirnov ``(D, p_value)`` (:func:`scipy.stats.ks_2samp`, two-sided,
    exact for small samples, asymptotic otherwise); ``(nan, nan)`` when a sample is empty."""
    base = _finite(baseline)
    cur = _finite(current)
    if base.size == 0 or cur.size == 0:
        return math.nan, math.nan
    result = stats.ks_2samp(base, cur)
    return float(result.statistic), float(result.pvalue)


def severity_of(psi: float, ks_p_value: float, *, alpha: float = KS_ALPHA) -> Severity:
    """The band of one feature (module docstring's table): size from PSI, reality from KS p."""
    if not (math.isfinite(psi) and math.isfinite(ks_p_value)) or ks_p_value >= alpha:
        return "none"
    if psi >= PSI_CRITICAL:
        return "critical"
    if psi >= PSI_SIGNIFICANT:
        return "high"
    if psi >= PSI_MODERATE:
        return "medium"
    return "low"


def worst(severities: Iterable[Severity]) -> Severity:
    """The highest of ``severities`` (``none`` for none)."""
    return max(severities, key=SEVERITIES.index, default="none")


def _none_if_nan(value: float) -> float | None:
    return None if not math.isfinite(value) else round(value, 6)


@dataclass(frozen=True, slots=True)
class FeatureDrift:
    """One feature's comparison. ``psi`` ≥ 0; ``ks_statistic`` 0..1; p-values 0..1 (NaN when a
    window is empty); means in the feature's own unit."""

    name: str
    n_baseline: int
    n_current: int
    psi: float
    psi_p_value: float
    ks_statistic: float
    ks_p_value: float
    baseline_mean: float
    current_mean: float
    severity: Severity
    enough_data: bool

    def as_dict(self) -> dict[str, Any]:
        """JSON-safe (NaN → null): the ``drift_features`` entry of a check."""
        return {
            "psi": _none_if_nan(self.psi),
            "psi_p_value": _none_if_nan(self.psi_p_value),
            "ks": _none_if_nan(self.ks_statistic),
            "ks_p_value": _none_if_nan(self.ks_p_value),
            "n_baseline": self.n_baseline,
            "n_current": self.n_current,
            "baseline_mean": _none_if_nan(self.baseline_mean),
            "current_mean": _none_if_nan(self.current_mean),
            "severity": self.severity,
            "enough_data": self.enough_data,
        }


def compare_feature(
    name: str,
    baseline: Sequence[float] | npt.ArrayLike,
    current: Sequence[float] | npt.ArrayLike,
    *,
    bins: int = PSI_BINS,
    min_samples: int = MIN_SAMPLES,
    alpha: float = KS_ALPHA,
) -> FeatureDrift:
    """PSI, KS and severity of one feature; fewer than ``min_samples`` values in either window →
    statistics still reported, severity ``none``, ``enough_data`` false."""
    base = _finite(baseline)
    cur = _finite(current)
    psi = population_stability_index(base, cur, bins=bins)
    used_bins = quantile_edges(base, bins).size + 1 if base.size else 0
    d, p = ks_test(base, cur)
    enough = base.size >= min_samples and cur.size >= min_samples
    return FeatureDrift(
        name=name,
        n_baseline=int(base.size),
        n_current=int(cur.size),
        psi=psi,
        psi_p_value=psi_p_value(psi, int(base.size), int(cur.size), used_bins),
        ks_statistic=d,
        ks_p_value=p,
        baseline_mean=float(base.mean()) if base.size else math.nan,
        current_mean=float(cur.mean()) if cur.size else math.nan,
        severity=severity_of(psi, p, alpha=alpha) if enough else "none",
        enough_data=enough,
    )


@dataclass(frozen=True, slots=True)
class DriftReport:
    """Every feature's comparison and the check's summary.

    ``severity``: the worst feature's. ``alerted``: ``severity`` is ``high`` or ``critical``.
    ``data_drift_score`` (0..1): the largest KS ``D`` among input features (covariate drift);
    ``model_drift_score`` (0..1): the largest KS ``D`` among output features (prediction drift);
    None when that group has no feature with enough data.
    """

    features: Mapping[str, FeatureDrift]
    severity: Severity
    alerted: bool
    drift_type: str | None  # "covariate" | "prediction" | None: the group of the worst feature
    data_drift_score: float | None
    model_drift_score: float | None
    output_features: frozenset[str] = field(default_factory=frozenset)

    def features_dict(self) -> dict[str, dict[str, Any]]:
        return {name: feature.as_dict() for name, feature in self.features.items()}


def drift_report(
    baseline: Mapping[str, Sequence[float] | npt.ArrayLike],
    current: Mapping[str, Sequence[float] | npt.ArrayLike],
    *,
    output_features: Iterable[str] = ("confidence",),
    min_samples: int = MIN_SAMPLES,
    alpha: float = KS_ALPHA,
) -> DriftReport:
    """Compare every feature present in both windows.

    ``output_features``: the names that are the model's outputs (prediction drift); the others are
    inputs (covariate drift: image quality, size, embedding norm, ...).
    """
    outputs = frozenset(output_features)
    names = sorted(set(baseline) & set(current))
    features = {
        name: compare_feature(name, baseline[name], current[name], min_samples=min_samples, alpha=alpha)
        for name in names
    }
    severity = worst(f.severity for f in features.values())
    drift_type: str | None = None
    if severity != "none":
        top = max(features.values(), key=lambda f: (SEVERITIES.index(f.severity), f.psi))
        drift_type = "prediction" if top.name in outputs else "covariate"

    def score(group: Iterable[FeatureDrift]) -> float | None:
        values = [f.ks_statistic for f in group if f.enough_data and math.isfinite(f.ks_statistic)]
        return round(max(values), 4) if values else None

    return DriftReport(
        features=features,
        severity=severity,
        alerted=SEVERITIES.index(severity) >= SEVERITIES.index("high"),
        drift_type=drift_type,
        data_drift_score=score(f for f in features.values() if f.name not in outputs),
        model_drift_score=score(f for f in features.values() if f.name in outputs),
        output_features=outputs,
    )
