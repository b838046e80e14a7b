"""Migrations run up, down and up again (SQLite here; PostgreSQL in the scaled suite)."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import inspect

from facesocial.store import migrate
from facesocial.store.db import Database

EXPECTED = {
    "users",
    "api_keys",
    "face_data",
    "recognition_sessions",
    "face_groups",
    "face_group_members",
    "detection_requests",
    "detected_faces",
    "ai_operations_log",
}


def test_sqlite_upgrade_downgrade_upgrade(tmp_path: Path) -> None:
    database = Database(f"sqlite:///{tmp_path / 'm.db'}")
    migrate.upgrade(database)
    assert set(inspect(database.engine).get_table_names()) >= EXPECTED
    assert migrate.is_current(database)
    migrate.downgrade(database, "base")
    assert set(inspect(database.engine).get_table_names()) <= {"alembic_version"}
    assert not migrate.is_current(database)
    migrate.upgrade(database)
    assert migrate.is_current(database)
    columns = {c["name"] for c in inspect(database.engine).get_columns("face_data")}
    assert {"user_id", "face_id", "embedding_version", "embedding_dimension", "milvus_collection"} <= columns
