"""Race estimate (GEAR model) — OFF by default; construct only on an explicit opt-in.

Why it is off by default:

* Weak: about 65 % accuracy over 5 classes on UTKFace (MODELS.md), i.e. wrong for one
  face in three.
* Biased: its errors lean toward "white"; accuracy differs by group, so any decision or
  statistic built on it inherits that skew.
* Sensitive: racial or ethnic origin is a special category of personal data under GDPR
  art. 9; processing it needs an explicit legal basis (e.g. explicit consent) and a
  documented purpose. The platform must not infer it silently.

``GearRaceHead(model, enabled=...)`` raises ``RaceDisabledError`` unless the caller passes
``enabled=True`` (from a setting the operator turned on deliberately). The class names are
the model's own (white, black, asian, indian, other); they are not a taxonomy we endorse.

The same GEAR forward pass also yields age (7 bins) and gender; ``gear_outputs`` exposes
them for comparisons in ``evaluation.attributes`` without enabling the race head.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from facesocial import errors
from facesocial.models.runtime import OnnxModel
from facesocial.vision.crops import CropCache, SquareSpec, cache_for
from facesocial.vision.faces import Faces

RACES = ("white", "black", "asian", "indian", "other")
# Human feeds the face box; we use the box made square, then GEAR's own sub-crop.
GEAR_CROP = SquareSpec(scale=1.0, size=220)
GEAR_SIZE = 198
# Representative years of the 7 age bins (<20, 21-25, 26-30, 31-40, 41-50, 51-60, >60), as Human.
GEAR_AGE_YEARS = np.array([15.0, 23.0, 28.0, 35.5, 45.5, 55.5, 65.0])


RaceDisabledError = errors.RaceDisabledError


@dataclass(frozen=True, slots=True)
class GearOutput:
    race: npt.NDArray[np.float32]  # (N, 5)
    male_probability: npt.NDArray[np.float32]  # (N,)
    age: npt.NDArray[np.float32]  # (N,) expected years over the 7 bins


@dataclass(frozen=True, slots=True)
class RaceResult:
    probabilities: dict[str, float]
    label: str
    confidence: float


def gear_batch(images: npt.NDArray[np.uint8]) -> npt.NDArray[np.float32]:
    """GEAR's sub-crop (top 0, left .1, bottom .9, right .9 of the box) at 198², RGB 0..1."""
    import cv2

    side = images.shape[1]
    top, left, bottom, right = 0, round(0.1 * side), round(0.9 * side), round(0.9 * side)
    out = np.stack(
        [
            cv2.resize(img[top:bottom, left:right], (GEAR_SIZE, GEAR_SIZE), interpolation=cv2.INTER_AREA)
            for img in images
        ]
    )
    return (out.astype(np.float32) / 255.0).astype(np.float32)


def gear_outputs(model: OnnxModel, cache: CropCache) -> GearOutput:
    def run() -> GearOutput:
        images = cache.get(GEAR_CROP).images
        if len(images) == 0:
            return GearOutput(
                np.zeros((0, 5), np.float32), np.zeros((0,), np.float32), np.zeros((0,), np.float32)
            )
        out = model.run(gear_batch(images))
        age = out["age_output"].astype(np.float64) @ GEAR_AGE_YEARS
        return GearOutput(
            race=out["race_output"].astype(np.float32),
            male_probability=out["gender_output"][:, 0].astype(np.float32),
            age=age.astype(np.float32),
        )

    return cache.memo(("forward", model.ref, GEAR_CROP), run)


class GearRaceHead:
    name = "race"

    def __init__(self, model: OnnxModel, *, enabled: bool = False) -> None:
        if not enabled:
            raise RaceDisabledError(
                "Race estimation is off by default (weak, biased, GDPR art. 9 special-category "
                "data); construct GearRaceHead with enabled=True only on an explicit opt-in"
            )
        self._model = model
        self.model = model.ref
        self.crop = GEAR_CROP

    def run(
        self, rgb: npt.NDArray[np.uint8], faces: Faces, cache: CropCache | None = None
    ) -> list[RaceResult]:
        output = gear_outputs(self._model, cache_for(rgb, faces, cache))
        results = []
        for row in output.race.astype(np.float64):
            probs = np.clip(row, 0.0, None) / max(float(np.clip(row, 0.0, None).sum()), 1e-12)
            top = int(np.argmax(probs))
            results.append(
                RaceResult(
                    probabilities={n: float(p) for n, p in zip(RACES, probs, strict=True)},
                    label=RACES[top],
                    confidence=float(probs[top]),
                )
            )
        return results
