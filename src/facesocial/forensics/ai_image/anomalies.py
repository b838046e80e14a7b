"""Visual anomalies of the AI-image report: regions the pixel methods find unusual, and the heatmap.

Inputs are the methods' per-block maps (0..1, any grid covering the whole image: ELA, noise,
texture). Each map is first normalised *within the image* — ``z = (m − median) / (1.4826 · MAD)``,
with the MAD floored at ``SPREAD_FLOOR``, then ``(z − 1) / 3`` clipped to 0..1 — because a map's
absolute level says more about the camera and the encoding than about a region: what stands out is a
region unlike the rest of the same image. The normalised maps are resized (bilinear) to the heatmap
grid (longest side ≤ 512 px) and combined by their maximum; the map that gives the maximum names the
region's type.

Regions: connected components (8-connectivity, scipy.ndimage.label) of ``value ≥ THRESHOLD``
(z ≥ 2.5) covering at least ``MIN_REGION_FRACTION`` of the heatmap; box in image pixels;
confidence = the mean value over the component. At most ``MAX_REGIONS``, largest evidence
(confidence × area) first. Face boxes with a score (added by the caller) are painted with their
score and, at or above the method threshold, reported as "synthetic_face".

A region whose box covers more than :data:`MAX_REGION_FRACTION` of the image is dropped: what
covers most of an image is not "unlike the rest of it" (the map's robust spread was too small to
tell). The heatmap is the combined value coloured with OpenCV's JET map over a greyed copy of the
image at the heatmap's size (RGB PNG, viewable alone; without the image, as when no background is
given, :func:`facesocial.forensics.heatmap.render_png`'s RGBA overlay, transparent where nothing
stands out). The PNG's longest side is at most ``MAX_SIDE`` px; boxes are in image pixels. A
guide for the eye, not proof: every photo has its most unusual regions, so regions are reported
whatever the verdict.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import cv2
import numpy as np
import numpy.typing as npt
from scipy import ndimage

from facesocial.forensics.ai_image.report import METHOD_THRESHOLD, Anomaly
from facesocial.forensics.heatmap import render_png

FloatArray = npt.NDArray[np.float32]
Box = tuple[int, int, int, int]

MAX_SIDE = 512
THRESHOLD = 0.5
MIN_REGION_FRACTION = 0.002
MAX_REGIONS = 10
MAX_REGION_FRACTION = 0.5
# The MAD floor, in map units: maps that are 0 on most blocks (texture: untextured blocks) have
# MAD 0, and must still need a clear excess to make a region.
SPREAD_FLOOR = 0.15
# Map name -> (anomaly type, description). Unknown map names use their own name as type.
TYPES: dict[str, tuple[str, str]] = {
    "ela": ("ela_hotspot", "error level after JPEG re-compression unlike the rest of the image"),
    "noise": ("noise_inconsistency", "sensor-noise level unlike the rest of the image"),
    "texture": ("over_smooth_texture", "textured area with too little fine detail"),
}


def block_means(values: npt.NDArray[np.floating], block: int) -> FloatArray:
    """Mean of ``values`` (H, W) over ``block``×``block`` tiles → (ceil(H/b), ceil(W/b)) float32.

    Edge tiles are partial (averaged over the pixels they hold), so the grid covers the whole image.
    """
    h, w = values.shape[:2]
    gh, gw = -(-h // block), -(-w // block)
    padded = np.zeros((gh * block, gw * block), np.float64)
    counts = np.zeros_like(padded)
    padded[:h, :w] = values
    counts[:h, :w] = 1.0
    sums = padded.reshape(gh, block, gw, block).sum(axis=(1, 3))
    n = counts.reshape(gh, block, gw, block).sum(axis=(1, 3))
    return np.asarray(sums / np.maximum(n, 1.0), np.float32)


def normalise(block_map: FloatArray) -> FloatArray:
    """Robust within-image normalisation of one map to 0..1 (module doc)."""
    m = np.asarray(block_map, np.float64)
    finite = m[np.isfinite(m)]
    if finite.size == 0:
        return np.zeros(m.shape, np.float32)
    median = float(np.median(finite))
    mad = 1.4826 * float(np.median(np.abs(finite - median)))
    # A floor on the spread: a nearly constant map must not turn its noise into regions.
    spread = max(mad, SPREAD_FLOOR)
    z = (np.nan_to_num(m, nan=median) - median) / spread
    return np.asarray(np.clip((z - 1.0) / 3.0, 0.0, 1.0), np.float32)


def _grid(height: int, width: int) -> tuple[int, int]:
    k = min(1.0, MAX_SIDE / max(height, width))
    return max(1, round(height * k)), max(1, round(width * k))


def find(
    maps: Mapping[str, FloatArray],
    height: int,
    width: int,
    faces: Sequence[tuple[Box, float]] = (),
    background: npt.NDArray[np.uint8] | None = None,
) -> tuple[list[Anomaly], bytes]:
    """Regions and the heatmap PNG of an image of ``height``×``width`` px (module doc).

    ``maps``: name → (gh, gw) 0..1 block map covering the image (names as in ``TYPES``).
    ``faces``: ((x, y, w, h) in image px, score 0..1) painted over the heatmap.
    ``background``: the image (height, width, 3) uint8 RGB to paint over, or None.
    Returns anomalies (boxes inside the image) and PNG bytes (longest side ≤ 512 px): RGB over
    the background, or an RGBA overlay without one.
    Raises ValueError for a non-positive image size.
    """
    if height <= 0 or width <= 0:
        raise ValueError(f"image size must be positive, got {width}x{height}")
    gh, gw = _grid(height, width)
    names = list(maps)
    stack = np.zeros((max(1, len(names)), gh, gw), np.float32)
    for i, name in enumerate(names):
        m = normalise(np.asarray(maps[name], np.float32))
        stack[i] = cv2.resize(m, (gw, gh), interpolation=cv2.INTER_LINEAR)
    value = stack.max(axis=0)
    dominant = stack.argmax(axis=0)
    sx, sy = width / gw, height / gh

    anomalies: list[tuple[float, Anomaly]] = []
    labels, _ = ndimage.label(value >= THRESHOLD, structure=np.ones((3, 3), bool))
    slices = ndimage.find_objects(labels)
    for index, region in enumerate(slices, start=1):
        if region is None:
            continue
        mask = labels[region] == index
        area = int(mask.sum())
        if area < MIN_REGION_FRACTION * gh * gw or not names:
            continue
        confidence = float(value[region][mask].mean())
        kind = names[int(np.bincount(dominant[region][mask], minlength=len(names)).argmax())]
        type_, description = TYPES.get(kind, (kind, f"{kind} map stands out"))
        ys, xs = region
        x0, y0 = int(xs.start * sx), int(ys.start * sy)
        x1, y1 = min(width, int(np.ceil(xs.stop * sx))), min(height, int(np.ceil(ys.stop * sy)))
        box = (x0, y0, max(1, x1 - x0), max(1, y1 - y0))
        if box[2] * box[3] > MAX_REGION_FRACTION * width * height:
            continue
        anomalies.append((confidence * area, Anomaly(type_, confidence, box, description)))
    anomalies.sort(key=lambda pair: -pair[0])
    found = [a for _, a in anomalies[:MAX_REGIONS]]

    for (x, y, w, h), score in faces:
        s = float(np.clip(score, 0.0, 1.0))
        c0, r0 = int(np.clip(x / sx, 0, gw)), int(np.clip(y / sy, 0, gh))
        c1, r1 = int(np.clip(np.ceil((x + w) / sx), 0, gw)), int(np.clip(np.ceil((y + h) / sy), 0, gh))
        value[r0:r1, c0:c1] = np.maximum(value[r0:r1, c0:c1], s)
        if s >= METHOD_THRESHOLD:
            bx, by = int(np.clip(x, 0, width - 1)), int(np.clip(y, 0, height - 1))
            bw, bh = max(1, min(int(w), width - bx)), max(1, min(int(h), height - by))
            found.append(Anomaly("synthetic_face", s, (bx, by, bw, bh), "face scored as synthetic"))
    if background is None:
        return found, render_png(value)
    return found, overlay_png(background, value)


def overlay_png(rgb: npt.NDArray[np.uint8], values: FloatArray) -> bytes:
    """RGB PNG: ``values`` (h, w) 0..1 in JET colours over ``rgb`` greyed and resized to (h, w);
    the colour's opacity is 0.75 × value, so unremarkable areas show the image."""
    h, w = values.shape
    grey = cv2.cvtColor(cv2.resize(rgb, (w, h), interpolation=cv2.INTER_AREA), cv2.COLOR_RGB2GRAY)
    base = np.repeat(grey[..., None], 3, axis=2).astype(np.float32)
    heat_bgr = cv2.applyColorMap(np.clip(values * 255.0 + 0.5, 0, 255).astype(np.uint8), cv2.COLORMAP_JET)
    heat = heat_bgr[..., ::-1].astype(np.float32)
    alpha = (0.75 * np.clip(values, 0.0, 1.0))[..., None]
    out = np.clip(base * (1.0 - alpha) + heat * alpha + 0.5, 0, 255).astype(np.uint8)
    ok, encoded = cv2.imencode(".png", cv2.cvtColor(out, cv2.COLOR_RGB2BGR))
    if not ok:  # only on empty input, which _grid never makes
        raise RuntimeError("PNG encoding failed")
    return bytes(encoded.tobytes())
