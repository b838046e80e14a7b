"""Face embeddings from ONNX models (faceres 1024-D, mobileface 256-D), L2-normalised.

Both share the interface of ``DlibResnetEmbedder``: ``dimension``, ``collection`` (one vector
collection per model and dimension: galleries are bound to the model that filled them) and
``embed``, here taking the image and its ``Faces`` because the crop is computed inside.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from facesocial.models.manifest import ModelRef
from facesocial.models.runtime import OnnxModel
from facesocial.vision.crops import AlignedSpec, CropCache, CropSpec, cache_for
from facesocial.vision.faces import Faces
from facesocial.vision.geometry import l2_normalise
from facesocial.vision.heads.faceres import FACERES_CROP, faceres_forward

FloatArray = npt.NDArray[np.float32]
UInt8Array = npt.NDArray[np.uint8]


class OnnxEmbedder:
    """Common interface of the ONNX embedders."""

    name: str
    dimension: int
    crop: CropSpec
    model: ModelRef

    @property
    def collection(self) -> str:
        return f"face_embeddings_{self.dimension}d_{self.model.name}"

    def embed(self, rgb: UInt8Array, faces: Faces, cache: CropCache | None = None) -> FloatArray:
        """(N, dimension) float32 unit vectors, one per face."""
        raise NotImplementedError


class FaceresEmbedder(OnnxEmbedder):
    """HSE faceres 1024-D descriptor (``global_pooling/Mean``) on the box x1.4 square crop."""

    name = "faceres_embedding"
    dimension = 1024

    def __init__(self, model: OnnxModel, crop: CropSpec = FACERES_CROP) -> None:
        self._model = model
        self.model = model.ref
        self.crop = crop

    def embed(self, rgb: UInt8Array, faces: Faces, cache: CropCache | None = None) -> FloatArray:
        output = faceres_forward(self._model, cache_for(rgb, faces, cache), self.crop)
        return l2_normalise(output.descriptors).reshape(-1, self.dimension)


# ArcFace-aligned 112² from BlazeFace's 4 points. LFW folds 1-2 (1,200 pairs, cross-validated
# threshold): aligned 89.0 %, aligned zoomed in 10 % 88.1 %, 10 % margin 85.0 %, box x1.4
# square 70.2 %, x1.0 square 67.3 %: MobileFace was trained on aligned faces. Without
# keypoints6 (e.g. dlib detections) it falls back to the x1.4 square, which is much worse.
MOBILEFACE_CROP = AlignedSpec(size=112)


class MobilefaceEmbedder(OnnxEmbedder):
    """MobileFace 256-D (``batchnorm0/add_1``), input 112² RGB 0..255 (the graph normalises)."""

    name = "mobileface_embedding"
    dimension = 256
    output = "batchnorm0/add_1"

    def __init__(self, model: OnnxModel, crop: CropSpec = MOBILEFACE_CROP) -> None:
        self._model = model
        self.model = model.ref
        self.crop = crop

    def embed(self, rgb: UInt8Array, faces: Faces, cache: CropCache | None = None) -> FloatArray:
        images = cache_for(rgb, faces, cache).get(self.crop).images
        if len(images) == 0:
            return np.zeros((0, self.dimension), np.float32)
        raw = self._model.run(images.astype(np.float32))[self.output]
        return l2_normalise(raw).reshape(-1, self.dimension)
