"""Presentation attack detection (PAD) error rates of ISO/IEC 30107-3:2017 (clause 13).

Scores are "bona fide" scores: higher = more likely a live person (e.g. P(live)). A presentation
is accepted as bona fide when ``score >= threshold``.

* APCER of attack type *t*: the share of type-*t* attack presentations accepted as bona fide.
  The system's APCER is the maximum over the attack types (the standard's worst case), not the
  pooled share.
* BPCER: the share of bona fide presentations rejected as attacks.
* ACER = (max APCER + BPCER) / 2 (not defined by 30107-3 but common: ISO/IEC 30107-3 leaves
  it out because it mixes error types; report it together with its parts).
* EER: the rate where max APCER and BPCER cross as the threshold sweeps (linear interpolation
  between neighbouring thresholds).
* BPCER@APCER x (BPCER20 = BPCER at APCER 5 %, BPCER100 = at 1 %): the lowest BPCER of a
  threshold whose max APCER is at most x.

Every rate is a fraction 0..1. Errors: ``ValueError`` when there are no bona fide scores or no
attack scores at all (an attack type with no scores is dropped).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]


def _arrays(
    bona_fide: npt.ArrayLike, attacks: Mapping[str, npt.ArrayLike]
) -> tuple[FloatArray, dict[str, FloatArray]]:
    bona = np.asarray(bona_fide, dtype=np.float64).ravel()
    kinds = {k: np.asarray(v, dtype=np.float64).ravel() for k, v in attacks.items()}
    kinds = {k: v for k, v in kinds.items() if v.size}
    if bona.size == 0:
        raise ValueError("no bona fide scores")
    if not kinds:
        raise ValueError("no attack scores")
    return bona, kinds


@dataclass(frozen=True, slots=True)
class OperatingPoint:
    """Error rates at one threshold (fractions 0..1)."""

    threshold: float
    apcer: dict[str, float]  # per attack type
    apcer_max: float  # the system's APCER (worst attack type)
    bpcer: float
    acer: float
    n_bona_fide: int
    n_attacks: dict[str, int]

    def as_dict(self) -> dict[str, Any]:
        return {
            "threshold": self.threshold,
            "apcer": dict(self.apcer),
            "apcer_max": self.apcer_max,
            "bpcer": self.bpcer,
            "acer": self.acer,
            "n_bona_fide": self.n_bona_fide,
            "n_attacks": dict(self.n_attacks),
        }


def operating_point(
    bona_fide: npt.ArrayLike, attacks: Mapping[str, npt.ArrayLike], threshold: float
) -> OperatingPoint:
    """APCER per type, max APCER, BPCER and ACER when ``score >= threshold`` means bona fide."""
    bona, kinds = _arrays(bona_fide, attacks)
    apcer = {k: float(np.mean(v >= threshold)) for k, v in kinds.items()}
    apcer_max = max(apcer.values())
    bpcer = float(np.mean(bona < threshold))
    return OperatingPoint(
        threshold=float(threshold),
        apcer=apcer,
        apcer_max=apcer_max,
        bpcer=bpcer,
        acer=(apcer_max + bpcer) / 2.0,
        n_bona_fide=int(bona.size),
        n_attacks={k: int(v.size) for k, v in kinds.items()},
    )


@dataclass(frozen=True, slots=True)
class PadCurve:
    """Max APCER and BPCER at every distinct threshold (ascending), plus +inf (reject all)."""

    thresholds: FloatArray  # (T,)
    apcer_max: FloatArray  # (T,) non-increasing
    bpcer: FloatArray  # (T,) non-decreasing


def pad_curve(bona_fide: npt.ArrayLike, attacks: Mapping[str, npt.ArrayLike]) -> PadCurve:
    """The error trade-off over every threshold that changes a decision."""
    bona, kinds = _arrays(bona_fide, attacks)
    pooled = np.concatenate([bona, *kinds.values()])
    thresholds = np.append(np.unique(pooled), np.inf)
    bona_sorted = np.sort(bona)
    # BPCER(t) = #(bona < t) / n; APCER_k(t) = #(attack_k >= t) / n_k.
    bpcer = np.searchsorted(bona_sorted, thresholds, side="left") / bona.size
    per_kind = [1.0 - np.searchsorted(np.sort(v), thresholds, side="left") / v.size for v in kinds.values()]
    apcer_max = np.max(np.stack(per_kind), axis=0)
    return PadCurve(thresholds, apcer_max.astype(np.float64), bpcer.astype(np.float64))


def equal_error_rate(bona_fide: npt.ArrayLike, attacks: Mapping[str, npt.ArrayLike]) -> tuple[float, float]:
    """(EER, threshold) where max APCER = BPCER, interpolated linearly between thresholds.

    The threshold is that of the first sweep point where BPCER >= max APCER (a finite value;
    +inf only if every score is equal).
    """
    curve = pad_curve(bona_fide, attacks)
    diff = curve.apcer_max - curve.bpcer  # non-increasing, >= 0 at -inf side, <= 0 at +inf
    i = int(np.argmax(diff <= 0))
    if i == 0 or diff[i] == 0:
        eer = float((curve.apcer_max[i] + curve.bpcer[i]) / 2.0)
        return eer, float(curve.thresholds[i])
    # Crossing between i-1 (diff > 0) and i (diff < 0): where the two straight segments meet.
    a0, a1 = curve.apcer_max[i - 1], curve.apcer_max[i]
    b0, b1 = curve.bpcer[i - 1], curve.bpcer[i]
    w = (a0 - b0) / ((a0 - b0) - (a1 - b1))
    return float(a0 + w * (a1 - a0)), float(curve.thresholds[i])


def bpcer_at_apcer(
    bona_fide: npt.ArrayLike, attacks: Mapping[str, npt.ArrayLike], max_apcer: float
) -> tuple[float, float]:
    """(lowest BPCER, its threshold) among thresholds with max APCER <= ``max_apcer`` (0..1)."""
    curve = pad_curve(bona_fide, attacks)
    ok = np.flatnonzero(curve.apcer_max <= max_apcer + 1e-12)
    i = int(ok[0])  # +inf always qualifies (APCER 0), so ``ok`` is never empty
    return float(curve.bpcer[i]), float(curve.thresholds[i])


def threshold_for_bpcer(bona_fide: npt.ArrayLike, max_bpcer: float) -> float:
    """The highest threshold whose BPCER is at most ``max_bpcer`` (0..1): a bona fide score.

    With n bona fide scores, at most floor(max_bpcer x n) of them fall below it.
    """
    bona = np.sort(np.asarray(bona_fide, dtype=np.float64).ravel())
    if bona.size == 0:
        raise ValueError("no bona fide scores")
    allowed = int(np.floor(max_bpcer * bona.size + 1e-9))
    return float(bona[min(allowed, bona.size - 1)])


def pad_report(
    bona_fide: npt.ArrayLike, attacks: Mapping[str, npt.ArrayLike], threshold: float
) -> dict[str, Any]:
    """JSON-ready: the operating point at ``threshold``, EER, BPCER@APCER 1 % and 5 %."""
    point = operating_point(bona_fide, attacks, threshold)
    eer, eer_threshold = equal_error_rate(bona_fide, attacks)
    b1, t1 = bpcer_at_apcer(bona_fide, attacks, 0.01)
    b5, t5 = bpcer_at_apcer(bona_fide, attacks, 0.05)
    return {
        "at_threshold": point.as_dict(),
        "eer": eer,
        "eer_threshold": eer_threshold,
        "bpcer_at_apcer_1pct": b1,
        "bpcer_at_apcer_1pct_threshold": t1,
        "bpcer_at_apcer_5pct": b5,
        "bpcer_at_apcer_5pct_threshold": t5,
    }
