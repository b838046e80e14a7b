"""In-plane rotation (roll) of faces: the convention, and moving points between rotated views.

**Roll** is the angle, in degrees in (−180, 180], of the line from the subject's right eye to
the subject's left eye, measured in image pixels (x right, y down). It is 0 for an upright
face and positive when the face is turned **clockwise as seen in the image** (a face lying on
its right cheek, crown pointing left, has roll +90; an upside-down face ±180). It is the same
sign convention as the face mesh's ``roll`` (head tilted toward the subject's left shoulder).

Quarter turns: ``np.rot90(image, k)`` turns the picture counter-clockwise by k·90°. A face
with roll ≈ k·90° is upright in that view, which is where the detectors (trained on upright
faces) look for it. :func:`unrotate_points` maps view pixels back to the original image.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float32]

# Faces whose |roll| is at most this are treated as upright by every stage: dlib's 5-point
# predictor runs on the image as it is and the square head crops are not rotated, exactly as
# before rotation support, so the calibrated thresholds and measured head accuracies hold.
# dlib's 5-point model and the attribute heads stay reliable to about ±20–30° of roll
# (docs/accuracy.md, "In-plane rotation"); beyond this, stages work on an upright view.
UPRIGHT_TOLERANCE_DEG = 20.0


def roll_degrees(subject_right_eye: npt.ArrayLike, subject_left_eye: npt.ArrayLike) -> FloatArray:
    """Roll (see module doc) from eye positions, (N, 2) each, in image pixels → (N,) degrees."""
    right = np.asarray(subject_right_eye, dtype=np.float64).reshape(-1, 2)
    left = np.asarray(subject_left_eye, dtype=np.float64).reshape(-1, 2)
    delta = left - right
    return np.degrees(np.arctan2(delta[:, 1], delta[:, 0])).astype(np.float32)


def roll_from_landmarks5(landmarks: npt.ArrayLike) -> FloatArray:
    """Roll from dlib 5-point landmarks (N, 5, 2): eye centres = mean of each eye's 2 corners."""
    points = np.asarray(landmarks, dtype=np.float64).reshape(-1, 5, 2)
    left_eye = points[:, 0:2].mean(axis=1)
    right_eye = points[:, 2:4].mean(axis=1)
    return roll_degrees(right_eye, left_eye)


def roll_from_keypoints6(keypoints: npt.ArrayLike) -> FloatArray:
    """Roll from BlazeFace keypoints (N, 6, 2): [0] is the subject's right eye, [1] the left."""
    points = np.asarray(keypoints, dtype=np.float64).reshape(-1, 6, 2)
    return roll_degrees(points[:, 0], points[:, 1])


def quarter_turns(roll: npt.ArrayLike) -> npt.NDArray[np.int64]:
    """The number k (0..3) of counter-clockwise quarter turns that makes each face most upright."""
    return np.asarray(np.round(np.asarray(roll, dtype=np.float64) / 90.0), dtype=np.int64) % 4


def rotate_view(image: npt.NDArray[np.uint8], k: int) -> npt.NDArray[np.uint8]:
    """The image turned counter-clockwise by k quarter turns (a contiguous copy)."""
    return np.ascontiguousarray(np.rot90(image, k % 4))


def unrotate_points(points: npt.ArrayLike, k: int, width: int, height: int) -> FloatArray:
    """Map points (..., 2) from the view ``rotate_view(image, k)`` back to the image.

    ``width`` and ``height`` are the **original** image's. Coordinates are continuous pixel
    coordinates (the image spans 0..width), so corners map exactly onto corners.
    """
    p = np.asarray(points, dtype=np.float64)
    x, y = p[..., 0], p[..., 1]
    turns = k % 4
    if turns == 0:
        out = np.stack([x, y], axis=-1)
    elif turns == 1:  # view is height wide: view (x', y') came from (W - y', x')
        out = np.stack([width - y, x], axis=-1)
    elif turns == 2:
        out = np.stack([width - x, height - y], axis=-1)
    else:  # view (x', y') came from (y', H - x')
        out = np.stack([y, height - x], axis=-1)
    return out.astype(np.float32)


def unrotate_boxes(boxes: npt.ArrayLike, k: int, width: int, height: int) -> FloatArray:
    """Map xyxy boxes (N, 4) from a quarter-turned view back to axis-aligned image boxes."""
    b = np.asarray(boxes, dtype=np.float64).reshape(-1, 2, 2)
    corners = unrotate_points(b, k, width, height)
    return np.concatenate([corners.min(axis=1), corners.max(axis=1)], axis=1).astype(np.float32)


def upright_transform(
    centre: npt.ArrayLike, roll_deg: float, scale: float, size: int
) -> npt.NDArray[np.float64]:
    """Image→view 2x3 affine: rotate by −roll about ``centre``, scale, centre in a ``size``² view.

    In the view the face is upright (roll 0) at the view's centre; a point at distance d from
    ``centre`` in the image lies at distance ``scale``·d in the view.
    """
    cx, cy = (float(v) for v in np.asarray(centre, dtype=np.float64).reshape(2))
    angle = np.radians(roll_deg)
    cos, sin = np.cos(angle) * scale, np.sin(angle) * scale
    # view = R(-roll)·scale·(p - c) + size/2
    return np.array(
        [
            [cos, sin, size / 2.0 - cos * cx - sin * cy],
            [-sin, cos, size / 2.0 + sin * cx - cos * cy],
        ]
    )
