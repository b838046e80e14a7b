"""Results of the image ensemble: one face's scores, an image's verdict, the areas worth a look."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from facesocial.forensics.heatmap import HeatFace
from facesocial.forensics.signals import SignalValue
from facesocial.forensics.verdict import Band, Level

FloatArray = npt.NDArray[np.float32]


@dataclass(frozen=True, slots=True)
class FaceScore:
    """One face's forensic result. ``box`` (4,) x1, y1, x2, y2 image px; ``score`` the fused suspicion."""

    box: FloatArray
    detector_confidence: float
    score: float
    band: Band
    confidence: float
    signals: dict[str, SignalValue]
    weights: dict[str, float]
    manipulation_types: list[str]
    reasons: list[str]
    notes: list[str]
    eye_distance_px: float

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready (no pixel maps)."""
        x1, y1, x2, y2 = (float(v) for v in self.box)
        return {
            "bbox": {
                "x": round(x1, 1),
                "y": round(y1, 1),
                "width": round(x2 - x1, 1),
                "height": round(y2 - y1, 1),
            },
            "detector_confidence": round(self.detector_confidence, 4),
            "score": round(self.score, 4),
            "band": self.band,
            "confidence": round(self.confidence, 4),
            "manipulation_types": self.manipulation_types,
            "reasons": self.reasons,
            "signals": {
                name: {**value.as_dict(), "weight": self.weights.get(name, 0.0)}
                for name, value in self.signals.items()
            },
            "notes": self.notes,
            "eye_distance_px": self.eye_distance_px,
        }


@dataclass(frozen=True, slots=True)
class ImageVerdict:
    """The verdict on one image (module doc); ``faces`` in detector order (largest first)."""

    is_deepfake: bool
    band: Band
    confidence_score: float
    manipulation_score: float
    manipulation_types: list[str]
    inconsistency_areas: list[dict[str, Any]]
    heatmap_png: bytes | None
    faces: list[FaceScore]
    faces_analyzed: int
    level: Level
    model_version: str
    components: list[dict[str, Any]]
    reason: str | None = None
    thresholds: dict[str, float] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready, without the heatmap bytes."""
        return {
            "is_deepfake": self.is_deepfake,
            "band": self.band,
            "confidence_score": round(self.confidence_score, 4),
            "manipulation_score": round(self.manipulation_score, 4),
            "manipulation_types": self.manipulation_types,
            "inconsistency_areas": self.inconsistency_areas,
            "faces_analyzed": self.faces_analyzed,
            "faces": [face.as_dict() for face in self.faces],
            "detection_level": self.level,
            "model_version": self.model_version,
            "components": self.components,
            "reason": self.reason,
            "thresholds": self.thresholds,
        }


def _xywh(x1: float, y1: float, x2: float, y2: float) -> dict[str, float]:
    return {"x": round(x1, 1), "y": round(y1, 1), "width": round(x2 - x1, 1), "height": round(y2 - y1, 1)}


def inconsistency_areas(
    scores: list[FaceScore], min_score: float, heat: list[HeatFace] | None = None
) -> list[dict[str, Any]]:
    """Boxes worth a look: every face scoring at least ``min_score`` (``real_below``), with its score
    and reasons; with ``heat`` (the faces' heat data, same order) also the bounding box of the hot
    pixels (map ≥ 0.5) of each such face's noise-inconsistency map."""
    areas: list[dict[str, Any]] = []
    for index, face in enumerate(scores):
        if face.score < min_score:
            continue
        x1, y1, x2, y2 = (float(v) for v in face.box)
        areas.append(
            {
                "face_index": index,
                "kind": "face",
                **_xywh(x1, y1, x2, y2),
                "score": round(face.score, 4),
                "reason": "; ".join(face.reasons) or "combined weak signals",
            }
        )
        inc = None if heat is None else heat[index].inconsistency
        if inc is not None and (inc.map >= 0.5).any():
            ys, xs = np.nonzero(inc.map >= 0.5)
            scale = inc.scale

            def to_image(c: float, origin: int, scale: float = scale) -> float:
                return origin + (c + 0.5) / scale - 0.5

            areas.append(
                {
                    "face_index": index,
                    "kind": "noise_inconsistency",
                    **_xywh(
                        to_image(xs.min(), inc.x0),
                        to_image(ys.min(), inc.y0),
                        to_image(xs.max() + 1, inc.x0),
                        to_image(ys.max() + 1, inc.y0),
                    ),
                    "score": round(float(inc.map[ys, xs].mean()) * face.score, 4),
                    "reason": "local noise level departs from the face's surround",
                }
            )
    return areas
