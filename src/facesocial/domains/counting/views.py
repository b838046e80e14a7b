"""What the counting routes show of the stored rows (shapes in docs/api.md "People counting")."""

from __future__ import annotations

from typing import Any

from facesocial.analytics.tracking import TrackerSettings
from facesocial.store.tables import JOB_TERMINAL, Job
from facesocial.store.tables_counting import CountingResult, CountingVideo, DetectionResult, TrackingResult
from facesocial.store.types import iso as _iso

BASE_URL = "/api/v1/counting/videos"


def effective_min_confidence(parameters: dict[str, Any]) -> float:
    """The request's ``min_confidence``, or the tracker's default it runs with (ByteTrack's high
    score, 0..1): what a client sees is what counted."""
    value = parameters.get("min_confidence")
    return float(value) if value is not None else TrackerSettings().high_score


def links(video_id: str, job_id: str | None) -> dict[str, str | None]:
    base = f"{BASE_URL}/{video_id}"
    return {
        "self": base,
        "job": f"/api/v1/jobs/{job_id}" if job_id else None,
        "events": f"{base}/events",
        "tracks": f"{base}/tracks",
        "detections": f"{base}/detections",
        "timeline": f"{base}/timeline",
        "preview": f"{base}/preview.mp4",
    }


def video_body(video: CountingVideo, job: Job | None, *, full: bool) -> dict[str, Any]:
    """A video's status, parameters and (``full`` and completed) its counts.

    ``progress_percentage`` 0..100 comes from the job while it runs. Completed: ``lines``
    ``[{name, in, out}]``, ``zones`` ``[{name, entered, exited, peak}]`` and ``totals``; with
    ``full`` also the video facts. Failed: ``error {code, message}``.
    """
    progress = float(video.progress_percentage or 0.0)
    if video.status not in ("completed",) and job is not None:
        progress = float(job.progress_percentage or 0.0)
    parameters = video.parameters or {}
    summary = video.summary or {}
    body: dict[str, Any] = {
        "video_id": video.video_id,
        "status": video.status,
        "progress_percentage": round(progress, 1),
        "file_name": video.file_name,
        "file_size_bytes": video.file_size_bytes,
        "sample_fps": parameters.get("sample_fps"),
        "min_confidence": effective_min_confidence(parameters),
        "model_version": video.model_version or (video.serving or {}).get("version"),
        "serving": video.serving,
        "created_at": _iso(video.created_at),
        "started_at": _iso(video.started_at),
        "completed_at": _iso(video.completed_at),
        "processing_time_ms": video.processing_time_ms,
        "job_id": video.job_id,
        "links": links(video.video_id, video.job_id),
        "error": {"code": video.error_code, "message": video.error_message} if video.error_code else None,
    }
    if job is not None and job.status not in JOB_TERMINAL and job.estimated_completion is not None:
        body["estimated_completion"] = job.estimated_completion.isoformat()
    if full:
        body["lines_requested"] = parameters.get("lines", [])
        body["zones_requested"] = parameters.get("zones", [])
        body["video"] = video.video_metadata or parameters.get("video")
    if video.status == "completed":
        body["lines"] = summary.get("lines", [])
        body["zones"] = summary.get("zones", [])
        body["totals"] = {
            "tracks": summary.get("tracks", 0),
            "people_max": summary.get("people_max", 0),
            "events": summary.get("events", 0),
            "frames_processed": summary.get("frames_processed", 0),
            "detections": summary.get("detections", 0),
            "detections_cut": bool(summary.get("detections_cut", False)),
        }
        body["preview_available"] = video.preview_mp4 is not None
    return body


def event_body(row: CountingResult) -> dict[str, Any]:
    return {
        "event_id": row.counting_event_id,
        "type": row.event_type,
        "direction": row.direction,
        "line": row.line_name,
        "zone": row.zone_name,
        "track_id": _int(row.track_id),
        "detection_id": row.detection_id,
        "timestamp_ms": row.timestamp_ms,
        "point": row.entry_point or row.exit_point,
        "count_in": row.current_count_in,
        "count_out": row.current_count_out,
        "net": row.current_total,
        "confidence": row.event_confidence,
        "trajectory": row.path_trajectory,
    }


def track_body(row: TrackingResult, *, trajectory: bool) -> dict[str, Any]:
    body: dict[str, Any] = {
        "track_id": _int(row.track_id),
        "first_timestamp_ms": row.first_timestamp_ms,
        "last_timestamp_ms": row.last_timestamp_ms,
        "frames_seen": row.track_age_frames,
        "confidence": row.tracking_confidence,
        "last_position": {"x": row.position_x, "y": row.position_y},
        "velocity": {"x": row.velocity_x, "y": row.velocity_y, "speed": row.speed},
        "last_detection_id": row.detection_id,
        "status": row.tracking_status,
    }
    if trajectory:
        body["trajectory"] = row.trajectory_points or []
    return body


def detection_body(row: DetectionResult) -> dict[str, Any]:
    attributes = row.object_attributes or {}
    return {
        "detection_id": row.detection_id,
        "frame_index": row.frame_index,
        "timestamp_ms": row.timestamp_ms,
        "class": row.object_class,
        "confidence": row.confidence_score,
        "box": {"x": row.bbox_x, "y": row.bbox_y, "width": row.bbox_width, "height": row.bbox_height},
        "track_id": attributes.get("track_id"),
    }


def _int(value: str | None) -> int | str | None:
    return int(value) if value is not None and value.isdigit() else value
