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
* foreign keys to ``core.users`` are ``ON DELETE SET NULL`` and child rows (frames, per-face
  demographics) are ``ON DELETE CASCADE``: erasure and retention must never be blocked.
* ``audit.usage_logs`` (document 003) uses a UUID ``id`` like every table of document 000.
* ``audit.ai_operations_log`` is range-partitioned by month on PostgreSQL (migration 0003);
  its primary key there is ``(id, created_at)``. The mapping keeps ``id`` alone, which is
  all the ORM needs to insert (see docs/operations-database.md).
"""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    Numeric,
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
    "ai_detection",
    "attention",
    "model_registry",
    "counting",
    "compat",
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


def _decimal(precision: int, scale: int) -> Numeric[float]:
    """DECIMAL(p,s) of the documents (ages, percentages, times), read back as a float."""
    return Numeric(precision, scale, asdecimal=False)


def _user_fk() -> Mapped[uuid.UUID | None]:
    """``REFERENCES core.users(user_id)``; SET NULL so that erasing a user is never blocked."""
    return mapped_column(Uuid, ForeignKey("core.users.user_id", ondelete="SET NULL"))


# --- core --------------------------------------------------------------------------------------


class User(Base):
    """An enrolled person.

    ``user_id`` is the global internal key every foreign key points at; ``external_id`` is the
    ``user_id`` the client chose, unique only within its tenant (as a CompreFace subject lives in
    its service and a Rekognition face in its collection), so two tenants may use the same id.
    A set ``deleted_at`` marks an erasure that has begun but not yet finished (see
    services/face_writes.py): such a user is invisible to every read.
    """

    __tablename__ = "users"
    __table_args__ = (
        Index("idx_users_face_id", "face_id"),
        Index("idx_users_created_at", "created_at"),
        UniqueConstraint("tenant_id", "external_id"),
        {"schema": "core"},
    )

    id: Mapped[uuid.UUID] = _pk()
    user_id: Mapped[uuid.UUID] = mapped_column(Uuid, unique=True, nullable=False)
    external_id: Mapped[uuid.UUID] = mapped_column(Uuid, nullable=False)
    face_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    privacy_settings: Mapped[dict[str, Any] | None] = mapped_column(JsonB, default=dict, nullable=True)
    consent_given: Mapped[bool] = mapped_column(Boolean, default=False, nullable=False)
    consent_timestamp: Mapped[datetime | None] = mapped_column(TimestampTZ)
    # Tenant isolation: the caller (API key owner or JWT subject) that enrolled this user.
    tenant_id: Mapped[uuid.UUID] = mapped_column(Uuid, nullable=False, index=True)
    created_at: Mapped[datetime] = _created()
    updated_at: Mapped[datetime] = mapped_column(TimestampTZ, default=utcnow, onupdate=utcnow)
    deleted_at: Mapped[datetime | None] = mapped_column(TimestampTZ)


ACCOUNT_ACTIVE = "active"
ACCOUNT_SUSPENDED = "suspended"
ACCOUNT_DELETED = "deleted"
ACCOUNT_STATUSES = (ACCOUNT_ACTIVE, ACCOUNT_SUSPENDED, ACCOUNT_DELETED)


class Account(Base):
    """A person or application that signs in (document 003's ``users``; services/accounts.py).

    Named ``accounts`` because ``core.users`` is an enrolled face subject (document 000). The
    account id is also its tenant: what it enrols or uploads is scoped to ``account_id``.
    ``username_key`` (lower-cased) makes usernames unique case-insensitively on both databases;
    ``email`` is stored lower-cased for the same reason.
    """

    __tablename__ = "accounts"
    __table_args__ = ({"schema": "core"},)

    account_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    username: Mapped[str] = mapped_column(String(50), nullable=False)
    username_key: Mapped[str] = mapped_column(String(50), unique=True, nullable=False)
    email: Mapped[str] = mapped_column(String(100), unique=True, nullable=False)
    password_hash: Mapped[str] = mapped_column(String(255), nullable=False)
    first_name: Mapped[str | None] = mapped_column(String(50))
    last_name: Mapped[str | None] = mapped_column(String(50))
    created_at: Mapped[datetime] = _created()
    updated_at: Mapped[datetime] = mapped_column(TimestampTZ, default=utcnow, onupdate=utcnow, nullable=False)
    last_login: Mapped[datetime | None] = mapped_column(TimestampTZ)
    # active, suspended or deleted: only an active account's tokens and keys are accepted.
    account_status: Mapped[str] = mapped_column(String(20), default=ACCOUNT_ACTIVE, nullable=False)
    profile_image_url: Mapped[str | None] = mapped_column(String(255))


class ApiKey(Base):
    """API keys as in document 003; only a hash of the secret is stored."""

    __tablename__ = "api_keys"
    __table_args__ = (Index("idx_api_keys_key_hash", "key_hash"), {"schema": "core"})

    id: Mapped[uuid.UUID] = _pk()
    key_prefix: Mapped[str] = mapped_column(String(16), nullable=False)
    key_hash: Mapped[str] = mapped_column(String(64), unique=True, nullable=False)
    key_name: Mapped[str] = mapped_column(String(100), nullable=False)
    # operator, admin or user (services/principal.py); the operator alone runs index upkeep.
    role: Mapped[str] = mapped_column(String(20), default="admin", nullable=False)
    created_at: Mapped[datetime] = _created()
    expires_at: Mapped[datetime | None] = mapped_column(TimestampTZ)
    last_used_at: Mapped[datetime | None] = mapped_column(TimestampTZ)
    is_active: Mapped[bool] = mapped_column(Boolean, default=True, nullable=False)
    # NULL means unlimited (the bootstrap operator key); document 003's default is 1000.
    request_limit: Mapped[int | None] = mapped_column(Integer)
    requests_made: Mapped[int] = mapped_column(Integer, default=0, nullable=False)
    # The tenant this key acts for; keys sharing an owner see the same data (NULL: the key itself).
    owner_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, nullable=True)
    # The account that made the key (POST /api/v1/auth/api-keys); NULL for keys made on the
    # server (`facesocial keys create`). A key of a suspended or deleted account is refused.
    account_id: Mapped[uuid.UUID | None] = mapped_column(
        Uuid, ForeignKey("core.accounts.account_id", ondelete="CASCADE"), index=True
    )


# core.jobs: the durable job queue shared by every asynchronous service (src/facesocial/jobs/).
JOB_PENDING = "pending"
JOB_PROCESSING = "processing"
JOB_COMPLETED = "completed"
JOB_FAILED = "failed"
JOB_CANCELLED = "cancelled"
JOB_TERMINAL = (JOB_COMPLETED, JOB_FAILED, JOB_CANCELLED)


class Job(Base):
    """One unit of asynchronous work (a video analysis, ...); SQL is its only source of truth.

    Not in the design documents, which keep job columns on each service's table
    (``deepfake_analyses.job_status``): one table lets one runner, one API (``/api/v1/jobs``) and
    one contract test serve every service. The service row keeps its own copy of the status.
    """

    __tablename__ = "jobs"
    __table_args__ = (
        # The runner's claim query: pending jobs, most urgent first, oldest first.
        Index("idx_jobs_queue", "status", "priority", "created_at"),
        Index("idx_jobs_tenant_created", "tenant_id", "created_at"),
        Index("idx_jobs_lease", "status", "lease_expires_at"),
        Index("idx_jobs_callback_next", "callback_next_at"),
        {"schema": "core"},
    )

    id: Mapped[uuid.UUID] = _pk()
    job_id: Mapped[str] = mapped_column(String(64), unique=True, nullable=False)
    tenant_id: Mapped[uuid.UUID] = mapped_column(Uuid, nullable=False)
    api_key_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    # Which handler runs it (e.g. "deepfake.video"); the handler map lives in the composition root.
    kind: Mapped[str] = mapped_column(String(50), nullable=False)
    status: Mapped[str] = mapped_column(String(20), default=JOB_PENDING, nullable=False)
    # 1-10, higher = more urgent (document 000's deepfake_analyses.priority).
    priority: Mapped[int] = mapped_column(Integer, default=5, nullable=False)
    # Ids only: the task reloads what it needs (never pixels or file contents).
    payload: Mapped[Any] = mapped_column(JsonB, nullable=True)
    result: Mapped[Any] = mapped_column(JsonB, nullable=True)
    progress_percentage: Mapped[float] = mapped_column(_decimal(5, 2), default=0.0, nullable=False)
    estimated_completion: Mapped[datetime | None] = mapped_column(TimestampTZ)
    attempts: Mapped[int] = mapped_column(Integer, default=0, nullable=False)
    max_attempts: Mapped[int] = mapped_column(Integer, default=3, nullable=False)
    worker_id: Mapped[str | None] = mapped_column(String(100))
    # A processing job whose lease has run out belongs to a dead worker: it is retried.
    lease_expires_at: Mapped[datetime | None] = mapped_column(TimestampTZ)
    error_code: Mapped[str | None] = mapped_column(String(50))
    error_message: Mapped[str | None] = mapped_column(Text)
    callback_url: Mapped[str | None] = mapped_column(Text)
    callback_attempts: Mapped[int] = mapped_column(Integer, default=0, nullable=False)
    callback_next_at: Mapped[datetime | None] = mapped_column(TimestampTZ)
    callback_delivered_at: Mapped[datetime | None] = mapped_column(TimestampTZ)
    callback_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = _created()
    updated_at: Mapped[datetime] = mapped_column(TimestampTZ, default=utcnow, onupdate=utcnow)
    dispatched_at: Mapped[datetime | None] = mapped_column(TimestampTZ)
    started_at: Mapped[datetime | None] = mapped_column(TimestampTZ)
    completed_at: Mapped[datetime | None] = mapped_column(TimestampTZ)


# --- face_recognition ----------------------------------------------------------------------------


# face_data.status: the write states of one face (services/face_writes.py orders the stores).
FACE_PENDING = "pending"  # row committed, vector not yet confirmed: invisible, rolled back if stranded
FACE_ACTIVE = "active"  # row and vector both stored: the only state reads see
FACE_DELETING = "deleting"  # erasure begun: invisible, the vector goes first, then the row


class FaceData(Base):
    __tablename__ = "face_data"
    __table_args__ = (
        Index("idx_face_data_user_id", "user_id"),
        Index("idx_face_data_status", "status"),
        Index("idx_face_data_created_at", "created_at"),
        Index("idx_face_data_tenant_collection", "tenant_id", "milvus_collection", "status"),
        {"schema": "face_recognition"},
    )

    id: Mapped[uuid.UUID] = _pk()
    user_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("core.users.user_id"), nullable=False)
    # The owner's tenant, copied so that a search can be restricted to one tenant without a join.
    tenant_id: Mapped[uuid.UUID] = mapped_column(Uuid, nullable=False)
    face_id: Mapped[str] = mapped_column(String(64), unique=True, nullable=False)
    image_hash: Mapped[str | None] = mapped_column(String(64))
    face_quality_score: Mapped[float | None] = mapped_column(score_type())
    face_landmarks: Mapped[Any] = mapped_column(JsonB, nullable=True)
    face_attributes: Mapped[Any] = mapped_column(JsonB, nullable=True)
    embedding_version: Mapped[str] = mapped_column(String(64), nullable=False)
    embedding_dimension: Mapped[int] = mapped_column(Integer, nullable=False)
    milvus_collection: Mapped[str] = mapped_column(String(100), nullable=False)
    embedding: Mapped[bytes] = mapped_column(LargeBinary, nullable=False)
    # Opt-in (privacy.keep_face_chips): the face crop, encrypted, so a model change can
    # re-embed without asking the user to enrol again. NULL by default.
    face_chip: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    registration_source: Mapped[str | None] = mapped_column(String(50))
    registration_device_info: Mapped[Any] = mapped_column(JsonB, nullable=True)
    ip_address: Mapped[str | None] = mapped_column(Inet)
    status: Mapped[str] = mapped_column(String(20), default=FACE_ACTIVE, nullable=False)
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
    tenant_id: Mapped[uuid.UUID] = mapped_column(Uuid, nullable=False, index=True)
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
    # DECIMAL(5,2) as the document has it for ages (DECIMAL(5,4) in 0001 could not hold 30.5).
    estimated_age: Mapped[float | None] = mapped_column(_decimal(5, 2))
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


class UsageLog(Base):
    """Per-request API usage accounting (document 003 ``usage_logs``)."""

    __tablename__ = "usage_logs"
    __table_args__ = (
        Index("idx_usage_logs_user_id", "user_id"),
        Index("idx_usage_logs_request_date", "request_date"),
        Index("idx_usage_logs_api_key_id", "api_key_id"),
        # GET /api/v1/auth/usage: one tenant's rows of a date range (migration 0015).
        Index("idx_usage_logs_tenant_date", "tenant_id", "request_date"),
        {"schema": "audit"},
    )

    id: Mapped[uuid.UUID] = _pk()
    user_id: Mapped[uuid.UUID | None] = _user_fk()
    api_key_id: Mapped[uuid.UUID | None] = mapped_column(
        Uuid, ForeignKey("core.api_keys.id", ondelete="SET NULL")
    )
    # The caller's tenant (services/principal.py); NULL for calls without valid credentials.
    tenant_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    request_type: Mapped[str] = mapped_column(String(50), nullable=False)
    request_path: Mapped[str] = mapped_column(String(255), nullable=False)
    # NOT NULL (the document only defaults it): retention selects on it.
    request_date: Mapped[datetime] = mapped_column(TimestampTZ, default=utcnow, nullable=False)
    response_code: Mapped[int] = mapped_column(Integer, nullable=False)
    # Seconds, as in document 003.
    processing_time: Mapped[float] = mapped_column(_decimal(10, 3), nullable=False)
    ip_address: Mapped[str | None] = mapped_column(Inet)
    user_agent: Mapped[str | None] = mapped_column(Text)


class PerformanceMetric(Base):
    """Daily per-service aggregates of the operations log."""

    __tablename__ = "performance_metrics"
    __table_args__ = (
        UniqueConstraint("metric_date", "service_name"),
        Index("idx_performance_metrics_date", "metric_date"),
        Index("idx_performance_metrics_service", "service_name"),
        {"schema": "audit"},
    )

    id: Mapped[uuid.UUID] = _pk()
    metric_date: Mapped[date] = mapped_column(Date, nullable=False)
    service_name: Mapped[str] = mapped_column(String(50), nullable=False)
    total_requests: Mapped[int] = mapped_column(Integer, default=0)
    successful_requests: Mapped[int] = mapped_column(Integer, default=0)
    failed_requests: Mapped[int] = mapped_column(Integer, default=0)
    avg_response_time_ms: Mapped[float | None] = mapped_column(_decimal(10, 2))
    p95_response_time_ms: Mapped[float | None] = mapped_column(_decimal(10, 2))
    p99_response_time_ms: Mapped[float | None] = mapped_column(_decimal(10, 2))
    avg_confidence_score: Mapped[float | None] = mapped_column(score_type())
    high_confidence_count: Mapped[int] = mapped_column(Integer, default=0)
    medium_confidence_count: Mapped[int] = mapped_column(Integer, default=0)
    low_confidence_count: Mapped[int] = mapped_column(Integer, default=0)
    error_rate: Mapped[float | None] = mapped_column(score_type())
    timeout_count: Mapped[int] = mapped_column(Integer, default=0)
    model_error_count: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = _created()


# --- antispoofing ----------------------------------------------------------------------------------


class AntispoofingCheck(Base):
    __tablename__ = "antispoofing_checks"
    __table_args__ = (
        Index("idx_antispoofing_checks_user_id", "user_id"),
        Index("idx_antispoofing_checks_session_id", "session_id"),
        Index("idx_antispoofing_checks_is_live", "is_live"),
        Index("idx_antispoofing_checks_created_at", "created_at"),
        {"schema": "antispoofing"},
    )

    id: Mapped[uuid.UUID] = _pk()
    # The check's public id (``chk_...``) for a passive check, the liveness session's id for an
    # active one.
    session_id: Mapped[str] = mapped_column(String(64), nullable=False)
    user_id: Mapped[uuid.UUID | None] = _user_fk()
    # Not in document 000 (migration 0009): tenant isolation, and the state of a check-video
    # that runs as a job (pending/processing/completed/failed/cancelled; completed when sync).
    tenant_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, index=True)
    api_key_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    status: Mapped[str] = mapped_column(String(20), default="completed", nullable=False)
    job_id: Mapped[str | None] = mapped_column(String(64))
    error_code: Mapped[str | None] = mapped_column(String(50))
    error_message: Mapped[str | None] = mapped_column(Text)
    check_type: Mapped[str] = mapped_column(String(20), nullable=False)
    input_type: Mapped[str] = mapped_column(String(20), nullable=False)
    input_hash: Mapped[str | None] = mapped_column(String(64))
    liveness_challenges: Mapped[Any] = mapped_column(JsonB, nullable=True)
    challenge_responses: Mapped[Any] = mapped_column(JsonB, nullable=True)
    is_live: Mapped[bool | None] = mapped_column(Boolean)
    confidence_score: Mapped[float | None] = mapped_column(score_type())
    spoof_type: Mapped[str | None] = mapped_column(String(30))
    risk_level: Mapped[str | None] = mapped_column(String(20))
    model_version: Mapped[str | None] = mapped_column(String(64))
    processing_time_ms: Mapped[int | None] = mapped_column(Integer)
    analysis_details: Mapped[Any] = mapped_column(JsonB, nullable=True)
    request_source: Mapped[str | None] = mapped_column(String(50))
    device_info: Mapped[Any] = mapped_column(JsonB, nullable=True)
    ip_address: Mapped[str | None] = mapped_column(Inet)
    created_at: Mapped[datetime] = _created()


class LivenessSession(Base):
    __tablename__ = "liveness_sessions"
    __table_args__ = (
        # idx_liveness_sessions_token of the document duplicates the UNIQUE index on session_token.
        Index("idx_liveness_sessions_user_id", "user_id"),
        Index("idx_liveness_sessions_status", "session_status"),
        # Not in the document: retention deletes by expires_at.
        Index("idx_liveness_sessions_expires_at", "expires_at"),
        {"schema": "antispoofing"},
    )

    id: Mapped[uuid.UUID] = _pk()
    # sha256 (hex) of the bearer token: a copy of the database does not hand out live sessions.
    session_token: Mapped[str] = mapped_column(String(128), unique=True, nullable=False)
    user_id: Mapped[uuid.UUID | None] = _user_fk()
    # Not in document 000 (migration 0009): the tenant, the user id the caller named (its own
    # id, which may not be enrolled yet), the evaluator's state (antispoof/active.py) with a
    # version for optimistic concurrency, and the one use of a completed session.
    tenant_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, index=True)
    api_key_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    external_user_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    progress: Mapped[Any] = mapped_column(JsonB, nullable=True)
    version: Mapped[int] = mapped_column(Integer, default=0, nullable=False)
    consumed_at: Mapped[datetime | None] = mapped_column(TimestampTZ)
    consumed_by: Mapped[str | None] = mapped_column(String(20))
    challenges_required: Mapped[Any] = mapped_column(JsonB, nullable=False)
    max_attempts: Mapped[int] = mapped_column(Integer, default=3)
    timeout_seconds: Mapped[int] = mapped_column(Integer, default=30)
    current_challenge: Mapped[str | None] = mapped_column(String(20))
    challenges_completed: Mapped[Any] = mapped_column(JsonB, default=list, nullable=True)
    attempts_count: Mapped[int] = mapped_column(Integer, default=0)
    session_status: Mapped[str] = mapped_column(String(20), default="active")
    overall_result: Mapped[bool | None] = mapped_column(Boolean)
    failure_reason: Mapped[str | None] = mapped_column(String(100))
    created_at: Mapped[datetime] = _created()
    expires_at: Mapped[datetime | None] = mapped_column(TimestampTZ)
    completed_at: Mapped[datetime | None] = mapped_column(TimestampTZ)


# --- deepfake_detection ----------------------------------------------------------------------------


class DeepfakeAnalysis(Base):
    __tablename__ = "deepfake_analyses"
    __table_args__ = (
        # idx_deepfake_analyses_analysis_id of the document duplicates the UNIQUE index.
        Index("idx_deepfake_analyses_user_id", "user_id"),
        Index("idx_deepfake_analyses_job_status", "job_status"),
        Index("idx_deepfake_analyses_created_at", "created_at"),
        {"schema": "deepfake_detection"},
    )

    id: Mapped[uuid.UUID] = _pk()
    analysis_id: Mapped[str] = mapped_column(String(64), unique=True, nullable=False)
    user_id: Mapped[uuid.UUID | None] = _user_fk()
    # Tenant isolation (not in document 000): the caller's tenant and key (migration 0008).
    tenant_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, index=True)
    api_key_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    # Per-person (per-track) results of a video, and the known-fake match (migration 0008).
    person_results: Mapped[Any] = mapped_column(JsonB, nullable=True)
    signals: Mapped[Any] = mapped_column(JsonB, nullable=True)
    error_code: Mapped[str | None] = mapped_column(String(50))
    error_message: Mapped[str | None] = mapped_column(Text)
    content_type: Mapped[str] = mapped_column(String(20), nullable=False)
    content_hash: Mapped[str] = mapped_column(String(64), nullable=False)
    content_url: Mapped[str | None] = mapped_column(Text)
    content_metadata: Mapped[Any] = mapped_column(JsonB, nullable=True)
    detection_level: Mapped[str] = mapped_column(String(20), default="standard")
    analysis_scope: Mapped[Any] = mapped_column(JsonB, nullable=True)
    is_deepfake: Mapped[bool | None] = mapped_column(Boolean)
    confidence_score: Mapped[float | None] = mapped_column(score_type())
    manipulation_score: Mapped[float | None] = mapped_column(score_type())
    total_frames: Mapped[int | None] = mapped_column(Integer)
    analyzed_frames: Mapped[int | None] = mapped_column(Integer)
    deepfake_frame_count: Mapped[int | None] = mapped_column(Integer)
    consistency_score: Mapped[float | None] = mapped_column(score_type())
    manipulation_types: Mapped[Any] = mapped_column(JsonB, nullable=True)
    inconsistency_areas: Mapped[Any] = mapped_column(JsonB, nullable=True)
    temporal_inconsistencies: Mapped[Any] = mapped_column(JsonB, nullable=True)
    model_version: Mapped[str | None] = mapped_column(String(64))
    processing_time_ms: Mapped[int | None] = mapped_column(Integer)
    processing_method: Mapped[str | None] = mapped_column(String(30))
    job_id: Mapped[str | None] = mapped_column(String(64))
    job_status: Mapped[str] = mapped_column(String(20), default="pending")
    progress_percentage: Mapped[float] = mapped_column(_decimal(5, 2), default=0.0)
    estimated_completion: Mapped[datetime | None] = mapped_column(TimestampTZ)
    request_source: Mapped[str | None] = mapped_column(String(50))
    priority: Mapped[int] = mapped_column(Integer, default=5)
    created_at: Mapped[datetime] = _created()
    started_at: Mapped[datetime | None] = mapped_column(TimestampTZ)
    completed_at: Mapped[datetime | None] = mapped_column(TimestampTZ)


class FrameAnalysis(Base):
    __tablename__ = "frame_analyses"
    __table_args__ = (
        UniqueConstraint("analysis_id", "frame_number"),
        Index("idx_frame_analyses_analysis_id", "analysis_id"),
        Index("idx_frame_analyses_timestamp", "timestamp_ms"),
        {"schema": "deepfake_detection"},
    )

    id: Mapped[uuid.UUID] = _pk()
    analysis_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("deepfake_detection.deepfake_analyses.id", ondelete="CASCADE"), nullable=False
    )
    frame_number: Mapped[int] = mapped_column(Integer, nullable=False)
    timestamp_ms: Mapped[int] = mapped_column(Integer, nullable=False)
    is_deepfake: Mapped[bool | None] = mapped_column(Boolean)
    confidence_score: Mapped[float | None] = mapped_column(score_type())
    manipulation_types: Mapped[Any] = mapped_column(JsonB, nullable=True)
    inconsistent_regions: Mapped[Any] = mapped_column(JsonB, nullable=True)
    frame_hash: Mapped[str | None] = mapped_column(String(64))
    face_count: Mapped[int] = mapped_column(Integer, default=0)
    # Per-face scores with track ids (migration 0008; not in document 000).
    faces: Mapped[Any] = mapped_column(JsonB, nullable=True)
    created_at: Mapped[datetime] = _created()


class ContentFeature(Base):
    """Features of analysed content with its verdict: the source of the ``deepfake_features`` index.

    Document 000 §5.1 keeps these only in Milvus; here SQL holds them too so that the index can
    be rebuilt, erased with its analysis, and searched within one tenant.
    """

    __tablename__ = "content_features"
    __table_args__ = (
        Index("idx_content_features_tenant", "tenant_id", "is_deepfake"),
        {"schema": "deepfake_detection"},
    )

    id: Mapped[uuid.UUID] = _pk()
    analysis_id: Mapped[uuid.UUID] = mapped_column(
        Uuid,
        ForeignKey("deepfake_detection.deepfake_analyses.id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    )
    tenant_id: Mapped[uuid.UUID] = mapped_column(Uuid, nullable=False)
    content_hash: Mapped[str] = mapped_column(String(64), nullable=False)
    features: Mapped[bytes] = mapped_column(LargeBinary, nullable=False)
    is_deepfake: Mapped[bool] = mapped_column(Boolean, nullable=False)
    created_at: Mapped[datetime] = _created()


# --- demographics ----------------------------------------------------------------------------------


class DemographicAnalysis(Base):
    __tablename__ = "demographic_analyses"
    __table_args__ = (
        # idx_demographic_analyses_request_id of the document duplicates the UNIQUE index.
        Index("idx_demographic_analyses_user_id", "user_id"),
        Index("idx_demographic_analyses_created_at", "created_at"),
        {"schema": "demographics"},
    )

    id: Mapped[uuid.UUID] = _pk()
    request_id: Mapped[str] = mapped_column(String(64), unique=True, nullable=False)
    user_id: Mapped[uuid.UUID | None] = _user_fk()
    image_hash: Mapped[str] = mapped_column(String(64), nullable=False)
    # A loose reference, as in the document: the detection request may be purged first.
    face_detection_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    faces_analyzed: Mapped[int] = mapped_column(Integer, default=0)
    model_version: Mapped[str | None] = mapped_column(String(64))
    processing_time_ms: Mapped[int | None] = mapped_column(Integer)
    request_source: Mapped[str | None] = mapped_column(String(50))
    batch_id: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = _created()


class FaceDemographics(Base):
    __tablename__ = "face_demographics"
    __table_args__ = (
        UniqueConstraint("analysis_id", "face_index"),
        Index("idx_face_demographics_analysis_id", "analysis_id"),
        Index("idx_face_demographics_age_group", "age_group"),
        Index("idx_face_demographics_gender", "estimated_gender"),
        {"schema": "demographics"},
    )

    id: Mapped[uuid.UUID] = _pk()
    analysis_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("demographics.demographic_analyses.id", ondelete="CASCADE"), nullable=False
    )
    face_index: Mapped[int] = mapped_column(Integer, nullable=False)
    bbox_x: Mapped[int | None] = mapped_column(Integer)
    bbox_y: Mapped[int | None] = mapped_column(Integer)
    bbox_width: Mapped[int | None] = mapped_column(Integer)
    bbox_height: Mapped[int | None] = mapped_column(Integer)
    estimated_age: Mapped[float] = mapped_column(_decimal(5, 2), nullable=False)
    age_confidence: Mapped[float | None] = mapped_column(score_type())
    age_range_min: Mapped[int | None] = mapped_column(Integer)
    age_range_max: Mapped[int | None] = mapped_column(Integer)
    age_group: Mapped[str | None] = mapped_column(String(20))
    estimated_gender: Mapped[str] = mapped_column(String(10), nullable=False)
    gender_confidence: Mapped[float | None] = mapped_column(score_type())
    emotion_primary: Mapped[str | None] = mapped_column(String(20))
    emotion_confidence: Mapped[float | None] = mapped_column(score_type())
    face_quality_score: Mapped[float | None] = mapped_column(score_type())
    created_at: Mapped[datetime] = _created()


# --- config ----------------------------------------------------------------------------------------


class AiModel(Base):
    __tablename__ = "ai_models"
    __table_args__ = (
        UniqueConstraint("service_name", "model_name", "model_version"),
        Index("idx_ai_models_service", "service_name"),
        Index("idx_ai_models_status", "status"),
        {"schema": "config"},
    )

    id: Mapped[uuid.UUID] = _pk()
    service_name: Mapped[str] = mapped_column(String(50), nullable=False)
    model_name: Mapped[str] = mapped_column(String(100), nullable=False)
    model_version: Mapped[str] = mapped_column(String(64), nullable=False)
    model_type: Mapped[str | None] = mapped_column(String(50))
    model_path: Mapped[str] = mapped_column(Text, nullable=False)
    model_size_mb: Mapped[float | None] = mapped_column(_decimal(10, 2))
    input_dimensions: Mapped[Any] = mapped_column(JsonB, nullable=True)
    output_dimensions: Mapped[Any] = mapped_column(JsonB, nullable=True)
    avg_inference_time_ms: Mapped[float | None] = mapped_column(_decimal(10, 2))
    accuracy_score: Mapped[float | None] = mapped_column(score_type())
    supported_formats: Mapped[Any] = mapped_column(JsonB, nullable=True)
    status: Mapped[str] = mapped_column(String(20), default="active")
    is_default: Mapped[bool] = mapped_column(Boolean, default=False)
    description: Mapped[str | None] = mapped_column(Text)
    training_date: Mapped[date | None] = mapped_column(Date)
    deployment_date: Mapped[date | None] = mapped_column(Date)
    created_at: Mapped[datetime] = _created()
    updated_at: Mapped[datetime] = mapped_column(TimestampTZ, default=utcnow, onupdate=utcnow)


class ServiceSetting(Base):
    __tablename__ = "service_settings"
    __table_args__ = (
        UniqueConstraint("service_name", "setting_key"),
        Index("idx_service_settings_service", "service_name"),
        {"schema": "config"},
    )

    id: Mapped[uuid.UUID] = _pk()
    service_name: Mapped[str] = mapped_column(String(50), nullable=False)
    setting_key: Mapped[str] = mapped_column(String(100), nullable=False)
    setting_value: Mapped[Any] = mapped_column(JsonB, nullable=False)
    setting_type: Mapped[str] = mapped_column(String(20), nullable=False)
    description: Mapped[str | None] = mapped_column(Text)
    is_user_configurable: Mapped[bool] = mapped_column(Boolean, default=False)
    requires_restart: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = _created()
    updated_at: Mapped[datetime] = mapped_column(TimestampTZ, default=utcnow, onupdate=utcnow)


# --- ai_detection (document 003, SkyGate; src/facesocial/domains/ai_detection/) -----------------------
# Deviations from document 003 (docs/data-model.md): UUID keys; tenant_id + api_key_id instead of
# user_id (an account is a tenant); uploads.file_path is NULL (the image is not kept) and uploads
# gain status, job_id and the error of a failed job; a result's result_id equals its upload's
# upload_id (one-to-one); the MongoDB detection metadata document is a JSON(B) row; the report's
# images are rows too (one transaction makes a result durable whole).

AI_UPLOAD_STATUSES = ("pending", "processing", "completed", "failed", "cancelled")
AI_REPORT_IMAGE_KINDS = ("thumbnail", "ela", "heatmap")


class AiUpload(Base):
    """One image submitted for AI-generation detection (document 003 ``uploads``), without its bytes."""

    __tablename__ = "uploads"
    __table_args__ = (
        Index("idx_uploads_tenant_date", "tenant_id", "upload_date"),
        Index("idx_uploads_upload_date", "upload_date"),
        Index("idx_uploads_is_processed", "is_processed"),
        {"schema": "ai_detection"},
    )

    upload_id: Mapped[uuid.UUID] = _pk()
    tenant_id: Mapped[uuid.UUID] = mapped_column(Uuid, nullable=False)
    api_key_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    file_name: Mapped[str] = mapped_column(String(255), nullable=False)
    original_file_name: Mapped[str] = mapped_column(String(255), nullable=False)
    # NULL: the uploaded image is not kept (privacy); only its report, thumbnail and maps are.
    file_path: Mapped[str | None] = mapped_column(String(255))
    file_size: Mapped[int] = mapped_column(BigInteger, nullable=False)
    file_type: Mapped[str] = mapped_column(String(50), nullable=False)
    mime_type: Mapped[str] = mapped_column(String(100), nullable=False)
    upload_date: Mapped[datetime] = mapped_column(TimestampTZ, default=utcnow, nullable=False)
    is_processed: Mapped[bool] = mapped_column(Boolean, default=False, nullable=False)
    processing_started_at: Mapped[datetime | None] = mapped_column(TimestampTZ)
    processing_completed_at: Mapped[datetime | None] = mapped_column(TimestampTZ)
    # The API URL of the thumbnail (its bytes are in report_images).
    thumbnail_path: Mapped[str | None] = mapped_column(String(255))
    status: Mapped[str] = mapped_column(String(20), default="pending", nullable=False)
    job_id: Mapped[str | None] = mapped_column(String(64))
    error_code: Mapped[str | None] = mapped_column(String(50))
    error_message: Mapped[str | None] = mapped_column(Text)


class AiDetectionResult(Base):
    """The ensemble's verdict on one upload (document 003 ``detection_results``)."""

    __tablename__ = "detection_results"
    __table_args__ = (
        Index("idx_detection_results_is_ai_generated", "is_ai_generated"),
        Index("idx_detection_results_confidence_score", "confidence_score"),
        {"schema": "ai_detection"},
    )

    result_id: Mapped[uuid.UUID] = _pk()
    # UNIQUE: one result per upload (document 003's ERD); the index doubles as idx_..._upload_id.
    upload_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("ai_detection.uploads.upload_id", ondelete="CASCADE"), unique=True, nullable=False
    )
    is_ai_generated: Mapped[bool | None] = mapped_column(Boolean)
    confidence_score: Mapped[float] = mapped_column(score_type(), nullable=False)
    band: Mapped[str] = mapped_column(String(20), nullable=False)
    processing_time: Mapped[float] = mapped_column(_decimal(10, 3), nullable=False)  # seconds
    detection_date: Mapped[datetime] = mapped_column(TimestampTZ, default=utcnow, nullable=False)
    algorithm_version: Mapped[str] = mapped_column(String(64), nullable=False)
    result_summary: Mapped[str | None] = mapped_column(Text)
    # The key of the detection metadata document (detection_metadata.result_id, as text).
    metadata_id: Mapped[str | None] = mapped_column(String(50))


