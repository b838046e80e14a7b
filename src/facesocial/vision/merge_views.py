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
* **disputed orientation**: BlazeFace fires on many upside-down and sideways faces in the
  upright pass too, with keypoints calling them upright, and scores a face seen the wrong way
  round almost as high as the right way, so its looks alone pick the wrong orientation for
  some faces, upright ones included. Sure detections overlapped by a rival turned another way
  are therefore looked at in all four turns, and wherever the best look or the rival turns a
  detection by more than 45° from its own roll, an **orientation judge** (dlib's upright-only
  HOG detector, :mod:`.orientation`) decides between the two. A sure detection found turned
  becomes a turned detection (scored by its look); a turned one whose own roll wins keeps it
  and the look at that roll.
* **owned places**: a sure detection confirmed upright (no rival, or the judge's verdict),
  passing its look and large enough in the whole-photo view to be boxed well there, drops the
  doubtful detections overlapping it whatever their score: they are the same face, boxed less
  well by a tile or a turned view.
* **mis-sized boxes**: where a look finds the face much smaller or larger than the candidate's
  box (coarse levels can box a small face 2-2.5x too large), the box moves onto the face.

Finally all candidates are merged by non-maximum suppression, and a detection overlapping a
stronger one turned more than 60° away from it is dropped (one patch of a photo does not hold
two faces turned different ways, but a face seen upside down can fire beside the real one).
Measurements behind the constants: docs/accuracy.md, "Faces at any roll and size".
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple, Protocol

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
# A look whose face is this much smaller or larger than the candidate's box replaces the box:
# at coarse pyramid levels BlazeFace can report a small face inside a box 2-2.5x its size
# (obama2.jpg at half size on an 8000x4500 canvas: a 400 px box around a 170 px face, kept
# beside the real detection since their IoU is 0.18). Within these bounds boxes are kept, so
# the crops the heads were measured on do not move.
BOX_RATIO_BOUNDS = (0.7, 1.4)
# Keypoints farther than this from upright (degrees) make a detection doubtful.
TURNED_ROLL = 45.0


@dataclass(frozen=True, slots=True)
class Look:
    """A candidate seen again (``second_look``): the detection nearest the view's centre."""

    score: float  # 0 when no face is near the centre
    keypoints: FloatArray | None  # (K, 2) photo pixels
    # Its size over the size the candidate's box promised (1 when the box was right), and its
    # centre in photo pixels.
    size_ratio: float = 1.0
    centre: tuple[float, float] | None = None


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


class OrientationJudge(Protocol):
    """Settles which of two rolls is a face's true one (:mod:`facesocial.vision.orientation`)."""

    def prefer(
        self, rgb: UInt8Array, boxes: npt.ArrayLike, rolls_a: npt.ArrayLike, rolls_b: npt.ArrayLike
    ) -> npt.NDArray[np.int8]:
        """Per face: +1 roll b, −1 roll a, 0 undecided."""
        ...


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
    # (box x1 y1 x2 y2, roll, turn) → the look
    looks: dict[tuple[float, ...], Look] = field(default_factory=dict)
    model_inputs: int = 0  # second-look inputs run

    def any_sure(self, min_confidence: float) -> bool:
        """Whether an upright whole-photo view found a face scoring at least ``min_confidence``."""
        return any(
            bool(np.any(~doubtful & (scores >= min_confidence)))
            for doubtful, scores in zip(self.doubtful, self.scores, strict=True)
        )

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
    judge: OrientationJudge | None = None,
) -> Faces:
    """One face per face: the module's merge rules, largest first, photo pixels.

    Without a ``judge``, upright-pass detections are looked at in their own orientation only
    and turned ones take their best look's.
    """
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
    # Detections from turned views or with turned keypoints: a sure detection overlapped by one
    # turned differently may be a face seen the wrong way round.
    rivals = np.flatnonzero(turned & large_enough & (scores >= floor))
    unsure = unsure[nms(boxes[unsure], scores[unsure], nms_iou)]
    confident = sure[scores[sure] >= min_confidence]
    if len(unsure) and len(confident):
        # Covered only by a sure detection at least as strong: a sideways face can also fire
        # weakly, wrongly oriented, in the upright pass; the stronger turned one still counts.
        overlap = iou_matrix(boxes[unsure], boxes[confident]) >= nms_iou
        stronger = scores[confident][None, :] >= scores[unsure][:, None]
        unsure = unsure[~np.any(overlap & stronger, axis=1)]
    if len(unsure):
        best, straight = second_look(
            model, rgb, boxes[unsure], rolls[unsure], keypoints[unsure], turned[unsure], found, batch
        )
        # The best look's orientation, unless the judge says the detection's own was right.
        own = _disputed(model, rgb, boxes[unsure], rolls[unsure], best.keypoints, judge)[0] < 0
        scores[unsure] = np.minimum(scores[unsure], np.where(own, straight.scores, best.scores))
        keypoints[unsure] = np.where(own[:, None, None], keypoints[unsure], best.keypoints)
        boxes[unsure] = np.where(own[:, None], straight.boxes, best.boxes)
    checked = sure[scores[sure] >= floor]
    if len(checked):
        # Looked at in all four turns when a judge can settle a dispute: an upside-down or
        # sideways face can fire in the upright pass with keypoints calling it upright, and is
        # then found the right way round in a turned view too (a rival). Half the upright faces
        # of dlib_faces_detection and LFW have a rival (a face fires upside down as well).
        disputable = np.zeros(len(checked), dtype=bool)
        against = rolls[checked]  # the strongest rival's roll, where there is one
        if judge is not None and len(rivals):
            overlap = iou_matrix(boxes[checked], boxes[rivals]) >= nms_iou
            other_way = np.abs(_wrap(rolls[rivals][None, :] - rolls[checked][:, None])) > TURNED_ROLL
            disputable = np.any(overlap & other_way, axis=1)
            strength = np.where(overlap & other_way, scores[rivals][None, :], -1.0)
            against = np.where(disputable, rolls[rivals][np.argmax(strength, axis=1)], against)
        best, straight = second_look(
            model, rgb, boxes[checked], rolls[checked], keypoints[checked], disputable, found, batch
        )
        # Turned after all: a turned detection (doubtful), scored, keyed and boxed by its best
        # look. Otherwise the veto reads the look at its own roll, and the face keeps the
        # single pass's keypoints (the crops the heads were measured on) unless that look
        # found its box mis-sized and moved it (keypoints move with it).
        verdict, disputed = _disputed(model, rgb, boxes[checked], rolls[checked], best.keypoints, judge)
        # Where the looks agree with the detection but a rival disagrees, the judge settles
        # that too: BlazeFace scores a face seen upside down about as high as upright, so
        # agreeing looks prove nothing (LFW faces turned by 180° were kept upside down).
        challenged = np.flatnonzero(disputable & ~disputed)
        if judge is not None and len(challenged):
            rows = checked[challenged]
            verdict[challenged] = judge.prefer(rgb, boxes[rows], rolls[rows], against[challenged])
            disputed[challenged] = True
            turns = np.round(_wrap(against[challenged] - rolls[rows]) / 90.0) % 4 * 90.0
            for row, index, turn in zip(challenged, rows, turns, strict=True):
                if verdict[row] > 0:  # the rival's orientation: the look at that quarter turn
                    seen = _looked(
                        [found.looks[_look_key(boxes[index], rolls[index], float(turn))]],
                        boxes[[index]],
                        keypoints[[index]],
                    )
                    best.scores[row], best.keypoints[row], best.boxes[row] = (
                        seen.scores[0],
                        seen.keypoints[0],
                        seen.boxes[0],
                    )
        reoriented = verdict > 0
        look = np.where(reoriented, best.scores, straight.scores)
        vetoed = reoriented | (look < VETO)
        scores[checked[vetoed]] = np.minimum(scores[checked[vetoed]], look[vetoed])
        moved = np.any(straight.boxes != boxes[checked], axis=1) & ~reoriented
        keypoints[checked[reoriented]] = best.keypoints[reoriented]
        keypoints[checked[moved]] = straight.keypoints[moved]
        boxes[checked] = np.where(reoriented[:, None], best.boxes, straight.boxes)
        # A sure detection that passed its look and is confirmed upright (no rival, or the
        # judge's verdict) owns its place: doubtful detections overlapping it are dropped
        # whatever their score. They are the same face seen in a tile or a turned
        # view, boxed less well (and on LFW, 1 in 30 images, sometimes the wrong way round),
        # and winning by score they changed 138 of 3,811 LFW embeddings and cost 1 point of
        # verification accuracy. Scores still settle it where the judge could not decide (a
        # sideways face firing weakly, with upright keypoints, in the upright pass) or found it
        # turned (then the turned views box and key it better than the upright pass), and
        # faces too small in the whole-photo view to be boxed well there (below the model's
        # reliable size: a 350 px face in an 8000 px photo is 8 px in BlazeFace's input).
        if judge is not None and len(unsure):
            whole_view = model.geometry.side / max(height, width)
            sides = np.sqrt(np.prod(boxes[checked, 2:] - boxes[checked, :2], axis=1)) * whole_view
            settled = checked[
                (scores[checked] >= min_confidence)
                & (~disputed | (verdict < 0))
                & (sides >= model.geometry.min_face)
            ]
            if len(settled):
                covered = np.any(iou_matrix(boxes[unsure], boxes[settled]) >= nms_iou, axis=1)
                unsure = unsure[~covered]
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
) -> tuple[Looked, Looked]:
    """Each candidate seen again, turned upright by its roll (and, where ``turned``, by its roll
    plus each of ``SECOND_LOOK_TURNS``): the best look and the look at the candidate's own
    roll (turn 0). Looks are remembered in ``found``."""
    side = model.geometry.side
    wanted: list[list[tuple[float, ...]]] = []
    for box, roll, all_turns in zip(boxes, rolls, turned, strict=True):
        wanted.append([_look_key(box, roll, turn) for turn in (SECOND_LOOK_TURNS if all_turns else (0.0,))])
    todo = list(dict.fromkeys(key for keys in wanted for key in keys if key not in found.looks))
    views: list[UInt8Array] = []
    matrices: list[npt.NDArray[np.float64]] = []
    for key in todo:
        x1, y1, x2, y2, roll, turn = key
        centre = ((x1 + x2) / 2.0, (y1 + y2) / 2.0)
        matrix = upright_transform(centre, roll + turn, SECOND_LOOK_FACE * side / _side(key), side)
        matrices.append(matrix)
        views.append(warp_crop(rgb, matrix, side, "black"))
    for start in range(0, len(views), batch):
        detections = model.run_tiles(np.stack(views[start : start + batch]), 0.05)
        found.model_inputs += len(detections)
        for offset, detection in enumerate(detections):
            index = start + offset
            found.looks[todo[index]] = _centre_detection(detection, side, invert_affine(matrices[index]))
    chosen = [max((found.looks[key] for key in keys), key=lambda look: look.score) for keys in wanted]
    own = [found.looks[keys[0]] for keys in wanted]
    return _looked(chosen, boxes, keypoints), _looked(own, boxes, keypoints)


