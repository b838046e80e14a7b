"""The schema of document 000 on a real PostgreSQL: migrations, partitions, retention.

Needs a server at 127.0.0.1:5432 (user postgres, trust authentication); override with
FACESOCIAL_TEST_PG_URL=postgresql+psycopg://user:password@host:port. Each test gets a
throw-away database ``fs_t_<hex>`` that is dropped afterwards; the tests skip with a clear
message when no server answers.
"""

from __future__ import annotations

import os
import secrets
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest
from sqlalchemy import inspect, make_url, select, text

from facesocial.store import maintenance, migrate
from facesocial.store.db import Database
from facesocial.store.maintenance import RetentionPolicy, add_months, month_of, partition_name
from facesocial.store.tables import SCHEMAS, AiOperationLog

# The server (no database part); the tests connect to its "postgres" database to create theirs.
SERVER = make_url(os.environ.get("FACESOCIAL_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432"))
ADMIN_DSN = SERVER.set(drivername="postgresql", database="postgres").render_as_string(hide_password=False)


def _admin() -> psycopg.Connection[Any]:
    try:
        return psycopg.connect(ADMIN_DSN, autocommit=True, connect_timeout=3)
    except psycopg.OperationalError as error:
        pytest.skip(f"PostgreSQL does not answer at {SERVER!r}: {error}")


@pytest.fixture
def pg() -> Iterator[Database]:
    """A fresh, empty database, dropped (connections terminated first) after the test."""
    name = f"fs_t_{secrets.token_hex(6)}"
    with _admin() as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    database: Database | None = None
    try:  # from here on, whatever fails, the database is dropped
        database = Database(SERVER.set(database=name).render_as_string(hide_password=False))
        yield database
    finally:
        if database is not None:
            database.dispose()
        with _admin() as admin:
            admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = %s AND pid <> pg_backend_pid()",
                (name,),
            )
            admin.execute(f'DROP DATABASE IF EXISTS "{name}"')


def _log(created_at: datetime) -> AiOperationLog:
    return AiOperationLog(
        operation_id=uuid.uuid4().hex,
        service_name="face_detection",
        operation_type="detect",
        created_at=created_at,
    )


def _partition_of(database: Database, row_id: uuid.UUID) -> str:
    with database.engine.connect() as connection:
        return str(
            connection.execute(
                text("SELECT tableoid::regclass::text FROM audit.ai_operations_log WHERE id = :id"),
                {"id": row_id},
            ).scalar_one()
        )


def _scalar(database: Database, sql: str) -> object:
    with database.engine.connect() as connection:
        return connection.execute(text(sql)).scalar()


def test_upgrade_downgrade_upgrade_creates_every_schema_and_table(pg: Database) -> None:
    migrate.upgrade(pg)
    assert migrate.is_current(pg)
    migrate.downgrade(pg, "base")
    assert not migrate.is_current(pg)
    migrate.upgrade(pg)
    assert migrate.is_current(pg)

    with pg.engine.connect() as connection:
        schemas = set(connection.execute(text("SELECT nspname FROM pg_namespace")).scalars())
    assert set(SCHEMAS) <= schemas
    inspector = inspect(pg.engine)
    expected = {
        "core": {"users", "api_keys"},
        "face_recognition": {"face_data", "recognition_sessions", "face_groups", "face_group_members"},
        "face_detection": {"detection_requests", "detected_faces"},
        "antispoofing": {"antispoofing_checks", "liveness_sessions"},
        "deepfake_detection": {"deepfake_analyses", "frame_analyses"},
        "demographics": {"demographic_analyses", "face_demographics"},
        "audit": {"ai_operations_log", "performance_metrics", "usage_logs"},
        "config": {"ai_models", "service_settings"},
        "attention": {"meetings", "participants", "alerts", "attention_metrics", "attention_metrics_1min"},
    }
    for schema, tables in expected.items():
        assert tables <= set(inspector.get_table_names(schema=schema)), schema

    # Native types where the document asks for them.
    columns = {c["name"]: c for c in inspector.get_columns("antispoofing_checks", schema="antispoofing")}
    assert str(columns["ip_address"]["type"]) == "INET"
    assert str(columns["analysis_details"]["type"]) == "JSONB"


def test_document_indexes_exist(pg: Database) -> None:
    migrate.upgrade(pg)
    with pg.engine.connect() as connection:
        indexes = set(
            connection.execute(text("SELECT schemaname || '.' || indexname FROM pg_indexes")).scalars()
        )
    for name in (
        "antispoofing.idx_antispoofing_checks_session_id",
        "antispoofing.idx_antispoofing_checks_is_live",
        "antispoofing.idx_liveness_sessions_status",
        "deepfake_detection.idx_deepfake_analyses_job_status",
        "deepfake_detection.idx_frame_analyses_timestamp",
        "demographics.idx_face_demographics_age_group",
        "demographics.idx_face_demographics_gender",
        "audit.idx_performance_metrics_date",
        "audit.idx_ai_operations_log_created_at",
        "audit.idx_usage_logs_request_date",
        "config.idx_ai_models_service",
        "config.idx_service_settings_service",
    ):
        assert name in indexes, name


