"""Blending signals: colour and noise mismatch between the inner face and its surround, and a
discontinuity along the face's boundary ellipse.

A face swap pastes a face rendered elsewhere (another camera, another compression, a generator's
smoothness) into the target frame through a soft mask. Whatever the colour correction, the pasted
region keeps some of its own colour and, above all, its own sensor/compression noise, and the mask
edge leaves a seam (Li et al., "Face X-ray", CVPR 2020; Shiohara & Yamasaki, SBI, CVPR 2022). Three
statistics, all on the polar view of :mod:`.face_region` (radius 1 = the modelled mask edge) and
taken as the median over 8 angular sectors, so that hair or background entering a few sectors
does not decide:

* ``blend_colour`` — ΔE76 (CIE L*a*b*) between the mean colour of the band just inside the ellipse
  (radius 0.70–0.90) and the band just outside (1.10–1.30). Upper-tailed.
* ``blend_noise`` — log ratio of the noise-residual energy (grey minus its 3×3 median) inside
  (radius 0.50–0.85) to the ring around (1.10–1.40). Two-sided: a pasted face may be smoother
  (generator, upsampling) or noisier than its surround.
* ``blend_boundary`` — the largest step of log noise energy across radii 0.9/1.0/1.1 (inner and
  outer 0.1-wide bands), minus the mean step at two control radii (0.65, 1.35) of the same face.
  Upper-tailed: a seam at the mask edge shows as a step there and not elsewhere.

:func:`inconsistency_map` is the per-pixel view for the heatmap: how far the local noise level
departs from the surround's, in robust z units, faded out beyond the ring.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import numpy.typing as npt

from facesocial.forensics.calibration import ReferenceTable
from facesocial.forensics.face_region import FaceEllipse, FacePatch, PolarGrid, face_patch, polar_sample
from facesocial.forensics.signals import SignalValue, calibrated

FloatArray = npt.NDArray[np.float32]
UInt8Array = npt.NDArray[np.uint8]

SECTORS = 8
COLOUR_INNER, COLOUR_OUTER = (0.70, 0.90), (1.10, 1.30)
NOISE_INNER, NOISE_OUTER = (0.50, 0.85), (1.10, 1.40)
BOUNDARY_RADII = (0.9, 1.0, 1.1)
CONTROL_RADII = (0.65, 1.35)
STEP_WIDTH = 0.1
# Noise energy floor (grey levels², 0..255 scale): keeps log energy finite on flat synthetic areas.
ENERGY_FLOOR = 0.5
SIGNALS = ("blend_colour", "blend_noise", "blend_boundary")


@dataclass(frozen=True, slots=True)
class BlendingStats:
    """Raw statistics of one face (module doc); ``log_energy`` (H, W) is the patch's local noise map."""

    colour: float
    noise: float
    boundary: float
    patch: FacePatch
    log_energy: FloatArray


def noise_log_energy(rgb: UInt8Array, eye_distance: float) -> FloatArray:
    """Local log energy of the noise residual (grey − 3×3 median), window ≈ d/8 px, (H, W) float32."""
    grey = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    residual = grey.astype(np.float32) - cv2.medianBlur(grey, 3).astype(np.float32)
    k = max(3, round(eye_distance / 8.0) | 1)
    energy = cv2.boxFilter(residual * residual, -1, (k, k), borderType=cv2.BORDER_REFLECT)
    return np.asarray(np.log(energy + ENERGY_FLOOR), dtype=np.float32)


