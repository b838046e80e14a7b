"""The attention time series on a real PostgreSQL without TimescaleDB: daily partitions made
ahead, retention by dropping whole days, the worker's 1-minute roll-up (tests/services.py)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from facesocial.store import attention_partitions, migrate
from facesocial.store.attention_metrics import DAYS_AHEAD, SqlAttentionMetrics, open_attention_metrics
from facesocial.store.attention_partitions import DEFAULT_PARTITION, partition_name
from facesocial.store.db import Database
from tests.attention_metrics_checks import (
    concurrent_rollups_agree,
    delete_meeting_erases_only_it,
    rollup_matches_group_by,
    series,
)
from tests.services import scratch_postgres

NOW = datetime.now(UTC)


@pytest.fixture
def pg_url() -> Iterator[str]:
    with scratch_postgres() as url:
        yield url.replace("postgresql://", "postgresql+psycopg://", 1)


@pytest.fixture
def store(pg_url: str) -> Iterator[SqlAttentionMetrics]:
    database = Database(pg_url)
    migrate.upgrade(database)
    opened = open_attention_metrics(database, retention_days=90)
    assert isinstance(opened, SqlAttentionMetrics)
    try:
        yield opened
    finally:
        database.dispose()


def _partition_of(store: SqlAttentionMetrics, moment: datetime) -> str:
    with store._db.engine.connect() as connection:
        return str(
            connection.execute(
                text("SELECT tableoid::regclass::text FROM attention.attention_metrics WHERE time = :t"),
                {"t": moment},
            ).scalar_one()
        )


def test_backend_and_partitions_made_ahead(store: SqlAttentionMetrics) -> None:
    assert store.backend == "postgres_partitions"
    today = NOW.date()
    ahead = {partition_name(today + timedelta(days=n)) for n in range(DAYS_AHEAD + 1)}
    assert ahead | {DEFAULT_PARTITION} == set(store.partitions())  # the migration made them
    # A row beyond the made days lands in DEFAULT; making its day moves it into the new partition.
    meeting, person = uuid.uuid4(), uuid.uuid4()
    far = NOW + timedelta(days=DAYS_AHEAD + 3)
    (row,) = series(meeting, [person], far, 1, 1, 31)
    store.write([row])
    assert _partition_of(store, row.time) == f"attention.{DEFAULT_PARTITION}"
    store.ensure_partitions(far)
    assert _partition_of(store, row.time) == f"attention.{partition_name(row.time.date())}"
    assert partition_name(far.date() + timedelta(days=DAYS_AHEAD)) in store.partitions()
    store.ensure_partitions(far)  # again: nothing to do
    # Attached partitions carry the parent's indexes.
    with store._db.engine.connect() as connection:
        indexes = connection.execute(
            text("SELECT count(*) FROM pg_indexes WHERE schemaname = 'attention' AND tablename = :t"),
            {"t": partition_name(row.time.date())},
        ).scalar_one()
    assert indexes == 3  # primary key, meeting, participant


def test_rollup_matches_group_by_and_per_minute_has_no_gap(store: SqlAttentionMetrics) -> None:
    store.ensure_partitions(NOW - timedelta(days=2))  # the earlier days get real partitions
    rollup_matches_group_by(store, NOW)


def test_concurrent_rollups(store: SqlAttentionMetrics) -> None:
    concurrent_rollups_agree(store, NOW)


def test_delete_meeting(store: SqlAttentionMetrics) -> None:
    delete_meeting_erases_only_it(store, NOW)


def test_retention_drops_old_partitions_and_keeps_new(store: SqlAttentionMetrics) -> None:
    meeting, person = uuid.uuid4(), uuid.uuid4()
    store.ensure_partitions(NOW - timedelta(days=95))  # days -95 .. -88
    old = series(meeting, [person], NOW - timedelta(days=94), 300, 5, 41)
    stray = series(meeting, [person], NOW - timedelta(days=200), 60, 10, 42)  # in DEFAULT
    young = series(meeting, [person], NOW - timedelta(days=89), 300, 5, 43)
    recent = series(meeting, [person], NOW - timedelta(minutes=10), 300, 5, 44)
    store.write(old + stray + young + recent)
    store.rollup(NOW)
    before = set(store.partitions())
    dropped_days = {
        partition_name(NOW.date() - timedelta(days=n)) for n in range(88, 96) if n >= 91
    }  # a day goes once wholly older than 90 days: its end <= now - 90 days
    assert dropped_days <= before
    removed = store.retention(NOW)
    after = set(store.partitions())
    assert before - after == dropped_days
    assert partition_name((NOW - timedelta(days=89)).date()) in after
    assert partition_name(NOW.date()) in after
    assert removed == len(old) + len(stray)
    kept = store.raw(meeting, None, NOW - timedelta(days=365), NOW + timedelta(days=1), 10_000)
    assert kept == sorted(young + recent, key=lambda row: row.time)
    assert store.retention(NOW) == 0
    minutes = store.per_minute(meeting, None, NOW - timedelta(days=365), NOW + timedelta(days=1))
    assert sum(m.sample_count for m in minutes) == len(old) + len(stray) + len(young) + len(recent)


def test_health_ready_reports_the_backend(pg_url: str, tmp_path: Path) -> None:
    from facesocial.api.app import create_app
    from facesocial.container import Container
    from facesocial.settings import Settings

    settings = Settings(data_dir=tmp_path / "data", database_url=pg_url)
    settings.models.model_dir = tmp_path / "no-models"
    settings.models.auto_pull = False
    container = Container(settings)
    container.prepare()
    try:
        with container.database.engine.connect() as connection:
            assert attention_partitions.is_partitioned(connection)
        with TestClient(create_app(container), raise_server_exceptions=False) as client:
            body = client.get("/health/ready").json()
        assert body["checks"]["attention_metrics"] == {
            "status": "ok",
            "backend": "postgres_partitions",
            "required": False,
        }
    finally:
        container.close()
