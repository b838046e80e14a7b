"""The significance tests of an A/B experiment (SciPy), baseline ``a`` against challenger ``b``.

* Rates (accuracy from feedback): the two-proportion z-test with the pooled proportion under
  H0 (``z = (p_b − p_a) / sqrt(p(1−p)(1/n_a + 1/n_b))``, two-sided p from
  :func:`scipy.stats.norm.sf`); each rate's Wilson score interval
  (:meth:`scipy.stats.binomtest(...).proportion_ci(method="wilson")`) and the difference's Newcombe
  hybrid score interval (Newcombe, *Interval estimation for the difference between independent
  proportions*, Statistics in Medicine 17:873–890, 1998, method 10), which keeps its coverage near
  0 and 1 where the Wald interval does not.
* Means (confidence, latency_ms): Welch's t-test (:func:`scipy.stats.ttest_ind` with
  ``equal_var=False``) and the difference's interval with Welch–Satterthwaite degrees of
  freedom (the result's ``confidence_interval``).

Every difference is ``b − a`` (challenger minus baseline). ``confidence`` is the experiment's
confidence level (0.8..0.999): a test is significant when ``p < 1 − confidence``.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy import stats


def _r(value: float, digits: int = 6) -> float | None:
    return round(value, digits) if math.isfinite(value) else None


def wilson_interval(successes: int, n: int, confidence: float) -> tuple[float, float]:
    """Wilson score interval of ``successes / n`` (both ends 0..1); ``(nan, nan)`` when n = 0."""
    if n <= 0:
        return math.nan, math.nan
    ci = stats.binomtest(successes, n).proportion_ci(confidence_level=confidence, method="wilson")
    return float(ci.low), float(ci.high)


@dataclass(frozen=True, slots=True)
class ProportionTest:
    """Two-proportion z-test of ``successes / n`` per arm; rates and intervals 0..1."""

    successes_a: int
    n_a: int
    successes_b: int
    n_b: int
    rate_a: float
    rate_b: float
    ci_a: tuple[float, float]
    ci_b: tuple[float, float]
    difference: float  # rate_b − rate_a
    ci_difference: tuple[float, float]
    z: float
    p_value: float
    confidence: float
    significant: bool

    def as_dict(self) -> dict[str, Any]:
        return {
            "test": "two_proportion_z",
            "difference": _r(self.difference),
            "confidence_interval": [_r(self.ci_difference[0]), _r(self.ci_difference[1])],
            "statistic": _r(self.z),
            "p_value": _r(self.p_value, 12),
            "confidence_level": self.confidence,
            "significant": self.significant,
        }


def two_proportion_ztest(
    successes_a: int, n_a: int, successes_b: int, n_b: int, *, confidence: float = 0.95
) -> ProportionTest:
    """Is the challenger's rate different from the baseline's? Two-sided.

    An arm with n = 0, or a pooled rate of exactly 0 or 1 (no variance), gives p = NaN (not
    significant). Raises ValueError when successes exceed n or a count is negative.
    """
    if min(successes_a, n_a, successes_b, n_b) < 0 or successes_a > n_a or successes_b > n_b:
        raise ValueError("successes must lie in 0..n")
    rate_a = successes_a / n_a if n_a else math.nan
    rate_b = successes_b / n_b if n_b else math.nan
    ci_a = wilson_interval(successes_a, n_a, confidence)
    ci_b = wilson_interval(successes_b, n_b, confidence)
    z = p = math.nan
    if n_a and n_b:
        pooled = (successes_a + successes_b) / (n_a + n_b)
        se = math.sqrt(pooled * (1.0 - pooled) * (1.0 / n_a + 1.0 / n_b))
        if se > 0:
            z = (rate_b - rate_a) / se
            p = float(2.0 * stats.norm.sf(abs(z)))
    difference = rate_b - rate_a
    if n_a and n_b:
        # Newcombe's method 10: combine the Wilson intervals of the two rates.
        low = difference - math.sqrt((rate_b - ci_b[0]) ** 2 + (ci_a[1] - rate_a) ** 2)
        high = difference + math.sqrt((ci_b[1] - rate_b) ** 2 + (rate_a - ci_a[0]) ** 2)
        ci_difference = (low, high)
    else:
        ci_difference = (math.nan, math.nan)
    return ProportionTest(
        successes_a=successes_a,
        n_a=n_a,
        successes_b=successes_b,
        n_b=n_b,
        rate_a=rate_a,
        rate_b=rate_b,
        ci_a=ci_a,
        ci_b=ci_b,
        difference=difference,
        ci_difference=ci_difference,
        z=z,
        p_value=p,
        confidence=confidence,
        significant=math.isfinite(p) and p < 1.0 - confidence,
    )


@dataclass(frozen=True, slots=True)
class MeanSummary:
    """One arm's sample of a numeric metric: size, mean, sample standard deviation, and the
    mean's t interval at ``confidence`` (NaN where n < 2)."""

    n: int
    mean: float
    sd: float
    ci: tuple[float, float]

    def as_dict(self) -> dict[str, Any]:
        return {
            "n": self.n,
            "mean": _r(self.mean),
            "sd": _r(self.sd),
            "confidence_interval": [_r(self.ci[0]), _r(self.ci[1])],
        }


