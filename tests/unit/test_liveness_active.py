"""Active liveness rules on synthetic observation sequences (no models).

Frames are 10 fps on the session clock. A "performance" is a list of per-frame poses and face
measures; each test states which rule it exercises and fails if the rule is missing.
"""

from __future__ import annotations

import json
import random
import secrets
from collections.abc import Iterable
from dataclasses import replace

import numpy as np
import pytest

from facesocial.antispoof import active, motion
from facesocial.antispoof.active import ActiveConfig, SessionProgress, advance, needs_embedding
from facesocial.antispoof.challenges import (
    FACE_CHALLENGES,
    HEAD_CHALLENGES,
    random_sequence,
    validate_sequence,
)
from facesocial.antispoof.observe import FrameObservation

STEP_MS = 100.0
CONFIG = ActiveConfig()
SUBJECT = (np.ones(8) / np.sqrt(8.0)).astype(np.float32)
OTHER = (np.array([1, -1, 1, -1, 1, -1, 1, -1]) / np.sqrt(8.0)).astype(np.float32)

# Per-frame (yaw, pitch, eye_openness, mouth_open, mouth_width) of each move, from neutral.
NEUTRAL: tuple[float, ...] = (0.0, 0.0, 1.0, 0.03, 0.55)


def _ramp(key: int, peak: float, frames: int = 4, hold: int = 2) -> list[tuple[float, ...]]:
    values = [peak * i / frames for i in range(1, frames + 1)] + [peak] * hold
    values += [peak * i / frames for i in range(frames - 1, -1, -1)]
    rows = []
    for v in values:
        row = list(NEUTRAL)
        row[key] = v
        rows.append(tuple(row))
    return rows


MOVES: dict[str, list[tuple[float, ...]]] = {
    "turn_left": _ramp(0, 30.0),
    "turn_right": _ramp(0, -30.0),
    "look_up": _ramp(1, 18.0),
    "nod": _ramp(1, -15.0),
    "blink": [(*NEUTRAL[:2], 0.1, *NEUTRAL[3:])] * 2 + [NEUTRAL] * 2,
    "open_mouth": [(*NEUTRAL[:3], 0.6, NEUTRAL[4])] * 3 + [NEUTRAL] * 2,
    "smile": [(*NEUTRAL[:4], 0.68)] * 3 + [NEUTRAL] * 2,
}


class Clock:
    """Hands out frame times 100 ms apart, starting at 100 ms after the first issue."""

    def __init__(self, start: float = STEP_MS) -> None:
        self.t = start - STEP_MS

    def frames(
        self, rows: Iterable[tuple[float, ...]], *, embedding: np.ndarray | None = SUBJECT, **extra: object
    ) -> list[FrameObservation]:
        out = []
        for yaw, pitch, eye, mouth, width in rows:
            self.t += STEP_MS
            fields: dict[str, object] = {
                "timestamp_ms": self.t,
                "face_count": 1,
                "box": (100.0, 100.0, 300.0, 300.0),
                "yaw": yaw,
                "pitch": pitch,
                "roll": 0.0,
                "eye_openness": eye,
                "mouth_open": mouth,
                "mouth_width": width,
                "embedding": embedding,
            }
            fields.update(extra)
            out.append(FrameObservation(**fields))  # type: ignore[arg-type]
        return out

    def neutral(self, n: int = 4, **kwargs: object) -> list[FrameObservation]:
        return self.frames([NEUTRAL] * n, **kwargs)  # type: ignore[arg-type]

    def perform(self, *kinds: str) -> list[FrameObservation]:
        out = []
        for kind in kinds:
            out += self.neutral(3) + self.frames(MOVES[kind]) + self.neutral(3)
        return out


def run(
    challenges: list[str], frames: list[FrameObservation], config: ActiveConfig = CONFIG
) -> SessionProgress:
    return advance(SessionProgress.start(challenges), frames, config)


