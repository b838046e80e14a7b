"""partition audit.ai_operations_log by month (PostgreSQL only)

Design document 000 §7.1: the operations log is RANGE-partitioned on ``created_at`` with one
partition per calendar month (UTC), named ``ai_operations_log_yYYYYmMM``, plus a DEFAULT
partition so that an insert never fails when the maintenance job
(:func:`facesocial.store.maintenance.ensure_log_partitions`) has not yet created a month.
Retention can then drop a whole month instead of deleting row by row.

PostgreSQL cannot turn a table into a partitioned one in place, so the table is rebuilt:
rename the plain table, create the partitioned one with the same columns, create a partition
for every month that holds rows plus the current and the next two months, copy, drop the
old table. The primary key of a partitioned table must contain the partition key, so it
becomes ``(id, created_at)``; ``id`` stays a random UUID and the ORM still maps ``id`` alone.

On SQLite (no partitioning) this revision is a no-op.

This file is deliberately self-contained (it does not import facesocial.store.maintenance):
a migration must keep doing what it did when it was written.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22 03:15:00
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime

import sqlalchemy as sa
from alembic import op

revision: str = '0003'
down_revision: str | None = '0002'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLE = "audit.ai_operations_log"
# (index name, column) as in revision 0001; recreated on the partitioned parent, from which
# PostgreSQL propagates them to every partition.
INDEXES = (
    ("idx_ai_operations_log_user_id", "user_id"),
    ("idx_ai_operations_log_service", "service_name"),
    ("idx_ai_operations_log_operation", "operation_type"),
    ("idx_ai_operations_log_created_at", "created_at"),
)
# The current month and this many following months get a partition straight away.
MONTHS_AHEAD = 2


def _add_months(month: date, count: int) -> date:
    index = month.year * 12 + month.month - 1 + count
    return date(index // 12, index % 12 + 1, 1)


def _bound(month: date) -> str:
    # An explicit UTC offset: a bare date would be read in the session's time zone.
    return f"'{month.isoformat()} 00:00:00+00'"


def _create_month(month: date) -> None:
    name = f"ai_operations_log_y{month.year:04d}m{month.month:02d}"
    op.execute(
        f"CREATE TABLE audit.{name} PARTITION OF {TABLE} "
        f"FOR VALUES FROM ({_bound(month)}) TO ({_bound(_add_months(month, 1))})"
    )


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return
    # Free the names (table, primary-key index, indexes) for the partitioned table.
    op.execute(f"ALTER TABLE {TABLE} RENAME TO ai_operations_log_plain")
    op.execute(
        "ALTER TABLE audit.ai_operations_log_plain "
        "RENAME CONSTRAINT pk_ai_operations_log TO pk_ai_operations_log_plain"
    )
    for name, _column in INDEXES:
        op.execute(f"DROP INDEX audit.{name}")
    # LIKE copies the columns in the same order (so INSERT ... SELECT * is safe), NOT NULLs
    # and defaults, whatever revisions before this one added.
    op.execute(
        f"CREATE TABLE {TABLE} (LIKE audit.ai_operations_log_plain INCLUDING DEFAULTS "
        "INCLUDING CONSTRAINTS INCLUDING COMMENTS) PARTITION BY RANGE (created_at)"
    )
    op.execute(f"ALTER TABLE {TABLE} ADD CONSTRAINT pk_ai_operations_log PRIMARY KEY (id, created_at)")
    for name, column in INDEXES:
        op.execute(f"CREATE INDEX {name} ON {TABLE} ({column})")

    rows = bind.execute(
        sa.text(
            "SELECT DISTINCT date_trunc('month', created_at AT TIME ZONE 'UTC')::date "
            "FROM audit.ai_operations_log_plain"
        )
    )
    months: set[date] = {row[0] for row in rows}
    today = datetime.now(UTC).date()
    current = date(today.year, today.month, 1)
    months.update(_add_months(current, offset) for offset in range(MONTHS_AHEAD + 1))
    for month in sorted(months):
        _create_month(month)
    op.execute(f"CREATE TABLE audit.ai_operations_log_default PARTITION OF {TABLE} DEFAULT")

    op.execute(f"INSERT INTO {TABLE} SELECT * FROM audit.ai_operations_log_plain")
    op.execute("DROP TABLE audit.ai_operations_log_plain")


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(f"ALTER TABLE {TABLE} RENAME TO ai_operations_log_partitioned")
    op.execute(
        "ALTER TABLE audit.ai_operations_log_partitioned "
        "RENAME CONSTRAINT pk_ai_operations_log TO pk_ai_operations_log_partitioned"
    )
    for name, _column in INDEXES:
        op.execute(f"DROP INDEX audit.{name}")
    op.execute(
        f"CREATE TABLE {TABLE} (LIKE audit.ai_operations_log_partitioned INCLUDING DEFAULTS "
        "INCLUDING CONSTRAINTS INCLUDING COMMENTS)"
    )
    op.execute(f"ALTER TABLE {TABLE} ADD CONSTRAINT pk_ai_operations_log PRIMARY KEY (id)")
    for name, column in INDEXES:
        op.execute(f"CREATE INDEX {name} ON {TABLE} ({column})")
    op.execute(f"INSERT INTO {TABLE} SELECT * FROM audit.ai_operations_log_partitioned")
    # Dropping the parent drops every partition with it.
    op.execute("DROP TABLE audit.ai_operations_log_partitioned")
