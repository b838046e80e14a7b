"""Labelled test pictures composed from real faces: pasted at known places, sizes and rolls.

Used by ``facesocial eval group-photos`` and ``facesocial eval rotation``; nothing here is
tuned to individual files. Face sources:

* LFW deep-funneled images (``lfw_deepfunneled/lfw-deepfunneled/<Name>/*.jpg``, 250×250, one
  centred face). The ground-truth box of each source face is dlib's HOG detection nearest
  the centre (a detector independent of the ones under test; 297 of 300 LFW images have one
  within 30 px of the centre). Images without one are skipped.
* imglab-labelled photos (``dlib_faces_detection``) as backgrounds, with their hand-drawn
  boxes (``ignore`` boxes stay ignored).

A pasted face is the region around its box (box ×2.2) blended in with a feathered ellipse, so
no hard square edge and none of the source's other people come along.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import cv2
import dlib
import numpy as np
import numpy.typing as npt

from facesocial.vision.geometry import iou_matrix

UInt8Array = npt.NDArray[np.uint8]
FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class SourceFace:
    rgb: UInt8Array
    box: FloatArray  # xyxy in ``rgb``
    name: str

    @property
    def side(self) -> float:
        return float(math.sqrt((self.box[2] - self.box[0]) * (self.box[3] - self.box[1])))

    @property
    def centre(self) -> tuple[float, float]:
        return float((self.box[0] + self.box[2]) / 2), float((self.box[1] + self.box[3]) / 2)


@dataclass(frozen=True, slots=True)
class TruthFace:
    """A face in a composed picture: centre, side (pixels, of the face's own upright box), roll."""

    cx: float
    cy: float
    side: float
    roll: float
    ignore: bool = False
    source: str = ""

    @property
    def box(self) -> FloatArray:
        half = self.side / 2.0
        return np.array([self.cx - half, self.cy - half, self.cx + half, self.cy + half])


def lfw_faces(root: Path, count: int, seed: int) -> list[SourceFace]:
    """``count`` LFW images of different people (fixed random choice), with their HOG box."""
    people = sorted(p for p in root.iterdir() if p.is_dir())
    order = np.random.default_rng(seed).permutation(len(people))
    detector = dlib.get_frontal_face_detector()
    faces: list[SourceFace] = []
    for index in order:
        images = sorted(people[int(index)].glob("*.jpg"))
        if not images:
            continue
        bgr = cv2.imread(str(images[0]))
        if bgr is None:
            continue
        rgb = np.ascontiguousarray(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), dtype=np.uint8)
        box = centred_hog_box(detector, rgb)
        if box is not None:
            faces.append(SourceFace(rgb, box, images[0].stem))
        if len(faces) >= count:
            break
    return faces


def centred_hog_box(detector: dlib.fhog_object_detector, rgb: UInt8Array) -> FloatArray | None:
    """dlib HOG's face nearest the image centre if it is within 30 px of it, else None."""
    rects, _, _ = detector.run(rgb, 0, 0.0)
    height, width = rgb.shape[:2]
    best: FloatArray | None = None
    best_distance = 30.0
    for r in rects:
        box = np.array([r.left(), r.top(), r.right() + 1, r.bottom() + 1], dtype=np.float64)
        distance = math.hypot((box[0] + box[2]) / 2 - width / 2, (box[1] + box[3]) / 2 - height / 2)
        if distance < best_distance:
            best, best_distance = box, distance
    return best


