"""Meeting attention analytics (document 004): meetings, participants, alerts, summaries,
recordings and their analyses, the detection timeline, and the attention time series

Schema ``attention``. The time series ``attention_metrics`` (one row per participant per
sample) and its 1-minute roll-up ``attention_metrics_1min`` take one of three shapes:

* PostgreSQL with TimescaleDB available (``pg_available_extensions``) and preloaded: exactly
  document 004 §3 — hypertable, compression segmented by meeting and participant after 1 day,
  retention 90 days, and ``attention_metrics_1min`` as a continuous aggregate with its refresh
  policy (made real-time so the newest minutes are never missing).
* PostgreSQL without it: ``attention_metrics`` is RANGE-partitioned on ``time`` by UTC day
  (``attention_metrics_yYYYYmMMdDD``) plus a DEFAULT partition so an insert never fails;
  the days ahead are created by :mod:`facesocial.store.attention_partitions`, old days are
  dropped whole, and ``attention_metrics_1min`` is a plain table kept by the worker.
* SQLite: two plain tables.

The primary key of ``attention_metrics`` is ``(meeting_id, participant_id, time)``: it contains
the partition key, as PostgreSQL and TimescaleDB require of every unique index.

This file is deliberately self-contained (the SQL is frozen here, not imported): a migration
must keep doing what it did when it was written. tests/unit/test_attention_timescale.py checks
that it matches facesocial.store.attention_timescale.

Revision ID: 0012_attention
Revises: 0011_ai_detection
Create Date: 2026-12-01 16:40:00
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0012_attention"
down_revision: str | None = "0011_ai_detection"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSONB = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")
SCHEMA = "attention"
METRICS = f"{SCHEMA}.attention_metrics"
# Today and this many following UTC days get a partition straight away.
DAYS_AHEAD = 7

# Document 004 §3.1-3.4, schema-qualified; the last statement turns on real-time aggregation
# (the default before TimescaleDB 2.13, off since) so the not-yet-materialised minutes are
# computed from the raw rows instead of being absent.
TIMESCALE_SQL = (
    "CREATE EXTENSION IF NOT EXISTS timescaledb",
    "SELECT create_hypertable('attention.attention_metrics', 'time')",
    "ALTER TABLE attention.attention_metrics SET ("
    "timescaledb.compress, timescaledb.compress_segmentby = 'meeting_id, participant_id')",
    "SELECT add_compression_policy('attention.attention_metrics', INTERVAL '1 day')",
    "SELECT add_retention_policy('attention.attention_metrics', INTERVAL '90 days')",
    "CREATE MATERIALIZED VIEW attention.attention_metrics_1min WITH (timescaledb.continuous) AS "
    "SELECT time_bucket('1 minute', time) AS bucket, meeting_id, participant_id, "
    "AVG(attention_score) AS avg_attention, MIN(attention_score) AS min_attention, "
    "MAX(attention_score) AS max_attention, AVG(gaze_score) AS avg_gaze, "
    "AVG(head_pose_score) AS avg_head_pose, COUNT(*) AS sample_count "
    "FROM attention.attention_metrics GROUP BY bucket, meeting_id, participant_id",
    "SELECT add_continuous_aggregate_policy('attention.attention_metrics_1min', "
    "start_offset => INTERVAL '1 hour', end_offset => INTERVAL '1 minute', "
    "schedule_interval => INTERVAL '1 minute')",
    "ALTER MATERIALIZED VIEW attention.attention_metrics_1min SET (timescaledb.materialized_only = false)",
)


def _score(name: str, nullable: bool = True) -> sa.Column[float]:
    return sa.Column(name, sa.Numeric(precision=6, scale=2, asdecimal=False), nullable=nullable)


def _ts(name: str, nullable: bool = True) -> sa.Column[datetime]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def _fk(column: str, table: str, ondelete: str, name: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint([column], [f"{SCHEMA}.{table}.id"], name=op.f(name), ondelete=ondelete)


def timescale_usable(bind: sa.Connection) -> bool:
    """TimescaleDB is installed on the server and loaded (CREATE EXTENSION fails otherwise)."""
    if bind.dialect.name != "postgresql":
        return False
    available = bind.execute(sa.text("SELECT 1 FROM pg_available_extensions WHERE name = 'timescaledb'"))
    if available.first() is None:
        return False
    installed = bind.execute(sa.text("SELECT 1 FROM pg_extension WHERE extname = 'timescaledb'")).first()
    preload = str(bind.execute(sa.text("SHOW shared_preload_libraries")).scalar() or "")
    return installed is not None or "timescaledb" in preload


def _day_bound(day: date) -> str:
    # An explicit UTC offset: a bare date would be read in the session's time zone.
    return f"'{day.isoformat()} 00:00:00+00'"


def upgrade() -> None:
    bind = op.get_bind()
    postgres = bind.dialect.name == "postgresql"
    timescale = timescale_usable(bind)
    if postgres:
        op.execute(f"CREATE SCHEMA IF NOT EXISTS {SCHEMA}")
    op.create_table(
        "meetings",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("title", sa.String(length=255), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("host_id", sa.Uuid(), nullable=True),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("group_id", sa.Uuid(), nullable=True),
        _ts("start_time"),
        _ts("end_time"),
        _ts("created_at", nullable=False),
        _ts("updated_at", nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_meetings")),
        schema=SCHEMA,
    )
    op.create_index("idx_meetings_tenant", "meetings", ["tenant_id", "created_at"], schema=SCHEMA)
    op.create_index("idx_meetings_status", "meetings", ["status"], schema=SCHEMA)
    op.create_table(
        "participants",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("meeting_id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=True),
        sa.Column("display_name", sa.String(length=255), nullable=True),
        sa.Column("track_id", sa.Integer(), nullable=True),
        sa.Column("stream_id", sa.String(length=64), nullable=True),
        _ts("joined_at"),
        _ts("left_at"),
        sa.Column("is_active", sa.Boolean(), nullable=False),
        _ts("created_at", nullable=False),
        _fk("meeting_id", "meetings", "CASCADE", "fk_participants_meeting_id_meetings"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_participants")),
        schema=SCHEMA,
    )
    op.create_index("idx_participants_meeting", "participants", ["meeting_id"], schema=SCHEMA)
    op.create_index("idx_participants_user", "participants", ["user_id"], schema=SCHEMA)
    op.create_table(
        "alerts",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("meeting_id", sa.Uuid(), nullable=False),
        sa.Column("participant_id", sa.Uuid(), nullable=False),
        sa.Column("alert_type", sa.String(length=50), nullable=False),
        sa.Column("severity", sa.String(length=20), nullable=False),
        sa.Column("message", sa.Text(), nullable=True),
        sa.Column("duration_seconds", sa.Numeric(precision=10, scale=3, asdecimal=False), nullable=True),
        _ts("created_at", nullable=False),
        _ts("resolved_at"),
        _fk("meeting_id", "meetings", "CASCADE", "fk_alerts_meeting_id_meetings"),
        _fk("participant_id", "participants", "CASCADE", "fk_alerts_participant_id_participants"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alerts")),
        schema=SCHEMA,
    )
    op.create_index("idx_alerts_meeting", "alerts", ["meeting_id"], schema=SCHEMA)
    op.create_index("idx_alerts_participant", "alerts", ["participant_id"], schema=SCHEMA)
    op.create_index("idx_alerts_type", "alerts", ["alert_type"], schema=SCHEMA)
    op.create_table(
        "meeting_summaries",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("meeting_id", sa.Uuid(), nullable=False),
        sa.Column("duration_minutes", sa.Integer(), nullable=True),
        sa.Column("participant_count", sa.Integer(), nullable=True),
        _score("avg_attention_score"),
        _score("min_attention_score"),
        _score("max_attention_score"),
        sa.Column("total_alerts", sa.Integer(), nullable=True),
        sa.Column("low_attention_segments", sa.Integer(), nullable=True),
        _ts("created_at", nullable=False),
        _fk("meeting_id", "meetings", "CASCADE", "fk_meeting_summaries_meeting_id_meetings"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_meeting_summaries")),
        sa.UniqueConstraint("meeting_id", name=op.f("uq_meeting_summaries_meeting_id")),
        schema=SCHEMA,
    )
    op.create_table(
        "video_recordings",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("meeting_id", sa.Uuid(), nullable=True),
        sa.Column("user_id", sa.Uuid(), nullable=True),
        sa.Column("filename", sa.String(length=255), nullable=False),
        sa.Column("file_path", sa.Text(), nullable=True),
        sa.Column("file_size", sa.Integer(), nullable=True),
        sa.Column("duration_seconds", sa.Numeric(precision=10, scale=3, asdecimal=False), nullable=True),
        sa.Column("width", sa.Integer(), nullable=True),
        sa.Column("height", sa.Integer(), nullable=True),
        sa.Column("format", sa.String(length=20), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("alerts_data", JSONB, nullable=True),
        sa.Column("alert_count", sa.Integer(), nullable=False),
        _ts("created_at", nullable=False),
        _ts("updated_at", nullable=False),
        _fk("meeting_id", "meetings", "SET NULL", "fk_video_recordings_meeting_id_meetings"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_video_recordings")),
        schema=SCHEMA,
    )
    op.create_index("idx_recordings_meeting", "video_recordings", ["meeting_id"], schema=SCHEMA)
    op.create_index("idx_recordings_tenant", "video_recordings", ["tenant_id", "created_at"], schema=SCHEMA)
    op.create_table(
        "video_analyses",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=True),
        sa.Column("filename", sa.String(length=255), nullable=False),
        sa.Column("file_path", sa.Text(), nullable=True),
        sa.Column("file_size", sa.Integer(), nullable=True),
        sa.Column("duration", sa.Numeric(precision=10, scale=3, asdecimal=False), nullable=True),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("progress", sa.Integer(), nullable=False),
        sa.Column("results", JSONB, nullable=True),
        sa.Column("error_message", sa.Text(), nullable=True),
        sa.Column("job_id", sa.String(length=64), nullable=True),
        _ts("created_at", nullable=False),
        _ts("updated_at", nullable=False),
        _fk("id", "video_recordings", "CASCADE", "fk_video_analyses_id_video_recordings"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_video_analyses")),
        schema=SCHEMA,
    )
    op.create_index("idx_video_analyses_tenant", "video_analyses", ["tenant_id", "created_at"], schema=SCHEMA)
    op.create_index("idx_video_analyses_status", "video_analyses", ["status"], schema=SCHEMA)
    op.create_table(
        "detection_timeline",
        sa.Column("recording_id", sa.Uuid(), nullable=False),
        sa.Column("video_timestamp_ms", sa.Integer(), nullable=False),
        _ts("time", nullable=False),
        sa.Column("faces_data", JSONB, nullable=False),
        _score("avg_attention_score"),
        _fk(
            "recording_id",
            "video_recordings",
            "CASCADE",
            "fk_detection_timeline_recording_id_video_recordings",
        ),
        sa.PrimaryKeyConstraint("recording_id", "video_timestamp_ms", name=op.f("pk_detection_timeline")),
        schema=SCHEMA,
    )
    op.create_index("idx_timeline_time", "detection_timeline", ["time"], schema=SCHEMA)

    # --- the time series -----------------------------------------------------------------
    partitioned = postgres and not timescale
    op.create_table(
        "attention_metrics",
        sa.Column("meeting_id", sa.Uuid(), nullable=False),
        sa.Column("participant_id", sa.Uuid(), nullable=False),
        _ts("time", nullable=False),
        _score("attention_score", nullable=False),
        _score("gaze_score"),
        _score("head_pose_score"),
        _score("eye_openness_score"),
        sa.Column("is_looking_away", sa.Boolean(), nullable=False),
        sa.Column("is_drowsy", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("meeting_id", "participant_id", "time", name=op.f("pk_attention_metrics")),
        schema=SCHEMA,
        **({"postgresql_partition_by": "RANGE (time)"} if partitioned else {}),
    )
    # On a partitioned parent PostgreSQL creates each index on every partition, present and future.
    op.create_index("idx_metrics_meeting", "attention_metrics", ["meeting_id", "time"], schema=SCHEMA)
    op.create_index("idx_metrics_participant", "attention_metrics", ["participant_id", "time"], schema=SCHEMA)
    if partitioned:
        today = datetime.now(UTC).date()
        for offset in range(DAYS_AHEAD + 1):
            day = today + timedelta(days=offset)
            name = f"attention_metrics_y{day.year:04d}m{day.month:02d}d{day.day:02d}"
            op.execute(
                f"CREATE TABLE {SCHEMA}.{name} PARTITION OF {METRICS} "
                f"FOR VALUES FROM ({_day_bound(day)}) TO ({_day_bound(day + timedelta(days=1))})"
            )
        op.execute(f"CREATE TABLE {SCHEMA}.attention_metrics_default PARTITION OF {METRICS} DEFAULT")
    if timescale:
        for statement in TIMESCALE_SQL:
            op.execute(statement)
        return
    op.create_table(
        "attention_metrics_1min",
        sa.Column("meeting_id", sa.Uuid(), nullable=False),
        sa.Column("participant_id", sa.Uuid(), nullable=False),
        _ts("bucket", nullable=False),
        _score("avg_attention"),
        _score("min_attention"),
        _score("max_attention"),
        _score("avg_gaze"),
        _score("avg_head_pose"),
        sa.Column("sample_count", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint(
            "meeting_id", "participant_id", "bucket", name=op.f("pk_attention_metrics_1min")
        ),
        schema=SCHEMA,
    )
    op.create_index(
        "idx_metrics_1min_meeting", "attention_metrics_1min", ["meeting_id", "bucket"], schema=SCHEMA
    )


def downgrade() -> None:
    bind = op.get_bind()
    postgres = bind.dialect.name == "postgresql"
    continuous = postgres and (
        bind.execute(
            sa.text(
                "SELECT 1 FROM pg_matviews "
                "WHERE schemaname = :schema AND matviewname = 'attention_metrics_1min'"
            ),
            {"schema": SCHEMA},
        ).first()
        is not None
    )
    if continuous:
        op.execute(f"DROP MATERIALIZED VIEW {SCHEMA}.attention_metrics_1min CASCADE")
    else:
        op.drop_table("attention_metrics_1min", schema=SCHEMA)
    # Dropping a partitioned parent (or a hypertable) drops its partitions (chunks) with it.
    op.drop_table("attention_metrics", schema=SCHEMA)
    for table in (
        "detection_timeline",
        "video_analyses",
        "video_recordings",
        "meeting_summaries",
        "alerts",
        "participants",
        "meetings",
    ):
        op.drop_table(table, schema=SCHEMA)
    if postgres:
        op.execute(f"DROP SCHEMA IF EXISTS {SCHEMA}")
