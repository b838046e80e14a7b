"""Turn forensic verdicts and stored rows into response bodies and table columns.

One place decides the shape of every deepfake answer, so the synchronous image answer, the
stored analysis and ``GET /analyses/{id}`` say the same things with the same names.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from facesocial.domains.deepfake.known_content import KnownMatch
from facesocial.store.tables import DeepfakeAnalysis, FrameAnalysis, Job
from facesocial.store.types import iso as _iso
from facesocial.video.probe import VideoInfo


def _plain(value: Any) -> Any:
    """Verdict objects (their own ``as_dict``), dataclasses and numpy values → JSON-able values."""
    if hasattr(value, "as_dict"):
        return value.as_dict()
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if hasattr(value, "tolist"):
        return value.tolist()
    return value


_IMAGE_KEYS = (
    "is_deepfake",
    "band",
    "confidence_score",
    "manipulation_score",
    "manipulation_types",
    "inconsistency_areas",
    "faces_analyzed",
    "faces",
    "detection_level",
    "reason",
    "thresholds",
    "components",
    "model_version",
)


def image_body(
    verdict: Any, known: KnownMatch | None, image: dict[str, Any], elapsed_ms: int
) -> dict[str, Any]:
    """The synchronous answer: verdict, areas, per-face signals, known-fake match, model version."""
    plain = _plain(verdict)
    body: dict[str, Any] = {key: plain[key] for key in _IMAGE_KEYS if key in plain}
    body["known_fake_match"] = known.as_dict() if known else None
    body["image"] = image
    body["processing_time_ms"] = elapsed_ms
    return body


def image_columns(body: dict[str, Any]) -> dict[str, Any]:
    return {
        "is_deepfake": body["is_deepfake"],
        "confidence_score": body["confidence_score"],
        "manipulation_score": body["manipulation_score"],
        "manipulation_types": body.get("manipulation_types"),
        "inconsistency_areas": body.get("inconsistency_areas"),
        "model_version": str(body["model_version"])[:64],
        "signals": {
            "band": body.get("band"),
            "faces": body.get("faces"),
            "known_fake_match": body.get("known_fake_match"),
            "reason": body.get("reason"),
            "components": body.get("components"),
        },
    }


_VIDEO_KEYS = (
    "is_deepfake",
    "band",
    "confidence_score",
    "manipulation_score",
    "manipulation_types",
    "total_frames",
    "analyzed_frames",
    "deepfake_frame_count",
    "consistency_score",
    "temporal_inconsistencies",
    "persons",
    "truncated",
    "sample_fps",
    "detection_level",
    "reason",
    "components",
    "model_version",
)


def video_body(verdict: Any) -> dict[str, Any]:
    plain = _plain(verdict)
    return {key: plain[key] for key in _VIDEO_KEYS if key in plain}


def video_columns(body: dict[str, Any]) -> dict[str, Any]:
    return {
        "is_deepfake": body["is_deepfake"],
        "confidence_score": body["confidence_score"],
        "manipulation_score": body["manipulation_score"],
        "manipulation_types": body.get("manipulation_types"),
        "total_frames": body.get("total_frames"),
        "analyzed_frames": body.get("analyzed_frames"),
        "deepfake_frame_count": body.get("deepfake_frame_count"),
        "consistency_score": body.get("consistency_score"),
        "temporal_inconsistencies": body.get("temporal_inconsistencies"),
        "person_results": body.get("persons"),
        "model_version": str(body["model_version"])[:64],
        "signals": {
            "band": body.get("band"),
            "truncated": body.get("truncated", False),
            "components": body.get("components"),
            "reason": body.get("reason"),
            "known_fake_match": body.get("known_fake_match"),
        },
    }


def frame_rows(verdict: Any) -> list[dict[str, Any]]:
    """``frame_analyses`` columns for every analysed frame of a video verdict."""
    rows = []
    for frame in getattr(verdict, "frames", []) or []:
        plain = _plain(frame)
        rows.append(
            {
                "frame_number": int(plain["frame_number"]),
                "timestamp_ms": int(plain["timestamp_ms"]),
                "is_deepfake": plain.get("is_deepfake"),
                "confidence_score": plain.get("confidence_score"),
                "manipulation_types": plain.get("manipulation_types"),
                "inconsistent_regions": plain.get("inconsistent_regions"),
                "frame_hash": plain.get("frame_hash"),
                "face_count": len(plain.get("faces") or []),
                "faces": plain.get("faces"),
            }
        )
    return rows


def video_info(info: VideoInfo) -> dict[str, Any]:
    return {
        key: value
        for key, value in _plain(info).items()
        if key
        in ("duration_seconds", "fps", "width", "height", "frame_count", "codec", "container", "has_audio")
    }


def analysis_body(
    row: DeepfakeAnalysis, job: Job | None, frames: list[FrameAnalysis], frame_total: int, offset: int
) -> dict[str, Any]:
    """``GET /analyses/{id}``: status and progress always; results once completed."""
    status = job.status if job is not None else row.job_status
    body: dict[str, Any] = {
        "analysis_id": row.analysis_id,
        "content_type": row.content_type,
        "content_hash": row.content_hash,
        "status": status,
        "progress_percentage": float(job.progress_percentage) if job is not None else row.progress_percentage,
        "estimated_completion": _iso(
            job.estimated_completion if job is not None else row.estimated_completion
        ),
        "job_id": row.job_id,
        "priority": row.priority,
        "detection_level": row.detection_level,
        "content_metadata": row.content_metadata,
        "created_at": _iso(row.created_at),
        "started_at": _iso(job.started_at if job is not None else row.started_at),
        "completed_at": _iso(row.completed_at),
        "processing_time_ms": row.processing_time_ms,
        "model_version": row.model_version,
        # The registry's decision for the deepfake slot (a video's, once its job ran).
        "serving": (row.analysis_scope or {}).get("serving"),
    }
    if status == "failed" or (job is not None and job.error_code):
        body["error"] = {
            "code": (job.error_code if job is not None else None) or row.error_code,
            "message": (job.error_message if job is not None else None) or row.error_message,
        }
    if row.job_status != "completed":
        return body
    signals = row.signals or {}
    body.update(
        {
            "is_deepfake": row.is_deepfake,
            "band": signals.get("band"),
            "confidence_score": row.confidence_score,
            "manipulation_score": row.manipulation_score,
            "manipulation_types": row.manipulation_types,
        }
    )
    if row.content_type == "image":
        body["inconsistency_areas"] = row.inconsistency_areas
        body["faces"] = signals.get("faces")
        body["known_fake_match"] = signals.get("known_fake_match")
        body["reason"] = signals.get("reason")
        body["components"] = signals.get("components")
        return body
    body.update(
        {
            "total_frames": row.total_frames,
            "analyzed_frames": row.analyzed_frames,
            "deepfake_frame_count": row.deepfake_frame_count,
            "consistency_score": row.consistency_score,
            "temporal_inconsistencies": row.temporal_inconsistencies,
            "persons": row.person_results,
            "truncated": signals.get("truncated", False),
            "known_fake_match": signals.get("known_fake_match"),
            "reason": signals.get("reason"),
            "components": signals.get("components"),
            "frame_analyses": {
                "total": frame_total,
                "offset": offset,
                "items": [
                    {
                        "frame_number": f.frame_number,
                        "timestamp_ms": f.timestamp_ms,
                        "is_deepfake": f.is_deepfake,
                        "confidence_score": f.confidence_score,
                        "manipulation_types": f.manipulation_types,
                        "inconsistent_regions": f.inconsistent_regions,
                        "face_count": f.face_count,
                        "faces": f.faces,
                    }
                    for f in frames
                ],
            },
        }
    )
    return body