class Looked(NamedTuple):
    """One look per candidate: its score (0 when no face was near the centre), keypoints (the
    candidate's own when none) and box (the candidate's, moved and resized to the look's face
    where their sizes disagree beyond ``BOX_RATIO_BOUNDS``)."""

    scores: FloatArray  # (N,)
    keypoints: FloatArray  # (N, K, 2) photo pixels
    boxes: FloatArray  # (N, 4) xyxy photo pixels


def _looked(looks: list[Look], boxes: FloatArray, keypoints: FloatArray) -> Looked:
    scores = np.array([look.score for look in looks], dtype=np.float32)
    points = keypoints.copy()
    moved = boxes.copy()
    low, high = BOX_RATIO_BOUNDS
    for row, look in enumerate(looks):
        if look.keypoints is not None:
            points[row] = look.keypoints
        if look.centre is not None and not low <= look.size_ratio <= high:
            half = (boxes[row, 2:] - boxes[row, :2]) * look.size_ratio / 2.0
            moved[row] = np.concatenate([np.subtract(look.centre, half), np.add(look.centre, half)])
    return Looked(scores, points, moved)


def _look_key(box: FloatArray, roll: float, turn: float) -> tuple[float, ...]:
    """The key of a look in ``Candidates.looks``: (box x1 y1 x2 y2, roll, turn), rounded."""
    return (*np.round(box, 2).tolist(), round(float(roll), 2), turn)


