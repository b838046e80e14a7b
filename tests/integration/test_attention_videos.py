"""Recorded meetings over HTTP on both profiles: upload → job → results, timeline, chart, erasure.

embedded: SQLite + in-process jobs. scaled: PostgreSQL + Redis + a real ``facesocial worker``
subprocess. Real models on real videos of ../shared/data: the blink selfie video (one face,
blinking) and the Hamilton clip (several faces).
"""

from __future__ import annotations

import io
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from PIL import Image
from sqlalchemy import func, select, update

from facesocial.store.tables import (
    AttentionMetric,
    DetectionTimeline,
    Job,
    Participant,
    VideoAnalysis,
    VideoRecording,
)
from tests.conftest import shared_path
from tests.integration.conftest import JobsApp, jobs_app

pytestmark = [pytest.mark.integration, pytest.mark.model, pytest.mark.shared_data]

REDIS_BROKER_DB = 14
BLINK = ("face_liveness_blink_video", "video.mp4")
HAMILTON = ("face_recognition_identities", "examples", "short_hamilton_clip.mp4")
VIDEOS = "/api/v1/attention/videos"


@pytest.fixture(scope="module", params=["embedded", "scaled"])
def app(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, model_dir: Path
) -> Iterator[JobsApp]:
    shared_path(*BLINK)
    with jobs_app(
        request.param,
        tmp_path_factory.mktemp("attention-videos"),
        model_dir,
        broker_db=REDIS_BROKER_DB,
        max_video_seconds=60.0,
    ) as jobs:
        yield jobs


def headers(app: JobsApp, key: str | None = None) -> dict[str, str]:
    return {"X-API-Key": key or app.key}


def upload(app: JobsApp, path: Path, **data: str) -> Any:
    return app.client.post(
        VIDEOS, files={"video": (path.name, path.read_bytes(), "video/mp4")}, data=data, headers=headers(app)
    )


def wait_done(app: JobsApp, status_url: str, seconds: float = 300.0) -> tuple[dict[str, Any], list[float]]:
    """The final body and the progress values seen on the way."""
    seen: list[float] = []
    deadline = time.monotonic() + seconds
    while True:
        body = app.client.get(status_url, headers=headers(app)).json()
        seen.append(body["progress_percentage"])
        if body["status"] in ("completed", "failed", "cancelled") or time.monotonic() > deadline:
            return body, seen
        time.sleep(0.3)


def counts(app: JobsApp) -> tuple[int, int, int, int]:
    with app.container.database.session(readonly=True) as session:
        return tuple(  # type: ignore[return-value]
            int(session.scalar(select(func.count()).select_from(t)) or 0)
            for t in (VideoRecording, VideoAnalysis, DetectionTimeline, Job)
        )


def spool_entries(app: JobsApp) -> list[Path]:
    spool = app.container.settings.resolved_spool_dir()
    return [p for p in spool.iterdir() if p.name != "incoming"] if spool.exists() else []


