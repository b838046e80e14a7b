"""Daily RANGE partitions of ``attention.attention_metrics`` on PostgreSQL without TimescaleDB.

Migration 0012 made the table partitioned by ``time`` with one partition per UTC day, named
``attention_metrics_yYYYYmMMdDD``, plus ``attention_metrics_default`` so that an insert outside
every created day never fails. Why days, not months (as the operations log): a live meeting
writes one row per participant per second — 86,400 rows per participant per day — so a day is
already a sizeable table; dropping a day at a time keeps retention within a day of its 90-day
target, and a query for one meeting (hours) prunes to one or two small partitions.

All functions take an open connection; the caller owns the transaction.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta

from sqlalchemy import Connection, text

from facesocial.store import maintenance

SCHEMA = "attention"
TABLE = "attention_metrics"
PARENT = f"{SCHEMA}.{TABLE}"
DEFAULT_PARTITION = f"{TABLE}_default"
_DAILY = re.compile(rf"^{TABLE}_y(\d{{4}})m(\d{{2}})d(\d{{2}})$")
# A maintenance job must not queue behind a long transaction while holding up every writer
# that queues behind it: give up and let the next run retry instead.
LOCK_TIMEOUT = "10s"


def partition_name(day: date) -> str:
    """``attention_metrics_yYYYYmMMdDD`` for the UTC day ``day``."""
    return f"{TABLE}_y{day.year:04d}m{day.month:02d}d{day.day:02d}"


def day_of(name: str) -> date | None:
    """The day a daily partition holds, None for any other name (the DEFAULT partition)."""
    match = _DAILY.match(name)
    return None if match is None else date(int(match[1]), int(match[2]), int(match[3]))


def is_partitioned(connection: Connection) -> bool:
    """True when ``attention.attention_metrics`` is a partitioned table."""
    return maintenance.table_is_partitioned(connection, SCHEMA, TABLE)


def partitions(connection: Connection) -> set[str]:
    """Names of the partitions of ``attention.attention_metrics`` (DEFAULT included)."""
    return maintenance.partition_names(connection, SCHEMA, TABLE)


def wanted_days(now: datetime, days_ahead: int) -> list[date]:
    """Today (UTC) and the ``days_ahead`` following days."""
    if days_ahead < 0:
        raise ValueError("days_ahead must not be negative")
    today = _utc(now).date()
    return [today + timedelta(days=offset) for offset in range(days_ahead + 1)]


def ensure(connection: Connection, now: datetime, days_ahead: int) -> list[str]:
    """Create the missing daily partitions from today to ``days_ahead`` days ahead.

    Returns the names created. Rows that already landed in DEFAULT for such a day are moved
    into the new partition (PostgreSQL refuses to attach it otherwise). Takes an ACCESS
    EXCLUSIVE lock on the parent only when something is missing, which serialises concurrent
    runs and keeps writers out while rows move; writers wait at most a moment, once a day.
    """
    days = wanted_days(now, days_ahead)
    if all(partition_name(day) in partitions(connection) for day in days):
        return []  # the usual case: no lock taken at all
    connection.execute(text(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'"))
    connection.execute(text(f"LOCK TABLE {PARENT} IN ACCESS EXCLUSIVE MODE"))
    existing = partitions(connection)  # again, now that nobody else can add one
    created: list[str] = []
    for day in days:
        name = partition_name(day)
        if name not in existing:
            _create(connection, day)
            created.append(name)
    return created


# Arbitrary, fixed key of the advisory lock that serialises retention's partition drops.
RETENTION_LOCK_KEY = 0x46535F41545452  # "FS_ATTR"


def drop_older_than(connection: Connection, cutoff: datetime) -> tuple[list[str], int]:
    """Drop every daily partition that ends at or before ``cutoff``: (names dropped, their rows).

    Whole tables go (instant, no dead rows, no vacuum); rows counted first so retention can
    report them. Rows of the DEFAULT partition are the caller's to delete row by row.
    """
    cutoff = _utc(cutoff)
    # Two processes running retention at once (replicas, a beat and a manual run) must not both
    # list a partition and then count or drop it after the other dropped it (UndefinedTable):
    # the second waits here for the first's transaction, then lists what is left.
    connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": RETENTION_LOCK_KEY})
    old = sorted(
        name
        for name in partitions(connection)
        if (day := day_of(name)) is not None and _midnight(day + timedelta(days=1)) <= cutoff
    )
    if not old:
        return [], 0
    connection.execute(text(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'"))
    rows = 0
    for name in old:
        rows += int(connection.execute(text(f"SELECT count(*) FROM {SCHEMA}.{name}")).scalar_one())
        connection.execute(text(f"DROP TABLE {SCHEMA}.{name}"))
    return old, rows


def _create(connection: Connection, day: date) -> None:
    name = partition_name(day)
    lower, upper = _bound(day), _bound(day + timedelta(days=1))
    connection.execute(
        text(f"CREATE TABLE {SCHEMA}.{name} (LIKE {PARENT} INCLUDING DEFAULTS INCLUDING CONSTRAINTS)")
    )
    connection.execute(
        text(
            f"WITH moved AS (DELETE FROM {SCHEMA}.{DEFAULT_PARTITION} "
            f"WHERE time >= {lower} AND time < {upper} RETURNING *) "
            f"INSERT INTO {SCHEMA}.{name} SELECT * FROM moved"
        )
    )
    # ATTACH creates the parent's indexes (primary key included) on the new table.
    connection.execute(
        text(f"ALTER TABLE {PARENT} ATTACH PARTITION {SCHEMA}.{name} FOR VALUES FROM ({lower}) TO ({upper})")
    )


def _bound(day: date) -> str:
    # An explicit UTC offset: a bare date would be read in the session's time zone.
    return f"'{day.isoformat()} 00:00:00+00'"


def _midnight(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


def _utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
