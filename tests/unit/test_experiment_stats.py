"""A/B experiments without a server: stable arm assignment, the significance tests against
published and hand-computed figures, their error rates on simulated experiments, and the
conclusion rules."""

from __future__ import annotations

import math
import uuid

import numpy as np
import pytest
from scipy import stats

from facesocial.domains.experiments.assignment import ExperimentSnapshot, choose_arm, split_subject
from facesocial.domains.experiments.conclusions import conclude
from facesocial.domains.experiments.stats import (
    summarize,
    two_proportion_ztest,
    welch_ttest,
    wilson_interval,
)
from facesocial.domains.registry.serving import RoutingKey


def experiment(method: str, percent: float = 50.0, salt: str = "salt-1") -> ExperimentSnapshot:
    return ExperimentSnapshot(
        experiment_id="exp_test",
        model_id="face_detection",
        baseline_version="retinaface_mnet025@1.0",
        challenger_version="blazeface_full@1.0",
        traffic_split_percent=percent,
        traffic_split_method=method,
        hash_salt=salt,
    )


# --- assignment -----------------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["user", "session"])
def test_a_subject_keeps_its_arm_over_many_requests(method: str) -> None:
    exp = experiment(method)
    for subject in range(20):
        arms = {
            choose_arm(
                exp, RoutingKey(request_id=f"req-{i}", user_key=f"user-{subject}", session_id=f"s-{subject}")
            )
            for i in range(200)
        }
        assert len(arms) == 1, arms  # one (arm, subject, reason) for 200 different requests


def test_random_split_draws_each_request_afresh() -> None:
    exp = experiment("random")
    arms = {choose_arm(exp, RoutingKey(request_id=f"req-{i}", user_key="one-user"))[0] for i in range(200)}
    assert arms == {"baseline", "challenger"}


@pytest.mark.parametrize("percent", [10.0, 30.0, 50.0, 90.0])
def test_split_fraction_is_within_binomial_bounds(percent: float) -> None:
    exp = experiment("user", percent)
    n = 2000
    on_challenger = sum(
        choose_arm(exp, RoutingKey(request_id="r", user_key=f"user-{i}"))[0] == "challenger" for i in range(n)
    )
    # A two-sided 99.9 % binomial interval: a correct hash fails this once in a thousand salts.
    low, high = stats.binom.interval(0.999, n, percent / 100)
    assert low <= on_challenger <= high, (on_challenger, low, high)


def test_a_new_salt_reshuffles_subjects() -> None:
    first, second = experiment("user", salt="a"), experiment("user", salt="b")
    keys = [RoutingKey(request_id="r", user_key=f"user-{i}") for i in range(1000)]
    same = sum(choose_arm(first, k)[0] == choose_arm(second, k)[0] for k in keys)
    # Independent 50/50 draws agree about half the time; the same salt would agree 1000 times.
    assert 420 <= same <= 580


@pytest.mark.parametrize(
    ("method", "key", "subject", "reason"),
    [
        ("random", RoutingKey("r1", user_key="u", session_id="s"), "request:r1", "random"),
        ("user", RoutingKey("r1", user_key="u", session_id="s"), "user:u", "user_hash"),
        ("user", RoutingKey("r1"), "request:r1", "request_fallback"),
        ("session", RoutingKey("r1", user_key="u", session_id="s"), "session:s", "session_hash"),
        # A session id is the client's text: two tenants' "s" are two subjects.
        (
            "session",
            RoutingKey("r1", tenant_id=uuid.UUID(int=7), user_key="u", session_id="s"),
            f"session:{uuid.UUID(int=7)}:s",
            "session_hash",
        ),
        ("session", RoutingKey("r1", user_key="u"), "user:u", "user_fallback"),
        ("session", RoutingKey("r1"), "request:r1", "request_fallback"),
    ],
)
def test_split_subject_and_its_fallbacks(method: str, key: RoutingKey, subject: str, reason: str) -> None:
    assert split_subject(method, key) == (subject, reason)


# --- the tests against known figures -----------------------------------------------------------


def test_two_proportion_z_matches_the_textbook_formula() -> None:
    test = two_proportion_ztest(1050, 1500, 1200, 1500, confidence=0.95)
    pooled = 2250 / 3000
    z = (0.8 - 0.7) / math.sqrt(pooled * (1 - pooled) * (2 / 1500))
    assert test.z == pytest.approx(z, rel=1e-12)
    assert test.p_value == pytest.approx(2 * stats.norm.sf(z), rel=1e-9)
    assert test.difference == pytest.approx(0.1)
    assert test.significant


def test_newcombe_interval_reproduces_the_published_example() -> None:
    # Newcombe (1998), Statistics in Medicine 17:873, example (a): 56/70 − 48/80, method 10
    # (hybrid score interval) gives 0.0524 to 0.3339.
    test = two_proportion_ztest(48, 80, 56, 70, confidence=0.95)
    assert test.difference == pytest.approx(0.2)
    assert test.ci_difference[0] == pytest.approx(0.0524, abs=5e-5)
    assert test.ci_difference[1] == pytest.approx(0.3339, abs=5e-5)


