"""Forensic image signals on synthetic faces: blending, frequency, calibration maths."""

from __future__ import annotations

import io

import cv2
import numpy as np
import pytest
from PIL import Image

from facesocial.forensics import blending, frequency
from facesocial.forensics.calibration import (
    ReferenceTable,
    build_reference,
    packaged_reference,
    percentile_of_surprise,
    surprise,
)
from facesocial.forensics.face_region import FaceEllipse, ellipse_from_landmarks, face_patch

SIZE = 256
# A face whose eye centres are 64 px apart: eyes at (96, 100) and (160, 100), nose base at (128, 140).
LANDMARKS = np.array([[170, 100], [150, 100], [86, 100], [106, 100], [128, 140]], np.float32)
BOX = np.array([64, 50, 192, 210], np.float32)


def textured_scene(seed: int = 0, noise: float = 6.0) -> np.ndarray:
    """A smooth 'skin' ellipse on a smooth background, with camera-like noise everywhere."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:SIZE, 0:SIZE].astype(np.float32)
    base = np.stack([120 + 40 * np.sin(xx / 37.0), 110 + 30 * np.cos(yy / 29.0), 100 + 0.1 * xx], axis=-1)
    ellipse = ellipse_from_landmarks(BOX, LANDMARKS)
    radius = ellipse.radius_of(np.stack([xx, yy], axis=-1).astype(np.float64))
    skin = np.array([200, 150, 125], np.float32) + 10 * np.sin(yy / 11.0)[..., None]
    face = (radius <= 1.35)[..., None]
    img = np.where(face, skin, base) + rng.normal(0, noise, (SIZE, SIZE, 3))
    return np.clip(img, 0, 255).astype(np.uint8)


def pasted(scene: np.ndarray, shift: float = 25.0, blur: float = 1.5) -> np.ndarray:
    """The inner face (radius ≤ 1) replaced by a colour-shifted, smoothed copy, with a hard edge."""
    ellipse = ellipse_from_landmarks(BOX, LANDMARKS)
    yy, xx = np.mgrid[0:SIZE, 0:SIZE].astype(np.float64)
    inside = (ellipse.radius_of(np.stack([xx, yy], axis=-1)) <= 1.0)[..., None]
    source = cv2.GaussianBlur(scene.astype(np.float32), (0, 0), blur) + np.array([shift, -shift / 2, 0])
    return np.clip(np.where(inside, source, scene), 0, 255).astype(np.uint8)


def jpeg(rgb: np.ndarray, quality: int) -> np.ndarray:
    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, format="JPEG", quality=quality)
    return np.asarray(Image.open(io.BytesIO(buffer.getvalue())).convert("RGB"))


# --- geometry ----------------------------------------------------------------------------------------


def test_ellipse_from_landmarks_follows_the_eyes() -> None:
    e = ellipse_from_landmarks(BOX, LANDMARKS)
    assert e.eye_distance == pytest.approx(64.0)
    np.testing.assert_allclose(e.u, [1.0, 0.0], atol=1e-9)
    np.testing.assert_allclose(e.v, [0.0, 1.0], atol=1e-9)
    np.testing.assert_allclose(e.centre, [128.0, 100.0 + 0.65 * 64.0])
    # A point on the ellipse has radius 1; the centre 0.
    assert e.radius_of(e.points(1.0, 0.7)) == pytest.approx(1.0)
    assert e.radius_of(e.centre) == pytest.approx(0.0)


def test_ellipse_rotates_with_a_rolled_face() -> None:
    angle = np.deg2rad(30)
    rot = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    turned = (LANDMARKS - 128) @ rot.T + 128
    e = ellipse_from_landmarks(BOX, turned)
    assert np.degrees(np.arctan2(e.u[1], e.u[0])) == pytest.approx(30.0, abs=1e-6)
    assert e.eye_distance == pytest.approx(64.0, abs=1e-4)


def test_ellipse_falls_back_to_the_box_without_landmarks() -> None:
    e = ellipse_from_landmarks(BOX, None)
    assert e.eye_distance == pytest.approx(0.4 * 128)
    assert e.centre[0] == pytest.approx(128.0)


def test_face_patch_shrinks_large_faces_and_marks_padding() -> None:
    scene = textured_scene()
    big = FaceEllipse(np.array([128.0, 128.0]), np.array([1.0, 0.0]), np.array([0.0, 1.0]), 192.0)
    patch = face_patch(scene, big)
    assert patch.ellipse.eye_distance == pytest.approx(96.0, rel=0.02)
    assert patch.valid.any() and not patch.valid.all()  # the crop reaches outside the 256 px image


# --- blending ----------------------------------------------------------------------------------------


def test_a_pasted_face_scores_higher_on_every_blending_statistic() -> None:
    ellipse = ellipse_from_landmarks(BOX, LANDMARKS)
    for seed in range(3):
        scene = textured_scene(seed)
        real = blending.blending_stats(scene, ellipse)
        fake = blending.blending_stats(pasted(scene), ellipse)
        assert fake.colour > real.colour + 5.0  # ΔE units: a 25-level shift is plainly visible
        assert fake.noise < real.noise - 0.3  # the pasted face is smoother than its surround
        assert fake.boundary > real.boundary + 0.3  # and the smoothness stops at the seam


def test_blending_suspicion_is_higher_for_the_pasted_face() -> None:
    table = packaged_reference()
    if table.get("blend_boundary") is None:
        pytest.skip("the packaged real-face reference is missing")
    ellipse = ellipse_from_landmarks(BOX, LANDMARKS)
    scene = textured_scene(1)
    real = {
        s.name: s.suspicion for s in blending.blending_signals(blending.blending_stats(scene, ellipse), table)
    }
    fake = {
        s.name: s.suspicion
        for s in blending.blending_signals(blending.blending_stats(pasted(scene), ellipse), table)
    }
    assert fake["blend_boundary"] is not None and real["blend_boundary"] is not None
    assert fake["blend_boundary"] > real["blend_boundary"]
    assert fake["blend_noise"] > 0.6  # a smooth face in a noisy frame is rare among real faces


def test_inconsistency_map_lights_up_the_pasted_region() -> None:
    ellipse = ellipse_from_landmarks(BOX, LANDMARKS)
    stats = blending.blending_stats(pasted(textured_scene(2)), ellipse)
    heat = blending.inconsistency_map(stats)
    assert heat.shape == stats.log_energy.shape and heat.dtype == np.float32
    assert heat.min() >= 0.0 and heat.max() <= 1.0
    local = stats.patch.ellipse
    h, w = heat.shape
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    radius = local.radius_of(np.stack([xx, yy], axis=-1))
    assert heat[radius < 0.8].mean() > 2 * heat[(radius > 1.15) & (radius < 1.4)].mean()


def test_a_face_off_the_image_edge_gives_finite_or_nan_statistics_not_errors() -> None:
    scene = textured_scene()
    edge = FaceEllipse(np.array([5.0, 5.0]), np.array([1.0, 0.0]), np.array([0.0, 1.0]), 60.0)
    stats = blending.blending_stats(scene, edge)
    for value in (stats.colour, stats.noise, stats.boundary):
        assert np.isnan(value) or np.isfinite(value)


# --- frequency ---------------------------------------------------------------------------------------


def test_spectrum_of_a_tiny_face_is_not_measured() -> None:
    tiny = FaceEllipse(np.array([50.0, 50.0]), np.array([1.0, 0.0]), np.array([0.0, 1.0]), 10.0)
    assert frequency.spectrum_stats(textured_scene(), tiny) is None


def test_radial_profile_follows_a_power_law_for_pink_noise() -> None:
    rng = np.random.default_rng(0)
    n = 128
    f = np.hypot(*np.meshgrid(np.fft.fftfreq(n), np.fft.fftfreq(n)))
    f[0, 0] = 1.0
    spectrum = (rng.normal(size=(n, n)) + 1j * rng.normal(size=(n, n))) / f  # power ∝ f^-2
    img = np.real(np.fft.ifft2(spectrum))
    img = ((img - img.min()) / np.ptp(img) * 255).astype(np.uint8)
    profile, freqs = frequency.radial_profile(img)
    fit = (freqs >= 0.04) & (freqs <= 0.4)
    slope = np.polyfit(np.log10(freqs[fit]), profile[fit], 1)[0]
    assert slope == pytest.approx(-2.0, abs=0.35)


def test_upsampling_moves_the_high_frequency_statistic() -> None:
    """A face rendered at half resolution and upscaled (what generators and swaps do) loses its high end."""
    import skimage.data

    rgb = np.ascontiguousarray(skimage.data.astronaut())
    # The astronaut's face: eyes near (205, 110) and (260, 105) in the 512 px image.
    lm = np.array([[270, 106], [250, 107], [195, 112], [215, 111], [232, 145]], np.float32)
    ellipse = ellipse_from_landmarks([170, 50, 300, 220], lm)
    small = cv2.resize(rgb, (256, 256), interpolation=cv2.INTER_AREA)
    upscaled = cv2.resize(small, (512, 512), interpolation=cv2.INTER_LINEAR)
    original = frequency.spectrum_stats(rgb, ellipse)
    smooth = frequency.spectrum_stats(upscaled, ellipse)
    assert original is not None and smooth is not None
    assert smooth.hf_deviation < original.hf_deviation - 0.5


@pytest.mark.parametrize("quality", [95, 85, 75])
def test_frequency_statistic_moves_less_under_jpeg_than_under_upsampling(quality: int) -> None:
    import skimage.data

    rgb = np.ascontiguousarray(skimage.data.astronaut())
    lm = np.array([[270, 106], [250, 107], [195, 112], [215, 111], [232, 145]], np.float32)
    ellipse = ellipse_from_landmarks([170, 50, 300, 220], lm)
    original = frequency.spectrum_stats(rgb, ellipse)
    recoded = frequency.spectrum_stats(jpeg(rgb, quality), ellipse)
    upscaled = frequency.spectrum_stats(
        cv2.resize(cv2.resize(rgb, (256, 256), interpolation=cv2.INTER_AREA), (512, 512)), ellipse
    )
    assert original is not None and recoded is not None and upscaled is not None
    jpeg_shift = abs(recoded.hf_deviation - original.hf_deviation)
    upsample_shift = abs(upscaled.hf_deviation - original.hf_deviation)
    assert jpeg_shift < 0.5 * upsample_shift


# --- calibration -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("percentile", "expected"),
    [(0.0, 0.0), (0.5, 0.1003), (0.9, 1 / 3), (0.99, 2 / 3), (0.999, 1.0), (1.0, 1.0)],
)
def test_surprise_scale(percentile: float, expected: float) -> None:
    assert surprise(percentile) == pytest.approx(expected, abs=1e-3)
    if 0 < expected < 1:
        assert percentile_of_surprise(surprise(percentile)) == pytest.approx(percentile, abs=1e-9)


def test_reference_percentiles_upper_and_two_sided() -> None:
    rng = np.random.default_rng(0)
    samples = rng.normal(0.0, 1.0, 20_000)
    table = ReferenceTable.from_dict(
        {
            "signals": {
                "up": build_reference("up", samples, "upper"),
                "two": build_reference("two", samples, "two_sided"),
            }
        }
    )
    up, two = table.get("up"), table.get("two")
    assert up is not None and two is not None
    assert up.percentile(0.0) == pytest.approx(0.5, abs=0.02)
    assert up.percentile(2.326) == pytest.approx(0.99, abs=0.003)
    assert up.percentile(-5.0) == 0.0
    # Two-sided: both tails are suspicious, the median is not.
    assert two.percentile(0.0) == pytest.approx(0.0, abs=0.02)
    assert two.percentile(-2.576) == pytest.approx(0.99, abs=0.003)
    assert two.percentile(2.576) == pytest.approx(0.99, abs=0.003)
    # Beyond every sample: as rare as the reference can tell (1 in count + 1), no rarer.
    assert up.suspicion(100.0) == pytest.approx(surprise(1 - 1 / 20_001))
    assert up.suspicion(float("nan")) == pytest.approx(surprise(0.5))


def test_reference_needs_enough_samples() -> None:
    with pytest.raises(ValueError, match="too few"):
        build_reference("x", [1.0, 2.0, float("nan")], "upper")


def test_packaged_reference_loads_with_its_manifest() -> None:
    table = packaged_reference()
    if not table.signals:
        pytest.skip("the packaged real-face reference is missing")
    assert table.manifest["script"] == "scripts/calibrate_deepfake_signals.py"
    assert table.manifest["count"] > 1000
    for name in ("blend_colour", "blend_noise", "blend_boundary", "freq_hf", "freq_slope"):
        reference = table.get(name)
        assert reference is not None and reference.count > 1000
        assert np.all(np.diff(reference.values) >= 0)
