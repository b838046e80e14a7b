"""People counting in uploaded videos: submit as a job, read the counts and results, erase.

``POST /api/v1/counting/videos`` streams the file to the spool folder and probes it
(:mod:`facesocial.api.video_form`: a bad file is refused with its ``VIDEO_*`` code before
anything is stored), the route checks the lines and zones against the probed frame size
(:mod:`.forms`), and :meth:`CountingService.submit` asks the model router which
``person_detection`` version serves the caller, then writes the ``counting_videos`` row and the
job row (kind ``counting.video``) in one transaction with the file moved under the job's spool
folder — so a 202 means the video is durable — and dispatches the job after the commit.
The job itself is :mod:`.tasks`. Reads are tenant-scoped (:mod:`.repository`).
"""

from __future__ import annotations

import contextlib
import shutil
import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from facesocial import errors
from facesocial.domains.counting import repository, views
from facesocial.domains.counting.forms import LineSpec, ZoneSpec
from facesocial.domains.counting.tasks import (
    COUNTING_JOB,
    SLOT,
    VIDEO_FILE,
    CountingJob,
    default_version,
    detector_versions,
    erase_results,
)
from facesocial.domains.experiments.assignment import choose_arm, record_assignment
from facesocial.domains.registry.serving import ModelRouter, RoutingKey, Serving
from facesocial.jobs.port import JobContext, JobQueue, JobStatus, NewJob
from facesocial.jobs.store import JobStore
from facesocial.models.runtime import ModelCache
from facesocial.services.principal import Principal
from facesocial.settings import Settings
from facesocial.store.db import Database
from facesocial.store.tables import JOB_TERMINAL
from facesocial.store.tables_counting import CountingVideo
from facesocial.store.types import utcnow
from facesocial.video.probe import VideoInfo
from facesocial.video.upload import SpooledUpload

# Rows per page at most (events, tracks, detections, timeline points, videos).
MAX_PAGE = 1000


@dataclass(frozen=True, slots=True)
class CountingRequest:
    """What an upload asked for, checked: frames per second (already clamped to the limits),
    lines and zones (:mod:`.forms`), the tracker's ``min_confidence`` (None = its default),
    priority 1-10 and an optional validated callback URL."""

    sample_fps: float
    lines: tuple[LineSpec, ...]
    zones: tuple[ZoneSpec, ...]
    min_confidence: float | None
    priority: int
    callback_url: str | None