def _side(key: tuple[float, ...]) -> float:
    """The face side (px) a look key's box promises: the root of its area, at least 1."""
    x1, y1, x2, y2 = key[:4]
    return max(float(np.sqrt(max((x2 - x1) * (y2 - y1), 1.0))), 1.0)


def _centre_detection(result: TileDetections, side: int, view_to_photo: npt.NDArray[np.float64]) -> Look:
    """The best detection centred near the view's centre, in photo pixels."""
    if len(result.scores) == 0:
        return Look(0.0, None)
    centres = (result.boxes[:, :2] + result.boxes[:, 2:]) / 2.0
    near = np.flatnonzero(np.linalg.norm(centres - side / 2.0, axis=1) < 0.3 * SECOND_LOOK_FACE * side)
    if len(near) == 0:
        return Look(0.0, None)
    chosen = int(near[np.argmax(result.scores[near])])
    width, height = result.boxes[chosen, 2:] - result.boxes[chosen, :2]
    ratio = float(np.sqrt(max(float(width * height), 1.0))) / (SECOND_LOOK_FACE * side)
    cx, cy = apply_affine(view_to_photo, centres[chosen][None, :])[0]
    return Look(
        float(result.scores[chosen]),
        apply_affine(view_to_photo, result.keypoints[chosen]),
        ratio,
        (float(cx), float(cy)),
    )


