"""One forensic signal's value: its raw statistic and its calibrated suspicion."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from facesocial.forensics.calibration import ReferenceTable


@dataclass(frozen=True, slots=True)
class SignalValue:
    """A signal measured on one face (or one track).

    ``raw`` is the statistic in the signal's own unit (documented by the module that computes it);
    ``percentile`` the fraction of real faces with a less suspicious statistic; ``suspicion`` 0..1
    (:mod:`.calibration`). Both are None when the signal has no reference distribution: it is then
    reported but not fused.
    """

    name: str
    raw: float
    percentile: float | None
    suspicion: float | None
    details: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return {
            "raw": round(self.raw, 5),
            "percentile": None if self.percentile is None else round(self.percentile, 4),
            "suspicion": None if self.suspicion is None else round(self.suspicion, 4),
            **self.details,
        }


def calibrated(name: str, raw: float, table: ReferenceTable, **details: Any) -> SignalValue:
    """``raw`` with its percentile and suspicion from ``table`` (None, None when not calibrated)."""
    reference = table.get(name)
    if reference is None:
        return SignalValue(name, float(raw), None, None, details)
    return SignalValue(name, float(raw), reference.percentile(raw), reference.suspicion(raw), details)
