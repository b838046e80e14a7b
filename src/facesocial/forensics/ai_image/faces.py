"""The face method: a synthetic face, alone or inside an otherwise real photograph.

Each face the detector finds (at least 64 px, :data:`facesocial.forensics.ensemble.DEFAULT_DETECT`)
is judged twice:

* ``ai_score`` — the learned AI-image model (:mod:`.model`) on the face's own square: side 1.6 ×
  the box's longer side about its centre, edge-padded, at native pixels (the model's working image
  then brings it to its one size). The model was trained on face images, so a face crop is the
  input it knows best; a synthetic face pasted into a real photo is judged on its own pixels
  instead of being outvoted by the real surround.
* the deepfake ensemble's face signals at its ``basic`` level (:class:`.ensemble.DeepfakeDetector`):
  the SBI blending classifier and the face region's spectrum (``freq_hf``, ``freq_slope`` against
  real faces, :mod:`facesocial.forensics.frequency`), reported as ``deepfake`` per face. They are
  not the method's score: on whole synthetic faces of the development set they scored real faces
  as more suspicious than generated ones (AUC 0.41, docs/ai-detection.md) — they look for swaps.

The method's score is the highest ``ai_score`` (one synthetic face makes the image synthetic in
part), and None when the image has no face to judge.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from facesocial.forensics.ai_image.analyzer import FaceFindings, ImageMethod
from facesocial.forensics.ai_image.report import FACES, MethodResult
from facesocial.forensics.ensemble import DEFAULT_DETECT
from facesocial.forensics.verdict import Level
from facesocial.vision.crops import square_crop

if TYPE_CHECKING:
    from facesocial.forensics.ensemble import DeepfakeDetector

LEVEL: Level = "basic"
MIN_FACE_PX = DEFAULT_DETECT.min_face_size  # the deepfake detector's smallest face
CROP_SCALE = 1.6
MIN_CROP = 64


def face_square(rgb: npt.NDArray[np.uint8], box: npt.ArrayLike) -> npt.NDArray[np.uint8]:
    """The face's square (module doc): (S, S, 3) uint8, S = 1.6 × the box's longer side (≥ 64 px)."""
    x1, y1, x2, y2 = (float(v) for v in np.asarray(box, dtype=np.float64).reshape(4))
    side = max(MIN_CROP, round(CROP_SCALE * max(x2 - x1, y2 - y1)))
    return square_crop(rgb, np.array([x1, y1, x2, y2]), CROP_SCALE, side, "edge")


class FaceForensics:
    """Callable ``(rgb) -> FaceFindings``; the deepfake detector is built on first use."""

    def __init__(self, detector: Callable[[], DeepfakeDetector], model: ImageMethod) -> None:
        self._detector = detector
        self._model = model

    def __call__(self, rgb: npt.NDArray[np.uint8]) -> FaceFindings:
        started = time.perf_counter()
        verdict = self._detector().analyze_image(rgb, LEVEL)
        faces: list[dict[str, Any]] = []
        boxes: list[tuple[tuple[int, int, int, int], float]] = []
        scores: list[float] = []
        for face in verdict.faces:
            x1, y1, x2, y2 = (float(v) for v in face.box)
            judged = self._model.analyze(face_square(rgb, face.box))
            ai_score = float(judged.score or 0.0)
            scores.append(ai_score)
            deepfake = face.as_dict()
            bbox = deepfake.pop("bbox")
            faces.append(
                {
                    "bbox": bbox,
                    "ai_score": round(ai_score, 4),
                    "ai_feature_importance": judged.details.get("feature_importance", {}),
                    "face_region_spectrum": {
                        name: face.signals[name].as_dict()
                        for name in ("freq_hf", "freq_slope")
                        if name in face.signals
                    },
                    "deepfake": deepfake,
                }
            )
            boxes.append(((round(x1), round(y1), round(x2 - x1), round(y2 - y1)), ai_score))
        result = MethodResult(
            name=FACES,
            score=max(scores) if scores else None,
            processing_time_ms=(time.perf_counter() - started) * 1000.0,
            version=f"{self._model.version}+{verdict.model_version}",
            details={
                "faces_analyzed": len(faces),
                "min_face_px": MIN_FACE_PX,
                "crop": f"square of {CROP_SCALE} x the face box, native pixels",
                "deepfake_level": LEVEL,
                # Faces under 64 px are left out (too few pixels for the statistics): say so.
                "reason": None if faces else f"no face of at least {MIN_FACE_PX} px",
            },
        )
        return FaceFindings(result, faces, boxes)
