"""Attention core without models: scores, PERCLOS window math, blinks, alert hysteresis, sessions.

The session tests feed :meth:`AttentionSession.process_measured` with synthetic meshes (the
model part, detection + mesh, is covered by tests/model/test_attention_model.py).
"""

from __future__ import annotations

import numpy as np
import pytest

from facesocial import errors
from facesocial.analytics.attention.alerts import AlertEvent, AlertTracker, Hysteresis, severity_for
from facesocial.analytics.attention.perclos import EyeClosure, Perclos
from facesocial.analytics.attention.scoring import ramp, score_face, score_values
from facesocial.analytics.attention.session import AttentionSession
from facesocial.models.manifest import ModelRef
from facesocial.settings import AttentionSettings
from facesocial.vision.faces import Faces
from facesocial.vision.heads.mesh import Gaze, MeshResult

SETTINGS = AttentionSettings()


def mesh(
    yaw: float = 0.0, pitch: float = -5.0, gaze: tuple[float, float] = (0.0, 0.0), eyes: float = 1.0
) -> MeshResult:
    return MeshResult(
        landmarks=np.zeros((468, 3), np.float32),
        face_score=0.99,
        yaw=yaw,
        pitch=pitch,
        roll=0.0,
        eye_openness_left=eyes,
        eye_openness_right=eyes,
        ear_left=0.1 + 0.18 * eyes,
        ear_right=0.1 + 0.18 * eyes,
        blink=eyes < 0.35,
        gaze=Gaze(*gaze),
        iris_left=np.zeros(2, np.float32),
        iris_right=np.zeros(2, np.float32),
    )


# --- scoring ------------------------------------------------------------------------------------


def test_ramp_is_one_inside_the_tolerance_and_zero_beyond_the_limit() -> None:
    assert ramp(10.0, 15.0, 45.0) == 1.0
    assert ramp(30.0, 15.0, 45.0) == pytest.approx(0.5)
    assert ramp(45.0, 15.0, 45.0) == 0.0
    assert ramp(90.0, 15.0, 45.0) == 0.0


def test_a_frontal_open_eyed_face_scores_100() -> None:
    scores = score_face(mesh(), SETTINGS)
    assert scores.attention_score == pytest.approx(100.0)
    assert scores.head_pose_score == scores.gaze_score == scores.eye_openness_score == pytest.approx(100.0)
    assert not scores.is_looking_away


def test_scores_fall_with_yaw_and_large_yaw_is_looking_away() -> None:
    values = [score_face(mesh(yaw=yaw), SETTINGS) for yaw in (0, 20, 30, 40, 60, -60)]
    heads = [v.head_pose_score for v in values]
    assert heads[0] > heads[1] > heads[2] > heads[3] > heads[4] == 0.0
    assert heads[5] == heads[4]  # symmetric
    assert [v.is_looking_away for v in values] == [False, False, False, True, True, True]
    assert values[4].attention_score < values[0].attention_score


def test_pitch_is_measured_from_the_neutral_pitch() -> None:
    neutral = score_face(mesh(pitch=SETTINGS.pitch_neutral_deg), SETTINGS)
    down = score_face(mesh(pitch=SETTINGS.pitch_neutral_deg - 35.0), SETTINGS)
    assert neutral.head_pose_score == 100.0
    assert down.head_pose_score < 30.0 and down.is_looking_away


def test_gaze_off_centre_lowers_the_gaze_score_and_far_off_is_looking_away() -> None:
    centre = score_face(mesh(gaze=(0.1, 0.0)), SETTINGS)
    aside = score_face(mesh(gaze=(0.5, 0.0)), SETTINGS)
    far = score_face(mesh(gaze=(-0.8, 0.0)), SETTINGS)
    assert centre.gaze_score == 100.0 > aside.gaze_score > far.gaze_score == 0.0
    assert not aside.is_looking_away and far.is_looking_away


def test_closed_eyes_score_zero_for_eye_openness() -> None:
    closed = score_face(mesh(eyes=0.1), SETTINGS)
    assert closed.eye_openness_score == 0.0
    share = SETTINGS.weight_gaze / (SETTINGS.weight_gaze + SETTINGS.weight_eye_openness)
    assert closed.attention_score == pytest.approx(100.0 * share)
    turned = score_face(mesh(yaw=30.0, eyes=0.1), SETTINGS)
    assert turned.attention_score == pytest.approx(turned.head_pose_score * share)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_every_score_is_in_range_for_any_input(seed: int) -> None:
    rng = np.random.default_rng(seed)
    for _ in range(300):
        s = score_values(
            yaw=float(rng.uniform(-180, 180)),
            pitch=float(rng.uniform(-90, 90)),
            gaze_h=float(rng.uniform(-1, 1)),
            gaze_v=float(rng.uniform(-1, 1)),
            openness=float(rng.uniform(0, 1)),
            settings=SETTINGS,
        )
        for value in (s.head_pose_score, s.gaze_score, s.eye_openness_score, s.attention_score):
            assert 0.0 <= value <= 100.0


