"""BlazeFace full-range (MediaPipe) face detection on ONNX Runtime, at any size and roll.

The model sees 192² inputs; :class:`BlazeFaceTiles` decodes its anchor grid for a batch of
inputs, and :class:`BlazeFaceDetector` looks at a photo through the views of
:mod:`facesocial.vision.detect_multi` (whole photo in 4 orientations, pyramid tiles for small
faces). Each face carries the model's 6 keypoints (``keypoints6``: the subject's right eye,
left eye, nose tip, mouth centre, right and left ear tragion) in photo pixels.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from facesocial.models.runtime import OnnxModel
from facesocial.vision.detect_multi import SearchSettings, TiledDetector
from facesocial.vision.merge_views import TileDetections, nms
from facesocial.vision.tiling import TileGeometry

KEYPOINT_NAMES_6 = ("right_eye", "left_eye", "nose_tip", "mouth_centre", "right_ear", "left_ear")


@dataclass(frozen=True, slots=True)
class AnchorGrid:
    size: int  # input side in pixels
    cells: int  # grid side
    per_cell: int = 1

    def centres(self) -> npt.NDArray[np.float32]:
        axis = (np.arange(self.cells, dtype=np.float32) + 0.5) / self.cells
        cx, cy = np.meshgrid(axis, axis)
        grid = np.stack([cx.ravel(), cy.ravel()], axis=1)
        return np.repeat(grid, self.per_cell, axis=0)


FULL_RANGE = AnchorGrid(size=192, cells=48)

# Measured on ../shared/data/dlib_faces_detection photos scaled so that their faces measure
# N pixels in the 192² input (43 faces): 10 px 23/43 found, 12 px 36/43, 14 px 41/43; on
# LFW faces pasted on other backgrounds: 16 px 29/40, 20 px 36/40, 24-96 px 39-40/40,
# 128 px 38/40, 160 px 20/40. A level answers for 16..48 px faces (ratio 3); tiles overlap by
# 56 px so each such face lies wholly inside one tile.
BLAZEFACE_TILES = TileGeometry(side=192, min_face=16.0, ratio=3.0, overlap=56)


class BlazeFaceTiles:
    """BlazeFace full-range on a batch of 192² RGB inputs (the ``TileModel`` of the detector)."""

    geometry = BLAZEFACE_TILES
    keypoint_column = "keypoints6"
    keypoint_count = 6
    eye_indices = (0, 1)

    def __init__(self, model: OnnxModel, nms_iou: float = 0.3) -> None:
        self._model = model
        self._anchors = FULL_RANGE.centres()
        self._nms_iou = nms_iou
        self.model = model.ref

    def run_tiles(self, tiles: npt.NDArray[np.uint8], min_confidence: float) -> list[TileDetections]:
        size = FULL_RANGE.size
        batch = tiles.astype(np.float32) / 127.5 - 1.0
        raw_batch = self._model.run(batch)["Identity"]  # (N, 2304, 17)
        results = []
        for raw in raw_batch:
            scores = 1.0 / (1.0 + np.exp(-np.clip(raw[:, 0], -80.0, 80.0)))
            keep = scores >= min_confidence
            if not np.any(keep):
                results.append(TileDetections.empty(6))
                continue
            kept, kept_scores, anchors = raw[keep], scores[keep], self._anchors[keep]
            centre = anchors + kept[:, 1:3] / size
            half = kept[:, 3:5] / size / 2.0
            boxes = np.concatenate([centre - half, centre + half], axis=1) * size
            keypoints = (anchors[:, None, :] + kept[:, 5:17].reshape(-1, 6, 2) / size) * size
            # Overlapping anchors fire on one face: merge them per input before the photo merge.
            order = nms(boxes.astype(np.float32), kept_scores.astype(np.float32), self._nms_iou)
            results.append(
                TileDetections(
                    boxes=boxes[order].astype(np.float32),
                    scores=kept_scores[order].astype(np.float32),
                    keypoints=keypoints[order].astype(np.float32),
                )
            )
        return results


class BlazeFaceDetector(TiledDetector):
    """Faces of any size and roll in a photo, ~3 ms per 192² view on 2 cores.

    A portrait needs 4 views (whole photo, 4 orientations); a 12 Mpx group photo about 40
    more (docs/benchmarks.md).
    """

    def __init__(self, model: OnnxModel, nms_iou: float = 0.3, search: SearchSettings | None = None) -> None:
        settings = search or SearchSettings(nms_iou=nms_iou)
        super().__init__(BlazeFaceTiles(model, settings.nms_iou), settings)
