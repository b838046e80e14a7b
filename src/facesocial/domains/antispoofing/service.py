"""Passive antispoofing checks: one image now; a clip now when short, else as a job.

Every check is one ``antispoofing.antispoofing_checks`` row (``check_type`` passive) whose
``session_id`` is the check's public id (``chk_...``). A clip longer than
``antispoofing.sync_video_seconds`` is streamed to the spool folder, probed, and one transaction
writes its check row (status pending) and its job row; the job is dispatched after that commit
(as deepfake videos are: src/facesocial/domains/deepfake/service.py).
"""

from __future__ import annotations

import shutil
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import select

from facesocial import errors
from facesocial.antispoof.motion import video_cues
from facesocial.antispoof.observe import FrameObservation, observe
from facesocial.antispoof.passive import PassiveLiveness, PassiveScore
from facesocial.domains.antispoofing.verdict import PassiveVerdict, SpoofType, passive_verdict
from facesocial.domains.registry.serving import ModelRouter, StaticRouter
from facesocial.jobs.port import JobContext, JobQueue, JobStatus, NewJob
from facesocial.jobs.store import JobStore
from facesocial.services.context import RequestContext
from facesocial.services.outcome import Outcome
from facesocial.services.principal import Principal
from facesocial.services.serving_context import (
    DetectorVariants,
    ServingScope,
    job_scope,
    scope_or_static,
)
from facesocial.settings import Settings
from facesocial.store.db import Database
from facesocial.store.tables import AntispoofingCheck, Job
from facesocial.video.frames import FrameReader
from facesocial.video.probe import VideoInfo
from facesocial.video.upload import SpooledUpload
from facesocial.vision.image import decode_image
from facesocial.vision.pipeline import DetectOptions, FacePipeline, face_to_dict

VIDEO_JOB = "antispoofing.video"
_VIDEO_FILE = "video"


@dataclass(frozen=True, slots=True)
class VideoCheckRequest:
    priority: int
    callback_url: str | None
    request_source: str | None


def new_check_id() -> str:
    return f"chk_{uuid.uuid4().hex}"


