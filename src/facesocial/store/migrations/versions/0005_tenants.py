"""Tenant isolation: owner of API keys, tenant of enrolled users and face groups

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-22 03:30:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _schema(name: str) -> str | None:
    # Alembic renders ALTER itself (no schema_translate_map): SQLite has no schemas.
    return None if op.get_bind().dialect.name == "sqlite" else name


def upgrade() -> None:
    with op.batch_alter_table("api_keys", schema=_schema("core")) as batch:
        batch.add_column(sa.Column("owner_id", sa.Uuid(), nullable=True))
    with op.batch_alter_table("users", schema=_schema("core")) as batch:
        batch.add_column(sa.Column("tenant_id", sa.Uuid(), nullable=True))
        batch.create_index("ix_users_tenant_id", ["tenant_id"], unique=False)
    with op.batch_alter_table("face_groups", schema=_schema("face_recognition")) as batch:
        batch.add_column(sa.Column("tenant_id", sa.Uuid(), nullable=True))
        batch.create_index("ix_face_groups_tenant_id", ["tenant_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("face_groups", schema=_schema("face_recognition")) as batch:
        batch.drop_index("ix_face_groups_tenant_id")
        batch.drop_column("tenant_id")
    with op.batch_alter_table("users", schema=_schema("core")) as batch:
        batch.drop_index("ix_users_tenant_id")
        batch.drop_column("tenant_id")
    with op.batch_alter_table("api_keys", schema=_schema("core")) as batch:
        batch.drop_column("owner_id")
