"""Deepfake detection use cases: analyse an image now, a video as a job; read and erase analyses.

Images are analysed synchronously (``POST /analyze``). A video is streamed to the spool folder,
probed (a bad file is refused with its code before anything is stored), then one transaction
writes the analysis row and its job row; only after that commit is the job dispatched
(:mod:`facesocial.jobs.port`). The job handler (:meth:`DeepfakeService.run_video_job`) takes the
job's payload (the analysis's primary key only), reloads the row, analyses the file, and writes
the results, the per-frame rows and the content features in one transaction. Whatever the end
(completed, failed, cancelled, abandoned), :meth:`DeepfakeService.on_video_job_end` copies the
status onto the analysis and removes the spooled file.
"""

from __future__ import annotations

import base64
import contextlib
import logging
import shutil
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Literal

import numpy as np
from sqlalchemy import delete, func, select

from facesocial import errors
from facesocial.domains.deepfake import views
from facesocial.domains.deepfake.known_content import KnownContent
from facesocial.domains.registry.serving import ModelRouter, RoutingKey, Serving, StaticRouter
from facesocial.forensics.ensemble import ENSEMBLE, DeepfakeDetector
from facesocial.forensics.fingerprint import image_features
from facesocial.forensics.video_analysis import analyze_video
from facesocial.jobs.port import JobContext, JobQueue, JobStatus, NewJob
from facesocial.jobs.spool import sweep_spool
from facesocial.jobs.store import JobStore
from facesocial.services.context import RequestContext
from facesocial.services.outcome import Outcome
from facesocial.services.principal import Principal
from facesocial.services.serving_context import ServingScope, scope_or_static
from facesocial.settings import Settings
from facesocial.store.db import Database
from facesocial.store.tables import JOB_TERMINAL, DeepfakeAnalysis, FrameAnalysis, Job
from facesocial.store.types import utcnow
from facesocial.video.probe import VideoInfo
from facesocial.video.upload import SpooledUpload
from facesocial.vision.image import decode_image

log = logging.getLogger(__name__)

VIDEO_JOB = "deepfake.video"
Level = Literal["basic", "standard", "advanced"]
# Document 000 §7.2: completed analyses are removed after 6 months.
RETENTION_DAYS = 183
# Frame rows returned per page of GET /analyses/{id} at most.
MAX_FRAME_PAGE = 1000
_VIDEO_FILE = "video"


@dataclass(frozen=True, slots=True)
class VideoRequest:
    level: Level
    priority: int
    sample_fps: float
    callback_url: str | None


