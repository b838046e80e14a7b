"""Find faces of any size and roll with a fixed-input detector: views, then one merge.

A *view* is a square model input cut from a bounded working copy of the photo, possibly
turned by quarter turns (``np.rot90``). Views are:

* the whole photo letterboxed into one input (the classic single pass), in each orientation;
* the tiles of the pyramid levels of :mod:`facesocial.vision.tiling`, so that faces down to
  ``small_face_fraction`` of the photo's short side (or ``min_face_size``) are big enough in
  some view; a tile keeps only faces of the sizes its level answers for, and drops those
  touching its inner edges (cut faces lie wholly in a neighbouring tile);
* when no upright whole-photo view found a face: the whole photo shrunk to 2/3 of the input
  with a black border, upright (and in the other orientations when nothing at all is found),
  since a face filling the frame is larger than anything the detector was trained on (on
  UTKFace chips: 111/203 found as they are, 200/203 with the border).

Detections are mapped back to photo pixels and merged by :mod:`facesocial.vision.merge_views`
(second looks where in doubt, one face per face, keypoints named for the subject).

Rotation policy (``SearchSettings.rotation``):

* ``"auto"`` (default): the whole-photo pass in all 4 orientations; the tiles upright, and in
  a quarter-turned orientation only when a face found so far is turned that way (a photo
  whose EXIF orientation was lost, a person lying down). Measured trade-off:
  docs/accuracy.md, "Faces at any roll and size".
* ``"always"``: tiles in all 4 orientations too (≈4× the tile cost).
* ``"upright"``: upright views only (no rotation support).

Memory: no step copies, pads or rotates the full-resolution photo; the largest allocations
are the finest working copy (≤ ``max_working_pixels``) and a batch of model inputs
(≤ ``max_batch_pixels``).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal

import cv2
import numpy as np
import numpy.typing as npt

from facesocial.vision.faces import Faces
from facesocial.vision.merge_views import Candidates, OrientationJudge, TileModel, merge
from facesocial.vision.orientation import HogOrientationJudge
from facesocial.vision.rotation import quarter_turns, roll_degrees, rotate_view, unrotate_points
from facesocial.vision.tiling import Level, SearchPlan, TileGeometry, plan_search, target_face_size

UInt8Array = npt.NDArray[np.uint8]
FloatArray = npt.NDArray[np.float32]
Rotation = Literal["auto", "always", "upright"]

# A detection closer than this (model-input pixels) to a tile's inner edge is a cut face.
_EDGE_MARGIN = 2.0
# A tile keeps faces up to this factor above the largest its level answers for.
_SIZE_SLACK = 1.5


@dataclass(frozen=True, slots=True)
class SearchSettings:
    """How hard to look (the ``detection`` settings section fills it)."""

    # Faces down to this fraction of the photo's short side are searched for in tiles.
    small_face_fraction: float = 0.02
    rotation: Rotation = "auto"
    # Upper bound of the finest working copy (pixels); larger photos are searched coarser.
    max_working_pixels: int = 4_000_000
    # Model inputs per inference call (memory: batch × side² × 3 float32, and the model's
    # activations, which grow with it) ...
    batch: int = 16
    # ... and at most this many model-input pixels per call: 16 BlazeFace 192² inputs, but 4
    # RetinaFace 640² ones. RetinaFace at 16 per call grew peak RSS by 181 MB on 12000x3000
    # and 416 MB on 40000x1000, at 4 by 55 MB and 44 MB, no slower (docs/benchmarks.md).
    max_batch_pixels: int = 1_700_000
    nms_iou: float = 0.3


@dataclass(frozen=True, slots=True)
class _View:
    """How a model input maps to photo pixels: photo = unrotated·gain + offset."""

    pixels: UInt8Array  # (side, side, 3), already turned by ``turns``
    turns: int
    gain: float
    offset: tuple[float, float]
    # Inner tile edges (model-input pixels of the unrotated tile); None = no edge test.
    inner: tuple[float | None, float | None, float | None, float | None] = (None, None, None, None)
    # Largest face (box side, model-input pixels) this view answers for; None = any.
    max_face: float | None = None


class TiledDetector:
    """The ``FaceDetector`` port over a ``TileModel``: plans views, runs them, merges."""

    def __init__(
        self,
        tile_model: TileModel,
        search: SearchSettings | None = None,
        judge: OrientationJudge | None = None,
    ) -> None:
        self._tiles = tile_model
        self.search = search or SearchSettings()
        # Settles the orientation of faces whose looks disagree (merge_views); without rotation
        # support there is nothing to settle.
        self._judge = judge or (None if self.search.rotation == "upright" else HogOrientationJudge())
        self.model = tile_model.model
        # Model inputs run by the last detect() (bench/eval reports; not meaningful when several
        # threads share the detector).
        self.views_run = 0
        side = tile_model.geometry.side
        self.batch = max(1, min(self.search.batch, self.search.max_batch_pixels // (side * side)))

    @property
    def geometry(self) -> TileGeometry:
        return self._tiles.geometry

    def plan(self, width: int, height: int, min_face_size: int) -> SearchPlan:
        target = target_face_size(width, height, min_face_size, self.search.small_face_fraction)
        return plan_search(width, height, target, self.geometry, self.search.max_working_pixels)

    def detect(self, rgb: UInt8Array, *, min_face_size: int = 40, min_confidence: float = 0.5) -> Faces:
        """Faces anywhere in ``rgb`` (H, W, 3 uint8), largest first, with photo-pixel keypoints.

        Faces narrower than ``min_face_size`` pixels or scoring below ``min_confidence`` are
        dropped. Cost grows with the photo's size relative to the smallest face searched for.
        """
        height, width = int(rgb.shape[0]), int(rgb.shape[1])
        plan = self.plan(width, height, min_face_size)
        copies = _working_copies(rgb, plan.levels)
        whole_source, whole_scale = (copies[-1], plan.levels[-1].scale) if copies else (rgb, 1.0)
        upright_only = self.search.rotation == "upright"
        all_turns = (0,) if upright_only else (0, 1, 2, 3)
        tile_turns = all_turns if self.search.rotation == "always" else (0,)

        found = Candidates()
        first = [
            *(self._whole_view(whole_source, whole_scale, t, border=0.0) for t in all_turns),
            *self._level_views(copies, plan.levels, tile_turns),
        ]
        inputs = self._run(first, min_confidence, found)
        if not found.any_sure(min_confidence):
            # A face filling the frame is larger than anything the detector was trained on:
            # the upright photo again with a border, before turned views' detections (often
            # the same face seen upside down or sideways, badly boxed) are all there is: LFW
            # portraits whose face only this view found were embedded from those.
            inputs += self._run(
                [self._whole_view(whole_source, whole_scale, 0, border=0.25)], min_confidence, found
            )

        def merged() -> Faces:
            return merge(
                self._tiles,
                rgb,
                found,
                min_face_size=min_face_size,
                min_confidence=min_confidence,
                nms_iou=self.search.nms_iou,
                batch=self.batch,
                judge=self._judge,
            )

        faces = merged()
        if self.search.rotation == "auto" and plan.levels:
            extra = sorted({int(k) for k in quarter_turns(self._rolls(faces))} - {0})
            if extra:
                inputs += self._run(
                    list(self._level_views(copies, plan.levels, tuple(extra))), min_confidence, found
                )
                faces = merged()
        if len(faces) == 0:
            padded = [self._whole_view(whole_source, whole_scale, t, border=0.25) for t in all_turns if t]
            inputs += self._run(padded, min_confidence, found)
            faces = merged()
        self.views_run = inputs + found.model_inputs
        return faces

    def _rolls(self, faces: Faces) -> FloatArray:
        if len(faces) == 0:
            return np.zeros((0,), np.float32)
        points = np.asarray(faces.columns[self._tiles.keypoint_column], dtype=np.float32)
        right, left = self._tiles.eye_indices
        return roll_degrees(points[:, right], points[:, left])

    # -- views ------------------------------------------------------------------------------

    def _whole_view(self, source: UInt8Array, source_scale: float, turns: int, border: float) -> _View:
        """The whole photo letterboxed (with ``border`` × its long side of black on each side)."""
        side = self.geometry.side
        height, width = source.shape[:2]
        fit = side / (max(height, width) * (1.0 + 2.0 * border))
        new_w, new_h = max(1, round(width * fit)), max(1, round(height * fit))
        resized = cv2.resize(source, (new_w, new_h), interpolation=cv2.INTER_AREA)
        canvas = np.zeros((side, side, 3), dtype=np.uint8)
        pad_x, pad_y = (side - new_w) // 2, (side - new_h) // 2
        canvas[pad_y : pad_y + new_h, pad_x : pad_x + new_w] = resized
        # canvas px → source px: (p - pad) / fit; source px → photo px: / source_scale
        gain = 1.0 / (fit * source_scale)
        return _View(rotate_view(canvas, turns), turns, gain, (-pad_x * gain, -pad_y * gain))

    def _level_views(
        self, copies: list[UInt8Array], levels: tuple[Level, ...], turns: tuple[int, ...]
    ) -> Iterator[_View]:
        side = self.geometry.side
        for copy, level in zip(copies, levels, strict=True):
            for tile in level.tiles:
                canvas = np.zeros((side, side, 3), dtype=np.uint8)
                canvas[: tile.height, : tile.width] = copy[tile.y0 : tile.y1, tile.x0 : tile.x1]
                inner = (
                    0.0 if tile.x0 > 0 else None,
                    0.0 if tile.y0 > 0 else None,
                    float(tile.width) if tile.x1 < level.width else None,
                    float(tile.height) if tile.y1 < level.height else None,
                )
                gain = 1.0 / level.scale
                # Bigger faces belong to the coarser level, where a face-like texture of
                # that size is seen with less false detail (docs/accuracy.md).
                largest = self.geometry.min_face * self.geometry.ratio * _SIZE_SLACK
                for t in turns:
                    yield _View(
                        rotate_view(canvas, t), t, gain, (tile.x0 * gain, tile.y0 * gain), inner, largest
                    )

    # -- running and merging ----------------------------------------------------------------

    def _run(self, views: list[_View], min_confidence: float, found: Candidates) -> int:
        """Run ``views`` in batches, adding their detections (photo pixels) to ``found``."""
        side = self.geometry.side
        for start in range(0, len(views), self.batch):
            chunk = views[start : start + self.batch]
            batch = np.stack([view.pixels for view in chunk])
            results = self._tiles.run_tiles(batch, min_confidence)
            for view, result in zip(chunk, results, strict=True):
                if len(result.scores) == 0:
                    continue
                boxes = _unrotate_boxes(result.boxes, view.turns, side)
                points = unrotate_points(result.keypoints, view.turns, side, side)
                keep = _not_cut(boxes, view.inner)
                if view.max_face is not None:
                    sides = np.sqrt(
                        np.maximum(boxes[:, 2] - boxes[:, 0], 0) * np.maximum(boxes[:, 3] - boxes[:, 1], 0)
                    )
                    keep &= sides <= view.max_face
                if not np.any(keep):
                    continue
                offset = np.array(view.offset, dtype=np.float32)
                found.add(
                    (boxes[keep] * view.gain + np.tile(offset, 2)).astype(np.float32),
                    result.scores[keep].astype(np.float32),
                    (points[keep] * view.gain + offset).astype(np.float32),
                    doubtful=view.turns != 0 or view.max_face is not None,
                    turned=view.turns != 0,
                )
        return len(views)


def _working_copies(rgb: UInt8Array, levels: tuple[Level, ...]) -> list[UInt8Array]:
    """One resized copy per level, finest first; each coarser copy is made from the finer one."""
    copies: list[UInt8Array] = []
    source = rgb
    for level in levels:
        copy = np.asarray(
            cv2.resize(source, (level.width, level.height), interpolation=cv2.INTER_AREA), dtype=np.uint8
        )
        copies.append(copy)
        source = copy
    return copies


def _unrotate_boxes(boxes: FloatArray, turns: int, side: int) -> FloatArray:
    corners = unrotate_points(boxes.reshape(-1, 2, 2), turns, side, side)
    return np.concatenate([corners.min(axis=1), corners.max(axis=1)], axis=1).astype(np.float32)


def _not_cut(
    boxes: FloatArray, inner: tuple[float | None, float | None, float | None, float | None]
) -> npt.NDArray[np.bool_]:
    keep = np.ones(len(boxes), dtype=bool)
    left, top, right, bottom = inner
    if left is not None:
        keep &= boxes[:, 0] > left + _EDGE_MARGIN
    if top is not None:
        keep &= boxes[:, 1] > top + _EDGE_MARGIN
    if right is not None:
        keep &= boxes[:, 2] < right - _EDGE_MARGIN
    if bottom is not None:
        keep &= boxes[:, 3] < bottom - _EDGE_MARGIN
    return keep
