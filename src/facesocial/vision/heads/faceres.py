"""The faceres forward pass, shared by the embedding and the age/gender heads.

faceres (HSE) has three outputs from one 224² input (RGB 0..255; 0..1 gives a constant
output): a 1024-D descriptor, a male probability and a 100-bin age softmax. Running it once
per face and reading all three halves the cost of asking for an embedding and age/gender.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from facesocial.models.runtime import OnnxModel
from facesocial.vision.crops import CropCache, CropSpec, SquareSpec

FloatArray = npt.NDArray[np.float32]

# Box x1.4 square (BlazeFace box). LFW folds 1-2 (1,200 pairs, threshold cross-validated
# across the two folds): x1.4 square 96.0 %, x1.2 square 95.8 %, ArcFace-aligned 224²
# 94.8 %, aligned with 25 % margin 95.1 %. faceres (HSE) was trained on loose, unaligned crops.
FACERES_CROP = SquareSpec(scale=1.4, size=224)
DESCRIPTOR = "global_pooling/Mean"
GENDER = "gender_pred/Sigmoid"
AGE = "age_pred/Softmax"


@dataclass(frozen=True, slots=True)
class FaceresOutput:
    descriptors: FloatArray  # (N, 1024), not normalised
    male_probability: FloatArray  # (N,)
    age_bins: FloatArray  # (N, 100) softmax over ages 0..99


def faceres_forward(model: OnnxModel, cache: CropCache, crop: CropSpec = FACERES_CROP) -> FaceresOutput:
    """All three outputs for every face of ``cache``, computed once per (model, crop)."""

    def run() -> FaceresOutput:
        images = cache.get(crop).images
        if len(images) == 0:
            return FaceresOutput(
                np.zeros((0, 1024), np.float32), np.zeros((0,), np.float32), np.zeros((0, 100), np.float32)
            )
        out = model.run(images.astype(np.float32))
        return FaceresOutput(
            descriptors=out[DESCRIPTOR].astype(np.float32),
            male_probability=out[GENDER].reshape(-1).astype(np.float32),
            age_bins=out[AGE].astype(np.float32),
        )

    return cache.memo(("forward", model.ref, crop), run)
