"""Error-level analysis (ELA): how much the image changes when saved again as JPEG quality 90.

Method (Krawetz, "A picture's worth", Black Hat 2007): re-encode the RGB image as JPEG at
``QUALITY`` (OpenCV/libjpeg, 4:2:0), decode, take the per-pixel absolute difference, averaged
over the three channels (0..255 grey levels). Regions saved fewer times, or pasted from another
source, re-compress with a different error than the rest.

Statistics (reference names, both two-sided — a real photo's level depends on its own JPEG
history, so both very low and very high levels are unusual):

* ``ela_mean`` — mean error level over the image, grey levels.
* ``ela_block_cv`` — block uniformity: coefficient of variation (std / mean) of the 16×16-block
  mean error levels, each divided by the block's mean gradient magnitude + 1 so that edges (which
  always re-compress with a larger error) do not dominate.

Pixels: native resolution (the 8×8 JPEG grid must stay aligned), except that images with a
longest side above ``MAX_SIDE`` are first shrunk with INTER_AREA to it — the statistic then
describes the shrunk image (the cost of a JPEG round trip grows with the pixel count).

Outputs: the ELA visualisation (difference scaled so its 99.5th percentile is white, RGB PNG,
longest side ≤ 512 px) and a 0..1 block map (block error / gradient, divided by 4× its image
median, clipped) for :mod:`.anomalies`.
"""

from __future__ import annotations

import time

import cv2
import numpy as np
import numpy.typing as npt

from facesocial.forensics.ai_image.anomalies import block_means
from facesocial.forensics.ai_image.reference import check_rgb, scored, verdict_fields
from facesocial.forensics.ai_image.report import ELA, MethodResult
from facesocial.forensics.calibration import Direction, ReferenceTable

FloatArray = npt.NDArray[np.float32]
UInt8Array = npt.NDArray[np.uint8]

VERSION = "ela@1.0"
QUALITY = 90
BLOCK = 16
MAX_SIDE = 2048
PNG_MAX_SIDE = 512  # a guide for the eye; a 768 px noise-like PNG is ~650 kB stored per result
STATISTICS: dict[str, Direction] = {"ela_mean": "two_sided", "ela_block_cv": "two_sided"}


def downscale(rgb: UInt8Array, max_side: int) -> UInt8Array:
    """``rgb`` shrunk with INTER_AREA so its longest side is at most ``max_side`` (unchanged if smaller)."""
    h, w = rgb.shape[:2]
    k = max_side / max(h, w)
    if k >= 1.0:
        return rgb
    size = (max(1, round(w * k)), max(1, round(h * k)))
    return np.asarray(cv2.resize(rgb, size, interpolation=cv2.INTER_AREA), np.uint8)


def error_levels(rgb: UInt8Array) -> FloatArray:
    """(H, W) float32 mean absolute RGB difference after one JPEG ``QUALITY`` round trip."""
    bgr = cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2BGR)
    ok, encoded = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, QUALITY])
    if not ok:  # only on empty input, which the callers never pass
        raise RuntimeError("JPEG encoding failed")
    decoded = cv2.imdecode(encoded, cv2.IMREAD_COLOR)
    if decoded is None:
        raise RuntimeError("JPEG decoding failed")
    diff = cv2.absdiff(bgr, decoded).astype(np.float32)
    return np.asarray(diff.mean(axis=2), np.float32)


def measure(rgb: UInt8Array) -> tuple[dict[str, float], FloatArray, FloatArray]:
    """Raw statistics, the block map (gh, gw) 0..1 and the error-level image (H', W') of ``rgb``
    (H, W, 3) uint8; H', W' are the working size (module doc)."""
    work = downscale(rgb, MAX_SIDE)
    levels = error_levels(work)
    grey = np.asarray(cv2.cvtColor(work, cv2.COLOR_RGB2GRAY), np.float32)
    gradient = np.asarray(
        cv2.magnitude(cv2.Sobel(grey, cv2.CV_32F, 1, 0), cv2.Sobel(grey, cv2.CV_32F, 0, 1)), np.float32
    )
    relative = block_means(levels, BLOCK) / (block_means(gradient, BLOCK) + 1.0)
    mean_rel = float(relative.mean())
    stats = {
        "ela_mean": float(levels.mean()),
        "ela_block_cv": float(relative.std() / mean_rel) if mean_rel > 0 else 0.0,
    }
    median = float(np.median(relative))
    block_map = np.clip(relative / (4.0 * median + 1e-6), 0.0, 1.0).astype(np.float32)
    return stats, block_map, levels


def render(levels: FloatArray) -> bytes:
    """The viewable ELA PNG (RGB grey, longest side ≤ ``PNG_MAX_SIDE``) of an error-level image."""
    top = max(float(np.percentile(levels, 99.5)), 1.0)
    grey = np.clip(levels * (255.0 / top), 0, 255).astype(np.uint8)
    h, w = grey.shape
    k = min(1.0, PNG_MAX_SIDE / max(h, w))
    if k < 1.0:
        grey = cv2.resize(grey, (max(1, round(w * k)), max(1, round(h * k))), interpolation=cv2.INTER_AREA)
    ok, encoded = cv2.imencode(".png", cv2.cvtColor(grey, cv2.COLOR_GRAY2BGR))
    if not ok:
        raise RuntimeError("PNG encoding failed")
    return bytes(encoded.tobytes())


def analyze(rgb: UInt8Array, table: ReferenceTable) -> tuple[MethodResult, FloatArray, bytes]:
    """ELA of an (H, W, 3) uint8 RGB image: the method result, its block map (0..1) and the PNG.

    ``details``: document 003's ``ela_results`` fields (``error_level_score`` = ``ela_mean``,
    ``is_suspicious``, ``confidence``; the image path is the caller's) plus ``statistics`` (raw,
    percentile, suspicion each) and ``working_size``. Raises ValueError on a non-RGB array.
    """
    check_rgb(rgb)
    start = time.perf_counter()
    stats, block_map, levels = measure(rgb)
    png = render(levels)
    score, per_stat, elapsed = scored(stats, table, start)
    details = {
        "error_level_score": round(stats["ela_mean"], 4),
        **verdict_fields(score),
        "quality": QUALITY,
        "working_size": {"width": int(levels.shape[1]), "height": int(levels.shape[0])},
        "statistics": per_stat,
    }
    return MethodResult(ELA, score, elapsed, VERSION, details), block_map, png
