"""The image spectrum (method "frequency"): upsampling peaks and the high-frequency power law.

Generators upsample (transposed convolutions, nearest/bilinear upsampling in decoders), which
leaves periodic peaks in the spectrum of the noise residual at multiples of 1/8, 1/4 and 1/2
cycles/pixel, and bends the high end of the spectrum away from the power law of camera images
(Durall et al., "Watch your up-convolution", CVPR 2020; Frank et al., ICML 2020; Corvi et al.,
ICASSP 2023). Caveat: JPEG's 8×8 blocks put peaks on the same k/8 grid, so on JPEG photos the
peak statistic also measures the compression; the reference (real JPEG photos) makes typical
compression "normal".

Working patch: the central square of the image at native pixels (no resampling — it would move
and blur the peaks), side ``min(H, W, MAX_SIDE)`` rounded down to a multiple of 8, grey.

* ``spectrum_peak`` — residual ``r = grey − median3×3(grey)``, Hann-windowed, power spectrum. At
  every point of the k/8 grid (both axes, except the origin) the log10 ratio of the power there
  (max over the 3×3 bins) to the median power of the surrounding 9×9 bins (the 5×5 core left out);
  the statistic is the mean of the 4 largest ratios. Upper.
* ``spectrum_hf`` / ``spectrum_slope`` — :func:`facesocial.forensics.frequency.radial_profile` of
  the grey patch; a line fitted to log power vs log frequency over 0.04–0.20 cycles/px; the mean
  deviation from it over 0.30–0.50 (two-sided), and its slope (upper: a flatter spectrum, more
  high-frequency energy than the photo's own content predicts; on the train split of
  scripts/train/ai_image_data.py generated images were flatter, AUC 0.73 StyleGAN2, 0.80 SD 2.1 —
  the direction was chosen there, the test split is reported apart).
"""

from __future__ import annotations

import time

import cv2
import numpy as np
import numpy.typing as npt

from facesocial.forensics.ai_image.reference import check_rgb, scored, verdict_fields
from facesocial.forensics.ai_image.report import FREQUENCY, MethodResult
from facesocial.forensics.calibration import Direction, ReferenceTable
from facesocial.forensics.frequency import power_law_fit, radial_profile

UInt8Array = npt.NDArray[np.uint8]

VERSION = "frequency@1.0"
MAX_SIDE = 512
MIN_SIDE = 64
TOP_PEAKS = 4
STATISTICS: dict[str, Direction] = {
    "spectrum_peak": "upper",
    "spectrum_hf": "two_sided",
    "spectrum_slope": "upper",
}


def central_patch(rgb: UInt8Array) -> UInt8Array | None:
    """The grey working square (module doc), or None when the image is under ``MIN_SIDE`` px."""
    h, w = rgb.shape[:2]
    side = min(h, w, MAX_SIDE) // 8 * 8
    if side < MIN_SIDE:
        return None
    y0, x0 = (h - side) // 2, (w - side) // 2
    patch = np.ascontiguousarray(rgb[y0 : y0 + side, x0 : x0 + side])
    return np.asarray(cv2.cvtColor(patch, cv2.COLOR_RGB2GRAY), np.uint8)


def peak_ratios(grey: UInt8Array) -> npt.NDArray[np.float64]:
    """log10 peak-to-neighbourhood ratios at the k/8 grid points (module doc), one per point."""
    n = grey.shape[0]
    r = grey.astype(np.float64) - cv2.medianBlur(grey, 3).astype(np.float64)
    r -= r.mean()
    window = np.outer(np.hanning(n), np.hanning(n))
    power = np.fft.fftshift(np.abs(np.fft.fft2(r * window)) ** 2) + 1e-12
    c = n // 2
    step = n // 8
    ratios = []
    for ky in range(-4, 5):
        for kx in range(0, 5):
            if (kx == 0 and ky <= 0) or (kx == 4 and ky < 0):
                continue  # the conjugate-symmetric half repeats these
            y, x = c + ky * step, c + kx * step
            ys = np.arange(y - 4, y + 5) % n
            xs = np.arange(x - 4, x + 5) % n
            around = power[np.ix_(ys, xs)]
            core = around[3:6, 3:6].max()
            ring = np.concatenate(
                [around[:2].ravel(), around[7:].ravel(), around[2:7, :2].ravel(), around[2:7, 7:].ravel()]
            )
            ratios.append(np.log10(core / np.median(ring)))
    return np.asarray(ratios, np.float64)


def measure(rgb: UInt8Array) -> dict[str, float]:
    """Raw statistics of an (H, W, 3) uint8 image; NaN each when it is under ``MIN_SIDE`` px."""
    grey = central_patch(rgb)
    if grey is None:
        return {name: float("nan") for name in STATISTICS}
    ratios = np.sort(peak_ratios(grey))[::-1]
    deviation, slope = power_law_fit(*radial_profile(grey))
    return {
        "spectrum_peak": float(ratios[:TOP_PEAKS].mean()),
        "spectrum_hf": deviation,
        "spectrum_slope": slope,
    }


def analyze(rgb: UInt8Array, table: ReferenceTable) -> MethodResult:
    """Spectrum statistics of an (H, W, 3) uint8 RGB image (module doc) as the "frequency" method.

    ``details``: ``statistics`` (raw, percentile, suspicion), ``patch_side_px``, ``is_suspicious``,
    ``confidence``. Score None for images under ``MIN_SIDE`` px. Raises ValueError on a non-RGB array.
    """
    check_rgb(rgb)
    start = time.perf_counter()
    stats = measure(rgb)
    score, per_stat, elapsed = scored(stats, table, start)
    side = min(*rgb.shape[:2], MAX_SIDE) // 8 * 8
    details = {
        **verdict_fields(score),
        "patch_side_px": side if side >= MIN_SIDE else None,
        "statistics": per_stat,
    }
    return MethodResult(FREQUENCY, score, elapsed, VERSION, details)