def test_usage_log_api_key_is_set_null_on_delete(pg: Database) -> None:
    migrate.upgrade(pg)
    with pg.engine.begin() as connection:
        key = uuid.uuid4()
        connection.execute(
            text(
                "INSERT INTO core.api_keys (id, key_prefix, key_hash, key_name, role, created_at, is_active, "
                "requests_made) VALUES (:id, 'fs_x', :hash, 'k', 'admin', now(), true, 0)"
            ),
            {"id": key, "hash": secrets.token_hex(32)},
        )
        connection.execute(
            text(
                "INSERT INTO audit.usage_logs (id, api_key_id, request_type, request_path, request_date, "
                "response_code, processing_time) "
                "VALUES (gen_random_uuid(), :key, 'detect', '/x', now(), 200, 0.5)"
            ),
            {"key": key},
        )
        connection.execute(text("DELETE FROM core.api_keys WHERE id = :id"), {"id": key})
        assert connection.execute(text("SELECT api_key_id FROM audit.usage_logs")).scalar_one() is None


def test_operations_log_is_partitioned_and_keeps_existing_rows(pg: Database) -> None:
    migrate.upgrade(pg, "0002")
    now = datetime.now(UTC)
    old = _log(now - timedelta(days=100))
    recent = _log(now)
    with pg.session() as session:
        session.add_all([old, recent])
    migrate.upgrade(pg)

    assert maintenance.is_partitioned(pg)
    assert _scalar(pg, "SELECT count(*) FROM audit.ai_operations_log") == 2
    current = month_of(now)
    partitions = set(maintenance.log_partitions(pg))
    expected = {partition_name(add_months(current, offset)) for offset in range(3)}
    assert expected | {partition_name(month_of(old.created_at)), maintenance.DEFAULT_PARTITION} == partitions
    assert _partition_of(pg, old.id) == f"audit.{partition_name(month_of(old.created_at))}"
    # The primary key of a partitioned table must contain the partition key.
    primary_key = inspect(pg.engine).get_pk_constraint("ai_operations_log", schema="audit")
    assert primary_key["constrained_columns"] == ["id", "created_at"]

    # Down to a plain table and up again, rows intact each way.
    migrate.downgrade(pg, "0002")
    assert not maintenance.is_partitioned(pg)
    assert _scalar(pg, "SELECT count(*) FROM audit.ai_operations_log") == 2
    migrate.upgrade(pg)
    assert maintenance.is_partitioned(pg)
    assert _scalar(pg, "SELECT count(*) FROM audit.ai_operations_log") == 2


def test_orm_insert_beyond_partitions_lands_in_default_then_moves(pg: Database) -> None:
    migrate.upgrade(pg)
    future_month = add_months(month_of(datetime.now(UTC)), 5)
    future = _log(datetime(future_month.year, future_month.month, 10, tzinfo=UTC))
    with pg.session() as session:
        session.add(future)
    assert _partition_of(pg, future.id) == f"audit.{maintenance.DEFAULT_PARTITION}"
    with pg.session() as session:
        assert session.get(AiOperationLog, future.id) is not None

    created = maintenance.ensure_log_partitions(pg, months_ahead=6)
    current = month_of(datetime.now(UTC))
    assert created == [partition_name(add_months(current, offset)) for offset in range(3, 7)]
    assert _partition_of(pg, future.id) == f"audit.{partition_name(future_month)}"
    assert maintenance.ensure_log_partitions(pg, months_ahead=6) == []
    # The attached partition got the parent's indexes.
    with pg.engine.connect() as connection:
        indexed = connection.execute(
            text("SELECT count(*) FROM pg_indexes WHERE schemaname = 'audit' AND tablename = :t"),
            {"t": partition_name(future_month)},
        ).scalar_one()
    assert indexed == 5  # primary key + the four document indexes


def test_retention_drops_old_partitions_and_deletes_old_rows(pg: Database) -> None:
    migrate.upgrade(pg, "0002")
    now = datetime.now(UTC)
    rows = {age: _log(now - timedelta(days=age)) for age in (430, 400, 366, 300, 0)}
    with pg.session() as session:
        session.add_all(rows.values())
    migrate.upgrade(pg)  # 0003 creates a partition for every month holding rows
    oldest = partition_name(month_of(rows[430].created_at))
    assert oldest in maintenance.log_partitions(pg)

    counts = maintenance.apply_retention(pg, RetentionPolicy(logs_days=365), now=now)

    assert counts["audit.ai_operations_log"] == 3
    assert counts["audit.ai_operations_log:partitions_dropped"] >= 2
    assert oldest not in maintenance.log_partitions(pg)
    with pg.session() as session:
        kept = set(session.scalars(select(AiOperationLog.id)))
    assert kept == {rows[300].id, rows[0].id}
    # Running it again finds nothing left to do.
    again = maintenance.apply_retention(pg, RetentionPolicy(logs_days=365), now=now)
    assert again["audit.ai_operations_log"] == 0


