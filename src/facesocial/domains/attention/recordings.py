"""Recorded meeting videos: upload as a job, attention per analysed frame, results, timeline, chart.

``POST /api/v1/attention/videos`` streams the file to the spool folder and probes it
(:mod:`facesocial.api.video_form`: a bad file is refused with its ``VIDEO_*`` code before
anything is stored); :meth:`RecordingService.submit` then writes the ``video_recordings`` row,
its ``video_analyses`` row (same id) and the job row (kind ``attention.video``) in one
transaction, and dispatches the job after the commit. The handler (:meth:`RecordingService.run_job`)
decodes the sampled frames (:mod:`facesocial.video.frames`), runs one
:class:`~facesocial.analytics.attention.AttentionSession` over them with the video's own
timestamps, and writes the timeline rows, the recording's alerts and the analysis's results in
one transaction that first removes whatever an earlier attempt wrote (idempotent on retry).
Whatever the end, :meth:`RecordingService.on_job_end` copies a failure onto the rows and removes
the spooled file. The video itself is never kept (``file_path`` stays NULL).

With ``meeting_id`` (a meeting of the caller's tenant), the same transaction also adds one
participant per track (``stream_id`` ``recording:<id>``), its alerts and its per-frame
``attention_metrics`` rows, dated from the recording's start (its upload time).
"""

from __future__ import annotations

import contextlib
import shutil
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from facesocial import errors
from facesocial.analytics.attention import AlertEvent, AttentionSession
from facesocial.domains.attention import repository
from facesocial.domains.attention.chart import Series, Span, render_chart
from facesocial.domains.attention.recording_results import (
    AlertSpan,
    FrameRecord,
    alert_spans,
    summarize,
    track_labels,
)
from facesocial.jobs.port import JobContext, JobQueue, JobStatus, NewJob
from facesocial.jobs.store import JobStore
from facesocial.services.principal import Principal
from facesocial.settings import Settings
from facesocial.store.db import Database
from facesocial.store.tables import (
    JOB_TERMINAL,
    AttentionAlert,
    AttentionMetric,
    DetectionTimeline,
    Job,
    Participant,
    VideoAnalysis,
    VideoRecording,
)
from facesocial.store.types import utcnow
from facesocial.video.frames import iter_frames, planned_samples
from facesocial.video.probe import VideoInfo, probe_video
from facesocial.video.upload import SpooledUpload
from facesocial.vision.pipeline import FacePipeline

VIDEO_JOB = "attention.video"
BASE_URL = "/api/v1/attention/videos"
# Timeline rows and recordings per page at most.
MAX_PAGE = 1000
_VIDEO_FILE = "video"


@dataclass(frozen=True, slots=True)
class RecordingRequest:
    """What the upload asked for: frames per second (already clamped), priority 1-10, an
    optional validated callback URL and meeting id (a meeting of the caller's tenant)."""

    sample_fps: float
    priority: int
    callback_url: str | None
    meeting_id: str | None


def stream_id(recording_id: uuid.UUID) -> str:
    """The ``participants.stream_id`` of the participants a recording added to its meeting."""
    return f"recording:{recording_id}"


