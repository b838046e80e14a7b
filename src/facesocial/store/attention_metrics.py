"""The attention time series (document 004 §3): raw per-second scores and 1-minute roll-ups.

One interface, :class:`AttentionMetricsStore`, three backends chosen at start-up by
:func:`open_attention_metrics` from what migration 0012 built (docs/attention.md "Time series"):

* ``timescaledb`` — a hypertable with compression, retention and a real-time continuous
  aggregate, all kept by TimescaleDB's own jobs (:mod:`facesocial.store.attention_timescale`);
* ``postgres_partitions`` — daily RANGE partitions (:mod:`facesocial.store.attention_partitions`),
  retention by dropping whole days, and the table ``attention_metrics_1min`` kept by
  :meth:`SqlAttentionMetrics.rollup` (the worker runs it every ``rollup_interval_seconds``);
* ``sqlite`` — plain tables; roll-up and retention by DELETE/INSERT.

Times are aware UTC datetimes; scores are 0..100 with two decimals (NUMERIC(6,2)).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import astuple, dataclass, fields
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, Protocol
from uuid import UUID

from sqlalchemy import (
    ColumnElement,
    Connection,
    Numeric,
    Select,
    and_,
    delete,
    func,
    insert,
    literal,
    select,
    text,
    type_coerce,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import QueryableAttribute

from facesocial.store import attention_partitions
from facesocial.store.db import Database
from facesocial.store.tables import AttentionMetric, AttentionMetricMinute
from facesocial.store.types import TimestampTZ

Backend = Literal["timescaledb", "postgres_partitions", "sqlite"]
MINUTE = timedelta(minutes=1)
# Each roll-up re-aggregates this much before the last rolled-up minute: rows written late
# (a live socket flushes every second; a slow one may lag) still reach their minute.
ROLLUP_OVERLAP = timedelta(minutes=5)
# One roll-up transaction covers at most this much raw time (a worker back after a long stop
# catches up in several bounded transactions instead of one huge one).
ROLLUP_CHUNK = timedelta(hours=6)
# Daily partitions are created this many days ahead (a stopped worker has a week's margin).
DAYS_AHEAD = 7
# Arbitrary, fixed key of the PostgreSQL advisory lock that serialises concurrent roll-ups.
_ROLLUP_LOCK_KEY = 0x4154_544E_0012  # "ATTN" 0012
_SCORE = Numeric(6, 2, asdecimal=False)


@dataclass(frozen=True, slots=True)
class MetricRow:
    """One participant's scores at one instant (a row of ``attention.attention_metrics``).

    Scores are 0..100 (None when not measured, e.g. no iris for gaze); ``time`` is aware UTC.
    """

    meeting_id: UUID
    participant_id: UUID
    time: datetime
    attention_score: float
    gaze_score: float | None = None
    head_pose_score: float | None = None
    eye_openness_score: float | None = None
    is_looking_away: bool = False
    is_drowsy: bool = False


@dataclass(frozen=True, slots=True)
class MinuteRow:
    """One participant's minute (a row of ``attention.attention_metrics_1min``).

    ``bucket`` is the minute's start (aware UTC); averages are rounded to two decimals;
    ``sample_count`` is the number of raw rows in the minute (>= 1).
    """

    meeting_id: UUID
    participant_id: UUID
    bucket: datetime
    avg_attention: float | None
    min_attention: float | None
    max_attention: float | None
    avg_gaze: float | None
    avg_head_pose: float | None
    sample_count: int


class AttentionMetricsStore(Protocol):
    """The time-series repository every attention component uses (``container.attention_metrics``)."""

    @property
    def backend(self) -> Backend: ...

    def write(self, rows: Sequence[MetricRow]) -> int:
        """Insert rows; a row whose (meeting, participant, time) exists is skipped. Returns rows inserted."""
        ...

    def raw(
        self, meeting_id: UUID, participant_id: UUID | None, start: datetime, end: datetime, limit: int
    ) -> list[MetricRow]:
        """Raw rows with ``start <= time < end``, oldest first (then by participant), at most ``limit``."""
        ...

    def per_minute(
        self, meeting_id: UUID, participant_id: UUID | None, start: datetime, end: datetime
    ) -> list[MinuteRow]:
        """Minutes with ``start <= bucket < end`` in bucket order: rolled-up minutes plus the
        not-yet-rolled-up tail aggregated from the raw rows, so no minute is ever missing."""
        ...

    def rollup(self, now: datetime) -> int:
        """Aggregate complete minutes into the roll-up; idempotent. Returns buckets written."""
        ...

    def retention(self, now: datetime) -> int:
        """Remove raw rows older than the retention period. Returns rows removed."""
        ...

    def ensure_partitions(self, now: datetime) -> None:
        """Create the coming partitions (no-op where there are none)."""
        ...

    def delete_meeting(self, meeting_id: UUID) -> int:
        """Erase a meeting's raw rows and its minutes. Returns raw rows removed."""
        ...