class DetectionMethod(Base):
    """One method of the ensemble, its weight and whether it runs (document 003 ``detection_methods``)."""

    __tablename__ = "detection_methods"
    __table_args__ = (
        CheckConstraint("weight >= 0 AND weight <= 9.99", name="ck_detection_methods_weight_range"),
        {"schema": "ai_detection"},
    )

    method_id: Mapped[uuid.UUID] = _pk()
    method_name: Mapped[str] = mapped_column(String(100), unique=True, nullable=False)
    description: Mapped[str | None] = mapped_column(Text)
    is_active: Mapped[bool] = mapped_column(Boolean, default=True, nullable=False)
    weight: Mapped[float] = mapped_column(_decimal(3, 2), default=1.0, nullable=False)
    created_at: Mapped[datetime] = _created()
    updated_at: Mapped[datetime] = mapped_column(TimestampTZ, default=utcnow, onupdate=utcnow, nullable=False)


class AiMethodResult(Base):
    """One method's finding on one upload (document 003 ``method_results``)."""

    __tablename__ = "method_results"
    __table_args__ = (
        Index("idx_method_results_result_id", "result_id"),
        Index("idx_method_results_method_id", "method_id"),
        {"schema": "ai_detection"},
    )

    method_result_id: Mapped[uuid.UUID] = _pk()
    result_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("ai_detection.detection_results.result_id", ondelete="CASCADE"), nullable=False
    )
    method_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("ai_detection.detection_methods.method_id", ondelete="CASCADE"), nullable=False
    )
    is_ai_generated: Mapped[bool | None] = mapped_column(Boolean)
    # The method's confidence (|score - 0.5| * 2); its score is in result_details.
    confidence_score: Mapped[float] = mapped_column(score_type(), nullable=False)
    processing_time: Mapped[float] = mapped_column(_decimal(10, 3), nullable=False)  # seconds
    result_details: Mapped[Any] = mapped_column(JsonB, nullable=True)


