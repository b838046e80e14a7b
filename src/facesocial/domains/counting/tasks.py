"""The ``counting.video`` job: count the people of one uploaded video and store every result.

The handler (:meth:`CountingJob.run`) reloads the ``counting_videos`` row named by the payload,
decodes the spooled file's sampled frames (:mod:`facesocial.video.frames`, one per
``1/sample_fps`` s of video time), runs the person detector the registry chose at upload time
(``counting_videos.serving``; :func:`facesocial.vision.persons.load_person_detector`) inside one
:class:`~facesocial.analytics.people_counting.CountingEngine` (tracker + line and zone
counters), renders the annotated preview (:mod:`.preview`), and then writes, in ONE
transaction that first removes whatever an earlier attempt wrote (so a retried job never
doubles a row):

* the video's ``model_registry.model_inference_results`` row (``inference_id`` = ``video_id``;
  written here, not through ``ModelRouter.record``, so it commits with the results);
* one ``person_detection_results`` row per person box of each sampled frame: a box of a
  confirmed track, or one at least as confident as the tracker's ``high_score`` (the request's
  ``min_confidence``). The detector is asked for boxes down to the tracker's ``low_score`` (0.1)
  for ByteTrack's second association; those weak boxes that joined no track are not stored
  (on PETS09-S2L1, ~34 boxes a frame for 2-8 people). ``object_attributes``: ``{"track_id"}``;
  at most ``counting.max_detection_rows`` rows, the summary says when cut;
* one ``tracking_results`` row per confirmed track (trajectory = box bottom-centres);
* one ``counting_results`` row per counted event;
* the summary, video facts, preview and status on the ``counting_videos`` row.

A worker killed mid-job leaves the job's lease to expire; the runner gives it to another
attempt, which starts again from the spooled file (still under ``spool/<job_id>/``).
:meth:`CountingJob.on_end` copies a failure onto the row and removes the spooled file.
"""

from __future__ import annotations

import dataclasses
import logging
import shutil
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import delete, insert, select
from sqlalchemy.orm import Session

from facesocial import errors
from facesocial.analytics.counting import CountingLine, CountingZone
from facesocial.analytics.people_counting import (
    CountingEngine,
    CountingEvent,
    CountingOutcome,
    CountingSettings,
    TrackRecord,
)
from facesocial.domains.counting.forms import LineSpec, ZoneSpec
from facesocial.domains.counting.preview import CounterEvent, FrameBoxes, render_preview
from facesocial.domains.registry.routing import inference_row
from facesocial.domains.registry.serving import InferenceRecord, Serving
from facesocial.jobs.port import JobContext, JobStatus
from facesocial.models.manifest import ModelRef
from facesocial.models.runtime import ModelCache
from facesocial.settings import Settings
from facesocial.store.db import Database
from facesocial.store.tables import Job
from facesocial.store.tables_counting import CountingResult, CountingVideo, DetectionResult, TrackingResult
from facesocial.store.tables_registry import ModelInferenceResult
from facesocial.store.types import utcnow
from facesocial.video.frames import iter_frames, planned_samples
from facesocial.video.probe import VideoInfo, probe_video
from facesocial.vision.persons import PERSON_DETECTORS, load_person_detector

log = logging.getLogger(__name__)

COUNTING_JOB = "counting.video"
SLOT = "person_detection"
SERVICE = "people_counting"
VIDEO_FILE = "video"
# Trajectory points stored with an event: the track's points this close to it (ms).
_EVENT_PATH_MS = 2000
# Detector scores kept on the inference row (for drift checks): at most this many, evenly spread.
_MAX_CONFIDENCES = 1000
# Seconds between progress reports (each renews the job's lease in SQL).
_PROGRESS_EVERY = 0.5


