"""Merge the detections of many views into one set of faces, with a second look where in doubt.

The views of :mod:`facesocial.vision.detect_multi` overlap: one face is usually found in
several of them. Not all views are equally trustworthy:

* **sure**: the upright whole-photo pass, the classic single pass whose scores the platform's
  confidence cut-off was calibrated on. Kept as they are, unless a second look sees no face
  at all there (a veto).
* **doubtful**: quarter-turned views (the model never saw textures sideways or upside down,
  and some fire) and zoomed-in tiles (some textures look like faces at that size); also any
  detection whose keypoints say the face is turned by more than 45°. These are merged among
  themselves, dropped where a sure detection at least as strong covers them, and the rest
  count only as much as a **second look** confirms: the candidate seen again from the photo's
  full resolution, turned upright by its roll, the face at ``SECOND_LOOK_FACE`` of the input.
  Candidates from turned views are looked at in all four quarter turns of their roll (their
  roll may come from a view where the face was sideways); the best look gives the score and
  the keypoints, which corrects the roll of faces found turned by up to ±45°.

Finally all candidates are merged by non-maximum suppression, and a detection overlapping a
stronger one turned more than 60° away from it is dropped (one patch of a photo does not hold
two faces turned different ways, but a face seen upside down can fire beside the real one).
Measurements behind the constants: docs/accuracy.md, "Faces at any roll and size".
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
import numpy.typing as npt

from facesocial.models.manifest import ModelRef
from facesocial.vision.crops import apply_affine, invert_affine, warp_crop
from facesocial.vision.faces import Faces
from facesocial.vision.geometry import clip_boxes, iou_matrix
from facesocial.vision.rotation import roll_degrees, upright_transform
from facesocial.vision.tiling import TileGeometry

UInt8Array = npt.NDArray[np.uint8]
FloatArray = npt.NDArray[np.float32]
BoolArray = npt.NDArray[np.bool_]

# Second look: the face spans this fraction of the input. On dlib_faces_detection (all views in
# all orientations) true faces scored 0.38-0.93 there (all but one ≥ 0.64) and false
# detections of turned views ≤ 0.46; at 0.45 and 0.6 the two overlapped more.
SECOND_LOOK_FACE = 0.3
# Orientations tried, relative to the candidate's roll, for candidates from turned views.
SECOND_LOOK_TURNS = (0.0, 90.0, 180.0, 270.0)
# Doubtful detections below this are dropped unlooked (a look costs one model input; a
# confirmed face scores at most its first score).
SECOND_LOOK_FLOOR = 0.25
# A sure detection whose second look scores below this is no face: the astronaut's suit,
# turned sideways, fires at 0.66 in the upright pass and scores 0.28 there; true faces of
# dlib_faces_detection score ≥ 0.55.
VETO = 0.35
# Overlapping (IoU ≥ CROSS_IOU) detections whose rolls differ by more than CROSS_ROLL degrees.
CROSS_IOU, CROSS_ROLL = 0.1, 60.0
# Keypoints farther than this from upright (degrees) make a detection doubtful.
TURNED_ROLL = 45.0


@dataclass(frozen=True, slots=True)
class TileDetections:
    """One view's detections in its own (model-input) pixels."""

    boxes: FloatArray  # (M, 4) xyxy
    scores: FloatArray  # (M,)
    keypoints: FloatArray  # (M, K, 2)

    @classmethod
    def empty(cls, keypoint_count: int) -> TileDetections:
        return cls(
            np.zeros((0, 4), np.float32),
            np.zeros((0,), np.float32),
            np.zeros((0, keypoint_count, 2), np.float32),
        )


class TileModel(Protocol):
    """A detector with a square input of ``geometry.side`` pixels (BlazeFace, RetinaFace)."""

    model: ModelRef
    geometry: TileGeometry
    keypoint_column: str  # the Faces column of its keypoints
    keypoint_count: int
    eye_indices: tuple[int, int]  # the subject's right and left eye in the keypoints

    def run_tiles(self, tiles: UInt8Array, min_confidence: float) -> list[TileDetections]:
        """Detections of each of N inputs (N, side, side, 3) RGB uint8, score ≥ min_confidence."""
        ...


