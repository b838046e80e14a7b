"""Facial expression (mini-Xception trained on FER-2013): 7 class probabilities.

Input: 64² grey (0.2989R + 0.587G + 0.114B of the RGB crop in 0..1), scaled to -1..1, as
Human feeds it. The crop is the detector box made square without enlargement: FER-2013
faces are framed about that tightly (hairline to chin).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from facesocial.models.runtime import OnnxModel
from facesocial.vision.crops import CropCache, CropSpec, SquareSpec, cache_for
from facesocial.vision.faces import Faces

EMOTIONS = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
EMOTION_CROP = SquareSpec(scale=1.0, size=64)
GREY_WEIGHTS = np.array([0.2989, 0.587, 0.114], dtype=np.float32)


@dataclass(frozen=True, slots=True)
class EmotionResult:
    probabilities: dict[str, float]  # by EMOTIONS, sums to 1
    label: str
    confidence: float  # probability of ``label``


def emotion_batch(images: npt.NDArray[np.uint8]) -> npt.NDArray[np.float32]:
    """(N, 64, 64, 3) RGB uint8 -> (N, 64, 64, 1) grey in -1..1."""
    grey = (images.astype(np.float32) / 255.0) @ GREY_WEIGHTS
    return ((grey - 0.5) * 2.0)[..., None].astype(np.float32)


class EmotionHead:
    name = "emotion"

    def __init__(self, model: OnnxModel, crop: CropSpec = EMOTION_CROP) -> None:
        self._model = model
        self.model = model.ref
        self.crop = crop

    def probabilities(
        self, rgb: npt.NDArray[np.uint8], faces: Faces, cache: CropCache | None = None
    ) -> npt.NDArray[np.float32]:
        """(N, 7) rows in ``EMOTIONS`` order, renormalised to sum to 1."""
        images = cache_for(rgb, faces, cache).get(self.crop).images
        if len(images) == 0:
            return np.zeros((0, len(EMOTIONS)), np.float32)
        probs = self._model.run(emotion_batch(images))["Identity"].astype(np.float64)
        probs = np.clip(probs, 0.0, None)
        normalised: npt.NDArray[np.float32] = (probs / probs.sum(axis=1, keepdims=True)).astype(np.float32)
        return normalised

    def run(
        self, rgb: npt.NDArray[np.uint8], faces: Faces, cache: CropCache | None = None
    ) -> list[EmotionResult]:
        results = []
        for row in self.probabilities(rgb, faces, cache):
            top = int(np.argmax(row))
            results.append(
                EmotionResult(
                    probabilities={name: float(p) for name, p in zip(EMOTIONS, row, strict=True)},
                    label=EMOTIONS[top],
                    confidence=float(row[top]),
                )
            )
        return results
