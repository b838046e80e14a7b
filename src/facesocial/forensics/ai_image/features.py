"""The learned method's input: a fixed-size working image and 80 hand-made statistics of it.

Working image (:func:`working_image`): the image resized so its shorter side is
:data:`WORK_SIDE` px (area averaging down, bicubic up), centre square of that side. Every image,
whatever its size, is judged at this one scale, so resolution cannot decide; the training script
(``scripts/train/ai_image_model.py``) also re-scales and re-encodes every training image at random
so that scale and JPEG quality carry no label either.

Features (:data:`FEATURE_NAMES`, float32), all of the grey image unless said:

* ``res_ring_*`` (24): log10 power of the noise residual (grey − 3×3 median) per frequency ring,
  mean removed — upsampling layers and diffusion decoders leave the residual's spectrum shaped
  differently from a camera's (Durall et al. CVPR 2020; Corvi et al. ICASSP 2023).
* ``res_std``, ``res_kurtosis``, ``res_small``: residual spread, tails and the fraction of pixels
  within ±1 grey level (over-smooth synthesis has many).
* ``res_corr_rg/rb/gb``: correlation of the per-channel residuals — sensor noise is demosaiced
  across channels, generated noise is not built that way.
* ``grad_p10..p90`` (5): log1p Sobel gradient magnitude percentiles (texture energy).
* ``locvar_p10/p50/p90``: log10 of 7×7 local variance percentiles (smooth patches).
* ``lbp_*`` (10): uniform LBP (P=8, R=1) histogram (micro-texture; Ojala et al. 2002).
* ``sat_mean``, ``sat_std``, ``val_std``, ``a_std``, ``b_std``: colour statistics (HSV, Lab).
* ``spec_slope``, ``spec_hf``: slope of the image's radial power spectrum and the high-frequency
  deviation from it (:func:`facesocial.forensics.frequency.radial_profile`).
* ``cooc_*`` (25): the horizontal co-occurrence of the residual rounded and clipped to −2..2, a
  SPAM-style model of pixel dependencies (Pevný et al. 2010), normalised to sum 1.
"""

from __future__ import annotations

import cv2
import numpy as np
import numpy.typing as npt
from skimage.feature import local_binary_pattern

from facesocial.forensics.frequency import power_law_fit, radial_profile

UInt8Array = npt.NDArray[np.uint8]
FloatArray = npt.NDArray[np.float32]

WORK_SIDE = 256
RINGS = 24  # forensics.frequency.radial_profile's ring count
_CLIP = 2


def _names() -> list[str]:
    names = [f"res_ring_{i}" for i in range(RINGS)]
    names += ["res_std", "res_kurtosis", "res_small", "res_corr_rg", "res_corr_rb", "res_corr_gb"]
    names += [f"grad_p{p}" for p in (10, 25, 50, 75, 90)]
    names += ["locvar_p10", "locvar_p50", "locvar_p90"]
    names += [f"lbp_{i}" for i in range(10)]
    names += ["sat_mean", "sat_std", "val_std", "a_std", "b_std", "spec_slope", "spec_hf"]
    names += [f"cooc_{a}_{b}" for a in range(-_CLIP, _CLIP + 1) for b in range(-_CLIP, _CLIP + 1)]
    return names


FEATURE_NAMES: tuple[str, ...] = tuple(_names())


def working_image(rgb: UInt8Array, side: int = WORK_SIDE) -> UInt8Array:
    """(side, side, 3) uint8: shorter side resized to ``side``, centre square (module doc)."""
    height, width = rgb.shape[:2]
    scale = side / min(height, width)
    new_w, new_h = max(side, round(width * scale)), max(side, round(height * scale))
    interpolation = cv2.INTER_AREA if scale < 1.0 else cv2.INTER_CUBIC
    resized = cv2.resize(rgb, (new_w, new_h), interpolation=interpolation)
    y0, x0 = (new_h - side) // 2, (new_w - side) // 2
    return np.ascontiguousarray(resized[y0 : y0 + side, x0 : x0 + side])


def _residual(channel: UInt8Array) -> npt.NDArray[np.float64]:
    return channel.astype(np.float64) - cv2.medianBlur(channel, 3).astype(np.float64)


def _corr(a: npt.NDArray[np.float64], b: npt.NDArray[np.float64]) -> float:
    sa, sb = a.std(), b.std()
    if sa < 1e-9 or sb < 1e-9:
        return 0.0
    return float(((a - a.mean()) * (b - b.mean())).mean() / (sa * sb))


def features(rgb: UInt8Array) -> FloatArray:
    """(80,) float32 statistics of ``rgb`` (H, W, 3 uint8, any size ≥ 1 px) — module doc."""
    work = working_image(rgb)
    grey = np.asarray(cv2.cvtColor(work, cv2.COLOR_RGB2GRAY), dtype=np.uint8)
    out: list[float] = []
    res = _residual(grey)
    profile, _freqs = radial_profile(np.asarray(np.clip(res + 128.0, 0, 255), dtype=np.uint8))
    out += list(profile - profile.mean())
    std = float(res.std())
    centred = res - res.mean()
    kurt = float((centred**4).mean() / max(std**4, 1e-12))
    out += [std, np.log1p(kurt), float((np.abs(res) <= 1.0).mean())]
    chans = [_residual(np.ascontiguousarray(work[:, :, c], dtype=np.uint8)) for c in range(3)]
    out += [_corr(chans[0], chans[1]), _corr(chans[0], chans[2]), _corr(chans[1], chans[2])]
    gx = cv2.Sobel(grey, cv2.CV_64F, 1, 0, ksize=3)
    gy = cv2.Sobel(grey, cv2.CV_64F, 0, 1, ksize=3)
    magnitude = np.log1p(np.hypot(gx, gy))
    out += list(np.percentile(magnitude, [10, 25, 50, 75, 90]))
    g = grey.astype(np.float64)
    mean = cv2.blur(g, (7, 7))
    variance = np.maximum(cv2.blur(g * g, (7, 7)) - mean * mean, 0.0)
    out += list(np.log10(np.percentile(variance, [10, 50, 90]) + 1e-3))
    lbp = local_binary_pattern(grey, 8, 1, method="uniform")  # type: ignore[no-untyped-call]
    hist = np.bincount(lbp.astype(np.int64).ravel(), minlength=10)[:10].astype(np.float64)
    out += list(hist / max(hist.sum(), 1.0))
    hsv = cv2.cvtColor(work, cv2.COLOR_RGB2HSV).astype(np.float64) / 255.0
    lab = cv2.cvtColor(work, cv2.COLOR_RGB2LAB).astype(np.float64)
    out += [hsv[..., 1].mean(), hsv[..., 1].std(), hsv[..., 2].std(), lab[..., 1].std(), lab[..., 2].std()]
    deviation, slope = power_law_fit(*radial_profile(grey))
    out += [slope, deviation]
    q = np.clip(np.rint(res), -_CLIP, _CLIP).astype(np.int64) + _CLIP
    pairs = q[:, :-1] * (2 * _CLIP + 1) + q[:, 1:]
    cooc = np.bincount(pairs.ravel(), minlength=(2 * _CLIP + 1) ** 2).astype(np.float64)
    out += list(cooc / max(cooc.sum(), 1.0))
    vector = np.asarray(out, dtype=np.float32)
    return np.nan_to_num(vector, nan=0.0, posinf=0.0, neginf=0.0)