class RecordingService:
    def __init__(
        self,
        database: Database,
        pipeline: Callable[[], FacePipeline],
        job_store: JobStore,
        jobs: Callable[[], JobQueue],
        cancel: Callable[[str, uuid.UUID], object],
        settings: Settings,
    ) -> None:
        self._db = database
        self._pipeline = pipeline
        self._job_store = job_store
        self._jobs = jobs
        self._cancel = cancel
        self._settings = settings
        self.spool_dir = settings.resolved_spool_dir()

    # --- upload ----------------------------------------------------------------------------------

    def submit(
        self, upload: SpooledUpload, info: VideoInfo, request: RecordingRequest, *, caller: Principal
    ) -> dict[str, Any]:
        """Store the recording, its analysis and its job (one commit), move the file under the job,
        dispatch it. Raises ``MEETING_NOT_FOUND`` (404) for a meeting that is not the caller's."""
        pk = uuid.uuid4()
        filename = (upload.filename or "video")[:255]
        with self._db.session() as session:
            meeting_pk = None
            if request.meeting_id:
                meeting_pk = repository.meeting(session, request.meeting_id, caller.tenant_id).id
            job_id = self._job_store.add_with_file(
                session,
                NewJob(
                    kind=VIDEO_JOB,
                    tenant_id=caller.tenant_id,
                    api_key_id=caller.api_key_id,
                    payload={"recording": str(pk), "sample_fps": request.sample_fps},
                    priority=request.priority,
                    callback_url=request.callback_url,
                ),
                self._settings.jobs.max_attempts,
                self.spool_dir,
                upload.path,
                _VIDEO_FILE,
            )
            user_id = caller.account_id or caller.api_key_id
            session.add(
                VideoRecording(
                    id=pk,
                    tenant_id=caller.tenant_id,
                    meeting_id=meeting_pk,
                    user_id=user_id,
                    filename=filename,
                    file_size=upload.size,
                    duration_seconds=info.duration_seconds,
                    width=info.width,
                    height=info.height,
                    format=info.container[:20],
                    status="processing",
                    alert_count=0,
                )
            )
            session.flush()  # the recording first: the analysis refers to it
            session.add(
                VideoAnalysis(
                    id=pk,
                    tenant_id=caller.tenant_id,
                    user_id=user_id,
                    filename=filename,
                    file_size=upload.size,
                    duration=info.duration_seconds,
                    status="pending",
                    progress=0,
                    job_id=job_id,
                )
            )
        self._jobs().dispatch(job_id, request.priority)
        return {
            "id": str(pk),
            "job_id": job_id,
            "status": "pending",
            "meeting_id": str(meeting_pk) if meeting_pk else None,
            "sample_fps": round(request.sample_fps, 3),
            "priority": request.priority,
            "video": info.summary(),
            "status_url": f"{BASE_URL}/{pk}",
            "job_url": f"/api/v1/jobs/{job_id}",
        }

    # --- the job -----------------------------------------------------------------------------------

    def run_job(self, job: JobContext) -> dict[str, Any]:
        """The ``attention.video`` handler: analyse one recording's spooled file, store the results."""
        pk = uuid.UUID(str(job.payload["recording"]))
        sample_fps = float(job.payload.get("sample_fps") or self._settings.attention.video_sample_fps)
        with self._db.session() as session:
            analysis = session.get(VideoAnalysis, pk)
            if analysis is None:  # erased while queued: nothing to do
                raise errors.RecordingNotFoundError("The recording was erased before it ran")
            analysis.status = "processing"
        path = self.spool_dir / job.job_id / _VIDEO_FILE
        if not path.is_file():
            raise errors.VideoTruncatedError("The uploaded video is no longer in the spool folder")
        started = time.perf_counter()
        info = probe_video(path, self._settings.video)
        max_frames = self._settings.video.max_analyzed_frames
        planned = max(1, planned_samples(info, sample_fps, max_frames))
        session_ = AttentionSession(self._pipeline(), self._settings.attention)
        records: list[FrameRecord] = []
        events: list[AlertEvent] = []
        with iter_frames(path, info, sample_fps, max_frames) as reader:
            for frame in reader:
                result = session_.process(frame.rgb, frame.timestamp_ms)
                records.append(FrameRecord(result.timestamp_ms, [f.as_dict() for f in result.faces]))
                events += result.alerts
                job.progress(min(0.99, len(records) / planned))
        end_ms = records[-1].timestamp_ms if records else 0
        events += session_.close(end_ms)
        spans = alert_spans(events, end_ms)
        results = summarize(
            records,
            spans,
            duration_seconds=info.duration_seconds,
            sample_fps=sample_fps,
            processing_seconds=time.perf_counter() - started,
        )
        # Last check before results are written: raises JobCancelled when the job was cancelled or
        # its lease passed to another worker meanwhile, so only the lease holder writes results.
        job.progress(1.0, 0.0)
        with self._db.session() as session:
            analysis = session.get(VideoAnalysis, pk)
            recording = session.get(VideoRecording, pk)
            if analysis is None or recording is None:
                raise errors.RecordingNotFoundError("The recording was erased while it ran")
            self._erase_derived(session, pk)
            start = recording.created_at
            labels = track_labels(records)
            seen: set[int] = set()
            for record in records:
                if record.timestamp_ms in seen:  # two frames on one millisecond: the first stands
                    continue
                seen.add(record.timestamp_ms)
                session.add(
                    DetectionTimeline(
                        recording_id=pk,
                        video_timestamp_ms=record.timestamp_ms,
                        time=start + timedelta(milliseconds=record.timestamp_ms),
                        faces_data=[
                            {**face, "participant_label": labels[int(face["track_id"])]}
                            for face in record.faces
                        ],
                        avg_attention_score=record.avg_attention,
                    )
                )
            recording.alerts_data = [s.as_dict(labels) for s in spans]
            recording.alert_count = len(spans)
            recording.status = "ready"
            if recording.meeting_id is not None:
                results["meeting"] = _link_meeting(session, recording.meeting_id, pk, start, records, spans)
            analysis.results = results
            analysis.progress = 100
            analysis.status = "completed"
            analysis.error_message = None
        return {
            "recording_id": str(pk),
            "participants": len(results["tracks"]),
            "frames_analyzed": results["frames_analyzed"],
        }

    def on_job_end(self, job_id: str, status: JobStatus) -> None:
        """Copy a failed/cancelled job's end onto its rows; remove the spooled file (any end)."""
        try:
            if status != "completed":
                with self._db.session() as session:
                    job = session.scalar(select(Job).where(Job.job_id == job_id))
                    analysis = session.scalar(select(VideoAnalysis).where(VideoAnalysis.job_id == job_id))
                    if analysis is not None and analysis.status != "completed":
                        analysis.status = status
                        if job is not None and job.error_code:
                            analysis.error_message = f"{job.error_code}: {job.error_message or ''}"[:2000]
                        recording = session.get(VideoRecording, analysis.id)
                        if recording is not None:
                            recording.status = "failed"
        finally:
            shutil.rmtree(self.spool_dir / job_id, ignore_errors=True)

    # --- reads and erasure -------------------------------------------------------------------------

    def get(self, recording_id: str, caller: Principal) -> dict[str, Any]:
        """Status and progress (0..100); when completed the results and the alerts."""
        with self._db.session(readonly=True) as session:
            analysis, recording = self._owned(session, recording_id, caller)
            job = (
                session.scalar(select(Job).where(Job.job_id == analysis.job_id)) if analysis.job_id else None
            )
            body = _summary(analysis, recording, job)
            if analysis.status == "completed":
                body["results"] = analysis.results
                body["alerts"] = recording.alerts_data or []
            return body

    def list_recordings(
        self, caller: Principal, offset: int, limit: int, meeting_id: str | None = None
    ) -> dict[str, Any]:
        """The tenant's recordings, newest first (``meeting_id``: only that meeting's)."""
        limit = min(limit, MAX_PAGE)
        query = select(VideoAnalysis, VideoRecording).join(
            VideoRecording, VideoRecording.id == VideoAnalysis.id
        )
        query = query.where(VideoAnalysis.tenant_id == caller.tenant_id)
        if meeting_id is not None:
            query = query.where(VideoRecording.meeting_id == repository.as_uuid(meeting_id))
        with self._db.session(readonly=True) as session:
            total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
            rows = session.execute(
                query.order_by(VideoAnalysis.created_at.desc(), VideoAnalysis.id).offset(offset).limit(limit)
            ).all()
            jobs = {
                j.job_id: j
                for j in session.scalars(
                    select(Job).where(Job.job_id.in_([a.job_id for a, _ in rows if a.job_id]))
                )
            }
            items = [_summary(a, r, jobs.get(a.job_id or "")) for a, r in rows]
        return {"total": total, "offset": offset, "limit": limit, "recordings": items}

    def timeline(self, recording_id: str, caller: Principal, offset: int, limit: int) -> dict[str, Any]:
        """One page of the per-frame rows, in video order."""
        limit = min(limit, MAX_PAGE)
        with self._db.session(readonly=True) as session:
            analysis, _ = self._owned(session, recording_id, caller)
            where = DetectionTimeline.recording_id == analysis.id
            total = session.scalar(select(func.count()).select_from(DetectionTimeline).where(where)) or 0
            rows = session.scalars(
                select(DetectionTimeline)
                .where(where)
                .order_by(DetectionTimeline.video_timestamp_ms)
                .offset(offset)
                .limit(limit)
            )
            frames = [
                {
                    "video_timestamp_ms": row.video_timestamp_ms,
                    "time": row.time.isoformat(),
                    "avg_attention_score": row.avg_attention_score,
                    "faces": row.faces_data,
                }
                for row in rows
            ]
        return {
            "id": str(analysis.id),
            "status": analysis.status,
            "total": total,
            "offset": offset,
            "limit": limit,
            "frames": frames,
        }

    def chart(self, recording_id: str, caller: Principal) -> bytes:
        """The attention-over-time PNG (:mod:`.chart`); ``RECORDING_NOT_READY`` (409) before completion."""
        with self._db.session(readonly=True) as session:
            analysis, recording = self._owned(session, recording_id, caller)
            if analysis.status != "completed":
                raise errors.RecordingNotReadyError(status=analysis.status)
            results = analysis.results or {}
            points: dict[str, list[tuple[float, float]]] = {}
            for ts, faces in session.execute(
                select(DetectionTimeline.video_timestamp_ms, DetectionTimeline.faces_data)
                .where(DetectionTimeline.recording_id == analysis.id)
                .order_by(DetectionTimeline.video_timestamp_ms)
            ):
                for face in faces:
                    label = str(face.get("participant_label") or f"Track {face['track_id']}")
                    points.setdefault(label, []).append((ts / 1000, float(face["attention_score"])))
            spans = [
                Span(str(a["participant_label"]), float(a["start_seconds"]), float(a["end_seconds"]))
                for a in recording.alerts_data or []
            ]
        fps = float(results.get("sample_fps") or self._settings.attention.video_sample_fps)
        return render_chart(
            [Series(label, pts) for label, pts in points.items()],
            spans,
            duration_seconds=float(results.get("duration_seconds") or recording.duration_seconds or 0.0),
            gap_seconds=max(1.0, 3.0 / fps),
            title=f"Attention over time: {recording.filename}"[:90],
        )

    def retention(self) -> int:
        """Erase recordings uploaded more than ``attention.recordings_retention_days`` ago whose job
        has ended (or never started); returns how many went."""
        cutoff = utcnow() - timedelta(days=self._settings.attention.recordings_retention_days)
        with self._db.session(readonly=True) as session:
            old = list(
                session.execute(
                    select(VideoAnalysis.id, VideoAnalysis.job_id).where(
                        VideoAnalysis.created_at < cutoff,
                        VideoAnalysis.status.in_(("completed", "failed", "cancelled")),
                    )
                )
            )
        for pk, job_id in old:
            with self._db.session() as session:
                self._erase_derived(session, pk)
                session.execute(delete(VideoAnalysis).where(VideoAnalysis.id == pk))
                session.execute(delete(VideoRecording).where(VideoRecording.id == pk))
            if job_id:
                shutil.rmtree(self.spool_dir / job_id, ignore_errors=True)
        return len(old)

    def delete(self, recording_id: str, caller: Principal) -> dict[str, Any]:
        """Erase a recording, its analysis, timeline, meeting rows and spooled file; cancel its job."""
        with self._db.session(readonly=True) as session:
            analysis, _ = self._owned(session, recording_id, caller)
            pk, job_id = analysis.id, analysis.job_id
            status = session.scalar(select(Job.status).where(Job.job_id == job_id)) if job_id else None
        if job_id and status is not None and status not in JOB_TERMINAL:
            # It may have ended meanwhile: erasure goes on either way.
            with contextlib.suppress(errors.JobNotCancellableError, errors.JobNotFoundError):
                self._cancel(job_id, caller.tenant_id)
        with self._db.session() as session:
            self._erase_derived(session, pk)
            session.execute(delete(VideoAnalysis).where(VideoAnalysis.id == pk))
            session.execute(delete(VideoRecording).where(VideoRecording.id == pk))
        if job_id:
            shutil.rmtree(self.spool_dir / job_id, ignore_errors=True)
        return {"id": str(pk), "deleted": True}

    def _erase_derived(self, session: Session, pk: uuid.UUID) -> None:
        """What an analysis wrote: timeline rows and the meeting's participants/alerts/metrics."""
        session.execute(delete(DetectionTimeline).where(DetectionTimeline.recording_id == pk))
        participants = list(
            session.scalars(select(Participant.id).where(Participant.stream_id == stream_id(pk)))
        )
        if participants:
            session.execute(delete(AttentionMetric).where(AttentionMetric.participant_id.in_(participants)))
            session.execute(delete(AttentionAlert).where(AttentionAlert.participant_id.in_(participants)))
            session.execute(delete(Participant).where(Participant.id.in_(participants)))

    def _owned(
        self, session: Session, recording_id: str, caller: Principal
    ) -> tuple[VideoAnalysis, VideoRecording]:
        pk = repository.as_uuid(recording_id)
        analysis = session.get(VideoAnalysis, pk) if pk is not None else None
        recording = session.get(VideoRecording, pk) if pk is not None else None
        # Another tenant's recording is reported exactly like a missing one.
        if analysis is None or recording is None or analysis.tenant_id != caller.tenant_id:
            raise errors.RecordingNotFoundError(f"No recording {recording_id[:64]!r}")
        return analysis, recording


