"""The real-photo reference of the hand-made AI-image methods, and their statistic → score rule.

The table ``forensics/reference/real_images.json`` is written by
``scripts/calibrate_ai_image_methods.py`` from REAL photos only (the train split of
``scripts/train/ai_image_data.py``); the meaning of percentile and suspicion is that of
:mod:`facesocial.forensics.calibration` (a real photo averages 0.14, the top 1 % of real photos 0.67).

A method with several statistics combines them with a Bonferroni-corrected maximum: with ``k``
statistics and the largest percentile ``p`` (the rarest one for a real photo), the method's
percentile is ``1 − min(1, k · (1 − p))`` and its score the surprise of that. Why not the plain
maximum: with k statistics a real photo would reach the top 1 % of *some* statistic k times as
often, so more statistics would mean more false alarms. Why not the mean: one statistic far out of
the real range would be diluted by the others. Statistics without a reference are reported but
not scored; when none has one the method's score is None (uncalibrated, no opinion).
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Mapping
from functools import lru_cache
from importlib import resources
from typing import Any

from facesocial.forensics.ai_image.report import MethodResult
from facesocial.forensics.calibration import REFERENCE_PACKAGE, ReferenceTable, surprise

log = logging.getLogger(__name__)

REFERENCE_FILE = "reference/real_images.json"


@lru_cache(maxsize=1)
def packaged_reference() -> ReferenceTable:
    """The table shipped in the package; an empty one (every method uncalibrated) if absent."""
    try:
        text = resources.files(REFERENCE_PACKAGE).joinpath(REFERENCE_FILE).read_text(encoding="utf-8")
    except FileNotFoundError:
        log.warning("forensics/%s is missing: run scripts/calibrate_ai_image_methods.py", REFERENCE_FILE)
        return ReferenceTable({})
    return ReferenceTable.from_dict(json.loads(text))


packaged_table = packaged_reference  # the name the analyzer's factory imports


def score_statistics(
    statistics: Mapping[str, float], table: ReferenceTable
) -> tuple[float | None, dict[str, dict[str, Any]]]:
    """The method score (module doc) and, per statistic, ``{raw, percentile, suspicion}``.

    ``statistics``: raw values by reference name (e.g. ``"ela_mean"``). Returns ``(None, ...)``
    when no statistic has a reference entry. Non-finite raw values are reported as None and not scored.
    """
    per_statistic: dict[str, dict[str, Any]] = {}
    percentiles: list[float] = []
    for name, raw in statistics.items():
        reference = table.get(name)
        finite = math.isfinite(float(raw))
        # NaN (a statistic undefined on this image, e.g. no textured block) is no JSON number.
        entry: dict[str, Any] = {
            "raw": round(float(raw), 6) if finite else None,
            "percentile": None,
            "suspicion": None,
        }
        if reference is not None and finite:
            # Capped like SignalReference.suspicion: no rarer than the reference can tell.
            rarest = 1.0 - 1.0 / (reference.count + 1)
            percentile = min(reference.percentile(float(raw)), rarest)
            entry["percentile"] = round(percentile, 4)
            entry["suspicion"] = round(surprise(percentile), 4)
            percentiles.append(percentile)
        per_statistic[name] = entry
    if not percentiles:
        return None, per_statistic
    combined = 1.0 - min(1.0, len(percentiles) * (1.0 - max(percentiles)))
    return surprise(combined), per_statistic


def verdict_fields(score: float | None) -> dict[str, Any]:
    """Document 003's ``is_suspicious`` and ``confidence`` of a method score, as MethodResult has them."""
    result = MethodResult("", score, 0.0, "")
    return {"is_suspicious": result.is_ai_generated, "confidence": result.confidence}


def check_rgb(rgb: Any) -> None:
    """Raises ValueError unless ``rgb`` is a non-empty (H, W, 3) array (every pixel method's input)."""
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.size == 0:
        raise ValueError(f"expected an (H, W, 3) RGB image, got shape {rgb.shape}")


def scored(
    stats: Mapping[str, float], table: ReferenceTable, started: float
) -> tuple[float | None, dict[str, dict[str, Any]], float]:
    """(method score, per-statistic details, ms since ``started`` — a ``time.perf_counter()``)."""
    score, per_stat = score_statistics(stats, table)
    return score, per_stat, (time.perf_counter() - started) * 1000.0
