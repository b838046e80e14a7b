"""Real dlib models on real faces: detection, landmarks, quality, embeddings."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import cv2
import numpy as np
import pytest

from facesocial import errors
from facesocial.models import dlib_pack
from facesocial.settings import Settings
from facesocial.vision.geometry import iou_matrix
from facesocial.vision.image import decode_image
from facesocial.vision.pipeline import DetectOptions, FacePipeline
from tests.conftest import shared_path

pytestmark = pytest.mark.model
DEFAULTS = DetectOptions()


@pytest.fixture(scope="module")
def pipeline() -> FacePipeline:
    return FacePipeline.load()


def embed_largest(pipeline: FacePipeline, data: bytes) -> np.ndarray:
    rgb = decode_image(data).rgb
    faces = pipeline.detect(rgb, DEFAULTS)
    assert len(faces) >= 1, "no face found"
    return np.asarray(pipeline.embed(rgb, faces[[0]]).columns["embedding"][0])


def test_astronaut_one_face_with_plausible_landmarks(
    pipeline: FacePipeline, astronaut_rgb: np.ndarray
) -> None:
    faces = pipeline.detect(astronaut_rgb, DEFAULTS)
    assert len(faces) == 1
    x1, y1, x2, y2 = faces.boxes[0]
    # Eileen Collins' face is in the upper middle of the 512x512 portrait.
    assert 150 < (x1 + x2) / 2 < 290 and 60 < (y1 + y2) / 2 < 180
    assert faces.landmarks is not None
    points = faces.landmarks[0]
    assert np.all((points[:, 0] >= x1) & (points[:, 0] <= x2) & (points[:, 1] >= y1) & (points[:, 1] <= y2))
    eyes_y = points[:4, 1].mean()
    assert points[4, 1] > eyes_y  # nose below the eyes
    assert points[0, 0] > points[2, 0]  # subject's left eye is on the image's right
    quality = faces.columns["quality"][0]
    assert quality.score > 0.7 and quality.frontalness > 0.8
    assert faces.detector.name == "dlib_hog" and faces.models["landmarks"].name == "dlib_shape_5"


def test_confidence_threshold_and_min_size_filter(pipeline: FacePipeline, astronaut_rgb: np.ndarray) -> None:
    loose = pipeline.detect(astronaut_rgb, DetectOptions(detection_confidence=0.0))
    assert len(loose) >= 1
    assert np.all(np.diff(loose.areas) <= 0)  # largest first
    assert len(pipeline.detect(astronaut_rgb, DetectOptions(min_face_size=200))) == 0
    assert len(pipeline.detect(astronaut_rgb, DetectOptions(max_faces=1, detection_confidence=0.0))) == 1


def test_quality_drops_for_blur_and_darkness(pipeline: FacePipeline, astronaut_rgb: np.ndarray) -> None:
    base = pipeline.detect(astronaut_rgb, DEFAULTS)
    box_faces = base[[0]]
    from facesocial.vision import quality

    sharp = quality.assess(astronaut_rgb, box_faces)[0]
    blurred = quality.assess(np.ascontiguousarray(cv2.GaussianBlur(astronaut_rgb, (0, 0), 4)), box_faces)[0]
    dark = quality.assess((astronaut_rgb // 8).astype(np.uint8), box_faces)[0]
    assert blurred.sharpness < sharp.sharpness and blurred.score < sharp.score
    assert dark.brightness < sharp.brightness and dark.score < sharp.score


def test_same_person_matches_across_pictures(
    pipeline: FacePipeline, astronaut_jpeg: bytes, astronaut_variant_jpeg: bytes
) -> None:
    a = embed_largest(pipeline, astronaut_jpeg)
    b = embed_largest(pipeline, astronaut_variant_jpeg)
    assert a.shape == (128,) and a.dtype == np.float32
    assert np.linalg.norm(a) == pytest.approx(1.0, abs=1e-5)
    assert float(a @ b) >= Settings().thresholds["dlib_resnet_v1"].verify_strict


def test_different_people_do_not_match(pipeline: FacePipeline) -> None:
    folder = shared_path("face_recognition_identities", "examples", "knn_examples", "train")
    thresholds = Settings().thresholds["dlib_resnet_v1"]
    obama = embed_largest(pipeline, (folder / "obama" / "obama.jpg").read_bytes())
    obama2 = embed_largest(pipeline, (folder / "obama" / "obama2.jpg").read_bytes())
    biden = embed_largest(pipeline, (folder / "biden" / "biden.jpg").read_bytes())
    rose = embed_largest(pipeline, (folder / "rose_leslie" / "img1.jpg").read_bytes())
    assert float(obama @ obama2) >= thresholds.verify_balanced
    assert float(obama @ biden) < thresholds.identify
    assert float(obama @ rose) < thresholds.identify


def test_detection_recall_on_labelled_photos(pipeline: FacePipeline) -> None:
    """dlib_faces_detection/testing.xml: hand-drawn boxes; HOG should find most faces."""
    folder = shared_path("dlib_faces_detection")
    found = total = false_positives = 0
    for image in ET.parse(folder / "testing.xml").getroot().iter("image"):
        truth = [
            [
                int(b.get("left", 0)),
                int(b.get("top", 0)),
                int(b.get("left", 0)) + int(b.get("width", 0)),
                int(b.get("top", 0)) + int(b.get("height", 0)),
            ]
            for b in image.iter("box")
        ]
        rgb = decode_image((folder / str(image.get("file"))).read_bytes()).rgb
        faces = pipeline.detect(rgb, DetectOptions(min_face_size=30))
        overlap = iou_matrix(faces.boxes, truth) if len(faces) else np.zeros((0, len(truth)))
        found += int((overlap.max(axis=0) >= 0.3).sum()) if len(faces) else 0
        false_positives += int((overlap.max(axis=1) < 0.3).sum()) if len(faces) else 0
        total += len(truth)
    assert total == 25
    assert found / total >= 0.8
    assert false_positives <= 2


def test_model_files_are_checksum_verified(monkeypatch: pytest.MonkeyPatch) -> None:
    filename, _, task, spec = dlib_pack._PINNED["dlib_shape_5"]
    monkeypatch.setitem(dlib_pack._PINNED, "dlib_shape_5", (filename, "0" * 64, task, spec))
    dlib_pack.verified_path.cache_clear()
    try:
        with pytest.raises(errors.ModelChecksumError):
            dlib_pack.verified_path("dlib_shape_5")
    finally:
        monkeypatch.undo()
        dlib_pack.verified_path.cache_clear()
    assert dlib_pack.verified_path("dlib_shape_5").is_file()


def test_every_model_records_provenance() -> None:
    for info in dlib_pack.all_model_infos():
        assert info.source_package and info.source_version != "unknown"
        assert info.licence and info.version
        assert info.sha256 or info.name == "dlib_hog"
