"""People counting in video (document 002): the job row and its detection, tracking and counting
results

Schema ``counting``: ``counting_videos`` (one uploaded video: the job's status, its lines and
zones, the per-line counts, the annotated preview), ``person_detection_results`` (document 002's
``detection_results``, renamed because on SQLite every schema shares one database, where
``ai_detection.detection_results`` has the name: one person box per sampled frame),
``tracking_results`` (one track over the video, with its trajectory) and ``counting_results``
(one line crossing or zone entry/exit). Every result row refers to the video (ON DELETE CASCADE:
erasing a video erases its results) and to the video's one
``model_registry.model_inference_results`` row (``inference_id`` = ``video_id``), so this
revision follows 0013. docs/data-model.md lists the deviations from document 002.

This file is deliberately self-contained: it must keep creating what it created when written,
whatever facesocial/store/tables_counting.py becomes.

Revision ID: 0014_counting
Revises: 0013_model_registry
Create Date: 2026-12-01 19:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0014_counting"
down_revision: str | None = "0013_model_registry"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSONB = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")
SCHEMA = "counting"
INFERENCE = "model_registry.model_inference_results.inference_id"


def _ts(name: str, nullable: bool = True) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def _score(name: str, nullable: bool = True) -> sa.Column[float]:
    return sa.Column(name, sa.Numeric(precision=5, scale=4, asdecimal=False), nullable=nullable)


def _rate(name: str) -> sa.Column[float]:
    # Velocities and speeds in pixels per second: NUMERIC(10,2).
    return sa.Column(name, sa.Numeric(precision=10, scale=2, asdecimal=False), nullable=True)


def _result_links(table: str) -> list[sa.SchemaItem]:
    """The columns and foreign keys every result row shares: inference, video, tenant."""
    return [
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("inference_id", sa.String(length=100), nullable=False),
        sa.Column("video_id", sa.String(length=64), nullable=False),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["inference_id"],
            [INFERENCE],
            name=op.f(f"fk_{table}_inference_id_model_inference_results"),
        ),
        sa.ForeignKeyConstraint(
            ["video_id"],
            [f"{SCHEMA}.counting_videos.video_id"],
            name=op.f(f"fk_{table}_video_id_counting_videos"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f(f"pk_{table}")),
    ]


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"CREATE SCHEMA IF NOT EXISTS {SCHEMA}")
    op.create_table(
        "counting_videos",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("video_id", sa.String(length=64), nullable=False),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("api_key_id", sa.Uuid(), nullable=True),
        sa.Column("job_id", sa.String(length=64), nullable=True),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("progress_percentage", sa.Numeric(precision=5, scale=2, asdecimal=False), nullable=False),
        sa.Column("file_name", sa.String(length=255), nullable=True),
        sa.Column("file_sha256", sa.String(length=64), nullable=True),
        sa.Column("file_size_bytes", sa.Integer(), nullable=True),
        sa.Column("parameters", JSONB, nullable=False),
        sa.Column("video_metadata", JSONB, nullable=True),
        sa.Column("summary", JSONB, nullable=True),
        sa.Column("model_version", sa.String(length=64), nullable=True),
        sa.Column("serving", JSONB, nullable=True),
        sa.Column("preview_mp4", sa.LargeBinary(), nullable=True),
        sa.Column("processing_time_ms", sa.Integer(), nullable=True),
        sa.Column("error_code", sa.String(length=50), nullable=True),
        sa.Column("error_message", sa.Text(), nullable=True),
        _ts("created_at", nullable=False),
        _ts("started_at"),
        _ts("completed_at"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_counting_videos")),
        sa.UniqueConstraint("video_id", name=op.f("uq_counting_videos_video_id")),
        schema=SCHEMA,
    )
    op.create_index(
        "idx_counting_videos_tenant_created", "counting_videos", ["tenant_id", "created_at"], schema=SCHEMA
    )
    op.create_table(
        "person_detection_results",
        *_result_links("person_detection_results"),
        sa.Column("detection_id", sa.String(length=100), nullable=False),
        sa.Column("frame_index", sa.Integer(), nullable=False),
        sa.Column("timestamp_ms", sa.Integer(), nullable=False),
        sa.Column("object_class", sa.String(length=50), nullable=False),
        _score("confidence_score", nullable=False),
        sa.Column("bbox_x", sa.Integer(), nullable=False),
        sa.Column("bbox_y", sa.Integer(), nullable=False),
        sa.Column("bbox_width", sa.Integer(), nullable=False),
        sa.Column("bbox_height", sa.Integer(), nullable=False),
        sa.Column("object_attributes", JSONB, nullable=True),
        sa.Column("pose_estimation", JSONB, nullable=True),
        _score("detection_quality"),
        _score("occlusion_level"),
        _ts("created_at", nullable=False),
        sa.UniqueConstraint("detection_id", name=op.f("uq_person_detection_results_detection_id")),
        schema=SCHEMA,
    )
    op.create_index(
        "idx_person_detection_results_inference", "person_detection_results", ["inference_id"], schema=SCHEMA
    )
    op.create_index(
        "idx_person_detection_results_video_frame",
        "person_detection_results",
        ["video_id", "frame_index"],
        schema=SCHEMA,
    )
    op.create_table(
        "tracking_results",
        *_result_links("tracking_results"),
        sa.Column("track_id", sa.String(length=100), nullable=False),
        sa.Column("detection_id", sa.String(length=100), nullable=True),
        _score("tracking_confidence"),
        sa.Column("position_x", sa.Integer(), nullable=False),
        sa.Column("position_y", sa.Integer(), nullable=False),
        _rate("velocity_x"),
        _rate("velocity_y"),
        _rate("speed"),
        sa.Column("tracking_status", sa.String(length=20), nullable=False),
        sa.Column("track_age_frames", sa.Integer(), nullable=True),
        sa.Column("first_timestamp_ms", sa.Integer(), nullable=True),
        sa.Column("last_timestamp_ms", sa.Integer(), nullable=True),
        sa.Column("trajectory_points", JSONB, nullable=True),
        _ts("created_at", nullable=False),
        schema=SCHEMA,
    )
    op.create_index(
        "idx_tracking_results_track_id", "tracking_results", ["video_id", "track_id"], schema=SCHEMA
    )
    op.create_index("idx_tracking_results_status", "tracking_results", ["tracking_status"], schema=SCHEMA)
    op.create_table(
        "counting_results",
        *_result_links("counting_results"),
        sa.Column("counting_event_id", sa.String(length=100), nullable=False),
        sa.Column("event_type", sa.String(length=20), nullable=False),
        sa.Column("direction", sa.String(length=20), nullable=True),
        sa.Column("line_name", sa.String(length=100), nullable=True),
        sa.Column("zone_name", sa.String(length=100), nullable=True),
        sa.Column("track_id", sa.String(length=100), nullable=True),
        sa.Column("detection_id", sa.String(length=100), nullable=True),
        sa.Column("timestamp_ms", sa.Integer(), nullable=False),
        sa.Column("entry_point", JSONB, nullable=True),
        sa.Column("exit_point", JSONB, nullable=True),
        sa.Column("path_trajectory", JSONB, nullable=True),
        sa.Column("current_count_in", sa.Integer(), nullable=True),
        sa.Column("current_count_out", sa.Integer(), nullable=True),
        sa.Column("current_total", sa.Integer(), nullable=True),
        _score("event_confidence"),
        sa.Column("processing_time_ms", sa.Integer(), nullable=True),
        _ts("created_at", nullable=False),
        sa.UniqueConstraint("counting_event_id", name=op.f("uq_counting_results_counting_event_id")),
        schema=SCHEMA,
    )
    op.create_index(
        "idx_counting_results_video_time", "counting_results", ["video_id", "timestamp_ms"], schema=SCHEMA
    )


def downgrade() -> None:
    for table in ("counting_results", "tracking_results", "person_detection_results", "counting_videos"):
        op.drop_table(table, schema=SCHEMA)
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"DROP SCHEMA IF EXISTS {SCHEMA}")
