"""Demographic attributes per face: age (+ range and group), gender, emotion, optional race.

Age and gender come from the same faceres forward pass as the faceres embedding (memoised in
the image's ``CropCache``); emotion from the mini-Xception model. Race is only computed when
the operator enabled it (see ``heads.race`` for why it is off by default).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from facesocial.models.manifest import ModelRef
from facesocial.models.runtime import OnnxModel
from facesocial.vision.crops import CropCache, cache_for
from facesocial.vision.faces import Faces
from facesocial.vision.heads.age_group import age_group
from facesocial.vision.heads.emotion import EmotionHead
from facesocial.vision.heads.faceres import faceres_forward
from facesocial.vision.heads.faceres_attributes import FaceresAttributes
from facesocial.vision.heads.race import GearRaceHead, RaceResult

# The age range reported is the central 80 % of the model's own age distribution.
_RANGE = (0.10, 0.90)


@dataclass(frozen=True, slots=True)
class FaceAttributes:
    estimated_age: float
    age_range: tuple[int, int]
    age_group: str
    gender: str
    gender_confidence: float
    emotion: str
    emotion_confidence: float
    emotions: dict[str, float]
    race: dict[str, Any] | None = None

    def as_dict(self) -> dict[str, Any]:
        item: dict[str, Any] = {
            "estimated_age": self.estimated_age,
            "age_range": {"min": self.age_range[0], "max": self.age_range[1]},
            "age_group": self.age_group,
            "gender": self.gender,
            "gender_confidence": round(self.gender_confidence, 4),
            "emotion": self.emotion,
            "emotion_confidence": round(self.emotion_confidence, 4),
            "emotions": {k: round(v, 4) for k, v in self.emotions.items()},
        }
        if self.race is not None:
            item["race"] = self.race
        return item


def age_interval(
    bins: npt.NDArray[np.float32], low: float = _RANGE[0], high: float = _RANGE[1]
) -> tuple[int, int]:
    """Ages (0..99) bounding the central mass of a 100-bin age distribution."""
    cumulative = np.cumsum(np.asarray(bins, np.float64) / max(float(np.sum(bins)), 1e-12))
    return int(np.searchsorted(cumulative, low)), int(np.searchsorted(cumulative, high))


class AttributeAnalyzer:
    def __init__(self, faceres: OnnxModel, emotion: OnnxModel, race: GearRaceHead | None = None) -> None:
        self._faceres_model = faceres
        self._age_gender = FaceresAttributes(faceres)
        self._emotion = EmotionHead(emotion)
        self._race = race
        self.models: dict[str, ModelRef] = {"age_gender": faceres.ref, "emotion": emotion.ref}
        if race is not None:
            self.models["race"] = race.model

    def run(
        self, rgb: npt.NDArray[np.uint8], faces: Faces, cache: CropCache | None = None
    ) -> list[FaceAttributes]:
        cache = cache_for(rgb, faces, cache)
        ages = self._age_gender.run(rgb, faces, cache)
        bins = faceres_forward(self._faceres_model, cache, self._age_gender.crop).age_bins
        emotions = self._emotion.run(rgb, faces, cache)
        races = self._race.run(rgb, faces, cache) if self._race is not None else [None] * len(faces)
        results: list[FaceAttributes] = []
        for age, age_bins, emotion, race in zip(ages, bins, emotions, races, strict=True):
            low, high = age_interval(age_bins)
            results.append(
                FaceAttributes(
                    estimated_age=age.age,
                    age_range=(min(low, int(age.age)), max(high, int(np.ceil(age.age)))),
                    age_group=age_group(age.age),
                    gender=age.gender,
                    gender_confidence=age.gender_confidence,
                    emotion=emotion.label,
                    emotion_confidence=emotion.confidence,
                    emotions=emotion.probabilities,
                    race=None if race is None else _race_dict(race),
                )
            )
        return results


def _race_dict(race: RaceResult) -> dict[str, Any]:
    return {"label": race.label, "confidence": round(race.confidence, 4), "probabilities": race.probabilities}
