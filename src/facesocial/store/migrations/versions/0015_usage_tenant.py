"""The tenant of each ``audit.usage_logs`` row (GET /api/v1/auth/usage)

Until now a usage row named only the API key that made the call (``api_key_id``); calls made
with an account's login token named nothing, and a key's tenant had to be looked up through
``core.api_keys`` (and was lost when the key was deleted: the foreign key sets NULL). The new
``tenant_id`` is the caller's tenant as the request was authenticated (services/principal.py),
so a tenant's usage is one indexed range read. Rows written before this revision take the
tenant of their key when it still exists (``owner_id``, or the key's own id); the others stay
NULL and belong to no tenant's usage.

Revision ID: 0015_usage_tenant
Revises: 0014_counting
Create Date: 2026-12-01 22:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0015_usage_tenant"
down_revision: str | None = "0014_counting"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _schema(name: str) -> str | None:
    # Alembic renders ALTER statements itself (no schema_translate_map): SQLite has no schemas.
    return None if op.get_bind().dialect.name == "sqlite" else name


def upgrade() -> None:
    with op.batch_alter_table("usage_logs", schema=_schema("audit")) as batch:
        batch.add_column(sa.Column("tenant_id", sa.Uuid(), nullable=True))
        batch.create_index("idx_usage_logs_tenant_date", ["tenant_id", "request_date"])
    usage = sa.table(
        "usage_logs",
        sa.column("tenant_id", sa.Uuid()),
        sa.column("api_key_id", sa.Uuid()),
        schema=_schema("audit"),
    )
    keys = sa.table(
        "api_keys", sa.column("id", sa.Uuid()), sa.column("owner_id", sa.Uuid()), schema=_schema("core")
    )
    tenant = (
        sa.select(sa.func.coalesce(keys.c.owner_id, keys.c.id))
        .where(keys.c.id == usage.c.api_key_id)
        .scalar_subquery()
    )
    op.execute(usage.update().where(usage.c.api_key_id.is_not(None)).values(tenant_id=tenant))


def downgrade() -> None:
    with op.batch_alter_table("usage_logs", schema=_schema("audit")) as batch:
        batch.drop_index("idx_usage_logs_tenant_date")
        batch.drop_column("tenant_id")
