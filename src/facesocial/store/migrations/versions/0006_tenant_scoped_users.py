"""Tenant-scoped user ids, tenant on every face, write states of face_data

* ``core.users.external_id``: the ``user_id`` a client sends, unique per tenant
  (``uq_users_tenant_id_external_id``). ``core.users.user_id`` stays the global internal key
  that every foreign key points at; existing rows keep ``external_id = user_id``.
* ``tenant_id`` becomes NOT NULL on users and face groups; rows from before tenants existed
  (NULL) go to the tenant of the oldest admin key, the one that could have created them.
* ``face_recognition.face_data.tenant_id`` (copied from the owner) so that identification can
  restrict a search to one tenant without a join.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01 00:30:00
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_SYSTEM_TENANT = uuid.UUID(int=0)


def _schema(name: str) -> str | None:
    # Alembic renders ALTER itself (no schema_translate_map): SQLite has no schemas.
    return None if op.get_bind().dialect.name == "sqlite" else name


def _table(name: str, schema: str, *columns: sa.Column[object]) -> sa.Table:
    return sa.Table(name, sa.MetaData(), *columns, schema=_schema(schema))


def _legacy_tenant(bind: sa.Connection) -> uuid.UUID:
    keys = _table(
        "api_keys",
        "core",
        sa.Column("id", sa.Uuid()),
        sa.Column("owner_id", sa.Uuid()),
        sa.Column("role", sa.String(20)),
        sa.Column("created_at", sa.DateTime(timezone=True)),
    )
    row = bind.execute(
        sa.select(keys.c.owner_id, keys.c.id)
        .where(keys.c.role == "admin")
        .order_by(keys.c.created_at)
        .limit(1)
    ).first()
    if row is None:
        return _SYSTEM_TENANT
    return row.owner_id or row.id


def upgrade() -> None:
    bind = op.get_bind()
    tenant = _legacy_tenant(bind)
    users = _table(
        "users",
        "core",
        sa.Column("user_id", sa.Uuid()),
        sa.Column("tenant_id", sa.Uuid()),
        sa.Column("external_id", sa.Uuid()),
    )
    groups = _table("face_groups", "face_recognition", sa.Column("tenant_id", sa.Uuid()))
    faces = _table(
        "face_data",
        "face_recognition",
        sa.Column("user_id", sa.Uuid()),
        sa.Column("tenant_id", sa.Uuid()),
    )

    with op.batch_alter_table("users", schema=_schema("core")) as batch:
        batch.add_column(sa.Column("external_id", sa.Uuid(), nullable=True))
    bind.execute(sa.update(users).where(users.c.tenant_id.is_(None)).values(tenant_id=tenant))
    bind.execute(sa.update(users).values(external_id=users.c.user_id))
    with op.batch_alter_table("users", schema=_schema("core")) as batch:
        batch.alter_column("external_id", existing_type=sa.Uuid(), nullable=False)
        batch.alter_column("tenant_id", existing_type=sa.Uuid(), nullable=False)
        batch.create_unique_constraint("uq_users_tenant_id_external_id", ["tenant_id", "external_id"])

    bind.execute(sa.update(groups).where(groups.c.tenant_id.is_(None)).values(tenant_id=tenant))
    with op.batch_alter_table("face_groups", schema=_schema("face_recognition")) as batch:
        batch.alter_column("tenant_id", existing_type=sa.Uuid(), nullable=False)

    with op.batch_alter_table("face_data", schema=_schema("face_recognition")) as batch:
        batch.add_column(sa.Column("tenant_id", sa.Uuid(), nullable=True))
    owner = sa.select(users.c.tenant_id).where(users.c.user_id == faces.c.user_id).scalar_subquery()
    bind.execute(sa.update(faces).values(tenant_id=owner))
    with op.batch_alter_table("face_data", schema=_schema("face_recognition")) as batch:
        batch.alter_column("tenant_id", existing_type=sa.Uuid(), nullable=False)
        batch.create_index(
            "idx_face_data_tenant_collection", ["tenant_id", "milvus_collection", "status"], unique=False
        )


def downgrade() -> None:
    # Lossy for users enrolled after the upgrade: their external_id (the client's user_id) goes,
    # and the API would answer with the internal user_id. Users from before keep their ids.
    with op.batch_alter_table("face_data", schema=_schema("face_recognition")) as batch:
        batch.drop_index("idx_face_data_tenant_collection")
        batch.drop_column("tenant_id")
    with op.batch_alter_table("face_groups", schema=_schema("face_recognition")) as batch:
        batch.alter_column("tenant_id", existing_type=sa.Uuid(), nullable=True)
    with op.batch_alter_table("users", schema=_schema("core")) as batch:
        batch.drop_constraint("uq_users_tenant_id_external_id", type_="unique")
        batch.alter_column("tenant_id", existing_type=sa.Uuid(), nullable=True)
        batch.drop_column("external_id")
