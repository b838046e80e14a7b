"""Two processes run the attention upkeep (ensure_partitions, rollup, retention) at once on one
real PostgreSQL (daily partitions): no process fails, the minutes equal the GROUP BY, old days
go, new rows stay."""

from __future__ import annotations

import subprocess
import sys
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from facesocial.store import migrate
from facesocial.store.attention_metrics import SqlAttentionMetrics, open_attention_metrics
from facesocial.store.db import Database
from tests.attention_metrics_checks import assert_minutes_match, expected_minutes, series
from tests.services import scratch_postgres

pytestmark = [pytest.mark.integration]
NOW = datetime.now(UTC)
ROUNDS = 8
SCRIPT = """
import sys
from datetime import datetime, timedelta
from facesocial.store.attention_metrics import open_attention_metrics
from facesocial.store.db import Database
url, now, rounds = sys.argv[1], datetime.fromisoformat(sys.argv[2]), int(sys.argv[3])
database = Database(url)
store = open_attention_metrics(database, retention_days=90)
for n in range(rounds):
    store.ensure_partitions(now + timedelta(days=n))
    store.rollup(now)
    store.retention(now)
database.dispose()
"""


@pytest.fixture
def pg_url() -> Iterator[str]:
    with scratch_postgres() as url:
        yield url.replace("postgresql://", "postgresql+psycopg://", 1)


def test_two_processes_upkeep_at_once(pg_url: str) -> None:
    database = Database(pg_url)
    migrate.upgrade(database)
    store = open_attention_metrics(database, retention_days=90)
    assert isinstance(store, SqlAttentionMetrics)
    try:
        meeting, old_meeting = uuid.uuid4(), uuid.uuid4()
        people = [uuid.uuid4() for _ in range(3)]
        minute = NOW.replace(second=0, microsecond=0)
        old_day = NOW - timedelta(days=100)
        store.ensure_partitions(old_day)  # the old days have their own partitions, to be dropped
        store.write(series(old_meeting, people, old_day, 600, 2, 3))
        rows = series(meeting, people, minute - timedelta(minutes=30), 30 * 60, 2, 5)
        store.write(rows)
        children = [
            subprocess.Popen(
                [sys.executable, "-c", SCRIPT, pg_url, NOW.isoformat(), str(ROUNDS)],
                stderr=subprocess.PIPE,
                text=True,
            )
            for _ in range(2)
        ]
        failures = []
        for child in children:
            _, err = child.communicate(timeout=300)
            if child.returncode != 0:
                failures.append(err[-1500:])
        assert not failures, failures
        assert_minutes_match(
            store.per_minute(meeting, None, minute - timedelta(hours=1), minute), expected_minutes(rows)
        )
        far = (datetime(1970, 1, 1, tzinfo=UTC), datetime(9999, 1, 1, tzinfo=UTC))
        assert store.raw(old_meeting, None, *far, 10000) == []
        assert len(store.raw(meeting, None, *far, 10000)) == len(rows)
    finally:
        database.dispose()
