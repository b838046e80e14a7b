"""dlib 5-point landmarks (eye corners and nose base) for alignment and pose, at any roll.

dlib's shape predictors were trained on upright faces inside an axis-aligned box. A face
turned by more than ``UPRIGHT_TOLERANCE_DEG`` (from the detector's keypoints, or an earlier
``roll`` column) is therefore first turned upright in a view of its own neighbourhood, read
from the full-resolution image, and the points are mapped back. Points are always in the
original image's pixels and keep the subject's own left/right names.
"""

from __future__ import annotations

import threading

import dlib
import numpy as np
import numpy.typing as npt

from facesocial.metrics import inference_timer
from facesocial.models.dlib_pack import model_info, verified_path
from facesocial.vision.crops import apply_affine, face_rolls, invert_affine, warp_crop
from facesocial.vision.faces import Faces
from facesocial.vision.rotation import UPRIGHT_TOLERANCE_DEG, upright_transform

# In an upright view the face box is scaled to at most this side (pixels): more detail than
# the 5- or 68-point models use, and a bound on the view's size for very large faces.
_VIEW_FACE_MAX = 320.0
# The view holds the face box and this much context around it (side = box side × factor).
_VIEW_CONTEXT = 2.0


def _predict(
    predictor: dlib.shape_predictor, rgb: npt.NDArray[np.uint8], box: npt.NDArray[np.float32], roll: float
) -> npt.NDArray[np.float32]:
    """One face's points (P, 2) in image pixels."""
    if abs(roll) <= UPRIGHT_TOLERANCE_DEG:
        return np.array([(p.x, p.y) for p in predictor(rgb, _rect(box)).parts()], dtype=np.float32)
    side = max(float(np.sqrt(max(float((box[2] - box[0]) * (box[3] - box[1])), 1.0))), 1.0)
    scale = min(1.0, _VIEW_FACE_MAX / side)
    size = max(8, round(_VIEW_CONTEXT * side * scale))
    centre = ((box[0] + box[2]) / 2.0, (box[1] + box[3]) / 2.0)
    matrix = upright_transform(centre, roll, scale, size)
    view = warp_crop(rgb, matrix, size, "edge")
    half = side * scale / 2.0
    upright_box = np.array([size / 2 - half, size / 2 - half, size / 2 + half, size / 2 + half], np.float32)
    points = np.array([(p.x, p.y) for p in predictor(view, _rect(upright_box)).parts()], dtype=np.float32)
    return apply_affine(invert_affine(matrix), points)


class DlibFivePointLandmarker:
    def __init__(self) -> None:
        self._predictor = dlib.shape_predictor(str(verified_path("dlib_shape_5")))
        self._lock = threading.Lock()
        self.model = model_info("dlib_shape_5").ref

    def predict(self, rgb: npt.NDArray[np.uint8], faces: Faces) -> Faces:
        """``faces`` with (N, 5, 2) landmarks in image pixels (names: ``LANDMARK_NAMES_5``)."""
        points = np.zeros((len(faces), 5, 2), dtype=np.float32)
        rolls = face_rolls(faces)
        with self._lock, inference_timer(self.model.name):
            for row, box in enumerate(faces.boxes):
                points[row] = _predict(self._predictor, rgb, box, float(rolls[row]))
        return faces.with_landmarks(points, self.model)


class DlibSixtyEightPointLandmarker:
    """iBUG 300-W 68 points. Its training data bars commercial use; docs/models.md says so."""

    def __init__(self) -> None:
        self._predictor = dlib.shape_predictor(str(verified_path("dlib_shape_68")))
        self._lock = threading.Lock()
        self.model = model_info("dlib_shape_68").ref

    def predict(self, rgb: npt.NDArray[np.uint8], faces: Faces) -> npt.NDArray[np.float32]:
        """(N, 68, 2) points in image pixels (iBUG layout), upright-view for turned faces."""
        points = np.zeros((len(faces), 68, 2), dtype=np.float32)
        rolls = face_rolls(faces)
        with self._lock, inference_timer(self.model.name):
            for row, box in enumerate(faces.boxes):
                points[row] = _predict(self._predictor, rgb, box, float(rolls[row]))
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