class DeepfakeService:
    def __init__(
        self,
        database: Database,
        detector: Callable[[], DeepfakeDetector],
        known: KnownContent,
        job_store: JobStore,
        jobs: Callable[[], JobQueue],
        cancel: Callable[[str, uuid.UUID], object],
        settings: Settings,
        router: Callable[[], ModelRouter] | None = None,
    ) -> None:
        self._router = router or StaticRouter
        self._db = database
        self._detector = detector
        self._known = known
        self._job_store = job_store
        self._jobs = jobs
        self._cancel = cancel
        self._settings = settings
        self.spool_dir = settings.resolved_spool_dir()

    # --- images ----------------------------------------------------------------------------------

    def analyze_image(
        self,
        data: bytes,
        level: Level,
        *,
        caller: Principal,
        ctx: RequestContext,
        return_heatmap: bool,
        scope: ServingScope | None = None,
    ) -> Outcome:
        """Judge one image now; the analysis is stored (without the image) under a new analysis_id.

        ``scope``: the request's routing of the deepfake slot (``serving`` in the answer; the
        audit row names that version; ``model_version`` stays the whole ensemble's)."""
        started = time.perf_counter()
        scope = scope_or_static(scope)
        detector = self._detector()
        serving = _resolve(scope, detector)
        image = decode_image(data, self._settings.limits)
        verdict = detector.analyze_image(image.rgb, level)
        features = image_features(image.rgb)
        known = self._known.match(caller.tenant_id, features)
        elapsed = round((time.perf_counter() - started) * 1000)
        body = views.image_body(verdict, known, image.metadata(), elapsed)
        analysis_id = _new_analysis_id()
        row = DeepfakeAnalysis(
            id=uuid.uuid4(),
            analysis_id=analysis_id,
            tenant_id=caller.tenant_id,
            api_key_id=caller.api_key_id,
            content_type="image",
            content_hash=image.sha256,
            content_metadata=image.metadata(),
            detection_level=level,
            processing_method="sync",
            job_status="completed",
            progress_percentage=100.0,
            request_source=ctx.request_source,
            started_at=utcnow(),
            completed_at=utcnow(),
            processing_time_ms=elapsed,
            **views.image_columns(body),
        )
        with self._db.session() as session:
            session.add(row)
            session.flush()
            feature_id = self._known.remember(
                session, row.id, caller.tenant_id, image.sha256, features, bool(body["is_deepfake"])
            )
        self._known.index(feature_id, features)
        body = {"analysis_id": analysis_id, **body, "serving": scope.serving_body()}
        _report(scope, serving, started, body, image.sha256)
        heatmap = getattr(verdict, "heatmap_png", None)
        if return_heatmap and heatmap:
            body["heatmap_png_base64"] = base64.b64encode(heatmap).decode("ascii")
        return Outcome(body, confidence=body["confidence_score"], model_version=serving.version)

    # --- videos ----------------------------------------------------------------------------------

    def submit_video(
        self,
        upload: SpooledUpload,
        info: VideoInfo,
        request: VideoRequest,
        *,
        caller: Principal,
        ctx: RequestContext,
        scope: ServingScope | None = None,
    ) -> dict[str, Any]:
        """Store the analysis and its job (one commit), move the file under the job, dispatch it.

        The deepfake slot is routed when the job runs (where the model is loaded: an API
        process loads no forensic model for a queued video), with this request's routing key
        kept in the payload; ``GET /analyses/{id}`` names the version in ``serving``."""
        key = scope_or_static(scope).key
        analysis_pk = uuid.uuid4()
        analysis_id = _new_analysis_id()
        with self._db.session() as session:
            job_id = self._job_store.add_with_file(
                session,
                NewJob(
                    kind=VIDEO_JOB,
                    tenant_id=caller.tenant_id,
                    api_key_id=caller.api_key_id,
                    payload={
                        "analysis": str(analysis_pk),
                        "routing": {
                            "request_id": key.request_id,
                            "user_key": key.user_key,
                            "session_id": key.session_id,
                        },
                    },
                    priority=request.priority,
                    callback_url=request.callback_url,
                ),
                self._settings.jobs.max_attempts,
                self.spool_dir,
                upload.path,
                _VIDEO_FILE,
            )
            session.add(
                DeepfakeAnalysis(
                    id=analysis_pk,
                    analysis_id=analysis_id,
                    tenant_id=caller.tenant_id,
                    api_key_id=caller.api_key_id,
                    content_type="video",
                    content_hash=upload.sha256,
                    content_metadata={"filename": upload.filename, **views.video_info(info)},
                    detection_level=request.level,
                    analysis_scope={"sample_fps": request.sample_fps},
                    processing_method="async",
                    job_id=job_id,
                    job_status="pending",
                    progress_percentage=0.0,
                    request_source=ctx.request_source,
                    priority=request.priority,
                )
            )
        self._jobs().dispatch(job_id, request.priority)
        return {
            "analysis_id": analysis_id,
            "job_id": job_id,
            "status": "pending",
            "priority": request.priority,
            "sample_fps": request.sample_fps,
            "detection_level": request.level,
            "video": views.video_info(info),
            "status_url": f"/api/v1/deepfake-detection/analyses/{analysis_id}",
            "job_url": f"/api/v1/jobs/{job_id}",
        }

    def run_video_job(self, job: JobContext) -> dict[str, Any]:
        """The ``deepfake.video`` handler: analyse the spooled file of one analysis, store the results."""
        analysis_pk = uuid.UUID(str(job.payload["analysis"]))
        with self._db.session() as session:
            row = session.get(DeepfakeAnalysis, analysis_pk)
            if row is None:  # erased while queued: nothing to do
                raise errors.AnalysisNotFoundError("The analysis was erased before it ran")
            row.job_status = "processing"
            row.started_at = row.started_at or utcnow()
            # A retry starts over: rows of an earlier, interrupted attempt go.
            session.execute(delete(FrameAnalysis).where(FrameAnalysis.analysis_id == analysis_pk))
            level: Level = row.detection_level  # type: ignore[assignment]
            sample_fps = float((row.analysis_scope or {}).get("sample_fps") or 0) or None
            tenant_id = row.tenant_id
            content_hash = row.content_hash
        # A retry starts over: the features of an earlier attempt that got as far as its final
        # commit (a worker killed before the job's own completion) go too.
        self._known.forget(analysis_pk)
        path = self.spool_dir / job.job_id / _VIDEO_FILE
        if not path.is_file():
            raise errors.VideoTruncatedError("The uploaded video is no longer in the spool folder")
        started = time.perf_counter()
        detector = self._detector()
        routing = job.payload.get("routing") or {}
        scope = ServingScope(
            self._router(),
            RoutingKey(
                request_id=str(routing.get("request_id") or job.job_id),
                tenant_id=tenant_id,
                user_key=routing.get("user_key"),
                session_id=routing.get("session_id"),
            ),
        )
        serving = _resolve(scope, detector)
        verdict = analyze_video(
            path, detector, self._settings.video, sample_fps, level, progress=job.progress
        )
        elapsed = round((time.perf_counter() - started) * 1000)
        body = views.video_body(verdict)
        features = verdict.features
        # Last check before results are written: raises JobCancelled when the job was cancelled or
        # its lease passed to another worker meanwhile, so only the lease holder writes results.
        job.progress(1.0, 0.0)
        known = self._known.match(tenant_id, features) if features is not None and tenant_id else None
        body["known_fake_match"] = known.as_dict() if known else None
        feature_id = None
        with self._db.session() as session:
            row = session.get(DeepfakeAnalysis, analysis_pk)
            if row is None:
                raise errors.AnalysisNotFoundError("The analysis was erased while it ran")
            for name, value in views.video_columns(body).items():
                setattr(row, name, value)
            row.processing_time_ms = elapsed
            row.analysis_scope = {**(row.analysis_scope or {}), "serving": scope.serving_body()}
            row.progress_percentage = 100.0
            row.job_status = "completed"
            row.completed_at = utcnow()
            for frame in views.frame_rows(verdict):
                session.add(FrameAnalysis(analysis_id=analysis_pk, **frame))
            if features is not None and tenant_id is not None:
                feature_id = self._known.remember(
                    session, analysis_pk, tenant_id, content_hash, features, bool(body["is_deepfake"])
                )
        if feature_id is not None and features is not None:
            self._known.index(feature_id, np.asarray(features, np.float32))
        _report(scope, serving, started, {**body, "analysis_id": row.analysis_id}, content_hash)
        return {"analysis_id": row.analysis_id, "band": body["band"], "is_deepfake": body["is_deepfake"]}

    def on_video_job_end(self, job_id: str, status: JobStatus) -> None:
        """Copy a failed/cancelled job's end onto its analysis; remove the spooled file (any end)."""
        try:
            if status != "completed":
                with self._db.session() as session:
                    job = session.scalar(select(Job).where(Job.job_id == job_id))
                    row = session.scalar(select(DeepfakeAnalysis).where(DeepfakeAnalysis.job_id == job_id))
                    if row is not None and row.job_status != "completed":
                        row.job_status = status
                        row.completed_at = utcnow()
                        if job is not None:
                            row.error_code = job.error_code
                            row.error_message = job.error_message
        finally:
            shutil.rmtree(self.spool_dir / job_id, ignore_errors=True)

    # --- reads and erasure -----------------------------------------------------------------------

    def get(
        self, analysis_id: str, caller: Principal, frames_offset: int, frames_limit: int
    ) -> dict[str, Any]:
        with self._db.session(readonly=True) as session:
            row = self._owned(session, analysis_id, caller)
            job = session.scalar(select(Job).where(Job.job_id == row.job_id)) if row.job_id else None
            frames: list[FrameAnalysis] = []
            frame_total = 0
            if row.content_type == "video":
                frame_total = (
                    session.scalar(
                        select(func.count())
                        .select_from(FrameAnalysis)
                        .where(FrameAnalysis.analysis_id == row.id)
                    )
                    or 0
                )
                frames = list(
                    session.scalars(
                        select(FrameAnalysis)
                        .where(FrameAnalysis.analysis_id == row.id)
                        .order_by(FrameAnalysis.frame_number)
                        .offset(frames_offset)
                        .limit(min(frames_limit, MAX_FRAME_PAGE))
                    )
                )
            return views.analysis_body(row, job, frames, frame_total, frames_offset)

    def delete(self, analysis_id: str, caller: Principal) -> dict[str, Any]:
        """Erase an analysis: cancel its job if running, its features, frames, row and spooled file."""
        with self._db.session(readonly=True) as session:
            row = self._owned(session, analysis_id, caller)
            pk, job_id = row.id, row.job_id
        if job_id:
            with self._db.session(readonly=True) as session:
                status = session.scalar(select(Job.status).where(Job.job_id == job_id))
            if status is not None and status not in JOB_TERMINAL:
                # It may have ended meanwhile: erasure goes on either way.
                with contextlib.suppress(errors.JobNotCancellableError, errors.JobNotFoundError):
                    self._cancel(job_id, caller.tenant_id)
        self._erase(pk)
        if job_id:
            shutil.rmtree(self.spool_dir / job_id, ignore_errors=True)
        return {"analysis_id": analysis_id, "deleted": True}

    def retention(self, days: int = RETENTION_DAYS) -> int:
        """Remove completed analyses older than ``days`` (document 000 §7.2); returns how many."""
        cutoff = utcnow() - timedelta(days=days)
        with self._db.session(readonly=True) as session:
            rows = session.execute(
                select(DeepfakeAnalysis.id).where(
                    DeepfakeAnalysis.job_status == "completed", DeepfakeAnalysis.completed_at < cutoff
                )
            ).all()
        for (pk,) in rows:
            self._erase(pk)
        return len(rows)

    def sweep_spool(self, older_than_seconds: float | None = None) -> int:
        """The spool sweep of jobs/spool.py (the spool is shared by every job kind); returns how
        many entries went. ``older_than_seconds`` overrides ``jobs.incoming_grace_seconds``."""
        jobs = self._settings.jobs
        if older_than_seconds is not None:
            jobs = jobs.model_copy(update={"incoming_grace_seconds": older_than_seconds})
        return sweep_spool(self._job_store, self.spool_dir, jobs)

    def _erase(self, pk: uuid.UUID) -> None:
        """One analysis's content vectors, then its frames and row (vectors first: see known_content)."""
        self._known.forget(pk)
        with self._db.session() as session:
            session.execute(delete(FrameAnalysis).where(FrameAnalysis.analysis_id == pk))
            session.execute(delete(DeepfakeAnalysis).where(DeepfakeAnalysis.id == pk))

    def _owned(self, session: Any, analysis_id: str, caller: Principal) -> DeepfakeAnalysis:
        row = session.scalar(select(DeepfakeAnalysis).where(DeepfakeAnalysis.analysis_id == analysis_id))
        # Another tenant's analysis is reported exactly like a missing one.
        if row is None or row.tenant_id != caller.tenant_id:
            raise errors.AnalysisNotFoundError(f"No analysis {analysis_id!r}")
        return row  # type: ignore[no-any-return]