class DetectionMetadata(Base):
    """Document 003's MongoDB ``detection_metadata`` document, as one JSON(B) value per result."""

    __tablename__ = "detection_metadata"
    __table_args__ = ({"schema": "ai_detection"},)

    result_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("ai_detection.detection_results.result_id", ondelete="CASCADE"), primary_key=True
    )
    document: Mapped[Any] = mapped_column(JsonB, nullable=False)
    created_at: Mapped[datetime] = _created()
    updated_at: Mapped[datetime] = mapped_column(TimestampTZ, default=utcnow, onupdate=utcnow, nullable=False)


class AiReportImage(Base):
    """An image of a report (thumbnail JPEG, ELA and heatmap PNGs), served under /results/{id}/."""

    __tablename__ = "report_images"
    __table_args__ = ({"schema": "ai_detection"},)

    upload_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("ai_detection.uploads.upload_id", ondelete="CASCADE"), primary_key=True
    )
    kind: Mapped[str] = mapped_column(String(20), primary_key=True)
    media_type: Mapped[str] = mapped_column(String(50), nullable=False)
    width: Mapped[int] = mapped_column(Integer, nullable=False)
    height: Mapped[int] = mapped_column(Integer, nullable=False)
    data: Mapped[bytes] = mapped_column(LargeBinary, nullable=False)
    created_at: Mapped[datetime] = _created()


