"""Migration 0016 (``compat.compreface_subjects``, ``compat.rekognition_collections``) on SQLite
and on a real PostgreSQL: names stored before it are moved into the tables, and back on a
downgrade; the tables' constraints hold on both backends."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from facesocial.store import migrate
from facesocial.store.db import Database
from tests.services import scratch_postgres

pytestmark = pytest.mark.integration
BEFORE = "0015_usage_tenant"


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    if request.param == "sqlite":
        database = Database(f"sqlite:///{tmp_path / 'compat.db'}")
        yield database
        database.dispose()
        return
    with scratch_postgres() as url:
        database = Database(url.replace("postgresql://", "postgresql+psycopg://", 1))
        yield database
        database.dispose()


def _t(database: Database, schema: str, table: str) -> str:
    return table if not database.is_postgres else f"{schema}.{table}"


def _user(
    database: Database, tenant: uuid.UUID, settings: dict[str, object] | None, at: datetime
) -> uuid.UUID:
    user = uuid.uuid4()
    with database.engine.begin() as connection:
        connection.execute(
            text(
                f"INSERT INTO {_t(database, 'core', 'users')} (id, user_id, external_id, tenant_id,"
                " privacy_settings, consent_given, created_at, updated_at)"
                " VALUES (:id, :user, :external, :tenant, :settings, :yes, :at, :at)"
            ),
            {
                "id": _uuid(database, uuid.uuid4()),
                "user": _uuid(database, user),
                "external": _uuid(database, uuid.uuid4()),
                "tenant": _uuid(database, tenant),
                "settings": json.dumps(settings) if settings is not None else None,
                "yes": True,
                "at": at,
            },
        )
    return user


def _group(
    database: Database, tenant: uuid.UUID, name: str, description: str | None, at: datetime
) -> uuid.UUID:
    group = uuid.uuid4()
    with database.engine.begin() as connection:
        connection.execute(
            text(
                f"INSERT INTO {_t(database, 'face_recognition', 'face_groups')} (id, group_name, description,"
                " face_count, privacy_level, tenant_id, created_at, updated_at)"
                " VALUES (:id, :name, :description, 0, 'private', :tenant, :at, :at)"
            ),
            {
                "id": _uuid(database, group),
                "name": name,
                "description": description,
                "tenant": _uuid(database, tenant),
                "at": at,
            },
        )
    return group


def _uuid(database: Database, value: uuid.UUID) -> object:
    return value if database.is_postgres else value.hex  # SQLAlchemy's Uuid on SQLite: CHAR(32) hex


def _settings(database: Database, user: uuid.UUID) -> object:
    with database.engine.connect() as connection:
        raw = connection.execute(
            text(f"SELECT privacy_settings FROM {_t(database, 'core', 'users')} WHERE user_id = :u"),
            {"u": _uuid(database, user)},
        ).scalar()
    return json.loads(raw) if isinstance(raw, str) else raw


def test_0016_moves_subject_names_and_collections_and_back(database: Database) -> None:
    migrate.upgrade(database, BEFORE)
    start = datetime(2026, 11, 1, tzinfo=UTC)
    tenant, other = uuid.uuid4(), uuid.uuid4()
    alice = _user(database, tenant, {"compreface_subject": "Alice", "note": 1}, start)
    plain = _user(database, tenant, {"note": 2}, start + timedelta(seconds=1))
    other_alice = _user(database, other, {"compreface_subject": "Alice"}, start + timedelta(seconds=2))
    staff = _group(database, tenant, "staff", "Rekognition collection", start)
    _group(database, tenant, "staff", "Rekognition collection", start + timedelta(seconds=5))  # a race's twin
    _group(database, tenant, "team", "made through /api/v1", start)
    other_staff = _group(database, other, "staff", "Rekognition collection", start)

    migrate.upgrade(database)
    assert migrate.is_current(database)
    with database.engine.connect() as connection:
        subjects = connection.execute(
            text(f"SELECT tenant_id, subject, user_id FROM {_t(database, 'compat', 'compreface_subjects')}")
        ).all()
        collections = connection.execute(
            text(
                "SELECT tenant_id, collection_id, group_id FROM"
                f" {_t(database, 'compat', 'rekognition_collections')}"
            )
        ).all()
    norm = (lambda v: v) if database.is_postgres else (lambda v: uuid.UUID(v))
    assert sorted((norm(t), s, norm(u)) for t, s, u in subjects) == sorted(
        [(tenant, "Alice", alice), (other, "Alice", other_alice)]
    )
    assert sorted((norm(t), c, norm(g)) for t, c, g in collections) == sorted(
        [(tenant, "staff", staff), (other, "staff", other_staff)]
    )
    # The name left privacy_settings; the rest of it stayed.
    assert _settings(database, alice) == {"note": 1}
    assert _settings(database, plain) == {"note": 2}

    # The constraints: a name twice in one tenant is refused, in another tenant it is fine.
    with pytest.raises(IntegrityError), database.engine.begin() as connection:
        connection.execute(
            text(
                f"INSERT INTO {_t(database, 'compat', 'compreface_subjects')} (id, tenant_id, subject,"
                " created_at) VALUES (:id, :tenant, 'Alice', :at)"
            ),
            {"id": _uuid(database, uuid.uuid4()), "tenant": _uuid(database, tenant), "at": start},
        )
    # Erasing a user (deleting its row) removes its subject: ON DELETE CASCADE on both backends.
    with database.engine.begin() as connection:
        connection.execute(
            text(f"DELETE FROM {_t(database, 'core', 'users')} WHERE user_id = :u"),
            {"u": _uuid(database, other_alice)},
        )
        left = connection.execute(
            text(f"SELECT count(*) FROM {_t(database, 'compat', 'compreface_subjects')}")
        ).scalar()
    assert left == 1

    migrate.downgrade(database, BEFORE)
    assert _settings(database, alice) == {"note": 1, "compreface_subject": "Alice"}
    assert _settings(database, plain) == {"note": 2}
    migrate.upgrade(database)
    assert _settings(database, alice) == {"note": 1}


def test_replicas_migrating_one_postgres_database_at_once_all_succeed(tmp_path: Path) -> None:
    """Three processes upgrading one PostgreSQL database from 0014 at the same moment (replicas
    started together, each running prepare()): the advisory lock in migrations/env.py makes them
    take turns; the first migrates, the others find the head and do nothing (before it, the
    others crashed with DuplicateColumn on 0015's ALTER)."""
    import os
    import subprocess
    import sys

    script = (
        "import sys\n"
        "from facesocial.store import migrate\n"
        "from facesocial.store.db import Database\n"
        "migrate.upgrade(Database(sys.argv[1]))\n"
    )
    repo = Path(__file__).resolve().parents[2]
    with scratch_postgres() as url:
        url = url.replace("postgresql://", "postgresql+psycopg://", 1)
        database = Database(url)
        migrate.upgrade(database, "0014_counting")
        env = {**os.environ, "PYTHONPATH": f"{repo / 'src'}{os.pathsep}{repo}"}
        procs = [
            subprocess.Popen([sys.executable, "-c", script, url], env=env, stderr=subprocess.PIPE)
            for _ in range(3)
        ]
        results = [
            (proc.wait(timeout=300), proc.stderr.read().decode()[-800:]) for proc in procs if proc.stderr
        ]
        assert [rc for rc, _ in results] == [0, 0, 0], [err for _, err in results]
        assert migrate.is_current(database)
        database.dispose()
