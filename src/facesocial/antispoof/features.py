"""The passive liveness model's face crop and its hand-crafted presentation-attack features.

:func:`face_crop` and :func:`features` ARE the model's input: training
(scripts/train/liveness_passive.py) and inference (:mod:`facesocial.antispoof.passive`) both
call them, so any change here requires retraining (and a new manifest version).

Everything is computed on a fixed-size crop (:data:`CROP_SIZE`), never on the original image,
so no feature encodes the file's resolution or size. Feature groups (:data:`FEATURE_GROUPS`):

* ``texture`` — colour texture: uniform LBP(8, 1) histograms (59 bins) of each channel of HSV
  and YCbCr (Boulkenafet, Komulainen & Hadid, "Face spoofing detection using colour texture
  analysis", IEEE TIFS 2016). Recaptured faces lose chroma texture detail.
* ``frequency`` — moiré / recapture spectrum: log relative power in radial bands of the
  Hann-windowed grey spectrum, the spectral slope, and the peakiness of the high-frequency
  ring (screen pixel grids and print half-tones give isolated spectral peaks).
* ``specular`` — specular-reflection cues (glossy paper and screen glass): share of bright
  unsaturated pixels, highlight contrast, clipped share.
* ``blur`` — recapture blur: Laplacian variance and gradient energy normalised by contrast
  (both scale-free), and the no-reference blur effect of Crete et al. (SPIE 2007).
* ``colour`` — chroma spread (std of Cb, Cr, saturation; Hasler & Süsstrunk colourfulness):
  printing and screens compress the colour gamut. Channel means are left out on purpose: on a
  handful of subjects they would encode skin tone and room lighting, not the attack.
"""

from __future__ import annotations

import itertools

import cv2
import numpy as np
import numpy.typing as npt
from skimage.feature import local_binary_pattern

from facesocial.vision.crops import square_crop

CROP_SIZE = 96
"""Side in px of the square crop the features read. Small on purpose: the development crops of
some attacks were small (≈100 px), and at 96 px every source is at or below its native
resolution, so upsampling blur cannot stand in for the attack."""

CROP_SCALE = 1.4
"""Crop side = this × max(box width, box height): the face and a margin where paper edges,
screen bezels and hands show."""

_LBP_POINTS, _LBP_RADIUS = 8, 1.0
_LBP_BINS = 59  # non-rotation-invariant uniform patterns of 8 neighbours: 58 uniform + 1 other
_FREQ_BANDS = 8
_CHANNELS = ("h", "s", "v", "y", "cb", "cr")

FEATURE_GROUPS: dict[str, tuple[int, int]] = {}
"""Group name -> [start, stop) column range in the feature vector (filled below)."""

FEATURE_NAMES: list[str] = []
"""One name per feature column, in order."""


def _register(group: str, names: list[str]) -> None:
    start = len(FEATURE_NAMES)
    FEATURE_NAMES.extend(f"{group}.{n}" for n in names)
    FEATURE_GROUPS[group] = (start, len(FEATURE_NAMES))


_register("texture", [f"lbp_{c}_{b}" for c in _CHANNELS for b in range(_LBP_BINS)])
_register(
    "frequency",
    [f"band_{i}" for i in range(_FREQ_BANDS)] + ["slope", "hf_peak", "hf_peak_p99"],
)
_register("specular", ["bright_unsaturated", "highlight_contrast", "clipped"])
_register("blur", ["laplacian", "gradient", "crete_blur"])
_register("colour", ["std_cb", "std_cr", "std_s", "colourfulness"])

FEATURE_COUNT = len(FEATURE_NAMES)
"""Length of :func:`features`' output (375)."""

UInt8Array = npt.NDArray[np.uint8]
FloatArray = npt.NDArray[np.float32]


