"""Model registry, deployments, inference records, performance, drift and A/B experiments
(document 002), schema ``model_registry``.

Vocabulary. A *registered model* is a serving slot of the platform (``face_detection``,
``face_embedding``, ``person_detection``, ...: :data:`facesocial.domains.registry.serving.SLOTS`);
its *versions* are the model files that can fill the slot, named by their model tag
(``retinaface_mnet025@1.0``). One version per slot is in production; one other may be a canary
with a traffic percentage; a running experiment splits the slot's traffic between a baseline and
a challenger version.

Deliberate differences from document 002 (docs/data-model.md):
* document 002's ``ai_models`` is ``registered_models`` here: document 000's ``config.ai_models``
  (one row per installed model file, kept) already has the name, and SQLite, which maps every
  schema onto one database, needs table names unique across schemas;
* UUID ``id`` keys as in every other table, beside the document's string keys (``model_id``,
  ``pipeline_id``, ``inference_id``, ``experiment_id``, ...), which stay unique;
* ``users(id)`` references are account ids (``core.accounts``), without a foreign key: the
  registry is the installation's, not a tenant's;
* ``model_inference_results`` gains ``tenant_id``, ``service``, ``route``, ``experiment_id`` and
  ``arm``: drift, performance and experiment results are computed from these rows;
* ``ab_testing_assignments`` keys a subject by ``subject_key`` (the hash input: user, session or
  request id) instead of an integer user id; ``ab_testing_feedback`` (outcomes posted by callers,
  joined to the arm that served them) is added;
* percentages and scores are stored as fractions 0..1 where the document's DECIMAL(5,2) would
  hold a percentage, except the ``*_percent`` columns, which are percentages.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    Numeric,
    String,
    Text,
    UniqueConstraint,
    Uuid,
)
from sqlalchemy.orm import Mapped, mapped_column

from facesocial.store.tables import Base
from facesocial.store.types import JsonB, TimestampTZ, utcnow

SCHEMA = "model_registry"
_ARGS = {"schema": SCHEMA}

# model_versions.deployment_status / the pipeline's stages, in promotion order.
STAGES = ("development", "staging", "production", "archived")
# How a request was routed to the version that served it.
ROUTES = ("production", "canary", "experiment", "pinned")
ARMS = ("baseline", "challenger")
SPLIT_METHODS = ("random", "user", "session")
EXPERIMENT_STATUSES = ("draft", "running", "completed", "stopped")
RECOMMENDATIONS = ("deploy_challenger", "keep_baseline", "run_longer")
DRIFT_SEVERITIES = ("none", "low", "medium", "high", "critical")


def _pk() -> Mapped[uuid.UUID]:
    return mapped_column(Uuid, primary_key=True, default=uuid.uuid4)


def _created() -> Mapped[datetime]:
    return mapped_column(TimestampTZ, default=utcnow, nullable=False)


def _updated() -> Mapped[datetime]:
    return mapped_column(TimestampTZ, default=utcnow, onupdate=utcnow, nullable=False)


def _num(precision: int, scale: int) -> Numeric[float]:
    return Numeric(precision, scale, asdecimal=False)


def _model_fk(nullable: bool = True) -> Mapped[Any]:
    return mapped_column(String(100), ForeignKey(f"{SCHEMA}.registered_models.model_id"), nullable=nullable)


# --- registry -------------------------------------------------------------------------------------


class RegisteredModel(Base):
    """One serving slot (document 002's ``ai_models``)."""

    __tablename__ = "registered_models"
    __table_args__ = (
        Index("idx_registered_models_type", "model_type"),
        _ARGS,
    )

    id: Mapped[uuid.UUID] = _pk()
    model_id: Mapped[str] = mapped_column(String(100), unique=True, nullable=False)
    model_name: Mapped[str] = mapped_column(String(200), nullable=False)
    # detection, embedding, classification, tracking, counting
    model_type: Mapped[str] = mapped_column(String(50), nullable=False)
    model_description: Mapped[str | None] = mapped_column(Text)
    # The production version's tag (denormalised from model_versions for quick reads).
    model_version: Mapped[str | None] = mapped_column(String(64))
    model_framework: Mapped[str | None] = mapped_column(String(50))
    model_format: Mapped[str | None] = mapped_column(String(50))
    model_config: Mapped[Any] = mapped_column(JsonB, nullable=True)
    model_parameters: Mapped[int | None] = mapped_column(Integer)
    model_size_mb: Mapped[float | None] = mapped_column(_num(10, 2))
    accuracy_score: Mapped[float | None] = mapped_column(_num(6, 4))
    precision_score: Mapped[float | None] = mapped_column(_num(6, 4))
    recall_score: Mapped[float | None] = mapped_column(_num(6, 4))
    f1_score: Mapped[float | None] = mapped_column(_num(6, 4))
    is_active: Mapped[bool] = mapped_column(Boolean, default=True, nullable=False)
    is_production: Mapped[bool] = mapped_column(Boolean, default=False, nullable=False)
    deployment_status: Mapped[str] = mapped_column(String(20), default="development", nullable=False)
    model_path: Mapped[str | None] = mapped_column(String(500))
    model_checksum: Mapped[str | None] = mapped_column(String(64))
    model_metadata_path: Mapped[str | None] = mapped_column(String(500))
    created_by: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    created_at: Mapped[datetime] = _created()
    updated_at: Mapped[datetime] = _updated()


class ModelVersion(Base):
    """One model file that can fill a slot, with its stage and canary share."""

    __tablename__ = "model_versions"
    __table_args__ = (
        UniqueConstraint("model_id", "version_number"),
        Index("idx_model_versions_deployment", "deployment_status", "deployment_timestamp"),
        CheckConstraint(
            "canary_percent IS NULL OR (canary_percent >= 0 AND canary_percent <= 100)",
            name="canary_percent_range",
        ),
        _ARGS,
    )

    id: Mapped[uuid.UUID] = _pk()
    model_id: Mapped[str] = _model_fk(nullable=False)
    version_number: Mapped[str] = mapped_column(String(64), nullable=False)  # the model tag
    version_description: Mapped[str | None] = mapped_column(Text)
    version_changes: Mapped[str | None] = mapped_column(Text)
    version_commit_hash: Mapped[str | None] = mapped_column(String(64))
    model_file_path: Mapped[str | None] = mapped_column(String(500))
    model_file_size_mb: Mapped[float | None] = mapped_column(_num(10, 2))
    model_file_checksum: Mapped[str | None] = mapped_column(String(64))
    # Where the file came from: package name and version, licence.
    source_package: Mapped[str | None] = mapped_column(String(200))
    licence: Mapped[str | None] = mapped_column(String(200))
    training_dataset: Mapped[str | None] = mapped_column(String(200))
    training_metrics: Mapped[Any] = mapped_column(JsonB, nullable=True)
    training_duration_hours: Mapped[float | None] = mapped_column(_num(8, 2))
    validation_accuracy: Mapped[float | None] = mapped_column(_num(6, 4))
    validation_precision: Mapped[float | None] = mapped_column(_num(6, 4))
    validation_recall: Mapped[float | None] = mapped_column(_num(6, 4))
    validation_f1: Mapped[float | None] = mapped_column(_num(6, 4))
    # Measured figures (docs/accuracy.md) by name, e.g. {"TAR@FAR=1e-3": 0.97}.
    validation_metrics: Mapped[Any] = mapped_column(JsonB, nullable=True)
    deployment_timestamp: Mapped[datetime | None] = mapped_column(TimestampTZ)
    deployment_environment: Mapped[str | None] = mapped_column(String(50))
    # development | staging | production | archived (STAGES)
    deployment_status: Mapped[str] = mapped_column(String(20), default="development", nullable=False)
    # Share of the slot's traffic (0..100) this version serves as a canary; NULL = not a canary.
    canary_percent: Mapped[float | None] = mapped_column(_num(5, 2))
    # False when the file is not installed on this server (listed, cannot serve).
    is_installed: Mapped[bool] = mapped_column(Boolean, default=True, nullable=False)
    created_at: Mapped[datetime] = _created()
    updated_at: Mapped[datetime] = _updated()


class ModelTrainingHistory(Base):
    """Training runs (kept empty by this server: our training scripts are offline)."""

    __tablename__ = "model_training_history"
    __table_args__ = (_ARGS,)

    id: Mapped[uuid.UUID] = _pk()
    model_id: Mapped[str | None] = _model_fk()
    training_run_id: Mapped[str] = mapped_column(String(100), unique=True, nullable=False)
    training_config: Mapped[Any] = mapped_column(JsonB, nullable=True)
    dataset_config: Mapped[Any] = mapped_column(JsonB, nullable=True)
    training_accuracy: Mapped[float | None] = mapped_column(_num(6, 4))
    training_loss: Mapped[float | None] = mapped_column(_num(10, 4))
    validation_accuracy: Mapped[float | None] = mapped_column(_num(6, 4))
    validation_loss: Mapped[float | None] = mapped_column(_num(10, 4))
    epochs_completed: Mapped[int | None] = mapped_column(Integer)
    total_epochs: Mapped[int | None] = mapped_column(Integer)
    training_duration_hours: Mapped[float | None] = mapped_column(_num(8, 2))
    training_status: Mapped[str] = mapped_column(String(20), default="running", nullable=False)
    error_message: Mapped[str | None] = mapped_column(Text)
    gpu_usage_percent: Mapped[float | None] = mapped_column(_num(5, 2))
    memory_usage_gb: Mapped[float | None] = mapped_column(_num(8, 2))
    cpu_usage_percent: Mapped[float | None] = mapped_column(_num(5, 2))
    started_at: Mapped[datetime] = _created()
    completed_at: Mapped[datetime | None] = mapped_column(TimestampTZ)
    created_at: Mapped[datetime] = _created()


class ModelVersionControl(Base):
    """Version-control facts of a version (kept empty: versions come from packages)."""

    __tablename__ = "model_version_control"
    __table_args__ = (_ARGS,)

    id: Mapped[uuid.UUID] = _pk()
    model_id: Mapped[str | None] = _model_fk()
    version_number: Mapped[str] = mapped_column(String(64), nullable=False)
    parent_version: Mapped[str | None] = mapped_column(String(64))
    branch_name: Mapped[str | None] = mapped_column(String(100))
    commit_hash: Mapped[str | None] = mapped_column(String(64))
    commit_message: Mapped[str | None] = mapped_column(Text)
    changes_summary: Mapped[str | None] = mapped_column(Text)
    changes_details: Mapped[Any] = mapped_column(JsonB, nullable=True)
    files_changed: Mapped[int | None] = mapped_column(Integer)
    lines_added: Mapped[int | None] = mapped_column(Integer)
    lines_deleted: Mapped[int | None] = mapped_column(Integer)
    author_name: Mapped[str | None] = mapped_column(String(200))
    author_email: Mapped[str | None] = mapped_column(String(200))
    commit_timestamp: Mapped[datetime | None] = mapped_column(TimestampTZ)
    review_status: Mapped[str] = mapped_column(String(20), default="pending", nullable=False)
    reviewed_by: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    reviewed_at: Mapped[datetime | None] = mapped_column(TimestampTZ)
    review_notes: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = _created()


class ModelBranch(Base):
    """Branches of model development (kept empty, documented)."""

    __tablename__ = "model_branches"
    __table_args__ = (_ARGS,)

    id: Mapped[uuid.UUID] = _pk()
    branch_name: Mapped[str] = mapped_column(String(100), unique=True, nullable=False)
    base_version: Mapped[str] = mapped_column(String(64), nullable=False)
    branch_description: Mapped[str | None] = mapped_column(Text)
    branch_purpose: Mapped[str | None] = mapped_column(String(50))
    branch_status: Mapped[str] = mapped_column(String(20), default="active", nullable=False)
    created_by: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    created_at: Mapped[datetime] = _created()
    merged_at: Mapped[datetime | None] = mapped_column(TimestampTZ)
    merged_to: Mapped[str | None] = mapped_column(
        String(100), ForeignKey(f"{SCHEMA}.model_branches.branch_name")
    )


class DeploymentPipeline(Base):
    """One deployment action on a slot: promote a version through stages, set or end a canary,
    or roll back to a named version with a reason. Rows are an append-only history."""

    __tablename__ = "model_deployment_pipeline"
    __table_args__ = (
        Index("idx_deployment_pipeline_model", "model_id", "created_at"),
        _ARGS,
    )

    id: Mapped[uuid.UUID] = _pk()
    pipeline_id: Mapped[str] = mapped_column(String(100), unique=True, nullable=False)
    model_id: Mapped[str] = _model_fk(nullable=False)
    version_number: Mapped[str] = mapped_column(String(64), nullable=False)
    # e.g. ["development", "staging", "production"]
    pipeline_stages: Mapped[Any] = mapped_column(JsonB, nullable=True)
    current_stage: Mapped[str | None] = mapped_column(String(50))
    stage_status: Mapped[str] = mapped_column(String(20), default="pending", nullable=False)
    # {"action": "promote"|"canary"|"rollback"|..., "canary_percent": ..., "previous_version": ...}
    deployment_config: Mapped[Any] = mapped_column(JsonB, nullable=True)
    environment_config: Mapped[Any] = mapped_column(JsonB, nullable=True)
    pipeline_status: Mapped[str] = mapped_column(String(20), default="pending", nullable=False)
    pipeline_started_at: Mapped[datetime | None] = mapped_column(TimestampTZ)
    pipeline_completed_at: Mapped[datetime | None] = mapped_column(TimestampTZ)
    can_rollback: Mapped[bool] = mapped_column(Boolean, default=True, nullable=False)
    rollback_version: Mapped[str | None] = mapped_column(String(64))
    rollback_reason: Mapped[str | None] = mapped_column(Text)
    created_by: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    created_at: Mapped[datetime] = _created()
    updated_at: Mapped[datetime] = _updated()


# --- inference records ----------------------------------------------------------------------------


class ModelInferenceResult(Base):
    """One inference of one model version: a request of any service, or one counting video."""

    __tablename__ = "model_inference_results"
    __table_args__ = (
        Index("idx_inference_results_model_timestamp", "model_id", "input_timestamp"),
        Index("idx_inference_results_version_timestamp", "model_id", "model_version", "input_timestamp"),
        Index("idx_inference_results_experiment", "experiment_id", "arm"),
        Index("idx_inference_results_tenant", "tenant_id", "input_timestamp"),
        _ARGS,
    )

    id: Mapped[uuid.UUID] = _pk()
    inference_id: Mapped[str] = mapped_column(String(100), unique=True, nullable=False)
    model_id: Mapped[str] = _model_fk(nullable=False)
    model_version: Mapped[str] = mapped_column(String(64), nullable=False)
    tenant_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    service: Mapped[str | None] = mapped_column(String(50))  # which API answered
    route: Mapped[str] = mapped_column(String(20), default="production", nullable=False)  # ROUTES
    experiment_id: Mapped[str | None] = mapped_column(String(100))
    arm: Mapped[str | None] = mapped_column(String(20))  # ARMS
    input_data_hash: Mapped[str | None] = mapped_column(String(64))
    # e.g. {"width":..,"height":..,"quality":..} — input-quality features for drift
    input_metadata: Mapped[Any] = mapped_column(JsonB, nullable=True)
    input_timestamp: Mapped[datetime] = mapped_column(TimestampTZ, default=utcnow, nullable=False)
    inference_results: Mapped[Any] = mapped_column(JsonB, nullable=False)
    confidence_scores: Mapped[Any] = mapped_column(JsonB, nullable=True)  # list of floats
    processing_time_ms: Mapped[int | None] = mapped_column(Integer)
    result_quality_score: Mapped[float | None] = mapped_column(_num(5, 4))
    result_validation_status: Mapped[str] = mapped_column(String(20), default="valid", nullable=False)
    gpu_utilization_percent: Mapped[float | None] = mapped_column(_num(5, 2))
    memory_usage_mb: Mapped[float | None] = mapped_column(_num(10, 2))
    batch_size: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = _created()


# --- performance, drift, comparison ---------------------------------------------------------------


class ModelPerformanceMetric(Base):
    """Latency, throughput and (where outcomes are known) accuracy of a version over a window."""

    __tablename__ = "model_performance_metrics"
    __table_args__ = (
        Index("idx_performance_metrics_model_timestamp", "model_id", "metric_timestamp"),
        _ARGS,
    )

    id: Mapped[uuid.UUID] = _pk()
    model_id: Mapped[str] = _model_fk(nullable=False)
    model_version: Mapped[str] = mapped_column(String(64), nullable=False)
    metric_timestamp: Mapped[datetime] = mapped_column(TimestampTZ, default=utcnow, nullable=False)
    window_start: Mapped[datetime | None] = mapped_column(TimestampTZ)
    window_end: Mapped[datetime | None] = mapped_column(TimestampTZ)
    sample_size: Mapped[int | None] = mapped_column(Integer)
    accuracy_score: Mapped[float | None] = mapped_column(_num(6, 4))
    precision_score: Mapped[float | None] = mapped_column(_num(6, 4))
    recall_score: Mapped[float | None] = mapped_column(_num(6, 4))
    f1_score: Mapped[float | None] = mapped_column(_num(6, 4))
    inference_latency_ms: Mapped[int | None] = mapped_column(Integer)  # mean
    latency_p95_ms: Mapped[int | None] = mapped_column(Integer)
    throughput_fps: Mapped[float | None] = mapped_column(_num(10, 2))
    gpu_utilization_percent: Mapped[float | None] = mapped_column(_num(5, 2))
    memory_usage_mb: Mapped[float | None] = mapped_column(_num(10, 2))
    false_positive_rate: Mapped[float | None] = mapped_column(_num(6, 4))
    false_negative_rate: Mapped[float | None] = mapped_column(_num(6, 4))
    detection_rate: Mapped[float | None] = mapped_column(_num(6, 4))
    cost_per_inference: Mapped[float | None] = mapped_column(_num(10, 4))
    revenue_per_inference: Mapped[float | None] = mapped_column(_num(10, 4))
    roi_percentage: Mapped[float | None] = mapped_column(_num(10, 2))
    created_at: Mapped[datetime] = _created()


class ModelDriftMetric(Base):
    """One drift check of a version: current window against a baseline window."""

    __tablename__ = "model_drift_metrics"
    __table_args__ = (
        Index("idx_drift_metrics_model_timestamp", "model_id", "drift_timestamp"),
        _ARGS,
    )

    id: Mapped[uuid.UUID] = _pk()
    model_id: Mapped[str] = _model_fk(nullable=False)
    model_version: Mapped[str | None] = mapped_column(String(64))
    drift_timestamp: Mapped[datetime] = mapped_column(TimestampTZ, default=utcnow, nullable=False)
    baseline_start: Mapped[datetime | None] = mapped_column(TimestampTZ)
    baseline_end: Mapped[datetime | None] = mapped_column(TimestampTZ)
    window_start: Mapped[datetime | None] = mapped_column(TimestampTZ)
    window_end: Mapped[datetime | None] = mapped_column(TimestampTZ)
    # 0..1 summaries (see analytics/drift.py for how PSI/KS map onto them)
    data_drift_score: Mapped[float | None] = mapped_column(_num(5, 4))
    concept_drift_score: Mapped[float | None] = mapped_column(_num(5, 4))
    model_drift_score: Mapped[float | None] = mapped_column(_num(5, 4))
    drift_type: Mapped[str | None] = mapped_column(String(50))  # covariate, prediction
    drift_severity: Mapped[str | None] = mapped_column(String(20))  # DRIFT_SEVERITIES
    # per feature: {"confidence": {"psi":..,"ks":..,"ks_p":..,"n_baseline":..,"n_current":..}, ...}
    drift_features: Mapped[Any] = mapped_column(JsonB, nullable=True)
    is_alerted: Mapped[bool] = mapped_column(Boolean, default=False, nullable=False)
    alert_threshold: Mapped[float | None] = mapped_column(_num(5, 4))
    created_at: Mapped[datetime] = _created()


class ModelComparisonMetric(Base):
    """Baseline against challenger (filled from an experiment's results)."""

    __tablename__ = "model_comparison_metrics"
    __table_args__ = (_ARGS,)

    id: Mapped[uuid.UUID] = _pk()
    comparison_id: Mapped[str] = mapped_column(String(100), unique=True, nullable=False)
    experiment_id: Mapped[str | None] = mapped_column(String(100))
    baseline_model_id: Mapped[str | None] = _model_fk()
    baseline_version: Mapped[str | None] = mapped_column(String(64))
    challenger_model_id: Mapped[str | None] = _model_fk()
    challenger_version: Mapped[str | None] = mapped_column(String(64))
    accuracy_improvement: Mapped[float | None] = mapped_column(_num(8, 4))
    precision_improvement: Mapped[float | None] = mapped_column(_num(8, 4))
    recall_improvement: Mapped[float | None] = mapped_column(_num(8, 4))
    f1_improvement: Mapped[float | None] = mapped_column(_num(8, 4))
    latency_improvement_percent: Mapped[float | None] = mapped_column(_num(8, 2))
    throughput_improvement_percent: Mapped[float | None] = mapped_column(_num(8, 2))
    cost_improvement_percent: Mapped[float | None] = mapped_column(_num(8, 2))
    is_statistically_significant: Mapped[bool | None] = mapped_column(Boolean)
    p_value: Mapped[float | None] = mapped_column(_num(12, 10))
    confidence_interval: Mapped[Any] = mapped_column(JsonB, nullable=True)
    comparison_status: Mapped[str] = mapped_column(String(20), default="running", nullable=False)
    winner_model_id: Mapped[str | None] = mapped_column(String(100))
    winner_version: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = _created()
    completed_at: Mapped[datetime | None] = mapped_column(TimestampTZ)


# --- A/B experiments ------------------------------------------------------------------------------


class AbExperiment(Base):
    __tablename__ = "ab_testing_experiments"
    __table_args__ = (
        Index("idx_ab_experiments_status", "experiment_status"),
        Index("idx_ab_experiments_model", "model_id", "experiment_status"),
        CheckConstraint(
            "traffic_split_percent >= 0 AND traffic_split_percent <= 100", name="split_percent_range"
        ),
        _ARGS,
    )

    id: Mapped[uuid.UUID] = _pk()
    experiment_id: Mapped[str] = mapped_column(String(100), unique=True, nullable=False)
    experiment_name: Mapped[str] = mapped_column(String(200), nullable=False)
    description: Mapped[str | None] = mapped_column(Text)
    # The slot both arms fill; the document's baseline/challenger model ids are this slot.
    model_id: Mapped[str] = _model_fk(nullable=False)
    baseline_model_id: Mapped[str | None] = _model_fk()
    baseline_version: Mapped[str] = mapped_column(String(64), nullable=False)
    challenger_model_id: Mapped[str | None] = _model_fk()
    challenger_version: Mapped[str] = mapped_column(String(64), nullable=False)
    traffic_split_percent: Mapped[float] = mapped_column(_num(5, 2), default=50, nullable=False)
    traffic_split_method: Mapped[str] = mapped_column(String(50), default="random", nullable=False)
    # Salt of the stable hash: a new experiment reshuffles subjects, the same one never does.
    hash_salt: Mapped[str] = mapped_column(String(64), nullable=False)
    experiment_duration_days: Mapped[int | None] = mapped_column(Integer, default=7)
    minimum_sample_size: Mapped[int] = mapped_column(Integer, default=1000, nullable=False)
    confidence_level: Mapped[float] = mapped_column(_num(4, 3), default=0.95, nullable=False)
    experiment_status: Mapped[str] = mapped_column(String(20), default="draft", nullable=False)
    start_date: Mapped[datetime | None] = mapped_column(TimestampTZ)
    end_date: Mapped[datetime | None] = mapped_column(TimestampTZ)
    success_metrics: Mapped[Any] = mapped_column(JsonB, nullable=True)  # e.g. ["accuracy", "latency_ms"]
    success_thresholds: Mapped[Any] = mapped_column(JsonB, nullable=True)
    created_by: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    created_at: Mapped[datetime] = _created()
    updated_at: Mapped[datetime] = _updated()


class AbAssignment(Base):
    """The arm a subject was given (first assignment per subject; random splits: per request)."""

    __tablename__ = "ab_testing_assignments"
    __table_args__ = (
        UniqueConstraint("experiment_id", "subject_key"),
        Index("idx_ab_assignments_experiment_group", "experiment_id", "assigned_group"),
        _ARGS,
    )

    id: Mapped[uuid.UUID] = _pk()
    experiment_id: Mapped[str] = mapped_column(
        String(100), ForeignKey(f"{SCHEMA}.ab_testing_experiments.experiment_id"), nullable=False
    )
    subject_key: Mapped[str] = mapped_column(String(200), nullable=False)
    tenant_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    user_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)  # the caller's account or API key
    session_id: Mapped[str | None] = mapped_column(String(100))
    assigned_model_id: Mapped[str | None] = _model_fk()
    assigned_version: Mapped[str] = mapped_column(String(64), nullable=False)
    assigned_group: Mapped[str] = mapped_column(String(20), nullable=False)  # ARMS
    assignment_timestamp: Mapped[datetime] = mapped_column(TimestampTZ, default=utcnow, nullable=False)
    assignment_reason: Mapped[str | None] = mapped_column(String(50))  # random, user_hash, session_hash
    assignment_confidence: Mapped[float | None] = mapped_column(_num(4, 3))
    created_at: Mapped[datetime] = _created()