def test_the_blink_video_is_analysed_into_results_timeline_and_chart(app: JobsApp) -> None:
    started = time.monotonic()
    r = upload(app, shared_path(*BLINK), sample_fps="5")
    assert r.status_code == 202, r.text
    queued = r.json()
    assert {"id", "job_id", "status_url", "job_url"} <= set(queued)
    assert queued["sample_fps"] == 5.0 and queued["status"] == "pending"
    body, progress = wait_done(app, queued["status_url"])
    elapsed = time.monotonic() - started
    assert body["status"] == "completed", body
    assert progress == sorted(progress) and progress[-1] == 100.0
    results = body["results"]
    duration = results["duration_seconds"]
    print(
        f"\n[{(app.container.settings.jobs.broker_url and 'scaled') or 'embedded'}] blink video "
        f"{duration:.1f} s analysed in {elapsed:.1f} s ({elapsed / duration:.2f} s per s of video, "
        f"processing {results['processing_seconds']:.1f} s)"
    )
    # 14 s at 5/s: about 70 frames, every one with the face.
    assert 60 <= results["frames_analyzed"] <= 72
    assert results["frames_with_faces"] >= 0.9 * results["frames_analyzed"]
    tracks = results["tracks"]
    assert len(tracks) >= 1
    main = max(tracks, key=lambda t: t["frames"])
    assert main["frames"] >= 0.8 * results["frames_analyzed"]
    assert main["participant_label"].startswith("Participant ")
    for track in tracks:
        assert 0 <= track["min_attention"] <= track["mean_attention"] <= track["max_attention"] <= 100
        assert 0 <= track["looking_away_seconds"] <= track["seconds_present"] + 1e-6
        assert 0 <= track["drowsy_seconds"] <= track["seconds_present"] + 1e-6
    assert 0 <= results["overall"]["mean_attention"] <= 100
    assert body["alert_count"] == len(body["alerts"]) == results["overall"]["alert_count"]
    # A person facing the phone: attentive on the whole.
    assert main["mean_attention"] >= 50, main

    page = app.client.get(f"{body['timeline_url']}?limit=20&offset=10", headers=headers(app)).json()
    assert page["total"] == results["frames_analyzed"] and len(page["frames"]) == 20
    stamps = [f["video_timestamp_ms"] for f in page["frames"]]
    assert stamps == sorted(stamps) and 1800 <= stamps[0] <= 2200  # frame 10 at 5/s: 2 s
    face = page["frames"][0]["faces"][0]
    assert {"track_id", "attention_score", "gaze_score", "head_pose_score", "is_looking_away"} <= set(face)
    assert page["frames"][0]["avg_attention_score"] == pytest.approx(
        sum(f["attention_score"] for f in page["frames"][0]["faces"]) / len(page["frames"][0]["faces"]),
        abs=0.01,
    )

    png = app.client.get(body["chart_url"], headers=headers(app))
    assert png.status_code == 200 and png.headers["content-type"] == "image/png"
    image = Image.open(io.BytesIO(png.content))
    assert image.format == "PNG" and image.size[0] >= 800 and image.size[1] >= 400
    # The line is drawn in the first palette colour somewhere inside the plot.
    pixels = image.convert("RGB").getcolors(maxcolors=1 << 20) or []
    assert any(colour == (0, 114, 178) and n > 50 for n, colour in pixels)

    listing = app.client.get(VIDEOS, headers=headers(app)).json()
    assert queued["id"] in [item["id"] for item in listing["recordings"]]
    # The spooled file went when the job ended.
    deadline = time.monotonic() + 10
    while any(p.name == queued["job_id"] for p in spool_entries(app)) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not any(p.name == queued["job_id"] for p in spool_entries(app))


def test_several_faces_give_several_tracks(app: JobsApp) -> None:
    r = upload(app, shared_path(*HAMILTON))
    assert r.status_code == 202, r.text
    queued = r.json()
    assert queued["sample_fps"] == app.container.settings.attention.video_sample_fps
    body, _ = wait_done(app, queued["status_url"])
    assert body["status"] == "completed", body
    results = body["results"]
    assert len(results["tracks"]) >= 2, results["tracks"]
    labels = [t["participant_label"] for t in results["tracks"]]
    assert len(set(labels)) == len(labels)
    frames = app.client.get(f"{body['timeline_url']}?limit=1000", headers=headers(app)).json()["frames"]
    assert max(len(f["faces"]) for f in frames) >= 2
    png = app.client.get(body["chart_url"], headers=headers(app))
    assert Image.open(io.BytesIO(png.content)).size == (1200, 520)