def detector_versions(cache: ModelCache) -> dict[str, str]:
    """The person detectors this process can run: tag (``nanodet@3.0.4``) → model name.
    Reads the manifest only (nothing is loaded)."""
    return {
        ModelRef(name, cache.entry(name).version).tag: name for name in PERSON_DETECTORS if cache.has(name)
    }


def default_version(installed: Mapping[str, str], preferred: str) -> str:
    """The tag serving without a registry: ``preferred`` (settings) if installed, else the first
    installed. Raises ``MODEL_UNAVAILABLE`` (503) when no person detector is pulled."""
    if not installed:
        raise errors.ModelUnavailableError(
            f"No person detector ({', '.join(PERSON_DETECTORS)}) is installed: run `facesocial models pull`"
        )
    for tag, name in installed.items():
        if name == preferred:
            return tag
    return next(iter(installed))


class CountingJob:
    """Runs ``counting.video`` jobs (see the module docstring). Thread-safe: no state per job."""

    def __init__(self, database: Database, model_cache: Callable[[], ModelCache], settings: Settings) -> None:
        self._db = database
        self._model_cache = model_cache
        self._settings = settings
        self.spool_dir = settings.resolved_spool_dir()

    def run(self, job: JobContext) -> dict[str, Any]:
        """The handler: count, render, store (one commit). Returns a short result for the job row."""
        video_id = str(job.payload["video_id"])
        with self._db.session() as session:
            video = session.scalar(select(CountingVideo).where(CountingVideo.video_id == video_id))
            if video is None:  # erased while queued: nothing to do
                raise errors.CountingVideoNotFoundError("The counting video was erased before it ran")
            if video.status == "completed":
                # An earlier attempt committed its results, then its worker died before the runner
                # marked the job completed: this retry has nothing to do, and must not set the row
                # back to "processing" (a failure of this attempt would then hide those results).
                summary = dict(video.summary or {})
                return {
                    "video_id": video_id,
                    "lines": summary.get("lines", []),
                    "tracks": summary.get("tracks", 0),
                    "events": summary.get("events", 0),
                }
            video.status = "processing"
            video.started_at = utcnow()
            parameters = dict(video.parameters)
            serving = Serving(**video.serving)
            tenant_id = video.tenant_id
            sha256 = video.file_sha256
        path = self.spool_dir / job.job_id / VIDEO_FILE
        if not path.is_file():
            raise errors.VideoTruncatedError("The uploaded video is no longer in the spool folder")
        started = time.perf_counter()
        lines = tuple(LineSpec(x["name"], tuple(x["start"]), tuple(x["end"])) for x in parameters["lines"])
        zones = tuple(ZoneSpec(z["name"], tuple(tuple(p) for p in z["polygon"])) for z in parameters["zones"])
        sample_fps = float(parameters["sample_fps"])
        info = probe_video(path, self._settings.video)
        limit = self._settings.counting.max_analyzed_frames
        planned = max(1, planned_samples(info, sample_fps, limit))
        detector = load_person_detector(self._model_cache(), self._detector_name(serving))
        if detector.model.tag != serving.version:
            # The row, the response and the inference row name serving.version: never run another
            # (a model pack upgraded between upload and run, or a worker with another pack).
            raise errors.ModelUnavailableError(
                f"{serving.version} was chosen at upload; this worker has {detector.model.tag}",
                expected=serving.version,
                installed=detector.model.tag,
            )
        settings = CountingSettings()
        if parameters.get("min_confidence") is not None:
            settings = settings.with_min_confidence(float(parameters["min_confidence"]))
        engine = CountingEngine(
            detector,
            [CountingLine(line.name, line.start, line.end) for line in lines],
            [CountingZone(zone.name, zone.polygon) for zone in zones],
            settings,
        )
        last_report = [time.monotonic()]

        def on_frame(done: int) -> None:
            now = time.monotonic()
            if now - last_report[0] >= _PROGRESS_EVERY:
                last_report[0] = now
                job.progress(min(0.9, 0.9 * done / planned))

        with iter_frames(path, info, sample_fps, limit) as reader:
            outcome = engine.process(((f.rgb, f.timestamp_ms, f.index) for f in reader), on_frame)
            truncated, decoded = reader.truncated, reader.decoded_frames
        job.progress(0.92)
        kept = _kept_detections(outcome, settings.tracker.high_score)
        preview = self._preview(path, info, sample_fps, outcome, kept, lines, zones)
        metadata = {
            "width": info.width,
            "height": info.height,
            "fps": info.fps,
            "duration_ms": round(info.duration_seconds * 1000),
            "frame_count": info.frame_count,
            "codec": info.codec,
            "container": info.container,
            "frames_decoded": decoded,
            "frames_sampled": outcome.frames_processed,
            "truncated": truncated,
        }
        elapsed_ms = round((time.perf_counter() - started) * 1000)
        # Last check before results are written: raises JobCancelled when the job was cancelled or
        # its lease passed to another worker meanwhile, so only the lease holder writes results.
        job.progress(0.97)
        summary = outcome.summary()
        with self._db.session() as session:
            # Locked: an erasure racing the write either goes first (nothing is written) or waits.
            video = session.scalar(
                select(CountingVideo).where(CountingVideo.video_id == video_id).with_for_update()
            )
            if video is None:
                raise errors.CountingVideoNotFoundError("The counting video was erased while it ran")
            erase_results(session, video_id)
            session.add(
                inference_row(
                    InferenceRecord(
                        serving=dataclasses.replace(serving, inference_id=video_id),
                        service=SERVICE,
                        tenant_id=tenant_id,
                        processing_time_ms=elapsed_ms,
                        result={
                            "lines": summary["lines"],
                            "zones": summary["zones"],
                            "tracks": summary["tracks"],
                            "people_max": summary["people_max"],
                        },
                        confidences=_spread(kept.scores(outcome), _MAX_CONFIDENCES),
                        features={
                            "width": float(info.width),
                            "height": float(info.height),
                            "fps": float(info.fps),
                            "frames": float(outcome.frames_processed),
                            "people_max": float(outcome.people_max),
                        },
                        input_hash=sha256,
                    )
                )
            )
            session.flush()  # the inference row first: every result row refers to it
            written = _write_results(
                session, video_id, tenant_id, outcome, kept, self._settings.counting.max_detection_rows
            )
            summary.update(
                events=len(outcome.events),
                detections=written,
                detections_total=kept.total,
                detections_cut=written < kept.total,
                stage_ms={k: round(v, 1) for k, v in outcome.stage_ms.items()},
            )
            video.summary = summary
            video.video_metadata = metadata
            video.model_version = serving.version
            video.preview_mp4 = preview
            video.processing_time_ms = elapsed_ms
            video.status = "completed"
            video.progress_percentage = 100.0
            video.completed_at = utcnow()
            video.error_code = video.error_message = None
        return {
            "video_id": video_id,
            "lines": summary["lines"],
            "tracks": summary["tracks"],
            "events": len(outcome.events),
        }

    def on_end(self, job_id: str, status: JobStatus) -> None:
        """Copy a failed/cancelled job's end onto its row; remove the spooled file (any end)."""
        try:
            if status != "completed":
                with self._db.session() as session:
                    job = session.scalar(select(Job).where(Job.job_id == job_id))
                    video = session.scalar(select(CountingVideo).where(CountingVideo.job_id == job_id))
                    if video is not None and video.status != "completed":
                        video.status = "cancelled" if status == "cancelled" else "failed"
                        if job is not None and job.error_code:
                            video.error_code = job.error_code[:50]
                            video.error_message = (job.error_message or "")[:2000]
                        video.completed_at = utcnow()
        finally:
            shutil.rmtree(self.spool_dir / job_id, ignore_errors=True)

    def _detector_name(self, serving: Serving) -> str:
        name = serving.version.split("@", 1)[0]
        if name not in PERSON_DETECTORS:
            raise errors.UnknownModelError(f"{serving.version} is not a person detector")
        return name

    def _preview(
        self,
        path: Path,
        info: VideoInfo,
        sample_fps: float,
        outcome: CountingOutcome,
        kept: KeptDetections,
        lines: Sequence[LineSpec],
        zones: Sequence[ZoneSpec],
    ) -> bytes | None:
        counting = self._settings.counting
        frames = {
            f.frame_index: FrameBoxes(f.boxes[list(rows)], f.track_ids[list(rows)])
            for f, rows in zip(outcome.frames, kept.rows, strict=True)
        }
        events = [CounterEvent(e.timestamp_ms, e.line, e.zone, e.direction) for e in outcome.events]
        try:
            return render_preview(
                path,
                info,
                sample_fps,
                frames,
                lines,
                zones,
                events,
                seconds=counting.preview_seconds,
                max_side=counting.preview_max_side,
            )
        except errors.FaceSocialError:
            raise
        except Exception:  # the counts stand without a preview; the reason is in the log
            log.exception("counting: the preview of %s could not be rendered", path.parent.name)
            return None