class AbFeedback(Base):
    """An outcome a caller reports for one of its inferences (ground truth for accuracy)."""

    __tablename__ = "ab_testing_feedback"
    __table_args__ = (
        UniqueConstraint("inference_id"),
        Index("idx_ab_feedback_experiment", "experiment_id", "arm"),
        _ARGS,
    )

    id: Mapped[uuid.UUID] = _pk()
    inference_id: Mapped[str] = mapped_column(String(100), nullable=False)
    experiment_id: Mapped[str | None] = mapped_column(String(100))
    arm: Mapped[str | None] = mapped_column(String(20))
    model_id: Mapped[str | None] = mapped_column(String(100))
    model_version: Mapped[str | None] = mapped_column(String(64))
    tenant_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    correct: Mapped[bool | None] = mapped_column(Boolean)
    value: Mapped[float | None] = mapped_column(_num(16, 6))  # a numeric outcome, |value| <= 1e8
    created_at: Mapped[datetime] = _created()


class AbResult(Base):
    """One arm's figures at one computation of an experiment's results."""

    __tablename__ = "ab_testing_results"
    __table_args__ = (
        Index("idx_ab_results_experiment_group", "experiment_id", "group_name"),
        _ARGS,
    )

    id: Mapped[uuid.UUID] = _pk()
    experiment_id: Mapped[str] = mapped_column(
        String(100), ForeignKey(f"{SCHEMA}.ab_testing_experiments.experiment_id"), nullable=False
    )
    result_timestamp: Mapped[datetime] = mapped_column(TimestampTZ, default=utcnow, nullable=False)
    group_name: Mapped[str] = mapped_column(String(20), nullable=False)
    sample_size: Mapped[int | None] = mapped_column(Integer)
    accuracy_score: Mapped[float | None] = mapped_column(_num(6, 4))
    precision_score: Mapped[float | None] = mapped_column(_num(6, 4))
    recall_score: Mapped[float | None] = mapped_column(_num(6, 4))
    f1_score: Mapped[float | None] = mapped_column(_num(6, 4))
    conversion_rate: Mapped[float | None] = mapped_column(_num(6, 4))
    revenue_per_user: Mapped[float | None] = mapped_column(_num(10, 2))
    cost_per_user: Mapped[float | None] = mapped_column(_num(10, 2))
    # every metric of the arm: {"accuracy": {...}, "latency_ms": {...}, "confidence": {...}}
    metrics: Mapped[Any] = mapped_column(JsonB, nullable=True)
    is_statistically_significant: Mapped[bool | None] = mapped_column(Boolean)
    p_value: Mapped[float | None] = mapped_column(_num(12, 10))
    confidence_interval: Mapped[Any] = mapped_column(JsonB, nullable=True)
    created_at: Mapped[datetime] = _created()