def paste_face(
    canvas: UInt8Array, face: SourceFace, centre: tuple[float, float], side: float, roll: float
) -> None:
    """Blend ``face`` into ``canvas`` (in place): its box centred at ``centre``, ``side`` pixels,
    turned by ``roll`` degrees (clockwise as seen, the platform's roll convention)."""
    source, (fx, fy), face_side = face.rgb, face.centre, face.side
    if side / face_side < 0.5:  # area-average first: bilinear warping alone aliases when shrinking
        factor = 2.0 * side / face_side
        source = np.asarray(cv2.resize(source, None, fx=factor, fy=factor, interpolation=cv2.INTER_AREA))
        fx, fy, face_side = fx * factor, fy * factor, face_side * factor
    scale = side / face_side
    reach = math.ceil(side * 1.6) + 2
    h, w = canvas.shape[:2]
    ax0, ay0 = max(0, int(centre[0]) - reach), max(0, int(centre[1]) - reach)
    ax1, ay1 = min(w, int(centre[0]) + reach), min(h, int(centre[1]) + reach)
    if ax1 <= ax0 or ay1 <= ay0:
        return
    # cv2's angle is counter-clockwise; the platform's roll is clockwise.
    matrix = np.asarray(cv2.getRotationMatrix2D((fx, fy), -roll, scale), dtype=np.float64)
    matrix[:, 2] += np.array([centre[0] - fx - ax0, centre[1] - fy - ay0])
    size = (ax1 - ax0, ay1 - ay0)
    warped = cv2.warpAffine(source, matrix, size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    # The face and its hair, not the source's background: an ellipse a little wider than the
    # (tight) HOG box and taller, mostly upward, feathered.
    half = face_side / 2.0
    mask: npt.NDArray[np.float32] = np.zeros(source.shape[:2], np.float32)
    axes = (max(1, int(half * 1.1)), max(1, int(half * 1.4)))
    cv2.ellipse(mask, (int(fx), int(fy - 0.15 * half)), axes, 0, 0, 360, 1.0, -1)
    mask = np.asarray(cv2.GaussianBlur(mask, (0, 0), max(1.0, half * 0.12)), dtype=np.float32)
    alpha = cv2.warpAffine(mask, matrix, size, flags=cv2.INTER_LINEAR)[..., None]
    region = canvas[ay0:ay1, ax0:ax1].astype(np.float32)
    canvas[ay0:ay1, ax0:ax1] = (region * (1 - alpha) + warped.astype(np.float32) * alpha).astype(np.uint8)


def background(
    photo: UInt8Array, truth: list[TruthFace], width: int, height: int
) -> tuple[UInt8Array, list[TruthFace]]:
    """``photo`` scaled to cover ``width``×``height`` (centre crop), with its faces moved along."""
    ph, pw = photo.shape[:2]
    scale = max(width / pw, height / ph)
    resized = cv2.resize(photo, (math.ceil(pw * scale), math.ceil(ph * scale)), interpolation=cv2.INTER_CUBIC)
    ox, oy = (resized.shape[1] - width) // 2, (resized.shape[0] - height) // 2
    canvas = np.ascontiguousarray(resized[oy : oy + height, ox : ox + width], dtype=np.uint8)
    moved = []
    for face in truth:
        cx, cy = face.cx * scale - ox, face.cy * scale - oy
        if 0 <= cx < width and 0 <= cy < height:
            moved.append(TruthFace(cx, cy, face.side * scale, face.roll, face.ignore, face.source))
    return canvas, moved


@dataclass(frozen=True, slots=True)
class Match:
    """Result of matching detections to truth in one picture."""

    found: npt.NDArray[np.bool_]  # per truth face
    false_positives: int
    matched_detection: npt.NDArray[np.int64]  # per truth face, -1 when missed


def match_faces(
    boxes: npt.ArrayLike, confidence: npt.ArrayLike, truth: list[TruthFace], *, centre_tolerance: float = 0.5
) -> Match:
    """Greedy matching, best detection first: a detection matches a truth face when its centre
    is within ``centre_tolerance``·side of the face's and its size (√(w·h)) is within 2× of
    the face's side. Box-convention-free (pasted and turned faces have no drawn box); for
    upright faces it agrees with IoU ≥ 0.5 on ../shared/data/dlib_faces_detection."""
    b = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    order = np.argsort(-np.asarray(confidence, dtype=np.float64), kind="stable")
    found = np.zeros(len(truth), dtype=bool)
    matched = np.full(len(truth), -1, dtype=np.int64)
    false_positives = 0
    centres = (b[:, :2] + b[:, 2:]) / 2.0
    sides = np.sqrt(np.clip(b[:, 2] - b[:, 0], 0, None) * np.clip(b[:, 3] - b[:, 1], 0, None))
    for row in order:
        best, best_distance = -1, float("inf")
        for index, face in enumerate(truth):
            if found[index] and not face.ignore:
                continue
            distance = math.hypot(centres[row, 0] - face.cx, centres[row, 1] - face.cy)
            ratio = sides[row] / max(face.side, 1e-6)
            if distance <= centre_tolerance * face.side and 0.5 <= ratio <= 2.0 and distance < best_distance:
                best, best_distance = index, distance
        if best < 0:
            false_positives += 1
        elif not truth[best].ignore:
            found[best] = True
            matched[best] = int(row)
    return Match(found, false_positives, matched)


def free_spot(
    rng: np.random.Generator, width: int, height: int, side: float, taken: list[TruthFace]
) -> tuple[float, float] | None:
    """A centre where a face of ``side`` fits inside the picture, clear of ``taken`` faces."""
    margin = side * 0.9
    if width <= 2 * margin or height <= 2 * margin:
        return None
    for _ in range(200):
        cx, cy = rng.uniform(margin, width - margin), rng.uniform(margin, height - margin)
        candidate = np.array([[cx - margin, cy - margin, cx + margin, cy + margin]])
        if not taken:
            return cx, cy
        others = np.array(
            [
                [f.cx - f.side * 0.9, f.cy - f.side * 0.9, f.cx + f.side * 0.9, f.cy + f.side * 0.9]
                for f in taken
            ]
        )
        if float(iou_matrix(candidate, others).max()) == 0.0:
            return cx, cy
    return None