def face_crop(rgb: UInt8Array, box: npt.ArrayLike) -> UInt8Array:
    """The model's crop of one face: (CROP_SIZE, CROP_SIZE, 3) uint8 RGB.

    A square centred on ``box`` (x1, y1, x2, y2 in ``rgb``'s px) of side CROP_SCALE × max(w, h),
    edge-padded where it leaves the image, resized with area pre-shrinking
    (:func:`facesocial.vision.crops.warp_crop`). A degenerate box is widened to 1 px.
    """
    return square_crop(rgb, np.asarray(box, dtype=np.float64).reshape(4), CROP_SCALE, CROP_SIZE, "edge")


def _texture(hsv: UInt8Array, ycc: UInt8Array) -> list[FloatArray]:
    out: list[FloatArray] = []
    for image in (hsv, ycc):
        for c in range(3):
            codes = local_binary_pattern(  # type: ignore[no-untyped-call]
                image[:, :, c], _LBP_POINTS, _LBP_RADIUS, method="nri_uniform"
            )
            hist = np.bincount(codes.astype(np.int64).ravel(), minlength=_LBP_BINS)[:_LBP_BINS]
            # Square root (Hellinger): linear classifiers compare histograms better this way.
            out.append(np.sqrt(hist / max(1, hist.sum())).astype(np.float32))
    return out


def _radius_grid(size: int) -> npt.NDArray[np.float64]:
    f = np.fft.fftfreq(size)
    return np.asarray(np.sqrt(f[None, :] ** 2 + f[:, None] ** 2), dtype=np.float64)


_RADIUS = _radius_grid(CROP_SIZE)
_HANN = np.outer(np.hanning(CROP_SIZE), np.hanning(CROP_SIZE))


def _frequency(grey: npt.NDArray[np.float64]) -> FloatArray:
    radius = _RADIUS
    g = (grey - grey.mean()) * _HANN
    power = np.abs(np.fft.fft2(g)) ** 2 + 1e-12
    total = power[radius > 0].sum()
    edges = np.linspace(0.0, 0.5, _FREQ_BANDS + 1)
    bands = []
    for lo, hi in itertools.pairwise(edges):
        ring = (radius > max(lo, 1e-9)) & (radius <= hi)
        bands.append(np.log10(power[ring].sum() / total + 1e-12))
    # Spectral slope: least squares of log power on log radius over 0.05..0.45 cycles/px.
    sel = (radius >= 0.05) & (radius <= 0.45)
    slope = float(np.polyfit(np.log10(radius[sel]), np.log10(power[sel]), 1)[0])
    # Peakiness of the high-frequency ring: moiré and half-tone grids are narrow spectral peaks.
    hf = np.log10(power[(radius >= 0.15) & (radius <= 0.5)])
    median = float(np.median(hf))
    peak = float(hf.max()) - median
    p99 = float(np.percentile(hf, 99)) - median
    return np.asarray([*bands, slope, peak, p99], dtype=np.float32)


def _specular(hsv: UInt8Array) -> FloatArray:
    s = hsv[:, :, 1].astype(np.float64) / 255.0
    v = hsv[:, :, 2].astype(np.float64) / 255.0
    bright_unsaturated = float(np.mean((v >= 0.85) & (s <= 0.25)))
    contrast = float(np.percentile(v, 99) - np.median(v))
    clipped = float(np.mean(v >= 0.98))
    return np.asarray([bright_unsaturated, contrast, clipped], dtype=np.float32)


def _crete_blur(grey: npt.NDArray[np.float64]) -> float:
    """Blur effect 0 (sharp) .. 1 (blurred) of Crete, Dolmiere, Ladret & Nicolas (SPIE 6492, 2007)."""
    kernel = np.ones((1, 9), np.float64) / 9.0
    results = []
    for axis_kernel, axis in ((kernel, 1), (kernel.T, 0)):
        blurred = cv2.filter2D(grey, -1, axis_kernel, borderType=cv2.BORDER_REFLECT)
        d_f = np.abs(np.diff(grey, axis=axis))
        d_b = np.abs(np.diff(blurred, axis=axis))
        v = np.maximum(0.0, d_f - d_b)
        s_f, s_v = d_f.sum(), v.sum()
        results.append((s_f - s_v) / s_f if s_f > 0 else 1.0)
    return float(max(results))


