"""Antispoofing over HTTP and WebSocket on both profiles: passive checks, liveness sessions, attacks.

embedded: SQLite + local index + memory sessions + in-process jobs. scaled: PostgreSQL + Redis
(``session:{id}``) + milvus-lite, queued clips run by a real ``facesocial worker`` subprocess.
Real models on real data: NUAA live and printed-photo frames, the blink selfie video of
../shared/data/face_liveness_blink_video, LFW faces for the attacks.

Every attack of the issue is here as a black-box test: a still photo slid, zoomed and rotated;
a replayed recording of an earlier successful session when the order differs; a token reused; a
different face appearing mid-session. A session must wait as long as its frames span (frames
dated before the session are a pre-recorded clip), so some tests sleep a few seconds.
"""

from __future__ import annotations

import io
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import cv2
import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image
from sqlalchemy import select

from facesocial.container import Container
from facesocial.store.tables import AntispoofingCheck, LivenessSession
from tests.conftest import shared_path
from tests.integration.conftest import jobs_app

pytestmark = [pytest.mark.integration, pytest.mark.model, pytest.mark.shared_data]

REDIS_BROKER_DB = 12
BLINK = ("face_liveness_blink_video", "video.mp4")
SESSIONS = "/api/v1/antispoofing/liveness/sessions"


@dataclass
class Anti:
    client: TestClient
    container: Container
    key: str
    other_key: str
    profile: str

    def headers(self, key: str | None = None) -> dict[str, str]:
        return {"X-API-Key": key or self.key}

    def session(self, **body: Any) -> dict[str, Any]:
        response = self.client.post(SESSIONS, json=body, headers=self.headers())
        assert response.status_code == 201, response.text
        return dict(response.json())

    def frames(self, token: str, frames: list[tuple[float, bytes]], key: str | None = None) -> Any:
        files = [("frames", (f"f{i}.jpg", data, "image/jpeg")) for i, (_, data) in enumerate(frames)]
        stamps = ",".join(f"{t:.1f}" for t, _ in frames)
        return self.client.post(
            f"{SESSIONS}/{token}/frames",
            files=files,
            data={"timestamps_ms": stamps},
            headers=self.headers(key),
        )

    def row(self, session_id: str) -> LivenessSession:
        with self.container.database.session(readonly=True) as session:
            row = session.get(LivenessSession, uuid.UUID(session_id))
            assert row is not None
            session.expunge(row)
            return row


@pytest.fixture(scope="module", params=["embedded", "scaled"])
def anti(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, model_dir: Path
) -> Iterator[Anti]:
    shared_path(*BLINK)
    with jobs_app(
        request.param,
        tmp_path_factory.mktemp("antispoofing"),
        model_dir,
        broker_db=REDIS_BROKER_DB,
        max_video_seconds=60.0,
    ) as app:
        yield Anti(app.client, app.container, app.key, app.other_key, request.param)


# --- media ------------------------------------------------------------------------------------------


def _jpeg(rgb: np.ndarray, quality: int = 92) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, format="JPEG", quality=quality)
    return buffer.getvalue()


def blink_frames(start_s: float, end_s: float, fps: float = 12.0) -> list[tuple[float, np.ndarray]]:
    """(ms from ``start_s``, RGB) of the blink selfie video between two times, about ``fps`` a second."""
    out: list[tuple[float, np.ndarray]] = []
    next_ms = 0.0
    with av.open(str(shared_path(*BLINK))) as container:
        for frame in container.decode(video=0):
            if frame.time is None:
                continue
            t = float(frame.time) - start_s
            if t < 0:
                continue
            if t > end_s - start_s:
                break
            if t * 1000.0 + 1e-6 >= next_ms:
                out.append((t * 1000.0, frame.to_ndarray(format="rgb24")))
                next_ms = t * 1000.0 + 1000.0 / fps
    return out


def as_jpegs(frames: list[tuple[float, np.ndarray]], shift_ms: float = 0.0) -> list[tuple[float, bytes]]:
    return [(t + shift_ms, _jpeg(rgb)) for t, rgb in frames]


