"""Content features for recognising analysed content again (document 000 §5.1 ``deepfake_features``, 1024-D).

Image: the luminance (ITU-R BT.601 grey) shrunk to 32×32 by area averaging, mean removed,
L2-normalised — 1024 values. Area averaging discards what re-encoding and resizing change (block
artefacts, resampling detail) and keeps the picture's layout, so a JPEG re-save at quality 70 or a
0.5× resize of an image keeps a cosine similarity above 0.999 with the original, while different
photos — even aligned LFW portraits of the same layout — stay below 0.85 (tests/unit/
test_forensics_fingerprint.py; ``settings.deepfake.known_fake_similarity`` is 0.97). It is not
robust to cropping (a 3 % crop on each side gives about 0.9) or mirroring: a near-duplicate
detector, not a content search.

Video: the L2-normalised mean of the sampled frames' image features (:class:`VideoFingerprint`,
fed one frame at a time), which does not depend on the sampling rate or on re-encoding.
"""

from __future__ import annotations

import cv2
import numpy as np
import numpy.typing as npt

from facesocial import errors

FloatArray = npt.NDArray[np.float32]
UInt8Array = npt.NDArray[np.uint8]

SIDE = 32
DIMENSION = SIDE * SIDE


def image_features(rgb: UInt8Array) -> FloatArray:
    """(1024,) float32 unit vector of an (H, W, 3) uint8 RGB image (module doc).

    A flat image (no variation at 32×32) has no layout to compare: it gets the zero vector's stand-in,
    a constant unit vector, so that every flat image matches every other flat image.
    Raises ``errors.ValidationFailedError`` for a malformed array.
    """
    if not isinstance(rgb, np.ndarray) or rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
        raise errors.ValidationFailedError("The image must be an (H, W, 3) uint8 RGB array")
    grey = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY).astype(np.float32)
    thumb = cv2.resize(grey, (SIDE, SIDE), interpolation=cv2.INTER_AREA).astype(np.float64).ravel()
    thumb -= thumb.mean()
    norm = float(np.linalg.norm(thumb))
    if norm < 1e-3 * DIMENSION**0.5:
        return np.full((DIMENSION,), 1.0 / DIMENSION**0.5, np.float32)
    return (thumb / norm).astype(np.float32)


class VideoFingerprint:
    """Accumulates frame features; :meth:`features` is the video's (1024,) unit vector (module doc)."""

    def __init__(self) -> None:
        self._sum = np.zeros((DIMENSION,), np.float64)
        self.frames = 0

    def add(self, rgb: UInt8Array) -> None:
        """Add one sampled (H, W, 3) uint8 RGB frame."""
        self._sum += image_features(rgb)
        self.frames += 1

    def features(self) -> FloatArray | None:
        """The video's features, or None before any frame was added."""
        if self.frames == 0:
            return None
        norm = float(np.linalg.norm(self._sum))
        if norm < 1e-9:
            return np.full((DIMENSION,), 1.0 / DIMENSION**0.5, np.float32)
        return (self._sum / norm).astype(np.float32)


def video_features(frames: list[UInt8Array]) -> FloatArray | None:
    """The features of a list of frames (tests and small inputs; videos use :class:`VideoFingerprint`)."""
    fingerprint = VideoFingerprint()
    for frame in frames:
        fingerprint.add(frame)
    return fingerprint.features()
