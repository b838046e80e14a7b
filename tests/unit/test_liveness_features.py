"""The passive liveness crop and features: fixed length, deterministic, resolution-free."""

from __future__ import annotations

import itertools

import cv2
import numpy as np
import pytest
from skimage import data

from facesocial.antispoof import features as feat

# The astronaut's face in scikit-image's 512x512 test image (x1, y1, x2, y2 px).
FACE_BOX = np.array([175.0, 40.0, 285.0, 170.0])


@pytest.fixture(scope="module")
def astronaut() -> np.ndarray:
    return np.asarray(data.astronaut(), dtype=np.uint8)


def test_layout_is_fixed_and_named(astronaut: np.ndarray) -> None:
    x = feat.features(feat.face_crop(astronaut, FACE_BOX))
    assert x.shape == (feat.FEATURE_COUNT,) == (len(feat.FEATURE_NAMES),)
    assert x.dtype == np.float32 and np.all(np.isfinite(x))
    spans = sorted(feat.FEATURE_GROUPS.values())
    assert spans[0][0] == 0 and spans[-1][1] == feat.FEATURE_COUNT
    assert all(a[1] == b[0] for a, b in itertools.pairwise(spans))  # contiguous, no gaps


def test_deterministic(astronaut: np.ndarray) -> None:
    a = feat.batch_features(astronaut, FACE_BOX[None])
    b = feat.batch_features(astronaut.copy(), FACE_BOX[None])
    np.testing.assert_array_equal(a, b)


def test_crop_has_the_fixed_size_whatever_the_box(astronaut: np.ndarray) -> None:
    for box in (FACE_BOX, [0, 0, 512, 512], [500, 500, 503, 502], [10, 10, 10, 10], [-50, -50, 40, 40]):
        crop = feat.face_crop(astronaut, box)
        assert crop.shape == (feat.CROP_SIZE, feat.CROP_SIZE, 3)
        assert np.all(np.isfinite(feat.features(crop)))


@pytest.mark.parametrize("factor", [1.5, 2.0, 3.0])
def test_invariant_to_the_input_resolution(astronaut: np.ndarray, factor: float) -> None:
    """The same face at another resolution gives nearly the same features (the crop is fixed-size).

    Upscaled copies (the face at 165..330 px instead of 110): every crop is shrunk to 96 px, so only
    resampling noise differs; the tolerance is relative to the distance to another picture. Faces
    near or below the crop's own resolution (< ~70 px) lose detail and do change the features.
    """
    size = (round(512 * factor), round(512 * factor))
    resized = np.asarray(cv2.resize(astronaut, size, interpolation=cv2.INTER_CUBIC))
    base = feat.features(feat.face_crop(astronaut, FACE_BOX))
    scaled = feat.features(feat.face_crop(resized, FACE_BOX * factor))
    other = feat.features(feat.face_crop(np.asarray(data.chelsea()), [100, 20, 300, 220]))  # a cat's face
    assert np.linalg.norm(scaled - base) < 0.5 * np.linalg.norm(other - base)
    start, stop = feat.FEATURE_GROUPS["texture"]
    # LBP histograms (sqrt): a Hellinger-type distance per channel, mean over the six channels.
    per_channel = np.linalg.norm((scaled - base)[start:stop].reshape(6, -1), axis=1) / np.sqrt(2)
    assert per_channel.mean() < 0.06


def test_rejects_a_crop_of_another_size(astronaut: np.ndarray) -> None:
    with pytest.raises(ValueError, match="crop"):
        feat.features(astronaut[:64, :64])


def test_no_boxes_no_rows(astronaut: np.ndarray) -> None:
    assert feat.batch_features(astronaut, np.zeros((0, 4))).shape == (0, feat.FEATURE_COUNT)
