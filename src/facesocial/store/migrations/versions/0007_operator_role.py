"""The operator role: index upkeep over every tenant is no longer any tenant admin's

``/api/v1/admin/index/*`` acts on and reports every tenant's faces, so it now needs the role
``operator``, which ``keys create`` hands out only when asked (``--role operator``). The key
that ran the installation until now keeps doing so: the oldest admin key (the first-start
key; the same rule 0006 used for rows from before tenants) becomes the operator. Every other
admin key stays a tenant admin. No column changes: ``core.api_keys.role`` is a String(20).

Downgrade: operators become admins again (the code before this revision knows no other role
with index upkeep, and would treat an unknown role as ``user``).

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01 03:50:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _keys() -> sa.Table:
    # Alembic renders DML itself (no schema_translate_map): SQLite has no schemas.
    schema = None if op.get_bind().dialect.name == "sqlite" else "core"
    return sa.Table(
        "api_keys",
        sa.MetaData(),
        sa.Column("id", sa.Uuid()),
        sa.Column("role", sa.String(20)),
        sa.Column("created_at", sa.DateTime(timezone=True)),
        schema=schema,
    )


def upgrade() -> None:
    bind = op.get_bind()
    keys = _keys()
    # Oldest by creation time, ties broken by id so that every database picks the same key.
    first = bind.execute(
        sa.select(keys.c.id).where(keys.c.role == "admin").order_by(keys.c.created_at, keys.c.id).limit(1)
    ).scalar()
    if first is not None:
        bind.execute(sa.update(keys).where(keys.c.id == first).values(role="operator"))


def downgrade() -> None:
    keys = _keys()
    op.get_bind().execute(sa.update(keys).where(keys.c.role == "operator").values(role="admin"))