@pytest.mark.parametrize("kind", list(MOVES))
def test_each_challenge_passes_when_performed(kind: str) -> None:
    clock = Clock()
    progress = run([kind], clock.perform(kind))
    assert progress.status == "completed", progress.failure_reason
    assert progress.results[0]["status"] == "passed"
    assert progress.results[0]["completed_ms"] > 0


@pytest.mark.parametrize("kind", list(MOVES))
def test_a_still_face_passes_nothing(kind: str) -> None:
    progress = run([kind], Clock().neutral(60))
    assert progress.status == "active"
    assert progress.results[0]["status"] == "pending"


def test_a_full_sequence_completes_in_order() -> None:
    clock = Clock()
    progress = run(["turn_left", "blink", "nod"], clock.perform("turn_left", "blink", "nod"))
    assert progress.status == "completed"
    done = [r["completed_ms"] for r in progress.results]
    assert done == sorted(done)
    assert progress.instruction()["progress"] == "3/3"


def test_the_other_head_move_first_fails_wrong_challenge() -> None:
    progress = run(["turn_left", "turn_right"], Clock().perform("turn_right", "turn_left"))
    assert (progress.status, progress.failure_reason) == ("failed", active.WRONG_CHALLENGE)


@pytest.mark.parametrize("current", ["blink", "open_mouth", "turn_left", "look_up"])
def test_an_unasked_head_move_fails_wrong_challenge(current: str) -> None:
    wrong = "turn_right" if current != "turn_right" else "turn_left"
    progress = run([current], Clock().perform(wrong))
    assert progress.failure_reason == active.WRONG_CHALLENGE


def test_blinks_and_mouth_moves_during_a_head_challenge_are_not_wrong() -> None:
    clock = Clock()
    progress = run(["turn_left"], clock.perform("blink", "open_mouth", "smile", "turn_left"))
    assert progress.status == "completed"


def test_a_recording_for_one_order_fails_for_another() -> None:
    recording = Clock().perform("turn_left", "blink", "nod")
    assert run(["turn_left", "blink", "nod"], recording).status == "completed"
    for order in (
        ["nod", "blink", "turn_left"],
        ["blink", "nod", "turn_left"],
        ["turn_left", "look_up", "blink"],
    ):
        replayed = run(order, recording)
        assert (replayed.status, replayed.failure_reason) == ("failed", active.WRONG_CHALLENGE), order


def test_one_long_turn_does_not_count_twice() -> None:
    clock = Clock()
    turned = (30.0, *NEUTRAL[1:])
    frames = clock.neutral(3) + clock.frames([turned] * 6)
    frames += clock.frames([(30.0, 0.0, 1.0, 0.6, 0.55)] * 3 + [turned] * 10)  # mouth opens while turned
    progress = run(["turn_left", "open_mouth", "turn_left"], frames)
    assert [r["status"] for r in progress.results] == ["passed", "passed", "pending"]
    # Returning to neutral and turning again completes it.
    progress = advance(progress, clock.perform("turn_left"), CONFIG)
    assert progress.status == "completed"


def test_a_blink_before_its_issue_does_not_count() -> None:
    clock = Clock()
    # The blink happens while turn_left is current, then the subject only turns.
    frames = clock.perform("blink", "turn_left") + clock.neutral(20)
    progress = run(["turn_left", "blink"], frames)
    assert [r["status"] for r in progress.results] == ["passed", "pending"]
    assert progress.status == "active"


def test_eyes_closed_at_the_issue_then_opened_is_not_a_blink() -> None:
    clock = Clock()
    closed = (*NEUTRAL[:2], 0.1, *NEUTRAL[3:])
    progress = run(["blink"], clock.frames([closed] * 5) + clock.neutral(10))
    assert progress.results[0]["status"] == "pending"


def test_a_window_without_the_challenge_uses_an_attempt_and_reissues() -> None:
    clock = Clock()
    idle = clock.neutral(int(CONFIG.challenge_window_ms / STEP_MS) + 2)
    progress = advance(SessionProgress.start(["nod"], max_attempts=3), idle, CONFIG)
    assert progress.status == "active"
    assert progress.attempts_used == 1
    assert progress.issued_at_ms == pytest.approx(CONFIG.challenge_window_ms + STEP_MS)
    assert progress.instruction()["attempts_left"] == 2
    progress = advance(progress, clock.perform("nod"), CONFIG)
    assert progress.status == "completed"