class AntispoofingService:
    def __init__(
        self,
        database: Database,
        pipeline: Callable[[], FacePipeline],
        frame_pipeline: Callable[[], FacePipeline],
        passive: Callable[[], PassiveLiveness],
        job_store: JobStore,
        jobs: Callable[[], JobQueue],
        settings: Settings,
        detect_options: DetectOptions,
        variants: Callable[[], DetectorVariants] | None = None,
        frame_variants: Callable[[], DetectorVariants] | None = None,
        router: Callable[[], ModelRouter] | None = None,
    ) -> None:
        self._db = database
        self._pipeline = pipeline
        self._frame_pipeline = frame_pipeline
        # The face_detection versions (photos; frames) and the router, reached lazily.
        self._variants = variants or (lambda: DetectorVariants(pipeline()))
        self._frame_variants = frame_variants or (lambda: DetectorVariants(frame_pipeline()))
        self._router = router or StaticRouter
        self._passive = passive
        self._job_store = job_store
        self._jobs = jobs
        self._settings = settings
        self._detect = detect_options
        self.spool_dir = settings.resolved_spool_dir()

    @property
    def threshold(self) -> float:
        """P(live) threshold: the setting, else the shipped model's (BPCER ≤ 5 % on dev data)."""
        configured = self._settings.antispoofing.passive_threshold
        return configured if configured is not None else self._passive().threshold

    # --- one image -------------------------------------------------------------------------------

    def check_image(
        self,
        data: bytes,
        face_index: int | None,
        *,
        caller: Principal,
        ctx: RequestContext,
        scope: ServingScope | None = None,
    ) -> Outcome:
        """Judge the chosen face (default: the largest) of one image; one check row.

        ``scope``: the request's routing (face_detection and liveness; ``serving`` in the
        answer and in ``analysis_details``). Raises the decoder's errors, ``NO_FACE_FOUND``
        (422), ``FACE_INDEX_OUT_OF_RANGE`` (422), ``MODEL_UNAVAILABLE`` (503).
        """
        started = time.perf_counter()
        scope = scope_or_static(scope)
        passive = self._passive()
        pipeline = self._route(scope, self._variants(), passive)
        image = decode_image(data, self._settings.limits)
        faces = pipeline.detect(image.rgb, self._detect)
        if len(faces) == 0:
            raise errors.NoFaceFoundError()
        index = 0 if face_index is None else face_index
        if not 0 <= index < len(faces):
            raise errors.FaceIndexOutOfRangeError(
                f"face_index {index} is out of range: {len(faces)} face(s) were found",
                faces_detected=len(faces),
            )
        score = passive.score(image.rgb, faces.boxes[[index]])[0]
        verdict = passive_verdict(score.live_score, score.photo_score, score.screen_score, self.threshold)
        details = {
            "scores": _scores(score),
            "signals": {k: round(float(v), 4) for k, v in score.signals.items()},
            "threshold": round(self.threshold, 4),
            "face": face_to_dict(faces, index, landmarks=False),
            "face_index": index,
            "faces_detected": len(faces),
            "serving": scope.serving_body(),
        }
        elapsed = round((time.perf_counter() - started) * 1000)
        height, width = image.rgb.shape[:2]
        scope.record(
            scope.decisions["face_detection"],
            "face_detection",
            started=started,
            result={"faces_detected": len(faces)},
            confidences=[float(c) for c in faces.confidence],
            features={"faces": float(len(faces)), "width": float(width), "height": float(height)},
            input_hash=image.sha256,
        )
        self._report(scope, started, verdict, [score.live_score], image.sha256)
        check_id = new_check_id()
        with self._db.session() as session:
            session.add(
                self._row(check_id, caller, ctx, "image", image.sha256, verdict, passive, details, elapsed)
            )
        body = _body(check_id, verdict, passive, details, elapsed, "image")
        body["serving"] = details["serving"]
        return Outcome(
            body, confidence=verdict.confidence_score, model_version=scope.decisions["liveness"].version
        )

    def _route(
        self, scope: ServingScope, variants: DetectorVariants, passive: PassiveLiveness
    ) -> FacePipeline:
        """Resolve face_detection (among ``variants``) and liveness (one version per installed
        passive model); the routed detector's pipeline."""
        detection = scope.resolve("face_detection", installed=variants.installed, default=variants.default)
        tag = passive.model.tag
        scope.resolve("liveness", installed=(tag,), default=tag)
        return variants.pipeline(detection.version)

    def _report(
        self,
        scope: ServingScope,
        started: float,
        verdict: PassiveVerdict,
        live_scores: list[float],
        input_hash: str | None,
    ) -> None:
        """Record the liveness inference: P(live) per scored face (or frame), the verdict."""
        scope.record(
            scope.decisions["liveness"],
            "antispoofing",
            started=started,
            result={"is_live": verdict.is_live, "spoof_type": verdict.spoof_type},
            confidences=live_scores,
            features={"live_score": float(sum(live_scores) / len(live_scores))} if live_scores else {},
            input_hash=input_hash,
        )

    # --- a clip ------------------------------------------------------------------------------------

    def check_video(
        self,
        upload: SpooledUpload,
        info: VideoInfo,
        request: VideoCheckRequest,
        *,
        caller: Principal,
        ctx: RequestContext,
        scope: ServingScope | None = None,
    ) -> tuple[int, dict[str, Any]]:
        """(200, result) for a clip up to ``sync_video_seconds``; else (202, the queued check).

        ``scope``: the request's routing, decided now for a queued clip too (the job runs the
        versions named in the 202 answer's ``serving``, and records them when it ends).
        """
        scope = scope_or_static(scope)
        passive = self._passive()
        pipeline = self._route(scope, self._frame_variants(), passive)
        if info.duration_seconds <= self._settings.antispoofing.sync_video_seconds:
            started = time.perf_counter()
            verdict, details = self.analyze_clip(upload.path, info, None, pipeline=pipeline)
            details["serving"] = scope.serving_body()
            self._report(scope, started, verdict, details["frame_live_scores"], upload.sha256)
            elapsed = round((time.perf_counter() - started) * 1000)
            check_id = new_check_id()
            with self._db.session() as session:
                session.add(
                    self._row(
                        check_id, caller, ctx, "video", upload.sha256, verdict, passive, details, elapsed
                    )
                )
            body = _body(check_id, verdict, passive, details, elapsed, "video")
            return 200, {**body, "serving": details["serving"]}
        check_pk = uuid.uuid4()
        check_id = new_check_id()
        with self._db.session() as session:
            job_id = self._job_store.add_with_file(
                session,
                NewJob(
                    kind=VIDEO_JOB,
                    tenant_id=caller.tenant_id,
                    api_key_id=caller.api_key_id,
                    payload={"check": str(check_pk), "serving": scope.serving_body()},
                    priority=request.priority,
                    callback_url=request.callback_url,
                ),
                self._settings.jobs.max_attempts,
                self.spool_dir,
                upload.path,
                _VIDEO_FILE,
            )
            session.add(
                AntispoofingCheck(
                    id=check_pk,
                    session_id=check_id,
                    tenant_id=caller.tenant_id,
                    api_key_id=caller.api_key_id,
                    status="pending",
                    job_id=job_id,
                    check_type="passive",
                    input_type="video",
                    input_hash=upload.sha256,
                    request_source=request.request_source or ctx.request_source,
                    ip_address=ctx.ip_address,
                    device_info={"user_agent": ctx.user_agent} if ctx.user_agent else None,
                )
            )
        self._jobs().dispatch(job_id, request.priority)
        return 202, {
            "check_id": check_id,
            "job_id": job_id,
            "status": "pending",
            "priority": request.priority,
            "video": {
                "duration_seconds": round(info.duration_seconds, 3),
                "fps": round(info.fps, 3),
                "width": info.width,
                "height": info.height,
            },
            "status_url": f"/api/v1/antispoofing/checks/{check_id}",
            "job_url": f"/api/v1/jobs/{job_id}",
            "serving": scope.serving_body(),
        }

    def analyze_clip(
        self,
        path: Path,
        info: VideoInfo,
        progress: Callable[[float, float | None], None] | None,
        *,
        pipeline: FacePipeline | None = None,
    ) -> tuple[PassiveVerdict, dict[str, Any]]:
        """Passive scores on sampled frames plus the motion cues of the clip (antispoof/motion.py).

        The clip is live when the fused P(live) reaches the threshold: the mean P(live) over the
        sampled frames with a face, times ``rigid_motion_factor`` when the face moved like a flat
        picture (``is_rigid``), or 0 when ``flicker`` reaches ``flicker_threshold`` (a screen; off by
        default). Raises ``NO_FACE_FOUND`` when no sampled frame shows a face.
        """
        passive = self._passive()
        pipeline = pipeline or self._frame_pipeline()
        sample_fps = min(self._settings.antispoofing.video_sample_fps, max(info.fps, 0.1))
        max_frames = self._settings.video.max_analyzed_frames
        planned = max(1, min(max_frames, int(info.duration_seconds * sample_fps) + 1))
        scores: list[PassiveScore] = []

        def score(rgb: np.ndarray, boxes: np.ndarray) -> list[float]:
            found = passive.score(rgb, boxes)
            scores.extend(found)
            return [s.live_score for s in found]

        observations: list[FrameObservation] = []
        started = time.perf_counter()
        with FrameReader(path, info, sample_fps, max_frames) as reader:
            for n, frame in enumerate(reader, start=1):
                observations.append(
                    observe(
                        pipeline,
                        frame.rgb,
                        float(frame.timestamp_ms),
                        passive=score,
                        detect_options=self._detect,
                    )
                )
                if progress is not None and n % 5 == 0:
                    spent = time.perf_counter() - started
                    done = min(n / planned, 0.99)
                    progress(done, spent / done * (1.0 - done))
        if not scores:
            raise errors.NoFaceFoundError("No sampled frame of the video shows a face")
        live = float(np.mean([s.live_score for s in scores]))
        photo = float(np.mean([s.photo_score for s in scores]))
        screen = float(np.mean([s.screen_score for s in scores]))
        cues = video_cues(observations)
        settings = self._settings.antispoofing
        motion_spoof: SpoofType | None = None
        fused = live
        if bool(cues.get("is_rigid")):
            # The face moved like a flat picture: a photo's evidence, but a real head translating
            # without turning moves almost as planar, so it weighs on P(live), it does not decide.
            fused = live * settings.rigid_motion_factor
            motion_spoof = "photo"
        flicker_value = float(cues.get("flicker", 0.0))
        if settings.flicker_threshold is not None and flicker_value >= settings.flicker_threshold:
            fused = 0.0
            motion_spoof = "screen"
        verdict = passive_verdict(fused, photo, screen, self.threshold)
        if not verdict.is_live and motion_spoof is not None:
            verdict = replace(verdict, spoof_type=motion_spoof)
        details = {
            "scores": {"live": round(live, 4), "photo": round(photo, 4), "screen": round(screen, 4)},
            "frame_live_scores": [round(s.live_score, 4) for s in scores],
            "motion": {k: (round(v, 4) if isinstance(v, float) else v) for k, v in cues.items()},
            "motion_verdict": motion_spoof,
            "fused_live_score": round(fused, 4),
            "threshold": round(self.threshold, 4),
            "frames_sampled": len(observations),
            "frames_with_face": len(scores),
            "sample_fps": round(sample_fps, 3),
        }
        return verdict, details

    def run_video_job(self, job: JobContext) -> dict[str, Any]:
        """The ``antispoofing.video`` handler: analyse one check's spooled clip, store the result."""
        pk = uuid.UUID(str(job.payload["check"]))
        with self._db.session() as session:
            row = session.get(AntispoofingCheck, pk)
            if row is None:
                raise errors.CheckNotFoundError("The check was erased before it ran")
            row.status = "processing"
            tenant_id = row.tenant_id
        path = self.spool_dir / job.job_id / _VIDEO_FILE
        if not path.is_file():
            raise errors.VideoTruncatedError("The uploaded video is no longer in the spool folder")
        from facesocial.video.probe import probe_video

        started = time.perf_counter()
        passive = self._passive()
        # The versions the request was routed to (kept in the payload); one no longer
        # installed in this worker falls back to the router's answer now.
        scope = job_scope(self._router(), job.payload.get("serving"), job_id=job.job_id, tenant_id=tenant_id)
        variants = self._frame_variants()
        planned = scope.decisions.get("face_detection")
        if planned is not None and planned.version not in variants.installed:
            del scope.decisions["face_detection"]
        pipeline = self._route(scope, variants, passive)
        info = probe_video(path, self._settings.video)
        verdict, details = self.analyze_clip(path, info, job.progress, pipeline=pipeline)
        details["serving"] = scope.serving_body()
        elapsed = round((time.perf_counter() - started) * 1000)
        job.progress(1.0, 0.0)  # raises JobCancelled if the lease moved on: only its holder writes
        with self._db.session() as session:
            row = session.get(AntispoofingCheck, pk)
            if row is None:
                raise errors.CheckNotFoundError("The check was erased while it ran")
            _fill(row, verdict, passive, details, elapsed)
            row.status = "completed"
        self._report(scope, started, verdict, details["frame_live_scores"], row.input_hash)
        return {"check_id": row.session_id, "is_live": verdict.is_live}

    def on_video_job_end(self, job_id: str, status: JobStatus) -> None:
        """Copy a failed/cancelled job's end onto its check; remove the spooled clip (any end)."""
        try:
            if status != "completed":
                with self._db.session() as session:
                    job = session.scalar(select(Job).where(Job.job_id == job_id))
                    row = session.scalar(select(AntispoofingCheck).where(AntispoofingCheck.job_id == job_id))
                    if row is not None and row.status != "completed":
                        row.status = status
                        if job is not None:
                            row.error_code = job.error_code
                            row.error_message = job.error_message
        finally:
            shutil.rmtree(self.spool_dir / job_id, ignore_errors=True)

    # --- reads -------------------------------------------------------------------------------------

    def get_check(self, check_id: str, caller: Principal) -> dict[str, Any]:
        """A stored check of the caller's tenant (another tenant's answers ``CHECK_NOT_FOUND``)."""
        with self._db.session(readonly=True) as session:
            row = session.scalar(select(AntispoofingCheck).where(AntispoofingCheck.session_id == check_id))
            if row is None or row.tenant_id != caller.tenant_id:
                raise errors.CheckNotFoundError(f"No antispoofing check {check_id!r}")
            job = session.scalar(select(Job).where(Job.job_id == row.job_id)) if row.job_id else None
            body: dict[str, Any] = {
                "check_id": row.session_id,
                "check_type": row.check_type,
                "input_type": row.input_type,
                "status": row.status,
                "created_at": row.created_at.isoformat(),
            }
            if job is not None:
                body["job_id"] = job.job_id
                body["progress_percentage"] = float(job.progress_percentage or 0.0)
            if row.status == "completed":
                body.update(
                    is_live=row.is_live,
                    confidence_score=row.confidence_score,
                    spoof_type=row.spoof_type,
                    risk_level=row.risk_level,
                    analysis_details=row.analysis_details,
                    model_version=row.model_version,
                    processing_time_ms=row.processing_time_ms,
                )
            elif row.error_code:
                body["error"] = {"code": row.error_code, "message": row.error_message}
            return body

    def _row(
        self,
        check_id: str,
        caller: Principal,
        ctx: RequestContext,
        input_type: str,
        input_hash: str,
        verdict: PassiveVerdict,
        passive: PassiveLiveness,
        details: dict[str, Any],
        elapsed: int,
    ) -> AntispoofingCheck:
        row = AntispoofingCheck(
            id=uuid.uuid4(),
            session_id=check_id,
            tenant_id=caller.tenant_id,
            api_key_id=caller.api_key_id,
            status="completed",
            check_type="passive",
            input_type=input_type,
            input_hash=input_hash,
            request_source=ctx.request_source,
            ip_address=ctx.ip_address,
            device_info={"user_agent": ctx.user_agent} if ctx.user_agent else None,
        )
        _fill(row, verdict, passive, details, elapsed)
        return row


