"""People counting over HTTP on both profiles: upload → job → counts, events, tracks, detections,
timeline, preview, erasure.

embedded: SQLite + in-process jobs. scaled: PostgreSQL + Redis + a real ``facesocial worker``
subprocess. A real person detector (the registry's person_detection version) on real video: the
first 12 s of PETS09-S2L1 (../shared/data/people_walking/opencv_vtest/vtest.avi, re-encoded to
H.264 MP4 by the fixture), counted on a vertical and a horizontal line through the frame centre
and a zone on its left half. The counts must equal those of the engine run directly on the same
file with the same detector and sample rate.
"""

from __future__ import annotations

import io
import json
import time
import uuid
from collections.abc import Iterator
from datetime import timedelta
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import pytest
from sqlalchemy import func, select

from facesocial.analytics.counting import CountingLine, CountingZone
from facesocial.analytics.people_counting import CountingEngine, CountingOutcome
from facesocial.domains.counting.tasks import detector_versions
from facesocial.store.tables import AiOperationLog, Job
from facesocial.store.tables_counting import CountingResult, CountingVideo, DetectionResult, TrackingResult
from facesocial.store.tables_registry import AbAssignment, ModelInferenceResult
from facesocial.video.frames import iter_frames
from facesocial.video.probe import probe_video
from facesocial.vision.persons import load_person_detector
from tests.conftest import shared_path
from tests.integration.conftest import JobsApp, jobs_app

pytestmark = [pytest.mark.integration, pytest.mark.model, pytest.mark.shared_data]

REDIS_BROKER_DB = 9
PETS = ("people_walking", "opencv_vtest", "vtest.avi")
VIDEOS = "/api/v1/counting/videos"
SECONDS = 12
SAMPLE_FPS = 5.0
# vtest.avi is 480x360: a vertical and a horizontal line through the centre, the left half a zone.
LINES = [
    {"name": "vertical", "start": [240, 0], "end": [240, 360]},
    {"name": "horizontal", "start": [0, 180], "end": [480, 180]},
]
ZONES = [{"name": "left", "polygon": [[0, 0], [240, 0], [240, 360], [0, 360]]}]
TABLES = (CountingVideo, DetectionResult, TrackingResult, CountingResult)


def cut(source: Path, target: Path, seconds: int) -> Path:
    """The first ``seconds`` of ``source`` (10 frames/s) re-encoded as an H.264 MP4."""
    with av.open(str(source)) as original, av.open(str(target), "w", format="mp4") as output:
        video = original.streams.video[0]
        stream = output.add_stream("libx264", rate=Fraction(10))
        stream.width, stream.height, stream.pix_fmt = video.width, video.height, "yuv420p"
        stream.options = {"preset": "ultrafast", "crf": "18"}
        for n, frame in enumerate(original.decode(video)):
            if n >= seconds * 10:
                break
            rgb = frame.to_ndarray(format="rgb24")
            for packet in stream.encode(av.VideoFrame.from_ndarray(rgb, format="rgb24")):
                output.mux(packet)
        for packet in stream.encode(None):
            output.mux(packet)
    return target


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return cut(shared_path(*PETS), tmp_path_factory.mktemp("counting-clip") / "pets.mp4", SECONDS)


@pytest.fixture(scope="module", params=["embedded", "scaled"])
def app(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, model_dir: Path, clip: Path
) -> Iterator[JobsApp]:
    with jobs_app(
        request.param,
        tmp_path_factory.mktemp("counting"),
        model_dir,
        broker_db=REDIS_BROKER_DB,
        max_video_seconds=120.0,
    ) as jobs:
        yield jobs


def headers(app: JobsApp, key: str | None = None) -> dict[str, str]:
    return {"X-API-Key": key or app.key}


def upload(app: JobsApp, path: Path, *, key: str | None = None, **data: str) -> Any:
    return app.client.post(
        VIDEOS,
        files={"video": (path.name, path.read_bytes(), "video/mp4")},
        data=data,
        headers=headers(app, key),
    )


def counted(app: JobsApp, path: Path, **data: str) -> dict[str, Any]:
    fields = {"sample_fps": str(SAMPLE_FPS), "lines": json.dumps(LINES), "zones": json.dumps(ZONES), **data}
    r = upload(app, path, **fields)
    assert r.status_code == 202, r.text
    return dict(r.json())


