"""The shipped AI-image model: checksum, feature layout, score range and its explanation."""

from __future__ import annotations

import json

import numpy as np
import pytest

from facesocial import errors
from facesocial.forensics.ai_image.features import FEATURE_NAMES, WORK_SIDE, features, working_image
from facesocial.forensics.ai_image.model import GROUPS, MANIFEST_FILE, MODEL_FILE, AiImageModel
from facesocial.models.packaged import read_packaged


def _packaged() -> tuple[bytes, dict]:
    found = read_packaged("facesocial.forensics", MODEL_FILE, MANIFEST_FILE)
    assert found is not None, "the AI-image model ships with the package"
    return found[0], json.loads(found[1])


def _photo(seed: int, size: tuple[int, int] = (300, 420)) -> np.ndarray:
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 255, (size[0] // 10, size[1] // 10, 3)).astype(np.uint8)
    import cv2

    smooth = cv2.resize(base, (size[1], size[0]), interpolation=cv2.INTER_CUBIC)
    return np.clip(smooth.astype(np.int16) + rng.integers(-6, 7, smooth.shape), 0, 255).astype(np.uint8)


def test_working_image_is_one_size_whatever_the_input() -> None:
    for shape in ((40, 90, 3), (300, 420, 3), (1500, 800, 3)):
        assert working_image(np.zeros(shape, np.uint8)).shape == (WORK_SIDE, WORK_SIDE, 3)


def test_features_are_finite_and_named() -> None:
    vector = features(_photo(1))
    assert vector.shape == (len(FEATURE_NAMES),) and vector.dtype == np.float32
    assert np.isfinite(vector).all()
    flat = features(np.full((64, 64, 3), 128, np.uint8))  # no texture at all: still finite
    assert np.isfinite(flat).all()


def test_the_manifest_records_provenance() -> None:
    _blob, manifest = _packaged()
    for key in (
        "sha256",
        "script",
        "commit",
        "data",
        "data_licence",
        "metrics",
        "trained_on_sha256_prefixes",
    ):
        assert manifest[key], key
    assert manifest["input"]["feature_names"] == list(FEATURE_NAMES)


def test_score_in_range_with_an_explanation_per_group() -> None:
    model = AiImageModel.packaged()
    assert model is not None
    result = model.analyze(_photo(2))
    assert result.score is not None and 0.0 <= result.score <= 1.0
    assert set(result.details["feature_importance"]) == set(GROUPS)
    assert result.version == model.version and result.details["sha256"] == model.sha256


def test_altered_weights_are_refused() -> None:
    blob, manifest = _packaged()
    with pytest.raises(errors.ModelChecksumError):
        AiImageModel(blob[:-1] + bytes([blob[-1] ^ 1]), manifest)
    other = dict(manifest, input={**manifest["input"], "feature_names": list(FEATURE_NAMES)[:-1]})
    with pytest.raises(errors.ModelUnavailableError):
        AiImageModel(blob, other)