def detect_backend(database: Database) -> Backend:
    """What migration 0012 built on this database.

    Raises RuntimeError when ``attention.attention_metrics`` is a plain PostgreSQL table (the
    migrations have not run) — a misconfiguration to report at start-up, not per request.
    """
    if database.engine.dialect.name == "sqlite":
        return "sqlite"
    with database.engine.connect() as connection:
        if _is_hypertable(connection):
            return "timescaledb"
        if attention_partitions.is_partitioned(connection):
            return "postgres_partitions"
    raise RuntimeError(
        "attention.attention_metrics is neither partitioned nor a hypertable: run the migrations "
        "(facesocial db upgrade)"
    )


def open_attention_metrics(database: Database, retention_days: int) -> AttentionMetricsStore:
    """The store for this database's backend (chosen once, at start-up)."""
    backend = detect_backend(database)
    if backend == "timescaledb":
        from facesocial.store.attention_timescale import TimescaleAttentionMetrics

        return TimescaleAttentionMetrics(database, retention_days)
    return SqlAttentionMetrics(database, retention_days, backend)


class SqlAttentionMetrics:
    """The store where the application keeps the roll-up and retention (PostgreSQL partitions, SQLite)."""

    def __init__(self, database: Database, retention_days: int, backend: Backend) -> None:
        if retention_days < 1:
            raise ValueError("retention_days must be at least 1")
        self._db = database
        self._retention = timedelta(days=retention_days)
        self._backend: Backend = backend
        self._postgres = database.engine.dialect.name == "postgresql"

    @property
    def backend(self) -> Backend:
        return self._backend

    # --- writes and reads -------------------------------------------------------------------

    def write(self, rows: Sequence[MetricRow]) -> int:
        if not rows:
            return 0
        values = [
            {field.name: value for field, value in zip(fields(MetricRow), astuple(row), strict=True)}
            for row in rows
        ]
        dialect_insert = postgresql.insert if self._postgres else sqlite.insert
        # A retried flush must not fail on rows that already landed: same key, same sample.
        # RETURNING counts the rows inserted: an executemany's rowcount is not reliable.
        statement = dialect_insert(AttentionMetric).on_conflict_do_nothing().returning(AttentionMetric.time)
        with self._db.engine.begin() as connection:
            return len(connection.execute(statement, values).all())

    def raw(
        self, meeting_id: UUID, participant_id: UUID | None, start: datetime, end: datetime, limit: int
    ) -> list[MetricRow]:
        if limit < 1:
            raise ValueError("limit must be at least 1")
        m = AttentionMetric
        query = (
            select(
                m.meeting_id,
                m.participant_id,
                m.time,
                m.attention_score,
                m.gaze_score,
                m.head_pose_score,
                m.eye_openness_score,
                m.is_looking_away,
                m.is_drowsy,
            )
            .where(_raw_filter(meeting_id, participant_id, _utc(start), _utc(end)))
            .order_by(m.time, m.participant_id)
            .limit(limit)
        )
        with self._db.engine.connect() as connection:
            return [MetricRow(*row) for row in connection.execute(query)]

    def per_minute(
        self, meeting_id: UUID, participant_id: UUID | None, start: datetime, end: datetime
    ) -> list[MinuteRow]:
        start, end = _utc(start), _utc(end)
        r = AttentionMetricMinute
        scope = [r.meeting_id == meeting_id]
        if participant_id is not None:
            scope.append(r.participant_id == participant_id)
        with self._db.engine.connect() as connection:
            # Minutes after the last rolled-up one for this meeting are not in the roll-up yet
            # (or only partly): they come from the raw rows. The roll-up always covers a window
            # for every meeting at once, so before that minute everything is rolled up.
            last = connection.execute(select(func.max(r.bucket)).where(*scope)).scalar()
            last = _utc(last) if last is not None else None
            tail_from = start if last is None else max(start, last + MINUTE)
            rolled: list[MinuteRow] = []
            if last is not None:
                query = (
                    select(*(getattr(r, f.name) for f in fields(MinuteRow)))
                    .where(*scope, r.bucket >= start, r.bucket < min(end, last + MINUTE))
                    .order_by(r.bucket, r.participant_id)
                )
                rolled = [MinuteRow(*row) for row in connection.execute(query)]
            tail: list[MinuteRow] = []
            if tail_from < end:
                query = self._aggregate(_raw_filter(meeting_id, participant_id, tail_from, end))
                tail = [MinuteRow(*row) for row in connection.execute(query)]
        tail.sort(key=lambda row: (row.bucket, str(row.participant_id)))
        return rolled + tail

    # --- upkeep -------------------------------------------------------------------------------

    def rollup(self, now: datetime, *, since: datetime | None = None) -> int:
        """Re-aggregate from the last rolled-up minute (minus :data:`ROLLUP_OVERLAP`), or from
        ``since``, up to the last complete minute before ``now``. Returns buckets written.

        Idempotent: a bucket is recomputed from all its raw rows and replaced. Concurrent runs
        are safe: PostgreSQL serialises them with a transaction advisory lock (and upserts);
        SQLite's write lock (BEGIN IMMEDIATE, store/db.py) does the same.
        """
        end = _floor_minute(_utc(now))
        with self._db.engine.connect() as connection:
            start = self._rollup_start(connection) if since is None else _floor_minute(_utc(since))
        if start is None:
            return 0
        written = 0
        while start < end:
            chunk_end = min(end, start + ROLLUP_CHUNK)
            with self._db.engine.begin() as connection:
                written += self._rollup_window(connection, start, chunk_end)
            start = chunk_end
        return written

    def retention(self, now: datetime) -> int:
        """Remove raw rows older than ``retention_days``: whole daily partitions on PostgreSQL
        (no row deletes), then any older rows of the DEFAULT partition (or of the SQLite table)
        row by row. The 1-minute roll-up is kept (1/60th of the rows; as TimescaleDB keeps a
        continuous aggregate's minutes when raw chunks are dropped). Returns rows removed.
        """
        cutoff = _utc(now) - self._retention
        with self._db.engine.begin() as connection:
            if self._backend != "postgres_partitions":
                deleted = connection.execute(delete(AttentionMetric).where(AttentionMetric.time < cutoff))
                return max(0, int(deleted.rowcount))
            _names, removed = attention_partitions.drop_older_than(connection, cutoff)
            # Only DEFAULT is cleaned row by row: the day partly past the cut-off waits until it
            # is wholly past (at most a day longer), so no daily partition ever sees a DELETE.
            deleted = connection.execute(
                text(
                    f"DELETE FROM {attention_partitions.SCHEMA}.{attention_partitions.DEFAULT_PARTITION} "
                    "WHERE time < :cutoff"
                ),
                {"cutoff": cutoff},
            )
            return removed + max(0, int(deleted.rowcount))

    def ensure_partitions(self, now: datetime) -> None:
        if self._backend != "postgres_partitions":
            return
        with self._db.engine.begin() as connection:
            attention_partitions.ensure(connection, _utc(now), DAYS_AHEAD)

    def delete_meeting(self, meeting_id: UUID) -> int:
        """Erase a meeting's raw rows and roll-up minutes (row deletes through the meeting index:
        an erasure, not retention). Returns raw rows removed."""
        with self._db.engine.begin() as connection:
            raw = connection.execute(delete(AttentionMetric).where(AttentionMetric.meeting_id == meeting_id))
            connection.execute(
                delete(AttentionMetricMinute).where(AttentionMetricMinute.meeting_id == meeting_id)
            )
            return max(0, int(raw.rowcount))

    def partitions(self) -> list[str]:
        """Names of the raw table's partitions (sorted; empty where there are none)."""
        if self._backend != "postgres_partitions":
            return []
        with self._db.engine.connect() as connection:
            return sorted(attention_partitions.partitions(connection))

    # --- internals ----------------------------------------------------------------------------

    def _bucket(self) -> ColumnElement[datetime]:
        time = AttentionMetric.time
        if self._postgres:
            # date_trunc works in the session's time zone; every zone in use today is offset by
            # whole minutes, so the minute is the same as in UTC.
            return type_coerce(func.date_trunc("minute", time), TimestampTZ)
        # SQLite keeps 'YYYY-MM-DD HH:MM:SS.ffffff' (UTC): the first 16 characters are the minute.
        return type_coerce(func.substr(time, 1, 16).concat(literal(":00.000000")), TimestampTZ)

    def _aggregate(
        self, where: ColumnElement[bool]
    ) -> Select[UUID, UUID, datetime, float, float, float, float, float, int]:
        m = AttentionMetric
        bucket = self._bucket().label("bucket")
        return (
            select(
                m.meeting_id,
                m.participant_id,
                bucket,
                _round(func.avg(m.attention_score)),
                _round(func.min(m.attention_score)),
                _round(func.max(m.attention_score)),
                _round(func.avg(m.gaze_score)),
                _round(func.avg(m.head_pose_score)),
                func.count().label("sample_count"),
            )
            .where(where)
            .group_by(m.meeting_id, m.participant_id, bucket)
        )

    def _rollup_start(self, connection: Connection) -> datetime | None:
        last = connection.execute(select(func.max(AttentionMetricMinute.bucket))).scalar()
        if last is not None:
            return _utc(last) - ROLLUP_OVERLAP
        first = connection.execute(select(func.min(AttentionMetric.time))).scalar()
        return None if first is None else _floor_minute(_utc(first))

    def _rollup_window(self, connection: Connection, start: datetime, end: datetime) -> int:
        r = AttentionMetricMinute
        columns = [f.name for f in fields(MinuteRow)]
        source = self._aggregate(and_(AttentionMetric.time >= start, AttentionMetric.time < end))
        if self._postgres:
            # Concurrent roll-ups queue here (released at commit); the upsert alone would also
            # be correct, this keeps two workers from doing the same work side by side.
            connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _ROLLUP_LOCK_KEY})
            upsert = postgresql.insert(r).from_select(columns, source)
            statement = upsert.on_conflict_do_update(
                index_elements=[r.meeting_id, r.participant_id, r.bucket],
                set_={name: upsert.excluded[name] for name in columns[3:]},
            )
            # RETURNING counts the buckets: psycopg reports no rowcount for an upsert from a SELECT.
            return len(connection.execute(statement.returning(r.bucket)).all())
        connection.execute(delete(r).where(r.bucket >= start, r.bucket < end))
        return len(connection.execute(insert(r).from_select(columns, source).returning(r.bucket)).all())