def wait_done(app: JobsApp, url: str, seconds: float = 300.0) -> tuple[dict[str, Any], list[float]]:
    """The final body and the progress values seen on the way."""
    seen: list[float] = []
    deadline = time.monotonic() + seconds
    while True:
        body = app.client.get(url, headers=headers(app)).json()
        seen.append(body["progress_percentage"])
        if body["status"] in ("completed", "failed", "cancelled") or time.monotonic() > deadline:
            return body, seen
        time.sleep(0.3)


def rows(app: JobsApp, video_id: str) -> dict[str, int]:
    with app.container.database.session(readonly=True) as session:
        out = {
            t.__tablename__: int(session.scalar(select(func.count()).where(t.video_id == video_id)) or 0)
            for t in TABLES
        }
        out["inference"] = int(
            session.scalar(select(func.count()).where(ModelInferenceResult.inference_id == video_id)) or 0
        )
    return out


def direct(app: JobsApp, path: Path, version: str) -> CountingOutcome:
    """The engine run on ``path`` without the API: same detector, sample rate and frames."""
    detector = load_person_detector(app.container.model_cache, version.split("@")[0])
    lines = [CountingLine(x["name"], tuple(x["start"]), tuple(x["end"])) for x in LINES]  # type: ignore[arg-type]
    zones = [CountingZone(z["name"], tuple(tuple(p) for p in z["polygon"])) for z in ZONES]  # type: ignore[misc]
    info = probe_video(path, app.container.settings.video)
    limit = app.container.settings.counting.max_analyzed_frames
    with iter_frames(path, info, SAMPLE_FPS, limit) as reader:
        return CountingEngine(detector, lines, zones).process(
            (f.rgb, f.timestamp_ms, f.index) for f in reader
        )


