"""dlib's 128-D ResNet face descriptor, returned L2-normalised for cosine search."""

from __future__ import annotations

import threading

import dlib
import numpy as np
import numpy.typing as npt

from facesocial.models.dlib_pack import model_info, verified_path
from facesocial.vision.geometry import l2_normalise


class DlibResnetEmbedder:
    dimension = 128
    crop = "dlib_chip_150"

    def __init__(self) -> None:
        self._net = dlib.face_recognition_model_v1(str(verified_path("dlib_resnet_v1")))
        self._lock = threading.Lock()
        self.model = model_info("dlib_resnet_v1").ref

    @property
    def collection(self) -> str:
        """Vector collection name: one per embedding model, named by model and dimension."""
        return f"face_embeddings_{self.dimension}d_{self.model.name}"

    def embed(self, chips: list[npt.NDArray[np.uint8]]) -> npt.NDArray[np.float32]:
        if not chips:
            return np.zeros((0, self.dimension), dtype=np.float32)
        with self._lock:
            descriptors = self._net.compute_face_descriptor(chips)
        return l2_normalise(np.array([np.asarray(d) for d in descriptors], dtype=np.float32))