def _link_meeting(
    session: Session,
    meeting_id: uuid.UUID,
    pk: uuid.UUID,
    start: datetime,
    records: list[FrameRecord],
    spans: list[AlertSpan],
) -> dict[str, Any]:
    """Participants (one per track), alerts and per-frame metrics of the recording in its meeting."""
    labels = track_labels(records)
    first: dict[int, int] = {}
    last: dict[int, int] = {}
    for record in records:
        for face in record.faces:
            first.setdefault(int(face["track_id"]), record.timestamp_ms)
            last[int(face["track_id"])] = record.timestamp_ms
    participants: dict[int, uuid.UUID] = {}
    for track_id, label in labels.items():
        participant = Participant(
            id=uuid.uuid4(),
            meeting_id=meeting_id,
            display_name=label,
            track_id=track_id,
            stream_id=stream_id(pk),
            joined_at=start + timedelta(milliseconds=first[track_id]),
            left_at=start + timedelta(milliseconds=last[track_id]),
            is_active=False,
        )
        session.add(participant)
        participants[track_id] = participant.id
    session.flush()  # participants before the rows that refer to them
    for span in spans:
        session.add(
            AttentionAlert(
                meeting_id=meeting_id,
                participant_id=participants[span.track_id],
                alert_type=span.alert_type,
                severity=span.severity,
                message=span.message,
                duration_seconds=(span.ended_ms - span.started_ms) / 1000,
                created_at=start + timedelta(milliseconds=span.started_ms),
                resolved_at=start + timedelta(milliseconds=span.ended_ms),
            )
        )
    written: set[tuple[int, int]] = set()
    for record in records:
        for face in record.faces:
            key = (int(face["track_id"]), record.timestamp_ms)
            if key in written:
                continue
            written.add(key)
            session.add(
                AttentionMetric(
                    meeting_id=meeting_id,
                    participant_id=participants[key[0]],
                    time=start + timedelta(milliseconds=record.timestamp_ms),
                    attention_score=face["attention_score"],
                    gaze_score=face.get("gaze_score"),
                    head_pose_score=face.get("head_pose_score"),
                    eye_openness_score=face.get("eye_openness_score"),
                    is_looking_away=bool(face.get("is_looking_away")),
                    is_drowsy=bool(face.get("is_drowsy")),
                )
            )
    return {
        "meeting_id": str(meeting_id),
        "participants": [{"track_id": t, "participant_id": str(p)} for t, p in participants.items()],
        "metrics_written": len(written),
    }


