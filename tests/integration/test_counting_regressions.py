"""Regressions of people counting found by attack (issue 13), through the container and HTTP:
erasure racing the job's write (PostgreSQL), anamorphic uploads, the detector version a job
runs, names that cannot be encoded, a failed retry of a completed video, and detection rows cut
by ``counting.max_detection_rows``. Each test failed before its fix."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from facesocial import errors
from facesocial.api.app import create_app
from facesocial.container import Container
from facesocial.domains.counting import tasks
from facesocial.domains.registry.serving import RoutingKey
from facesocial.services.principal import Principal
from facesocial.store.tables_counting import CountingVideo
from facesocial.store.tables_registry import ModelInferenceResult
from facesocial.video.probe import probe_video
from tests.integration.conftest import profile
from tests.unit.test_counting_regressions import add_pasp, synthetic_mp4

VIDEOS = "/api/v1/counting/videos"


def wait_for_lock_waiter(database_url: str, seconds: float = 30.0) -> bool:
    """Whether a backend of this database waits on a row lock of counting_videos within ``seconds``."""
    import psycopg

    url = database_url.replace("postgresql+psycopg://", "postgresql://", 1)
    deadline = time.monotonic() + seconds
    with psycopg.connect(url, autocommit=True) as conn:
        while time.monotonic() < deadline:
            waiting = conn.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                "AND wait_event_type = 'Lock' AND query ILIKE '%%counting_videos%%'"
            ).fetchone()
            if waiting and waiting[0] > 0:
                return True
            time.sleep(0.05)
    return False


class _Job:
    """A JobContext for running the handler by hand."""

    def __init__(self, job_id: str, payload: dict[str, Any]) -> None:
        self.job_id = job_id
        self.payload = payload
        self.attempt = 1
        self.worker_id = "regression"

    def progress(self, fraction: float, eta_seconds: float | None = None) -> None:
        return None


# --- 3. delete racing the job's final write (PostgreSQL) --------------------------------------------


@pytest.fixture
def pg_container(tmp_path: Path, model_dir: Path) -> Iterator[Container]:
    with profile("scaled", tmp_path, model_dir) as settings:
        container = Container(settings)
        container.prepare()
        try:
            yield container
        finally:
            container.close()


@pytest.mark.integration
@pytest.mark.model
def test_delete_racing_the_result_write_leaves_no_inference_row(
    pg_container: Container, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """DELETE answers 200 "deleted" while the job's last transaction is writing (PostgreSQL):
    the erasure's ``erase_results`` runs first, sees none of the job's uncommitted rows, then
    waits on the video row the job locked FOR UPDATE; the job commits; the erasure deletes the
    video row (its result rows go by ON DELETE CASCADE) — but the job's
    ``model_inference_results`` row (tenant, input sha256, counts, detector confidences) has no
    foreign key to the video and stays for ever: an erased video's data survives the 200."""
    container = pg_container
    issued = container.keys.create("attack")
    # a key made without an owner is a tenant of its own: tenant id = key id
    caller = Principal(kind="api_key", role="admin", tenant_id=issued.id, name="attack", api_key_id=issued.id)
    clip = synthetic_mp4(tmp_path / "clip.mp4")
    video_id, job_id = str(uuid.uuid4()), f"attack{uuid.uuid4().hex[:8]}"
    serving = container.counting.resolve(RoutingKey(request_id=video_id, tenant_id=caller.tenant_id))
    info = probe_video(clip, container.settings.video)
    with container.database.session() as session:
        session.add(
            CountingVideo(
                video_id=video_id,
                tenant_id=caller.tenant_id,
                api_key_id=issued.id,
                job_id=None,  # run by hand below: no runner races us
                status="pending",
                progress_percentage=0.0,
                parameters={
                    "sample_fps": 5.0,
                    "min_confidence": None,
                    "lines": [],
                    "zones": [],
                    "video": {"width": info.width, "height": info.height},
                },
                serving=serving.as_dict(),
                model_version=serving.version,
            )
        )
    folder = container.settings.resolved_spool_dir() / job_id
    folder.mkdir(parents=True)
    (folder / "video").write_bytes(clip.read_bytes())

    inside_write, release = threading.Event(), threading.Event()
    original = tasks._write_results

    def slow_write(*args: Any, **kwargs: Any) -> int:
        inside_write.set()  # the video row is locked, the inference row flushed, not committed
        assert release.wait(60)
        return original(*args, **kwargs)

    monkeypatch.setattr(tasks, "_write_results", slow_write)
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            outcome["result"] = container.counting.run_job(_Job(job_id, {"video_id": video_id}))
        except Exception as exc:
            outcome["error"] = exc

    def erase() -> None:
        try:
            outcome["delete"] = container.counting.delete(video_id, caller)
        except Exception as exc:
            outcome["delete_error"] = exc

    worker = threading.Thread(target=run)
    worker.start()
    assert inside_write.wait(60), outcome
    eraser = threading.Thread(target=erase)
    eraser.start()
    # The erasure has deleted "nothing" and now waits on the video row the job locked.
    assert wait_for_lock_waiter(container.settings.database_url), "the erasure never reached the lock"
    release.set()
    worker.join(60)
    eraser.join(60)
    assert "result" in outcome and outcome.get("delete") == {"video_id": video_id, "deleted": True}, outcome
    with container.database.session(readonly=True) as session:
        videos = session.scalar(select(func.count()).where(CountingVideo.video_id == video_id))
        inference = session.scalar(select(func.count()).where(ModelInferenceResult.inference_id == video_id))
    assert videos == 0
    assert inference == 0, "the erased video's inference row survived the DELETE"