def test_a_video_is_counted_like_the_engine_counts_it_and_every_result_is_served(
    app: JobsApp, clip: Path
) -> None:
    started = time.monotonic()
    queued = counted(app, clip)
    assert {"video_id", "job_id", "status", "links", "serving", "model_version"} <= set(queued)
    assert queued["status"] == "pending" and queued["sample_fps"] == SAMPLE_FPS
    # No min_confidence sent: the answer says the one the tracker runs with (its high score).
    assert queued["min_confidence"] == 0.5
    serving = queued["serving"]
    assert serving["slot"] == "person_detection" and serving["inference_id"] == queued["video_id"]
    assert serving["version"].split("@")[0] in ("nanodet", "centernet")
    assert queued["lines"] == [{"name": x["name"], "start": x["start"], "end": x["end"]} for x in LINES]
    body, progress = wait_done(app, queued["links"]["self"])
    elapsed = time.monotonic() - started
    assert body["status"] == "completed", body
    assert body["min_confidence"] == 0.5
    assert progress == sorted(progress) and progress[-1] == 100.0
    print(
        f"\n[{(app.container.settings.jobs.broker_url and 'scaled') or 'embedded'}] {SECONDS} s at "
        f"{SAMPLE_FPS}/s counted in {elapsed:.1f} s with {body['model_version']}: {body['lines']} "
        f"{body['zones']} totals {body['totals']}"
    )

    expected = direct(app, clip, body["model_version"])
    assert body["lines"] == [c.as_dict() for c in expected.lines]
    assert body["zones"] == [c.as_dict() for c in expected.zones]
    totals = body["totals"]
    assert totals["tracks"] == len(expected.tracks) >= 2  # 2-8 pedestrians walk in view all along
    assert totals["events"] == len(expected.events) >= 1
    assert totals["frames_processed"] == expected.frames_processed == SECONDS * SAMPLE_FPS
    # Stored boxes: those of a confirmed track, or as confident as the tracker's high score (0.5);
    # the weak ones asked for ByteTrack's second association that joined no track are not.
    kept = [(f, (f.track_ids > 0) | (f.scores >= 0.5)) for f in expected.frames]
    assert totals["detections"] == sum(int(mask.sum()) for _, mask in kept) > 0
    assert body["model_version"] == serving["version"] and body["video"]["width"] == 480
    assert body["preview_available"] is True

    stored = rows(app, queued["video_id"])
    assert stored == {
        "counting_videos": 1,
        "person_detection_results": totals["detections"],
        "tracking_results": totals["tracks"],
        "counting_results": totals["events"],
        "inference": 1,
    }
    with app.container.database.session(readonly=True) as session:
        inference = session.scalar(
            select(ModelInferenceResult).where(ModelInferenceResult.inference_id == queued["video_id"])
        )
        assert inference is not None
        assert (inference.model_id, inference.model_version) == ("person_detection", serving["version"])
        assert inference.service == "people_counting" and inference.route == serving["route"]
        assert inference.inference_results["lines"] == body["lines"]
        audited = session.scalar(
            select(AiOperationLog.model_version).where(
                AiOperationLog.operation_type == "upload_counting_video"
            )
        )
        assert audited == serving["version"]

    events = app.client.get(queued["links"]["events"], params={"limit": 1000}, headers=headers(app)).json()
    assert events["total"] == totals["events"] == len(events["events"])
    want = [(e.type, e.direction, e.line, e.zone, e.track_id, e.timestamp_ms) for e in expected.events]
    got = [
        (e["type"], e["direction"], e["line"], e["zone"], e["track_id"], e["timestamp_ms"])
        for e in events["events"]
    ]
    assert got == want
    vertical = app.client.get(
        queued["links"]["events"], params={"line": "vertical"}, headers=headers(app)
    ).json()
    assert {e["line"] for e in vertical["events"]} <= {"vertical"}
    line = body["lines"][0]
    assert vertical["total"] == line["in"] + line["out"]

    tracks = app.client.get(queued["links"]["tracks"], params={"limit": 1000}, headers=headers(app)).json()
    assert sorted(t["track_id"] for t in tracks["tracks"]) == [t.track_id for t in expected.tracks]
    first = next(t for t in tracks["tracks"] if t["track_id"] == expected.tracks[0].track_id)
    assert len(first["trajectory"]) == len(expected.tracks[0].trajectory)
    bare = app.client.get(
        queued["links"]["tracks"], params={"trajectory": "false"}, headers=headers(app)
    ).json()
    assert "trajectory" not in bare["tracks"][0]

    frame, mask = kept[10]
    detections = app.client.get(
        queued["links"]["detections"], params={"frame": frame.frame_index}, headers=headers(app)
    ).json()
    assert detections["total"] == int(mask.sum()) >= 1
    assert sorted(d["track_id"] or 0 for d in detections["detections"]) == sorted(
        int(t) for t in frame.track_ids[mask]
    )
    scores = [d["confidence"] for d in detections["detections"]]
    assert scores == sorted(scores, reverse=True)
    paged = app.client.get(
        queued["links"]["detections"], params={"limit": 7, "offset": 7}, headers=headers(app)
    )
    assert paged.json()["total"] == totals["detections"] and len(paged.json()["detections"]) == 7

    timeline = app.client.get(queued["links"]["timeline"], headers=headers(app)).json()["timeline"]
    assert [p["second"] for p in timeline] == list(range(SECONDS))
    last = timeline[-1]
    assert [{"name": n, **c} for n, c in last["lines"].items()] == body["lines"]

    preview = app.client.get(queued["links"]["preview"], headers=headers(app))
    assert preview.status_code == 200 and preview.headers["content-type"] == "video/mp4"
    with av.open(io.BytesIO(preview.content)) as container:
        stream = container.streams.video[0]
        assert stream.codec_context.name == "h264" and (stream.width, stream.height) == (480, 360)
        assert sum(1 for _ in container.decode(stream)) == SECONDS * SAMPLE_FPS  # under preview_seconds

    listed = app.client.get(VIDEOS, headers=headers(app)).json()
    assert queued["video_id"] in [v["video_id"] for v in listed["videos"]]
    done = app.client.get(VIDEOS, params={"status": "completed"}, headers=headers(app)).json()
    assert all(v["status"] == "completed" for v in done["videos"])


