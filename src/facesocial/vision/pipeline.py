"""The face pipeline: detect → landmarks → quality → (aligned chips → embeddings).

The API, the CLI and the evaluation commands all call these functions; nothing here knows
about HTTP or storage.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from facesocial.vision import quality
from facesocial.vision.align import dlib_chips
from facesocial.vision.detect_dlib import DlibHogDetector
from facesocial.vision.embed_dlib import DlibResnetEmbedder
from facesocial.vision.faces import LANDMARK_NAMES_5, Faces
from facesocial.vision.geometry import xyxy_to_xywh
from facesocial.vision.landmarks import DlibFivePointLandmarker


@dataclass(frozen=True, slots=True)
class DetectOptions:
    min_face_size: int = 40
    max_faces: int = 100
    detection_confidence: float = 0.7


class FacePipeline:
    """Holds the loaded models; every method is a pure function of its inputs."""

    def __init__(
        self,
        detector: DlibHogDetector,
        landmarker: DlibFivePointLandmarker,
        embedder: DlibResnetEmbedder,
    ) -> None:
        self.detector = detector
        self.landmarker = landmarker
        self.embedder = embedder

    @classmethod
    def load(cls, upsample_max_pixels: int = 800_000) -> FacePipeline:
        return cls(DlibHogDetector(upsample_max_pixels), DlibFivePointLandmarker(), DlibResnetEmbedder())

    def detect(self, rgb: npt.NDArray[np.uint8], options: DetectOptions) -> Faces:
        """Faces with landmarks and a ``quality`` column, largest first, at most ``max_faces``."""
        faces = self.detector.detect(
            rgb, min_face_size=options.min_face_size, min_confidence=options.detection_confidence
        )
        faces = faces[np.arange(min(len(faces), options.max_faces))]
        faces = self.landmarker.predict(rgb, faces)
        return faces.with_column("quality", quality.assess(rgb, faces))

    def embed(self, rgb: npt.NDArray[np.uint8], faces: Faces) -> Faces:
        """Add the ``embedding`` column (unit-length float32 rows) for each face."""
        vectors = self.embedder.embed(dlib_chips(rgb, faces))
        return faces.with_column("embedding", vectors, self.embedder.model)


def face_to_dict(faces: Faces, row: int, *, landmarks: bool = True) -> dict[str, Any]:
    """One face as JSON-ready data (bbox as x, y, width, height)."""
    x, y, w, h = xyxy_to_xywh(faces.boxes[row])
    item: dict[str, Any] = {
        "face_index": row,
        "bbox": {"x": x, "y": y, "width": w, "height": h},
        "confidence": round(float(faces.confidence[row]), 4),
    }
    if "quality" in faces.columns:
        item["quality"] = faces.columns["quality"][row].as_dict()
    if landmarks and faces.landmarks is not None:
        item["landmarks"] = [
            {"name": name, "x": round(float(px), 1), "y": round(float(py), 1)}
            for name, (px, py) in zip(LANDMARK_NAMES_5, faces.landmarks[row], strict=True)
        ]
    return item