@pytest.fixture
def embedded_app(tmp_path: Path, model_dir: Path) -> Iterator[tuple[TestClient, Container, str]]:
    with profile("embedded", tmp_path, model_dir) as settings:
        container = Container(settings)
        container.prepare()
        key = container.keys.create("attack").secret
        try:
            with TestClient(create_app(container), raise_server_exceptions=False) as client:
                yield client, container, key
        finally:
            container.close()


@pytest.mark.integration
@pytest.mark.model
def test_an_anamorphic_video_wider_than_the_limit_as_shown_is_refused(
    embedded_app: tuple[TestClient, Container, str], tmp_path: Path
) -> None:
    """``video.max_side`` (4096 px) is checked on the *coded* size only (video/probe.py), but the
    job decodes every frame at the *display* size (coded width × pixel aspect ratio,
    video/frames.py ``_upright``) and the lines are checked against it. A 256×64 MP4 with a
    64:1 ``pasp`` box is accepted as 16384×64 (a line at x = 16000 passes) and each frame is
    decoded 16384 px wide; a 4096×2160 one with 65535:1 asks for ~268 million px per row (a
    1.7 TB frame): one upload kills the worker on every retry. Expected: 422
    VIDEO_RESOLUTION_UNSUPPORTED before anything is stored."""
    client, _container, key = embedded_app
    base = synthetic_mp4(tmp_path / "base.mp4", width=256, height=64, frames=5)
    wide = add_pasp(base.read_bytes(), 64, 1)
    line = json.dumps([{"name": "far", "start": [16000, 0], "end": [16000, 64]}])
    r = client.post(
        VIDEOS,
        files={"video": ("wide.mp4", wide, "video/mp4")},
        data={"lines": line},
        headers={"X-API-Key": key},
    )
    assert (r.status_code, r.json().get("error", {}).get("code")) == (422, "VIDEO_RESOLUTION_UNSUPPORTED"), (
        r.status_code,
        r.text[:300],
    )


# --- 6. the version recorded is the version that ran ------------------------------------------------


@pytest.mark.integration
@pytest.mark.model
def test_the_job_never_runs_another_version_than_the_one_it_records(
    embedded_app: tuple[TestClient, Container, str], tmp_path: Path
) -> None:
    """The upload records the registry's ``person_detection`` version (``nanodet@X``) and the
    worker must run that version: after a model-pack upgrade between upload and run (or on a
    worker with another pack) the job fails with MODEL_UNAVAILABLE and writes nothing."""
    _client, container, _key = embedded_app
    issued = container.keys.create("attack-version")
    tenant = issued.id
    clip = synthetic_mp4(tmp_path / "clip.mp4")
    video_id, job_id = str(uuid.uuid4()), f"attack{uuid.uuid4().hex[:8]}"
    serving = container.counting.resolve(RoutingKey(request_id=video_id, tenant_id=tenant))
    name, installed_version = serving.version.split("@", 1)
    told = f"{name}@0.0.1-retired"  # the version the client was told at upload; gone since
    info = probe_video(clip, container.settings.video)
    with container.database.session() as session:
        session.add(
            CountingVideo(
                video_id=video_id,
                tenant_id=tenant,
                api_key_id=issued.id,
                job_id=None,
                status="pending",
                progress_percentage=0.0,
                parameters={
                    "sample_fps": 5.0,
                    "min_confidence": None,
                    "lines": [],
                    "zones": [],
                    "video": {"width": info.width, "height": info.height},
                },
                serving={**serving.as_dict(), "version": told},
                model_version=told,
            )
        )
    folder = container.settings.resolved_spool_dir() / job_id
    folder.mkdir(parents=True)
    (folder / "video").write_bytes(clip.read_bytes())
    with pytest.raises(errors.ModelUnavailableError) as caught:
        container.counting.run_job(_Job(job_id, {"video_id": video_id}))
    assert caught.value.details == {"expected": told, "installed": f"{name}@{installed_version}"}
    container.counting.on_job_end(job_id, "failed")
    with container.database.session(readonly=True) as session:
        inference = session.scalar(select(func.count()).where(ModelInferenceResult.inference_id == video_id))
    assert inference == 0  # nothing was written under a version that did not run