def test_attempts_exhausted_fails_challenge_timeout() -> None:
    clock = Clock()
    idle = clock.neutral(int(2 * CONFIG.challenge_window_ms / STEP_MS) + 5)
    progress = advance(SessionProgress.start(["nod"], max_attempts=2), idle, CONFIG)
    assert (progress.status, progress.failure_reason) == ("failed", active.CHALLENGE_TIMEOUT)
    assert progress.results[0]["status"] == "failed"


def _with_times(frames: list[FrameObservation], times: list[float]) -> list[FrameObservation]:
    return [replace(f, timestamp_ms=t) for f, t in zip(frames, times, strict=True)]


@pytest.mark.parametrize(
    "times",
    [
        [100.0, 200.0, 150.0, 300.0],  # goes back
        [100.0, 200.0, 200.0, 300.0],  # repeats
        [100.0, 200.0, 204.0, 300.0],  # 250 fps
        [100.0, 200.0, 2_300.0, 2_400.0],  # 2.1 s gap
        [-50.0, 100.0, 200.0, 300.0],  # before the session
    ],
)
def test_implausible_timing_fails(times: list[float]) -> None:
    frames = _with_times(Clock().neutral(4), times)
    progress = run(["blink"], frames)
    assert (progress.status, progress.failure_reason) == ("failed", active.IMPLAUSIBLE_TIMING)


def test_timing_is_checked_across_batches() -> None:
    clock = Clock()
    progress = run(["blink"], clock.neutral(5))
    stale = _with_times(Clock().neutral(1), [200.0])
    assert advance(progress, stale, CONFIG).failure_reason == active.IMPLAUSIBLE_TIMING
    assert advance(progress, clock.neutral(1), CONFIG).status == "active"


def test_a_different_face_fails_face_changed() -> None:
    clock = Clock()
    frames = clock.neutral(5) + clock.frames(MOVES["blink"], embedding=OTHER)
    progress = run(["blink"], frames)
    assert (progress.status, progress.failure_reason) == ("failed", active.FACE_CHANGED)


def test_completion_waits_for_an_embedded_frame() -> None:
    clock = Clock()
    frames = clock.neutral(3) + clock.frames(MOVES["blink"], embedding=None)
    progress = run(["blink"], frames)
    assert progress.status == "active"
    assert needs_embedding(progress, clock.t + STEP_MS, CONFIG)
    assert progress.instruction()["challenge"] is None
    progress = advance(progress, clock.neutral(1), CONFIG)
    assert progress.status == "completed"


def test_needs_embedding_every_interval() -> None:
    clock = Clock()
    progress = run(["nod"], clock.neutral(1))
    assert not needs_embedding(progress, clock.t + STEP_MS, CONFIG)
    assert needs_embedding(progress, clock.t + CONFIG.embedding_interval_ms, CONFIG)
    assert needs_embedding(SessionProgress.start(["nod"]), 100.0, CONFIG)


def test_losing_the_face_fails_face_lost_and_a_brief_loss_is_tolerated() -> None:
    clock = Clock()
    brief = (
        clock.neutral(3) + clock.frames([NEUTRAL] * 5, face_count=0, embedding=None) + clock.perform("blink")
    )
    assert run(["blink"], brief).status == "completed"
    clock = Clock()
    long = clock.neutral(3) + clock.frames([NEUTRAL] * 15, face_count=0, embedding=None)
    assert run(["blink"], long).failure_reason == active.FACE_LOST


def test_two_faces_fail_multiple_faces() -> None:
    clock = Clock()
    progress = run(["blink"], clock.neutral(3) + clock.neutral(3, face_count=2))
    assert progress.failure_reason == active.MULTIPLE_FACES