def erase_results(session: Session, video_id: str) -> None:
    """Remove a video's result rows and its inference row (a retry's first step, and erasure)."""
    for table in (CountingResult, TrackingResult, DetectionResult):
        session.execute(delete(table).where(table.video_id == video_id))
    session.execute(delete(ModelInferenceResult).where(ModelInferenceResult.inference_id == video_id))


@dataclass(frozen=True, slots=True)
class KeptDetections:
    """Which boxes of each frame are stored: ``rows[frame_position]`` the box rows kept."""

    rows: tuple[tuple[int, ...], ...]

    @property
    def total(self) -> int:
        return sum(len(r) for r in self.rows)

    def scores(self, outcome: CountingOutcome) -> list[float]:
        """The kept boxes' detector confidences (0..1), frame by frame."""
        return [
            float(frame.scores[i])
            for frame, rows in zip(outcome.frames, self.rows, strict=True)
            for i in rows
        ]


def _kept_detections(outcome: CountingOutcome, min_score: float) -> KeptDetections:
    """The boxes worth a row: of a confirmed track, or scored at least ``min_score``."""
    return KeptDetections(
        tuple(
            tuple(
                i for i, (s, t) in enumerate(zip(f.scores, f.track_ids, strict=True)) if t or s >= min_score
            )
            for f in outcome.frames
        )
    )


