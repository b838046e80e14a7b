"""The vision core's ports: what a detector and an embedder promise."""

from __future__ import annotations

from typing import Protocol

import numpy as np
import numpy.typing as npt

from facesocial.models.manifest import ModelRef
from facesocial.vision.faces import Faces


class FaceDetector(Protocol):
    model: ModelRef

    def detect(self, rgb: npt.NDArray[np.uint8], *, min_face_size: int, min_confidence: float) -> Faces: ...


class Embedder(Protocol):
    """Maps faces to unit-length vectors; one vector collection per embedder."""

    model: ModelRef
    dimension: int

    @property
    def collection(self) -> str: ...

    def embed(self, rgb: npt.NDArray[np.uint8], faces: Faces) -> npt.NDArray[np.float32]: ...


def embedder_description(embedder: Embedder) -> dict[str, str]:
    """``{"name", "version", "runtime"}``: which model and which runtime produced a vector.

    ``runtime`` is ``"onnxruntime"`` unless the embedder names another (dlib_resnet_v1 may run
    in ``"dlib"``: the same vectors either way).
    """
    return {**embedder.model.as_dict(), "runtime": str(getattr(embedder, "runtime", "onnxruntime"))}


def collection_name(model: ModelRef, dimension: int) -> str:
    """Vector collection of one embedding model: named by model and dimension."""
    return f"face_embeddings_{dimension}d_{model.name}"
