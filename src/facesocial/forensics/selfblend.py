"""Self-blended faces: a fake made from one real face alone, to measure the ensemble without deepfake data.

After Shiohara & Yamasaki (SBI, CVPR 2022): a copy of the face is blurred (σ 0.8–1.5 px), shifted
in colour (±15 levels per channel), scaled by 2 % and moved by up to 3 % of the eye distance, then
pasted back through the face ellipse (:mod:`.face_region`, radius 0.90–1.05) softened by a Gaussian
of 5 % of the eye distance. ``scripts/calibrate_deepfake_signals.py`` measures how many such faces
the ensemble would let through as ``real`` (the clearing check of :mod:`.ensemble`); the model tests
use it too. These fakes are easier than real deepfakes: a miss rate measured on them is a lower
bound of the miss rate on real manipulations.
"""

from __future__ import annotations

import cv2
import numpy as np
import numpy.typing as npt

from facesocial.forensics.face_region import ellipse_from_landmarks

UInt8Array = npt.NDArray[np.uint8]


def self_blend(
    rgb: UInt8Array, box: npt.ArrayLike, landmarks5: npt.ArrayLike | None, rng: np.random.Generator
) -> UInt8Array:
    """(H, W, 3) uint8: ``rgb`` with the face of ``box``/``landmarks5`` self-blended (module doc)."""
    ellipse = ellipse_from_landmarks(box, landmarks5)
    h, w = rgb.shape[:2]
    d = ellipse.eye_distance
    source = cv2.GaussianBlur(rgb.astype(np.float32), (0, 0), rng.uniform(0.8, 1.5))
    source += rng.uniform(-15, 15, 3).astype(np.float32)
    cx, cy = ellipse.centre
    dx, dy = rng.uniform(-0.03, 0.03, 2) * d
    # Scale 2 % about the face centre, then move.
    move = np.array([[1.02, 0.0, -0.02 * cx + dx], [0.0, 1.02, -0.02 * cy + dy]], np.float32)
    source = np.asarray(cv2.warpAffine(source, move, (w, h), borderMode=cv2.BORDER_REFLECT), np.float32)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    inside = ellipse.radius_of(np.stack([xx, yy], axis=-1)) <= rng.uniform(0.9, 1.05)
    mask = cv2.GaussianBlur(inside.astype(np.float32), (0, 0), max(0.5, 0.05 * d))[..., None]
    out: UInt8Array = np.clip(mask * source + (1.0 - mask) * rgb + 0.5, 0, 255).astype(np.uint8)
    return out
