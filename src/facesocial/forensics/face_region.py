"""The face's blending ellipse and a polar view of the pixels around it.

Face swaps (autoencoder "Deepfakes", FaceSwap, DFDC's methods) and self-blended images paste an
inner face — eyebrows to chin, cheek to cheek — into a target frame through a soft mask; the
forensic signals of :mod:`.blending` look for a change of colour or noise across that mask's edge.
With only the 5 dlib landmarks (eye corners, nose base) the mask is modelled as an ellipse in the
face's own frame: ``u`` along the eye line, ``v`` perpendicular to it (down the face), ``d`` the
distance between the eye centres. From facial proportions (eyebrows ≈ 0.35 d above the eye line,
chin ≈ 1.7 d below it, cheek-to-cheek ≈ 2 d):

* centre = eye midpoint + 0.65 d · v
* semi-axes 0.95 d along ``u`` and 1.1 d along ``v``

A polar grid ``(radius, angle)`` in units of that ellipse (radius 1 = on the ellipse) lets every
signal compare "just inside" with "just outside" along the whole boundary.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float32]
UInt8Array = npt.NDArray[np.uint8]

CENTRE_BELOW_EYES = 0.65
SEMI_AXIS_U = 0.95
SEMI_AXIS_V = 1.1
# Analysis scale: crops are shrunk (area averaging) until the eye distance is at most this many
# pixels, which bounds the cost per face and makes noise statistics of large and small faces
# comparable; smaller faces keep their native pixels.
MAX_EYE_DISTANCE_PX = 96.0
# Below this eye distance (a face of about 50 px) the pixel statistics are too noisy to report.
MIN_EYE_DISTANCE_PX = 20.0
# Crop margin around the ellipse, in ellipse radii: the polar grid reaches radius 1.5.
CROP_RADIUS = 1.7


@dataclass(frozen=True, slots=True)
class FaceEllipse:
    """The blending ellipse of one face, in image pixels."""

    centre: npt.NDArray[np.float64]  # (2,) x, y
    u: npt.NDArray[np.float64]  # (2,) unit vector along the eye line (towards the image right when upright)
    v: npt.NDArray[np.float64]  # (2,) unit vector down the face
    eye_distance: float  # d, px

    @property
    def semi_axes(self) -> tuple[float, float]:
        return SEMI_AXIS_U * self.eye_distance, SEMI_AXIS_V * self.eye_distance

    @property
    def reliable(self) -> bool:
        """Large enough for pixel statistics (eye distance ≥ ``MIN_EYE_DISTANCE_PX``)."""
        return self.eye_distance >= MIN_EYE_DISTANCE_PX

    def points(self, radius: npt.ArrayLike, angle: npt.ArrayLike) -> npt.NDArray[np.float64]:
        """Image points (..., 2) at ``radius`` (ellipse units) and ``angle`` (rad, 0 = along u)."""
        r = np.asarray(radius, dtype=np.float64)[..., None]
        t = np.asarray(angle, dtype=np.float64)[..., None]
        a, b = self.semi_axes
        return self.centre + r * (a * np.cos(t) * self.u + b * np.sin(t) * self.v)

    def radius_of(self, xy: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        """Elliptical radius (ellipse units) of image points (..., 2)."""
        a, b = self.semi_axes
        rel = xy - self.centre
        return np.asarray(np.hypot(rel @ self.u / a, rel @ self.v / b), dtype=np.float64)


def ellipse_from_landmarks(box: npt.ArrayLike, landmarks5: npt.ArrayLike | None) -> FaceEllipse:
    """The face ellipse from dlib's 5 points ((5, 2): left eye outer/inner, right eye outer/inner,
    nose base; :data:`facesocial.vision.faces.LANDMARK_NAMES_5`), or from the box alone.

    Without usable landmarks the box stands in: eye distance 0.4 × box width, centre 5 % of the
    box height below the box centre (BlazeFace boxes on LFW: ratio 0.39–0.41).
    """
    x1, y1, x2, y2 = (float(v) for v in np.asarray(box, dtype=np.float64).reshape(4))
    if landmarks5 is not None:
        lm = np.asarray(landmarks5, dtype=np.float64).reshape(5, 2)
        left_eye, right_eye = lm[0:2].mean(axis=0), lm[2:4].mean(axis=0)
        line = left_eye - right_eye
        distance = float(np.hypot(*line))
        if distance >= 1.0 and np.all(np.isfinite(lm)):
            u = line / distance
            v = np.array([-u[1], u[0]])
            mid = (left_eye + right_eye) / 2.0
            return FaceEllipse(mid + CENTRE_BELOW_EYES * distance * v, u, v, distance)
    width = max(x2 - x1, 1.0)
    centre = np.array([(x1 + x2) / 2.0, (y1 + y2) / 2.0 + 0.05 * (y2 - y1)])
    return FaceEllipse(centre, np.array([1.0, 0.0]), np.array([0.0, 1.0]), 0.4 * width)


@dataclass(frozen=True, slots=True)
class FacePatch:
    """The pixels around one face at analysis scale, and where they sit in the image.

    ``rgb`` is the crop (H, W, 3) uint8, ``valid`` (H, W) bool marks pixels that lie inside the
    image (the rest is edge padding), ``ellipse`` is expressed in crop pixels. A crop pixel
    (cx, cy) is the image point (x0 + (cx + .5) / scale - .5, y0 + (cy + .5) / scale - .5).
    """

    rgb: UInt8Array
    valid: npt.NDArray[np.bool_]
    ellipse: FaceEllipse
    x0: int
    y0: int
    scale: float


def face_patch(rgb: UInt8Array, ellipse: FaceEllipse) -> FacePatch:
    """Cut the region the polar grid reaches (radius ``CROP_RADIUS``) and shrink it to analysis scale."""
    height, width = rgb.shape[:2]
    a, b = ellipse.semi_axes
    reach = CROP_RADIUS * max(a, b)
    cx, cy = ellipse.centre
    x0, y0 = int(np.floor(cx - reach)), int(np.floor(cy - reach))
    x1, y1 = int(np.ceil(cx + reach)) + 1, int(np.ceil(cy + reach)) + 1
    # Read only the visible part; pad the rest by edge replication, remembered in ``valid``.
    vx0, vy0, vx1, vy1 = max(x0, 0), max(y0, 0), min(x1, width), min(y1, height)
    if vx1 <= vx0 or vy1 <= vy0:
        vx0, vy0, vx1, vy1 = 0, 0, min(1, width), min(1, height)
    region = rgb[vy0:vy1, vx0:vx1]
    pad = ((vy0 - y0, y1 - vy1), (vx0 - x0, x1 - vx1))
    pad = tuple((max(p, 0), max(q, 0)) for p, q in pad)  # type: ignore[assignment]
    crop = np.pad(region, (*pad, (0, 0)), mode="edge")
    valid = np.pad(np.ones(region.shape[:2], dtype=bool), pad, mode="constant", constant_values=False)
    scale = min(1.0, MAX_EYE_DISTANCE_PX / max(ellipse.eye_distance, 1e-6))
    if scale < 1.0:
        size = (max(8, round(crop.shape[1] * scale)), max(8, round(crop.shape[0] * scale)))
        crop = np.asarray(cv2.resize(crop, size, interpolation=cv2.INTER_AREA), dtype=np.uint8)
        valid = cv2.resize(valid.astype(np.uint8), size, interpolation=cv2.INTER_NEAREST).astype(bool)
    sx = crop.shape[1] / (x1 - x0)
    sy = crop.shape[0] / (y1 - y0)
    s = (sx + sy) / 2.0
    centre = (ellipse.centre - np.array([x0, y0]) + 0.5) * np.array([sx, sy]) - 0.5
    local = FaceEllipse(centre, ellipse.u, ellipse.v, ellipse.eye_distance * s)
    return FacePatch(np.ascontiguousarray(crop, dtype=np.uint8), valid, local, x0, y0, s)


@dataclass(frozen=True, slots=True)
class PolarGrid:
    """Sampling positions of a polar view: ``radii`` (R,) in ellipse units, ``angles`` (T,) rad."""

    radii: npt.NDArray[np.float64]
    angles: npt.NDArray[np.float64]

    @classmethod
    def default(cls) -> PolarGrid:
        # 0.05 radius steps from 0.5 to 1.5; 64 angles (8 sectors of 8).
        return cls(np.round(np.linspace(0.5, 1.5, 21), 4), np.linspace(0.0, 2 * np.pi, 64, endpoint=False))

    def band(self, low: float, high: float) -> npt.NDArray[np.bool_]:
        """(R,) mask of the radii in [low, high]."""
        return (self.radii >= low - 1e-9) & (self.radii <= high + 1e-9)


def polar_sample(
    image: npt.NDArray[np.float32], valid: npt.NDArray[np.bool_], ellipse: FaceEllipse, grid: PolarGrid
) -> tuple[FloatArray, npt.NDArray[np.bool_]]:
    """Bilinear samples (R, T, C) of a (H, W, C) float image on the grid, and their (R, T) validity."""
    points = ellipse.points(grid.radii[:, None], grid.angles[None, :]).astype(np.float32)
    map_x, map_y = np.ascontiguousarray(points[..., 0]), np.ascontiguousarray(points[..., 1])
    sampled = cv2.remap(image, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    if sampled.ndim == 2:
        sampled = sampled[..., None]
    ok = cv2.remap(valid.astype(np.float32), map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
    height, width = valid.shape
    inside = (map_x >= 0) & (map_x <= width - 1) & (map_y >= 0) & (map_y <= height - 1)
    return np.asarray(sampled, dtype=np.float32), (ok > 0.99) & inside