def _raw_filter(
    meeting_id: UUID, participant_id: UUID | None, start: datetime, end: datetime
) -> ColumnElement[bool]:
    m = AttentionMetric
    clauses = [m.meeting_id == meeting_id, m.time >= start, m.time < end]
    if participant_id is not None:
        clauses.append(m.participant_id == participant_id)
    return and_(*clauses)


def _round(expression: ColumnElement[Any] | QueryableAttribute[Any]) -> ColumnElement[float]:
    # Two decimals, as NUMERIC(6,2) stores them: the on-the-fly tail equals the stored roll-up.
    return type_coerce(func.round(expression, 2), _SCORE)


def _is_hypertable(connection: Connection) -> bool:
    installed = connection.execute(text("SELECT 1 FROM pg_extension WHERE extname = 'timescaledb'")).first()
    if installed is None:
        return False
    found = connection.execute(
        text(
            "SELECT 1 FROM timescaledb_information.hypertables "
            "WHERE hypertable_schema = 'attention' AND hypertable_name = 'attention_metrics'"
        )
    ).first()
    return found is not None


def _floor_minute(moment: datetime) -> datetime:
    return moment.replace(second=0, microsecond=0)


def _utc(moment: datetime) -> datetime:
    # SQLite stores naive UTC: every bound must be UTC before it is compared; naive means UTC.
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