@dataclass
class Candidates:
    """Detections of every view so far, in photo pixels, and the second looks already taken."""

    boxes: list[FloatArray] = field(default_factory=list)
    scores: list[FloatArray] = field(default_factory=list)
    keypoints: list[FloatArray] = field(default_factory=list)
    doubtful: list[BoolArray] = field(default_factory=list)  # any view but the upright whole photo
    turned: list[BoolArray] = field(default_factory=list)  # from a quarter-turned view
    looks: dict[tuple[float, ...], tuple[float, FloatArray | None]] = field(default_factory=dict)
    model_inputs: int = 0  # second-look inputs run

    def add(
        self, boxes: FloatArray, scores: FloatArray, keypoints: FloatArray, *, doubtful: bool, turned: bool
    ) -> None:
        self.boxes.append(boxes)
        self.scores.append(scores)
        self.keypoints.append(keypoints)
        self.doubtful.append(np.full(len(scores), doubtful, dtype=bool))
        self.turned.append(np.full(len(scores), turned, dtype=bool))


def merge(
    model: TileModel,
    rgb: UInt8Array,
    found: Candidates,
    *,
    min_face_size: int,
    min_confidence: float,
    nms_iou: float,
    batch: int,
) -> Faces:
    """One face per face: the module's merge rules, largest first, photo pixels."""
    if not found.scores:
        return Faces.empty(model.model)
    height, width = int(rgb.shape[0]), int(rgb.shape[1])
    boxes = np.concatenate(found.boxes)
    scores = np.concatenate(found.scores).copy()
    keypoints = np.concatenate(found.keypoints).copy()
    right, left = model.eye_indices
    rolls = roll_degrees(keypoints[:, right], keypoints[:, left])
    turned = np.concatenate(found.turned) | (np.abs(rolls) > TURNED_ROLL)
    doubtful = np.concatenate(found.doubtful) | turned
    large_enough = np.minimum(boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]) >= min_face_size
    floor = max(min_confidence, SECOND_LOOK_FLOOR)
    sure = np.flatnonzero(~doubtful & large_enough)
    unsure = np.flatnonzero(doubtful & large_enough & (scores >= floor))
    unsure = unsure[nms(boxes[unsure], scores[unsure], nms_iou)]
    confident = sure[scores[sure] >= min_confidence]
    if len(unsure) and len(confident):
        # Covered only by a sure detection at least as strong: a sideways face can also fire
        # weakly, wrongly oriented, in the upright pass; the stronger turned one still counts.
        overlap = iou_matrix(boxes[unsure], boxes[confident]) >= nms_iou
        stronger = scores[confident][None, :] >= scores[unsure][:, None]
        unsure = unsure[~np.any(overlap & stronger, axis=1)]
    if len(unsure):
        second, seen = second_look(
            model, rgb, boxes[unsure], rolls[unsure], keypoints[unsure], turned[unsure], found, batch
        )
        scores[unsure] = np.minimum(scores[unsure], second)
        keypoints[unsure] = seen
    checked = sure[scores[sure] >= floor]
    if len(checked):
        second, _ = second_look(
            model, rgb, boxes[checked], rolls[checked], keypoints[checked], turned[checked], found, batch
        )
        vetoed = second < VETO
        scores[checked[vetoed]] = np.minimum(scores[checked[vetoed]], second[vetoed])
    candidates = np.concatenate([sure, unsure])
    order = candidates[nms(boxes[candidates], scores[candidates], nms_iou)]
    order = order[scores[order] >= min_confidence]
    order = order[
        one_orientation(boxes[order], roll_degrees(keypoints[order, right], keypoints[order, left]))
    ]
    faces = Faces(
        boxes=clip_boxes(boxes[order], width, height),
        confidence=scores[order].astype(np.float32),
        detector=model.model,
        columns={model.keypoint_column: keypoints[order]},
    )
    return faces.sorted_by_area()


