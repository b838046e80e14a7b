"""Face detection with dlib's HOG detector (CPU fallback; a faster ONNX detector comes later)."""

from __future__ import annotations

import threading

import cv2
import dlib
import numpy as np
import numpy.typing as npt

from facesocial.metrics import inference_timer
from facesocial.models.dlib_pack import model_info
from facesocial.vision.faces import Faces
from facesocial.vision.geometry import clip_boxes

# The HOG margin s is mapped to a confidence through a logistic σ(K·(s − S0)), so the
# platform-wide default cut of 0.5 keeps s ≥ 0.2: on dlib_faces_detection/training.xml every
# labelled face had s ≥ 0.22 (dlib's own cut-off, s = 0, admits e.g. a patch on the
# astronaut's suit at s = 0.12).
_MARGIN_SCALE = 4.0
_MARGIN_OFFSET = 0.2
# Candidates below this margin are never worth scoring.
_MIN_MARGIN = -0.5


def margin_to_confidence(margin: npt.ArrayLike) -> npt.NDArray[np.float32]:
    return (1.0 / (1.0 + np.exp(-_MARGIN_SCALE * (np.asarray(margin, np.float64) - _MARGIN_OFFSET)))).astype(
        np.float32
    )


class DlibHogDetector:
    """dlib's frontal HOG detector with an upsampling policy for small faces.

    HOG finds faces down to ~80 px; one 2x upsampling reaches ~40 px at 4x the cost, so it is
    used only when the caller asks for small faces and the image is not already large.
    Photos above ``max_pixels`` are searched on a shrunken working copy (HOG's feature
    pyramid on a 40 Mpx photo takes gigabytes and seconds); faces smaller than
    ``min_face_size`` × the shrink factor may then be missed. Upright faces only (±~30°).
    """

    def __init__(self, upsample_max_pixels: int = 800_000, max_pixels: int = 2_000_000) -> None:
        self._detector = dlib.get_frontal_face_detector()
        self._upsample_max_pixels = upsample_max_pixels
        self._max_pixels = max_pixels
        # dlib detectors keep scratch buffers; one call at a time per instance.
        self._lock = threading.Lock()
        self.model = model_info("dlib_hog").ref

    def upsample_for(self, rgb: npt.NDArray[np.uint8], min_face_size: int) -> int:
        pixels = int(rgb.shape[0]) * int(rgb.shape[1])
        return 1 if min_face_size < 80 and pixels <= self._upsample_max_pixels else 0

    def detect(
        self, rgb: npt.NDArray[np.uint8], *, min_face_size: int = 40, min_confidence: float = 0.5
    ) -> Faces:
        height, width = int(rgb.shape[0]), int(rgb.shape[1])
        scale = min(1.0, float(np.sqrt(self._max_pixels / max(1, width * height))))
        work = rgb
        if scale < 1.0:
            size = (max(1, round(width * scale)), max(1, round(height * scale)))
            work = np.asarray(cv2.resize(rgb, size, interpolation=cv2.INTER_AREA), dtype=np.uint8)
        upsample = self.upsample_for(work, max(1, round(min_face_size * scale)))
        with self._lock, inference_timer(self.model.name):
            rects, margins, _ = self._detector.run(work, upsample, _MIN_MARGIN)
        if not rects:
            return Faces.empty(self.model)
        boxes = np.array(
            [[r.left(), r.top(), r.right() + 1, r.bottom() + 1] for r in rects], dtype=np.float32
        ) / np.float32(scale)
        boxes = clip_boxes(boxes.astype(np.float32), width, height)
        faces = Faces(boxes=boxes, confidence=margin_to_confidence(margins), detector=self.model)
        keep = (faces.confidence >= min_confidence) & (
            np.minimum(faces.widths, faces.heights) >= min_face_size
        )
        return faces[keep].sorted_by_area()