# --- 7. a name with a lone surrogate: 500, stored anyway, and the tenant's list broken -------------


@pytest.mark.integration
@pytest.mark.model
@pytest.mark.parametrize("field", ["lines", "zones"])
def test_a_name_with_a_lone_surrogate_is_refused_before_anything_is_stored(
    embedded_app: tuple[TestClient, Container, str], tmp_path: Path, field: str
) -> None:
    """``"name": "\\ud800"`` is valid JSON text that ``json.loads`` turns into a lone surrogate,
    which no UTF-8 encoder accepts. forms._name lets it through; on SQLite the video row and its
    job are stored and dispatched, then rendering the 202 body raises UnicodeEncodeError: the
    client gets 500 INTERNAL_ERROR for an upload that is in fact queued (a retry doubles it),
    and from then on every ``GET /counting/videos`` page and ``GET /counting/videos/{id}`` that
    includes it answers 500 (the tenant's list is broken until the row is erased). On PostgreSQL
    the insert fails and the generic handler answers 422 VALIDATION_ERROR (held). Expected:
    422 INVALID_COUNTING_LINES/ZONES, nothing stored, the list still 200."""
    client, container, key = embedded_app
    headers = {"X-API-Key": key}
    clip = synthetic_mp4(tmp_path / "clip.mp4").read_bytes()
    raw = (
        '[{"name": "door\\ud800", "start": [0, 10], "end": [100, 10]}]'
        if field == "lines"
        else '[{"name": "queue\\ud800", "polygon": [[0, 0], [100, 0], [100, 100]]}]'
    )
    r = client.post(VIDEOS, files={"video": ("c.mp4", clip, "video/mp4")}, data={field: raw}, headers=headers)
    code = "INVALID_COUNTING_LINES" if field == "lines" else "INVALID_COUNTING_ZONES"
    with container.database.session(readonly=True) as session:
        stored = session.scalar(select(func.count()).select_from(CountingVideo))
    deadline = time.monotonic() + 60  # let a queued job end: its row is what breaks the list
    while stored and time.monotonic() < deadline:
        with container.database.session(readonly=True) as session:
            statuses = list(session.scalars(select(CountingVideo.status)))
        if all(s in ("completed", "failed", "cancelled") for s in statuses):
            break
        time.sleep(0.3)
    listed = client.get(VIDEOS, headers=headers)
    assert (r.status_code, r.json()["error"]["code"], stored, listed.status_code) == (422, code, 0, 200)


# --- 8. a retry of a completed video that then fails hides the stored results -----------------------


@pytest.mark.integration
@pytest.mark.model
def test_a_failed_retry_does_not_turn_a_completed_video_into_a_failed_one(
    embedded_app: tuple[TestClient, Container, str], tmp_path: Path
) -> None:
    """A worker killed after the job's result commit but before the runner marked the job
    completed leaves the job to another attempt (docs/counting.md). That attempt first commits
    ``status = "processing"`` on the completed row (tasks.py ``run``), and if it then fails for
    good (here: its spooled file is gone; equally a model removed meanwhile, or the last attempt
    killed again) ``on_end`` sees a row that is not "completed" and marks it ``failed``: the
    counts, events, tracks and preview of the first attempt are all still stored but GET shows
    a failed video without them and the preview answers 409. Expected: the retry of a completed
    video is a no-op returning the stored result, and the row stays completed."""
    _client, container, _key = embedded_app
    issued = container.keys.create("attack-retry")
    tenant = issued.id
    clip = synthetic_mp4(tmp_path / "clip.mp4")
    video_id, job_id = str(uuid.uuid4()), f"attack{uuid.uuid4().hex[:8]}"
    serving = container.counting.resolve(RoutingKey(request_id=video_id, tenant_id=tenant))
    info = probe_video(clip, container.settings.video)
    with container.database.session() as session:
        session.add(
            CountingVideo(
                video_id=video_id,
                tenant_id=tenant,
                api_key_id=issued.id,
                job_id=job_id,
                status="pending",
                progress_percentage=0.0,
                parameters={
                    "sample_fps": 5.0,
                    "min_confidence": None,
                    "lines": [],
                    "zones": [],
                    "video": {"width": info.width, "height": info.height},
                },
                serving=serving.as_dict(),
                model_version=serving.version,
            )
        )
    folder = container.settings.resolved_spool_dir() / job_id
    folder.mkdir(parents=True)
    (folder / "video").write_bytes(clip.read_bytes())
    first = container.counting.run_job(_Job(job_id, {"video_id": video_id}))  # attempt 1 commits
    (folder / "video").unlink()  # attempt 2 could not finish: it must not even start
    assert container.counting.run_job(_Job(job_id, {"video_id": video_id})) == first
    with container.database.session(readonly=True) as session:
        status = session.scalar(select(CountingVideo.status).where(CountingVideo.video_id == video_id))
    assert status == "completed"  # the retry never set it back to "processing"
    container.counting.on_job_end(job_id, "failed")  # and a failed end leaves it completed
    with container.database.session(readonly=True) as session:
        video = session.scalar(select(CountingVideo).where(CountingVideo.video_id == video_id))
        assert video is not None
        inference = session.scalar(select(func.count()).where(ModelInferenceResult.inference_id == video_id))
    assert inference == 1  # the first attempt's results are all there
    assert video.status == "completed", (video.status, video.error_code)


