"""ISO/IEC 30107-3 error rates on hand-computed cases (score >= threshold = bona fide)."""

from __future__ import annotations

import pytest

from facesocial.evaluation.pad_metrics import (
    bpcer_at_apcer,
    equal_error_rate,
    operating_point,
    pad_curve,
    pad_report,
    threshold_for_bpcer,
)

BONA = [0.9, 0.8, 0.7, 0.6, 0.2]  # one bona fide presentation scores low
ATTACKS = {
    "photo": [0.1, 0.3, 0.65, 0.05],  # 0.65 passes at 0.5 and 0.6 but not at 0.7
    "screen": [0.1, 0.2, 0.3, 0.4, 0.75],  # 0.75 passes up to 0.75
}


@pytest.mark.parametrize(
    ("threshold", "apcer_photo", "apcer_screen", "bpcer"),
    [
        (0.5, 1 / 4, 1 / 5, 1 / 5),  # bona 0.2 rejected; photo 0.65, screen 0.75 accepted
        (0.7, 0 / 4, 1 / 5, 2 / 5),  # 0.2 and 0.6 rejected; 0.7 == threshold is accepted
        (0.8, 0 / 4, 0 / 5, 3 / 5),
        (0.0, 4 / 4, 5 / 5, 0 / 5),
    ],
)
def test_operating_point_by_hand(
    threshold: float, apcer_photo: float, apcer_screen: float, bpcer: float
) -> None:
    point = operating_point(BONA, ATTACKS, threshold)
    assert point.apcer == pytest.approx({"photo": apcer_photo, "screen": apcer_screen})
    assert point.apcer_max == pytest.approx(max(apcer_photo, apcer_screen))  # worst type, not pooled
    assert point.bpcer == pytest.approx(bpcer)
    assert point.acer == pytest.approx((max(apcer_photo, apcer_screen) + bpcer) / 2)
    assert point.n_bona_fide == 5
    assert point.n_attacks == {"photo": 4, "screen": 5}


def test_system_apcer_is_the_worst_type_not_the_pooled_share() -> None:
    point = operating_point([1.0, 1.0], {"a": [0.0] * 9 + [0.9], "b": [0.9]}, 0.5)
    assert point.apcer == {"a": 0.1, "b": 1.0}
    assert point.apcer_max == 1.0  # pooled would be 2/11


def test_curve_is_monotonic_and_ends_rejecting_all() -> None:
    curve = pad_curve(BONA, ATTACKS)
    assert list(curve.thresholds[:3]) == [0.05, 0.1, 0.2]
    assert curve.thresholds[-1] == float("inf")
    assert curve.apcer_max[0] == 1.0 and curve.bpcer[0] == 0.0
    assert curve.apcer_max[-1] == 0.0 and curve.bpcer[-1] == 1.0
    assert all(a >= b for a, b in zip(curve.apcer_max, curve.apcer_max[1:], strict=False))
    assert all(a <= b for a, b in zip(curve.bpcer, curve.bpcer[1:], strict=False))


def test_eer_of_separable_scores_is_zero() -> None:
    eer, threshold = equal_error_rate([0.8, 0.9], {"photo": [0.1, 0.2]})
    assert eer == 0.0
    assert threshold == 0.8


def test_eer_interpolates_between_thresholds() -> None:
    # At 0.5: APCER 1/2, BPCER 1/4; at 0.8: APCER 0, BPCER 1/4 -> the segments cross at 1/4.
    eer, threshold = equal_error_rate([0.3, 0.8, 0.85, 0.9], {"photo": [0.1, 0.5]})
    assert eer == pytest.approx(0.25) and threshold == 0.8


def test_eer_where_the_rates_meet_exactly() -> None:
    # At 0.5: APCER 1/2 (0.5 accepted), BPCER 1/2 (0.3 rejected).
    eer, threshold = equal_error_rate([0.3, 0.9], {"photo": [0.1, 0.5]})
    assert eer == pytest.approx(0.5) and threshold == 0.5


@pytest.mark.parametrize(
    ("max_apcer", "bpcer", "threshold"),
    [
        (0.25, 1 / 5, 0.6),  # at 0.4 screen is 2/5; at 0.6 photo 1/4, screen 1/5
        (0.20, 2 / 5, 0.7),  # at 0.65 photo is 1/4 > 0.2; at 0.7 photo 0, screen 1/5
        (0.0, 3 / 5, 0.8),  # every attack rejected from 0.8 on (screen 0.75 < 0.8)
    ],
)
def test_bpcer_at_apcer(max_apcer: float, bpcer: float, threshold: float) -> None:
    assert bpcer_at_apcer(BONA, ATTACKS, max_apcer) == (pytest.approx(bpcer), threshold)


def test_threshold_for_bpcer_keeps_the_bound() -> None:
    bona = [i / 100 for i in range(1, 101)]  # 0.01 .. 1.00
    t = threshold_for_bpcer(bona, 0.05)
    assert t == pytest.approx(0.06)  # 0.01..0.05 (5 of 100) fall below
    assert operating_point(bona, {"x": [0.0]}, t).bpcer == pytest.approx(0.05)
    assert threshold_for_bpcer(bona, 0.0) == pytest.approx(0.01)


def test_report_and_errors() -> None:
    report = pad_report(BONA, ATTACKS, 0.5)
    assert report["at_threshold"]["bpcer"] == pytest.approx(0.2)
    assert 0.0 <= report["eer"] <= 1.0
    assert report["bpcer_at_apcer_1pct"] >= report["bpcer_at_apcer_5pct"]  # stricter APCER costs BPCER
    with pytest.raises(ValueError, match="bona fide"):
        operating_point([], ATTACKS, 0.5)
    with pytest.raises(ValueError, match="attack"):
        operating_point(BONA, {"photo": []}, 0.5)
