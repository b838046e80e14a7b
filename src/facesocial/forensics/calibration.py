"""From a raw forensic statistic to a suspicion in 0..1, calibrated on REAL faces only.

Each signal's statistic is compared with its distribution on real faces
(``forensics/reference/real_faces.json``, written by ``scripts/calibrate_deepfake_signals.py``):

* ``percentile`` = the fraction of real faces whose statistic is less suspicious (the empirical
  CDF; for a two-sided statistic, the fraction that lies closer to the real median). On real
  faces it is uniform on 0..1 by construction.
* ``suspicion`` = how surprising that is, on a log scale: ``-log10(1 - percentile) / 3``, clipped
  to 0..1. The top 10 % of real faces reach 0.33, the top 1 % 0.67, the top 0.1 % 1.0; a real
  face averages 0.14.

Why not the percentile itself: with a uniform percentile, a third of all real faces would sit
above any 0.65 threshold on every signal. The log scale keeps the meaning "fraction of real faces
that are less suspicious" (it is a monotone function of it) while only a rare statistic scores
high. Nothing here has seen a fake: the tables say how unusual a face is for a real one, not how
likely it is to be fake — which is why the ensemble weights them and keeps an uncertain band.
"""

from __future__ import annotations

import json
import logging
import math
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

log = logging.getLogger(__name__)

REFERENCE_PACKAGE = "facesocial.forensics"
REFERENCE_FILE = "reference/real_faces.json"
SURPRISE_DECADES = 3.0
Direction = Literal["upper", "two_sided"]


def surprise(percentile: float) -> float:
    """``-log10(1 - percentile) / SURPRISE_DECADES`` clipped to 0..1 (see the module doc)."""
    tail = max(1.0 - float(percentile), 10.0 ** (-SURPRISE_DECADES))
    return float(min(1.0, max(0.0, -math.log10(tail) / SURPRISE_DECADES)))


def percentile_of_surprise(value: float) -> float:
    """Inverse of :func:`surprise` (for documentation and tests)."""
    return float(1.0 - 10.0 ** (-SURPRISE_DECADES * float(value)))


@dataclass(frozen=True, slots=True)
class SignalReference:
    """Quantiles of one statistic over real faces: ``values[i]`` is the ``probs[i]`` quantile."""

    name: str
    direction: Direction
    probs: npt.NDArray[np.float64]
    values: npt.NDArray[np.float64]
    count: int
    model: str | None = None  # the model version the statistic came from (learned signals)

    def percentile(self, statistic: float) -> float:
        """Fraction of real faces with a less suspicious statistic, 0..1 (module doc)."""
        if not math.isfinite(statistic):
            return 0.5
        cdf = float(np.interp(statistic, self.values, self.probs, left=0.0, right=1.0))
        if self.direction == "upper":
            return cdf
        return abs(cdf - 0.5) * 2.0

    def suspicion(self, statistic: float) -> float:
        # A statistic beyond every reference face is as rare as the reference can tell, no rarer.
        rarest = 1.0 - 1.0 / (self.count + 1)
        return surprise(min(self.percentile(statistic), rarest))

    @property
    def median(self) -> float:
        return float(np.interp(0.5, self.probs, self.values))


@dataclass(frozen=True, slots=True)
class ReferenceTable:
    """Every calibrated statistic and the manifest saying where the numbers come from."""

    signals: dict[str, SignalReference]
    manifest: dict[str, Any] = field(default_factory=dict)

    def get(self, name: str) -> SignalReference | None:
        return self.signals.get(name)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ReferenceTable:
        signals = {
            name: SignalReference(
                name=name,
                direction=entry["direction"],
                probs=np.asarray(entry["probs"], dtype=np.float64),
                values=np.asarray(entry["values"], dtype=np.float64),
                count=int(entry["count"]),
                model=entry.get("model"),
            )
            for name, entry in data.get("signals", {}).items()
        }
        return cls(signals, dict(data.get("manifest", {})))


def reference_probs() -> npt.NDArray[np.float64]:
    """The quantile levels stored per statistic: dense in both tails, where suspicion is decided."""
    tails = np.concatenate([np.linspace(0.0, 0.01, 21), np.linspace(0.99, 1.0, 41)])
    return np.unique(np.round(np.concatenate([tails, np.linspace(0.01, 0.99, 197)]), 6))


def build_reference(
    name: str, samples: npt.ArrayLike, direction: Direction, model: str | None = None
) -> dict[str, Any]:
    """The JSON entry of one statistic from its values on real faces (NaNs dropped)."""
    x = np.asarray(samples, dtype=np.float64).ravel()
    x = x[np.isfinite(x)]
    if x.size < 10:
        raise ValueError(f"{name}: {x.size} finite samples are too few for a reference distribution")
    probs = reference_probs()
    values = np.quantile(x, probs)
    entry: dict[str, Any] = {
        "direction": direction,
        "count": int(x.size),
        "probs": [round(float(p), 6) for p in probs],
        "values": [float(f"{v:.6g}") for v in values],
    }
    if model is not None:
        entry["model"] = model
    return entry


@lru_cache(maxsize=1)
def packaged_reference() -> ReferenceTable:
    """The table shipped in the package; an empty one (every suspicion uncalibrated) if absent."""
    try:
        text = resources.files(REFERENCE_PACKAGE).joinpath(REFERENCE_FILE).read_text(encoding="utf-8")
    except FileNotFoundError:
        log.warning("forensics/%s is missing: run scripts/calibrate_deepfake_signals.py", REFERENCE_FILE)
        return ReferenceTable({})
    return ReferenceTable.from_dict(json.loads(text))
