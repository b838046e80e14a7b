"""From an experiment's tests to a recommendation: deploy the challenger, keep the baseline, or
run longer.

The *primary* metric is the first of the experiment's ``success_metrics`` that has data in both
arms (``accuracy`` needs feedback). Rules, in order:

1. ``run_longer`` — either arm has fewer than ``minimum_sample_size`` observations of the primary
   metric (feedback for accuracy, inferences otherwise): too early to read anything;
2. ``deploy_challenger`` — the primary metric is significantly *better* on the challenger and no
   other success metric is significantly *worse*;
3. ``keep_baseline`` — the primary metric is significantly worse on the challenger; or better but
   another metric significantly worse (a trade-off a person must weigh: risk ``high``); or not
   significant and its interval of the difference lies inside the equivalence margin (the arms are
   equivalent: changing gains nothing);
4. ``run_longer`` — not significant and the interval is still wider than the margin.

Directions: ``accuracy`` and ``confidence`` are better higher, ``latency_ms`` lower. Equivalence
margins (:data:`EQUIVALENCE_MARGINS`, overridable per experiment by ``success_thresholds``):
1 accuracy point, 0.01 of mean confidence, 5 % of the baseline's mean latency.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from facesocial.domains.experiments.stats import MeanTest, ProportionTest

Recommendation = Literal["deploy_challenger", "keep_baseline", "run_longer"]
METRICS: tuple[str, ...] = ("accuracy", "confidence", "latency_ms")
HIGHER_IS_BETTER: dict[str, bool] = {"accuracy": True, "confidence": True, "latency_ms": False}
# Absolute margins, except latency_ms: a fraction of the baseline's mean.
EQUIVALENCE_MARGINS: dict[str, float] = {"accuracy": 0.01, "confidence": 0.01, "latency_ms": 0.05}

Test = ProportionTest | MeanTest


def sample_sizes(test: Test) -> tuple[int, int]:
    """Observations per arm (baseline, challenger) behind one test."""
    if isinstance(test, ProportionTest):
        return test.n_a, test.n_b
    return test.a.n, test.b.n


def _baseline_value(test: Test) -> float:
    return test.rate_a if isinstance(test, ProportionTest) else test.a.mean


def _challenger_value(test: Test) -> float:
    return test.rate_b if isinstance(test, ProportionTest) else test.b.mean


def margin_of(metric: str, test: Test, thresholds: Mapping[str, float] | None) -> float:
    """The equivalence margin of ``metric`` in its own unit."""
    margin = float((thresholds or {}).get(metric, EQUIVALENCE_MARGINS.get(metric, 0.0)))
    if metric == "latency_ms":
        base = _baseline_value(test)
        return margin * abs(base) if math.isfinite(base) else math.nan
    return margin


def improvement(metric: str, test: Test) -> float:
    """Signed gain of the challenger in the metric's unit (> 0: better), NaN if unknown."""
    gain = test.difference
    return gain if HIGHER_IS_BETTER.get(metric, True) else -gain


def relative_improvement_percent(metric: str, test: Test) -> float | None:
    """The gain as a percentage of the baseline's value (None when the baseline is 0/unknown)."""
    base = _baseline_value(test)
    gain = improvement(metric, test)
    if not (math.isfinite(base) and math.isfinite(gain)) or base == 0:
        return None
    return round(100.0 * gain / abs(base), 2)


@dataclass(frozen=True, slots=True)
class Conclusion:
    recommendation: Recommendation
    reason: str
    primary_metric: str | None
    winner: Literal["baseline", "challenger"] | None
    expected_improvement_percent: float | None
    risk: Literal["low", "medium", "high"]
    regressions: tuple[str, ...]

    def as_dict(self) -> dict[str, Any]:
        return {
            "recommendation": self.recommendation,
            "reason": self.reason,
            "primary_metric": self.primary_metric,
            "winner": self.winner,
            "expected_improvement_percent": self.expected_improvement_percent,
            "risk": self.risk,
            "regressions": list(self.regressions),
        }


def conclude(
    tests: Mapping[str, Test],
    success_metrics: Sequence[str],
    minimum_sample_size: int,
    *,
    thresholds: Mapping[str, float] | None = None,
) -> Conclusion:
    """The recommendation for ``tests`` (metric name → test of challenger against baseline)."""
    usable = [m for m in success_metrics if m in tests and min(sample_sizes(tests[m])) > 0]
    if not usable:
        return Conclusion(
            "run_longer", "No success metric has observations in both arms yet", None, None, None, "low", ()
        )
    primary = usable[0]
    test = tests[primary]
    n_a, n_b = sample_sizes(test)
    if min(n_a, n_b) < minimum_sample_size:
        return Conclusion(
            "run_longer",
            f"{primary}: {n_a} baseline and {n_b} challenger observations; the minimum is "
            f"{minimum_sample_size} per arm",
            primary,
            None,
            None,
            "low",
            (),
        )
    regressions = tuple(
        m
        for m in success_metrics
        if m != primary and m in tests and tests[m].significant and improvement(m, tests[m]) < 0
    )
    gain = improvement(primary, test)
    level = f"{test.confidence:g}"
    percent = relative_improvement_percent(primary, test)
    if test.significant and gain > 0:
        if regressions:
            return Conclusion(
                "keep_baseline",
                f"{primary} is significantly better on the challenger (p={test.p_value:.3g}) but "
                f"{', '.join(regressions)} significantly worse: a trade-off to weigh, not a deploy",
                primary,
                None,
                percent,
                "high",
                regressions,
            )
        return Conclusion(
            "deploy_challenger",
            f"{primary} is significantly better on the challenger at confidence {level} "
            f"(difference {test.difference:+.4g}, p={test.p_value:.3g}) and no other success metric is worse",
            primary,
            "challenger",
            percent,
            "low",
            (),
        )
    if test.significant:
        return Conclusion(
            "keep_baseline",
            f"{primary} is significantly worse on the challenger (difference {test.difference:+.4g}, "
            f"p={test.p_value:.3g})",
            primary,
            "baseline",
            percent,
            "low",
            regressions,
        )
    margin = margin_of(primary, test, thresholds)
    low, high = test.ci_difference
    if all(math.isfinite(v) for v in (margin, low, high)) and -margin <= low and high <= margin:
        return Conclusion(
            "keep_baseline",
            f"{primary}: the arms are equivalent (the {level} interval of the difference "
            f"[{low:.4g}, {high:.4g}] lies within ±{margin:.4g}); changing gains nothing",
            primary,
            "baseline",
            percent,
            "low",
            regressions,
        )
    return Conclusion(
        "run_longer",
        f"{primary}: no significant difference yet (p={test.p_value:.3g}) and the interval "
        f"[{low:.4g}, {high:.4g}] is wider than the equivalence margin ±{margin:.4g}",
        primary,
        None,
        percent,
        "medium",
        regressions,
    )