class AbConclusion(Base):
    __tablename__ = "ab_testing_conclusions"
    __table_args__ = (
        Index("idx_ab_conclusions_experiment", "experiment_id"),
        _ARGS,
    )

    id: Mapped[uuid.UUID] = _pk()
    experiment_id: Mapped[str] = mapped_column(
        String(100), ForeignKey(f"{SCHEMA}.ab_testing_experiments.experiment_id"), nullable=False
    )
    winner_model_id: Mapped[str | None] = mapped_column(String(100))
    winner_version: Mapped[str | None] = mapped_column(String(64))
    conclusion_reason: Mapped[str | None] = mapped_column(Text)
    recommendation: Mapped[str] = mapped_column(String(50), nullable=False)  # RECOMMENDATIONS
    expected_improvement_percent: Mapped[float | None] = mapped_column(_num(8, 2))
    confidence_level: Mapped[float | None] = mapped_column(_num(4, 3))
    risk_assessment: Mapped[str | None] = mapped_column(String(20))
    deployment_strategy: Mapped[str | None] = mapped_column(String(50))
    deployment_timeline_days: Mapped[int | None] = mapped_column(Integer)
    reviewed_by: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    reviewed_at: Mapped[datetime | None] = mapped_column(TimestampTZ)
    review_notes: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = _created()