class _Job:
    """A JobContext for running the handler again by hand (a retry after a crash)."""

    def __init__(self, job_id: str, payload: dict[str, Any]) -> None:
        self.job_id = job_id
        self.payload = payload
        self.attempt = 2
        self.worker_id = "test"

    def progress(self, fraction: float, eta_seconds: float | None = None) -> None:
        return None


def test_a_retry_replaces_the_results_and_delete_erases_every_row(app: JobsApp, clip: Path) -> None:
    queued = counted(app, clip, sample_fps="2")
    body, _ = wait_done(app, queued["links"]["self"])
    assert body["status"] == "completed", body
    first = rows(app, queued["video_id"])
    assert first["tracking_results"] >= 1 and first["inference"] == 1
    # The handler run again on the same file (a worker killed after its commit, then retried)
    # replaces every row; it never adds a second set.
    job_id = f"retry{uuid.uuid4().hex[:8]}"
    folder = app.container.settings.resolved_spool_dir() / job_id
    folder.mkdir(parents=True)
    (folder / "video").write_bytes(clip.read_bytes())
    try:
        result = app.container.counting.run_job(_Job(job_id, {"video_id": queued["video_id"]}))
    finally:
        app.container.counting.on_job_end(job_id, "completed")
    assert result["lines"] == body["lines"]
    assert rows(app, queued["video_id"]) == first
    assert not folder.exists()

    gone = app.client.delete(queued["links"]["self"], headers=headers(app))
    assert gone.status_code == 200 and gone.json()["deleted"] is True
    assert rows(app, queued["video_id"]) == dict.fromkeys(first, 0)
    missing = app.client.get(queued["links"]["self"], headers=headers(app))
    assert (missing.status_code, missing.json()["error"]["code"]) == (404, "COUNTING_VIDEO_NOT_FOUND")


def test_another_tenant_sees_nothing_and_unknown_ids_are_404(app: JobsApp, clip: Path) -> None:
    queued = counted(app, clip, sample_fps="1")
    other = headers(app, app.other_key)
    for path in ("", "/events", "/tracks", "/detections", "/timeline", "/preview.mp4"):
        r = app.client.get(queued["links"]["self"] + path, headers=other)
        assert (r.status_code, r.json()["error"]["code"]) == (404, "COUNTING_VIDEO_NOT_FOUND"), path
    assert app.client.delete(queued["links"]["self"], headers=other).status_code == 404
    assert queued["video_id"] not in [
        v["video_id"] for v in app.client.get(VIDEOS, headers=other).json()["videos"]
    ]
    for unknown in (str(uuid.uuid4()), "not-a-uuid", "x" * 500):
        r = app.client.get(f"{VIDEOS}/{unknown}", headers=headers(app))
        assert (r.status_code, r.json()["error"]["code"]) == (404, "COUNTING_VIDEO_NOT_FOUND")
    body, _ = wait_done(app, queued["links"]["self"])
    assert body["status"] == "completed"
    assert rows(app, queued["video_id"])["counting_videos"] == 1  # the other tenant's delete did nothing


def test_results_of_an_unfinished_video_are_409(app: JobsApp, clip: Path) -> None:
    queued = counted(app, clip, sample_fps="1")
    wait_done(app, queued["links"]["self"])
    with app.container.database.session() as session:
        video = session.scalar(select(CountingVideo).where(CountingVideo.video_id == queued["video_id"]))
        assert video is not None
        pending = CountingVideo(
            video_id=str(uuid.uuid4()),
            tenant_id=video.tenant_id,
            status="processing",
            progress_percentage=0.0,
            parameters=video.parameters,
            serving=video.serving,
        )
        session.add(pending)
    url = f"{VIDEOS}/{pending.video_id}"
    for path in ("/preview.mp4", "/timeline"):
        r = app.client.get(url + path, headers=headers(app))
        assert (r.status_code, r.json()["error"]["code"]) == (409, "COUNTING_NOT_READY"), path
    body = app.client.get(url, headers=headers(app)).json()
    assert body["status"] == "processing" and "lines" not in body
    assert app.client.delete(url, headers=headers(app)).status_code == 200


def counts(app: JobsApp) -> tuple[int, int]:
    with app.container.database.session(readonly=True) as session:
        return (
            int(session.scalar(select(func.count()).select_from(CountingVideo)) or 0),
            int(session.scalar(select(func.count()).select_from(Job)) or 0),
        )


