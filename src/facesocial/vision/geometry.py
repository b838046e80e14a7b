"""Box geometry helpers (pure NumPy)."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float32]


def iou_matrix(a: npt.ArrayLike, b: npt.ArrayLike) -> npt.NDArray[np.float64]:
    """Intersection over union of every box in ``a`` with every box in ``b`` (xyxy)."""
    boxes_a = np.asarray(a, dtype=np.float64).reshape(-1, 4)
    boxes_b = np.asarray(b, dtype=np.float64).reshape(-1, 4)
    x1 = np.maximum(boxes_a[:, None, 0], boxes_b[None, :, 0])
    y1 = np.maximum(boxes_a[:, None, 1], boxes_b[None, :, 1])
    x2 = np.minimum(boxes_a[:, None, 2], boxes_b[None, :, 2])
    y2 = np.minimum(boxes_a[:, None, 3], boxes_b[None, :, 3])
    inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    area_a = (boxes_a[:, 2] - boxes_a[:, 0]) * (boxes_a[:, 3] - boxes_a[:, 1])
    area_b = (boxes_b[:, 2] - boxes_b[:, 0]) * (boxes_b[:, 3] - boxes_b[:, 1])
    union = area_a[:, None] + area_b[None, :] - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1.0), 0.0)


def clip_boxes(boxes: FloatArray, width: int, height: int) -> FloatArray:
    """Clip xyxy boxes to the image."""
    out = boxes.copy()
    out[:, [0, 2]] = np.clip(out[:, [0, 2]], 0, width)
    out[:, [1, 3]] = np.clip(out[:, [1, 3]], 0, height)
    return out


def xyxy_to_xywh(box: npt.ArrayLike) -> tuple[int, int, int, int]:
    """Integer ``x, y, width, height`` (the design documents' bbox columns)."""
    x1, y1, x2, y2 = (float(v) for v in np.asarray(box).reshape(4))
    return round(x1), round(y1), round(x2 - x1), round(y2 - y1)


def l2_normalise(vectors: npt.ArrayLike) -> FloatArray:
    """Rows scaled to unit length (zero rows stay zero), as float32."""
    array = np.asarray(vectors, dtype=np.float32)
    array = array.reshape(-1, array.shape[-1])
    norms = np.linalg.norm(array, axis=1, keepdims=True)
    return (array / np.where(norms > 0, norms, 1.0)).astype(np.float32)