def write_clip(path: Path, frames: list[tuple[float, np.ndarray]]) -> Path:
    """An MP4 (MPEG-4 part 2, high bit rate) of ``frames`` at their own times."""
    height, width = frames[0][1].shape[:2]
    with av.open(str(path), "w") as container:
        stream = container.add_stream("mpeg4", rate=30)
        assert isinstance(stream, av.video.stream.VideoStream)
        stream.width, stream.height, stream.pix_fmt = width - width % 2, height - height % 2, "yuv420p"
        stream.bit_rate = 8_000_000
        stream.codec_context.time_base = Fraction(1, 1000)
        for t, rgb in frames:
            frame = av.VideoFrame.from_ndarray(
                np.ascontiguousarray(rgb[: stream.height, : stream.width]), format="rgb24"
            )
            frame.pts, frame.time_base = round(t), Fraction(1, 1000)
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def lfw_face(name_index: int = 0) -> np.ndarray:
    folder = shared_path("lfw_deepfunneled", "lfw-deepfunneled")
    path = sorted(folder.glob("*/*_0001.jpg"))[name_index]
    return np.asarray(Image.open(path).convert("RGB"))


def photo_attack(photo: np.ndarray, seconds: float, fps: float = 10.0) -> list[tuple[float, bytes]]:
    """A printed photo moved in front of a 640x480 camera: slid, zoomed and rotated in the plane."""
    frames = []
    for i in range(round(seconds * fps)):
        phase = i / max(1.0, seconds * fps - 1)
        angle = 25.0 * np.sin(2 * np.pi * phase)
        scale = 1.6 + 0.5 * np.sin(np.pi * phase)
        centre = (320 + 120 * np.sin(2 * np.pi * phase), 240 + 40 * np.cos(2 * np.pi * phase))
        h, w = photo.shape[:2]
        matrix = cv2.getRotationMatrix2D((w / 2, h / 2), angle, scale)
        matrix[:, 2] += np.array(centre) - np.array([w / 2, h / 2])
        canvas = cv2.warpAffine(
            photo, matrix, (640, 480), borderMode=cv2.BORDER_CONSTANT, borderValue=(200, 200, 190)
        )
        frames.append((i * 1000.0 / fps, _jpeg(canvas)))
    return frames


def nuaa(kind: str) -> bytes:
    folder = shared_path("nuaa_antispoof", kind)
    return sorted(folder.glob("*/*.jpg"))[-1].read_bytes()


def wait_until(seconds_since: float, created: float) -> None:
    """Sleep until ``seconds_since`` seconds after ``created`` (time.monotonic)."""
    delay = created + seconds_since - time.monotonic()
    if delay > 0:
        time.sleep(delay)


# --- passive ------------------------------------------------------------------------------------------