class CountingService:
    def __init__(
        self,
        database: Database,
        model_cache: Callable[[], ModelCache],
        router: Callable[[], ModelRouter],
        job_store: JobStore,
        jobs: Callable[[], JobQueue],
        cancel: Callable[[str, uuid.UUID], object],
        settings: Settings,
    ) -> None:
        self._db = database
        self._model_cache = model_cache
        self._router = router
        self._job_store = job_store
        self._jobs = jobs
        self._cancel = cancel
        self._settings = settings
        self._job = CountingJob(database, model_cache, settings)
        self.spool_dir = settings.resolved_spool_dir()

    # --- upload ----------------------------------------------------------------------------------

    def resolve(self, key: RoutingKey) -> Serving:
        """The ``person_detection`` version serving ``key`` (the registry's production, canary or
        experiment arm; the settings' detector without a registry), its ``inference_id`` the
        video id to be. Raises ``MODEL_UNAVAILABLE`` (503) when no person detector is pulled."""
        installed = detector_versions(self._model_cache())
        default = default_version(installed, self._settings.counting.detector)
        serving = self._router().resolve(SLOT, key, installed=installed.keys(), default=default)
        return replace(serving, inference_id=key.request_id)

    def submit(
        self,
        upload: SpooledUpload,
        info: VideoInfo,
        request: CountingRequest,
        *,
        caller: Principal,
        serving: Serving,
        key: RoutingKey,
    ) -> dict[str, Any]:
        """Store the video row and its job (one commit, the file moved under the job), dispatch
        it; the 202 body. ``serving.inference_id`` is the video id (from :meth:`resolve` with
        ``key``); an experiment arm's first assignment of the caller commits with the rows."""
        video_id = serving.inference_id
        parameters = {
            "sample_fps": round(request.sample_fps, 4),
            "min_confidence": request.min_confidence,
            "lines": [line.as_dict() for line in request.lines],
            "zones": [zone.as_dict() for zone in request.zones],
            "video": info.summary(),
        }
        with self._db.session() as session:
            job_id = self._job_store.add_with_file(
                session,
                NewJob(
                    kind=COUNTING_JOB,
                    tenant_id=caller.tenant_id,
                    api_key_id=caller.api_key_id,
                    payload={"video_id": video_id},
                    priority=request.priority,
                    callback_url=request.callback_url,
                ),
                self._settings.jobs.max_attempts,
                self.spool_dir,
                upload.path,
                VIDEO_FILE,
            )
            session.add(
                CountingVideo(
                    video_id=video_id,
                    tenant_id=caller.tenant_id,
                    api_key_id=caller.api_key_id,
                    job_id=job_id,
                    status="pending",
                    progress_percentage=0.0,
                    file_name=(upload.filename or "video")[:255],
                    file_sha256=upload.sha256,
                    file_size_bytes=upload.size,
                    parameters=parameters,
                    serving=serving.as_dict(),
                    model_version=serving.version,
                )
            )
            self._record_assignment(session, serving, key)
        self._jobs().dispatch(job_id, request.priority)
        return {
            "video_id": video_id,
            "job_id": job_id,
            "status": "pending",
            "sample_fps": parameters["sample_fps"],
            "min_confidence": views.effective_min_confidence(parameters),
            "lines": parameters["lines"],
            "zones": parameters["zones"],
            "priority": request.priority,
            "video": parameters["video"],
            "serving": serving.as_dict(),
            "model_version": serving.version,
            "links": views.links(video_id, job_id),
        }

    def _record_assignment(self, session: Session, serving: Serving, key: RoutingKey) -> None:
        """An experiment arm's assignment row (``ab_assignments``, first arm kept), which
        ``ModelRouter.record`` writes for the other services: counting writes its inference row
        itself, at the end of the job, and the worker's router never saw this request."""
        if serving.route != "experiment" or serving.experiment_id is None:
            return
        state = getattr(self._router(), "state", None)  # the registry's router (DbModelRouter)
        experiment = state(SLOT).experiment if callable(state) else None
        if experiment is None or experiment.experiment_id != serving.experiment_id:
            return  # stopped meanwhile: the inference row still names the arm
        arm, subject, reason = choose_arm(experiment, key)
        if arm == serving.arm:
            record_assignment(session, experiment, key, arm, subject, reason)

    # --- the job -----------------------------------------------------------------------------------

    def run_job(self, job: JobContext) -> dict[str, Any]:
        """The ``counting.video`` handler (:class:`.tasks.CountingJob`)."""
        return self._job.run(job)

    def on_job_end(self, job_id: str, status: JobStatus) -> None:
        self._job.on_end(job_id, status)

    # --- reads -----------------------------------------------------------------------------------

    def get(self, video_id: str, caller: Principal) -> dict[str, Any]:
        """Status, progress, parameters; when completed the per-line and per-zone counts."""
        with self._db.session(readonly=True) as session:
            video = repository.owned_video(session, video_id, caller.tenant_id)
            return views.video_body(video, repository.job_of(session, video.job_id), full=True)

    def list_videos(self, caller: Principal, status: str | None, offset: int, limit: int) -> dict[str, Any]:
        """The tenant's videos, newest first."""
        limit = min(limit, MAX_PAGE)
        with self._db.session(readonly=True) as session:
            total, rows = repository.page_videos(session, caller.tenant_id, status, offset, limit)
            jobs = repository.jobs_of(session, [v.job_id for v in rows])
            items = [views.video_body(v, jobs.get(v.job_id or ""), full=False) for v in rows]
        return {"total": total, "offset": offset, "limit": limit, "videos": items}

    def events(
        self, video_id: str, caller: Principal, line: str | None, zone: str | None, offset: int, limit: int
    ) -> dict[str, Any]:
        """A page of the counting events (``counting_results``) in time order."""
        limit = min(limit, MAX_PAGE)
        with self._db.session(readonly=True) as session:
            video = repository.owned_video(session, video_id, caller.tenant_id)
            total, rows = repository.page_events(session, video.video_id, line, zone, offset, limit)
            return _page(video, total, offset, limit, "events", [views.event_body(r) for r in rows])

    def tracks(
        self, video_id: str, caller: Principal, offset: int, limit: int, *, trajectory: bool
    ) -> dict[str, Any]:
        """A page of the tracks (``tracking_results``), with their trajectories when asked."""
        limit = min(limit, MAX_PAGE)
        with self._db.session(readonly=True) as session:
            video = repository.owned_video(session, video_id, caller.tenant_id)
            total, rows = repository.page_tracks(session, video.video_id, offset, limit)
            items = [views.track_body(r, trajectory=trajectory) for r in rows]
            return _page(video, total, offset, limit, "tracks", items)

    def detections(
        self, video_id: str, caller: Principal, frame: int | None, offset: int, limit: int
    ) -> dict[str, Any]:
        """A page of the person boxes (``person_detection_results``), optionally of one frame."""
        limit = min(limit, MAX_PAGE)
        with self._db.session(readonly=True) as session:
            video = repository.owned_video(session, video_id, caller.tenant_id)
            total, rows = repository.page_detections(session, video.video_id, frame, offset, limit)
            items = [views.detection_body(r) for r in rows]
            return _page(video, total, offset, limit, "detections", items)

    def timeline(self, video_id: str, caller: Principal, offset: int, limit: int) -> dict[str, Any]:
        """Cumulative per-line in/out and per-zone in/out/inside at the end of each second of
        video, and the most people seen on one frame in it; ``COUNTING_NOT_READY`` (409) before
        completion."""
        limit = min(limit, MAX_PAGE)
        with self._db.session(readonly=True) as session:
            video = repository.owned_video(session, video_id, caller.tenant_id)
            if video.status != "completed":
                raise errors.CountingNotReadyError(status=video.status)
            points = list((video.summary or {}).get("timeline", []))
        return _page(video, len(points), offset, limit, "timeline", points[offset : offset + limit])

    def preview(self, video_id: str, caller: Principal) -> bytes:
        """The annotated MP4; ``COUNTING_NOT_READY`` (409) before completion, ``NOT_FOUND`` (404)
        when none was rendered (``counting.preview_seconds`` 0, or rendering failed)."""
        with self._db.session(readonly=True) as session:
            video = repository.owned_video(session, video_id, caller.tenant_id)
            if video.status != "completed":
                raise errors.CountingNotReadyError(status=video.status)
            if video.preview_mp4 is None:
                raise errors.NotFoundError("This counting video has no preview")
            return bytes(video.preview_mp4)

    # --- erasure -----------------------------------------------------------------------------------

    def delete(self, video_id: str, caller: Principal) -> dict[str, Any]:
        """Erase a video, every result row, its inference row and spooled file; cancel its job."""
        with self._db.session(readonly=True) as session:
            video = repository.owned_video(session, video_id, caller.tenant_id)
            job = repository.job_of(session, video.job_id)
            found_id, job_id = video.video_id, video.job_id
        if job is not None and job.status not in JOB_TERMINAL and job_id is not None:
            # It may have ended meanwhile: erasure goes on either way.
            with contextlib.suppress(errors.JobNotCancellableError, errors.JobNotFoundError):
                self._cancel(job_id, caller.tenant_id)
        self._erase(found_id, job_id)
        return {"video_id": found_id, "deleted": True}

    def retention(self) -> int:
        """Erase videos uploaded more than ``counting.retention_days`` ago whose job has ended;
        returns how many went."""
        cutoff = utcnow() - timedelta(days=self._settings.counting.retention_days)
        with self._db.session(readonly=True) as session:
            old = list(
                session.execute(
                    select(CountingVideo.video_id, CountingVideo.job_id).where(
                        CountingVideo.created_at < cutoff,
                        CountingVideo.status.in_(("completed", "failed", "cancelled")),
                    )
                )
            )
        for video_id, job_id in old:
            self._erase(video_id, job_id)
        return len(old)

    def _erase(self, video_id: str, job_id: str | None) -> None:
        with self._db.session() as session:
            # Lock the video row first: a job writing its results holds this lock until it commits
            # (tasks.py), so the erasure waits for it and then, in fresh statements, sees and
            # removes every row it wrote — the inference row has no foreign key to the video and
            # would otherwise outlive it (PostgreSQL, READ COMMITTED).
            session.execute(
                select(CountingVideo.video_id).where(CountingVideo.video_id == video_id).with_for_update()
            )
            erase_results(session, video_id)
            session.execute(delete(CountingVideo).where(CountingVideo.video_id == video_id))
        if job_id:
            shutil.rmtree(self.spool_dir / job_id, ignore_errors=True)


def _page(
    video: CountingVideo, total: int, offset: int, limit: int, name: str, items: list[dict[str, Any]]
) -> dict[str, Any]:
    return {
        "video_id": video.video_id,
        "status": video.status,
        "total": total,
        "offset": offset,
        "limit": limit,
        name: items,
    }
