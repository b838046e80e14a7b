"""CompreFace subject names and Rekognition collection ids in tables of their own

Schema ``compat``:

* ``compreface_subjects`` (``tenant_id``, ``subject`` unique per tenant, ``user_id`` →
  ``core.users.user_id`` ON DELETE CASCADE, NULL while a subject has no example, ``created_at``).
  Until now a subject's name was a key of its user's ``privacy_settings``
  (``compreface_subject``): nothing kept two requests from giving one name twice, and erasing a
  user left nothing to clean. The upgrade moves every such name into the table (the key is
  removed from ``privacy_settings``); the downgrade puts the names back.
* ``rekognition_collections`` (``tenant_id``, ``collection_id`` unique per tenant, ``group_id`` →
  ``face_recognition.face_groups.id`` ON DELETE CASCADE, ``created_at``): the names
  CreateCollection gave, so two concurrent CreateCollection calls of one name cannot both
  succeed (the face groups themselves may share names: the platform's groups API allows it).
  Groups CreateCollection made before this revision (description ``Rekognition collection``)
  are entered, the oldest of each tenant and name.

Self-contained (tables frozen here): a migration keeps doing what it did when written.

Revision ID: 0016_compat_names
Revises: 0015_usage_tenant
Create Date: 2026-12-01 22:10:00
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0016_compat_names"
down_revision: str | None = "0015_usage_tenant"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SCHEMA = "compat"
SUBJECT_KEY = "compreface_subject"
REKOGNITION_DESCRIPTION = "Rekognition collection"
JSONB = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def _schema(name: str) -> str | None:
    # Core statements built here name their schema; SQLite has none (one database).
    return None if op.get_bind().dialect.name == "sqlite" else name


def _users() -> sa.TableClause:
    return sa.table(
        "users",
        sa.column("user_id", sa.Uuid()),
        sa.column("tenant_id", sa.Uuid()),
        sa.column("privacy_settings", JSONB),
        sa.column("created_at", sa.DateTime(timezone=True)),
        sa.column("deleted_at", sa.DateTime(timezone=True)),
        schema=_schema("core"),
    )


def _subjects() -> sa.TableClause:
    return sa.table(
        "compreface_subjects",
        sa.column("id", sa.Uuid()),
        sa.column("tenant_id", sa.Uuid()),
        sa.column("subject", sa.String(255)),
        sa.column("user_id", sa.Uuid()),
        sa.column("created_at", sa.DateTime(timezone=True)),
        schema=_schema(SCHEMA),
    )


def _groups() -> sa.TableClause:
    return sa.table(
        "face_groups",
        sa.column("id", sa.Uuid()),
        sa.column("tenant_id", sa.Uuid()),
        sa.column("group_name", sa.String(100)),
        sa.column("description", sa.Text()),
        sa.column("created_at", sa.DateTime(timezone=True)),
        schema=_schema("face_recognition"),
    )


def _collections() -> sa.TableClause:
    return sa.table(
        "rekognition_collections",
        sa.column("id", sa.Uuid()),
        sa.column("tenant_id", sa.Uuid()),
        sa.column("collection_id", sa.String(255)),
        sa.column("group_id", sa.Uuid()),
        sa.column("created_at", sa.DateTime(timezone=True)),
        schema=_schema(SCHEMA),
    )


def _ref(schema: str, column: str) -> str:
    """A foreign key's target. SQLAlchemy leaves out (silently) a foreign key into another
    schema on SQLite, so there both sides are named without one: the ON DELETE CASCADE the
    erasure relies on must exist on SQLite as well."""
    prefix = _schema(schema)
    return f"{prefix}.{column}" if prefix else column


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"CREATE SCHEMA IF NOT EXISTS {SCHEMA}")
    op.create_table(
        "compreface_subjects",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("subject", sa.String(length=255), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"],
            [_ref("core", "users.user_id")],
            name=op.f("fk_compreface_subjects_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_compreface_subjects")),
        sa.UniqueConstraint("tenant_id", "subject", name=op.f("uq_compreface_subjects_tenant_id_subject")),
        sa.UniqueConstraint("user_id", name=op.f("uq_compreface_subjects_user_id")),
        schema=_schema(SCHEMA),
    )
    op.create_table(
        "rekognition_collections",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("collection_id", sa.String(length=255), nullable=False),
        sa.Column("group_id", sa.Uuid(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["group_id"],
            [_ref("face_recognition", "face_groups.id")],
            name=op.f("fk_rekognition_collections_group_id_face_groups"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_rekognition_collections")),
        sa.UniqueConstraint(
            "tenant_id", "collection_id", name=op.f("uq_rekognition_collections_tenant_id_collection_id")
        ),
        sa.UniqueConstraint("group_id", name=op.f("uq_rekognition_collections_group_id")),
        schema=_schema(SCHEMA),
    )
    _move_subject_names()
    _enter_collections()


def _move_subject_names() -> None:
    """Every ``privacy_settings.compreface_subject`` into ``compreface_subjects``, oldest user
    first; a name a tenant already gave (which the old code could not prevent) stays with the
    oldest user, the later users keep their id as their name (as when nothing was stored)."""
    bind = op.get_bind()
    users = _users()
    rows = bind.execute(
        sa.select(users.c.user_id, users.c.tenant_id, users.c.privacy_settings, users.c.created_at).order_by(
            users.c.created_at, users.c.user_id
        )
    ).all()
    taken: set[tuple[uuid.UUID, str]] = set()
    entries: list[dict[str, Any]] = []
    for row in rows:
        settings = row.privacy_settings
        if not isinstance(settings, dict) or SUBJECT_KEY not in settings:
            continue
        name = settings[SUBJECT_KEY]
        if isinstance(name, str) and name.strip() and (row.tenant_id, name) not in taken:
            taken.add((row.tenant_id, name))
            entries.append(
                {
                    "id": uuid.uuid4(),
                    "tenant_id": row.tenant_id,
                    "subject": name,
                    "user_id": row.user_id,
                    "created_at": row.created_at or datetime.now(UTC),
                }
            )
        rest = {key: value for key, value in settings.items() if key != SUBJECT_KEY}
        bind.execute(users.update().where(users.c.user_id == row.user_id).values(privacy_settings=rest))
    if entries:
        bind.execute(_subjects().insert(), entries)


def _enter_collections() -> None:
    bind = op.get_bind()
    groups = _groups()
    rows = bind.execute(
        sa.select(groups.c.id, groups.c.tenant_id, groups.c.group_name, groups.c.created_at)
        .where(groups.c.description == REKOGNITION_DESCRIPTION)
        .order_by(groups.c.created_at, groups.c.id)
    ).all()
    taken: set[tuple[uuid.UUID, str]] = set()
    entries: list[dict[str, Any]] = []
    for row in rows:
        if row.tenant_id is None or (row.tenant_id, row.group_name) in taken:
            continue
        taken.add((row.tenant_id, row.group_name))
        entries.append(
            {
                "id": uuid.uuid4(),
                "tenant_id": row.tenant_id,
                "collection_id": row.group_name,
                "group_id": row.id,
                "created_at": row.created_at or datetime.now(UTC),
            }
        )
    if entries:
        bind.execute(_collections().insert(), entries)


def downgrade() -> None:
    """Names of subjects that have a user go back into its ``privacy_settings``; subjects
    without an example yet (and the collection names: the groups remain) are dropped."""
    bind = op.get_bind()
    users, subjects = _users(), _subjects()
    named = bind.execute(
        sa.select(subjects.c.user_id, subjects.c.subject, users.c.privacy_settings).join(
            users, users.c.user_id == subjects.c.user_id
        )
    ).all()
    for row in named:
        settings = row.privacy_settings if isinstance(row.privacy_settings, dict) else {}
        bind.execute(
            users.update()
            .where(users.c.user_id == row.user_id)
            .values(privacy_settings={**settings, SUBJECT_KEY: row.subject})
        )
    op.drop_table("rekognition_collections", schema=_schema(SCHEMA))
    op.drop_table("compreface_subjects", schema=_schema(SCHEMA))
    if bind.dialect.name == "postgresql":
        op.execute(f"DROP SCHEMA IF EXISTS {SCHEMA}")
