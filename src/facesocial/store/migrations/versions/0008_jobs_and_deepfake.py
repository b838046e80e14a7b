"""Durable jobs (core.jobs); deepfake analyses per tenant, per-person results, content features

``core.jobs`` is the queue shared by every asynchronous service (src/facesocial/jobs/). The
deepfake tables of revision 0002 gain the tenant and key of the caller (isolation), the
per-person (track) results and signals of an analysis, the error of a failed one, per-face rows
of a frame, and ``content_features``: the SQL source of the ``deepfake_features`` vector index.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-01 06:30:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSONB = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def _schema(name: str) -> str | None:
    # Alembic renders ALTER statements itself (no schema_translate_map): SQLite has no schemas.
    return None if op.get_bind().dialect.name == "sqlite" else name


def upgrade() -> None:
    op.create_table(
        "jobs",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("job_id", sa.String(length=64), nullable=False),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("api_key_id", sa.Uuid(), nullable=True),
        sa.Column("kind", sa.String(length=50), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("priority", sa.Integer(), nullable=False),
        sa.Column("payload", JSONB, nullable=True),
        sa.Column("result", JSONB, nullable=True),
        sa.Column("progress_percentage", sa.Numeric(precision=5, scale=2, asdecimal=False), nullable=False),
        sa.Column("estimated_completion", sa.DateTime(timezone=True), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("max_attempts", sa.Integer(), nullable=False),
        sa.Column("worker_id", sa.String(length=100), nullable=True),
        sa.Column("lease_expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("error_code", sa.String(length=50), nullable=True),
        sa.Column("error_message", sa.Text(), nullable=True),
        sa.Column("callback_url", sa.Text(), nullable=True),
        sa.Column("callback_attempts", sa.Integer(), nullable=False),
        sa.Column("callback_next_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("callback_delivered_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("callback_error", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("dispatched_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("completed_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_jobs")),
        sa.UniqueConstraint("job_id", name=op.f("uq_jobs_job_id")),
        schema="core",
    )
    op.create_index("idx_jobs_queue", "jobs", ["status", "priority", "created_at"], schema="core")
    op.create_index("idx_jobs_tenant_created", "jobs", ["tenant_id", "created_at"], schema="core")
    op.create_index("idx_jobs_lease", "jobs", ["status", "lease_expires_at"], schema="core")
    op.create_index("idx_jobs_callback_next", "jobs", ["callback_next_at"], schema="core")

    with op.batch_alter_table("deepfake_analyses", schema=_schema("deepfake_detection")) as batch:
        batch.add_column(sa.Column("tenant_id", sa.Uuid(), nullable=True))
        batch.add_column(sa.Column("api_key_id", sa.Uuid(), nullable=True))
        batch.add_column(sa.Column("person_results", JSONB, nullable=True))
        batch.add_column(sa.Column("signals", JSONB, nullable=True))
        batch.add_column(sa.Column("error_code", sa.String(length=50), nullable=True))
        batch.add_column(sa.Column("error_message", sa.Text(), nullable=True))
        batch.create_index("ix_deepfake_analyses_tenant_id", ["tenant_id"])
    with op.batch_alter_table("frame_analyses", schema=_schema("deepfake_detection")) as batch:
        batch.add_column(sa.Column("faces", JSONB, nullable=True))

    op.create_table(
        "content_features",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("analysis_id", sa.Uuid(), nullable=False),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("content_hash", sa.String(length=64), nullable=False),
        sa.Column("features", sa.LargeBinary(), nullable=False),
        sa.Column("is_deepfake", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["analysis_id"],
            ["deepfake_detection.deepfake_analyses.id"],
            name=op.f("fk_content_features_analysis_id_deepfake_analyses"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_content_features")),
        schema="deepfake_detection",
    )
    op.create_index(
        "idx_content_features_tenant", "content_features", ["tenant_id", "is_deepfake"],
        schema="deepfake_detection",
    )
    op.create_index(
        "ix_content_features_analysis_id", "content_features", ["analysis_id"], schema="deepfake_detection"
    )


def downgrade() -> None:
    op.drop_table("content_features", schema="deepfake_detection")
    with op.batch_alter_table("frame_analyses", schema=_schema("deepfake_detection")) as batch:
        batch.drop_column("faces")
    with op.batch_alter_table("deepfake_analyses", schema=_schema("deepfake_detection")) as batch:
        batch.drop_index("ix_deepfake_analyses_tenant_id")
        for column in ("error_message", "error_code", "signals", "person_results", "api_key_id", "tenant_id"):
            batch.drop_column(column)
    op.drop_table("jobs", schema="core")