# --- attention (document 004: meeting attention analytics) -----------------------------------------
# Deviations from document 004 (docs/data-model.md): UUID keys are made by the application;
# ``tenant_id`` scopes every meeting and video (document 004's host/user ids are the caller's
# tenant or account); ``participants.user_id`` is the enrolled face subject's EXTERNAL id
# (core.users.external_id, the id the face-recognition routes speak) bound by identification,
# nullable until then; ``attention_metrics`` has a primary key (meeting, participant, time) for
# the ORM; on PostgreSQL it is range-partitioned by UTC day (migration 0012,
# store/attention_partitions.py) or a TimescaleDB hypertable when the extension exists, in which
# case ``attention_metrics_1min`` is the continuous aggregate, not this table.


class Meeting(Base):
    __tablename__ = "meetings"
    __table_args__ = (
        Index("idx_meetings_tenant", "tenant_id", "created_at"),
        Index("idx_meetings_status", "status"),
        {"schema": "attention"},
    )

    id: Mapped[uuid.UUID] = _pk()
    tenant_id: Mapped[uuid.UUID] = mapped_column(Uuid, nullable=False)
    title: Mapped[str] = mapped_column(String(255), nullable=False)
    description: Mapped[str | None] = mapped_column(Text)
    host_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)  # the account / key that created it
    status: Mapped[str] = mapped_column(String(20), default="scheduled", nullable=False)
    # The enrolled-face group participants are identified against (face_recognition.face_groups).
    group_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    start_time: Mapped[datetime | None] = mapped_column(TimestampTZ)
    end_time: Mapped[datetime | None] = mapped_column(TimestampTZ)
    created_at: Mapped[datetime] = _created()
    updated_at: Mapped[datetime] = mapped_column(TimestampTZ, default=utcnow, onupdate=utcnow, nullable=False)


