"""The SkyGate ensemble: per-method scores → one score, a verdict band and contributing factors.

Fusion (document 003 "weighted ensemble approach"): the weighted mean of the scores of the active
methods that have an opinion (``score`` not None), with the weights of
``ai_detection.detection_methods`` (editable by the operator; read on every analysis, so a change
applies to the next request):

    mean = Σ wᵢ·sᵢ / Σ wᵢ        contributionᵢ = wᵢ·sᵢ / Σ wᵢ   (the contributions sum to the mean)

Two kinds of method may carry the verdict alone, because a mean would dilute what they see:

* **decisive** (``metadata``): a generator's own declaration (IPTC DigitalSourceType
  trainedAlgorithmicMedia, a C2PA manifest declaring an AI source, generation parameters). When its
  score reaches :data:`DECISIVE_SCORE`, the image score is at least that score.
* **local** (``faces``): a synthetic face pasted into a real photograph covers a small part of the
  image, so the whole-image methods mostly see the real photograph. When the face method's score
  reaches :data:`LOCAL_SCORE`, the image score is at least that score.

Band: ``ai_generated`` when score ≥ ``ai_threshold``, ``real`` when score < ``real_below``,
``uncertain`` between (and whenever no method had an opinion).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from facesocial.forensics.ai_image.report import FACES, METADATA, MethodResult

Band = Literal["real", "uncertain", "ai_generated"]
DECISIVE_METHODS = (METADATA,)
LOCAL_METHODS = (FACES,)
DECISIVE_SCORE = 0.9
# A face must be this sure on its own to carry the image (the ensemble's ai_threshold is lower,
# being a mean that the weaker methods pull towards the middle).
LOCAL_SCORE = 0.8


@dataclass(frozen=True, slots=True)
class MethodWeight:
    """One row of ``detection_methods``: the method's weight (0..9.99) and whether it runs."""

    weight: float
    is_active: bool = True


@dataclass(frozen=True, slots=True)
class Verdict:
    """``score`` 0..1; ``factors``: one per fused method, largest contribution first."""

    is_ai_generated: bool
    score: float
    band: Band
    factors: list[dict[str, Any]]
    decided_by: str | None  # "weighted_mean", or the decisive/local method that set the score
    thresholds: dict[str, float]

    def as_dict(self) -> dict[str, Any]:
        return {
            "is_ai_generated": self.is_ai_generated,
            "confidence_score": round(self.score, 4),
            "band": self.band,
            "contributing_factors": self.factors,
            "decided_by": self.decided_by,
            "thresholds": self.thresholds,
        }


def band_of(score: float, ai_threshold: float, real_below: float) -> Band:
    if score >= ai_threshold:
        return "ai_generated"
    if score < real_below:
        return "real"
    return "uncertain"


def fuse(
    results: Sequence[MethodResult],
    weights: Mapping[str, MethodWeight],
    *,
    ai_threshold: float,
    real_below: float,
) -> Verdict:
    """The image's verdict from its method results (module doc).

    A method missing from ``weights`` weighs 0 (it is reported, not fused). Raises nothing:
    with no opinion at all the verdict is ``uncertain`` with score 0.5 and no factors.
    """
    thresholds = {"ai_threshold": ai_threshold, "real_below": real_below}
    scored = [
        (r, weights[r.name].weight)
        for r in results
        if r.score is not None
        and r.name in weights
        and weights[r.name].is_active
        and weights[r.name].weight > 0
    ]
    total = sum(w for _, w in scored)
    if total <= 0:
        return Verdict(False, 0.5, "uncertain", [], None, thresholds)
    mean = sum(w * float(r.score or 0.0) for r, w in scored) / total
    score, decided_by = mean, "weighted_mean"
    for r, _w in scored:
        s = float(r.score or 0.0)
        if (r.name in DECISIVE_METHODS and s >= DECISIVE_SCORE and s > score) or (
            r.name in LOCAL_METHODS and s >= max(LOCAL_SCORE, ai_threshold) and s > score
        ):
            score, decided_by = s, r.name
    factors = [
        {
            "factor": r.name,
            "weight": round(w, 2),
            "score": round(float(r.score or 0.0), 4),
            "contribution": round(w * float(r.score or 0.0) / total, 4),
        }
        for r, w in sorted(scored, key=lambda rw: -rw[1] * float(rw[0].score or 0.0))
    ]
    band = band_of(score, ai_threshold, real_below)
    return Verdict(band == "ai_generated", float(score), band, factors, decided_by, thresholds)