def second_look(
    model: TileModel,
    rgb: UInt8Array,
    boxes: FloatArray,
    rolls: FloatArray,
    keypoints: FloatArray,
    turned: BoolArray,
    found: Candidates,
    batch: int,
) -> tuple[FloatArray, FloatArray]:
    """Score (0 when no face is near the centre) and photo keypoints (the candidate's own when
    none) of each candidate's best look; looks are remembered in ``found``."""
    side = model.geometry.side
    keys = [
        (*np.round(box, 2).tolist(), round(float(roll), 2)) for box, roll in zip(boxes, rolls, strict=True)
    ]
    todo = [i for i, key in enumerate(keys) if key not in found.looks]
    views: list[UInt8Array] = []
    matrices: list[npt.NDArray[np.float64]] = []
    owners: list[int] = []
    for index in todo:
        box, roll = boxes[index], float(rolls[index])
        centre = ((box[0] + box[2]) / 2.0, (box[1] + box[3]) / 2.0)
        face_side = max(float(np.sqrt(max((box[2] - box[0]) * (box[3] - box[1]), 1.0))), 1.0)
        for turn in SECOND_LOOK_TURNS if turned[index] else (0.0,):
            matrix = upright_transform(centre, roll + turn, SECOND_LOOK_FACE * side / face_side, side)
            matrices.append(matrix)
            views.append(warp_crop(rgb, matrix, side, "black"))
            owners.append(index)
    results: list[tuple[float, FloatArray | None]] = []
    for start in range(0, len(views), batch):
        detections = model.run_tiles(np.stack(views[start : start + batch]), 0.05)
        found.model_inputs += len(detections)
        for offset, detection in enumerate(detections):
            results.append(_centre_detection(detection, side, invert_affine(matrices[start + offset])))
    for index in todo:
        looks = [look for look, owner in zip(results, owners, strict=True) if owner == index]
        found.looks[keys[index]] = max(looks, key=lambda look: look[0])
    scores = np.array([found.looks[key][0] for key in keys], dtype=np.float32)
    points = keypoints.copy()
    for row, key in enumerate(keys):
        seen = found.looks[key][1]
        if seen is not None:
            points[row] = seen
    return scores, points


def _centre_detection(
    result: TileDetections, side: int, view_to_photo: npt.NDArray[np.float64]
) -> tuple[float, FloatArray | None]:
    """The best detection centred near the view's centre: (score, photo keypoints)."""
    if len(result.scores) == 0:
        return 0.0, None
    centres = (result.boxes[:, :2] + result.boxes[:, 2:]) / 2.0
    near = np.flatnonzero(np.linalg.norm(centres - side / 2.0, axis=1) < 0.3 * SECOND_LOOK_FACE * side)
    if len(near) == 0:
        return 0.0, None
    chosen = int(near[np.argmax(result.scores[near])])
    return float(result.scores[chosen]), apply_affine(view_to_photo, result.keypoints[chosen])


def one_orientation(boxes: FloatArray, rolls: FloatArray) -> npt.NDArray[np.int64]:
    """Indices (best first, as given) without detections overlapping a stronger one turned more
    than ``CROSS_ROLL`` degrees away."""
    kept: list[int] = []
    for row in range(len(boxes)):
        if kept:
            overlap = iou_matrix(boxes[[row]], boxes[kept])[0] >= CROSS_IOU
            difference = np.abs((rolls[kept] - rolls[row] + 180.0) % 360.0 - 180.0)
            if np.any(overlap & (difference > CROSS_ROLL)):
                continue
        kept.append(row)
    return np.asarray(kept, dtype=np.int64)


def nms(boxes: FloatArray, scores: FloatArray, threshold: float) -> list[int]:
    """Indices kept by greedy non-maximum suppression, best score first."""
    order = list(np.argsort(-scores, kind="stable"))
    kept: list[int] = []
    while order:
        best = order.pop(0)
        kept.append(int(best))
        if not order:
            break
        overlap = iou_matrix(boxes[[best]], boxes[order])[0]
        order = [i for i, o in zip(order, overlap, strict=True) if o < threshold]
    return kept
