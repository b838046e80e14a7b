"""The face pipeline: detect → landmarks → quality → (embeddings, attributes).

The API, the CLI and the evaluation commands all call these functions; nothing here knows
about HTTP or storage. Which detector and embedders are loaded is decided by the caller
(the composition root), not discovered here.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from facesocial import errors
from facesocial.vision import quality
from facesocial.vision.attributes import AttributeAnalyzer, FaceAttributes
from facesocial.vision.crops import CropCache
from facesocial.vision.detect_dlib import DlibHogDetector
from facesocial.vision.embed_dlib import DlibResnetEmbedder
from facesocial.vision.faces import LANDMARK_NAMES_5, Faces
from facesocial.vision.geometry import xyxy_to_xywh
from facesocial.vision.heads.mesh import MeshHead, MeshResult
from facesocial.vision.landmarks import DlibFivePointLandmarker, DlibSixtyEightPointLandmarker
from facesocial.vision.ports import Embedder, FaceDetector
from facesocial.vision.rotation import roll_from_landmarks5


@dataclass(frozen=True, slots=True)
class DetectOptions:
    min_face_size: int = 40
    max_faces: int = 100
    detection_confidence: float = 0.5


class FacePipeline:
    """Holds the loaded models; every method is a pure function of its inputs.

    Optional heads are None when their models are not installed (``facesocial models pull``);
    asking for them then raises ``MODEL_UNAVAILABLE``.
    """

    def __init__(
        self,
        detector: FaceDetector,
        landmarker: DlibFivePointLandmarker,
        embedders: dict[str, Embedder],
        default_embedder: str,
        attributes: AttributeAnalyzer | None = None,
        mesh: MeshHead | None = None,
    ) -> None:
        self.detector = detector
        self.landmarker = landmarker
        self.embedders = embedders
        self.default_embedder = default_embedder
        self.attributes = attributes
        self.mesh = mesh
        self._landmarks68: DlibSixtyEightPointLandmarker | None = None
        self._lock = threading.Lock()

    def landmarks68(self, rgb: npt.NDArray[np.uint8], faces: Faces) -> npt.NDArray[np.float32]:
        """iBUG 68 points (loaded on first use: 100 MB, and rarely asked for)."""
        with self._lock:
            if self._landmarks68 is None:
                self._landmarks68 = DlibSixtyEightPointLandmarker()
        return self._landmarks68.predict(rgb, faces)

    def analyze_attributes(
        self, rgb: npt.NDArray[np.uint8], faces: Faces, cache: CropCache | None = None
    ) -> list[FaceAttributes]:
        if self.attributes is None:
            raise errors.ModelUnavailableError(
                "Age/gender/emotion models are not installed: run `facesocial models pull`"
            )
        return self.attributes.run(rgb, faces, cache)

    def analyze_mesh(
        self, rgb: npt.NDArray[np.uint8], faces: Faces, cache: CropCache | None = None
    ) -> list[MeshResult]:
        if self.mesh is None:
            raise errors.ModelUnavailableError(
                "Face mesh models are not installed: run `facesocial models pull`"
            )
        return self.mesh.run(rgb, faces, cache)

    @classmethod
    def load(cls, upsample_max_pixels: int = 800_000) -> FacePipeline:
        """The dlib-only pipeline: needs nothing beyond the pip-installed packages."""
        embedder = DlibResnetEmbedder()
        return cls(
            DlibHogDetector(upsample_max_pixels),
            DlibFivePointLandmarker(),
            {embedder.model.name: embedder},
            embedder.model.name,
        )

    def with_detector(self, detector: FaceDetector) -> FacePipeline:
        """The same landmarker, embedders and heads behind another detector (a registry
        version of the face_detection slot: services/serving_context.py). Shares the loaded
        models; only the detector differs."""
        view = FacePipeline(
            detector, self.landmarker, self.embedders, self.default_embedder, self.attributes, self.mesh
        )
        view._landmarks68 = self._landmarks68
        return view

    @property
    def embedder(self) -> Embedder:
        return self.embedders[self.default_embedder]

    def embedder_for(self, name: str | None) -> Embedder:
        chosen = name or self.default_embedder
        embedder = self.embedders.get(chosen)
        if embedder is None:
            raise errors.UnknownModelError(
                f"Unknown embedding model {chosen!r}; available: {', '.join(sorted(self.embedders))}"
            )
        return embedder

    def detect(self, rgb: npt.NDArray[np.uint8], options: DetectOptions) -> Faces:
        """Faces with 5-point landmarks, ``roll`` and ``quality`` columns, largest first, ≤ ``max_faces``.

        Faces are found at any in-plane rotation; landmarks are in ``rgb``'s pixels with the
        subject's own left/right names, and ``roll`` (N,) is each face's in-plane rotation in
        degrees, −180..180, 0 upright, positive clockwise as seen (:mod:`.rotation`), read
        from the landmarks' eye centres.
        """
        faces = self.detector.detect(
            rgb, min_face_size=options.min_face_size, min_confidence=options.detection_confidence
        )
        faces = faces[np.arange(min(len(faces), options.max_faces))]
        faces = self.landmarker.predict(rgb, faces)
        assert faces.landmarks is not None  # the landmarker always sets them
        faces = faces.with_column("roll", roll_from_landmarks5(faces.landmarks))
        return faces.with_column("quality", quality.assess(rgb, faces))

    def embed(self, rgb: npt.NDArray[np.uint8], faces: Faces, model: str | None = None) -> Faces:
        """Add the ``embedding`` column (unit-length float32 rows) from the chosen model."""
        embedder = self.embedder_for(model)
        return faces.with_column("embedding", embedder.embed(rgb, faces), embedder.model)


def face_to_dict(faces: Faces, row: int, *, landmarks: bool = True) -> dict[str, Any]:
    """One face as JSON-ready data (bbox as x, y, width, height)."""
    x, y, w, h = xyxy_to_xywh(faces.boxes[row])
    item: dict[str, Any] = {
        "face_index": row,
        "bbox": {"x": x, "y": y, "width": w, "height": h},
        "confidence": round(float(faces.confidence[row]), 4),
    }
    if "roll" in faces.columns:
        # In-plane rotation in degrees, −180..180: 0 upright, positive = turned clockwise.
        item["roll"] = round(float(faces.columns["roll"][row]), 1)
    if "quality" in faces.columns:
        item["quality"] = faces.columns["quality"][row].as_dict()
    if landmarks and faces.landmarks is not None:
        item["landmarks"] = [
            {"name": name, "x": round(float(px), 1), "y": round(float(py), 1)}
            for name, (px, py) in zip(LANDMARK_NAMES_5, faces.landmarks[row], strict=True)
        ]
    return item
