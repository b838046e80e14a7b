"""Aligned face crops. Each crop kind is computed once per face and shared by the heads."""

from __future__ import annotations

import dlib
import numpy as np
import numpy.typing as npt

from facesocial.vision.faces import Faces
from facesocial.vision.landmarks import full_object_detection

DLIB_CHIP_SIZE = 150
DLIB_CHIP_PADDING = 0.25


def dlib_chips(rgb: npt.NDArray[np.uint8], faces: Faces) -> list[npt.NDArray[np.uint8]]:
    """150x150 similarity-aligned chips as dlib's ResNet expects (needs 5-point landmarks)."""
    if faces.landmarks is None:
        raise ValueError("dlib chips need landmarks; run the landmarker first")
    shapes = dlib.full_object_detections()
    for box, points in zip(faces.boxes, faces.landmarks, strict=True):
        shapes.append(full_object_detection(box, points))
    if len(shapes) == 0:
        return []
    chips = dlib.get_face_chips(rgb, shapes, size=DLIB_CHIP_SIZE, padding=DLIB_CHIP_PADDING)
    return [np.ascontiguousarray(np.asarray(chip, dtype=np.uint8)) for chip in chips]
