"""The heatmap of an image verdict: an RGBA PNG to lay over the image.

Each analysed face paints its fused score (0..1) over its ellipse; where the blending signals ran,
the paint is modulated by their per-pixel inconsistency map (:func:`.blending.inconsistency_map`):
``value = score · (0.35 + 0.65 · map)``. Colour: OpenCV's JET map of the value; alpha = 0.8 · value,
so real-looking regions stay transparent. The PNG has the image's aspect ratio and a longest side
of at most ``max_side`` px (512 at the basic/standard levels, 1024 at advanced): it is a guide for
the eye, not a mask at pixel precision.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np
import numpy.typing as npt

from facesocial.forensics.face_region import FaceEllipse

FloatArray = npt.NDArray[np.float32]


@dataclass(frozen=True, slots=True)
class FaceInconsistency:
    """A per-pixel map (H, W) 0..1 over a face patch whose pixel (cx, cy) is the image point
    (x0 + (cx + .5) / scale − .5, y0 + (cy + .5) / scale − .5)."""

    map: FloatArray
    x0: int
    y0: int
    scale: float


@dataclass(frozen=True, slots=True)
class HeatFace:
    score: float
    ellipse: FaceEllipse
    inconsistency: FaceInconsistency | None


def value_map(height: int, width: int, faces: Sequence[HeatFace], max_side: int) -> FloatArray:
    """(h, w) 0..1 values at the heatmap's size (longest side ≤ ``max_side``)."""
    k = min(1.0, max_side / max(height, width))
    h, w = max(1, round(height * k)), max(1, round(width * k))
    out = np.zeros((h, w), np.float32)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    # Heatmap pixel centres in image pixels.
    image_xy = np.stack([(xx + 0.5) / k - 0.5, (yy + 0.5) / k - 0.5], axis=-1)
    for face in faces:
        inside = (face.ellipse.radius_of(image_xy) <= 1.2).astype(np.float32)
        modulation = np.full((h, w), 1.0, np.float32)
        if face.inconsistency is not None:
            inc = face.inconsistency
            # heatmap px -> patch px: patch = (image + .5) * scale - .5 - origin * scale
            m = np.array(
                [
                    [inc.scale / k, 0.0, (0.5 / k - 0.5 + 0.5 - inc.x0) * inc.scale - 0.5],
                    [0.0, inc.scale / k, (0.5 / k - 0.5 + 0.5 - inc.y0) * inc.scale - 0.5],
                ]
            )
            warped = cv2.warpAffine(
                inc.map, m, (w, h), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP, borderValue=0.0
            )
            modulation = 0.35 + 0.65 * np.asarray(warped, np.float32)
            inside = np.maximum(inside, (np.asarray(warped) > 0).astype(np.float32))
        out = np.maximum(out, np.clip(face.score, 0.0, 1.0) * modulation * inside)
    return out


def render_png(values: FloatArray) -> bytes:
    """RGBA PNG bytes of a 0..1 value map (module doc)."""
    grey = np.clip(values * 255.0 + 0.5, 0, 255).astype(np.uint8)
    bgr = cv2.applyColorMap(grey, cv2.COLORMAP_JET)
    alpha = np.clip(values * 0.8 * 255.0 + 0.5, 0, 255).astype(np.uint8)
    ok, encoded = cv2.imencode(".png", np.dstack([bgr, alpha]))
    if not ok:  # cv2 fails only on empty input, which value_map never makes
        raise RuntimeError("PNG encoding failed")
    return bytes(encoded.tobytes())


def heatmap_png(height: int, width: int, faces: Sequence[HeatFace], max_side: int) -> bytes:
    return render_png(value_map(height, width, faces, max_side))
