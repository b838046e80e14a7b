"""Self-blended images (Shiohara & Yamasaki, CVPR 2022), written from the paper's description.

A fake is made from ONE real face: a copy of it (the "source") is jittered in colour, frequency
content and geometry, then blended back into the original (the "target") through a mask built from
the face's own landmarks (convex hull, deformed, blurred, scaled by a random blend ratio). The result
keeps the identity, expression and pose of the original, so the only cues left are those every
face swap leaves: a blending boundary and a colour/sharpness/geometry mismatch inside it.

Also the augmentation applied to real and fake alike (JPEG, down-up scaling, flip, colour, shift).
Pure numpy + OpenCV on uint8 (S, S, 3) RGB crops and (68, 2) crop-pixel landmarks.
"""

from __future__ import annotations

import cv2
import numpy as np
import numpy.typing as npt

UInt8Array = npt.NDArray[np.uint8]
FloatArray = npt.NDArray[np.float32]

JAW = np.arange(0, 17)
BROWS = np.arange(17, 27)
BLEND_RATIOS = (0.25, 0.5, 0.75, 1.0, 1.0, 1.0)


def _odd(k: float) -> int:
    k = max(1, round(k))
    return k if k % 2 == 1 else k + 1


def hull_mask(landmarks: FloatArray, size: int, rng: np.random.Generator) -> FloatArray:
    """A deformed, blurred face mask in 0..1, (size, size) float32.

    Convex hull of the jaw line (0-16) and the brows (17-26), with the brows raised by a random
    part of the face height (the forehead, which 68 points do not cover) or the whole hull shrunk
    towards its centre (an inner-face swap); the points are jittered, the filled hull is warped by
    a smooth random displacement field (elastic deformation), eroded or dilated, then blurred twice
    (the first blur's partial pixels are zeroed, so the second blur's falloff starts inside).
    """
    pts = landmarks[np.concatenate([JAW, BROWS])].astype(np.float64).copy()
    centre = pts.mean(axis=0)
    face_h = float(pts[:, 1].max() - pts[:, 1].min()) + 1e-6
    face_w = float(pts[:, 0].max() - pts[:, 0].min()) + 1e-6
    variant = rng.random()
    if variant < 0.55:  # face + forehead
        pts[len(JAW) :, 1] -= rng.uniform(0.0, 0.35) * face_h
    elif variant < 0.8:  # inner face only
        pts = centre + (pts - centre) * rng.uniform(0.8, 0.95)
    pts += rng.normal(0.0, 0.02, size=pts.shape) * np.array([face_w, face_h])
    mask = np.zeros((size, size), np.float32)
    hull = cv2.convexHull(np.round(pts).astype(np.int32))
    cv2.fillConvexPoly(mask, hull, 1.0)

    # Elastic deformation: a coarse random field, upsampled so it is smooth.
    amp = rng.uniform(0.0, 0.06) * size
    grid = rng.normal(0.0, 1.0, size=(2, 5, 5)).astype(np.float32) * amp
    dx = cv2.resize(grid[0], (size, size), interpolation=cv2.INTER_CUBIC)
    dy = cv2.resize(grid[1], (size, size), interpolation=cv2.INTER_CUBIC)
    xs, ys = np.meshgrid(np.arange(size, dtype=np.float32), np.arange(size, dtype=np.float32))
    mask = cv2.remap(mask, xs + dx, ys + dy, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)

    k = _odd(rng.uniform(1, size * 0.08))
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k))
    r = rng.random()
    if r < 0.3:
        mask = cv2.erode(mask, kernel)
    elif r < 0.6:
        mask = cv2.dilate(mask, kernel)

    k1 = _odd(rng.uniform(size * 0.04, size * 0.2))
    mask = cv2.GaussianBlur(mask, (k1, k1), 0)
    mask[mask < 1.0] = 0.0
    k2 = _odd(rng.uniform(size * 0.04, size * 0.2))
    mask = cv2.GaussianBlur(mask, (k2, k2), 0)
    return np.clip(mask, 0.0, 1.0).astype(np.float32)