def _blur(grey: npt.NDArray[np.float64]) -> FloatArray:
    spread = float(grey.std()) + 1e-3
    lap = cv2.Laplacian(grey, cv2.CV_64F, ksize=3)
    gx = cv2.Sobel(grey, cv2.CV_64F, 1, 0, ksize=3)
    gy = cv2.Sobel(grey, cv2.CV_64F, 0, 1, ksize=3)
    # Divided by the grey spread: contrast and exposure alone do not read as sharpness.
    laplacian = float(np.log10(lap.var() / spread**2 + 1e-6))
    gradient = float(np.log10(np.mean(np.hypot(gx, gy)) / spread + 1e-6))
    return np.asarray([laplacian, gradient, _crete_blur(grey)], dtype=np.float32)


def _colour(rgb: UInt8Array, hsv: UInt8Array, ycc: UInt8Array) -> FloatArray:
    cb = ycc[:, :, 1].astype(np.float64) / 255.0
    cr = ycc[:, :, 2].astype(np.float64) / 255.0
    s = hsv[:, :, 1].astype(np.float64) / 255.0
    r, g, b = (rgb[:, :, i].astype(np.float64) / 255.0 for i in range(3))
    rg, yb = r - g, 0.5 * (r + g) - b
    # Hasler & Süsstrunk (SPIE 5007, 2003): sigma_rgyb + 0.3 * mu_rgyb.
    colourfulness = float(np.hypot(rg.std(), yb.std()) + 0.3 * np.hypot(rg.mean(), yb.mean()))
    return np.asarray([cb.std(), cr.std(), s.std(), colourfulness], dtype=np.float32)


def features(crop: UInt8Array) -> FloatArray:
    """(FEATURE_COUNT,) float32 features of one (CROP_SIZE, CROP_SIZE, 3) uint8 RGB crop.

    Deterministic; columns are named by :data:`FEATURE_NAMES`. Raises ``ValueError`` for a crop
    of another shape (make it with :func:`face_crop`).
    """
    if crop.shape != (CROP_SIZE, CROP_SIZE, 3) or crop.dtype != np.uint8:
        raise ValueError(
            f"expected a ({CROP_SIZE}, {CROP_SIZE}, 3) uint8 crop, got {crop.shape} {crop.dtype}"
        )
    hsv = np.asarray(cv2.cvtColor(crop, cv2.COLOR_RGB2HSV), dtype=np.uint8)
    # OpenCV gives Y, Cr, Cb: reorder to Y, Cb, Cr (the channel names).
    ycc = np.ascontiguousarray(cv2.cvtColor(crop, cv2.COLOR_RGB2YCrCb)[:, :, [0, 2, 1]], dtype=np.uint8)
    grey = ycc[:, :, 0].astype(np.float64)
    parts = [
        *_texture(hsv, ycc),
        _frequency(grey),
        _specular(hsv),
        _blur(grey),
        _colour(crop, hsv, ycc),
    ]
    out = np.concatenate(parts).astype(np.float32)
    assert out.shape == (FEATURE_COUNT,)  # the layout above and FEATURE_NAMES agree
    return out


def batch_features(rgb: UInt8Array, boxes: npt.ArrayLike) -> FloatArray:
    """(N, FEATURE_COUNT) features of the N faces ``boxes`` (N, 4) x1, y1, x2, y2 px in ``rgb``."""
    b = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    if len(b) == 0:
        return np.zeros((0, FEATURE_COUNT), np.float32)
    return np.stack([features(face_crop(rgb, box)) for box in b])