def test_a_passive_check_answers_with_scores_and_stores_one_row(anti: Anti) -> None:
    response = anti.client.post(
        "/api/v1/antispoofing/check",
        files={"image": ("live.jpg", nuaa("ClientRaw"), "image/jpeg")},
        headers=anti.headers(),
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert isinstance(body["is_live"], bool)
    assert 0.0 <= body["confidence_score"] <= 1.0
    assert body["spoof_type"] in (None, "photo", "screen")
    assert (body["spoof_type"] is None) == body["is_live"]
    assert body["risk_level"] in ("low", "medium", "high")
    details = body["analysis_details"]
    assert set(details["scores"]) == {"live", "photo", "screen"}
    assert abs(sum(details["scores"].values()) - 1.0) < 0.01
    assert details["signals"] and all(isinstance(v, float) for v in details["signals"].values())
    assert body["model_version"].startswith("liveness_passive@")
    with anti.container.database.session(readonly=True) as session:
        row = session.scalar(
            select(AntispoofingCheck).where(AntispoofingCheck.session_id == body["check_id"])
        )
        assert row is not None
        assert (row.check_type, row.input_type, row.is_live) == ("passive", "image", body["is_live"])
    stored = anti.client.get(f"/api/v1/antispoofing/checks/{body['check_id']}", headers=anti.headers())
    assert stored.status_code == 200 and stored.json()["is_live"] == body["is_live"]
    hidden = anti.client.get(
        f"/api/v1/antispoofing/checks/{body['check_id']}", headers=anti.headers(anti.other_key)
    )
    assert hidden.status_code == 404 and hidden.json()["error"]["code"] == "CHECK_NOT_FOUND"


def test_readiness_names_the_liveness_model(anti: Anti) -> None:
    ready = anti.client.get("/health/ready").json()
    assert ready["checks"]["models"]["liveness"].startswith("liveness_passive@")


def test_printed_photos_score_below_live_faces(anti: Anti) -> None:
    def live_score(kind: str) -> float:
        folder = shared_path("nuaa_antispoof", kind)
        scores = []
        for path in sorted(folder.glob("*/*.jpg"))[::25]:
            r = anti.client.post(
                "/api/v1/antispoofing/check",
                files={"image": ("x.jpg", path.read_bytes(), "image/jpeg")},
                headers=anti.headers(),
            )
            if r.status_code == 200:
                scores.append(r.json()["analysis_details"]["scores"]["live"])
        assert len(scores) >= 3
        return float(np.mean(scores))

    assert live_score("ClientRaw") > live_score("ImposterRaw")


def test_bad_input_gets_a_clear_error_and_stores_nothing(anti: Anti) -> None:
    with anti.container.database.session(readonly=True) as session:
        before = len(list(session.scalars(select(AntispoofingCheck.id))))
    blank = _jpeg(np.full((200, 200, 3), 128, np.uint8))
    cases = [
        ({"image": ("blank.jpg", blank, "image/jpeg")}, {}, 422, "NO_FACE_FOUND"),
        (
            {"image": ("live.jpg", nuaa("ClientRaw"), "image/jpeg")},
            {"face_index": "3"},
            422,
            "FACE_INDEX_OUT_OF_RANGE",
        ),
        ({"image": ("x.jpg", b"not an image", "image/jpeg")}, {}, 415, "NOT_AN_IMAGE"),
    ]
    for files, data, status, code in cases:
        r = anti.client.post("/api/v1/antispoofing/check", files=files, data=data, headers=anti.headers())
        assert (r.status_code, r.json()["error"]["code"]) == (status, code), r.text
    with anti.container.database.session(readonly=True) as session:
        assert len(list(session.scalars(select(AntispoofingCheck.id)))) == before


def test_a_short_clip_is_checked_now_and_a_long_one_as_a_job(anti: Anti, tmp_path: Path) -> None:
    short = write_clip(tmp_path / "short.mp4", blink_frames(0.0, 3.0, fps=15))
    r = anti.client.post(
        "/api/v1/antispoofing/check-video",
        files={"video": ("short.mp4", short.read_bytes(), "video/mp4")},
        headers=anti.headers(),
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["input_type"] == "video" and isinstance(body["is_live"], bool)
    motion = body["analysis_details"]["motion"]
    assert {"rigidity", "flicker", "motion_magnitude"} <= set(motion)
    assert body["analysis_details"]["frames_with_face"] >= 10
    long = write_clip(tmp_path / "long.mp4", blink_frames(0.0, 7.0, fps=10))
    r = anti.client.post(
        "/api/v1/antispoofing/check-video",
        files={"video": ("long.mp4", long.read_bytes(), "video/mp4")},
        data={"priority": "7"},
        headers=anti.headers(),
    )
    assert r.status_code == 202, r.text
    queued = r.json()
    deadline = time.monotonic() + 180
    while True:
        status = anti.client.get(queued["status_url"], headers=anti.headers()).json()
        if status["status"] in ("completed", "failed", "cancelled") or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert status["status"] == "completed", status
    assert isinstance(status["is_live"], bool) and status["analysis_details"]["frames_with_face"] >= 20
    assert anti.client.get(queued["status_url"], headers=anti.headers(anti.other_key)).status_code == 404


# --- sessions -----------------------------------------------------------------------------------------


def test_a_session_has_a_random_sequence_a_token_and_an_expiry(anti: Anti) -> None:
    first, second = anti.session(), anti.session()
    for s in (first, second):
        assert len(s["session_token"]) >= 40 and s["session_status"] == "active"
        assert len(s["challenges"]) == 3 and s["current_challenge"] == s["challenges"][0]
        assert sum(c in ("turn_left", "turn_right", "look_up", "nod") for c in s["challenges"]) == 2
        assert s["instruction"]["challenge"] == s["challenges"][0]
    assert first["session_token"] != second["session_token"]
    row = anti.row(first["session_id"])
    assert row.session_token != first["session_token"]  # only its hash is stored
    got = anti.client.get(f"{SESSIONS}/{first['session_token']}", headers=anti.headers())
    assert got.status_code == 200 and got.json()["challenges"] == first["challenges"]
    assert "session_token" not in got.json()
    other = anti.client.get(f"{SESSIONS}/{first['session_token']}", headers=anti.headers(anti.other_key))
    assert other.status_code == 404 and other.json()["error"]["code"] == "LIVENESS_SESSION_NOT_FOUND"
    posted = anti.frames(first["session_token"], as_jpegs(blink_frames(0.0, 0.3)), key=anti.other_key)
    assert posted.status_code == 404
    if anti.profile == "scaled":
        import redis

        assert (
            redis.Redis.from_url(anti.container.settings.redis_url).ttl(f"session:{first['session_id']}") > 0
        )


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"challenges": ["fly"]}, "INVALID_CHALLENGES"),
        ({"challenges": []}, "INVALID_CHALLENGES"),
        ({"timeout_seconds": 1}, "VALIDATION_ERROR"),
        ({"max_attempts": 0}, "VALIDATION_ERROR"),
        ({"surprise": 1}, "VALIDATION_ERROR"),
        ({"challenges": ["x" * 60_000]}, "VALIDATION_ERROR"),
    ],
)
def test_bad_session_requests_are_refused(anti: Anti, body: dict[str, Any], code: str) -> None:
    r = anti.client.post(SESSIONS, json=body, headers=anti.headers())
    assert r.status_code == 422 and r.json()["error"]["code"] == code, r.text