class Participant(Base):
    __tablename__ = "participants"
    __table_args__ = (
        Index("idx_participants_meeting", "meeting_id"),
        Index("idx_participants_user", "user_id"),
        {"schema": "attention"},
    )

    id: Mapped[uuid.UUID] = _pk()
    meeting_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("attention.meetings.id", ondelete="CASCADE"), nullable=False
    )
    user_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    display_name: Mapped[str | None] = mapped_column(String(255))
    track_id: Mapped[int | None] = mapped_column(Integer)
    # Which live stream (WebSocket connection) the track id belongs to; None for REST joins.
    stream_id: Mapped[str | None] = mapped_column(String(64))
    joined_at: Mapped[datetime | None] = mapped_column(TimestampTZ)
    left_at: Mapped[datetime | None] = mapped_column(TimestampTZ)
    is_active: Mapped[bool] = mapped_column(Boolean, default=True, nullable=False)
    created_at: Mapped[datetime] = _created()


class AttentionAlert(Base):
    __tablename__ = "alerts"
    __table_args__ = (
        Index("idx_alerts_meeting", "meeting_id"),
        Index("idx_alerts_participant", "participant_id"),
        Index("idx_alerts_type", "alert_type"),
        {"schema": "attention"},
    )

    id: Mapped[uuid.UUID] = _pk()
    meeting_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("attention.meetings.id", ondelete="CASCADE"), nullable=False
    )
    participant_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("attention.participants.id", ondelete="CASCADE"), nullable=False
    )
    alert_type: Mapped[str] = mapped_column(String(50), nullable=False)  # not_attentive, looking_away, drowsy
    severity: Mapped[str] = mapped_column(String(20), nullable=False)  # info, warning, critical
    message: Mapped[str | None] = mapped_column(Text)
    duration_seconds: Mapped[float | None] = mapped_column(Numeric(10, 3, asdecimal=False))
    created_at: Mapped[datetime] = _created()
    resolved_at: Mapped[datetime | None] = mapped_column(TimestampTZ)