BAD_FIELDS: list[tuple[dict[str, str], int, str]] = [
    ({"lines": "[{"}, 422, "INVALID_COUNTING_LINES"),
    ({"lines": json.dumps([{"name": "a", "start": [0, 0], "end": [481, 0]}])}, 422, "INVALID_COUNTING_LINES"),
    ({"lines": json.dumps([LINES[0], LINES[0]])}, 422, "INVALID_COUNTING_LINES"),
    ({"lines": json.dumps([{**LINES[0], "name": ""}])}, 422, "INVALID_COUNTING_LINES"),
    (
        {"lines": json.dumps([{"name": str(i), "start": [0, 0], "end": [9, 9]} for i in range(17)])},
        422,
        "INVALID_COUNTING_LINES",
    ),
    ({"zones": json.dumps([{"name": "z", "polygon": [[0, 0], [9, 9]]}])}, 422, "INVALID_COUNTING_ZONES"),
    (
        {"zones": json.dumps([{"name": "z", "polygon": [[0, 0], [100, 100], [100, 0], [0, 100]]}])},
        422,
        "INVALID_COUNTING_ZONES",
    ),
    ({"zones": '{"name": "z"}'}, 422, "INVALID_COUNTING_ZONES"),
    ({"sample_fps": "0.1"}, 422, "VALIDATION_ERROR"),
    ({"sample_fps": "31"}, 422, "VALIDATION_ERROR"),
    ({"min_confidence": "1.5"}, 422, "VALIDATION_ERROR"),
    ({"surprise": "1"}, 422, "VALIDATION_ERROR"),
]


def test_bad_fields_and_bad_videos_are_refused_and_nothing_is_stored(
    app: JobsApp, clip: Path, tmp_path: Path
) -> None:
    before = counts(app)
    for data, status, code in BAD_FIELDS:
        r = upload(app, clip, **data)
        assert (r.status_code, r.json()["error"]["code"]) == (status, code), (data, r.text)
    for payload, code in ((b"", "EMPTY_VIDEO"), (b"no video here" * 100, "UNSUPPORTED_VIDEO")):
        r = app.client.post(VIDEOS, files={"video": ("v.mp4", payload, "video/mp4")}, headers=headers(app))
        assert r.json()["error"]["code"] == code, r.text
    assert counts(app) == before


def test_the_registry_decides_which_person_detector_counts(app: JobsApp, clip: Path) -> None:
    """A rollback of the person_detection slot to the other detector (operator API) makes the next
    upload run that version: response, job result, inference row; rolling back restores it."""
    installed = detector_versions(app.container.model_cache)
    if len(installed) < 2:
        pytest.skip(f"needs two person detectors pulled, have {sorted(installed)}")
    production = counted(app, clip, sample_fps="1")["serving"]["version"]
    other = next(tag for tag in installed if tag != production)
    operator = app.container.keys.create("operator", role="operator").secret
    slot = "/api/v1/models/person_detection"

    def rollback(version: str) -> None:
        r = app.client.post(
            f"{slot}/rollback",
            json={"version": version, "reason": "counting test"},
            headers=headers(app, operator),
        )
        assert r.status_code == 200, r.text

    rollback(other)
    try:
        queued = counted(app, clip, sample_fps="1")
        assert (queued["serving"]["version"], queued["serving"]["route"]) == (other, "production")
        body, _ = wait_done(app, queued["links"]["self"])
        assert body["status"] == "completed" and body["model_version"] == other, body
        with app.container.database.session(readonly=True) as session:
            served = session.scalar(
                select(ModelInferenceResult.model_version).where(
                    ModelInferenceResult.inference_id == queued["video_id"]
                )
            )
        assert served == other
    finally:
        rollback(production)
    assert counted(app, clip, sample_fps="1")["serving"]["version"] == production


