"""Texture smoothness: generators paint skin and surfaces with too little fine detail.

Diffusion and GAN decoders produce plausible coarse structure but a fine texture that is too
smooth or too regular (pores, fabric, foliage); cf. Liu et al., "Global texture enhancement for
fake face detection in the wild", CVPR 2020 (texture statistics separate GAN faces).

Working image: grey, shrunk with INTER_AREA to a longest side of ``WORK_SIDE`` px (never enlarged)
so that "fine detail" means the same scale relative to the picture at every resolution. Per
16×16 block: the gradient energy ``g`` = mean squared Sobel magnitude and the fine-detail energy
``l`` = mean squared Laplacian (3×3). Textured blocks: ``g`` at or above the image's 40th
percentile and above ``MIN_GRADIENT_ENERGY`` (flat sky or backdrop says nothing about synthesis).

Statistics (reference names). The over-smoothing hypothesis says "upper" (smoother = more
suspicious) for all three; on the train split of scripts/train/ai_image_data.py the opposite held
for ``texture_smoothness`` and ``texture_lbp_deficit`` (the generated faces carried MORE fine
detail than the real set, which includes small, re-compressed LFW/UTKFace photos: AUC 0.20–0.32
in the "upper" direction). So those two are two-sided (unusual either way for a real photo);
``texture_flat_fraction`` stays upper:

* ``texture_smoothness`` — ``−log10(median l/g)`` over textured blocks: the less fine detail per
  unit of edge, the higher.
* ``texture_flat_fraction`` — fraction of unsaturated blocks whose local standard deviation is
  below 1.5 grey levels (a camera's noise alone exceeds that).
* ``texture_lbp_deficit`` — ``log2(10) −`` entropy (bits) of the rotation-invariant uniform
  8-neighbour LBP histogram (Ojala et al., TPAMI 2002) of the whole working image, 10 codes.

Block map: per textured block ``(log10(median l/g) − log10(l/g)) / 1.0`` clipped to 0..1 (0 on
other blocks), at the working grid.
"""

from __future__ import annotations

import math
import time

import cv2
import numpy as np
import numpy.typing as npt

from facesocial.forensics.ai_image.anomalies import block_means
from facesocial.forensics.ai_image.ela import downscale
from facesocial.forensics.ai_image.reference import check_rgb, scored, verdict_fields
from facesocial.forensics.ai_image.report import TEXTURE, MethodResult
from facesocial.forensics.calibration import Direction, ReferenceTable

FloatArray = npt.NDArray[np.float32]
UInt8Array = npt.NDArray[np.uint8]

VERSION = "texture@1.0"
WORK_SIDE = 512
BLOCK = 16
MIN_GRADIENT_ENERGY = 25.0
FLAT_STD = 1.5
STATISTICS: dict[str, Direction] = {
    "texture_smoothness": "two_sided",
    "texture_flat_fraction": "upper",
    "texture_lbp_deficit": "two_sided",
}
_LBP_BINS = 10


def lbp_entropy(grey: UInt8Array) -> float:
    """Entropy in bits (0..log2 10) of the rotation-invariant uniform LBP(8, 1) code histogram."""
    g = grey.astype(np.int16)
    centre = g[1:-1, 1:-1]
    h, w = g.shape
    offsets = ((0, 0), (0, 1), (0, 2), (1, 2), (2, 2), (2, 1), (2, 0), (1, 0))  # circular order
    bits = np.stack([(g[dy : h - 2 + dy, dx : w - 2 + dx] >= centre) for dy, dx in offsets]).astype(np.int8)
    transitions = np.abs(np.diff(np.concatenate([bits, bits[:1]]), axis=0)).sum(axis=0)
    ones = bits.sum(axis=0)
    codes = np.where(transitions <= 2, ones, _LBP_BINS - 1)  # non-uniform patterns share one code
    hist = np.bincount(codes.ravel(), minlength=_LBP_BINS).astype(np.float64)
    p = hist / max(hist.sum(), 1.0)
    p = p[p > 0]
    return float(-(p * np.log2(p)).sum())


def measure(rgb: UInt8Array) -> tuple[dict[str, float], FloatArray]:
    """Raw statistics and the 0..1 block map (working grid, 16 px blocks) of an (H, W, 3) uint8 image."""
    grey = np.asarray(
        cv2.cvtColor(downscale(np.ascontiguousarray(rgb), WORK_SIDE), cv2.COLOR_RGB2GRAY), np.uint8
    )
    f = grey.astype(np.float32)
    gx, gy = cv2.Sobel(f, cv2.CV_32F, 1, 0), cv2.Sobel(f, cv2.CV_32F, 0, 1)
    g = block_means(gx * gx + gy * gy, BLOCK)
    lap = cv2.Laplacian(f, cv2.CV_32F, ksize=1)
    lap_energy = block_means(lap * lap, BLOCK)
    mean = block_means(f, BLOCK)
    std = np.sqrt(np.maximum(block_means(f * f, BLOCK) - mean * mean, 0.0))
    textured = (g >= np.percentile(g, 40)) & (g > MIN_GRADIENT_ENERGY)
    block_map = np.zeros(g.shape, np.float32)
    smoothness = float("nan")
    if textured.any():
        ratio = np.log10((lap_energy + 1e-3) / (g + 1e-3))
        median = float(np.median(ratio[textured]))
        smoothness = -median
        block_map = np.where(textured, np.clip(median - ratio, 0.0, 1.0), 0.0).astype(np.float32)
    unsaturated = (mean > 8) & (mean < 247)
    flat = float(((std < FLAT_STD) & unsaturated).sum() / max(int(unsaturated.sum()), 1))
    stats = {
        "texture_smoothness": smoothness,
        "texture_flat_fraction": flat,
        "texture_lbp_deficit": math.log2(_LBP_BINS) - lbp_entropy(grey) if min(grey.shape) >= 3 else 0.0,
    }
    return stats, block_map


def analyze(rgb: UInt8Array, table: ReferenceTable) -> tuple[MethodResult, FloatArray]:
    """Texture smoothness of an (H, W, 3) uint8 RGB image: the method result and its block map.

    ``details``: document 003's ``texture_analysis`` fields (``smoothness_score`` = the raw
    ``texture_smoothness``; ``is_suspicious``; ``confidence``) plus ``statistics``.
    Raises ValueError on a non-RGB array.
    """
    check_rgb(rgb)
    start = time.perf_counter()
    stats, block_map = measure(rgb)
    score, per_stat, elapsed = scored(stats, table, start)
    smooth = stats["texture_smoothness"]
    details = {
        "smoothness_score": None if not math.isfinite(smooth) else round(smooth, 4),
        **verdict_fields(score),
        "working_side_px": WORK_SIDE,
        "statistics": per_stat,
    }
    return MethodResult(TEXTURE, score, elapsed, VERSION, details), block_map