class MeetingSummary(Base):
    __tablename__ = "meeting_summaries"
    __table_args__ = ({"schema": "attention"},)

    id: Mapped[uuid.UUID] = _pk()
    meeting_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("attention.meetings.id", ondelete="CASCADE"), unique=True, nullable=False
    )
    duration_minutes: Mapped[int | None] = mapped_column(Integer)
    participant_count: Mapped[int | None] = mapped_column(Integer)
    avg_attention_score: Mapped[float | None] = mapped_column(Numeric(6, 2, asdecimal=False))
    min_attention_score: Mapped[float | None] = mapped_column(Numeric(6, 2, asdecimal=False))
    max_attention_score: Mapped[float | None] = mapped_column(Numeric(6, 2, asdecimal=False))
    total_alerts: Mapped[int | None] = mapped_column(Integer)
    low_attention_segments: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = _created()


class VideoRecording(Base):
    """A recorded video (document 004 ``video_recordings``); the file itself is not kept."""

    __tablename__ = "video_recordings"
    __table_args__ = (
        Index("idx_recordings_meeting", "meeting_id"),
        Index("idx_recordings_tenant", "tenant_id", "created_at"),
        {"schema": "attention"},
    )

    id: Mapped[uuid.UUID] = _pk()
    tenant_id: Mapped[uuid.UUID] = mapped_column(Uuid, nullable=False)
    meeting_id: Mapped[uuid.UUID | None] = mapped_column(
        Uuid, ForeignKey("attention.meetings.id", ondelete="SET NULL")
    )
    user_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)  # the uploading account / key
    filename: Mapped[str] = mapped_column(String(255), nullable=False)
    file_path: Mapped[str | None] = mapped_column(Text)  # NULL: the video is not kept
    file_size: Mapped[int | None] = mapped_column(Integer)
    duration_seconds: Mapped[float | None] = mapped_column(Numeric(10, 3, asdecimal=False))
    width: Mapped[int | None] = mapped_column(Integer)
    height: Mapped[int | None] = mapped_column(Integer)
    format: Mapped[str] = mapped_column(String(20), default="webm", nullable=False)
    status: Mapped[str] = mapped_column(String(20), default="processing", nullable=False)
    alerts_data: Mapped[Any] = mapped_column(JsonB, nullable=True)
    alert_count: Mapped[int] = mapped_column(Integer, default=0, nullable=False)
    created_at: Mapped[datetime] = _created()
    updated_at: Mapped[datetime] = mapped_column(TimestampTZ, default=utcnow, onupdate=utcnow, nullable=False)