def _write_results(
    session: Session,
    video_id: str,
    tenant_id: Any,
    outcome: CountingOutcome,
    kept: KeptDetections,
    max_rows: int,
) -> int:
    """Detection, tracking and counting rows of ``outcome`` (bulk inserts); detections written."""
    now = utcnow()
    base = {"inference_id": video_id, "video_id": video_id, "tenant_id": tenant_id, "created_at": now}
    detection_ids: dict[tuple[int, int], tuple[str | None, float]] = {}
    rows: list[dict[str, Any]] = []
    for frame, kept_rows in zip(outcome.frames, kept.rows, strict=True):
        for row in kept_rows:
            box, score, track_id = frame.boxes[row], frame.scores[row], frame.track_ids[row]
            stored = len(rows) < max_rows
            detection_id = f"{video_id}:f{frame.frame_index}:{row}"
            if track_id:
                # A box beyond max_rows has no row: tracks and events then name no detection.
                detection_ids[(frame.frame_index, int(track_id))] = (
                    detection_id if stored else None,
                    float(score),
                )
            if not stored:
                continue
            x1, y1, x2, y2 = (float(v) for v in box)
            rows.append(
                {
                    **base,
                    "detection_id": detection_id,
                    "frame_index": frame.frame_index,
                    "timestamp_ms": frame.timestamp_ms,
                    "object_class": "person",
                    "confidence_score": round(min(1.0, max(0.0, float(score))), 4),
                    "bbox_x": round(x1),
                    "bbox_y": round(y1),
                    "bbox_width": max(0, round(x2 - x1)),
                    "bbox_height": max(0, round(y2 - y1)),
                    "object_attributes": {"track_id": int(track_id) if track_id else None},
                }
            )
    for start in range(0, len(rows), 5000):
        session.execute(insert(DetectionResult), rows[start : start + 5000])
    tracks = {t.track_id: t for t in outcome.tracks}
    track_rows = [_track_row(base, t, detection_ids) for t in outcome.tracks]
    if track_rows:
        session.execute(insert(TrackingResult), track_rows)
    event_rows = [
        _event_row(base, n, e, tracks.get(e.track_id), detection_ids) for n, e in enumerate(outcome.events)
    ]
    if event_rows:
        session.execute(insert(CountingResult), event_rows)
    return len(rows)


