"""The TimescaleDB backend of the attention time series (document 004 §3), when the server has it.

Migration 0012 issues :data:`SETUP_SQL` (its own frozen copy; tests/unit/test_attention_timescale.py
checks the two agree) when ``timescaledb`` is in ``pg_available_extensions`` and loaded:
hypertable, compression segmented by ``meeting_id, participant_id`` after 1 day, retention
90 days, the continuous aggregate ``attention_metrics_1min`` and its refresh policy. Then
TimescaleDB's background jobs do the roll-up, compression and retention, so the worker's
:meth:`rollup`, :meth:`retention` and :meth:`ensure_partitions` have nothing to do.

Not exercised against a server here (no TimescaleDB in the test environment): the unit test
checks the SQL; the interface is the one the other backends pass their tests with.
"""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from sqlalchemy import delete, func, select, text

from facesocial.store.attention_metrics import (
    MINUTE,
    Backend,
    MinuteRow,
    SqlAttentionMetrics,
    _floor_minute,
    _round,
    _utc,
)
from facesocial.store.db import Database
from facesocial.store.tables import AttentionMetric, AttentionMetricMinute

# Document 004 §3.1-3.4, schema-qualified (tables live in schema ``attention``); the CREATE TABLE
# and its indexes are the migration's ordinary ones. The last statement makes the aggregate
# real-time (TimescaleDB's default before 2.13, off since): minutes the refresh policy has not
# materialised yet are computed from the raw rows, so per_minute never shows a gap.
SETUP_SQL: tuple[str, ...] = (
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


class TimescaleAttentionMetrics(SqlAttentionMetrics):
    """Writes and raw reads as the other backends; minutes from the real-time continuous aggregate."""

    def __init__(self, database: Database, retention_days: int) -> None:
        super().__init__(database, retention_days, "timescaledb")

    @property
    def backend(self) -> Backend:
        return "timescaledb"

    def per_minute(
        self, meeting_id: UUID, participant_id: UUID | None, start: datetime, end: datetime
    ) -> list[MinuteRow]:
        r = AttentionMetricMinute  # the view has the roll-up table's columns
        query = select(
            r.meeting_id,
            r.participant_id,
            r.bucket,
            _round(r.avg_attention),
            _round(r.min_attention),
            _round(r.max_attention),
            _round(r.avg_gaze),
            _round(r.avg_head_pose),
            r.sample_count,
        ).where(r.meeting_id == meeting_id, r.bucket >= _utc(start), r.bucket < _utc(end))
        if participant_id is not None:
            query = query.where(r.participant_id == participant_id)
        with self._db.engine.connect() as connection:
            rows = connection.execute(query.order_by(r.bucket, r.participant_id))
            return [MinuteRow(*row) for row in rows]

    def delete_meeting(self, meeting_id: UUID) -> int:
        """Delete the raw rows, then refresh the continuous aggregate over their time range so the
        materialised minutes go too (the refresh policy alone only looks back one hour)."""
        m = AttentionMetric
        with self._db.engine.begin() as connection:
            first, last = connection.execute(
                select(func.min(m.time), func.max(m.time)).where(m.meeting_id == meeting_id)
            ).one()
            removed = int(connection.execute(delete(m).where(m.meeting_id == meeting_id)).rowcount)
        if first is not None and last is not None:
            # CALL refresh_continuous_aggregate cannot run inside a transaction block.
            with self._db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
                connection.execute(
                    text(
                        "CALL refresh_continuous_aggregate('attention.attention_metrics_1min', "
                        "CAST(:start AS timestamptz), CAST(:end AS timestamptz))"
                    ),
                    {"start": _floor_minute(first), "end": _floor_minute(last) + MINUTE},
                )
        return max(0, removed)

    def rollup(self, now: datetime, *, since: datetime | None = None) -> int:
        """Nothing to do: the continuous aggregate's refresh policy runs every minute."""
        return 0

    def retention(self, now: datetime) -> int:
        """Nothing to do: ``add_retention_policy`` drops chunks older than 90 days."""
        return 0
