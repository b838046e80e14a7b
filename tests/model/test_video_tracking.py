"""Tracking real faces in real videos: BlazeFace and faceres on sampled frames, FaceTracker ids.

../shared/data/face_recognition_identities' Hamilton clip: a wide shot (0-1 s), the audience
(1-3 s), the speaker alone in close-up (3.0-7.0 s), the audience again (from 7.5 s).
../shared/data/deepfake_samples' DFDC clip yhffcuhhjy.mp4: one person talking for 10 s.
Each clip is detected once (module fixtures); the tests run trackers over those detections.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest

from facesocial.container import Container
from facesocial.settings import ModelSettings, Settings
from facesocial.video.frames import iter_frames
from facesocial.video.probe import probe_video
from facesocial.video.tracking import FaceTracker
from tests.conftest import shared_path

pytestmark = [pytest.mark.model, pytest.mark.shared_data]


@dataclass
class Detected:
    timestamp_ms: int
    boxes: npt.NDArray[np.float32]  # largest face first
    embeddings: npt.NDArray[np.float32]  # faceres, one row per box


@pytest.fixture(scope="module")
def container(model_dir: Path) -> Container:
    container = Container(Settings(models=ModelSettings(model_dir=model_dir)))
    if "faceres" not in container.pipeline.embedders:
        pytest.skip("the faceres embedding model is not in the model folder")
    return container


def detect(container: Container, path: Path, sample_fps: float) -> list[Detected]:
    pipeline = container.pipeline
    info = probe_video(path, container.settings.video)
    rows = []
    for frame in iter_frames(path, info, sample_fps, 100):
        faces = pipeline.detect(frame.rgb, container.detect_defaults)
        vectors = np.zeros((0, 1), np.float32)
        if len(faces):
            vectors = np.asarray(pipeline.embed(frame.rgb, faces, "faceres").columns["embedding"], np.float32)
        rows.append(Detected(frame.timestamp_ms, faces.boxes, vectors))
    return rows


@pytest.fixture(scope="module")
def hamilton(container: Container) -> list[Detected]:
    path = shared_path("face_recognition_identities", "examples", "short_hamilton_clip.mp4")
    return detect(container, path, 2.0)


@pytest.fixture(scope="module")
def dfdc_single(container: Container) -> list[Detected]:
    path = shared_path("deepfake_samples", "icpr2020dfdc_dfdc", "dfdc_train_part_10", "yhffcuhhjy.mp4")
    return detect(container, path, 1.0)


def track(
    rows: list[Detected], embeddings: bool, cuts_ms: tuple[int, ...] = ()
) -> tuple[list[tuple[int, list[int]]], FaceTracker]:
    """(timestamp, ids largest face first) per frame; ``cuts_ms`` are marked with end_tracks."""
    tracker = FaceTracker()
    cuts = list(cuts_ms)
    out = []
    for row in rows:
        if cuts and row.timestamp_ms >= cuts[0]:
            tracker.end_tracks()
            cuts.pop(0)
        vectors = row.embeddings if embeddings and len(row.boxes) else None
        out.append((row.timestamp_ms, tracker.update(row.boxes, row.timestamp_ms, vectors).tolist()))
    return out, tracker


@pytest.mark.parametrize("embeddings", [True, False])
def test_speaker_in_close_up_keeps_one_id(hamilton: list[Detected], embeddings: bool) -> None:
    tracked, _ = track(hamilton, embeddings)
    close_up = [(t, ids) for t, ids in tracked if 3000 <= t <= 7100]
    assert len(close_up) == 9
    assert all(ids for _, ids in close_up), "the speaker was not detected in every close-up frame"
    assert len({ids[0] for _, ids in close_up}) == 1, close_up


def test_a_marked_scene_cut_ends_the_speaker_track(hamilton: list[Detected]) -> None:
    # After the cut to the audience, a face sits where the speaker's was; faceres similarity
    # alone does not exclude it (FaceTracker's min_similarity), the marked cut does.
    tracked, tracker = track(hamilton, True, cuts_ms=(1000, 3000, 7500))
    speaker = {ids[0] for t, ids in tracked if 3000 <= t <= 7100}
    assert len(speaker) == 1
    after_cut = [ids for t, ids in tracked if t >= 7500]
    assert after_cut and all(speaker.isdisjoint(ids) for ids in after_cut)
    (summary,) = [t for t in tracker.tracks() if t.track_id in speaker]
    assert (summary.first_timestamp_ms, summary.last_timestamp_ms, summary.frames_seen) == (3003, 7007, 9)


@pytest.mark.parametrize("embeddings", [True, False])
def test_single_person_clip_is_one_track(dfdc_single: list[Detected], embeddings: bool) -> None:
    # Sampled at 1 frame/s: the samples are further apart than max_missed_seconds (1 s), yet a
    # face seen in the previous sample was not missed.
    tracked, tracker = track(dfdc_single, embeddings)
    assert len(tracked) == 10
    seen = [(t, ids) for t, ids in tracked if ids]
    assert len(seen) >= 9
    assert {ids[0] for _, ids in seen} == {1}
    summary = tracker.tracks()[0]
    assert (summary.track_id, summary.frames_seen) == (1, len(seen))
    assert summary.first_timestamp_ms == seen[0][0] and summary.last_timestamp_ms >= 9000
