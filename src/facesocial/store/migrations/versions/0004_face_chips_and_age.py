"""Kept face chips (opt-in, encrypted) and DECIMAL(5,2) ages on detected faces

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-22 03:20:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _schema(name: str) -> str | None:
    # Alembic renders ALTER statements itself, bypassing SQLAlchemy's schema_translate_map,
    # so SQLite (one database, no schemas) must be given no schema explicitly.
    return None if op.get_bind().dialect.name == "sqlite" else name


def upgrade() -> None:
    with op.batch_alter_table("face_data", schema=_schema("face_recognition")) as batch:
        batch.add_column(sa.Column("face_chip", sa.LargeBinary(), nullable=True))
    with op.batch_alter_table("detected_faces", schema=_schema("face_detection")) as batch:
        batch.alter_column(
            "estimated_age",
            existing_type=sa.Numeric(5, 4, asdecimal=False),
            type_=sa.Numeric(5, 2, asdecimal=False),
            existing_nullable=True,
        )


def downgrade() -> None:
    with op.batch_alter_table("detected_faces", schema=_schema("face_detection")) as batch:
        batch.alter_column(
            "estimated_age",
            existing_type=sa.Numeric(5, 2, asdecimal=False),
            type_=sa.Numeric(5, 4, asdecimal=False),
            existing_nullable=True,
        )
    with op.batch_alter_table("face_data", schema=_schema("face_recognition")) as batch:
        batch.drop_column("face_chip")