# --- PERCLOS and blinks ---------------------------------------------------------------------------


def test_perclos_is_the_closed_share_of_the_window_weighted_by_time() -> None:
    p = Perclos(10.0, max_gap_ms=1000)
    assert p.add(0, False) == 0.0  # the first sample stands for no time
    # 100 ms samples: 2 s open, then 1 s closed, then 1 s open -> 1 s closed of 4 s.
    t = 0
    for closed in [False] * 20 + [True] * 10 + [False] * 10:
        t += 100
        value = p.add(t, closed)
    assert value == pytest.approx(0.25)
    assert p.observed_seconds == pytest.approx(4.0)
    # Frames at uneven rates count by the time they stand for, not by their number.
    q = Perclos(10.0)
    q.add(0, False)
    q.add(900, False)  # 900 ms open
    for t in range(1000, 1400, 100):
        q.add(t, True)  # 4 x 100 ms closed
    assert q.perclos == pytest.approx(400 / 1300)


def test_perclos_forgets_what_left_the_window_and_ignores_gaps() -> None:
    p = Perclos(2.0, max_gap_ms=500)
    p.add(0, True)
    for t in range(100, 2100, 100):
        p.add(t, True)
    assert p.perclos == 1.0
    for t in range(2100, 4100, 100):
        p.add(t, False)
    assert p.perclos == 0.0  # the closed second is out of the 2 s window
    p.add(9000, True)  # a 4.9 s gap: only its last 500 ms count
    assert p.observed_seconds == pytest.approx(0.5)
    with pytest.raises(ValueError):
        p.add(8000, False)


def test_drowsy_needs_a_full_enough_window() -> None:
    p = Perclos(10.0, drowsy_threshold=0.15, min_coverage=0.5)
    p.add(0, True)
    for t in range(100, 3100, 100):
        p.add(t, True)
    assert p.perclos == 1.0 and not p.is_drowsy  # 3 s of 10: not enough seen
    for t in range(3100, 5100, 100):
        p.add(t, False)
    assert p.observed_seconds == pytest.approx(5.0)
    assert p.perclos == pytest.approx(0.6) and p.is_drowsy
    for t in range(5100, 30100, 100):
        p.add(t, False)
    assert not p.is_drowsy


def test_blinks_are_short_closed_runs_and_long_closures_are_not() -> None:
    p = Perclos(60.0, blink_max_ms=500)
    pattern = [False] * 5 + [True] * 1 + [False] * 5 + [True] * 3 + [False] * 5 + [True] * 20 + [False] * 3
    ended = []
    for i, closed in enumerate(pattern):
        p.add(i * 40, closed)
        ended.append(p.blink_ended)
    assert p.blinks == 2  # 1 and 3 frames at 25 fps; the 800 ms closure is not a blink
    assert sum(ended) == 2


def test_eye_closure_band_does_not_chatter() -> None:
    closure = EyeClosure(closed_below=0.2, open_above=0.35)
    states = [closure.update(v) for v in (0.9, 0.19, 0.25, 0.3, 0.22, 0.36, 0.3, 0.21)]
    assert states == [False, True, True, True, True, False, False, False]


# --- alerts -----------------------------------------------------------------------------------------


def run_tracker(scores: list[float], step_ms: int = 200) -> list[AlertEvent]:
    tracker = AlertTracker(7, SETTINGS)
    events: list[AlertEvent] = []
    for i, score in enumerate(scores):
        events += tracker.update(i * step_ms, attention_score=score, is_looking_away=False, is_drowsy=False)
    return events


def test_not_attentive_opens_after_the_delay_and_closes_after_recovery() -> None:
    # 5 frames/s: 2 s good, 5 s low, 4 s good.
    events = run_tracker([90.0] * 10 + [30.0] * 25 + [90.0] * 20)
    assert [(e.alert_type, e.state) for e in events] == [
        ("not_attentive", "opened"),
        ("not_attentive", "closed"),
    ]
    opened, closed = events
    assert opened.started_ms == 2000 and opened.timestamp_ms == 5000  # 3 s after it began
    assert opened.severity == "info" and opened.track_id == 7
    assert closed.timestamp_ms == 7000 + 2000  # recovery began at 7 s, held 2 s
    assert closed.duration_seconds == pytest.approx(5.0)


def test_hysteresis_does_not_flap_on_a_noisy_signal() -> None:
    rng = np.random.default_rng(3)
    # Noise around the opening level, never above the closing level for long: at most one alert,
    # and once open it stays open until the signal really recovers.
    noisy = list(np.clip(45 + rng.normal(0, 6, 300), 0, 100))
    recovered = [80.0] * 30
    events = run_tracker(noisy + recovered)
    states = [e.state for e in events if e.state != "escalated"]
    assert states == ["opened", "closed"]
    # A signal oscillating across both levels every frame never opens anything.
    assert run_tracker([30.0, 80.0] * 200) == []


def test_values_between_the_levels_keep_an_open_alert_open() -> None:
    events = run_tracker([30.0] * 20 + [58.0] * 50)
    assert [e.state for e in events] == ["opened", "escalated"]


