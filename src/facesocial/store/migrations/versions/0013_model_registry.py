"""Model registry, deployments, inference records, performance, drift and A/B experiments
(document 002)

Schema ``model_registry``, the tables of :mod:`facesocial.store.tables_registry`:
``registered_models`` (one row per serving slot: document 002's ``ai_models``, renamed because
``config.ai_models`` exists), ``model_versions`` (one per model file that can fill a slot, with
its stage and canary share), ``model_deployment_pipeline`` (the append-only history of stage
changes, canaries, promotions and rollbacks), ``model_inference_results`` (one row per
inference of any service), ``model_performance_metrics``, ``model_drift_metrics``,
``model_comparison_metrics`` and the A/B tables (``ab_testing_experiments``,
``ab_testing_assignments``, ``ab_testing_feedback``, ``ab_testing_results``,
``ab_testing_conclusions``). ``model_training_history``, ``model_version_control`` and
``model_branches`` exist and stay empty (training is offline; versions come from packages).
docs/data-model.md lists the deviations from the document.

The rows of the slots and versions are written on every start by
:mod:`facesocial.domains.registry.sync`, not here: a migration creates structure only.

This file is self-contained (the table definitions are frozen here, not imported): a
migration must keep doing what it did when it was written.

Revision ID: 0013_model_registry
Revises: 0012_attention
Create Date: 2026-12-01 18:30:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0013_model_registry"
down_revision: str | None = "0012_attention"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSONB = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")
SCHEMA = "model_registry"

# Creation order (foreign keys point backwards); downgrade drops in reverse.
TABLES = (
    "registered_models",
    "model_versions",
    "model_training_history",
    "model_version_control",
    "model_branches",
    "model_deployment_pipeline",
    "model_inference_results",
    "model_performance_metrics",
    "model_drift_metrics",
    "model_comparison_metrics",
    "ab_testing_experiments",
    "ab_testing_assignments",
    "ab_testing_feedback",
    "ab_testing_results",
    "ab_testing_conclusions",
)


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"CREATE SCHEMA IF NOT EXISTS {SCHEMA}")
    op.create_table(
        "registered_models",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("model_id", sa.String(length=100), nullable=False),
        sa.Column("model_name", sa.String(length=200), nullable=False),
        sa.Column("model_type", sa.String(length=50), nullable=False),
        sa.Column("model_description", sa.Text(), nullable=True),
        sa.Column("model_version", sa.String(length=64), nullable=True),
        sa.Column("model_framework", sa.String(length=50), nullable=True),
        sa.Column("model_format", sa.String(length=50), nullable=True),
        sa.Column("model_config", JSONB, nullable=True),
        sa.Column("model_parameters", sa.Integer(), nullable=True),
        sa.Column("model_size_mb", sa.Numeric(precision=10, scale=2, asdecimal=False), nullable=True),
        sa.Column("accuracy_score", sa.Numeric(precision=6, scale=4, asdecimal=False), nullable=True),
        sa.Column("precision_score", sa.Numeric(precision=6, scale=4, asdecimal=False), nullable=True),
        sa.Column("recall_score", sa.Numeric(precision=6, scale=4, asdecimal=False), nullable=True),
        sa.Column("f1_score", sa.Numeric(precision=6, scale=4, asdecimal=False), nullable=True),
        sa.Column("is_active", sa.Boolean(), nullable=False),
        sa.Column("is_production", sa.Boolean(), nullable=False),
        sa.Column("deployment_status", sa.String(length=20), nullable=False),
        sa.Column("model_path", sa.String(length=500), nullable=True),
        sa.Column("model_checksum", sa.String(length=64), nullable=True),
        sa.Column("model_metadata_path", sa.String(length=500), nullable=True),
        sa.Column("created_by", sa.Uuid(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_registered_models")),
        sa.UniqueConstraint("model_id", name=op.f("uq_registered_models_model_id")),
        schema=SCHEMA,
    )
    op.create_index(
        "idx_registered_models_type", "registered_models", ["model_type"], unique=False, schema=SCHEMA
    )
    op.create_table(
        "model_versions",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("model_id", sa.String(length=100), nullable=False),
        sa.Column("version_number", sa.String(length=64), nullable=False),
        sa.Column("version_description", sa.Text(), nullable=True),
        sa.Column("version_changes", sa.Text(), nullable=True),
        sa.Column("version_commit_hash", sa.String(length=64), nullable=True),
        sa.Column("model_file_path", sa.String(length=500), nullable=True),
        sa.Column("model_file_size_mb", sa.Numeric(precision=10, scale=2, asdecimal=False), nullable=True),
        sa.Column("model_file_checksum", sa.String(length=64), nullable=True),
        sa.Column("source_package", sa.String(length=200), nullable=True),
        sa.Column("licence", sa.String(length=200), nullable=True),
        sa.Column("training_dataset", sa.String(length=200), nullable=True),
        sa.Column("training_metrics", JSONB, nullable=True),
        sa.Column(
            "training_duration_hours", sa.Numeric(precision=8, scale=2, asdecimal=False), nullable=True
        ),
        sa.Column("validation_accuracy", sa.Numeric(precision=6, scale=4, asdecimal=False), nullable=True),
        sa.Column("validation_precision", sa.Numeric(precision=6, scale=4, asdecimal=False), nullable=True),
        sa.Column("validation_recall", sa.Numeric(precision=6, scale=4, asdecimal=False), nullable=True),
        sa.Column("validation_f1", sa.Numeric(precision=6, scale=4, asdecimal=False), nullable=True),
        sa.Column("validation_metrics", JSONB, nullable=True),
        sa.Column("deployment_timestamp", sa.DateTime(timezone=True), nullable=True),
        sa.Column("deployment_environment", sa.String(length=50), nullable=True),
        sa.Column("deployment_status", sa.String(length=20), nullable=False),
        sa.Column("canary_percent", sa.Numeric(precision=5, scale=2, asdecimal=False), nullable=True),
        sa.Column("is_installed", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "canary_percent IS NULL OR (canary_percent >= 0 AND canary_percent <= 100)",
            name="canary_percent_range",
        ),
        sa.ForeignKeyConstraint(
            ["model_id"],
            [f"{SCHEMA}.registered_models.model_id"],
            name=op.f("fk_model_versions_model_id_registered_models"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_model_versions")),
        sa.UniqueConstraint(
            "model_id", "version_number", name=op.f("uq_model_versions_model_id_version_number")
        ),
        schema=SCHEMA,
    )
    op.create_index(
        "idx_model_versions_deployment",
        "model_versions",
        ["deployment_status", "deployment_timestamp"],
        unique=False,
        schema=SCHEMA,
    )
    op.create_table(
        "model_training_history",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("model_id", sa.String(length=100), nullable=True),
        sa.Column("training_run_id", sa.String(length=100), nullable=False),
        sa.Column("training_config", JSONB, nullable=True),
        sa.Column("dataset_config", JSONB, nullable=True),
        sa.Column("training_accuracy", sa.Numeric(precision=6, scale=4, asdecimal=False), nullable=True),
        sa.Column("training_loss", sa.Numeric(precision=10, scale=4, asdecimal=False), nullable=True),
        sa.Column("validation_accuracy", sa.Numeric(precision=6, scale=4, asdecimal=False), nullable=True),
        sa.Column("validation_loss", sa.Numeric(precision=10, scale=4, asdecimal=False), nullable=True),
        sa.Column("epochs_completed", sa.Integer(), nullable=True),
        sa.Column("total_epochs", sa.Integer(), nullable=True),
        sa.Column(
            "training_duration_hours", sa.Numeric(precision=8, scale=2, asdecimal=False), nullable=True
        ),
        sa.Column("training_status", sa.String(length=20), nullable=False),
        sa.Column("error_message", sa.Text(), nullable=True),
        sa.Column("gpu_usage_percent", sa.Numeric(precision=5, scale=2, asdecimal=False), nullable=True),
        sa.Column("memory_usage_gb", sa.Numeric(precision=8, scale=2, asdecimal=False), nullable=True),
        sa.Column("cpu_usage_percent", sa.Numeric(precision=5, scale=2, asdecimal=False), nullable=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("completed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["model_id"],
            [f"{SCHEMA}.registered_models.model_id"],
            name=op.f("fk_model_training_history_model_id_registered_models"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_model_training_history")),
        sa.UniqueConstraint("training_run_id", name=op.f("uq_model_training_history_training_run_id")),
        schema=SCHEMA,
    )
    op.create_table(
        "model_version_control",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("model_id", sa.String(length=100), nullable=True),
        sa.Column("version_number", sa.String(length=64), nullable=False),
        sa.Column("parent_version", sa.String(length=64), nullable=True),
        sa.Column("branch_name", sa.String(length=100), nullable=True),
        sa.Column("commit_hash", sa.String(length=64), nullable=True),
        sa.Column("commit_message", sa.Text(), nullable=True),
        sa.Column("changes_summary", sa.Text(), nullable=True),
        sa.Column("changes_details", JSONB, nullable=True),
        sa.Column("files_changed", sa.Integer(), nullable=True),
        sa.Column("lines_added", sa.Integer(), nullable=True),
        sa.Column("lines_deleted", sa.Integer(), nullable=True),
        sa.Column("author_name", sa.String(length=200), nullable=True),
        sa.Column("author_email", sa.String(length=200), nullable=True),
        sa.Column("commit_timestamp", sa.DateTime(timezone=True), nullable=True),
        sa.Column("review_status", sa.String(length=20), nullable=False),
        sa.Column("reviewed_by", sa.Uuid(), nullable=True),
        sa.Column("reviewed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("review_notes", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["model_id"],
            [f"{SCHEMA}.registered_models.model_id"],
            name=op.f("fk_model_version_control_model_id_registered_models"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_model_version_control")),
        schema=SCHEMA,
    )
    op.create_table(
        "model_branches",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("branch_name", sa.String(length=100), nullable=False),
        sa.Column("base_version", sa.String(length=64), nullable=False),
        sa.Column("branch_description", sa.Text(), nullable=True),
        sa.Column("branch_purpose", sa.String(length=50), nullable=True),
        sa.Column("branch_status", sa.String(length=20), nullable=False),
        sa.Column("created_by", sa.Uuid(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("merged_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("merged_to", sa.String(length=100), nullable=True),
        sa.ForeignKeyConstraint(
            ["merged_to"],
            [f"{SCHEMA}.model_branches.branch_name"],
            name=op.f("fk_model_branches_merged_to_model_branches"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_model_branches")),
        sa.UniqueConstraint("branch_name", name=op.f("uq_model_branches_branch_name")),
        schema=SCHEMA,
    )
    op.create_table(
        "model_deployment_pipeline",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("pipeline_id", sa.String(length=100), nullable=False),
        sa.Column("model_id", sa.String(length=100), nullable=False),
        sa.Column("version_number", sa.String(length=64), nullable=False),
        sa.Column("pipeline_stages", JSONB, nullable=True),
        sa.Column("current_stage", sa.String(length=50), nullable=True),
        sa.Column("stage_status", sa.String(length=20), nullable=False),
        sa.Column("deployment_config", JSONB, nullable=True),
        sa.Column("environment_config", JSONB, nullable=True),
        sa.Column("pipeline_status", sa.String(length=20), nullable=False),
        sa.Column("pipeline_started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("pipeline_completed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("can_rollback", sa.Boolean(), nullable=False),
        sa.Column("rollback_version", sa.String(length=64), nullable=True),
        sa.Column("rollback_reason", sa.Text(), nullable=True),
        sa.Column("created_by", sa.Uuid(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["model_id"],
            [f"{SCHEMA}.registered_models.model_id"],
            name=op.f("fk_model_deployment_pipeline_model_id_registered_models"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_model_deployment_pipeline")),
        sa.UniqueConstraint("pipeline_id", name=op.f("uq_model_deployment_pipeline_pipeline_id")),
        schema=SCHEMA,
    )
    op.create_index(
        "idx_deployment_pipeline_model",
        "model_deployment_pipeline",
        ["model_id", "created_at"],
        unique=False,
        schema=SCHEMA,
    )
    op.create_table(
        "model_inference_results",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("inference_id", sa.String(length=100), nullable=False),
        sa.Column("model_id", sa.String(length=100), nullable=False),
        sa.Column("model_version", sa.String(length=64), nullable=False),
        sa.Column("tenant_id", sa.Uuid(), nullable=True),
        sa.Column("service", sa.String(length=50), nullable=True),
        sa.Column("route", sa.String(length=20), nullable=False),
        sa.Column("experiment_id", sa.String(length=100), nullable=True),
        sa.Column("arm", sa.String(length=20), nullable=True),
        sa.Column("input_data_hash", sa.String(length=64), nullable=True),
        sa.Column("input_metadata", JSONB, nullable=True),
        sa.Column("input_timestamp", sa.DateTime(timezone=True), nullable=False),
        sa.Column("inference_results", JSONB, nullable=False),
        sa.Column("confidence_scores", JSONB, nullable=True),
        sa.Column("processing_time_ms", sa.Integer(), nullable=True),
        sa.Column("result_quality_score", sa.Numeric(precision=5, scale=4, asdecimal=False), nullable=True),
        sa.Column("result_validation_status", sa.String(length=20), nullable=False),
        sa.Column(
            "gpu_utilization_percent", sa.Numeric(precision=5, scale=2, asdecimal=False), nullable=True
        ),
        sa.Column("memory_usage_mb", sa.Numeric(precision=10, scale=2, asdecimal=False), nullable=True),
        sa.Column("batch_size", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["model_id"],
            [f"{SCHEMA}.registered_models.model_id"],
            name=op.f("fk_model_inference_results_model_id_registered_models"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_model_inference_results")),
        sa.UniqueConstraint("inference_id", name=op.f("uq_model_inference_results_inference_id")),
        schema=SCHEMA,
    )
    op.create_index(
        "idx_inference_results_experiment",
        "model_inference_results",
        ["experiment_id", "arm"],
        unique=False,
        schema=SCHEMA,
    )
    op.create_index(
        "idx_inference_results_model_timestamp",
        "model_inference_results",
        ["model_id", "input_timestamp"],
        unique=False,
        schema=SCHEMA,
    )
    op.create_index(
        "idx_inference_results_tenant",
        "model_inference_results",
        ["tenant_id", "input_timestamp"],
        unique=False,
        schema=SCHEMA,
    )
    op.create_index(
        "idx_inference_results_version_timestamp",
        "model_inference_results",
        ["model_id", "model_version", "input_timestamp"],
        unique=False,
        schema=SCHEMA,
    )
    op.create_table(
        "model_performance_metrics",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("model_id", sa.String(length=100), nullable=False),
        sa.Column("model_version", sa.String(length=64), nullable=False),
        sa.Column("metric_timestamp", sa.DateTime(timezone=True), nullable=False),
        sa.Column("window_start", sa.DateTime(timezone=True), nullable=True),
        sa.Column("window_end", sa.DateTime(timezone=True), nullable=True),
        sa.Column("sample_size", sa.Integer(), nullable=True),
        sa.Column("accuracy_score", sa.Numeric(precision=6, scale=4, asdecimal=False), nullable=True),
        sa.Column("precision_score", sa.Numeric(precision=6, scale=4, asdecimal=False), nullable=True),
        sa.Column("recall_score", sa.Numeric(precision=6, scale=4, asdecimal=False), nullable=True),
        sa.Column("f1_score", sa.Numeric(precision=6, scale=4, asdecimal=False), nullable=True),
        sa.Column("inference_latency_ms", sa.Integer(), nullable=True),
        sa.Column("latency_p95_ms", sa.Integer(), nullable=True),
        sa.Column("throughput_fps", sa.Numeric(precision=10, scale=2, asdecimal=False), nullable=True),
        sa.Column(
            "gpu_utilization_percent", sa.Numeric(precision=5, scale=2, asdecimal=False), nullable=True
        ),
        sa.Column("memory_usage_mb", sa.Numeric(precision=10, scale=2, asdecimal=False), nullable=True),
        sa.Column("false_positive_rate", sa.Numeric(precision=6, scale=4, asdecimal=False), nullable=True),
        sa.Column("false_negative_rate", sa.Numeric(precision=6, scale=4, asdecimal=False), nullable=True),
        sa.Column("detection_rate", sa.Numeric(precision=6, scale=4, asdecimal=False), nullable=True),
        sa.Column("cost_per_inference", sa.Numeric(precision=10, scale=4, asdecimal=False), nullable=True),
        sa.Column("revenue_per_inference", sa.Numeric(precision=10, scale=4, asdecimal=False), nullable=True),
        sa.Column("roi_percentage", sa.Numeric(precision=10, scale=2, asdecimal=False), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["model_id"],
            [f"{SCHEMA}.registered_models.model_id"],
            name=op.f("fk_model_performance_metrics_model_id_registered_models"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_model_performance_metrics")),
        schema=SCHEMA,
    )
    op.create_index(
        "idx_performance_metrics_model_timestamp",
        "model_performance_metrics",
        ["model_id", "metric_timestamp"],
        unique=False,
        schema=SCHEMA,
    )
    op.create_table(
        "model_drift_metrics",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("model_id", sa.String(length=100), nullable=False),
        sa.Column("model_version", sa.String(length=64), nullable=True),
        sa.Column("drift_timestamp", sa.DateTime(timezone=True), nullable=False),
        sa.Column("baseline_start", sa.DateTime(timezone=True), nullable=True),
        sa.Column("baseline_end", sa.DateTime(timezone=True), nullable=True),
        sa.Column("window_start", sa.DateTime(timezone=True), nullable=True),
        sa.Column("window_end", sa.DateTime(timezone=True), nullable=True),
        sa.Column("data_drift_score", sa.Numeric(precision=5, scale=4, asdecimal=False), nullable=True),
        sa.Column("concept_drift_score", sa.Numeric(precision=5, scale=4, asdecimal=False), nullable=True),
        sa.Column("model_drift_score", sa.Numeric(precision=5, scale=4, asdecimal=False), nullable=True),
        sa.Column("drift_type", sa.String(length=50), nullable=True),
        sa.Column("drift_severity", sa.String(length=20), nullable=True),
        sa.Column("drift_features", JSONB, nullable=True),
        sa.Column("is_alerted", sa.Boolean(), nullable=False),
        sa.Column("alert_threshold", sa.Numeric(precision=5, scale=4, asdecimal=False), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["model_id"],
            [f"{SCHEMA}.registered_models.model_id"],
            name=op.f("fk_model_drift_metrics_model_id_registered_models"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_model_drift_metrics")),
        schema=SCHEMA,
    )
    op.create_index(
        "idx_drift_metrics_model_timestamp",
        "model_drift_metrics",
        ["model_id", "drift_timestamp"],
        unique=False,
        schema=SCHEMA,
    )
    op.create_table(
        "model_comparison_metrics",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("comparison_id", sa.String(length=100), nullable=False),
        sa.Column("experiment_id", sa.String(length=100), nullable=True),
        sa.Column("baseline_model_id", sa.String(length=100), nullable=True),
        sa.Column("baseline_version", sa.String(length=64), nullable=True),
        sa.Column("challenger_model_id", sa.String(length=100), nullable=True),
        sa.Column("challenger_version", sa.String(length=64), nullable=True),
        sa.Column("accuracy_improvement", sa.Numeric(precision=8, scale=4, asdecimal=False), nullable=True),
        sa.Column("precision_improvement", sa.Numeric(precision=8, scale=4, asdecimal=False), nullable=True),
        sa.Column("recall_improvement", sa.Numeric(precision=8, scale=4, asdecimal=False), nullable=True),
        sa.Column("f1_improvement", sa.Numeric(precision=8, scale=4, asdecimal=False), nullable=True),
        sa.Column(
            "latency_improvement_percent", sa.Numeric(precision=8, scale=2, asdecimal=False), nullable=True
        ),
        sa.Column(
            "throughput_improvement_percent", sa.Numeric(precision=8, scale=2, asdecimal=False), nullable=True
        ),
        sa.Column(
            "cost_improvement_percent", sa.Numeric(precision=8, scale=2, asdecimal=False), nullable=True
        ),
        sa.Column("is_statistically_significant", sa.Boolean(), nullable=True),
        sa.Column("p_value", sa.Numeric(precision=12, scale=10, asdecimal=False), nullable=True),
        sa.Column("confidence_interval", JSONB, nullable=True),
        sa.Column("comparison_status", sa.String(length=20), nullable=False),
        sa.Column("winner_model_id", sa.String(length=100), nullable=True),
        sa.Column("winner_version", sa.String(length=64), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("completed_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["baseline_model_id"],
            [f"{SCHEMA}.registered_models.model_id"],
            name=op.f("fk_model_comparison_metrics_baseline_model_id_registered_models"),
        ),
        sa.ForeignKeyConstraint(
            ["challenger_model_id"],
            [f"{SCHEMA}.registered_models.model_id"],
            name=op.f("fk_model_comparison_metrics_challenger_model_id_registered_models"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_model_comparison_metrics")),
        sa.UniqueConstraint("comparison_id", name=op.f("uq_model_comparison_metrics_comparison_id")),
        schema=SCHEMA,
    )
    op.create_table(
        "ab_testing_experiments",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("experiment_id", sa.String(length=100), nullable=False),
        sa.Column("experiment_name", sa.String(length=200), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("model_id", sa.String(length=100), nullable=False),
        sa.Column("baseline_model_id", sa.String(length=100), nullable=True),
        sa.Column("baseline_version", sa.String(length=64), nullable=False),
        sa.Column("challenger_model_id", sa.String(length=100), nullable=True),
        sa.Column("challenger_version", sa.String(length=64), nullable=False),
        sa.Column("traffic_split_percent", sa.Numeric(precision=5, scale=2, asdecimal=False), nullable=False),
        sa.Column("traffic_split_method", sa.String(length=50), nullable=False),
        sa.Column("hash_salt", sa.String(length=64), nullable=False),
        sa.Column("experiment_duration_days", sa.Integer(), nullable=True),
        sa.Column("minimum_sample_size", sa.Integer(), nullable=False),
        sa.Column("confidence_level", sa.Numeric(precision=4, scale=3, asdecimal=False), nullable=False),
        sa.Column("experiment_status", sa.String(length=20), nullable=False),
        sa.Column("start_date", sa.DateTime(timezone=True), nullable=True),
        sa.Column("end_date", sa.DateTime(timezone=True), nullable=True),
        sa.Column("success_metrics", JSONB, nullable=True),
        sa.Column("success_thresholds", JSONB, nullable=True),
        sa.Column("created_by", sa.Uuid(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "traffic_split_percent >= 0 AND traffic_split_percent <= 100", name="split_percent_range"
        ),
        sa.ForeignKeyConstraint(
            ["model_id"],
            [f"{SCHEMA}.registered_models.model_id"],
            name=op.f("fk_ab_testing_experiments_model_id_registered_models"),
        ),
        sa.ForeignKeyConstraint(
            ["challenger_model_id"],
            [f"{SCHEMA}.registered_models.model_id"],
            name=op.f("fk_ab_testing_experiments_challenger_model_id_registered_models"),
        ),
        sa.ForeignKeyConstraint(
            ["baseline_model_id"],
            [f"{SCHEMA}.registered_models.model_id"],
            name=op.f("fk_ab_testing_experiments_baseline_model_id_registered_models"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ab_testing_experiments")),
        sa.UniqueConstraint("experiment_id", name=op.f("uq_ab_testing_experiments_experiment_id")),
        schema=SCHEMA,
    )
    op.create_index(
        "idx_ab_experiments_model",
        "ab_testing_experiments",
        ["model_id", "experiment_status"],
        unique=False,
        schema=SCHEMA,
    )
    op.create_index(
        "idx_ab_experiments_status",
        "ab_testing_experiments",
        ["experiment_status"],
        unique=False,
        schema=SCHEMA,
    )
    op.create_table(
        "ab_testing_assignments",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("experiment_id", sa.String(length=100), nullable=False),
        sa.Column("subject_key", sa.String(length=200), nullable=False),
        sa.Column("tenant_id", sa.Uuid(), nullable=True),
        sa.Column("user_id", sa.Uuid(), nullable=True),
        sa.Column("session_id", sa.String(length=100), nullable=True),
        sa.Column("assigned_model_id", sa.String(length=100), nullable=True),
        sa.Column("assigned_version", sa.String(length=64), nullable=False),
        sa.Column("assigned_group", sa.String(length=20), nullable=False),
        sa.Column("assignment_timestamp", sa.DateTime(timezone=True), nullable=False),
        sa.Column("assignment_reason", sa.String(length=50), nullable=True),
        sa.Column("assignment_confidence", sa.Numeric(precision=4, scale=3, asdecimal=False), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["experiment_id"],
            [f"{SCHEMA}.ab_testing_experiments.experiment_id"],
            name=op.f("fk_ab_testing_assignments_experiment_id_ab_testing_experiments"),
        ),
        sa.ForeignKeyConstraint(
            ["assigned_model_id"],
            [f"{SCHEMA}.registered_models.model_id"],
            name=op.f("fk_ab_testing_assignments_assigned_model_id_registered_models"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ab_testing_assignments")),
        sa.UniqueConstraint(
            "experiment_id", "subject_key", name=op.f("uq_ab_testing_assignments_experiment_id_subject_key")
        ),
        schema=SCHEMA,
    )
    op.create_index(
        "idx_ab_assignments_experiment_group",
        "ab_testing_assignments",
        ["experiment_id", "assigned_group"],
        unique=False,
        schema=SCHEMA,
    )
    op.create_table(
        "ab_testing_feedback",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("inference_id", sa.String(length=100), nullable=False),
        sa.Column("experiment_id", sa.String(length=100), nullable=True),
        sa.Column("arm", sa.String(length=20), nullable=True),
        sa.Column("model_id", sa.String(length=100), nullable=True),
        sa.Column("model_version", sa.String(length=64), nullable=True),
        sa.Column("tenant_id", sa.Uuid(), nullable=True),
        sa.Column("correct", sa.Boolean(), nullable=True),
        sa.Column("value", sa.Numeric(precision=16, scale=6, asdecimal=False), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ab_testing_feedback")),
        sa.UniqueConstraint("inference_id", name=op.f("uq_ab_testing_feedback_inference_id")),
        schema=SCHEMA,
    )
    op.create_index(
        "idx_ab_feedback_experiment",
        "ab_testing_feedback",
        ["experiment_id", "arm"],
        unique=False,
        schema=SCHEMA,
    )
    op.create_table(
        "ab_testing_results",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("experiment_id", sa.String(length=100), nullable=False),
        sa.Column("result_timestamp", sa.DateTime(timezone=True), nullable=False),
        sa.Column("group_name", sa.String(length=20), nullable=False),
        sa.Column("sample_size", sa.Integer(), nullable=True),
        sa.Column("accuracy_score", sa.Numeric(precision=6, scale=4, asdecimal=False), nullable=True),
        sa.Column("precision_score", sa.Numeric(precision=6, scale=4, asdecimal=False), nullable=True),
        sa.Column("recall_score", sa.Numeric(precision=6, scale=4, asdecimal=False), nullable=True),
        sa.Column("f1_score", sa.Numeric(precision=6, scale=4, asdecimal=False), nullable=True),
        sa.Column("conversion_rate", sa.Numeric(precision=6, scale=4, asdecimal=False), nullable=True),
        sa.Column("revenue_per_user", sa.Numeric(precision=10, scale=2, asdecimal=False), nullable=True),
        sa.Column("cost_per_user", sa.Numeric(precision=10, scale=2, asdecimal=False), nullable=True),
        sa.Column("metrics", JSONB, nullable=True),
        sa.Column("is_statistically_significant", sa.Boolean(), nullable=True),
        sa.Column("p_value", sa.Numeric(precision=12, scale=10, asdecimal=False), nullable=True),
        sa.Column("confidence_interval", JSONB, nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["experiment_id"],
            [f"{SCHEMA}.ab_testing_experiments.experiment_id"],
            name=op.f("fk_ab_testing_results_experiment_id_ab_testing_experiments"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ab_testing_results")),
        schema=SCHEMA,
    )
    op.create_index(
        "idx_ab_results_experiment_group",
        "ab_testing_results",
        ["experiment_id", "group_name"],
        unique=False,
        schema=SCHEMA,
    )
    op.create_table(
        "ab_testing_conclusions",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("experiment_id", sa.String(length=100), nullable=False),
        sa.Column("winner_model_id", sa.String(length=100), nullable=True),
        sa.Column("winner_version", sa.String(length=64), nullable=True),
        sa.Column("conclusion_reason", sa.Text(), nullable=True),
        sa.Column("recommendation", sa.String(length=50), nullable=False),
        sa.Column(
            "expected_improvement_percent", sa.Numeric(precision=8, scale=2, asdecimal=False), nullable=True
        ),
        sa.Column("confidence_level", sa.Numeric(precision=4, scale=3, asdecimal=False), nullable=True),
        sa.Column("risk_assessment", sa.String(length=20), nullable=True),
        sa.Column("deployment_strategy", sa.String(length=50), nullable=True),
        sa.Column("deployment_timeline_days", sa.Integer(), nullable=True),
        sa.Column("reviewed_by", sa.Uuid(), nullable=True),
        sa.Column("reviewed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("review_notes", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["experiment_id"],
            [f"{SCHEMA}.ab_testing_experiments.experiment_id"],
            name=op.f("fk_ab_testing_conclusions_experiment_id_ab_testing_experiments"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ab_testing_conclusions")),
        schema=SCHEMA,
    )
    op.create_index(
        "idx_ab_conclusions_experiment",
        "ab_testing_conclusions",
        ["experiment_id"],
        unique=False,
        schema=SCHEMA,
    )


def downgrade() -> None:
    for table in reversed(TABLES):
        op.drop_table(table, schema=SCHEMA)
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"DROP SCHEMA IF EXISTS {SCHEMA}")