def test_wilson_interval_matches_the_score_formula() -> None:
    # Wilson (1927): centre (p + z²/2n) / (1 + z²/n), half-width z·sqrt(p(1−p)/n + z²/4n²) / (1 + z²/n).
    p, n, z = 56 / 70, 70, stats.norm.ppf(0.975)
    centre = (p + z**2 / (2 * n)) / (1 + z**2 / n)
    half = z * math.sqrt(p * (1 - p) / n + z**2 / (4 * n**2)) / (1 + z**2 / n)
    low, high = wilson_interval(56, 70, 0.95)
    assert (low, high) == (pytest.approx(centre - half, rel=1e-9), pytest.approx(centre + half, rel=1e-9))
    assert (round(low, 4), round(high, 4)) == (0.6918, 0.8770)


def test_welch_matches_the_welch_satterthwaite_formulas() -> None:
    rng = np.random.default_rng(3)
    a, b = rng.normal(50, 10, 300), rng.normal(47, 20, 120)
    test = welch_ttest(a, b, confidence=0.9)
    va, vb = a.var(ddof=1) / a.size, b.var(ddof=1) / b.size
    df = (va + vb) ** 2 / (va**2 / (a.size - 1) + vb**2 / (b.size - 1))
    t = (b.mean() - a.mean()) / math.sqrt(va + vb)
    half = stats.t.ppf(0.95, df) * math.sqrt(va + vb)
    assert test.df == pytest.approx(df, rel=1e-9)
    assert test.t == pytest.approx(t, rel=1e-9)
    assert test.p_value == pytest.approx(2 * stats.t.sf(abs(t), df), rel=1e-9)
    assert test.ci_difference == (
        pytest.approx(b.mean() - a.mean() - half, rel=1e-9),
        pytest.approx(b.mean() - a.mean() + half, rel=1e-9),
    )


def test_degenerate_samples_are_not_significant() -> None:
    assert not two_proportion_ztest(0, 10, 0, 10).significant  # no variance at all
    assert not two_proportion_ztest(0, 0, 5, 10).significant  # an empty arm
    assert math.isnan(welch_ttest([1.0], [2.0, 3.0]).p_value)
    assert summarize([], 0.95).n == 0
    with pytest.raises(ValueError):
        two_proportion_ztest(11, 10, 0, 10)


def test_constant_but_different_samples_are_a_certain_difference() -> None:
    """Both arms constant (latency always 5 ms vs 50 ms): no sampling error, so p = 0 and the
    interval is the exact difference; the conclusion is decisive, not run_longer forever."""
    test = welch_ttest([5.0] * 2000, [50.0] * 2000)
    assert test.p_value == 0.0 and test.significant
    assert test.ci_difference == (45.0, 45.0) and test.difference == 45.0
    assert test.t == math.inf and test.df == 3998.0
    assert test.as_dict()["statistic"] is None  # JSON has no infinity
    assert conclude({"latency_ms": test}, ["latency_ms"], 1000).recommendation == "keep_baseline"
    faster = welch_ttest([50.0] * 2000, [5.0] * 2000)
    assert faster.ci_difference == (-45.0, -45.0) and faster.t == -math.inf
    assert conclude({"latency_ms": faster}, ["latency_ms"], 1000).recommendation == "deploy_challenger"


def test_identical_constant_samples_are_equivalent() -> None:
    """Both arms the same constant: difference exactly 0, p = 1, interval [0, 0] (within any
    equivalence margin): keep_baseline after the minimum sample, run_longer before it."""
    test = welch_ttest([40.0] * 2000, [40.0] * 2000)
    assert (test.p_value, test.ci_difference, test.t) == (1.0, (0.0, 0.0), 0.0)
    assert not test.significant
    assert conclude({"latency_ms": test}, ["latency_ms"], 1000).recommendation == "keep_baseline"
    small = welch_ttest([40.0] * 10, [40.0] * 10)
    assert conclude({"latency_ms": small}, ["latency_ms"], 1000).recommendation == "run_longer"
    # One constant arm is not this case: Welch's test rests on the other arm's variance.
    mixed = welch_ttest([40.0] * 50, [39.0, 41.0] * 25)
    assert mixed.p_value == pytest.approx(1.0) and math.isfinite(mixed.t) and mixed.ci_difference[0] < 0


# --- synthetic experiments with a known truth -----------------------------------------------------


def outcomes(rng: np.random.Generator, rate: float, n: int) -> int:
    return int(rng.binomial(1, rate, n).sum())


def test_a_known_difference_in_accuracy_is_found_and_deployed() -> None:
    rng = np.random.default_rng(13)
    n = 1500
    test = two_proportion_ztest(outcomes(rng, 0.70, n), n, outcomes(rng, 0.80, n), n, confidence=0.95)
    assert test.p_value < 0.01
    assert test.ci_difference[0] < 0.10 < test.ci_difference[1]  # the true difference is covered
    verdict = conclude({"accuracy": test}, ["accuracy"], minimum_sample_size=1000)
    assert verdict.recommendation == "deploy_challenger"
    assert verdict.winner == "challenger"


