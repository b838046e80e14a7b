"""dlib 5-point landmarks (eye corners and nose base) for alignment and pose."""

from __future__ import annotations

import threading

import dlib
import numpy as np
import numpy.typing as npt

from facesocial.metrics import inference_timer
from facesocial.models.dlib_pack import model_info, verified_path
from facesocial.vision.faces import Faces


class DlibFivePointLandmarker:
    def __init__(self) -> None:
        self._predictor = dlib.shape_predictor(str(verified_path("dlib_shape_5")))
        self._lock = threading.Lock()
        self.model = model_info("dlib_shape_5").ref

    def predict(self, rgb: npt.NDArray[np.uint8], faces: Faces) -> Faces:
        points = np.zeros((len(faces), 5, 2), dtype=np.float32)
        with self._lock, inference_timer(self.model.name):
            for row, box in enumerate(faces.boxes):
                shape = self._predictor(rgb, _rect(box))
                points[row] = [(p.x, p.y) for p in shape.parts()]
        return faces.with_landmarks(points, self.model)


class DlibSixtyEightPointLandmarker:
    """iBUG 300-W 68 points. Its training data bars commercial use; docs/models.md says so."""

    def __init__(self) -> None:
        self._predictor = dlib.shape_predictor(str(verified_path("dlib_shape_68")))
        self._lock = threading.Lock()
        self.model = model_info("dlib_shape_68").ref

    def predict(self, rgb: npt.NDArray[np.uint8], faces: Faces) -> npt.NDArray[np.float32]:
        points = np.zeros((len(faces), 68, 2), dtype=np.float32)
        with self._lock, inference_timer(self.model.name):
            for row, box in enumerate(faces.boxes):
                points[row] = [(p.x, p.y) for p in self._predictor(rgb, _rect(box)).parts()]
        return points


def _rect(box: npt.NDArray[np.float32]) -> dlib.rectangle:
    x1, y1, x2, y2 = (round(float(v)) for v in box)
    # dlib rectangles are inclusive of their right/bottom pixel.
    return dlib.rectangle(x1, y1, max(x1, x2 - 1), max(y1, y2 - 1))


def full_object_detection(
    box: npt.NDArray[np.float32], points: npt.NDArray[np.float32]
) -> dlib.full_object_detection:
    """Rebuild dlib's shape object from our arrays (alignment needs it)."""
    parts = dlib.points()
    for x, y in points:
        parts.append(dlib.point(round(float(x)), round(float(y))))
    return dlib.full_object_detection(_rect(box), parts)