def _summary(analysis: VideoAnalysis, recording: VideoRecording, job: Job | None) -> dict[str, Any]:
    """What GET /videos/{id} and the list show of a recording, whatever its status."""
    progress = float(analysis.progress or 0)
    if analysis.status not in ("completed",) and job is not None:
        progress = float(job.progress_percentage or 0.0)
    body: dict[str, Any] = {
        "id": str(analysis.id),
        "status": analysis.status,
        "progress_percentage": round(progress, 1),
        "filename": analysis.filename,
        "file_size": analysis.file_size,
        "duration_seconds": recording.duration_seconds,
        "width": recording.width,
        "height": recording.height,
        "format": recording.format,
        "meeting_id": str(recording.meeting_id) if recording.meeting_id else None,
        "alert_count": recording.alert_count,
        "created_at": analysis.created_at.isoformat(),
        "updated_at": analysis.updated_at.isoformat() if analysis.updated_at else None,
        "job_id": analysis.job_id,
        "job_url": f"/api/v1/jobs/{analysis.job_id}" if analysis.job_id else None,
        "timeline_url": f"{BASE_URL}/{analysis.id}/timeline",
        "chart_url": f"{BASE_URL}/{analysis.id}/chart.png",
        "error": analysis.error_message,
    }
    if job is not None and job.status not in JOB_TERMINAL and job.estimated_completion is not None:
        body["estimated_completion"] = job.estimated_completion.isoformat()
    return body
