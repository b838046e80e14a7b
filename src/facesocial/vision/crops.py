"""Face crops shared by the attribute and embedding heads (pure NumPy/OpenCV).

Every crop is an affine warp of the image: a ``CropBatch`` keeps, with the pixels, the 2x3
matrix mapping image pixels to crop pixels, so a head can map its outputs (mesh points,
iris centres) back to the image with ``to_image``. Out-of-image pixels are filled by
replicating the edge (``"edge"``) or with black (``"black"``).

Crop kinds (``CropSpec`` subclasses, hashable: they are the ``CropCache`` keys):

* ``SquareSpec(scale, size)``: detector box enlarged ``scale`` times about its centre, made
  square (longest side), optionally rotated upright by the eye line, resized to ``size``.
* ``AlignedSpec(size, margin)``: 4-point least-squares similarity (Umeyama) of the BlazeFace
  eyes, nose tip and mouth centre onto the ArcFace 112x112 template, scaled to ``size``.

``CropCache`` holds one image and its faces and computes each kind once, so two heads that
need the same crop (faceres embedding and faceres age/gender) share it; it also memoises
shared model forward passes (``memo``).
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

import cv2
import numpy as np
import numpy.typing as npt

from facesocial.vision.faces import Faces
from facesocial.vision.rotation import UPRIGHT_TOLERANCE_DEG, roll_degrees

UInt8Array = npt.NDArray[np.uint8]
FloatArray = npt.NDArray[np.float32]
Border = Literal["edge", "black"]
T = TypeVar("T")

# ArcFace / InsightFace 112x112 template: image-left eye (the subject's right), image-right
# eye, nose tip, image-left mouth corner, image-right mouth corner.
ARCFACE_112 = np.array(
    [
        [38.2946, 51.6963],
        [73.5318, 51.5014],
        [56.0252, 71.7366],
        [41.5493, 92.3655],
        [70.7299, 92.2041],
    ],
    dtype=np.float64,
)
# The 4 points BlazeFace gives (keypoints6[:4]: right eye, left eye, nose tip, mouth centre);
# its mouth centre corresponds to the mean of the template's two mouth corners.
ARCFACE_112_4 = np.vstack([ARCFACE_112[:3], ARCFACE_112[3:].mean(axis=0, keepdims=True)])


@dataclass(frozen=True, slots=True)
class CropBatch:
    """N crops of one kind: pixels and the image->crop affine of each."""

    images: UInt8Array  # (N, S, S, 3)
    transforms: npt.NDArray[np.float64]  # (N, 2, 3) image pixels -> crop pixels

    def __len__(self) -> int:
        return int(self.images.shape[0])

    def to_image(self, index: int, points: npt.ArrayLike) -> FloatArray:
        """Map crop-pixel points (..., 2) of crop ``index`` back to image pixels."""
        return apply_affine(invert_affine(self.transforms[index]), points)


def apply_affine(matrix: npt.ArrayLike, points: npt.ArrayLike) -> FloatArray:
    m = np.asarray(matrix, dtype=np.float64)
    p = np.asarray(points, dtype=np.float64)
    return (p @ m[:, :2].T + m[:, 2]).astype(np.float32)


def invert_affine(matrix: npt.ArrayLike) -> npt.NDArray[np.float64]:
    return np.asarray(cv2.invertAffineTransform(np.asarray(matrix, dtype=np.float64)), dtype=np.float64)


def warp_crop(rgb: UInt8Array, matrix: npt.ArrayLike, size: int, border: Border = "edge") -> UInt8Array:
    """``size``² crop through an image->crop affine.

    Bilinear warping aliases when it shrinks a lot (a 400 px face into 64 px), so the image
    is first reduced with area averaging until the remaining shrink is at most 2x. Only the
    part of the image the crop can see is read (a face crop of a 40 Mpx photo costs what the
    face region costs, not what the photo does).
    """
    m = np.asarray(matrix, dtype=np.float64).copy()
    scale = float(np.sqrt(abs(np.linalg.det(m[:, :2]))))
    rgb, m = _visible_region(rgb, m, size)
    source = rgb
    if scale < 0.5:
        factor = min(1.0, 2.0 * scale)
        height, width = rgb.shape[:2]
        new_w, new_h = max(1, round(width * factor)), max(1, round(height * factor))
        source = np.asarray(cv2.resize(rgb, (new_w, new_h), interpolation=cv2.INTER_AREA), dtype=np.uint8)
        # Pixel centres: x_small = (x + .5) * fx - .5
        fx, fy = new_w / width, new_h / height
        pre = np.array([[fx, 0.0, 0.5 * fx - 0.5], [0.0, fy, 0.5 * fy - 0.5]])
        m = _compose(m, invert_affine(pre))
    mode = cv2.BORDER_REPLICATE if border == "edge" else cv2.BORDER_CONSTANT
    out = cv2.warpAffine(
        source, m, (size, size), flags=cv2.INTER_LINEAR, borderMode=mode, borderValue=(0, 0, 0)
    )
    return np.ascontiguousarray(out, dtype=np.uint8)


def _visible_region(
    rgb: UInt8Array, matrix: npt.NDArray[np.float64], size: int
) -> tuple[UInt8Array, npt.NDArray[np.float64]]:
    """The sub-image a ``size``² crop through ``matrix`` samples (a view, no copy), and the
    matrix re-based onto it. A crop wholly outside the image keeps a 1-pixel region so the
    border rule still applies."""
    height, width = rgb.shape[:2]
    corners = apply_affine(invert_affine(matrix), [[0, 0], [size, 0], [0, size], [size, size]])
    # 2 px of margin: bilinear taps and the area pre-shrink look one pixel beyond the footprint.
    x0 = int(np.clip(np.floor(corners[:, 0].min()) - 2, 0, width - 1))
    y0 = int(np.clip(np.floor(corners[:, 1].min()) - 2, 0, height - 1))
    x1 = int(np.clip(np.ceil(corners[:, 0].max()) + 2, x0 + 1, width))
    y1 = int(np.clip(np.ceil(corners[:, 1].max()) + 2, y0 + 1, height))
    if x0 == 0 and y0 == 0 and x1 == width and y1 == height:
        return rgb, matrix
    shift = np.array([[1.0, 0.0, x0], [0.0, 1.0, y0]])  # region px -> image px
    return rgb[y0:y1, x0:x1], _compose(matrix, shift)


def _compose(outer: npt.NDArray[np.float64], inner: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """Affine ``outer ∘ inner`` (apply ``inner`` first)."""
    a = np.vstack([outer, [0.0, 0.0, 1.0]])
    b = np.vstack([inner, [0.0, 0.0, 1.0]])
    product: npt.NDArray[np.float64] = (a @ b)[:2]
    return product


def square_transform(
    box: npt.ArrayLike, scale: float, size: int, angle_rad: float = 0.0
) -> npt.NDArray[np.float64]:
    """Image->crop affine for the box enlarged ``scale``x about its centre, squared, rotated.

    ``angle_rad`` is the image-space angle of the face's horizontal (eye line); the crop is
    rotated by it so the face is upright in the crop.
    """
    x1, y1, x2, y2 = (float(v) for v in np.asarray(box, dtype=np.float64).reshape(4))
    cx, cy = (x1 + x2) / 2.0, (y1 + y2) / 2.0
    side = max(x2 - x1, y2 - y1, 1.0) * scale
    s = size / side
    cos, sin = np.cos(angle_rad) * s, np.sin(angle_rad) * s
    # crop = R(-angle)·s·(p - c) + size/2
    return np.array(
        [
            [cos, sin, size / 2.0 - cos * cx - sin * cy],
            [-sin, cos, size / 2.0 + sin * cx - cos * cy],
        ]
    )


def square_crop(
    rgb: UInt8Array, box: npt.ArrayLike, scale: float, size: int, border: Border = "edge"
) -> UInt8Array:
    """The box enlarged ``scale``x about its centre, made square, padded, resized to ``size``."""
    return warp_crop(rgb, square_transform(box, scale, size), size, border)


def umeyama_similarity(src: npt.ArrayLike, dst: npt.ArrayLike) -> npt.NDArray[np.float64]:
    """Least-squares similarity (rotation, uniform scale, translation) mapping ``src`` to ``dst``.

    Umeyama (1991), without reflection. Returns the 2x3 matrix.
    """
    a = np.asarray(src, dtype=np.float64).reshape(-1, 2)
    b = np.asarray(dst, dtype=np.float64).reshape(-1, 2)
    mean_a, mean_b = a.mean(axis=0), b.mean(axis=0)
    ca, cb = a - mean_a, b - mean_b
    cov = cb.T @ ca / len(a)
    u, d, vt = np.linalg.svd(cov)
    sign = np.eye(2)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:
        sign[1, 1] = -1.0
    rotation = u @ sign @ vt
    var_a = (ca**2).sum() / len(a)
    scale = float(np.trace(np.diag(d) @ sign) / var_a) if var_a > 0 else 1.0
    translation = mean_b - scale * rotation @ mean_a
    return np.hstack([scale * rotation, translation[:, None]])


def aligned_transform(
    points4: npt.ArrayLike, size: int = 112, margin: float = 0.0
) -> npt.NDArray[np.float64]:
    """Image->crop similarity from BlazeFace's 4 points onto the ArcFace template at ``size``.

    ``margin`` > 0 zooms out: the template occupies ``1/(1+margin)`` of the crop, centred.
    """
    template = (ARCFACE_112_4 - 56.0) / (1.0 + margin) + 56.0
    return umeyama_similarity(points4, template * (size / 112.0))


def aligned_crop_112(rgb: UInt8Array, five_points: npt.ArrayLike, size: int = 112) -> UInt8Array:
    """ArcFace-aligned crop from 4 points (eyes, nose tip, mouth centre) or the 5 template points.

    With 5 points (two mouth corners) the full ArcFace template is used.
    """
    points = np.asarray(five_points, dtype=np.float64).reshape(-1, 2)
    if len(points) == 5:
        matrix = umeyama_similarity(points, ARCFACE_112 * (size / 112.0))
    elif len(points) >= 4:
        matrix = aligned_transform(points[:4], size)
    else:
        raise ValueError(f"alignment needs 4 or 5 points, got {len(points)}")
    return warp_crop(rgb, matrix, size, "black")


def eye_transform(
    corner_a: npt.ArrayLike, corner_b: npt.ArrayLike, scale: float = 2.3, size: int = 64, mirror: bool = False
) -> npt.NDArray[np.float64]:
    """Image->crop affine of an eye: square of side ``scale`` x corner distance, centred.

    As MediaPipe/Human do, the box is axis-aligned and built from the box of the two eye
    corners; ``mirror`` flips the crop left-right (the iris model was trained on one eye side).
    """
    a, b = np.asarray(corner_a, dtype=np.float64), np.asarray(corner_b, dtype=np.float64)
    lo, hi = np.minimum(a, b), np.maximum(a, b)
    box = np.concatenate([lo, hi])
    matrix = square_transform(box, scale, size)
    if mirror:
        matrix = _compose(np.array([[-1.0, 0.0, size], [0.0, 1.0, 0.0]]), matrix)
    return matrix


def eye_crops(
    rgb: UInt8Array,
    corners: npt.ArrayLike,
    scale: float = 2.3,
    size: int = 64,
    mirror: tuple[bool, ...] = (False, True),
) -> CropBatch:
    """Eye crops for the iris model. ``corners`` (N, E, 2, 2): per face, per eye, 2 corners.

    The result has N·E crops, face-major; eye ``e`` is mirrored when ``mirror[e]``.
    """
    c = np.asarray(corners, dtype=np.float64)
    n, eyes = c.shape[0], c.shape[1]
    matrices = [
        eye_transform(c[i, e, 0], c[i, e, 1], scale, size, mirror[e]) for i in range(n) for e in range(eyes)
    ]
    return _batch(rgb, matrices, size, "edge")


def _batch(rgb: UInt8Array, matrices: list[npt.NDArray[np.float64]], size: int, border: Border) -> CropBatch:
    if not matrices:
        return CropBatch(np.zeros((0, size, size, 3), np.uint8), np.zeros((0, 2, 3)))
    images = np.stack([warp_crop(rgb, m, size, border) for m in matrices])
    return CropBatch(images, np.stack(matrices))


def eye_line_angle(faces: Faces) -> npt.NDArray[np.float64]:
    """Image-space angle of the line from the image-left eye to the image-right eye (radians).

    From BlazeFace's ``keypoints6`` when present (as MediaPipe's face-mesh ROI does), else
    the face's roll (:func:`face_rolls`).
    """
    keypoints = faces.columns.get("keypoints6")
    if keypoints is None:
        return np.radians(face_rolls(faces).astype(np.float64))
    k = np.asarray(keypoints, dtype=np.float64)
    delta = k[:, 1] - k[:, 0]  # subject's left eye (image right) minus right eye (image left)
    return np.asarray(np.arctan2(delta[:, 1], delta[:, 0]), dtype=np.float64)


def face_rolls(faces: Faces) -> npt.NDArray[np.float32]:
    """Each face's roll in degrees (:mod:`.rotation`): the ``roll`` column (from landmarks),
    else the detector's eye keypoints (``keypoints6`` BlazeFace, ``keypoints5`` RetinaFace:
    [0] the subject's right eye, [1] the left), else 0 (e.g. HOG finds upright faces only)."""
    if "roll" in faces.columns:
        return np.asarray(faces.columns["roll"], dtype=np.float32)
    for column in ("keypoints6", "keypoints5"):
        if column in faces.columns:
            points = np.asarray(faces.columns[column], dtype=np.float32)
            return roll_degrees(points[:, 0], points[:, 1])
    return np.zeros(len(faces), dtype=np.float32)


