"""Which of two rolls is a face's true one: dlib's HOG detector as an orientation judge.

BlazeFace scores a face seen upside down or sideways almost as high as the same face upright
(it fires on LFW faces turned by 180° at up to 0.86), so when its looks at a face disagree
about the orientation, its scores cannot settle it. dlib's frontal HOG detector was trained on
upright faces only and fires on them within about ±30° of roll, so it can: the face is turned
upright by each candidate roll in a small view of its own (from the full-resolution photo) and
the roll whose view HOG scores higher wins.

Effect: ``facesocial eval rotation`` counts faces reported the wrong way round
(``wrong_way_round``) and LFW verification the upright case (docs/accuracy.md, "Faces at any
roll and size"). About 5 ms per view on this machine; only disputed faces pay it.
"""

from __future__ import annotations

import threading

import dlib
import numpy as np
import numpy.typing as npt

from facesocial.vision.crops import warp_crop
from facesocial.vision.rotation import upright_transform

FloatArray = npt.NDArray[np.float32]

# The face measures FACE px in a VIEW² view: HOG's detection window is 80 px, and it searches
# a pyramid downward only.
_FACE, _VIEW = 90.0, 180
# HOG candidates scored down to this margin (below dlib's own 0: a weak upright face still
# beats a face seen upside down, which HOG rarely scores at all).
_MIN_MARGIN = -0.5
# A HOG detection counts when its centre is within this fraction of the face side of the
# view's centre: the box of a face found in a turned view can be a third of its side off.
_NEAR = 0.5


class HogOrientationJudge:
    """``prefer(rgb, boxes, rolls_a, rolls_b)``: +1 where roll b is the face's true roll, −1
    where roll a is, 0 where HOG sees an upright face in neither view (undecided)."""

    def __init__(self) -> None:
        self._detector = dlib.get_frontal_face_detector()
        self._lock = threading.Lock()  # dlib detectors keep scratch buffers

    def prefer(
        self,
        rgb: npt.NDArray[np.uint8],
        boxes: npt.ArrayLike,
        rolls_a: npt.ArrayLike,
        rolls_b: npt.ArrayLike,
    ) -> npt.NDArray[np.int8]:
        """Per face (boxes (N, 4) xyxy photo pixels, rolls (N,) degrees): +1, −1 or 0."""
        b = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
        a_rolls = np.asarray(rolls_a, dtype=np.float64).reshape(-1)
        b_rolls = np.asarray(rolls_b, dtype=np.float64).reshape(-1)
        verdict = np.zeros(len(b), dtype=np.int8)
        for row, box in enumerate(b):
            margin_a = self._margin(rgb, box, float(a_rolls[row]))
            margin_b = self._margin(rgb, box, float(b_rolls[row]))
            if margin_a > -np.inf or margin_b > -np.inf:
                verdict[row] = 1 if margin_b > margin_a else -1
        return verdict

    def _margin(self, rgb: npt.NDArray[np.uint8], box: npt.NDArray[np.float64], roll: float) -> float:
        """HOG's best margin for a face at the centre of the face's view turned upright by
        ``roll``, or −inf when it sees none there."""
        side = max(float(np.sqrt(max((box[2] - box[0]) * (box[3] - box[1]), 1.0))), 1.0)
        centre = ((box[0] + box[2]) / 2.0, (box[1] + box[3]) / 2.0)
        view = warp_crop(rgb, upright_transform(centre, roll, _FACE / side, _VIEW), _VIEW, "edge")
        with self._lock:
            rects, margins, _ = self._detector.run(view, 0, _MIN_MARGIN)
        best = -np.inf
        for rect, margin in zip(rects, margins, strict=True):
            cx, cy = (rect.left() + rect.right()) / 2.0, (rect.top() + rect.bottom()) / 2.0
            if np.hypot(cx - _VIEW / 2.0, cy - _VIEW / 2.0) <= _NEAR * _FACE:
                best = max(best, float(margin))
        return best
