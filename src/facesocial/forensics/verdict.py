"""Verdict bands, the confidence in a verdict, and the weighted fusion of suspicions.

Bands of a fused score ``s`` (0..1; ``settings.deepfake``): ``fake`` when s ≥ fake_threshold,
``real`` when s < real_below, ``uncertain`` in between. ``is_deepfake`` is true in the fake band only.

``confidence_score`` is the confidence IN THE VERDICT, not the fake probability:

* fake band: 0.5 + 0.5 · (s − fake_threshold) / (1 − fake_threshold) — 0.5 at the threshold, 1 at s = 1;
* real band: 0.5 + 0.5 · (real_below − s) / real_below — 0.5 at the edge, 1 at s = 0;
* uncertain band: below 0.5, 0 in the middle of the band, nearing 0.5 towards either edge (the
  analysis leans that way but does not decide).

The fake probability-like number is ``manipulation_score`` (= s).

Clearing a face needs a learned classifier and a passed clearing check (:mod:`.ensemble`): without
them (``can_clear`` False), a score under ``real_below`` gives ``uncertain``, not ``real``. The hand-made
signals only say how unusual a face is for a real one; a well-made deepfake is not unusual to them
(docs/deepfake.md, docs/accuracy.md), so their silence does not vouch for a face. Its confidence is
then that of the uncertain band's edge it leans to (just under 0.5).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Literal

from facesocial.settings import DeepfakeSettings

Band = Literal["real", "uncertain", "fake"]
Level = Literal["basic", "standard", "advanced"]
LEVELS: tuple[Level, ...] = ("basic", "standard", "advanced")


def band_of(score: float, settings: DeepfakeSettings, *, can_clear: bool = True) -> Band:
    """The band of a fused score (module doc); ``can_clear`` False turns ``real`` into ``uncertain``."""
    if score >= settings.fake_threshold:
        return "fake"
    if score < settings.real_below:
        return "real" if can_clear else "uncertain"
    return "uncertain"


# The most an uncertain verdict claims, at the edge of its band.
_UNCERTAIN_MAX = 0.49


def verdict_confidence(score: float, settings: DeepfakeSettings, *, can_clear: bool = True) -> float:
    """Confidence 0..1 in the band ``score`` falls in (module doc)."""
    low, high = settings.real_below, settings.fake_threshold
    band = band_of(score, settings, can_clear=can_clear)
    if band == "fake":
        span = max(1.0 - high, 1e-9)
        return min(1.0, 0.5 + 0.5 * (score - high) / span)
    if band == "real":
        return min(1.0, 0.5 + 0.5 * (low - score) / max(low, 1e-9))
    half = max((high - low) / 2.0, 1e-9)
    return max(0.0, min(_UNCERTAIN_MAX, 0.5 * abs(score - (low + high) / 2.0) / half))


def weighted_mean(pairs: Iterable[tuple[float, float]]) -> float | None:
    """Σ w·s / Σ w over (suspicion, weight) pairs with w > 0; None when there is none."""
    total = weight = 0.0
    for suspicion, w in pairs:
        if w > 0:
            total += w * suspicion
            weight += w
    return None if weight <= 0 else total / weight
