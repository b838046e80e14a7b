"""The deepfake ensemble with real models on real faces: LFW faces vs their self-blended versions,
and one short video analysis of a deepfake_samples clip.

Self-blending (Shiohara & Yamasaki 2022) makes a fake from a real face alone: a colour-shifted,
slightly moved and blurred copy of the face pasted back through a soft face mask. It is the kind
of artefact the blending signals and SBI are built for, made without any deepfake data.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from facesocial.forensics.calibration import packaged_reference
from facesocial.forensics.ensemble import DeepfakeDetector
from facesocial.forensics.sbi import SbiClassifier
from facesocial.forensics.selfblend import self_blend
from facesocial.forensics.video_analysis import analyze_video
from facesocial.models.runtime import ModelCache
from facesocial.settings import DeepfakeSettings, VideoLimits
from facesocial.vision.detect_blazeface import BlazeFaceDetector
from facesocial.vision.embed_dlib import DlibResnetEmbedder
from facesocial.vision.heads.embedding import FaceresEmbedder
from facesocial.vision.heads.mesh import MeshHead
from facesocial.vision.landmarks import DlibFivePointLandmarker
from facesocial.vision.pipeline import FacePipeline
from tests.conftest import shared_path

pytestmark = [pytest.mark.model, pytest.mark.shared_data]

# Every 60th person of the development part: a fixed, spread-out handful.
LFW_STRIDE, LFW_COUNT = 60, 8


@pytest.fixture(scope="module")
def detector(model_dir: Path) -> DeepfakeDetector:
    cache = ModelCache(model_dir)
    dlib = DlibResnetEmbedder()
    faceres = FaceresEmbedder(cache.get("faceres"))
    pipeline = FacePipeline(
        BlazeFaceDetector(cache.get("blazeface_full")),
        DlibFivePointLandmarker(),
        {dlib.model.name: dlib, faceres.model.name: faceres},
        dlib.model.name,
        mesh=MeshHead(cache.get("facemesh"), cache.get("iris")),
    )
    return DeepfakeDetector(pipeline, SbiClassifier.default(), None, DeepfakeSettings())


def test_self_blended_lfw_faces_score_higher_than_the_originals(detector: DeepfakeDetector) -> None:
    if not packaged_reference().signals:
        pytest.skip("the packaged real-face reference is missing")
    root = shared_path("lfw_deepfunneled", "lfw-deepfunneled")
    rng = np.random.default_rng(0)
    real_scores, fake_scores, real_bands = [], [], []
    people = sorted(p for p in root.iterdir() if p.is_dir())[::LFW_STRIDE][:LFW_COUNT]
    for person in people:
        path = sorted(person.glob("*.jpg"))[0]
        rgb = np.asarray(Image.open(path).convert("RGB"))
        real = detector.analyze_image(rgb, "standard")
        assert real.faces_analyzed >= 1, path
        face = real.faces[0]
        assert face.signals.keys() >= {
            "blend_colour",
            "blend_noise",
            "blend_boundary",
            "freq_hf",
            "freq_slope",
        }
        for value in face.signals.values():
            assert value.suspicion is None or 0.0 <= value.suspicion <= 1.0
        faces = detector.detect(rgb)
        assert faces.landmarks is not None
        blended = self_blend(rgb, faces.boxes[0], faces.landmarks[0], rng)
        fake = detector.score_faces(blended, faces[np.array([0])], "standard")[0]
        real_scores.append(face.score)
        fake_scores.append(fake.score)
        real_bands.append(real.band)
    assert np.mean(fake_scores) > np.mean(real_scores) + 0.05
    assert sum(f > r for f, r in zip(fake_scores, real_scores, strict=True)) >= 6
    # Real faces are not called fake: a weak detector may be uncertain, never overconfident.
    assert real_bands.count("fake") == 0


def test_short_video_analysis_of_a_deepfake_sample(detector: DeepfakeDetector) -> None:
    clip = shared_path("deepfake_samples", "icpr2020dfdc_dfdc", "dfdc_train_part_0", "brtujopkby.mp4")
    calls: list[tuple[float, float | None]] = []
    limits = VideoLimits(max_analyzed_frames=6)
    verdict = analyze_video(
        clip, detector, limits, 2.0, "advanced", progress=lambda f, eta: calls.append((f, eta))
    )
    assert verdict.total_frames == 300 and verdict.analyzed_frames == 6
    assert verdict.sample_fps == pytest.approx(0.6, abs=0.01)  # 6 frames over 10 s
    assert [round(f, 3) for f, _ in calls] == [round(k / 6, 3) for k in range(1, 7)]
    assert calls[-1][1] == pytest.approx(0.0)
    assert len(verdict.frames) == 6 and all(len(f.frame_hash) == 64 for f in verdict.frames)
    assert all(f.faces for f in verdict.frames)  # one frontal speaker throughout
    main = max(verdict.persons, key=lambda p: p.frames)
    assert main.frames >= 5 and main.deciding
    assert {"identity_drift", "landmark_jitter", "blink"} <= set(main.signals)
    assert main.signals["blink"].suspicion is None  # 0.6 frames/s cannot see blinks
    assert verdict.band in {"real", "uncertain", "fake"}
    assert 0.0 <= verdict.manipulation_score <= 1.0 and 0.0 <= verdict.consistency_score <= 1.0
    assert verdict.features is not None and np.linalg.norm(verdict.features) == pytest.approx(1.0, abs=1e-5)
    assert verdict.model_version.startswith("deepfake_ensemble@1.0")


def test_a_raising_progress_callback_cancels_the_analysis(detector: DeepfakeDetector) -> None:
    clip = shared_path("deepfake_samples", "icpr2020dfdc_dfdc", "dfdc_train_part_0", "brtujopkby.mp4")

    class CancelledError(Exception):
        pass

    seen: list[float] = []

    def progress(fraction: float, eta: float | None) -> None:
        seen.append(fraction)
        if len(seen) == 2:
            raise CancelledError

    with pytest.raises(CancelledError):
        analyze_video(clip, detector, VideoLimits(max_analyzed_frames=10), 2.0, "basic", progress=progress)
    assert len(seen) == 2