def upright_angles(faces: Faces) -> npt.NDArray[np.float64]:
    """Rotation (radians) that turns each face upright in a square crop: its roll when it is
    turned more than ``UPRIGHT_TOLERANCE_DEG``, else 0 (the crop of an upright face is
    exactly what the heads were measured on)."""
    rolls = face_rolls(faces).astype(np.float64)
    return np.where(np.abs(rolls) > UPRIGHT_TOLERANCE_DEG, np.radians(rolls), 0.0)


class CropSpec:
    """A crop kind with its parameters; equal specs share one computation in ``CropCache``."""

    size: int

    def compute(self, rgb: UInt8Array, faces: Faces) -> CropBatch:
        raise NotImplementedError


@dataclass(frozen=True, slots=True)
class SquareSpec(CropSpec):
    """Square crop about the box. ``upright``: always rotated by the eye line (MediaPipe's
    face-mesh ROI); otherwise rotated only for faces turned beyond ``UPRIGHT_TOLERANCE_DEG``
    (sideways or upside-down faces reach every head upright)."""

    scale: float
    size: int
    upright: bool = False
    border: Border = "edge"

    def compute(self, rgb: UInt8Array, faces: Faces) -> CropBatch:
        angles = eye_line_angle(faces) if self.upright else upright_angles(faces)
        matrices = [
            square_transform(box, self.scale, self.size, float(angle))
            for box, angle in zip(faces.boxes, angles, strict=True)
        ]
        return _batch(rgb, matrices, self.size, self.border)