class VideoAnalysis(Base):
    """The analysis job of one recording (document 004 ``video_analyses``); same id as its recording."""

    __tablename__ = "video_analyses"
    __table_args__ = (
        Index("idx_video_analyses_tenant", "tenant_id", "created_at"),
        Index("idx_video_analyses_status", "status"),
        {"schema": "attention"},
    )

    id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("attention.video_recordings.id", ondelete="CASCADE"), primary_key=True
    )
    tenant_id: Mapped[uuid.UUID] = mapped_column(Uuid, nullable=False)
    user_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    filename: Mapped[str] = mapped_column(String(255), nullable=False)
    file_path: Mapped[str | None] = mapped_column(Text)
    file_size: Mapped[int | None] = mapped_column(Integer)
    duration: Mapped[float | None] = mapped_column(Numeric(10, 3, asdecimal=False))
    status: Mapped[str] = mapped_column(String(20), default="pending", nullable=False)
    progress: Mapped[int] = mapped_column(Integer, default=0, nullable=False)
    results: Mapped[Any] = mapped_column(JsonB, nullable=True)
    error_message: Mapped[str | None] = mapped_column(Text)
    job_id: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = _created()
    updated_at: Mapped[datetime] = mapped_column(TimestampTZ, default=utcnow, onupdate=utcnow, nullable=False)