def serving_tag(detector: DeepfakeDetector) -> str:
    """The deepfake slot's version: the learned model's tag (``deepfake_sbi@…``), or the
    ensemble's (``deepfake_ensemble@1.0``) when the SBI weights are absent."""
    return detector.sbi.model.tag if detector.sbi is not None else ENSEMBLE.tag


def _resolve(scope: ServingScope, detector: DeepfakeDetector) -> Serving:
    tag = serving_tag(detector)
    return scope.resolve("deepfake", installed=(tag,), default=tag)


def _report(
    scope: ServingScope, serving: Serving, started: float, body: dict[str, Any], input_hash: str | None
) -> None:
    """Record one deepfake inference: the verdict's confidence, the manipulation score."""
    features: dict[str, float] = {}
    for name in ("manipulation_score", "consistency_score", "analyzed_frames"):
        value = body.get(name)
        if isinstance(value, int | float):
            features[name] = float(value)
    faces = body.get("faces")
    if isinstance(faces, list):
        features["faces"] = float(len(faces))
    confidence = body.get("confidence_score")
    scope.record(
        serving,
        "deepfake_detection",
        started=started,
        result={
            "analysis_id": body.get("analysis_id"),
            "is_deepfake": body.get("is_deepfake"),
            "band": body.get("band"),
        },
        confidences=[float(confidence)] if isinstance(confidence, int | float) else [],
        features=features,
        input_hash=input_hash,
    )


def _new_analysis_id() -> str:
    return f"dfa_{uuid.uuid4().hex}"
