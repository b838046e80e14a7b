"""Antispoofing checks and liveness sessions per tenant; session state, versions and one use

The tables of revision 0002 (document 000 §2.4) gain the caller's tenant and key (isolation).
A check-video that runs as a job keeps its status, job id and error on its check row. A
liveness session keeps the evaluator's state (``progress``) with a ``version`` for optimistic
concurrency, the user id the caller named, and when and by what it was used (``consumed_at``,
``consumed_by``): a completed session vouches for one registration or verification only.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-01 10:30:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSONB = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def _schema(name: str) -> str | None:
    # Alembic renders ALTER statements itself (no schema_translate_map): SQLite has no schemas.
    return None if op.get_bind().dialect.name == "sqlite" else name


def upgrade() -> None:
    with op.batch_alter_table("antispoofing_checks", schema=_schema("antispoofing")) as batch:
        batch.add_column(sa.Column("tenant_id", sa.Uuid(), nullable=True))
        batch.add_column(sa.Column("api_key_id", sa.Uuid(), nullable=True))
        batch.add_column(
            sa.Column("status", sa.String(length=20), nullable=False, server_default="completed")
        )
        batch.add_column(sa.Column("job_id", sa.String(length=64), nullable=True))
        batch.add_column(sa.Column("error_code", sa.String(length=50), nullable=True))
        batch.add_column(sa.Column("error_message", sa.Text(), nullable=True))
        batch.create_index("ix_antispoofing_checks_tenant_id", ["tenant_id"])
    with op.batch_alter_table("liveness_sessions", schema=_schema("antispoofing")) as batch:
        batch.add_column(sa.Column("tenant_id", sa.Uuid(), nullable=True))
        batch.add_column(sa.Column("api_key_id", sa.Uuid(), nullable=True))
        batch.add_column(sa.Column("external_user_id", sa.Uuid(), nullable=True))
        batch.add_column(sa.Column("progress", JSONB, nullable=True))
        batch.add_column(sa.Column("version", sa.Integer(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("consumed_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("consumed_by", sa.String(length=20), nullable=True))
        batch.create_index("ix_liveness_sessions_tenant_id", ["tenant_id"])


def downgrade() -> None:
    with op.batch_alter_table("liveness_sessions", schema=_schema("antispoofing")) as batch:
        batch.drop_index("ix_liveness_sessions_tenant_id")
        for column in ("consumed_by", "consumed_at", "version", "progress", "external_user_id"):
            batch.drop_column(column)
        for column in ("api_key_id", "tenant_id"):
            batch.drop_column(column)
    with op.batch_alter_table("antispoofing_checks", schema=_schema("antispoofing")) as batch:
        batch.drop_index("ix_antispoofing_checks_tenant_id")
        for column in ("error_message", "error_code", "job_id", "status", "api_key_id", "tenant_id"):
            batch.drop_column(column)
