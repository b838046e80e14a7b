"""AI-generated image detection (SkyGate, document 003): uploads, results, methods, metadata, images

Schema ``ai_detection``: ``uploads`` (without the image itself), ``detection_results`` (one per
upload), ``detection_methods`` (the ensemble's weights; rows are seeded by the service from
forensics/ai_image/report.py, so the defaults live in one place), ``method_results``,
``detection_metadata`` (document 003's MongoDB document as JSON/JSONB) and ``report_images``
(thumbnail, ELA and heatmap images of a report). docs/data-model.md lists the deviations.

Revision ID: 0011_ai_detection
Revises: 0010_accounts
Create Date: 2026-12-01 16:00:00
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0011_ai_detection"
down_revision: str | None = "0010_accounts"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSONB = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")
SCHEMA = "ai_detection"

def _ts() -> sa.Column[datetime]:
    return sa.Column("created_at", sa.DateTime(timezone=True), nullable=False)


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"CREATE SCHEMA IF NOT EXISTS {SCHEMA}")
    op.create_table(
        "uploads",
        sa.Column("upload_id", sa.Uuid(), nullable=False),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("api_key_id", sa.Uuid(), nullable=True),
        sa.Column("file_name", sa.String(length=255), nullable=False),
        sa.Column("original_file_name", sa.String(length=255), nullable=False),
        sa.Column("file_path", sa.String(length=255), nullable=True),
        sa.Column("file_size", sa.BigInteger(), nullable=False),
        sa.Column("file_type", sa.String(length=50), nullable=False),
        sa.Column("mime_type", sa.String(length=100), nullable=False),
        sa.Column("upload_date", sa.DateTime(timezone=True), nullable=False),
        sa.Column("is_processed", sa.Boolean(), nullable=False),
        sa.Column("processing_started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("processing_completed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("thumbnail_path", sa.String(length=255), nullable=True),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("job_id", sa.String(length=64), nullable=True),
        sa.Column("error_code", sa.String(length=50), nullable=True),
        sa.Column("error_message", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("upload_id", name=op.f("pk_uploads")),
        schema=SCHEMA,
    )
    op.create_index("idx_uploads_tenant_date", "uploads", ["tenant_id", "upload_date"], schema=SCHEMA)
    op.create_index("idx_uploads_upload_date", "uploads", ["upload_date"], schema=SCHEMA)
    op.create_index("idx_uploads_is_processed", "uploads", ["is_processed"], schema=SCHEMA)
    op.create_table(
        "detection_results",
        sa.Column("result_id", sa.Uuid(), nullable=False),
        sa.Column("upload_id", sa.Uuid(), nullable=False),
        sa.Column("is_ai_generated", sa.Boolean(), nullable=True),
        sa.Column("confidence_score", sa.Numeric(precision=5, scale=4, asdecimal=False), nullable=False),
        sa.Column("band", sa.String(length=20), nullable=False),
        sa.Column("processing_time", sa.Numeric(precision=10, scale=3, asdecimal=False), nullable=False),
        sa.Column("detection_date", sa.DateTime(timezone=True), nullable=False),
        sa.Column("algorithm_version", sa.String(length=64), nullable=False),
        sa.Column("result_summary", sa.Text(), nullable=True),
        sa.Column("metadata_id", sa.String(length=50), nullable=True),
        sa.ForeignKeyConstraint(
            ["upload_id"],
            [f"{SCHEMA}.uploads.upload_id"],
            name=op.f("fk_detection_results_upload_id_uploads"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("result_id", name=op.f("pk_detection_results")),
        sa.UniqueConstraint("upload_id", name=op.f("uq_detection_results_upload_id")),
        schema=SCHEMA,
    )
    op.create_index(
        "idx_detection_results_is_ai_generated", "detection_results", ["is_ai_generated"], schema=SCHEMA
    )
    op.create_index(
        "idx_detection_results_confidence_score", "detection_results", ["confidence_score"], schema=SCHEMA
    )
    op.create_table(
        "detection_methods",
        sa.Column("method_id", sa.Uuid(), nullable=False),
        sa.Column("method_name", sa.String(length=100), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("is_active", sa.Boolean(), nullable=False),
        sa.Column("weight", sa.Numeric(precision=3, scale=2, asdecimal=False), nullable=False),
        _ts(),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("weight >= 0 AND weight <= 9.99", name="ck_detection_methods_weight_range"),
        sa.PrimaryKeyConstraint("method_id", name=op.f("pk_detection_methods")),
        sa.UniqueConstraint("method_name", name=op.f("uq_detection_methods_method_name")),
        schema=SCHEMA,
    )
    op.create_table(
        "method_results",
        sa.Column("method_result_id", sa.Uuid(), nullable=False),
        sa.Column("result_id", sa.Uuid(), nullable=False),
        sa.Column("method_id", sa.Uuid(), nullable=False),
        sa.Column("is_ai_generated", sa.Boolean(), nullable=True),
        sa.Column("confidence_score", sa.Numeric(precision=5, scale=4, asdecimal=False), nullable=False),
        sa.Column("processing_time", sa.Numeric(precision=10, scale=3, asdecimal=False), nullable=False),
        sa.Column("result_details", JSONB, nullable=True),
        sa.ForeignKeyConstraint(
            ["result_id"],
            [f"{SCHEMA}.detection_results.result_id"],
            name=op.f("fk_method_results_result_id_detection_results"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["method_id"],
            [f"{SCHEMA}.detection_methods.method_id"],
            name=op.f("fk_method_results_method_id_detection_methods"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("method_result_id", name=op.f("pk_method_results")),
        schema=SCHEMA,
    )
    op.create_index("idx_method_results_result_id", "method_results", ["result_id"], schema=SCHEMA)
    op.create_index("idx_method_results_method_id", "method_results", ["method_id"], schema=SCHEMA)
    op.create_table(
        "detection_metadata",
        sa.Column("result_id", sa.Uuid(), nullable=False),
        sa.Column("document", JSONB, nullable=False),
        _ts(),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["result_id"],
            [f"{SCHEMA}.detection_results.result_id"],
            name=op.f("fk_detection_metadata_result_id_detection_results"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("result_id", name=op.f("pk_detection_metadata")),
        schema=SCHEMA,
    )
    op.create_table(
        "report_images",
        sa.Column("upload_id", sa.Uuid(), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("media_type", sa.String(length=50), nullable=False),
        sa.Column("width", sa.Integer(), nullable=False),
        sa.Column("height", sa.Integer(), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        _ts(),
        sa.ForeignKeyConstraint(
            ["upload_id"],
            [f"{SCHEMA}.uploads.upload_id"],
            name=op.f("fk_report_images_upload_id_uploads"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("upload_id", "kind", name=op.f("pk_report_images")),
        schema=SCHEMA,
    )


def downgrade() -> None:
    for table in ("report_images", "detection_metadata", "method_results", "detection_methods"):
        op.drop_table(table, schema=SCHEMA)
    op.drop_table("detection_results", schema=SCHEMA)
    op.drop_table("uploads", schema=SCHEMA)
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"DROP SCHEMA IF EXISTS {SCHEMA}")
