"""Face quality: size, sharpness, brightness and frontalness, each 0..1, and a combined score.

The combination is a weighted geometric mean, so one very poor component (a black or
completely blurred face) pulls the whole score down instead of being averaged away.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import cv2
import numpy as np
import numpy.typing as npt

from facesocial.vision.faces import Faces

_PATCH = 112
# Faces narrower than this are unusable for recognition; at FULL_SIZE and above size stops
# mattering (the 150 px dlib chip is upsampled from anything smaller).
_MIN_SIZE, _FULL_SIZE = 20.0, 100.0
_WEIGHTS = {"size": 0.25, "sharpness": 0.3, "brightness": 0.15, "frontalness": 0.3}


@dataclass(frozen=True, slots=True)
class FaceQuality:
    score: float
    size: float
    sharpness: float
    brightness: float
    frontalness: float

    def as_dict(self) -> dict[str, float]:
        return {key: round(value, 4) for key, value in asdict(self).items()}


def assess(rgb: npt.NDArray[np.uint8], faces: Faces) -> list[FaceQuality]:
    """Quality of each face; frontalness needs landmarks (assumed frontal without them)."""
    results = []
    for row, box in enumerate(faces.boxes):
        patch = _grey_patch(rgb, box)
        size = _size_score(float(min(box[2] - box[0], box[3] - box[1])))
        sharpness = _sharpness_score(patch)
        brightness = _brightness_score(patch)
        frontal = 1.0 if faces.landmarks is None else frontalness(faces.landmarks[row])
        parts = {"size": size, "sharpness": sharpness, "brightness": brightness, "frontalness": frontal}
        score = float(np.prod([max(parts[k], 1e-6) ** w for k, w in _WEIGHTS.items()]))
        results.append(FaceQuality(score=score, **parts))
    return results


def frontalness(points: npt.NDArray[np.float32]) -> float:
    """1 for a frontal face, falling to 0 as the nose moves off the eye midline (yaw).

    The nose offset is measured along the eye line, so in-plane roll does not count.
    """
    left_eye = points[0:2].mean(axis=0)
    right_eye = points[2:4].mean(axis=0)
    nose = points[4]
    axis = left_eye - right_eye
    eye_distance = float(np.linalg.norm(axis))
    if eye_distance < 1e-3:
        return 0.0
    offset = float(np.dot(nose - (left_eye + right_eye) / 2.0, axis / eye_distance))
    # About 0.5 eye-distances of offset is a near-profile face for dlib's 5-point model.
    return float(np.clip(1.0 - abs(offset) / (0.5 * eye_distance), 0.0, 1.0))


def _grey_patch(rgb: npt.NDArray[np.uint8], box: npt.NDArray[np.float32]) -> npt.NDArray[np.uint8]:
    height, width = rgb.shape[:2]
    x1, y1, x2, y2 = (round(float(v)) for v in box)
    x1, y1 = max(0, x1), max(0, y1)
    x2, y2 = min(width, max(x2, x1 + 1)), min(height, max(y2, y1 + 1))
    crop = cv2.cvtColor(np.ascontiguousarray(rgb[y1:y2, x1:x2]), cv2.COLOR_RGB2GRAY)
    return np.asarray(cv2.resize(crop, (_PATCH, _PATCH), interpolation=cv2.INTER_AREA), dtype=np.uint8)


def _size_score(side: float) -> float:
    return float(np.clip((side - _MIN_SIZE) / (_FULL_SIZE - _MIN_SIZE), 0.0, 1.0))


def _sharpness_score(patch: npt.NDArray[np.uint8]) -> float:
    # Variance of the Laplacian on a fixed-size patch: ~20 for a badly blurred face,
    # several hundred for a sharp one.
    variance = float(cv2.Laplacian(patch, cv2.CV_64F).var())
    return float(1.0 - np.exp(-variance / 150.0))


def _brightness_score(patch: npt.NDArray[np.uint8]) -> float:
    # Full marks for a mean grey level between 80 and 176; linear fall-off to 0 and 255.
    mean = float(patch.mean())
    distance = max(0.0, abs(mean - 128.0) - 48.0)
    return float(np.clip(1.0 - distance / 80.0, 0.0, 1.0))
