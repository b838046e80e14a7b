"""``Faces``: one columnar value that every stage after detection enriches.

Boxes are ``x1, y1, x2, y2`` in pixels of the upright image. Extra per-face columns
(quality, embeddings, ...) live in ``columns`` keyed by name, each with N rows.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import numpy.typing as npt

from facesocial.models.manifest import ModelRef

FloatArray = npt.NDArray[np.float32]

LANDMARK_NAMES_5 = (
    # dlib's 5-point model; left/right are the subject's own (image right = subject's left).
    "left_eye_outer",
    "left_eye_inner",
    "right_eye_outer",
    "right_eye_inner",
    "nose_base",
)


@dataclass(frozen=True)
class Faces:
    boxes: FloatArray  # (N, 4) x1 y1 x2 y2
    confidence: FloatArray  # (N,) detector confidence in 0..1
    detector: ModelRef
    landmarks: FloatArray | None = None  # (N, 5, 2)
    columns: dict[str, Any] = field(default_factory=dict)
    models: dict[str, ModelRef] = field(default_factory=dict)

    def __len__(self) -> int:
        return int(self.boxes.shape[0])

    def __getitem__(self, index: npt.NDArray[Any] | slice | list[int]) -> Faces:
        """Select faces by boolean mask or integer indices; every column follows."""
        return replace(
            self,
            boxes=self.boxes[index],
            confidence=self.confidence[index],
            landmarks=None if self.landmarks is None else self.landmarks[index],
            columns={name: np.asarray(col)[index] for name, col in self.columns.items()},
        )

    @property
    def widths(self) -> FloatArray:
        return self.boxes[:, 2] - self.boxes[:, 0]

    @property
    def heights(self) -> FloatArray:
        return self.boxes[:, 3] - self.boxes[:, 1]

    @property
    def areas(self) -> FloatArray:
        return self.widths * self.heights

    def with_landmarks(self, landmarks: FloatArray, model: ModelRef) -> Faces:
        return replace(self, landmarks=landmarks, models={**self.models, "landmarks": model})

    def with_column(self, name: str, values: Any, model: ModelRef | None = None) -> Faces:
        models = self.models if model is None else {**self.models, name: model}
        return replace(self, columns={**self.columns, name: values}, models=models)

    def sorted_by_area(self) -> Faces:
        """Largest face first: ``face_index`` 0 is the most prominent face."""
        return self[np.argsort(-self.areas, kind="stable")]

    @classmethod
    def empty(cls, detector: ModelRef) -> Faces:
        return cls(
            boxes=np.zeros((0, 4), np.float32),
            confidence=np.zeros((0,), np.float32),
            detector=detector,
        )
