"""The TimescaleDB path of the attention time series, checked without a TimescaleDB server.

No server with the extension is available to the tests: this checks the SQL migration 0012
would issue and that the backend reads the continuous aggregate. The other backends run
against real databases (test_attention_metrics_sqlite.py, integration/test_attention_metrics_postgres.py).
"""

from __future__ import annotations

import importlib
import re
import uuid
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

import pytest
from sqlalchemy.dialects import postgresql

from facesocial.store import attention_timescale
from facesocial.store.attention_timescale import SETUP_SQL, TimescaleAttentionMetrics
from facesocial.store.db import Database

MIGRATION = importlib.import_module("facesocial.store.migrations.versions.0012_attention")


def _flat(sql: str) -> str:
    return re.sub(r"\s+", " ", sql).strip().lower()


def test_migration_issues_the_module_sql() -> None:
    # The migration keeps its own frozen copy; today both say the same.
    assert tuple(MIGRATION.TIMESCALE_SQL) == SETUP_SQL


@pytest.mark.parametrize(
    "document_statement",
    [
        # Document 004 §3.1-3.4, with the schema ``attention`` added to every name.
        "CREATE EXTENSION IF NOT EXISTS timescaledb",
        "SELECT create_hypertable('attention.attention_metrics', 'time')",
        "ALTER TABLE attention.attention_metrics SET (timescaledb.compress, "
        "timescaledb.compress_segmentby = 'meeting_id, participant_id')",
        "SELECT add_compression_policy('attention.attention_metrics', INTERVAL '1 day')",
        "SELECT add_retention_policy('attention.attention_metrics', INTERVAL '90 days')",
        "CREATE MATERIALIZED VIEW attention.attention_metrics_1min WITH (timescaledb.continuous) AS SELECT "
        "time_bucket('1 minute', time) AS bucket, meeting_id, participant_id, AVG(attention_score) AS "
        "avg_attention, MIN(attention_score) AS min_attention, MAX(attention_score) AS max_attention, "
        "AVG(gaze_score) AS avg_gaze, AVG(head_pose_score) AS avg_head_pose, COUNT(*) AS sample_count "
        "FROM attention.attention_metrics GROUP BY bucket, meeting_id, participant_id",
        "SELECT add_continuous_aggregate_policy('attention.attention_metrics_1min', start_offset => "
        "INTERVAL '1 hour', end_offset => INTERVAL '1 minute', schedule_interval => INTERVAL '1 minute')",
    ],
)
def test_setup_sql_is_the_documents(document_statement: str) -> None:
    assert _flat(document_statement) in [_flat(statement) for statement in SETUP_SQL]


class _Recorder:
    """Stands in for ``alembic.op``: records every call, as PostgreSQL with TimescaleDB."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, tuple[Any, ...], dict[str, Any]]] = []

    def get_bind(self) -> Any:
        return SimpleNamespace(dialect=SimpleNamespace(name="postgresql"))

    def f(self, name: str) -> str:
        return name

    def __getattr__(self, name: str) -> Any:
        def record(*args: Any, **kwargs: Any) -> None:
            self.calls.append((name, args, kwargs))

        return record


def test_upgrade_with_timescaledb_builds_the_hypertable_not_partitions(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    recorder = _Recorder()
    monkeypatch.setattr(MIGRATION, "op", recorder)
    monkeypatch.setattr(MIGRATION, "timescale_usable", lambda _bind: True)
    MIGRATION.upgrade()
    tables = {args[0]: kwargs for name, args, kwargs in recorder.calls if name == "create_table"}
    assert "postgresql_partition_by" not in tables["attention_metrics"]
    assert "attention_metrics_1min" not in tables  # the continuous aggregate takes its name
    executed = [args[0] for name, args, _kwargs in recorder.calls if name == "execute"]
    assert not any("PARTITION OF" in statement for statement in executed)
    assert executed[-len(SETUP_SQL) :] == list(SETUP_SQL)


def test_upgrade_without_timescaledb_partitions_by_day(monkeypatch: pytest.MonkeyPatch) -> None:
    recorder = _Recorder()
    monkeypatch.setattr(MIGRATION, "op", recorder)
    monkeypatch.setattr(MIGRATION, "timescale_usable", lambda _bind: False)
    MIGRATION.upgrade()
    tables = {args[0]: kwargs for name, args, kwargs in recorder.calls if name == "create_table"}
    assert tables["attention_metrics"]["postgresql_partition_by"] == "RANGE (time)"
    assert "attention_metrics_1min" in tables
    executed = [args[0] for name, args, _kwargs in recorder.calls if name == "execute"]
    assert (
        sum("PARTITION OF attention.attention_metrics FOR VALUES" in s for s in executed)
        == MIGRATION.DAYS_AHEAD + 1
    )
    assert not any("timescaledb" in statement for statement in executed)


def test_timescale_store_reads_the_aggregate_and_leaves_upkeep_to_timescaledb() -> None:
    # No connection is opened: the engine connects lazily and these methods never reach it.
    store = TimescaleAttentionMetrics(Database("postgresql+psycopg://nobody@127.0.0.1:1/none"), 90)
    now = datetime.now(UTC)
    assert store.backend == "timescaledb"
    assert store.rollup(now) == 0
    assert store.retention(now) == 0
    store.ensure_partitions(now)
    captured: list[str] = []

    class _Connection:
        def __enter__(self) -> _Connection:
            return self

        def __exit__(self, *_exc: object) -> None:
            return None

        def execute(self, query: Any) -> list[Any]:
            captured.append(str(query.compile(dialect=postgresql.dialect())))
            return []

    store._db = SimpleNamespace(engine=SimpleNamespace(connect=_Connection))  # type: ignore[assignment]
    assert store.per_minute(uuid.uuid4(), None, now, now) == []
    (sql,) = captured
    assert "FROM attention.attention_metrics_1min" in sql and "attention.attention_metrics " not in sql
    assert attention_timescale.SETUP_SQL[-1].endswith("materialized_only = false)")
