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


def test_0006_scopes_existing_users_to_the_first_admin_key(tmp_path: Path) -> None:
    """Users and groups from before tenants existed go to the oldest admin key's tenant."""
    import uuid
    from datetime import UTC, datetime

    from sqlalchemy import text

    database = Database(f"sqlite:///{tmp_path / 'legacy.db'}")
    migrate.upgrade(database, "0005")
    admin, person, face = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    now = datetime.now(UTC).isoformat()
    with database.engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO api_keys (id, key_prefix, key_hash, key_name, role, created_at, is_active,"
                " requests_made) VALUES (:id, 'fs_a', :hash, 'admin', 'admin', :now, 1, 0)"
            ),
            {"id": admin.hex, "hash": "a" * 64, "now": now},
        )
        connection.execute(
            text(
                "INSERT INTO users (id, user_id, consent_given, created_at, updated_at)"
                " VALUES (:id, :user, 1, :now, :now)"
            ),
            {"id": uuid.uuid4().hex, "user": person.hex, "now": now},
        )
        connection.execute(
            text(
                "INSERT INTO face_data (id, user_id, face_id, embedding_version, embedding_dimension,"
                " milvus_collection, embedding, status, verification_count, created_at, updated_at)"
                " VALUES (:id, :user, :face, 'm@1', 2, 'c', x'0000', 'active', 0, :now, :now)"
            ),
            {"id": face.hex, "user": person.hex, "face": str(face), "now": now},
        )
    migrate.upgrade(database)
    with database.engine.connect() as connection:
        user = connection.execute(text("SELECT tenant_id, external_id FROM users")).one()
        assert (user.tenant_id, user.external_id) == (admin.hex, person.hex)
        assert connection.execute(text("SELECT tenant_id FROM face_data")).scalar() == admin.hex


def test_0007_makes_the_first_admin_key_the_operator(tmp_path: Path) -> None:
    """The oldest admin key (the first-start key) keeps index upkeep; other admins stay tenant admins."""
    import uuid
    from datetime import UTC, datetime, timedelta

    from sqlalchemy import text

    database = Database(f"sqlite:///{tmp_path / 'roles.db'}")
    migrate.upgrade(database, "0006")
    start = datetime(2026, 1, 1, tzinfo=UTC)
    # Inserted out of order: the oldest admin is not the first row, nor the oldest key.
    rows = [
        ("later admin", "admin", start + timedelta(days=2)),
        ("first admin", "admin", start + timedelta(days=1)),
        ("oldest user", "user", start),
    ]
    ids = {name: uuid.uuid4() for name, _role, _at in rows}
    with database.engine.begin() as connection:
        for n, (name, role, created) in enumerate(rows):
            connection.execute(
                text(
                    "INSERT INTO api_keys (id, key_prefix, key_hash, key_name, role, created_at, is_active,"
                    " requests_made) VALUES (:id, 'fs_a', :hash, :name, :role, :at, 1, 0)"
                ),
                {
                    "id": ids[name].hex,
                    "hash": str(n) * 64,
                    "name": name,
                    "role": role,
                    "at": created.isoformat(),
                },
            )

    def roles() -> dict[str, str]:
        with database.engine.connect() as connection:
            return {
                row.key_name: row.role
                for row in connection.execute(text("SELECT key_name, role FROM api_keys"))
            }

    migrate.upgrade(database)
    assert roles() == {"first admin": "operator", "later admin": "admin", "oldest user": "user"}
    migrate.downgrade(database, "0006")
    assert roles() == {"first admin": "admin", "later admin": "admin", "oldest user": "user"}


def test_0007_on_a_database_without_keys(tmp_path: Path) -> None:
    database = Database(f"sqlite:///{tmp_path / 'empty.db'}")
    migrate.upgrade(database)  # nothing to promote: the first start will make the operator key
    assert migrate.is_current(database)