def test_an_experiment_on_person_detection_splits_uploads_by_caller_and_records_the_arm(
    app: JobsApp, clip: Path
) -> None:
    """A running user-split experiment on the slot: each upload names its arm and version, the
    same caller stays on one arm, its assignment is recorded once, and the job's inference row
    carries the experiment and arm (what the experiment's results count)."""
    installed = detector_versions(app.container.model_cache)
    if len(installed) < 2:
        pytest.skip(f"needs two person detectors pulled, have {sorted(installed)}")
    production = counted(app, clip, sample_fps="1")["serving"]["version"]
    other = next(tag for tag in installed if tag != production)
    operator = headers(app, app.container.keys.create("operator", role="operator").secret)
    created = app.client.post(
        "/api/v1/experiments",
        json={
            "name": f"counting {uuid.uuid4().hex[:6]}",
            "model_id": "person_detection",
            "baseline_version": production,
            "challenger_version": other,
            "traffic_split_percent": 50,
            "traffic_split_method": "user",
            "minimum_sample_size": 10,
        },
        headers=operator,
    )
    assert created.status_code == 201, created.text
    experiment_id = created.json()["experiment"]["experiment_id"]
    assert app.client.post(f"/api/v1/experiments/{experiment_id}/start", headers=operator).status_code == 200
    try:
        first = counted(app, clip, sample_fps="1")
        second = counted(app, clip, sample_fps="1")
    finally:
        app.client.post(f"/api/v1/experiments/{experiment_id}/stop", headers=operator)
    serving = first["serving"]
    assert serving["route"] == "experiment" and serving["experiment_id"] == experiment_id
    assert serving["version"] == (production if serving["arm"] == "baseline" else other)
    assert {k: second["serving"][k] for k in ("arm", "version")} == {
        k: serving[k] for k in ("arm", "version")
    }
    body, _ = wait_done(app, first["links"]["self"])
    assert body["status"] == "completed" and body["model_version"] == serving["version"], body
    with app.container.database.session(readonly=True) as session:
        inference = session.scalar(
            select(ModelInferenceResult).where(ModelInferenceResult.inference_id == first["video_id"])
        )
        assert inference is not None
        assert (inference.experiment_id, inference.arm, inference.model_version) == (
            experiment_id,
            serving["arm"],
            serving["version"],
        )
        assignments = session.execute(
            select(AbAssignment.assigned_group, AbAssignment.assigned_version).where(
                AbAssignment.experiment_id == experiment_id
            )
        ).all()
    assert [tuple(a) for a in assignments] == [(serving["arm"], serving["version"])]


def test_delete_of_a_queued_video_cancels_its_job_and_leaves_nothing(app: JobsApp, clip: Path) -> None:
    queued = counted(app, clip, priority="1")
    gone = app.client.delete(queued["links"]["self"], headers=headers(app))
    assert gone.status_code == 200 and gone.json() == {
        "success": True,
        "video_id": queued["video_id"],
        "deleted": True,
    }
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        job = app.client.get(queued["links"]["job"], headers=headers(app)).json()["job"]
        if job["status"] in ("completed", "failed", "cancelled"):
            break
        time.sleep(0.3)
    # Cancelled while queued or running; a job that had passed its last check fails on the erased row.
    assert job["status"] in ("cancelled", "failed"), job
    assert rows(app, queued["video_id"]) == dict.fromkeys(
        ("counting_videos", "person_detection_results", "tracking_results", "counting_results", "inference"),
        0,
    )
    spool = app.container.settings.resolved_spool_dir()
    assert not (spool / queued["job_id"]).exists()


def test_retention_erases_old_ended_videos_only(app: JobsApp, clip: Path) -> None:
    old = counted(app, clip, sample_fps="1")
    wait_done(app, old["links"]["self"])
    fresh = counted(app, clip, sample_fps="1")
    wait_done(app, fresh["links"]["self"])
    days = app.container.settings.counting.retention_days
    with app.container.database.session() as session:
        video = session.scalar(select(CountingVideo).where(CountingVideo.video_id == old["video_id"]))
        assert video is not None and video.status == "completed"
        video.created_at = video.created_at - timedelta(days=days + 1)
    assert app.container.counting.retention() >= 1
    assert rows(app, old["video_id"])["counting_videos"] == 0 and rows(app, old["video_id"])["inference"] == 0
    assert rows(app, fresh["video_id"])["counting_videos"] == 1