def _track_row(
    base: Mapping[str, Any],
    track: TrackRecord,
    detection_ids: Mapping[tuple[int, int], tuple[str | None, float]],
) -> dict[str, Any]:
    last = track.trajectory[-1]
    vx, vy = track.velocity
    found = detection_ids.get((track.last_frame_index, track.track_id))
    return {
        **base,
        "track_id": str(track.track_id),
        "detection_id": found[0] if found else None,
        "tracking_confidence": round(min(1.0, max(0.0, track.mean_score)), 4),
        "position_x": round(last.x),
        "position_y": round(last.y),
        "velocity_x": round(vx, 2),
        "velocity_y": round(vy, 2),
        "speed": round((vx * vx + vy * vy) ** 0.5, 2),
        "tracking_status": "completed",
        "track_age_frames": track.frames_seen,
        "first_timestamp_ms": track.first_timestamp_ms,
        "last_timestamp_ms": track.last_timestamp_ms,
        "trajectory_points": [p.as_dict() for p in track.trajectory],
    }


# Event ids end in the event's number, zero-padded so that their text order is the time order
# of events at one timestamp (the events' page sorts by timestamp, then id).
def _event_row(
    base: Mapping[str, Any],
    number: int,
    event: CountingEvent,
    track: TrackRecord | None,
    detection_ids: Mapping[tuple[int, int], tuple[str | None, float]],
) -> dict[str, Any]:
    point = {"x": round(event.point[0], 1), "y": round(event.point[1], 1)}
    found = detection_ids.get((event.frame_index, event.track_id))
    confidence = found[1] if found else (track.mean_score if track is not None else None)
    near = (
        [p.as_dict() for p in track.trajectory if abs(p.t_ms - event.timestamp_ms) <= _EVENT_PATH_MS]
        if track is not None
        else None
    )
    count_in = int(event.counts_after.get("in", 0))
    count_out = int(event.counts_after.get("out", 0))
    return {
        **base,
        "counting_event_id": f"{base['video_id']}:e{number:07d}",
        "event_type": event.type,
        "direction": event.direction,
        "line_name": event.line,
        "zone_name": event.zone,
        "track_id": str(event.track_id),
        "detection_id": found[0] if found else None,
        "timestamp_ms": event.timestamp_ms,
        "entry_point": point if event.type != "exit" else None,
        "exit_point": point if event.type == "exit" else None,
        "path_trajectory": near,
        "current_count_in": count_in,
        "current_count_out": count_out,
        # Net count: people inside a zone; for a line, in minus out (occupancy behind a door).
        "current_total": count_in - count_out,
        "event_confidence": round(min(1.0, max(0.0, confidence)), 4) if confidence is not None else None,
    }


def _spread(values: Sequence[float], most: int) -> tuple[float, ...]:
    """At most ``most`` of ``values``, evenly spread over them (all when fewer)."""
    if len(values) <= most:
        return tuple(values)
    step = len(values) / most
    return tuple(values[int(i * step)] for i in range(most))