def test_the_blink_video_passes_a_blink_session_which_vouches_for_one_registration(anti: Anti) -> None:
    user = str(uuid.uuid4())
    created = time.monotonic()
    s = anti.session(challenges=["blink"], user_id=user)
    token = s["session_token"]
    frames = blink_frames(0.0, 2.6)
    wait_until(frames[-1][0] / 1000.0 + 0.2, created)  # the frames were "recorded" after the session began
    r = anti.frames(token, as_jpegs(frames))
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["session_status"] == "completed", body
    assert body["last_frame"]["face_found"] is True and body["last_frame"]["faces"] == 1
    assert body["overall_result"] is True and body["challenge_results"][0]["status"] == "passed"
    # Frames after the end are refused.
    late = anti.frames(token, as_jpegs(blink_frames(2.7, 3.0), shift_ms=2700))
    assert late.status_code == 409 and late.json()["error"]["code"] == "LIVENESS_SESSION_CLOSED"
    me = _jpeg(frames[0][1])
    # Named for this user: another user's registration (or a verify naming no user) is refused,
    # and such a refusal uses nothing up.
    for data in ({"user_id": str(uuid.uuid4()), "consent": "true"}, {}):
        path = "register" if data else "verify"
        files = {"image": ("me.jpg", me, "image/jpeg")}
        if not data:
            files["image2"] = ("me2.jpg", me, "image/jpeg")
        other = anti.client.post(
            f"/api/v1/face-recognition/{path}",
            files=files,
            data={**data, "liveness_session": token},
            headers=anti.headers(),
        )
        assert other.status_code == 422 and other.json()["error"]["details"]["reason"] == "other_user", (
            other.text
        )
    ok = anti.client.post(
        "/api/v1/face-recognition/register",
        files={"image": ("me.jpg", me, "image/jpeg")},
        data={"user_id": user, "consent": "true", "liveness_session": token},
        headers=anti.headers(),
    )
    assert ok.status_code == 200, ok.text
    assert ok.json()["liveness"]["session_id"] == s["session_id"]
    again = anti.client.post(
        "/api/v1/face-recognition/verify",
        files={"image": ("me.jpg", me, "image/jpeg")},
        data={"user_id": user, "liveness_session": token},
        headers=anti.headers(),
    )
    assert again.status_code == 422 and again.json()["error"]["details"]["reason"] == "already_used"
    assert anti.row(s["session_id"]).consumed_by == "register"
    assert anti.row(s["session_id"]).progress["engine"]["reference_embedding"] is None
    with anti.container.database.session(readonly=True) as session:
        check = session.scalar(
            select(AntispoofingCheck).where(AntispoofingCheck.session_id == s["session_id"])
        )
        assert check is not None and check.check_type == "active_liveness" and check.is_live is True