def test_models_match_the_migrated_schema(pg: Database) -> None:
    """Alembic finds nothing to autogenerate: tables.py and the migrations describe one schema."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from facesocial.store.tables import Base

    def include_name(name: str | None, type_: str, _parents: Any) -> bool:
        # Partitions (operations log months, attention metric days) are maintenance's (env.py).
        partition = name is not None and (
            name.startswith(("ai_operations_log_", "attention_metrics_y"))
            or name == "attention_metrics_default"
        )
        return not (type_ == "table" and partition)

    migrate.upgrade(pg)
    with pg.engine.connect() as connection:
        context = MigrationContext.configure(
            connection, opts={"include_schemas": True, "include_name": include_name, "compare_type": False}
        )
        differences = compare_metadata(context, Base.metadata)
    assert differences == []


def test_0006_scopes_existing_users_to_the_first_admin_key(pg: Database) -> None:
    """Rows from before tenants existed get the oldest admin key's tenant; ids stay the same."""
    migrate.upgrade(pg, "0005")
    admin, person, face = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    now = datetime.now(UTC)
    with pg.engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO core.api_keys (id, key_prefix, key_hash, key_name, role, created_at, is_active,"
                " requests_made) VALUES (:id, 'fs_a', :hash, 'admin', 'admin', :now, true, 0)"
            ),
            {"id": admin, "hash": "a" * 64, "now": now},
        )
        connection.execute(
            text(
                "INSERT INTO core.users (id, user_id, consent_given, created_at, updated_at)"
                " VALUES (:id, :user, true, :now, :now)"
            ),
            {"id": uuid.uuid4(), "user": person, "now": now},
        )
        connection.execute(
            text(
                "INSERT INTO face_recognition.face_data (id, user_id, face_id, embedding_version,"
                " embedding_dimension, milvus_collection, embedding, status, verification_count,"
                " created_at, updated_at)"
                " VALUES (:id, :user, :face, 'm@1', 2, 'c', '\\x0000', 'active', 0, :now, :now)"
            ),
            {"id": face, "user": person, "face": str(face), "now": now},
        )
        connection.execute(
            text(
                "INSERT INTO face_recognition.face_groups (id, group_name, face_count, privacy_level,"
                " created_at, updated_at) VALUES (:id, 'g', 0, 'private', :now, :now)"
            ),
            {"id": uuid.uuid4(), "now": now},
        )
    migrate.upgrade(pg)
    with pg.engine.connect() as connection:
        user = connection.execute(text("SELECT tenant_id, external_id FROM core.users")).one()
        assert (user.tenant_id, user.external_id) == (admin, person)
        assert connection.execute(text("SELECT tenant_id FROM face_recognition.face_data")).scalar() == admin
        assert (
            connection.execute(text("SELECT tenant_id FROM face_recognition.face_groups")).scalar() == admin
        )
    migrate.downgrade(pg, "0005")  # and back: the ids the clients know are the ones kept
    with pg.engine.connect() as connection:
        assert connection.execute(text("SELECT user_id FROM core.users")).scalar() == person


def test_0007_makes_the_first_admin_key_the_operator(pg: Database) -> None:
    """The oldest admin key keeps index upkeep as the operator; downgrade makes it an admin again."""
    migrate.upgrade(pg, "0006")
    start = datetime(2026, 1, 1, tzinfo=UTC)
    rows = [
        ("later admin", "admin", start + timedelta(days=2)),
        ("first admin", "admin", start + timedelta(days=1)),
        ("oldest user", "user", start),
    ]
    with pg.engine.begin() as connection:
        for n, (name, role, created) in enumerate(rows):
            connection.execute(
                text(
                    "INSERT INTO core.api_keys (id, key_prefix, key_hash, key_name, role, created_at,"
                    " is_active, requests_made) VALUES (:id, 'fs_a', :hash, :name, :role, :at, true, 0)"
                ),
                {"id": uuid.uuid4(), "hash": str(n) * 64, "name": name, "role": role, "at": created},
            )

    def roles() -> dict[str, str]:
        with pg.engine.connect() as connection:
            return {
                row.key_name: row.role
                for row in connection.execute(text("SELECT key_name, role FROM core.api_keys"))
            }

    migrate.upgrade(pg)
    assert roles() == {"first admin": "operator", "later admin": "admin", "oldest user": "user"}
    migrate.downgrade(pg, "0006")
    assert roles() == {"first admin": "admin", "later admin": "admin", "oldest user": "user"}