@dataclass(frozen=True, slots=True)
class AlignedSpec(CropSpec):
    """ArcFace-aligned crop from ``keypoints6`` (BlazeFace, 4 points) or ``keypoints5``
    (RetinaFace, the 5 template points); faces with neither fall back to a square crop."""

    size: int
    margin: float = 0.0
    fallback_scale: float = 1.4

    def compute(self, rgb: UInt8Array, faces: Faces) -> CropBatch:
        keypoints = faces.columns.get("keypoints6")
        corners = faces.columns.get("keypoints5")  # RetinaFace: both mouth corners
        matrices = []
        for i, box in enumerate(faces.boxes):
            if keypoints is not None:
                matrices.append(aligned_transform(np.asarray(keypoints[i])[:4], self.size, self.margin))
            elif corners is not None:
                template = (ARCFACE_112 - 56.0) / (1.0 + self.margin) + 56.0
                matrices.append(umeyama_similarity(np.asarray(corners[i]), template * (self.size / 112.0)))
            else:
                matrices.append(square_transform(box, self.fallback_scale, self.size))
        return _batch(rgb, matrices, self.size, "black")


class CropCache:
    """One image and its faces: each crop kind (and shared forward pass) computed once."""

    def __init__(self, rgb: UInt8Array, faces: Faces) -> None:
        self.rgb = rgb
        self.faces = faces
        self._memo: dict[Hashable, Any] = {}
        self.computed: list[Hashable] = []  # keys in order of computation (for tests/timing)

    def get(self, spec: CropSpec) -> CropBatch:
        return self.memo(("crop", spec), lambda: spec.compute(self.rgb, self.faces))

    def memo(self, key: Hashable, compute: Callable[[], T]) -> T:
        """Value for ``key``, computed on first use (e.g. one faceres forward for 2 heads)."""
        if key not in self._memo:
            self._memo[key] = compute()
            self.computed.append(key)
        value: T = self._memo[key]
        return value


def cache_for(rgb: UInt8Array, faces: Faces, cache: CropCache | None) -> CropCache:
    """The caller's cache, checked to belong to this image and faces, or a new one."""
    if cache is None:
        return CropCache(rgb, faces)
    if cache.rgb is not rgb or cache.faces is not faces:
        raise ValueError("the CropCache was built for another image or face set")
    return cache