class DetectionTimeline(Base):
    """One analysed frame of a recording: its faces and their mean attention."""

    __tablename__ = "detection_timeline"
    __table_args__ = (
        Index("idx_timeline_time", "time"),
        {"schema": "attention"},
    )

    recording_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("attention.video_recordings.id", ondelete="CASCADE"), primary_key=True
    )
    video_timestamp_ms: Mapped[int] = mapped_column(Integer, primary_key=True)
    time: Mapped[datetime] = mapped_column(TimestampTZ, nullable=False)
    faces_data: Mapped[Any] = mapped_column(JsonB, nullable=False)
    avg_attention_score: Mapped[float | None] = mapped_column(Numeric(6, 2, asdecimal=False))


class AttentionMetric(Base):
    """One participant's scores at one instant (document 004's hypertable ``attention_metrics``)."""

    __tablename__ = "attention_metrics"
    __table_args__ = (
        Index("idx_metrics_meeting", "meeting_id", "time"),
        Index("idx_metrics_participant", "participant_id", "time"),
        {"schema": "attention"},
    )

    meeting_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    participant_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    time: Mapped[datetime] = mapped_column(TimestampTZ, primary_key=True)
    attention_score: Mapped[float] = mapped_column(Numeric(6, 2, asdecimal=False), nullable=False)
    gaze_score: Mapped[float | None] = mapped_column(Numeric(6, 2, asdecimal=False))
    head_pose_score: Mapped[float | None] = mapped_column(Numeric(6, 2, asdecimal=False))
    eye_openness_score: Mapped[float | None] = mapped_column(Numeric(6, 2, asdecimal=False))
    is_looking_away: Mapped[bool] = mapped_column(Boolean, default=False, nullable=False)
    is_drowsy: Mapped[bool] = mapped_column(Boolean, default=False, nullable=False)


class AttentionMetricMinute(Base):
    """The 1-minute roll-up of ``attention_metrics`` (document 004's ``attention_metrics_1min``),
    kept by the worker where TimescaleDB's continuous aggregate is not available."""

    __tablename__ = "attention_metrics_1min"
    __table_args__ = (
        Index("idx_metrics_1min_meeting", "meeting_id", "bucket"),
        {"schema": "attention"},
    )

    meeting_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    participant_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    bucket: Mapped[datetime] = mapped_column(TimestampTZ, primary_key=True)
    avg_attention: Mapped[float | None] = mapped_column(Numeric(6, 2, asdecimal=False))
    min_attention: Mapped[float | None] = mapped_column(Numeric(6, 2, asdecimal=False))
    max_attention: Mapped[float | None] = mapped_column(Numeric(6, 2, asdecimal=False))
    avg_gaze: Mapped[float | None] = mapped_column(Numeric(6, 2, asdecimal=False))
    avg_head_pose: Mapped[float | None] = mapped_column(Numeric(6, 2, asdecimal=False))
    sample_count: Mapped[int] = mapped_column(Integer, nullable=False)


# Document 002's tables live in their own modules; importing them here registers them on
# ``Base.metadata`` (migrations, schema checks) wherever the tables are loaded.
from facesocial.store import tables_compat as _compat  # noqa: E402, F401
from facesocial.store import tables_counting as _counting  # noqa: E402, F401
from facesocial.store import tables_registry as _registry  # noqa: E402, F401