def test_another_face_presenting_a_session_uses_it_up_without_learning_the_similarity(anti: Anti) -> None:
    created = time.monotonic()
    s = anti.session(challenges=["blink"])
    frames = blink_frames(0.0, 2.6)
    wait_until(frames[-1][0] / 1000.0 + 0.2, created)
    assert anti.frames(s["session_token"], as_jpegs(frames)).json()["session_status"] == "completed"
    stranger = anti.client.post(
        "/api/v1/face-recognition/verify",
        files={
            "image": ("s.jpg", _jpeg(lfw_face(3)), "image/jpeg"),
            "image2": ("t.jpg", _jpeg(lfw_face(3)), "image/jpeg"),
        },
        data={"liveness_session": s["session_token"]},
        headers=anti.headers(),
    )
    error = stranger.json()["error"]
    assert stranger.status_code == 422 and error["details"] == {"reason": "different_face"}, error
    me = anti.client.post(
        "/api/v1/face-recognition/verify",
        files={
            "image": ("me.jpg", _jpeg(frames[0][1]), "image/jpeg"),
            "image2": ("m.jpg", _jpeg(frames[1][1]), "image/jpeg"),
        },
        data={"liveness_session": s["session_token"]},
        headers=anti.headers(),
    )
    assert me.status_code == 422 and me.json()["error"]["details"]["reason"] == "already_used"


def test_frames_of_another_person_slipped_between_the_victims_photo_fail(anti: Anti) -> None:
    """The attacker's batch: the victim's photo first and last, and between them (9 ms apart, all
    inside one 400 ms embedding interval) another live person's frames performing the blink."""
    victim = _jpeg(cv2.resize(lfw_face(11), (480, 480)))
    # The other person's frames end on the one that completes the blink (eyes open again after
    # closing), so the next frame, the one a sampled identity check embeds, is the victim's.
    pipeline = anti.container.frame_pipeline
    blink: list[np.ndarray] = []
    closed = False
    for _, rgb in blink_frames(0.25, 1.0, fps=40):
        blink.append(rgb)
        faces = pipeline.detect(rgb, anti.container.detect_defaults)
        mesh = pipeline.analyze_mesh(rgb, faces[[0]])[0]
        openness = max(mesh.eye_openness_left, mesh.eye_openness_right)
        closed = closed or openness < 0.35
        if closed and openness >= 0.6:
            break
    assert closed, "the clip's blink was not found"
    batch = [victim, *(_jpeg(rgb) for rgb in blink), victim]
    frames = [(9.0 * i, data) for i, data in enumerate(batch)]
    created = time.monotonic()
    s = anti.session(challenges=["blink"])
    wait_until(0.5, created)
    body = anti.frames(s["session_token"], frames).json()
    assert body["session_status"] == "failed" and body["failure_reason"] == "face_changed", body


