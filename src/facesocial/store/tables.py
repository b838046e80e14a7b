"""SQLAlchemy tables, named as in design documents 000 and 003.

PostgreSQL keeps one schema per service (``core``, ``face_recognition``, ...). SQLite has no
schemas: :mod:`facesocial.store.db` maps every schema to the main database, which works
because table names are unique across schemas.

Deliberate differences from the documents (see docs/data-model.md):
* ``face_data.embedding`` (float32 bytes) is added: SQL is the source of truth from which
  the vector index is rebuilt.
* version columns are VARCHAR(64): ``dlib_resnet_v1@1.0``-style tags outgrow VARCHAR(20).
* ``face_groups.user_id`` (the owner) is nullable: groups may be created by an API client
  that is not itself an enrolled user.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    Boolean,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    Uuid,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from facesocial.store.types import Inet, JsonB, TimestampTZ, score_type, utcnow

SCHEMAS = (
    "core",
    "face_recognition",
    "face_detection",
    "antispoofing",
    "deepfake_detection",
    "demographics",
    "audit",
    "config",
)

NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "fk": "fk_%(table_name)s_%(column_0_N_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


def _pk() -> Mapped[uuid.UUID]:
    return mapped_column(Uuid, primary_key=True, default=uuid.uuid4)


def _created() -> Mapped[datetime]:
    return mapped_column(TimestampTZ, default=utcnow, nullable=False)


# --- core --------------------------------------------------------------------------------------


class User(Base):
    __tablename__ = "users"
    __table_args__ = (
        Index("idx_users_face_id", "face_id"),
        Index("idx_users_created_at", "created_at"),
        {"schema": "core"},
    )

    id: Mapped[uuid.UUID] = _pk()
    user_id: Mapped[uuid.UUID] = mapped_column(Uuid, unique=True, nullable=False)
    face_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    privacy_settings: Mapped[dict[str, Any] | None] = mapped_column(JsonB, default=dict, nullable=True)
    consent_given: Mapped[bool] = mapped_column(Boolean, default=False, nullable=False)
    consent_timestamp: Mapped[datetime | None] = mapped_column(TimestampTZ)
    created_at: Mapped[datetime] = _created()
    updated_at: Mapped[datetime] = mapped_column(TimestampTZ, default=utcnow, onupdate=utcnow)
    deleted_at: Mapped[datetime | None] = mapped_column(TimestampTZ)


class ApiKey(Base):
    """API keys as in document 003; only a hash of the secret is stored."""

    __tablename__ = "api_keys"
    __table_args__ = (Index("idx_api_keys_key_hash", "key_hash"), {"schema": "core"})

    id: Mapped[uuid.UUID] = _pk()
    key_prefix: Mapped[str] = mapped_column(String(16), nullable=False)
    key_hash: Mapped[str] = mapped_column(String(64), unique=True, nullable=False)
    key_name: Mapped[str] = mapped_column(String(100), nullable=False)
    role: Mapped[str] = mapped_column(String(20), default="admin", nullable=False)
    created_at: Mapped[datetime] = _created()
    expires_at: Mapped[datetime | None] = mapped_column(TimestampTZ)
    last_used_at: Mapped[datetime | None] = mapped_column(TimestampTZ)
    is_active: Mapped[bool] = mapped_column(Boolean, default=True, nullable=False)
    # NULL means unlimited (the bootstrap admin key); document 003's default is 1000.
    request_limit: Mapped[int | None] = mapped_column(Integer)
    requests_made: Mapped[int] = mapped_column(Integer, default=0, nullable=False)


# --- face_recognition ----------------------------------------------------------------------------


class FaceData(Base):
    __tablename__ = "face_data"
    __table_args__ = (
        Index("idx_face_data_user_id", "user_id"),
        Index("idx_face_data_status", "status"),
        Index("idx_face_data_created_at", "created_at"),
        {"schema": "face_recognition"},
    )

    id: Mapped[uuid.UUID] = _pk()
    user_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("core.users.user_id"), nullable=False)
    face_id: Mapped[str] = mapped_column(String(64), unique=True, nullable=False)
    image_hash: Mapped[str | None] = mapped_column(String(64))
    face_quality_score: Mapped[float | None] = mapped_column(score_type())
    face_landmarks: Mapped[Any] = mapped_column(JsonB, nullable=True)
    face_attributes: Mapped[Any] = mapped_column(JsonB, nullable=True)
    embedding_version: Mapped[str] = mapped_column(String(64), nullable=False)
    embedding_dimension: Mapped[int] = mapped_column(Integer, nullable=False)
    milvus_collection: Mapped[str] = mapped_column(String(100), nullable=False)
    embedding: Mapped[bytes] = mapped_column(LargeBinary, nullable=False)
    registration_source: Mapped[str | None] = mapped_column(String(50))
    registration_device_info: Mapped[Any] = mapped_column(JsonB, nullable=True)
    ip_address: Mapped[str | None] = mapped_column(Inet)
    status: Mapped[str] = mapped_column(String(20), default="active", nullable=False)
    verification_count: Mapped[int] = mapped_column(Integer, default=0, nullable=False)
    last_used_at: Mapped[datetime | None] = mapped_column(TimestampTZ)
    created_at: Mapped[datetime] = _created()
    updated_at: Mapped[datetime] = mapped_column(TimestampTZ, default=utcnow, onupdate=utcnow)
    deleted_at: Mapped[datetime | None] = mapped_column(TimestampTZ)


class RecognitionSession(Base):
    __tablename__ = "recognition_sessions"
    __table_args__ = (
        Index("idx_recognition_sessions_user_id", "user_id"),
        Index("idx_recognition_sessions_session_id", "session_id"),
        Index("idx_recognition_sessions_operation", "operation_type"),
        Index("idx_recognition_sessions_created_at", "created_at"),
        {"schema": "face_recognition"},
    )

    id: Mapped[uuid.UUID] = _pk()
    session_id: Mapped[str] = mapped_column(String(64), nullable=False)
    user_id: Mapped[uuid.UUID | None] = mapped_column(
        Uuid, ForeignKey("core.users.user_id", ondelete="SET NULL")
    )
    operation_type: Mapped[str] = mapped_column(String(20), nullable=False)
    input_image_hash: Mapped[str | None] = mapped_column(String(64))
    matched_face_id: Mapped[uuid.UUID | None] = mapped_column(
        Uuid, ForeignKey("face_recognition.face_data.id", ondelete="SET NULL")
    )
    confidence_score: Mapped[float | None] = mapped_column(score_type())
    similarity_score: Mapped[float | None] = mapped_column(score_type())
    recognition_result: Mapped[str | None] = mapped_column(String(20))
    model_version: Mapped[str | None] = mapped_column(String(64))
    processing_time_ms: Mapped[int | None] = mapped_column(Integer)
    preprocessing_steps: Mapped[Any] = mapped_column(JsonB, nullable=True)
    request_source: Mapped[str | None] = mapped_column(String(50))
    device_info: Mapped[Any] = mapped_column(JsonB, nullable=True)
    ip_address: Mapped[str | None] = mapped_column(Inet)
    user_agent: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = _created()


class FaceGroup(Base):
    __tablename__ = "face_groups"
    __table_args__ = ({"schema": "face_recognition"},)

    id: Mapped[uuid.UUID] = _pk()
    group_name: Mapped[str] = mapped_column(String(100), nullable=False)
    user_id: Mapped[uuid.UUID | None] = mapped_column(
        Uuid, ForeignKey("core.users.user_id", ondelete="SET NULL")
    )
    description: Mapped[str | None] = mapped_column(Text)
    face_count: Mapped[int] = mapped_column(Integer, default=0, nullable=False)
    privacy_level: Mapped[str] = mapped_column(String(20), default="private", nullable=False)
    created_at: Mapped[datetime] = _created()
    updated_at: Mapped[datetime] = mapped_column(TimestampTZ, default=utcnow, onupdate=utcnow)


class FaceGroupMember(Base):
    __tablename__ = "face_group_members"
    __table_args__ = (
        UniqueConstraint("group_id", "face_id"),
        {"schema": "face_recognition"},
    )

    id: Mapped[uuid.UUID] = _pk()
    group_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("face_recognition.face_groups.id", ondelete="CASCADE"), nullable=False
    )
    face_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("face_recognition.face_data.id", ondelete="CASCADE"), nullable=False
    )
    added_by: Mapped[uuid.UUID | None] = mapped_column(
        Uuid, ForeignKey("core.users.user_id", ondelete="SET NULL")
    )
    created_at: Mapped[datetime] = _created()


# --- face_detection ------------------------------------------------------------------------------


class DetectionRequest(Base):
    __tablename__ = "detection_requests"
    __table_args__ = (
        Index("idx_detection_requests_user_id", "user_id"),
        Index("idx_detection_requests_status", "status"),
        Index("idx_detection_requests_created_at", "created_at"),
        {"schema": "face_detection"},
    )

    id: Mapped[uuid.UUID] = _pk()
    request_id: Mapped[str] = mapped_column(String(64), unique=True, nullable=False)
    user_id: Mapped[uuid.UUID | None] = mapped_column(
        Uuid, ForeignKey("core.users.user_id", ondelete="SET NULL")
    )
    # NULL only when the upload could not be read at all (nothing to hash).
    image_hash: Mapped[str | None] = mapped_column(String(64))
    image_url: Mapped[str | None] = mapped_column(Text)
    image_metadata: Mapped[Any] = mapped_column(JsonB, nullable=True)
    min_face_size: Mapped[int] = mapped_column(Integer, default=40)
    max_faces: Mapped[int] = mapped_column(Integer, default=100)
    detection_confidence: Mapped[float] = mapped_column(score_type(), default=0.7)
    return_landmarks: Mapped[bool] = mapped_column(Boolean, default=True)
    return_attributes: Mapped[bool] = mapped_column(Boolean, default=False)
    faces_detected: Mapped[int] = mapped_column(Integer, default=0)
    processing_time_ms: Mapped[int | None] = mapped_column(Integer)
    model_version: Mapped[str | None] = mapped_column(String(64))
    request_source: Mapped[str | None] = mapped_column(String(50))
    ip_address: Mapped[str | None] = mapped_column(Inet)
    status: Mapped[str] = mapped_column(String(20), default="processing")
    error_message: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = _created()
    completed_at: Mapped[datetime | None] = mapped_column(TimestampTZ)


class DetectedFace(Base):
    __tablename__ = "detected_faces"
    __table_args__ = (
        Index("idx_detected_faces_request_id", "detection_request_id"),
        Index("idx_detected_faces_recognized_user", "recognized_user_id"),
        {"schema": "face_detection"},
    )

    id: Mapped[uuid.UUID] = _pk()
    detection_request_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("face_detection.detection_requests.id", ondelete="CASCADE"), nullable=False
    )
    face_index: Mapped[int] = mapped_column(Integer, nullable=False)
    bbox_x: Mapped[int] = mapped_column(Integer, nullable=False)
    bbox_y: Mapped[int] = mapped_column(Integer, nullable=False)
    bbox_width: Mapped[int] = mapped_column(Integer, nullable=False)
    bbox_height: Mapped[int] = mapped_column(Integer, nullable=False)
    detection_confidence: Mapped[float] = mapped_column(score_type(), nullable=False)
    face_quality_score: Mapped[float | None] = mapped_column(score_type())
    landmarks: Mapped[Any] = mapped_column(JsonB, nullable=True)
    estimated_age: Mapped[float | None] = mapped_column(score_type())
    estimated_gender: Mapped[str | None] = mapped_column(String(10))
    gender_confidence: Mapped[float | None] = mapped_column(score_type())
    emotions: Mapped[Any] = mapped_column(JsonB, nullable=True)
    recognized_user_id: Mapped[uuid.UUID | None] = mapped_column(
        Uuid, ForeignKey("core.users.user_id", ondelete="SET NULL")
    )
    recognition_confidence: Mapped[float | None] = mapped_column(score_type())
    created_at: Mapped[datetime] = _created()


# --- audit -----------------------------------------------------------------------------------------


class AiOperationLog(Base):
    __tablename__ = "ai_operations_log"
    __table_args__ = (
        Index("idx_ai_operations_log_user_id", "user_id"),
        Index("idx_ai_operations_log_service", "service_name"),
        Index("idx_ai_operations_log_operation", "operation_type"),
        Index("idx_ai_operations_log_created_at", "created_at"),
        {"schema": "audit"},
    )

    id: Mapped[uuid.UUID] = _pk()
    operation_id: Mapped[str] = mapped_column(String(64), nullable=False)
    # No foreign key: the audit trail must outlive an erased user (GDPR erasure is audited).
    user_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    service_name: Mapped[str] = mapped_column(String(50), nullable=False)
    operation_type: Mapped[str] = mapped_column(String(50), nullable=False)
    endpoint: Mapped[str | None] = mapped_column(String(100))
    request_size_bytes: Mapped[int | None] = mapped_column(Integer)
    response_size_bytes: Mapped[int | None] = mapped_column(Integer)
    processing_time_ms: Mapped[int | None] = mapped_column(Integer)
    operation_result: Mapped[str | None] = mapped_column(String(20))
    confidence_score: Mapped[float | None] = mapped_column(score_type())
    error_code: Mapped[str | None] = mapped_column(String(50))
    error_message: Mapped[str | None] = mapped_column(Text)
    model_version: Mapped[str | None] = mapped_column(String(64))
    ip_address: Mapped[str | None] = mapped_column(Inet)
    user_agent: Mapped[str | None] = mapped_column(Text)
    api_key_id: Mapped[str | None] = mapped_column(String(50))
    request_source: Mapped[str | None] = mapped_column(String(50))
    cost_units: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[datetime] = _created()