def test_equal_rates_are_not_significant_and_run_longer() -> None:
    rng = np.random.default_rng(14)
    n = 1500
    test = two_proportion_ztest(outcomes(rng, 0.75, n), n, outcomes(rng, 0.75, n), n, confidence=0.95)
    assert not test.significant
    # ±3 points of uncertainty is wider than the 1-point equivalence margin: keep collecting.
    assert conclude({"accuracy": test}, ["accuracy"], 1000).recommendation == "run_longer"


def test_error_rates_over_simulated_experiments() -> None:
    """Type I error near alpha on A/A experiments; power near 1 for 0.70 vs 0.80 at n = 1500."""
    rng = np.random.default_rng(15)
    n, runs = 1500, 400
    false_alarms = sum(
        two_proportion_ztest(
            outcomes(rng, 0.75, n), n, outcomes(rng, 0.75, n), n, confidence=0.95
        ).significant
        for _ in range(runs)
    )
    # 5 % expected; the 99.9 % binomial interval of 400 draws at 0.05 is about 6..38.
    low, high = stats.binom.interval(0.999, runs, 0.05)
    assert low <= false_alarms <= high, false_alarms
    found = sum(
        two_proportion_ztest(
            outcomes(rng, 0.70, n), n, outcomes(rng, 0.80, n), n, confidence=0.99
        ).significant
        for _ in range(100)
    )
    assert found >= 98  # power ≈ 0.9999 at these sizes


def test_welch_false_alarm_rate_with_unequal_variances() -> None:
    rng = np.random.default_rng(16)
    runs = 400
    alarms = sum(
        welch_ttest(rng.normal(30, 5, 200), rng.normal(30, 25, 40), confidence=0.95).significant
        for _ in range(runs)
    )
    low, high = stats.binom.interval(0.999, runs, 0.05)
    assert low <= alarms <= high, alarms


# --- conclusion rules --------------------------------------------------------------------------


def test_too_few_observations_run_longer_even_when_significant() -> None:
    test = two_proportion_ztest(50, 100, 90, 100)
    assert test.significant
    verdict = conclude({"accuracy": test}, ["accuracy"], minimum_sample_size=500)
    assert verdict.recommendation == "run_longer"
    assert "minimum is 500" in verdict.reason


def test_a_worse_challenger_keeps_the_baseline() -> None:
    rng = np.random.default_rng(17)
    latency = welch_ttest(rng.normal(40, 5, 2000), rng.normal(55, 5, 2000))
    verdict = conclude({"latency_ms": latency}, ["latency_ms"], 1000)
    assert verdict.recommendation == "keep_baseline"
    assert verdict.winner == "baseline"


def test_a_significant_regression_elsewhere_blocks_deployment() -> None:
    rng = np.random.default_rng(18)
    accuracy = two_proportion_ztest(1050, 1500, 1200, 1500)
    slower = welch_ttest(rng.normal(40, 5, 1500), rng.normal(60, 5, 1500))
    verdict = conclude({"accuracy": accuracy, "latency_ms": slower}, ["accuracy", "latency_ms"], 1000)
    assert verdict.recommendation == "keep_baseline"
    assert verdict.regressions == ("latency_ms",)
    assert verdict.risk == "high"


def test_faster_and_equally_accurate_deploys_on_latency_when_latency_is_primary() -> None:
    rng = np.random.default_rng(19)
    accuracy = two_proportion_ztest(1125, 1500, 1124, 1500)
    faster = welch_ttest(rng.normal(60, 8, 1500), rng.normal(35, 8, 1500))
    verdict = conclude({"accuracy": accuracy, "latency_ms": faster}, ["latency_ms", "accuracy"], 1000)
    assert verdict.recommendation == "deploy_challenger"
    assert verdict.expected_improvement_percent is not None and verdict.expected_improvement_percent > 30


def test_equivalent_arms_after_a_large_sample_keep_the_baseline() -> None:
    n = 200_000
    test = two_proportion_ztest(150_000, n, 150_100, n)
    assert not test.significant
    verdict = conclude({"accuracy": test}, ["accuracy"], 1000)
    assert verdict.recommendation == "keep_baseline"
    assert "equivalent" in verdict.reason


def test_the_primary_metric_is_the_first_with_data() -> None:
    rng = np.random.default_rng(20)
    no_feedback = two_proportion_ztest(0, 0, 0, 0)
    latency = welch_ttest(rng.normal(60, 8, 1500), rng.normal(35, 8, 1500))
    verdict = conclude({"accuracy": no_feedback, "latency_ms": latency}, ["accuracy", "latency_ms"], 1000)
    assert verdict.primary_metric == "latency_ms"
    assert verdict.recommendation == "deploy_challenger"