# --- 9. detection rows cut by max_detection_rows: tracks and events point at rows never stored ------


class _WalkingPerson:
    """A stand-in person detector: one person walking down the frame, 4 px per call."""

    def __init__(self, model: Any) -> None:
        self.model = model
        self.calls = 0

    def detect(self, rgb: Any, *, min_confidence: float = 0.3) -> Any:
        from facesocial.vision.persons import PersonBoxes

        y = 4 * self.calls
        self.calls += 1
        return PersonBoxes(np.array([[60, y, 90, y + 40]], np.float32), np.array([0.9], np.float32))


@pytest.mark.integration
@pytest.mark.model
def test_when_detection_rows_are_cut_no_track_or_event_names_a_missing_detection(
    embedded_app: tuple[TestClient, Container, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With more boxes than ``counting.max_detection_rows`` the rest are dropped
    (``totals.detections_cut``), but tasks._write_results records every box's id in
    ``detection_ids`` *before* the cut, so ``tracking_results.detection_id`` (served as a track's
    ``last_detection_id``) and ``counting_results.detection_id`` (an event's ``detection_id``)
    name person_detection_results rows that were never written: dangling references in the API
    and the tables. Expected: only ids of stored rows (or None)."""
    from facesocial.models.manifest import ModelRef
    from facesocial.store.tables_counting import CountingResult, DetectionResult, TrackingResult

    _client, container, _key = embedded_app
    container.settings.counting.max_detection_rows = 3
    issued = container.keys.create("attack-cut")
    clip = synthetic_mp4(tmp_path / "clip.mp4", width=160, height=120, frames=20)
    video_id, job_id = str(uuid.uuid4()), f"attack{uuid.uuid4().hex[:8]}"
    serving = container.counting.resolve(RoutingKey(request_id=video_id, tenant_id=issued.id))
    name, version = serving.version.split("@", 1)
    monkeypatch.setattr(
        tasks, "load_person_detector", lambda cache, n: _WalkingPerson(ModelRef(name, version))
    )
    info = probe_video(clip, container.settings.video)
    line = {"name": "door", "start": [0.0, 80.0], "end": [160.0, 80.0]}
    with container.database.session() as session:
        session.add(
            CountingVideo(
                video_id=video_id,
                tenant_id=issued.id,
                api_key_id=issued.id,
                job_id=None,
                status="pending",
                progress_percentage=0.0,
                parameters={
                    "sample_fps": 10.0,
                    "min_confidence": None,
                    "lines": [line],
                    "zones": [],
                    "video": {"width": info.width, "height": info.height},
                },
                serving=serving.as_dict(),
                model_version=serving.version,
            )
        )
    folder = container.settings.resolved_spool_dir() / job_id
    folder.mkdir(parents=True)
    (folder / "video").write_bytes(clip.read_bytes())
    try:
        result = container.counting.run_job(_Job(job_id, {"video_id": video_id}))
    finally:
        container.counting.on_job_end(job_id, "completed")
    assert result["tracks"] == 1 and result["events"] == 1  # walked down across the door
    with container.database.session(readonly=True) as session:
        stored = set(
            session.scalars(select(DetectionResult.detection_id).where(DetectionResult.video_id == video_id))
        )
        named = [
            *session.scalars(select(TrackingResult.detection_id).where(TrackingResult.video_id == video_id)),
            *session.scalars(select(CountingResult.detection_id).where(CountingResult.video_id == video_id)),
        ]
    assert len(stored) == 3
    assert [d for d in named if d is not None and d not in stored] == []
