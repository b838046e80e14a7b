"""The full schema of document 000 on SQLite: migrations, key columns, retention."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import inspect, select

from facesocial.store import maintenance, migrate
from facesocial.store.db import Database
from facesocial.store.maintenance import RetentionPolicy
from facesocial.store.tables import (
    AiModel,
    AiOperationLog,
    ApiKey,
    DeepfakeAnalysis,
    FrameAnalysis,
    LivenessSession,
    UsageLog,
)

# Every table of document 000 (plus usage_logs of document 003) with the columns that
# identify it; SQLite has no schemas, so names alone.
KEY_COLUMNS: dict[str, set[str]] = {
    "users": {"user_id", "face_id", "consent_given"},
    "face_data": {"user_id", "face_id", "embedding_version", "milvus_collection"},
    "recognition_sessions": {"session_id", "operation_type", "matched_face_id"},
    "face_groups": {"group_name", "privacy_level"},
    "face_group_members": {"group_id", "face_id"},
    "detection_requests": {"request_id", "faces_detected", "status"},
    "detected_faces": {"detection_request_id", "face_index", "bbox_x"},
    "antispoofing_checks": {"session_id", "check_type", "input_type", "is_live", "spoof_type", "risk_level"},
    "liveness_sessions": {"session_token", "challenges_required", "session_status", "expires_at"},
    "deepfake_analyses": {"analysis_id", "content_type", "content_hash", "job_status", "completed_at"},
    "frame_analyses": {"analysis_id", "frame_number", "timestamp_ms", "is_deepfake"},
    "demographic_analyses": {"request_id", "image_hash", "faces_analyzed", "batch_id"},
    "face_demographics": {"analysis_id", "face_index", "estimated_age", "age_group", "estimated_gender"},
    "ai_operations_log": {"operation_id", "service_name", "operation_type", "created_at"},
    "performance_metrics": {"metric_date", "service_name", "p95_response_time_ms", "error_rate"},
    "ai_models": {
        "service_name",
        "model_name",
        "model_version",
        "model_type",
        "model_path",
        "model_size_mb",
        "input_dimensions",
        "output_dimensions",
        "avg_inference_time_ms",
        "accuracy_score",
        "status",
        "is_default",
    },
    "service_settings": {"service_name", "setting_key", "setting_value", "setting_type"},
    "usage_logs": {
        "api_key_id",
        "request_type",
        "request_path",
        "request_date",
        "response_code",
        "processing_time",
        "ip_address",
        "user_agent",
    },
    "api_keys": {"key_hash", "request_limit"},
}

NOW = datetime(2026, 6, 15, 12, 0, tzinfo=UTC)


@pytest.fixture
def db(tmp_path: Path) -> Database:
    database = Database(f"sqlite:///{tmp_path / 'schema.db'}")
    migrate.upgrade(database)
    return database


def test_upgrade_downgrade_upgrade_has_every_table_and_key_column(tmp_path: Path) -> None:
    database = Database(f"sqlite:///{tmp_path / 'm.db'}")
    migrate.upgrade(database)
    migrate.downgrade(database, "base")
    assert set(inspect(database.engine).get_table_names()) <= {"alembic_version"}
    migrate.upgrade(database)
    assert migrate.is_current(database)
    inspector = inspect(database.engine)
    assert set(KEY_COLUMNS) <= set(inspector.get_table_names())
    for table, columns in KEY_COLUMNS.items():
        assert columns <= {c["name"] for c in inspector.get_columns(table)}, table
    # Partitioning (revision 0003) is PostgreSQL only: here the log stays a plain table.
    assert inspector.get_pk_constraint("ai_operations_log")["constrained_columns"] == ["id"]


def test_partition_maintenance_is_a_no_op_on_sqlite(db: Database) -> None:
    assert maintenance.ensure_log_partitions(db) == []
    assert maintenance.log_partitions(db) == []
    assert not maintenance.is_partitioned(db)


def test_model_rows_round_trip(db: Database) -> None:
    with db.session() as session:
        session.add(
            AiModel(
                service_name="face_detection",
                model_name="hog",
                model_version="dlib_hog@19.24",
                model_path="dlib://hog",
                model_size_mb=1.25,
                input_dimensions={"min_side": 40},
                training_date=date(2024, 1, 1),
            )
        )
    with db.session() as session:
        model = session.scalars(select(AiModel)).one()
    assert (model.status, model.is_default, model.model_size_mb) == ("active", False, 1.25)
    assert model.input_dimensions == {"min_side": 40}


def _log(age_days: float) -> AiOperationLog:
    return AiOperationLog(
        operation_id=uuid.uuid4().hex,
        service_name="face_detection",
        operation_type="detect",
        created_at=NOW - timedelta(days=age_days),
    )


def _usage(age_days: float, api_key: uuid.UUID) -> UsageLog:
    return UsageLog(
        api_key_id=api_key,
        request_type="detect",
        request_path="/api/v1/face-detection/detect",
        request_date=NOW - timedelta(days=age_days),
        response_code=200,
        processing_time=0.125,
    )


def _session(expires_in_days: float | None) -> LivenessSession:
    return LivenessSession(
        session_token=uuid.uuid4().hex,
        challenges_required=["blink", "turn_left"],
        expires_at=None if expires_in_days is None else NOW + timedelta(days=expires_in_days),
    )


def _analysis(status: str, completed_days_ago: float | None) -> DeepfakeAnalysis:
    return DeepfakeAnalysis(
        id=uuid.uuid4(),
        analysis_id=uuid.uuid4().hex,
        content_type="video",
        content_hash="0" * 64,
        job_status=status,
        completed_at=None if completed_days_ago is None else NOW - timedelta(days=completed_days_ago),
    )


def test_retention_deletes_exactly_the_old_rows(db: Database) -> None:
    key = ApiKey(id=uuid.uuid4(), key_prefix="fs_t", key_hash="a" * 64, key_name="test")
    logs = {age: _log(age) for age in (400, 366, 364, 1)}
    usage = {age: _usage(age, key.id) for age in (500, 366, 10)}
    sessions = {name: _session(days) for name, days in (("expired", -1), ("live", 1), ("no_expiry", None))}
    analyses = {
        "old_done": _analysis("completed", 200),
        "new_done": _analysis("completed", 100),
        "old_failed": _analysis("failed", 200),  # only completed analyses expire
        "pending": _analysis("pending", None),
    }
    frame_counts = {"old_done": 3, "new_done": 2, "old_failed": 1, "pending": 0}
    with db.session() as session:
        session.add(key)
        session.add_all([*logs.values(), *usage.values(), *sessions.values(), *analyses.values()])
        session.flush()
        for name, count in frame_counts.items():
            session.add_all(
                FrameAnalysis(analysis_id=analyses[name].id, frame_number=n, timestamp_ms=n * 40)
                for n in range(count)
            )

    counts = maintenance.apply_retention(db, RetentionPolicy(), now=NOW)

    assert counts == {
        "audit.ai_operations_log": 2,
        "audit.ai_operations_log:partitions_dropped": 0,
        "audit.usage_logs": 2,
        "antispoofing.liveness_sessions": 1,
        "deepfake_detection.frame_analyses": 3,
        "deepfake_detection.deepfake_analyses": 1,
    }
    with db.session() as session:
        assert set(session.scalars(select(AiOperationLog.id))) == {logs[364].id, logs[1].id}
        assert set(session.scalars(select(UsageLog.id))) == {usage[10].id}
        assert set(session.scalars(select(LivenessSession.session_token))) == {
            sessions["live"].session_token,
            sessions["no_expiry"].session_token,
        }
        kept = {analyses[name].id for name in ("new_done", "old_failed", "pending")}
        assert set(session.scalars(select(DeepfakeAnalysis.id))) == kept
        assert set(session.scalars(select(FrameAnalysis.analysis_id))) == {
            analyses["new_done"].id,
            analyses["old_failed"].id,
        }
    # Idempotent: nothing more to remove.
    assert sum(maintenance.apply_retention(db, RetentionPolicy(), now=NOW).values()) == 0


def test_retention_periods_are_configurable(db: Database) -> None:
    with db.session() as session:
        session.add_all([_log(40), _log(20)])
    counts = maintenance.apply_retention(db, RetentionPolicy(logs_days=30), now=NOW)
    assert counts["audit.ai_operations_log"] == 1
    with pytest.raises(ValueError, match="logs_days"):
        RetentionPolicy(logs_days=-1)
