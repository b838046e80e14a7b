"""Accounts (document 003's ``users``) and API keys that belong to one

``core.accounts`` holds who signs in with a username or email and a password (argon2id hash);
``core.users`` stays the enrolled face subject of document 000. ``core.api_keys.account_id``
names the account that made a key (NULL for keys made on the server); deleting the account
deletes its keys.

Revision ID: 0010_accounts
Revises: 0009
Create Date: 2026-12-01 15:45:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010_accounts"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _schema(name: str) -> str | None:
    # Alembic renders ALTER statements itself (no schema_translate_map): SQLite has no schemas.
    return None if op.get_bind().dialect.name == "sqlite" else name


def upgrade() -> None:
    op.create_table(
        "accounts",
        sa.Column("account_id", sa.Uuid(), nullable=False),
        sa.Column("username", sa.String(length=50), nullable=False),
        sa.Column("username_key", sa.String(length=50), nullable=False),
        sa.Column("email", sa.String(length=100), nullable=False),
        sa.Column("password_hash", sa.String(length=255), nullable=False),
        sa.Column("first_name", sa.String(length=50), nullable=True),
        sa.Column("last_name", sa.String(length=50), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_login", sa.DateTime(timezone=True), nullable=True),
        sa.Column("account_status", sa.String(length=20), nullable=False),
        sa.Column("profile_image_url", sa.String(length=255), nullable=True),
        sa.PrimaryKeyConstraint("account_id", name=op.f("pk_accounts")),
        sa.UniqueConstraint("username_key", name=op.f("uq_accounts_username_key")),
        sa.UniqueConstraint("email", name=op.f("uq_accounts_email")),
        schema="core",
    )
    with op.batch_alter_table("api_keys", schema=_schema("core")) as batch:
        batch.add_column(sa.Column("account_id", sa.Uuid(), nullable=True))
        batch.create_index("ix_api_keys_account_id", ["account_id"])
        batch.create_foreign_key(
            "fk_api_keys_account_id_accounts",
            "accounts",
            ["account_id"],
            ["account_id"],
            referent_schema=_schema("core"),
            ondelete="CASCADE",
        )


def downgrade() -> None:
    with op.batch_alter_table("api_keys", schema=_schema("core")) as batch:
        batch.drop_constraint("fk_api_keys_account_id_accounts", type_="foreignkey")
        batch.drop_index("ix_api_keys_account_id")
        batch.drop_column("account_id")
    op.drop_table("accounts", schema="core")