def _fill(
    row: AntispoofingCheck,
    verdict: PassiveVerdict,
    passive: PassiveLiveness,
    details: dict[str, Any],
    elapsed: int,
) -> None:
    row.is_live = verdict.is_live
    row.confidence_score = verdict.confidence_score
    row.spoof_type = verdict.spoof_type
    row.risk_level = verdict.risk_level
    row.model_version = passive.model.tag[:64]
    row.processing_time_ms = elapsed
    row.analysis_details = details


def _scores(score: PassiveScore) -> dict[str, float]:
    return {
        "live": round(score.live_score, 4),
        "photo": round(score.photo_score, 4),
        "screen": round(score.screen_score, 4),
    }


def _body(
    check_id: str,
    verdict: PassiveVerdict,
    passive: PassiveLiveness,
    details: dict[str, Any],
    elapsed: int,
    input_type: str,
) -> dict[str, Any]:
    return {
        "check_id": check_id,
        "check_type": "passive",
        "input_type": input_type,
        "is_live": verdict.is_live,
        "confidence_score": verdict.confidence_score,
        "spoof_type": verdict.spoof_type,
        "risk_level": verdict.risk_level,
        "analysis_details": details,
        "model_version": passive.model.tag,
        "model": {"name": passive.model.name, "version": passive.model.version, "sha256": passive.sha256},
        "processing_time_ms": elapsed,
    }
