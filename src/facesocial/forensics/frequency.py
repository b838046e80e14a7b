"""Frequency-domain signals of the face region: the shape of its azimuthally averaged power spectrum.

Generators upsample (transposed convolutions, nearest/bilinear upsampling), which either leaves
periodic high-frequency energy or removes it; either way the high end of the spectrum departs from
the power law that camera images follow (Durall et al., "Watch your up-convolution", CVPR 2020;
Frank et al., "Leveraging frequency analysis for deep fake image recognition", ICML 2020).

Method: an axis-aligned square of side 1.6 d (d = eye distance) centred on the face ellipse —
mostly skin, eyes, nose and mouth, little background — at native pixels (shrunk by area averaging
only when larger than 256 px), grey, mean removed, Hann-windowed; log power spectrum; azimuthal
average over 24 rings of normalised frequency f in (0, 0.5] cycles/pixel. A line is fitted to
log power against log f over 0.04 ≤ f ≤ 0.20 (the face's own content):

* ``freq_hf`` — mean deviation of log10 power from that line, extrapolated, over 0.30 ≤ f ≤ 0.50.
  Two-sided: an excess (grid artefacts) or a deficit (smooth synthesis) are both unusual.
* ``freq_slope`` — the fitted slope (a natural image is near −2 in power). Two-sided.

JPEG and video compression remove high frequencies too, so both statistics move with the
encoding; the reference distribution comes from real JPEG faces (LFW, UTKFace, FFHQ) so that
typical compression is "normal". docs/deepfake.md gives the measured effect of re-encoding.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import numpy.typing as npt

from facesocial.forensics.calibration import ReferenceTable
from facesocial.forensics.face_region import FaceEllipse
from facesocial.forensics.signals import SignalValue, calibrated

FloatArray = npt.NDArray[np.float32]
UInt8Array = npt.NDArray[np.uint8]

CROP_EYE_DISTANCES = 1.6
MAX_SIDE = 256
MIN_SIDE = 32
RINGS = 24
FIT_BAND = (0.04, 0.20)
HIGH_BAND = (0.30, 0.50)
SIGNALS = ("freq_hf", "freq_slope")


@dataclass(frozen=True, slots=True)
class SpectrumStats:
    """``profile`` (RINGS,) log10 power per ring at ``frequencies`` (RINGS,) cycles/pixel."""

    hf_deviation: float
    slope: float
    frequencies: FloatArray
    profile: FloatArray
    side: int


def face_square(rgb: UInt8Array, ellipse: FaceEllipse) -> UInt8Array | None:
    """The grey square the spectrum is taken of (module doc), or None when under ``MIN_SIDE`` px."""
    side = round(CROP_EYE_DISTANCES * ellipse.eye_distance)
    height, width = rgb.shape[:2]
    side = min(side, height, width)
    if side < MIN_SIDE:
        return None
    cx, cy = ellipse.centre
    x0 = int(np.clip(round(cx - side / 2.0), 0, width - side))
    y0 = int(np.clip(round(cy - side / 2.0), 0, height - side))
    grey = cv2.cvtColor(np.ascontiguousarray(rgb[y0 : y0 + side, x0 : x0 + side]), cv2.COLOR_RGB2GRAY)
    if side > MAX_SIDE:
        grey = cv2.resize(grey, (MAX_SIDE, MAX_SIDE), interpolation=cv2.INTER_AREA)
    return np.asarray(grey, dtype=np.uint8)


def radial_profile(grey: UInt8Array) -> tuple[FloatArray, FloatArray]:
    """Azimuthally averaged log10 power (RINGS,) of a square grey patch and the ring centres (cycles/px)."""
    x = grey.astype(np.float64)
    x -= x.mean()
    n = x.shape[0]
    window = np.outer(np.hanning(n), np.hanning(n))
    power = np.abs(np.fft.fftshift(np.fft.fft2(x * window))) ** 2
    freqs = np.fft.fftshift(np.fft.fftfreq(n))
    radius = np.hypot(freqs[:, None], freqs[None, :])
    edges = np.linspace(0.0, 0.5, RINGS + 1)
    index = np.digitize(radius.ravel(), edges) - 1
    keep = (index >= 0) & (index < RINGS)
    sums = np.bincount(index[keep], weights=power.ravel()[keep], minlength=RINGS)
    counts = np.bincount(index[keep], minlength=RINGS)
    mean = sums / np.maximum(counts, 1)
    # The DC ring holds the window's leakage only; a tiny floor keeps log finite on flat patches.
    profile = np.log10(mean + 1e-6)
    centres = (edges[:-1] + edges[1:]) / 2.0
    return profile.astype(np.float32), centres.astype(np.float32)


def spectrum_stats(rgb: UInt8Array, ellipse: FaceEllipse) -> SpectrumStats | None:
    """Raw statistics of one face (module doc), or None when the face is too small."""
    grey = face_square(rgb, ellipse)
    if grey is None:
        return None
    profile, freqs = radial_profile(grey)
    deviation, slope = power_law_fit(profile, freqs)
    return SpectrumStats(deviation, slope, freqs, profile, int(grey.shape[0]))


def power_law_fit(profile: FloatArray, freqs: FloatArray) -> tuple[float, float]:
    """(high-frequency deviation, slope) of a radial log10 power profile (module doc): a line fitted
    to log power vs log frequency over ``FIT_BAND``, the mean deviation from it over ``HIGH_BAND``."""
    logf = np.log10(freqs.astype(np.float64))
    fit = (freqs >= FIT_BAND[0]) & (freqs <= FIT_BAND[1])
    high = (freqs >= HIGH_BAND[0]) & (freqs <= HIGH_BAND[1])
    slope, intercept = np.polyfit(logf[fit], profile[fit].astype(np.float64), 1)
    deviation = float(np.mean(profile[high] - (slope * logf[high] + intercept)))
    return deviation, float(slope)


def frequency_signals(stats: SpectrumStats, table: ReferenceTable) -> list[SignalValue]:
    """The calibrated ``freq_hf`` and ``freq_slope`` signals."""
    return [
        calibrated("freq_hf", stats.hf_deviation, table, unit="log10_power_vs_power_law", side_px=stats.side),
        calibrated("freq_slope", stats.slope, table, unit="log10_power_per_log10_frequency"),
    ]
