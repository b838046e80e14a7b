"""Content features: near-duplicates stay above the known-fake similarity, different pictures far below."""

from __future__ import annotations

import io

import cv2
import numpy as np
import pytest
import skimage.data
from PIL import Image

from facesocial import errors
from facesocial.forensics.fingerprint import DIMENSION, VideoFingerprint, image_features, video_features
from facesocial.settings import DeepfakeSettings

THRESHOLD = DeepfakeSettings().known_fake_similarity


def _rgb(name: str) -> np.ndarray:
    image = getattr(skimage.data, name)()
    if image.ndim == 2:
        image = np.stack([image] * 3, axis=-1)
    return np.ascontiguousarray(image[..., :3].astype(np.uint8))


PICTURES = ["astronaut", "coffee", "chelsea", "camera", "rocket", "immunohistochemistry", "hubble_deep_field"]


def _jpeg(rgb: np.ndarray, quality: int) -> np.ndarray:
    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, format="JPEG", quality=quality)
    return np.asarray(Image.open(io.BytesIO(buffer.getvalue())).convert("RGB"))


def _cos(a: np.ndarray, b: np.ndarray) -> float:
    return float(a @ b)


@pytest.mark.parametrize("name", PICTURES)
def test_reencoding_and_resizing_stay_above_the_threshold(name: str) -> None:
    rgb = _rgb(name)
    original = image_features(rgb)
    assert original.shape == (DIMENSION,) and original.dtype == np.float32
    assert np.linalg.norm(original) == pytest.approx(1.0, abs=1e-5)
    h, w = rgb.shape[:2]
    half = cv2.resize(rgb, (w // 2, h // 2), interpolation=cv2.INTER_AREA)
    for variant in (_jpeg(rgb, 70), half, _jpeg(half, 70)):
        assert _cos(original, image_features(variant)) > THRESHOLD


def test_different_pictures_stay_far_below_the_threshold() -> None:
    features = np.stack([image_features(_rgb(name)) for name in PICTURES])
    similarity = features @ features.T
    np.fill_diagonal(similarity, -1.0)
    assert similarity.max() < THRESHOLD - 0.2


def test_a_mirrored_picture_is_a_different_picture() -> None:
    rgb = _rgb("astronaut")
    assert _cos(image_features(rgb), image_features(rgb[:, ::-1].copy())) < THRESHOLD


def test_flat_images_have_a_defined_unit_vector() -> None:
    grey = np.full((50, 80, 3), 128, np.uint8)
    white = np.full((10, 10, 3), 255, np.uint8)
    assert np.linalg.norm(image_features(grey)) == pytest.approx(1.0, abs=1e-6)
    assert _cos(image_features(grey), image_features(white)) == pytest.approx(1.0, abs=1e-6)


def test_malformed_arrays_are_validation_errors() -> None:
    with pytest.raises(errors.ValidationFailedError):
        image_features(np.zeros((10, 10), np.uint8))
    with pytest.raises(errors.ValidationFailedError):
        image_features(np.zeros((10, 10, 3), np.float32))  # type: ignore[arg-type, unused-ignore]


def test_video_fingerprint_is_robust_to_sampling_and_reencoding() -> None:
    rng = np.random.default_rng(0)
    scenes = [_rgb(name) for name in ("astronaut", "coffee", "chelsea")]
    resized = [cv2.resize(scenes[i // 10], (320, 240)) for i in range(30)]
    frames: list[np.ndarray] = [
        np.clip(f.astype(int) + rng.integers(-3, 4, f.shape), 0, 255).astype(np.uint8) for f in resized
    ]
    full = video_features(frames)
    every_third_reencoded = video_features([_jpeg(cv2.resize(f, (160, 120)), 70) for f in frames[::3]])
    other = video_features([np.asarray(cv2.resize(_rgb("rocket"), (320, 240)), np.uint8)] * 5)
    assert full is not None and every_third_reencoded is not None and other is not None
    assert _cos(full, every_third_reencoded) > THRESHOLD
    assert _cos(full, other) < THRESHOLD - 0.2
    empty = VideoFingerprint()
    assert empty.features() is None and empty.frames == 0