def _disputed(
    model: TileModel,
    rgb: UInt8Array,
    boxes: FloatArray,
    rolls: FloatArray,
    seen: FloatArray,
    judge: OrientationJudge | None,
) -> tuple[npt.NDArray[np.int8], BoolArray]:
    """Where the best look's keypoints ``seen`` turn a detection by more than ``TURNED_ROLL``
    from its own ``rolls`` (*disputed*, the second array): the judge's verdict (+1 the look's
    roll, −1 the detection's, 0 undecided); 0 elsewhere, and 0 everywhere without a judge."""
    verdict = np.zeros(len(boxes), dtype=np.int8)
    if judge is None or len(boxes) == 0:
        return verdict, np.zeros(len(boxes), dtype=bool)
    right, left = model.eye_indices
    seen_rolls = roll_degrees(seen[:, right], seen[:, left])
    disputed = np.abs(_wrap(seen_rolls - rolls)) > TURNED_ROLL
    rows = np.flatnonzero(disputed)
    if len(rows):
        verdict[rows] = judge.prefer(rgb, boxes[rows], rolls[rows], seen_rolls[rows])
    return verdict, disputed


def _wrap(degrees: FloatArray) -> FloatArray:
    """Angles wrapped into [-180, 180)."""
    return np.asarray((degrees + 180.0) % 360.0 - 180.0, dtype=np.float32)


def one_orientation(boxes: FloatArray, rolls: FloatArray) -> npt.NDArray[np.int64]:
    """Indices (best first, as given) without detections overlapping a stronger one turned more
    than ``CROSS_ROLL`` degrees away."""
    kept: list[int] = []
    for row in range(len(boxes)):
        if kept:
            overlap = iou_matrix(boxes[[row]], boxes[kept])[0] >= CROSS_IOU
            difference = np.abs(_wrap(rolls[kept] - rolls[row]))
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