def summarize(values: npt.ArrayLike, confidence: float) -> MeanSummary:
    """Size, mean, sd (ddof = 1) and t interval of the finite ``values``."""
    data = np.asarray(values, dtype=np.float64).ravel()
    data = data[np.isfinite(data)]
    n = int(data.size)
    if n == 0:
        return MeanSummary(0, math.nan, math.nan, (math.nan, math.nan))
    mean = float(data.mean())
    if n < 2:
        return MeanSummary(n, mean, math.nan, (math.nan, math.nan))
    sd = float(data.std(ddof=1))
    half = float(stats.t.ppf(0.5 + confidence / 2.0, n - 1)) * sd / math.sqrt(n)
    return MeanSummary(n, mean, sd, (mean - half, mean + half))


@dataclass(frozen=True, slots=True)
class MeanTest:
    """Welch's t-test of two means; ``df`` is the Welch–Satterthwaite degrees of freedom."""

    a: MeanSummary
    b: MeanSummary
    difference: float  # mean_b − mean_a, in the metric's unit
    ci_difference: tuple[float, float]
    t: float
    df: float
    p_value: float
    confidence: float
    significant: bool

    def as_dict(self) -> dict[str, Any]:
        return {
            "test": "welch_t",
            "difference": _r(self.difference),
            "confidence_interval": [_r(self.ci_difference[0]), _r(self.ci_difference[1])],
            "statistic": _r(self.t),
            "degrees_of_freedom": _r(self.df, 2),
            "p_value": _r(self.p_value, 12),
            "confidence_level": self.confidence,
            "significant": self.significant,
        }


def welch_ttest(a: npt.ArrayLike, b: npt.ArrayLike, *, confidence: float = 0.95) -> MeanTest:
    """Is the challenger's mean different from the baseline's? Two-sided, unequal variances.

    Fewer than 2 finite values in an arm gives p = NaN (not significant). Zero variance in both
    arms (constant samples: a model whose latency is always 5 ms) leaves no sampling error: the
    difference is exact, so p = 0 with the interval [d, d] when the means differ (t = ±inf), and
    p = 1 with the interval [0, 0] when they are equal (t = 0); df is then n_a + n_b − 2.
    """
    xa = np.asarray(a, dtype=np.float64).ravel()
    xb = np.asarray(b, dtype=np.float64).ravel()
    xa, xb = xa[np.isfinite(xa)], xb[np.isfinite(xb)]
    sa, sb = summarize(xa, confidence), summarize(xb, confidence)
    difference = sb.mean - sa.mean if sa.n and sb.n else math.nan
    t = df = p = math.nan
    ci = (math.nan, math.nan)
    if sa.n >= 2 and sb.n >= 2 and (sa.sd > 0 or sb.sd > 0):
        # ttest_ind(x, y) tests mean(x) − mean(y): put the challenger first for b − a. SciPy warns
        # of "catastrophic cancellation" when one arm is constant (one model's confidence on
        # repeated inputs); Welch's statistic then rests on the other arm's variance and is sound.
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", "Precision loss occurred", RuntimeWarning)
            result = stats.ttest_ind(xb, xa, equal_var=False)
        t, p = float(result.statistic), float(result.pvalue)
        df = float(result.df)
        interval = result.confidence_interval(confidence_level=confidence)
        ci = (float(interval.low), float(interval.high))
    elif sa.n >= 2 and sb.n >= 2:
        # Both constant: SciPy answers NaN (0/0), which would keep an experiment running forever
        # although the difference is certain.
        df = float(sa.n + sb.n - 2)
        if difference == 0:
            t, p, ci = 0.0, 1.0, (0.0, 0.0)
        else:
            t, p, ci = math.copysign(math.inf, difference), 0.0, (difference, difference)
    return MeanTest(
        a=sa,
        b=sb,
        difference=difference,
        ci_difference=ci,
        t=t,
        df=df,
        p_value=p,
        confidence=confidence,
        significant=math.isfinite(p) and p < 1.0 - confidence,
    )