def test_registration_can_require_a_liveness_session(anti: Anti) -> None:
    settings = anti.container.settings.antispoofing
    settings.require_liveness_for_registration = True
    try:
        r = anti.client.post(
            "/api/v1/face-recognition/register",
            files={"image": ("me.jpg", _jpeg(lfw_face(1)), "image/jpeg")},
            data={"user_id": str(uuid.uuid4()), "consent": "true"},
            headers=anti.headers(),
        )
        assert r.status_code == 403 and r.json()["error"]["code"] == "LIVENESS_REQUIRED"
        active = anti.session()
        r = anti.client.post(
            "/api/v1/face-recognition/register",
            files={"image": ("me.jpg", _jpeg(lfw_face(1)), "image/jpeg")},
            data={
                "user_id": str(uuid.uuid4()),
                "consent": "true",
                "liveness_session": active["session_token"],
            },
            headers=anti.headers(),
        )
        assert r.status_code == 422 and r.json()["error"]["code"] == "LIVENESS_SESSION_INVALID"
    finally:
        settings.require_liveness_for_registration = False


def test_a_still_photo_slid_zoomed_and_rotated_never_passes(anti: Anti) -> None:
    created = time.monotonic()
    s = anti.session(challenges=["turn_left", "blink"], timeout_seconds=6)
    frames = photo_attack(lfw_face(5), seconds=4.0)
    wait_until(4.2, created)
    r = anti.frames(s["session_token"], frames)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["session_status"] != "completed" and not body["challenges_completed"]
    wait_until(6.5, created)
    final = anti.client.get(f"{SESSIONS}/{s['session_token']}", headers=anti.headers()).json()
    assert final["session_status"] in ("expired", "failed") and final["overall_result"] is False
    refused = anti.frames(s["session_token"], photo_attack(lfw_face(5), seconds=0.3))
    assert refused.status_code in (409, 410)


def test_a_replayed_recording_of_a_successful_session_fails_when_the_order_differs(anti: Anti) -> None:
    recording = blink_frames(0.0, 2.6)
    created = time.monotonic()
    earlier = anti.session(challenges=["blink"])
    wait_until(2.8, created)
    assert anti.frames(earlier["session_token"], as_jpegs(recording)).json()["session_status"] == "completed"
    created = time.monotonic()
    now = anti.session(challenges=["turn_right", "blink"], timeout_seconds=5)
    wait_until(2.8, created)
    body = anti.frames(now["session_token"], as_jpegs(recording)).json()
    assert body["session_status"] != "completed" and not body["challenges_completed"], body
    wait_until(5.5, created)
    final = anti.client.get(f"{SESSIONS}/{now['session_token']}", headers=anti.headers()).json()
    assert final["overall_result"] is False


def test_a_clip_recorded_before_the_session_fails(anti: Anti) -> None:
    s = anti.session(challenges=["blink"])
    body = anti.frames(s["session_token"], as_jpegs(blink_frames(0.0, 4.0, fps=6))).json()
    assert body["session_status"] == "failed" and body["failure_reason"] == "implausible_timing", body
    assert "before the session was created" in body["failure_detail"]


def test_a_different_face_appearing_mid_session_fails(anti: Anti) -> None:
    created = time.monotonic()
    s = anti.session(challenges=["blink", "turn_left"])
    mine = as_jpegs(blink_frames(0.0, 2.4))
    other = lfw_face(7)
    swapped = [(2500.0 + 100.0 * i, _jpeg(cv2.resize(other, (480, 480)))) for i in range(6)]
    wait_until(3.2, created)
    body = anti.frames(s["session_token"], mine + swapped).json()
    assert body["session_status"] == "failed" and body["failure_reason"] == "face_changed", body


