"""The packaged passive liveness model (src/facesocial/antispoof/weights/) on real images.

The weights ship inside the package; the NUAA tests read ../shared/data and skip without it.
NUAA frames are development data (the model was fit on them): these tests check the shipped
model's wiring and direction, not its generalisation (docs/liveness-passive.md has the
out-of-fold figures).
"""

from __future__ import annotations

import hashlib
import json
from importlib import resources
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from facesocial import errors
from facesocial.antispoof.features import FEATURE_COUNT
from facesocial.antispoof.passive import MANIFEST_FILE, WEIGHTS_FILE, PassiveLiveness, PassiveScore
from tests.conftest import shared_path

pytestmark = pytest.mark.model


def _weights() -> tuple[bytes, str]:
    folder = resources.files("facesocial.antispoof").joinpath("weights")
    return folder.joinpath(WEIGHTS_FILE).read_bytes(), folder.joinpath(MANIFEST_FILE).read_text()


@pytest.fixture(scope="module")
def model() -> PassiveLiveness:
    loaded = PassiveLiveness.default()
    assert loaded is not None, "the packaged weights are missing"
    return loaded


@pytest.fixture(scope="module")
def detector(model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> object:
    from facesocial.container import Container
    from facesocial.settings import Settings

    # The pulled pack's detector (BlazeFace), as the service uses: not whatever ~/.cache holds.
    settings = Settings(data_dir=tmp_path_factory.mktemp("passive-models"))
    settings.models.model_dir = model_dir
    container = Container(settings)
    return container.pipeline, container.detect_defaults


def _rgb(path: Path) -> np.ndarray:
    with Image.open(path) as image:
        return np.asarray(image.convert("RGB"), dtype=np.uint8)


def _mean_live(model: PassiveLiveness, detector: object, folder: Path, step: int) -> float:
    pipeline, options = detector  # type: ignore[misc]
    scores = []
    for subject in sorted(p for p in folder.iterdir() if p.is_dir()):
        for path in sorted(subject.glob("*.jpg"))[::step]:
            rgb = _rgb(path)
            faces = pipeline.detect(rgb, options)
            if len(faces):
                scores.append(model.score(rgb, faces.boxes[:1])[0].live_score)
    assert len(scores) >= 10
    return float(np.mean(scores))


def test_manifest_matches_the_weights(model: PassiveLiveness) -> None:
    data, text = _weights()
    manifest = json.loads(text)
    assert hashlib.sha256(data).hexdigest() == manifest["sha256"] == model.sha256
    assert manifest["size_bytes"] == len(data) < 3_000_000
    assert manifest["input"]["shape"][1] == FEATURE_COUNT
    assert manifest["output"]["probabilities"]["classes"] == ["live", "photo", "screen"]
    assert 0.0 < model.threshold < 1.0
    assert model.model.name == "liveness_passive"


def test_a_changed_file_is_refused() -> None:
    data, text = _weights()
    with pytest.raises(errors.ModelChecksumError):
        PassiveLiveness.from_bytes(data + b"\0", text)


@pytest.mark.shared_data
def test_nuaa_live_frames_score_above_print_attacks(model: PassiveLiveness, detector: object) -> None:
    root = shared_path("nuaa_antispoof")
    live = _mean_live(model, detector, root / "ClientRaw", step=5)
    printed = _mean_live(model, detector, root / "ImposterRaw", step=5)
    assert live > model.threshold > printed
    assert live - printed > 0.3


@pytest.mark.shared_data
def test_scores_are_probabilities_with_named_signals(model: PassiveLiveness) -> None:
    folder = shared_path("silent_face_antispoof_samples")
    rgb = _rgb(folder / "image_T1.jpg")
    h, w = rgb.shape[:2]
    boxes = np.array([[w * 0.25, h * 0.2, w * 0.75, h * 0.7], [0, 0, w, h]], np.float32)
    results = model.score(rgb, boxes)
    assert len(results) == 2
    for r in results:
        assert isinstance(r, PassiveScore)
        values = [r.live_score, r.photo_score, r.screen_score]
        assert all(0.0 <= v <= 1.0 for v in values)
        assert sum(values) == pytest.approx(1.0, abs=1e-5)
        assert set(r.signals) == {"texture", "frequency", "specular", "blur", "colour"}
        assert all(0.0 <= v <= 1.0 for v in r.signals.values())


def test_faceless_and_tiny_boxes_do_not_crash(model: PassiveLiveness) -> None:
    grey = np.full((240, 320, 3), 128, np.uint8)
    boxes = np.array([[10, 10, 12, 11], [300, 200, 300, 200], [-50, -50, 400, 400]], np.float32)
    results = model.score(grey, boxes)
    assert len(results) == 3
    assert all(0.0 <= r.live_score <= 1.0 for r in results)
    assert model.score(grey, np.zeros((0, 4), np.float32)) == []