def colour_jitter(img: UInt8Array, rng: np.random.Generator, strength: float = 1.0) -> UInt8Array:
    """RGB shift, HSV shift, brightness/contrast: the colour mismatch of a source face."""
    x = img.astype(np.float32)
    x += rng.uniform(-20, 20, size=3).astype(np.float32) * strength
    hsv = cv2.cvtColor(np.clip(x, 0, 255).astype(np.uint8), cv2.COLOR_RGB2HSV).astype(np.float32)
    hsv[..., 0] = (hsv[..., 0] + rng.uniform(-6, 6) * strength) % 180
    hsv[..., 1] *= 1.0 + rng.uniform(-0.25, 0.25) * strength
    hsv[..., 2] *= 1.0 + rng.uniform(-0.15, 0.15) * strength
    x = cv2.cvtColor(np.clip(hsv, 0, 255).astype(np.uint8), cv2.COLOR_HSV2RGB).astype(np.float32)
    contrast = 1.0 + rng.uniform(-0.15, 0.15) * strength
    brightness = rng.uniform(-15, 15) * strength
    x = (x - x.mean()) * contrast + x.mean() + brightness
    return np.clip(x, 0, 255).astype(np.uint8)


def frequency_jitter(img: UInt8Array, rng: np.random.Generator) -> UInt8Array:
    """Blur (down-up scaling) or sharpen: the resolution mismatch of a pasted face."""
    size = img.shape[0]
    if rng.random() < 0.5:
        f = rng.uniform(0.4, 0.85)
        small = cv2.resize(img, (max(8, int(size * f)),) * 2, interpolation=cv2.INTER_AREA)
        return np.asarray(cv2.resize(small, (size, size), interpolation=cv2.INTER_LINEAR), np.uint8)
    blur = cv2.GaussianBlur(img, (0, 0), rng.uniform(0.8, 1.6))
    amount = rng.uniform(0.3, 1.2)
    return np.asarray(cv2.addWeighted(img, 1 + amount, blur, -amount, 0), np.uint8)


def geometry_jitter(img: UInt8Array, rng: np.random.Generator) -> UInt8Array:
    """Small scale (0.95-1.05 per axis) and translation (±3 %): the alignment error of a swap."""
    size = img.shape[0]
    sx, sy = rng.uniform(0.95, 1.05, size=2)
    tx, ty = rng.uniform(-0.03, 0.03, size=2) * size
    c = size / 2.0
    m = np.array([[sx, 0, c - sx * c + tx], [0, sy, c - sy * c + ty]], np.float64)
    return np.asarray(
        cv2.warpAffine(img, m, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT), np.uint8
    )


def self_blend(img: UInt8Array, landmarks: FloatArray, rng: np.random.Generator) -> UInt8Array:
    """One SBI fake of ``img`` (S, S, 3) uint8 with its 68 landmarks in crop px."""
    size = img.shape[0]
    source, target = img.copy(), img.copy()
    changed = colour_jitter(source, rng) if rng.random() < 0.8 else source
    if rng.random() < 0.6:
        changed = frequency_jitter(changed, rng)
    changed = geometry_jitter(changed, rng)
    if rng.random() < 0.5:  # which side carries the jitter does not matter to a boundary
        source, target = changed, target
    else:
        source, target = target, changed
    mask = hull_mask(landmarks, size, rng) * float(rng.choice(BLEND_RATIOS))
    out = source.astype(np.float32) * mask[..., None] + target.astype(np.float32) * (1.0 - mask[..., None])
    return np.clip(np.round(out), 0, 255).astype(np.uint8)


def jpeg(img: UInt8Array, quality: int) -> UInt8Array:
    # OpenCV codes BGR; the byte round trip is channel-order agnostic as long as it is undone.
    ok, buf = cv2.imencode(".jpg", img[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    assert ok
    return np.ascontiguousarray(cv2.imdecode(buf, cv2.IMREAD_COLOR)[..., ::-1])


def augment(img: UInt8Array, rng: np.random.Generator) -> UInt8Array:
    """The same augmentation for real and fake: shift/scale (detector jitter), flip, colour,
    down-up scaling (small faces), JPEG at a random quality (compressed video)."""
    size = img.shape[0]
    out = img
    if rng.random() < 0.5:
        s = rng.uniform(0.93, 1.07)
        tx, ty = rng.uniform(-0.04, 0.04, size=2) * size
        c = size / 2.0
        m = np.array([[s, 0, c - s * c + tx], [0, s, c - s * c + ty]], np.float64)
        out = np.asarray(
            cv2.warpAffine(out, m, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE),
            np.uint8,
        )
    if rng.random() < 0.5:
        out = np.ascontiguousarray(out[:, ::-1])
    if rng.random() < 0.3:
        out = colour_jitter(out, rng, strength=0.4)
    if rng.random() < 0.25:
        f = rng.uniform(0.45, 0.9)
        small = cv2.resize(out, (max(8, int(size * f)),) * 2, interpolation=cv2.INTER_AREA)
        out = np.asarray(cv2.resize(small, (size, size), interpolation=cv2.INTER_LINEAR), np.uint8)
    if rng.random() < 0.7:
        out = jpeg(out, int(rng.integers(35, 96)))
    return out