def test_low_passive_scores_fail_spoof_detected() -> None:
    config = ActiveConfig(passive_threshold=0.5)
    assert run(["blink"], Clock().perform("blink"), config).status == "completed"
    spoof = [replace(f, live_score=0.2) for f in Clock().perform("blink")]
    assert run(["blink"], spoof, config).failure_reason == active.SPOOF_DETECTED
    live = [replace(f, live_score=0.9) for f in Clock().perform("blink")]
    assert run(["blink"], live, config).status == "completed"


def _face_points(seed: int = 0) -> np.ndarray:
    """(468, 3) points of a face-like solid: eye corners at x ±1, the nose 0.6 in front."""
    rng = np.random.default_rng(seed)
    points: np.ndarray = np.c_[
        rng.uniform(-1.3, 1.3, 468), rng.uniform(-1.5, 1.0, 468), rng.uniform(0.0, 0.2, 468)
    ]
    points[33], points[263] = (-1.0, 0.0, 0.1), (1.0, 0.0, 0.1)
    for i in (1, 4, 5, 195, 197, 2, 98, 327, 48, 278):
        points[i, 2] = 0.6
    return points


def _landmarks(yaw: float, pitch: float, flat: bool) -> np.ndarray:
    """Image points (468, 2) of the face turned by yaw/pitch (degrees), weak perspective."""
    p = _face_points()
    if flat:
        p[:, 2] = 0.0
    a, b = np.radians(yaw), np.radians(pitch)
    ry = np.array([[np.cos(a), 0, np.sin(a)], [0, 1, 0], [-np.sin(a), 0, np.cos(a)]])
    rx = np.array([[1, 0, 0], [0, np.cos(b), -np.sin(b)], [0, np.sin(b), np.cos(b)]])
    q = p @ (rx @ ry).T
    depth = 6.0 - q[:, 2]  # camera 6 units away: some perspective
    return np.asarray(np.c_[320 + 300 * q[:, 0] / depth, 240 - 300 * q[:, 1] / depth], dtype=np.float32)


@pytest.mark.parametrize(("flat", "expected"), [(True, "failed"), (False, "completed")])
def test_planar_landmark_motion_fails_rigid_motion(flat: bool, expected: str) -> None:
    clock = Clock()
    frames = clock.perform("turn_left", "nod")
    frames = [replace(f, landmarks=_landmarks(f.yaw or 0.0, f.pitch or 0.0, flat)) for f in frames]
    progress = run(["turn_left", "nod"], frames)
    assert progress.status == expected
    assert progress.rigidity is not None
    if flat:
        assert progress.failure_reason == active.RIGID_MOTION


def test_rigidity_separates_a_tilted_plane_from_a_turning_solid() -> None:
    yaws = np.linspace(-30, 30, 13)
    solid = motion.rigidity([_landmarks(y, 0.0, flat=False) for y in yaws])
    plane = motion.rigidity([_landmarks(y, 0.0, flat=True) for y in yaws])
    assert plane < 1e-3
    assert solid > motion.RIGIDITY_THRESHOLD


def test_json_round_trip_keeps_behaviour() -> None:
    clock = Clock()
    frames = clock.perform("turn_left", "blink", "nod")
    frames = [replace(f, landmarks=_landmarks(f.yaw or 0.0, f.pitch or 0.0, False)) for f in frames]
    challenges = ["turn_left", "blink", "nod"]
    whole = run(challenges, frames)
    progress = SessionProgress.start(challenges)
    for start in range(0, len(frames), 7):
        progress = advance(progress, frames[start : start + 7], CONFIG)
        progress = SessionProgress.from_json(json.loads(json.dumps(progress.to_json())))
    assert progress.to_json() == whole.to_json()
    assert progress.status == "completed"


def test_advance_does_not_change_its_input() -> None:
    progress = SessionProgress.start(["blink"])
    before = json.dumps(progress.to_json())
    advance(progress, Clock().perform("blink"), CONFIG)
    assert json.dumps(progress.to_json()) == before


def test_frame_observation_json_round_trip() -> None:
    frame = Clock().neutral(1, live_score=0.7, face_luma=120.0, background_luma=None)[0]
    again = FrameObservation.from_json(json.loads(json.dumps(frame.to_json())))
    assert again.to_json() == frame.to_json()