def _sector_means(values: FloatArray, ok: npt.NDArray[np.bool_], rows: npt.NDArray[np.bool_]) -> FloatArray:
    """(SECTORS, C) mean of ``values`` (R, T, C) over the selected radii, per angular sector; NaN if empty."""
    t, c = values.shape[1:]
    v = values[rows].reshape(-1, SECTORS, t // SECTORS, c)
    m = ok[rows].reshape(-1, SECTORS, t // SECTORS)
    weight = m.sum(axis=(0, 2)).astype(np.float32)
    total = (v * m[..., None]).sum(axis=(0, 2))
    with np.errstate(invalid="ignore", divide="ignore"):
        out = total / weight[:, None]
    out[weight < 3] = np.nan
    return np.asarray(out, dtype=np.float32)


def _nanmedian(x: npt.NDArray[np.float32]) -> float:
    finite = x[np.isfinite(x)]
    return float(np.median(finite)) if finite.size else float("nan")


def blending_stats(rgb: UInt8Array, ellipse: FaceEllipse, grid: PolarGrid | None = None) -> BlendingStats:
    """The three raw statistics of one face (module doc). NaN where too little of the face is visible."""
    grid = grid or PolarGrid.default()
    patch = face_patch(rgb, ellipse)
    local = patch.ellipse
    log_energy = noise_log_energy(patch.rgb, local.eye_distance)
    smooth = cv2.GaussianBlur(patch.rgb, (0, 0), max(0.5, local.eye_distance / 24.0))
    lab = np.asarray(cv2.cvtColor(smooth.astype(np.float32) / 255.0, cv2.COLOR_RGB2Lab), dtype=np.float32)
    lab_p, ok = polar_sample(lab, patch.valid, local, grid)
    energy_p, _ = polar_sample(log_energy, patch.valid, local, grid)

    inner = _sector_means(lab_p, ok, grid.band(*COLOUR_INNER))
    outer = _sector_means(lab_p, ok, grid.band(*COLOUR_OUTER))
    colour = _nanmedian(np.linalg.norm(inner - outer, axis=1))

    e_in = _sector_means(energy_p, ok, grid.band(*NOISE_INNER))[:, 0]
    e_out = _sector_means(energy_p, ok, grid.band(*NOISE_OUTER))[:, 0]
    # Log energy difference / 2 = log ratio of residual standard deviations.
    noise = _nanmedian((e_in - e_out) / 2.0)

    def step(radius: float) -> float:
        below = _sector_means(energy_p, ok, grid.band(radius - STEP_WIDTH, radius))[:, 0]
        above = _sector_means(energy_p, ok, grid.band(radius, radius + STEP_WIDTH))[:, 0]
        return _nanmedian(np.abs(above - below))

    boundary_steps = [step(r) for r in BOUNDARY_RADII]
    control_steps = [step(r) for r in CONTROL_RADII]
    boundary = (
        float(np.nanmax(boundary_steps) - np.nanmean(control_steps))
        if np.isfinite(boundary_steps).any() and np.isfinite(control_steps).any()
        else float("nan")
    )
    return BlendingStats(colour, noise, boundary, patch, log_energy)


def blending_signals(stats: BlendingStats, table: ReferenceTable) -> list[SignalValue]:
    """Calibrated ``blend_colour``, ``blend_noise``, ``blend_boundary`` (NaN statistics dropped)."""
    out = []
    for name, raw, unit in (
        ("blend_colour", stats.colour, "delta_e76"),
        ("blend_noise", stats.noise, "log_std_ratio_inner_to_ring"),
        ("blend_boundary", stats.boundary, "log_energy_step_excess"),
    ):
        if np.isfinite(raw):
            out.append(calibrated(name, raw, table, unit=unit))
    return out


def inconsistency_map(stats: BlendingStats) -> FloatArray:
    """(H, W) 0..1 map on ``stats.patch``: |log noise energy − the ring's median| in robust z units
    (MAD), saturating at 4, multiplied by a weight that is 1 inside radius 1.2 and fades to 0 at 1.5."""
    patch = stats.patch
    h, w = stats.log_energy.shape
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    radius = patch.ellipse.radius_of(np.stack([xx, yy], axis=-1))
    ring = (radius >= NOISE_OUTER[0]) & (radius <= NOISE_OUTER[1]) & patch.valid
    values = stats.log_energy[ring] if ring.sum() >= 10 else stats.log_energy[patch.valid]
    if values.size == 0:
        return np.zeros((h, w), np.float32)
    centre = float(np.median(values))
    spread = float(np.median(np.abs(values - centre))) * 1.4826 + 0.1
    z = np.abs(stats.log_energy - centre) / spread
    fade = np.clip((1.5 - radius) / 0.3, 0.0, 1.0)
    return np.asarray(np.clip(z / 4.0, 0.0, 1.0) * fade * patch.valid, dtype=np.float32)
