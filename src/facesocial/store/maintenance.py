"""Database maintenance: monthly log partitions and data retention (design document 000 §7).

Both functions are safe to run repeatedly (a daily or weekly job) and on either database:

* :func:`ensure_log_partitions` creates the coming monthly partitions of
  ``audit.ai_operations_log`` on PostgreSQL (migration 0003 made it partitioned); SQLite has
  no partitions and nothing to do.
* :func:`apply_retention` deletes what the retention policy says is too old. On PostgreSQL a
  month of operations log that is entirely past the cut-off is dropped as a whole partition
  (instant, no table bloat) before the remainder is deleted row by row.

Partition bounds are calendar months in UTC, whatever the server's time zone.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from sqlalchemy import Connection, delete, select, text

from facesocial.store.db import Database
from facesocial.store.tables import (
    AiOperationLog,
    DeepfakeAnalysis,
    FrameAnalysis,
    LivenessSession,
    UsageLog,
)
from facesocial.store.types import utcnow

LOG_SCHEMA = "audit"
LOG_TABLE = "ai_operations_log"
DEFAULT_PARTITION = f"{LOG_TABLE}_default"
_MONTHLY = re.compile(rf"^{LOG_TABLE}_y(\d{{4}})m(\d{{2}})$")
# A maintenance job must not queue behind a long transaction while holding up every writer
# that queues behind it: give up and let the next run retry instead.
_LOCK_TIMEOUT = "10s"


@dataclass(frozen=True)
class RetentionPolicy:
    """Retention periods in days; the defaults are those of document 000 §7.2."""

    # audit.ai_operations_log and audit.usage_logs ("logs older than 1 year").
    logs_days: int = 365
    # Completed deepfake analyses and their frames ("older than 6 months").
    completed_analyses_days: int = 182
    # Liveness sessions are deleted once expired; a grace period keeps them for inspection.
    expired_sessions_grace_days: int = 0

    def __post_init__(self) -> None:
        for name in ("logs_days", "completed_analyses_days", "expired_sessions_grace_days"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must not be negative")


def partition_name(month: date) -> str:
    """``ai_operations_log_yYYYYmMM``, the naming of document 000 §7.1."""
    return f"{LOG_TABLE}_y{month.year:04d}m{month.month:02d}"


def month_of(moment: datetime) -> date:
    """The first day of the UTC month containing ``moment`` (naive means UTC)."""
    moment = _utc(moment)
    return date(moment.year, moment.month, 1)


def add_months(month: date, count: int) -> date:
    index = month.year * 12 + month.month - 1 + count
    return date(index // 12, index % 12 + 1, 1)


def is_partitioned(db: Database) -> bool:
    """True when ``audit.ai_operations_log`` is a partitioned table (PostgreSQL at >= 0003)."""
    if not _is_postgres(db):
        return False
    with db.engine.connect() as connection:
        return _is_partitioned(connection)


def log_partitions(db: Database) -> list[str]:
    """Names of the partitions of ``audit.ai_operations_log`` (sorted; empty on SQLite)."""
    if not _is_postgres(db):
        return []
    with db.engine.connect() as connection:
        if not _is_partitioned(connection):
            return []
        return sorted(_partitions(connection))


def ensure_log_partitions(db: Database, months_ahead: int = 3, *, now: datetime | None = None) -> list[str]:
    """Create the partitions of the current month and the next ``months_ahead`` months.

    Returns the names created (empty when all exist, and always on SQLite). Rows that
    already landed in the DEFAULT partition for such a month are moved into it.
    """
    if months_ahead < 0:
        raise ValueError("months_ahead must not be negative")
    if not _is_postgres(db):
        return []
    first = month_of(_utc(now or utcnow()))
    wanted = [add_months(first, offset) for offset in range(months_ahead + 1)]
    with db.engine.connect() as connection:
        if not _is_partitioned(connection):
            raise RuntimeError(
                f"{LOG_SCHEMA}.{LOG_TABLE} is not partitioned: run the migrations (facesocial db upgrade)"
            )
        if all(partition_name(month) in _partitions(connection) for month in wanted):
            return []  # the usual case: no lock taken at all
    created: list[str] = []
    with db.engine.begin() as connection:
        connection.execute(text(f"SET LOCAL lock_timeout = '{_LOCK_TIMEOUT}'"))
        # Serialises concurrent runs and keeps writers out while rows move out of DEFAULT.
        connection.execute(text(f"LOCK TABLE {LOG_SCHEMA}.{LOG_TABLE} IN ACCESS EXCLUSIVE MODE"))
        existing = _partitions(connection)  # again, now that nobody else can add one
        for month in wanted:
            name = partition_name(month)
            if name not in existing:
                _create_partition(connection, month)
                created.append(name)
    return created


def apply_retention(
    db: Database, policy: RetentionPolicy | None = None, *, now: datetime | None = None
) -> dict[str, int]:
    """Delete data older than the policy allows (document 000 §7.2).

    Returns the number of rows removed per table, keyed ``schema.table``, plus
    ``audit.ai_operations_log:partitions_dropped``. Each table is cleaned in its own
    transaction, so a failure keeps the work already done.
    """
    policy = policy or RetentionPolicy()
    now = _utc(now or utcnow())
    log_cutoff = now - timedelta(days=policy.logs_days)
    analyses_cutoff = now - timedelta(days=policy.completed_analyses_days)
    sessions_cutoff = now - timedelta(days=policy.expired_sessions_grace_days)
    counts: dict[str, int] = {}

    dropped_rows, dropped_partitions = _drop_old_partitions(db, log_cutoff)
    with db.engine.begin() as connection:
        deleted = connection.execute(delete(AiOperationLog).where(AiOperationLog.created_at < log_cutoff))
        counts["audit.ai_operations_log"] = dropped_rows + deleted.rowcount
    counts["audit.ai_operations_log:partitions_dropped"] = dropped_partitions

    with db.engine.begin() as connection:
        deleted = connection.execute(delete(UsageLog).where(UsageLog.request_date < log_cutoff))
        counts["audit.usage_logs"] = deleted.rowcount

    with db.engine.begin() as connection:
        deleted = connection.execute(
            delete(LivenessSession).where(LivenessSession.expires_at < sessions_cutoff)
        )
        counts["antispoofing.liveness_sessions"] = deleted.rowcount

    with db.engine.begin() as connection:
        old = select(DeepfakeAnalysis.id).where(
            DeepfakeAnalysis.job_status == "completed", DeepfakeAnalysis.completed_at < analyses_cutoff
        )
        # Frames first and explicitly: counted, and independent of ON DELETE CASCADE (which
        # SQLite honours only with PRAGMA foreign_keys on).
        frames = connection.execute(delete(FrameAnalysis).where(FrameAnalysis.analysis_id.in_(old)))
        analyses = connection.execute(delete(DeepfakeAnalysis).where(DeepfakeAnalysis.id.in_(old)))
        counts["deepfake_detection.frame_analyses"] = frames.rowcount
        counts["deepfake_detection.deepfake_analyses"] = analyses.rowcount
    return counts


def _utc(moment: datetime) -> datetime:
    # SQLite stores timestamps as naive UTC text, so every bound must be UTC before it is
    # compared; a naive argument is taken to be UTC already.
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


# --- PostgreSQL helpers ----------------------------------------------------------------------------


def _is_postgres(db: Database) -> bool:
    return db.engine.dialect.name == "postgresql"


def table_is_partitioned(connection: Connection, schema: str, table: str) -> bool:
    """True when ``schema.table`` is a partitioned table (PostgreSQL)."""
    found = connection.execute(
        text(
            "SELECT 1 FROM pg_partitioned_table p JOIN pg_class c ON c.oid = p.partrelid "
            "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = :schema AND c.relname = :table"
        ),
        {"schema": schema, "table": table},
    ).first()
    return found is not None


def partition_names(connection: Connection, schema: str, table: str) -> set[str]:
    """Names of the partitions of ``schema.table`` (PostgreSQL; its DEFAULT partition included)."""
    rows = connection.execute(
        text(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "WHERE i.inhparent = CAST(:parent AS regclass)"
        ),
        {"parent": f"{schema}.{table}"},
    )
    return {str(row[0]) for row in rows}


def _is_partitioned(connection: Connection) -> bool:
    return table_is_partitioned(connection, LOG_SCHEMA, LOG_TABLE)


def _partitions(connection: Connection) -> set[str]:
    return partition_names(connection, LOG_SCHEMA, LOG_TABLE)


def _bound(month: date) -> str:
    # An explicit UTC offset: a bare date would be read in the session's time zone.
    return f"'{month.isoformat()} 00:00:00+00'"


def _create_partition(connection: Connection, month: date) -> None:
    """Create one monthly partition, moving any of its rows out of the DEFAULT partition.

    PostgreSQL refuses to add a partition while DEFAULT holds rows that belong to it, so the
    new table is created detached, filled from DEFAULT, then attached (the caller holds the
    lock that keeps new rows from arriving meanwhile).
    """
    name = partition_name(month)
    lower, upper = _bound(month), _bound(add_months(month, 1))
    parent = f"{LOG_SCHEMA}.{LOG_TABLE}"
    connection.execute(
        text(f"CREATE TABLE {LOG_SCHEMA}.{name} (LIKE {parent} INCLUDING DEFAULTS INCLUDING CONSTRAINTS)")
    )
    connection.execute(
        text(
            f"WITH moved AS (DELETE FROM {LOG_SCHEMA}.{DEFAULT_PARTITION} "
            f"WHERE created_at >= {lower} AND created_at < {upper} RETURNING *) "
            f"INSERT INTO {LOG_SCHEMA}.{name} SELECT * FROM moved"
        )
    )
    # ATTACH creates the parent's indexes (primary key included) on the new table.
    connection.execute(
        text(
            f"ALTER TABLE {parent} ATTACH PARTITION {LOG_SCHEMA}.{name} "
            f"FOR VALUES FROM ({lower}) TO ({upper})"
        )
    )


# Arbitrary, fixed key of the advisory lock that serialises the operations log's partition drops.
_RETENTION_LOCK_KEY = 0x46535F4F50534C  # "FS_OPSL"


def _drop_old_partitions(db: Database, cutoff: datetime) -> tuple[int, int]:
    """Drop the monthly partitions that end at or before ``cutoff``: (rows, partitions)."""
    if not _is_postgres(db):
        return 0, 0
    with db.engine.begin() as connection:
        if not _is_partitioned(connection):
            return 0, 0
        # Concurrent retention runs take turns (one would count or drop what the other dropped).
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _RETENTION_LOCK_KEY})
        old: list[str] = []
        for name in _partitions(connection):
            match = _MONTHLY.match(name)
            if match is None:
                continue  # the DEFAULT partition: its old rows are deleted row by row
            upper = add_months(date(int(match[1]), int(match[2]), 1), 1)
            if datetime(upper.year, upper.month, upper.day, tzinfo=UTC) <= cutoff:
                old.append(name)
        if not old:
            return 0, 0
        connection.execute(text(f"SET LOCAL lock_timeout = '{_LOCK_TIMEOUT}'"))
        rows = 0
        for name in sorted(old):
            rows += int(connection.execute(text(f"SELECT count(*) FROM {LOG_SCHEMA}.{name}")).scalar_one())
            connection.execute(text(f"DROP TABLE {LOG_SCHEMA}.{name}"))
        return rows, len(old)