def test_random_sequence_has_two_distinct_head_moves_and_one_face_move() -> None:
    rng = secrets.SystemRandom()
    seen = set()
    for _ in range(200):
        sequence = random_sequence(rng=rng)
        heads = [k for k in sequence if k in HEAD_CHALLENGES]
        assert len(sequence) == 3 and len(set(heads)) == 2
        assert sum(k in FACE_CHALLENGES for k in sequence) == 1
        seen.add(tuple(sequence))
    assert len(seen) > 30  # 12 head orders x 2 face kinds x 3 places = 72


@pytest.mark.parametrize("length", range(1, 7))
def test_random_sequences_of_every_length_are_valid(length: int) -> None:
    rng = random.Random(length)
    for _ in range(50):
        sequence = random_sequence(length, rng=rng)  # type: ignore[arg-type]
        assert validate_sequence(sequence) == sequence and len(sequence) == length


@pytest.mark.parametrize(
    ("sequence", "message"),
    [
        ([], "empty"),
        (["blink"] * 3 + ["nod"] * 4, "at most"),
        (["nod", "jump"], "unknown challenge 'jump'"),
        (["nod", "nod"], "repeated"),
    ],
)
def test_validate_sequence_errors(sequence: list[str], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        validate_sequence(sequence)
    with pytest.raises(ValueError):
        SessionProgress.start(sequence)


def test_count_blinks_and_flicker() -> None:
    assert motion.count_blinks([1.0, 0.9, 0.1, 0.2, 0.9, 1.0, 0.2, 0.8]) == 2
    assert motion.count_blinks([0.1, 0.9, 0.2, 0.5, 0.3]) == 0  # never open again
    times = np.arange(0, 6000, 40.0)  # 25 fps
    smooth = 120 + 5 * np.sin(2 * np.pi * 0.2 * times / 1000)
    flickering = smooth + 4 * np.sin(2 * np.pi * 7.0 * times / 1000)
    background = [100.0] * len(times)
    assert motion.flicker(times.tolist(), smooth.tolist(), background) < 0.5
    assert motion.flicker(times.tolist(), flickering.tolist(), background) > 1.5


def test_continuity_checks_every_face_frame_not_only_the_embedded_ones() -> None:
    """Another person's frames between two embedded frames of the subject: only the per-frame
    continuity embedding sees them."""
    config = ActiveConfig.for_embedder("dlib_resnet_v1", continuity_model="faceres")
    me = np.eye(8, dtype=np.float32)[0]
    clock = Clock()
    frames = clock.neutral(4) + clock.frames(MOVES["blink"], embedding=None)
    with_me = [replace(f, continuity=me) for f in frames]
    assert (
        run(["blink"], [*with_me, replace(clock.neutral(1)[0], continuity=me)], config).status == "completed"
    )
    slipped = [replace(f, continuity=OTHER if 4 <= i < 7 else me) for i, f in enumerate(frames)]
    progress = run(["blink"], slipped, config)
    assert (progress.status, progress.failure_reason) == ("failed", active.FACE_CHANGED)
    assert progress.min_continuity is not None and progress.min_continuity < 0.63


def test_a_face_frame_without_a_continuity_embedding_fails_when_required() -> None:
    config = ActiveConfig.for_embedder("dlib_resnet_v1", continuity_model="faceres")
    clock = Clock()
    progress = run(["blink"], clock.neutral(3), config)
    assert (progress.status, progress.failure_reason) == ("failed", active.FACE_CHANGED)


def test_advance_never_changes_the_progress_it_is_given() -> None:
    clock = Clock()
    before = run(["turn_left", "blink"], clock.neutral(4))
    snapshot = json.dumps(before.to_json(), sort_keys=True)
    after = advance(before, clock.frames(MOVES["turn_left"]) + clock.neutral(3), CONFIG)
    assert after.results[0]["status"] == "passed" and after.frames_seen > before.frames_seen
    assert json.dumps(before.to_json(), sort_keys=True) == snapshot
    assert before.copy().to_json() == before.to_json()
