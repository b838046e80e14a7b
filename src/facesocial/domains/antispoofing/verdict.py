"""From passive scores to the answer of document 000's ``antispoofing_checks`` columns.

``is_live``: P(live) at or above the threshold. ``confidence_score``: the probability of the
answer given (P(live) when live, 1 − P(live) when not). ``spoof_type``: the more probable
attack class (``photo`` or ``screen``) when not live; ``mask`` is never answered because no
mask attack was in the training data (docs/liveness.md). ``risk_level``: ``low`` when live with
a margin (P(live) at least halfway from the threshold to 1), ``medium`` near the threshold on
either side (within half the distance to the other end), ``high`` otherwise.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

RiskLevel = Literal["low", "medium", "high"]
SpoofType = Literal["photo", "screen", "mask"]


@dataclass(frozen=True, slots=True)
class PassiveVerdict:
    is_live: bool
    confidence_score: float  # 0..1
    spoof_type: SpoofType | None
    risk_level: RiskLevel
    live_score: float  # P(live), 0..1
    threshold: float


def passive_verdict(live: float, photo: float, screen: float, threshold: float) -> PassiveVerdict:
    """``live``, ``photo``, ``screen``: class probabilities (0..1); ``threshold`` on ``live``."""
    live = min(max(float(live), 0.0), 1.0)
    is_live = live >= threshold
    if is_live:
        risk: RiskLevel = "low" if live >= threshold + (1.0 - threshold) / 2.0 else "medium"
        spoof: SpoofType | None = None
    else:
        risk = "medium" if live >= threshold / 2.0 else "high"
        spoof = "photo" if photo >= screen else "screen"
    confidence = live if is_live else 1.0 - live
    return PassiveVerdict(is_live, round(confidence, 4), spoof, risk, round(live, 4), threshold)