@pytest.mark.parametrize(
    "stamps",
    ["[99999999999999999999]", "[" * 30_000, "1e308", "nan", '[{"t": 1}]', "[true]", "1,2,3", "abc"],
)
def test_bad_timestamps_are_refused_and_change_nothing(anti: Anti, stamps: str) -> None:
    s = anti.session()
    files = [("frames", ("f.jpg", _jpeg(lfw_face(0)), "image/jpeg"))]
    r = anti.client.post(
        f"{SESSIONS}/{s['session_token']}/frames",
        files=files,
        data={"timestamps_ms": stamps},
        headers=anti.headers(),
    )
    assert r.status_code == 422 and r.json()["error"]["code"] == "VALIDATION_ERROR", r.text
    assert anti.row(s["session_id"]).version == 0


def test_an_expired_session_refuses_frames(anti: Anti) -> None:
    created = time.monotonic()
    s = anti.session(timeout_seconds=5)
    wait_until(5.3, created)
    r = anti.frames(s["session_token"], as_jpegs(blink_frames(0.0, 0.2)))
    assert r.status_code == 410 and r.json()["error"]["code"] == "LIVENESS_SESSION_EXPIRED"
    assert anti.row(s["session_id"]).session_status == "expired"
    # Retention (the daily beat task) deletes expired sessions, and with them any face reference.
    assert anti.container.retention()["liveness_sessions"] >= 1
    with anti.container.database.session(readonly=True) as session:
        assert session.get(LivenessSession, uuid.UUID(s["session_id"])) is None
    gone = anti.client.get(f"{SESSIONS}/{s['session_token']}", headers=anti.headers())
    assert gone.status_code == 404


def test_frames_sent_twice_at_once_advance_the_session_once(anti: Anti) -> None:
    created = time.monotonic()
    s = anti.session(challenges=["blink", "turn_left"], timeout_seconds=30)
    frames = as_jpegs(blink_frames(0.0, 1.0))
    wait_until(1.2, created)
    barrier = threading.Barrier(2)
    results: list[Any] = []

    def send() -> None:
        barrier.wait()
        results.append(anti.frames(s["session_token"], frames))

    threads = [threading.Thread(target=send) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    statuses = sorted(r.status_code for r in results)
    processed = anti.row(s["session_id"]).progress["frames"]
    if statuses == [200, 409]:
        assert processed == len(frames)
        assert (
            next(r for r in results if r.status_code == 409).json()["error"]["code"]
            == "LIVENESS_SESSION_BUSY"
        )
    else:  # the second ran after the first: its frames repeat times already seen, an implausible clip
        assert statuses == [200, 200]
        assert anti.row(s["session_id"]).failure_reason == "implausible_timing"


def test_a_websocket_session_streams_instructions_and_passes_a_blink(anti: Anti) -> None:
    s = anti.session(challenges=["blink"])
    frames = blink_frames(0.0, 2.6)
    started = time.monotonic()
    with anti.client.websocket_connect(f"{SESSIONS}/{s['session_token']}/ws") as ws:
        hello = ws.receive_json()
        assert hello["type"] == "instruction" and hello["instruction"]["challenge"] == "blink"
        last: dict[str, Any] = {}
        for t_ms, rgb in frames:
            wait_until(t_ms / 1000.0, started)  # real time: a camera cannot deliver frames early
            ws.send_text(f'{{"timestamp_ms": {t_ms:.1f}}}')
            ws.send_bytes(_jpeg(rgb))
            last = ws.receive_json()
            assert last["type"] in ("progress", "result"), last
            if last["type"] == "result":
                break
    assert last["type"] == "result" and last["session_status"] == "completed", last
    assert anti.row(s["session_id"]).session_status == "completed"


def test_a_websocket_with_a_bad_token_or_another_tenants_key_is_refused(anti: Anti) -> None:
    from starlette.websockets import WebSocketDisconnect

    with pytest.raises(WebSocketDisconnect), anti.client.websocket_connect(f"{SESSIONS}/{'x' * 43}/ws") as ws:
        ws.receive_json()
    s = anti.session()
    with (
        pytest.raises(WebSocketDisconnect),
        anti.client.websocket_connect(
            f"{SESSIONS}/{s['session_token']}/ws", headers={"X-API-Key": anti.other_key}
        ) as ws,
    ):
        ws.receive_json()
