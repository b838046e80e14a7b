"""dlib's 128-D ResNet face descriptor, returned L2-normalised for cosine search."""

from __future__ import annotations

import threading

import dlib
import numpy as np
import numpy.typing as npt

from facesocial.metrics import inference_timer
from facesocial.models.dlib_pack import model_info, verified_path
from facesocial.models.manifest import ModelRef
from facesocial.vision.align import dlib_chips
from facesocial.vision.faces import Faces
from facesocial.vision.geometry import l2_normalise
from facesocial.vision.ports import collection_name


class DlibChipEmbedder:
    """What both runtimes of ``dlib_resnet_v1`` share: 128-D unit vectors of 150x150 chips
    aligned on the 5-point landmarks, in dlib's collection (so galleries do not care which
    runtime wrote them). Subclasses set ``model`` and ``runtime`` and implement ``embed_chips``.
    """

    dimension = 128
    runtime: str
    model: ModelRef

    @property
    def collection(self) -> str:
        return collection_name(self.model, self.dimension)

    def embed(self, rgb: npt.NDArray[np.uint8], faces: Faces) -> npt.NDArray[np.float32]:
        """(N, 128) unit vectors for the N faces of ``rgb`` (needs 5-point landmarks)."""
        return self.embed_chips(dlib_chips(rgb, faces))

    def embed_chips(self, chips: list[npt.NDArray[np.uint8]]) -> npt.NDArray[np.float32]:
        raise NotImplementedError


class DlibResnetEmbedder(DlibChipEmbedder):
    """dlib's own runtime: the fallback of ``dlib_resnet_v1`` (``models.dlib_runtime = "dlib"``,
    or the ONNX conversion not pulled): ~85 ms per face, one face after another, no BLAS in
    dlib-bin.
    """

    runtime = "dlib"

    def __init__(self) -> None:
        self._net = dlib.face_recognition_model_v1(str(verified_path("dlib_resnet_v1")))
        self._lock = threading.Lock()
        self.model = model_info("dlib_resnet_v1").ref

    def embed_chips(self, chips: list[npt.NDArray[np.uint8]]) -> npt.NDArray[np.float32]:
        if not chips:
            return np.zeros((0, self.dimension), dtype=np.float32)
        return l2_normalise(self.raw_descriptors(chips))

    def raw_descriptors(self, chips: list[npt.NDArray[np.uint8]]) -> npt.NDArray[np.float32]:
        """(N, 128) descriptors as dlib returns them (not normalised), for N 150x150x3 chips."""
        with self._lock, inference_timer(self.model.name):
            descriptors = self._net.compute_face_descriptor(chips)
        return np.array([np.asarray(d) for d in descriptors], dtype=np.float32)
