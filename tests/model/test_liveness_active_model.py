"""Active liveness on real models and real video: a live blink passes, photo attacks fail.

Frames are decoded with their presentation times (``iter_frames``), observed with the real
detector, face mesh and embedder (:func:`observe`), and fed to :func:`advance`. Photo attacks
are synthesised from LFW stills: slid, zoomed and rotated (affine), or tilted in perspective
(a printed photo turned about its vertical axis), on a 640x480 canvas at 10 fps.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest

from facesocial.antispoof import active, motion
from facesocial.antispoof.active import ActiveConfig, SessionProgress, advance, needs_embedding
from facesocial.antispoof.observe import FrameObservation, observe
from facesocial.container import Container
from facesocial.settings import Settings
from facesocial.vision.pipeline import FacePipeline
from tests.conftest import shared_path

pytestmark = [pytest.mark.model, pytest.mark.shared_data]

FPS = 10.0
EMBEDDER = "dlib_resnet_v1"
BLINK_VIDEO = ("face_liveness_blink_video", "video.mp4")
REAL_CLIP = ("deepfake_samples", "icpr2020dfdc_notebook_samples", "lynaeydofd.mp4")
LFW = ("lfw_deepfunneled", "lfw-deepfunneled")
# LFW people (the first image of each) by their place in the sorted folder list (every 400th),
# not by looking at them.
PHOTO_PEOPLE = (0, 400, 800)


@pytest.fixture(scope="module")
def pipeline(model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> FacePipeline:
    settings = Settings(data_dir=tmp_path_factory.mktemp("liveness-models"))
    settings.models.model_dir = model_dir
    container = Container(settings)
    if container.pipeline.mesh is None:
        pytest.skip("face mesh models are not installed (facesocial models pull)")
    # The pipeline liveness sessions use (one upright detector pass per frame).
    return container.frame_pipeline


def video_frames(path: Path, fps: float = FPS, max_frames: int = 300) -> Iterator[tuple[float, np.ndarray]]:
    from facesocial.video.frames import iter_frames
    from facesocial.video.probe import probe_video

    settings = Settings()
    info = probe_video(path, settings.video)
    for frame in iter_frames(path, info, fps, max_frames):
        yield float(frame.timestamp_ms), frame.rgb


def run_session(
    pipeline: FacePipeline,
    challenges: list[str],
    frames: Iterator[tuple[float, np.ndarray]] | list[tuple[float, np.ndarray]],
    config: ActiveConfig,
    max_attempts: int = 1,
) -> tuple[SessionProgress, list[FrameObservation]]:
    """Observe each frame (embedding when :func:`needs_embedding` asks) and advance the session."""
    progress = SessionProgress.start(challenges, max_attempts=max_attempts)
    seen: list[FrameObservation] = []
    for t, rgb in frames:
        embed = EMBEDDER if needs_embedding(progress, t, config) else None
        observation = observe(pipeline, rgb, t, embed_model=embed)
        seen.append(observation)
        progress = advance(progress, [observation], config)
        if progress.status != "active":
            break
    return progress, seen


def lfw_photo(index: int) -> np.ndarray:
    people = sorted(p for p in shared_path(*LFW).iterdir() if p.is_dir())
    image = sorted(people[index].glob("*.jpg"))[0]
    bgr = cv2.imread(str(image))
    assert bgr is not None, image
    return np.ascontiguousarray(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))


def photo_attack(photo: np.ndarray, kind: str, seconds: float = 6.0) -> list[tuple[float, np.ndarray]]:
    """Frames (time ms, 640x480 RGB) of a photo held in front of the camera and moved.

    ``affine``: slid ±120 px, zoomed 0.9-1.9x, rotated ±15°. ``perspective``: turned about its
    vertical axis up to 40° and back (a pinhole camera 800 px from the photo), also slid.
    """
    h, w = photo.shape[:2]
    n = round(seconds * FPS)
    frames = []
    for k in range(n):
        phase = k / (n - 1)
        canvas = np.full((480, 640, 3), 120, np.uint8)
        if kind == "affine":
            scale = 1.4 + 0.5 * np.sin(2 * np.pi * phase)
            angle = 15 * np.sin(3 * np.pi * phase)
            centre = (320 + 120 * np.sin(2 * np.pi * phase), 240 + 50 * np.cos(2 * np.pi * phase))
            matrix = cv2.getRotationMatrix2D((w / 2, h / 2), angle, scale)
            matrix[:, 2] += (centre[0] - w / 2, centre[1] - h / 2)
            cv2.warpAffine(photo, matrix, (640, 480), dst=canvas, borderMode=cv2.BORDER_TRANSPARENT)
        else:
            turn = np.radians(40 * np.sin(np.pi * phase))
            shift = 60 * np.sin(2 * np.pi * phase)
            corners = np.asarray([[0, 0], [w, 0], [w, h], [0, h]], np.float32)
            focal, size = 800.0, 1.8
            moved = []
            for x, y in corners:
                sx, sy = (x - w / 2) * size, (y - h / 2) * size
                depth = sx * np.sin(turn) + focal
                moved.append([320 + shift + focal * sx * np.cos(turn) / depth, 240 + focal * sy / depth])
            homography = cv2.getPerspectiveTransform(corners, np.asarray(moved, np.float32))
            cv2.warpPerspective(photo, homography, (640, 480), dst=canvas, borderMode=cv2.BORDER_TRANSPARENT)
        frames.append((100.0 + k * 1000.0 / FPS, canvas))
    return frames


def test_the_blink_video_passes_a_blink_challenge(pipeline: FacePipeline) -> None:
    path = shared_path(*BLINK_VIDEO)
    progress, seen = run_session(pipeline, ["blink"], video_frames(path), ActiveConfig())
    assert (progress.status, progress.failure_reason) == ("completed", None)
    assert progress.results[0]["peak"] < ActiveConfig().blink_closed
    assert (
        progress.min_similarity is None or progress.min_similarity >= ActiveConfig().identity_min_similarity
    )
    assert all(o.face_count == 1 for o in seen)


@pytest.fixture(scope="module")
def affine_attacks(pipeline: FacePipeline) -> list[list[FrameObservation]]:
    """Each photo's frames observed once, every frame embedded (more than needs_embedding asks,
    never fewer), so that every challenge below replays the same observations."""
    return [
        [observe(pipeline, rgb, t, embed_model=EMBEDDER) for t, rgb in photo_attack(lfw_photo(i), "affine")]
        for i in PHOTO_PEOPLE
    ]


@pytest.mark.parametrize("challenge", ["turn_left", "turn_right", "look_up", "nod", "blink"])
def test_a_moved_photo_fails_every_challenge(
    affine_attacks: list[list[FrameObservation]], challenge: str
) -> None:
    # A 3 s window and one attempt, so the 6 s attack ends the session.
    config = ActiveConfig(challenge_window_ms=3_000)
    for seen in affine_attacks:
        progress = SessionProgress.start([challenge], max_attempts=1)
        for observation in seen:
            progress = advance(progress, [observation], config)
        assert sum(o.face_count > 0 for o in seen) >= 0.8 * len(seen), "the photo's face was not tracked"
        assert progress.status == "failed", progress.results
        assert progress.failure_reason in (
            active.CHALLENGE_TIMEOUT,
            active.WRONG_CHALLENGE,
            active.RIGID_MOTION,
        )


@pytest.fixture(scope="module")
def real_clip_rigidity(pipeline: FacePipeline) -> float:
    observations = [
        observe(pipeline, rgb, t) for t, rgb in video_frames(shared_path(*REAL_CLIP), max_frames=100)
    ]
    return float(motion.video_cues(observations)["rigidity"])


def test_rigidity_separates_moved_photos_from_a_real_head(
    affine_attacks: list[list[FrameObservation]], real_clip_rigidity: float
) -> None:
    for seen in affine_attacks:
        cues = motion.video_cues(seen)
        assert cues["is_rigid"] is True
        assert cues["rigidity"] < motion.RIGIDITY_THRESHOLD < real_clip_rigidity


def test_a_perspective_tilted_photo_does_not_pass_turn_left(pipeline: FacePipeline) -> None:
    config = ActiveConfig(challenge_window_ms=3_000)
    for index in PHOTO_PEOPLE:
        frames = photo_attack(lfw_photo(index), "perspective")
        progress, seen = run_session(pipeline, ["turn_left"], frames, config)
        assert progress.status == "failed"
        yaws = [o.yaw for o in seen if o.yaw is not None]
        if max(yaws) - min(yaws) >= config.turn_yaw_deg:
            # Had the tilt reached the yaw threshold, the planar-motion rule must have stopped it.
            assert progress.failure_reason == active.RIGID_MOTION
        else:
            assert progress.failure_reason in (active.CHALLENGE_TIMEOUT, active.WRONG_CHALLENGE)


def test_a_face_swapped_mid_session_fails_face_changed(pipeline: FacePipeline) -> None:
    live = [(t, rgb) for t, rgb in video_frames(shared_path(*BLINK_VIDEO), max_frames=30)]
    start = live[-1][0]
    photo = cv2.resize(lfw_photo(PHOTO_PEOPLE[1]), (500, 500), interpolation=cv2.INTER_LINEAR)
    other = np.full((854, 480, 3), 120, np.uint8)
    other[177:677, :] = photo[:, 10:490]
    swapped = [(start + (k + 1) * 100.0, other) for k in range(15)]
    config = ActiveConfig()
    progress, _ = run_session(pipeline, ["turn_left", "nod"], live + swapped, config)
    assert (progress.status, progress.failure_reason) == ("failed", active.FACE_CHANGED)
    assert progress.min_similarity is not None and progress.min_similarity < config.identity_min_similarity
