"""The attention time series on SQLite: plain tables, roll-up and retention by DELETE/INSERT."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from facesocial.store import migrate
from facesocial.store.attention_metrics import SqlAttentionMetrics, detect_backend, open_attention_metrics
from facesocial.store.db import Database
from tests.attention_metrics_checks import (
    concurrent_rollups_agree,
    delete_meeting_erases_only_it,
    rollup_matches_group_by,
    series,
)

NOW = datetime.now(UTC)


@pytest.fixture
def store(tmp_path: Path) -> SqlAttentionMetrics:
    database = Database(f"sqlite:///{tmp_path / 'metrics.db'}")
    migrate.upgrade(database)
    opened = open_attention_metrics(database, retention_days=90)
    assert isinstance(opened, SqlAttentionMetrics)
    return opened


def test_backend_is_sqlite(store: SqlAttentionMetrics, tmp_path: Path) -> None:
    assert store.backend == "sqlite"
    assert detect_backend(Database(f"sqlite:///{tmp_path / 'metrics.db'}")) == "sqlite"
    store.ensure_partitions(NOW)  # nothing to create, nothing raised
    assert store.partitions() == []


def test_rollup_matches_group_by_and_per_minute_has_no_gap(store: SqlAttentionMetrics) -> None:
    rollup_matches_group_by(store, NOW)


def test_concurrent_rollups(store: SqlAttentionMetrics) -> None:
    concurrent_rollups_agree(store, NOW)


def test_delete_meeting(store: SqlAttentionMetrics) -> None:
    delete_meeting_erases_only_it(store, NOW)


def test_rollup_of_an_empty_store_and_of_a_past_range(store: SqlAttentionMetrics) -> None:
    assert store.rollup(NOW) == 0
    meeting, person = uuid.uuid4(), uuid.uuid4()
    start = NOW.replace(second=0, microsecond=0) - timedelta(hours=20)
    store.write(series(meeting, [person], start, 3 * 3600, 30, 11))  # three hours, 120/h
    # A roll-up after a long stop works through the backlog in bounded chunks.
    assert store.rollup(NOW) == 180
    assert store.rollup(NOW, since=start) == 180  # explicit re-aggregation: the same buckets
    assert sum(row.sample_count for row in store.per_minute(meeting, None, start, NOW)) == 360


def test_retention_deletes_old_rows_and_keeps_new(store: SqlAttentionMetrics) -> None:
    meeting, person = uuid.uuid4(), uuid.uuid4()
    old = series(meeting, [person], NOW - timedelta(days=95), 120, 10, 21)
    edge = series(meeting, [person], NOW - timedelta(days=89), 120, 10, 22)
    store.write(old + edge)
    store.rollup(NOW)
    assert store.retention(NOW) == len(old)
    kept = store.raw(meeting, None, NOW - timedelta(days=100), NOW, 10_000)
    assert kept == sorted(edge, key=lambda row: row.time)
    assert store.retention(NOW) == 0
    # The roll-up of the removed days stays (as TimescaleDB keeps a continuous aggregate's).
    minutes = store.per_minute(meeting, None, NOW - timedelta(days=100), NOW)
    assert sum(row.sample_count for row in minutes) == len(old) + len(edge)


def test_health_ready_reports_the_backend(tmp_path: Path) -> None:
    from facesocial.api.app import create_app
    from facesocial.container import Container
    from facesocial.settings import Settings

    settings = Settings(data_dir=tmp_path / "data")
    settings.models.model_dir = tmp_path / "no-models"
    settings.models.auto_pull = False
    container = Container(settings)
    container.prepare()
    try:
        with TestClient(create_app(container), raise_server_exceptions=False) as client:
            body = client.get("/health/ready").json()
        assert body["checks"]["attention_metrics"] == {"status": "ok", "backend": "sqlite", "required": False}
    finally:
        container.close()