def test_another_tenant_sees_nothing(app: JobsApp) -> None:
    r = upload(app, shared_path(*BLINK), sample_fps="1")
    queued = r.json()
    other = headers(app, app.other_key)
    for path in ("", "/timeline", "/chart.png"):
        assert app.client.get(queued["status_url"] + path, headers=other).status_code == 404
    assert app.client.delete(queued["status_url"], headers=other).status_code == 404
    assert queued["id"] not in [i["id"] for i in app.client.get(VIDEOS, headers=other).json()["recordings"]]
    missing = app.client.get(f"{VIDEOS}/{uuid.uuid4()}", headers=headers(app))
    assert (missing.status_code, missing.json()["error"]["code"]) == (404, "RECORDING_NOT_FOUND")
    assert app.client.get(f"{VIDEOS}/not-a-uuid", headers=headers(app)).status_code == 404
    body, _ = wait_done(app, queued["status_url"])
    assert body["status"] == "completed"


def test_bad_videos_are_refused_and_nothing_is_stored(app: JobsApp, tmp_path: Path) -> None:
    before = counts(app)
    blink = shared_path(*BLINK).read_bytes()
    cases = [
        (b"", "EMPTY_VIDEO"),
        (b"this is no video at all" * 50, "UNSUPPORTED_VIDEO"),
        (blink[: len(blink) // 50], None),  # cut short: truncated or unreadable, some VIDEO_* code
    ]
    for data, code in cases:
        r = app.client.post(VIDEOS, files={"video": ("v.mp4", data, "video/mp4")}, headers=headers(app))
        assert 400 <= r.status_code < 500, r.text
        if code is not None:
            assert r.json()["error"]["code"] == code, r.text
    r = app.client.post(
        VIDEOS,
        files={"video": ("v.mp4", blink, "video/mp4")},
        data={"meeting_id": str(uuid.uuid4())},
        headers=headers(app),
    )
    assert (r.status_code, r.json()["error"]["code"]) == (404, "MEETING_NOT_FOUND")
    r = app.client.post(
        VIDEOS,
        files={"video": ("v.mp4", blink, "video/mp4")},
        data={"sample_fps": "-1"},
        headers=headers(app),
    )
    assert r.status_code == 422
    assert counts(app) == before


def test_delete_erases_the_recording_and_cancels_its_job(app: JobsApp) -> None:
    r = upload(app, shared_path(*BLINK), sample_fps="5", priority="1")
    queued = r.json()
    gone = app.client.delete(queued["status_url"], headers=headers(app))
    assert gone.status_code == 200 and gone.json()["deleted"] is True
    assert app.client.get(queued["status_url"], headers=headers(app)).status_code == 404
    pk = uuid.UUID(queued["id"])
    with app.container.database.session(readonly=True) as session:
        assert session.get(VideoRecording, pk) is None and session.get(VideoAnalysis, pk) is None
        assert session.scalar(select(func.count()).where(DetectionTimeline.recording_id == pk)) == 0
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        job = app.client.get(queued["job_url"], headers=headers(app)).json()["job"]
        if job["status"] in ("completed", "failed", "cancelled"):
            break
        time.sleep(0.3)
    assert job["status"] in ("cancelled", "failed"), job
    assert not any(p.name == queued["job_id"] for p in spool_entries(app))


class _Job:
    """A JobContext for running the handler again by hand (a retry after a crash)."""

    def __init__(self, job_id: str, payload: dict[str, Any]) -> None:
        self.job_id = job_id
        self.payload = payload
        self.attempt = 2
        self.worker_id = "test"

    def progress(self, fraction: float, eta_seconds: float | None = None) -> None:
        return None


def test_a_meeting_gets_participants_alerts_and_metrics_and_a_retry_adds_nothing(app: JobsApp) -> None:
    created = app.client.post("/api/v1/attention/meetings", json={"title": "Recorded"}, headers=headers(app))
    assert created.status_code == 201, created.text
    meeting_id = created.json()["meeting"]["meeting_id"]
    theirs = app.client.post(
        "/api/v1/attention/meetings", json={"title": "Theirs"}, headers=headers(app, app.other_key)
    ).json()["meeting"]["meeting_id"]
    refused = upload(app, shared_path(*BLINK), meeting_id=theirs)
    assert (refused.status_code, refused.json()["error"]["code"]) == (404, "MEETING_NOT_FOUND")

    queued = upload(app, shared_path(*BLINK), meeting_id=meeting_id, sample_fps="2").json()
    body, _ = wait_done(app, queued["status_url"])
    assert body["status"] == "completed" and body["meeting_id"] == meeting_id, body
    linked = body["results"]["meeting"]
    frames_with_faces = sum(t["frames"] for t in body["results"]["tracks"])
    assert len(linked["participants"]) == len(body["results"]["tracks"]) >= 1
    assert linked["metrics_written"] == frames_with_faces
    listed = app.client.get(f"/api/v1/attention/meetings/{meeting_id}/participants", headers=headers(app))
    assert listed.status_code == 200, listed.text
    assert "Participant 1" in listed.text
    by_meeting = app.client.get(VIDEOS, params={"meeting_id": meeting_id}, headers=headers(app)).json()
    assert [r["id"] for r in by_meeting["recordings"]] == [queued["id"]]

    def stored() -> tuple[int, int, int]:
        with app.container.database.session(readonly=True) as session:
            pk = uuid.UUID(meeting_id)
            return (
                int(session.scalar(select(func.count()).where(Participant.meeting_id == pk)) or 0),
                int(session.scalar(select(func.count()).where(AttentionMetric.meeting_id == pk)) or 0),
                int(
                    session.scalar(
                        select(func.count()).where(DetectionTimeline.recording_id == uuid.UUID(queued["id"]))
                    )
                    or 0
                ),
            )

    first = stored()
    assert first == (len(linked["participants"]), frames_with_faces, body["results"]["frames_analyzed"])
    # The handler run again on the same file (a retry after a crash) replaces, never adds.
    job_id = f"retry{uuid.uuid4().hex[:8]}"
    folder = app.container.settings.resolved_spool_dir() / job_id
    folder.mkdir(parents=True)
    (folder / "video").write_bytes(shared_path(*BLINK).read_bytes())
    try:
        app.container.recordings.run_job(_Job(job_id, {"recording": queued["id"], "sample_fps": 2.0}))
    finally:
        app.container.recordings.on_job_end(job_id, "completed")
    assert stored() == first
    assert not folder.exists()

    assert app.client.delete(queued["status_url"], headers=headers(app)).status_code == 200
    assert stored() == (0, 0, 0)


def test_retention_erases_old_ended_recordings_only(app: JobsApp) -> None:
    """``container.retention()`` erases recordings past ``attention.recordings_retention_days``."""
    r = upload(app, shared_path(*HAMILTON))
    assert r.status_code == 202, r.text
    body, _ = wait_done(app, r.json()["status_url"])
    assert body["status"] == "completed", body
    old_id = uuid.UUID(body["id"])
    fresh = upload(app, shared_path(*HAMILTON))
    fresh_body, _ = wait_done(app, fresh.json()["status_url"])
    days = app.container.settings.attention.recordings_retention_days
    with app.container.database.session() as session:
        session.execute(
            update(VideoAnalysis)
            .where(VideoAnalysis.id == old_id)
            .values(created_at=datetime.now(UTC) - timedelta(days=days + 1))
        )
    assert app.container.recordings.retention() == 1
    assert app.client.get(f"{VIDEOS}/{old_id}", headers=headers(app)).status_code == 404
    with app.container.database.session(readonly=True) as session:
        assert not session.scalar(
            select(func.count())
            .select_from(DetectionTimeline)
            .where(DetectionTimeline.recording_id == old_id)
        )
    assert app.client.get(f"{VIDEOS}/{fresh_body['id']}", headers=headers(app)).status_code == 200