def test_severity_escalates_with_duration() -> None:
    assert severity_for(0, "info", 10, 30) == "info"
    assert severity_for(10, "info", 10, 30) == "warning"
    assert severity_for(31, "info", 10, 30) == "critical"
    assert severity_for(0, "warning", 10, 30) == "warning"
    events = run_tracker([20.0] * 200 + [90.0] * 20)  # 40 s low at 5 frames/s
    assert [(e.state, e.severity) for e in events] == [
        ("opened", "info"),
        ("escalated", "warning"),
        ("escalated", "critical"),
        ("closed", "critical"),
    ]
    escalated = [e for e in events if e.state == "escalated"]
    assert [e.duration_seconds for e in escalated] == pytest.approx([10.0, 30.0])


def test_drowsy_starts_at_warning_and_close_requires_an_open_alert() -> None:
    machine = Hysteresis(
        1, "drowsy", open_seconds=1, close_seconds=1, warning_after_seconds=10, critical_after_seconds=30
    )
    with pytest.raises(RuntimeError):
        machine.close(0)
    events = [e for t in range(0, 1200, 100) for e in machine.update(t, bad=True, good=False)]
    assert [(e.state, e.severity) for e in events] == [("opened", "warning")]


# --- session (model-free part) ----------------------------------------------------------------


def faces_at(*xs: float) -> Faces:
    boxes = np.array([[x, 100.0, x + 120.0, 250.0] for x in xs], np.float32).reshape(-1, 4)
    return Faces(boxes=boxes, confidence=np.full(len(xs), 0.9, np.float32), detector=ModelRef("stub", "0"))


def test_session_tracks_several_faces_and_closes_alerts_of_vanished_tracks() -> None:
    session = AttentionSession(None, SETTINGS)  # type: ignore[arg-type]  # the model part is unused
    events: list[AlertEvent] = []
    frames = []
    for i in range(30):  # 6 s at 5 frames/s: the left face looks away, the right one attends
        frame = session.process_measured(faces_at(50, 400), [mesh(yaw=50.0), mesh()], i * 200)
        frames.append(frame)
        events += frame.alerts
    ids = {f.track_id for frame in frames for f in frame.faces}
    assert len(ids) == 2
    left = frames[-1].faces[0]
    assert (
        left.is_looking_away and left.head_pose_score == 0.0 and frames[-1].faces[1].attention_score == 100.0
    )
    opened = {(e.track_id, e.alert_type) for e in events if e.state == "opened"}
    assert opened == {(left.track_id, "looking_away"), (left.track_id, "not_attentive")}
    # The left face leaves; after the tracker's 1 s its track ends and both alerts close.
    later: list[AlertEvent] = []
    ended_at = []
    for i in range(30, 40):
        frame = session.process_measured(faces_at(400), [mesh()], i * 200)
        later += frame.alerts
        if frame.ended_tracks:
            assert frame.ended_tracks == [left.track_id]
            ended_at.append(frame.timestamp_ms)
    assert ended_at == [29 * 200 + 1200]  # first frame more than 1 s after the last sighting
    assert sorted((e.alert_type, e.state) for e in later) == [
        ("looking_away", "closed"),
        ("not_attentive", "closed"),
    ]
    # Reported when the track ends; the alert lasted until the face's last sighting.
    assert all(e.timestamp_ms == ended_at[0] for e in later)
    assert all(e.duration_seconds == pytest.approx((29 * 200 - e.started_ms) / 1000) for e in later)
    assert session.close(40 * 200) == []


def test_session_close_closes_open_alerts_and_rejects_time_going_back() -> None:
    session = AttentionSession(None, SETTINGS)  # type: ignore[arg-type]
    for i in range(25):
        session.process_measured(faces_at(100), [mesh(eyes=0.05, yaw=60)], i * 200)
    with pytest.raises(errors.ValidationFailedError):
        session.process_measured(faces_at(100), [mesh()], 100)
    closing = session.close(5000)
    assert {e.alert_type for e in closing} == {"looking_away", "not_attentive"}
    assert all(e.state == "closed" and e.timestamp_ms == 5000 for e in closing)
    assert session.close(6000) == []
    with pytest.raises(errors.ValidationFailedError):
        session.process_measured(faces_at(100), [mesh()], 7000)


def test_face_as_dict_uses_the_issue_names() -> None:
    session = AttentionSession(None, SETTINGS)  # type: ignore[arg-type]
    frame = session.process_measured(faces_at(10), [mesh()], 0).as_dict()
    face = frame["faces"][0]
    for name in (
        "track_id",
        "attention_score",
        "gaze_score",
        "head_pose_score",
        "eye_openness_score",
        "is_looking_away",
        "is_drowsy",
    ):
        assert name in face
    assert set(frame) == {"frame_index", "timestamp_ms", "faces", "alerts"}
    assert face["box"] == {"x": 10.0, "y": 100.0, "width": 120.0, "height": 150.0}
