"""People counting in video (document 002's detection, tracking and counting results), schema
``counting``.

One uploaded video is one ``counting_videos`` row (the job's status, parameters and summary) and
one ``model_registry.model_inference_results`` row (the inference, whose ``inference_id`` is the
video's ``video_id``); its detections, tracks and line/zone events hang off that inference.

Deliberate differences from document 002 (docs/data-model.md):
* ``counting_videos`` is added: the job, its lines and zones, per-line counts and the preview;
* ``detection_results`` is ``person_detection_results``: on SQLite every schema is the one main
  database, where ``ai_detection.detection_results`` (document 003) already has the name;
* every result row carries ``video_id`` (ON DELETE CASCADE, so deleting a video erases its
  results) and ``tenant_id``; detections and events carry the frame's ``frame_index`` and
  ``timestamp_ms`` (video time);
* ``counting_results`` gains ``line_name`` / ``zone_name`` (which counter fired) and ``timestamp_ms``;
* scores are DECIMAL(5,4).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, Integer, LargeBinary, Numeric, String, Text, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from facesocial.store.tables import Base
from facesocial.store.types import JsonB, TimestampTZ, score_type, utcnow

SCHEMA = "counting"
_ARGS = {"schema": SCHEMA}
_INFERENCE_FK = "model_registry.model_inference_results.inference_id"
_VIDEO_FK = f"{SCHEMA}.counting_videos.video_id"

COUNTING_STATUSES = ("pending", "processing", "completed", "failed", "cancelled")
EVENT_TYPES = ("cross_line", "entry", "exit")
DIRECTIONS = ("in", "out")


def _pk() -> Mapped[uuid.UUID]:
    return mapped_column(Uuid, primary_key=True, default=uuid.uuid4)


def _created() -> Mapped[datetime]:
    return mapped_column(TimestampTZ, default=utcnow, nullable=False)


def _video_fk() -> Mapped[str]:
    return mapped_column(String(64), ForeignKey(_VIDEO_FK, ondelete="CASCADE"), nullable=False)


class CountingVideo(Base):
    __tablename__ = "counting_videos"
    __table_args__ = (
        Index("idx_counting_videos_tenant_created", "tenant_id", "created_at"),
        _ARGS,
    )

    id: Mapped[uuid.UUID] = _pk()
    video_id: Mapped[str] = mapped_column(String(64), unique=True, nullable=False)
    tenant_id: Mapped[uuid.UUID] = mapped_column(Uuid, nullable=False)
    api_key_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    job_id: Mapped[str | None] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(20), default="pending", nullable=False)
    progress_percentage: Mapped[float] = mapped_column(Numeric(5, 2, asdecimal=False), default=0.0)
    file_name: Mapped[str | None] = mapped_column(String(255))
    file_sha256: Mapped[str | None] = mapped_column(String(64))
    file_size_bytes: Mapped[int | None] = mapped_column(Integer)
    # Request: sample_fps, lines [{name,start,end}], zones [{name,polygon}], min_confidence
    parameters: Mapped[Any] = mapped_column(JsonB, nullable=False)
    # Video facts once probed: width, height, fps, duration_ms, frames_decoded, frames_sampled
    video_metadata: Mapped[Any] = mapped_column(JsonB, nullable=True)
    # When done: {"lines": [{name,in,out}], "zones": [{name,entered,exited,peak}],
    #             "timeline": [...], "tracks": n, "people_max": n}
    summary: Mapped[Any] = mapped_column(JsonB, nullable=True)
    model_version: Mapped[str | None] = mapped_column(String(64))  # person detector tag
    serving: Mapped[Any] = mapped_column(JsonB, nullable=True)  # the registry's routing decision
    preview_mp4: Mapped[bytes | None] = mapped_column(LargeBinary)
    processing_time_ms: Mapped[int | None] = mapped_column(Integer)
    error_code: Mapped[str | None] = mapped_column(String(50))
    error_message: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = _created()
    started_at: Mapped[datetime | None] = mapped_column(TimestampTZ)
    completed_at: Mapped[datetime | None] = mapped_column(TimestampTZ)


class DetectionResult(Base):
    """One person box on one sampled frame (document 002's ``detection_results``, named
    ``person_detection_results`` because SQLite maps every schema onto one database and
    ``ai_detection.detection_results`` has the name)."""

    __tablename__ = "person_detection_results"
    __table_args__ = (
        Index("idx_person_detection_results_inference", "inference_id"),
        Index("idx_person_detection_results_video_frame", "video_id", "frame_index"),
        _ARGS,
    )

    id: Mapped[uuid.UUID] = _pk()
    inference_id: Mapped[str] = mapped_column(String(100), ForeignKey(_INFERENCE_FK), nullable=False)
    video_id: Mapped[str] = _video_fk()
    tenant_id: Mapped[uuid.UUID] = mapped_column(Uuid, nullable=False)
    detection_id: Mapped[str] = mapped_column(String(100), unique=True, nullable=False)
    frame_index: Mapped[int] = mapped_column(Integer, nullable=False)
    timestamp_ms: Mapped[int] = mapped_column(Integer, nullable=False)
    object_class: Mapped[str] = mapped_column(String(50), default="person", nullable=False)
    confidence_score: Mapped[float] = mapped_column(score_type(), nullable=False)
    bbox_x: Mapped[int] = mapped_column(Integer, nullable=False)
    bbox_y: Mapped[int] = mapped_column(Integer, nullable=False)
    bbox_width: Mapped[int] = mapped_column(Integer, nullable=False)
    bbox_height: Mapped[int] = mapped_column(Integer, nullable=False)
    object_attributes: Mapped[Any] = mapped_column(JsonB, nullable=True)
    pose_estimation: Mapped[Any] = mapped_column(JsonB, nullable=True)
    detection_quality: Mapped[float | None] = mapped_column(score_type())
    occlusion_level: Mapped[float | None] = mapped_column(score_type())
    created_at: Mapped[datetime] = _created()


class TrackingResult(Base):
    """One track over the whole video (document 002's ``tracking_results``): last position and
    velocity, age, and the trajectory as ``[{x, y, t_ms}]`` (box bottom-centre, source pixels)."""

    __tablename__ = "tracking_results"
    __table_args__ = (
        Index("idx_tracking_results_track_id", "video_id", "track_id"),
        Index("idx_tracking_results_status", "tracking_status"),
        _ARGS,
    )

    id: Mapped[uuid.UUID] = _pk()
    inference_id: Mapped[str] = mapped_column(String(100), ForeignKey(_INFERENCE_FK), nullable=False)
    video_id: Mapped[str] = _video_fk()
    tenant_id: Mapped[uuid.UUID] = mapped_column(Uuid, nullable=False)
    track_id: Mapped[str] = mapped_column(String(100), nullable=False)
    detection_id: Mapped[str | None] = mapped_column(String(100))  # its last detection
    tracking_confidence: Mapped[float | None] = mapped_column(score_type())
    position_x: Mapped[int] = mapped_column(Integer, nullable=False)
    position_y: Mapped[int] = mapped_column(Integer, nullable=False)
    velocity_x: Mapped[float | None] = mapped_column(Numeric(10, 2, asdecimal=False))  # px / s
    velocity_y: Mapped[float | None] = mapped_column(Numeric(10, 2, asdecimal=False))
    speed: Mapped[float | None] = mapped_column(Numeric(10, 2, asdecimal=False))
    tracking_status: Mapped[str] = mapped_column(String(20), default="completed", nullable=False)
    track_age_frames: Mapped[int | None] = mapped_column(Integer)
    first_timestamp_ms: Mapped[int | None] = mapped_column(Integer)
    last_timestamp_ms: Mapped[int | None] = mapped_column(Integer)
    trajectory_points: Mapped[Any] = mapped_column(JsonB, nullable=True)
    created_at: Mapped[datetime] = _created()


class CountingResult(Base):
    """One counting event: a track crossed a line, or entered or left a zone."""

    __tablename__ = "counting_results"
    __table_args__ = (
        Index("idx_counting_results_video_time", "video_id", "timestamp_ms"),
        _ARGS,
    )

    id: Mapped[uuid.UUID] = _pk()
    inference_id: Mapped[str] = mapped_column(String(100), ForeignKey(_INFERENCE_FK), nullable=False)
    video_id: Mapped[str] = _video_fk()
    tenant_id: Mapped[uuid.UUID] = mapped_column(Uuid, nullable=False)
    counting_event_id: Mapped[str] = mapped_column(String(100), unique=True, nullable=False)
    event_type: Mapped[str] = mapped_column(String(20), nullable=False)  # EVENT_TYPES
    direction: Mapped[str | None] = mapped_column(String(20))  # DIRECTIONS
    line_name: Mapped[str | None] = mapped_column(String(100))
    zone_name: Mapped[str | None] = mapped_column(String(100))
    track_id: Mapped[str | None] = mapped_column(String(100))
    detection_id: Mapped[str | None] = mapped_column(String(100))
    timestamp_ms: Mapped[int] = mapped_column(Integer, nullable=False)
    entry_point: Mapped[Any] = mapped_column(JsonB, nullable=True)
    exit_point: Mapped[Any] = mapped_column(JsonB, nullable=True)
    path_trajectory: Mapped[Any] = mapped_column(JsonB, nullable=True)
    current_count_in: Mapped[int | None] = mapped_column(Integer)
    current_count_out: Mapped[int | None] = mapped_column(Integer)
    current_total: Mapped[int | None] = mapped_column(Integer)
    event_confidence: Mapped[float | None] = mapped_column(score_type())
    processing_time_ms: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = _created()
