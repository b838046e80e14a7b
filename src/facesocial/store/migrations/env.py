"""Alembic environment: the engine comes from the caller (see facesocial.store.migrate)."""

from __future__ import annotations

from typing import Any

from alembic import context
from sqlalchemy import Engine

from facesocial.store.tables import Base

engine: Engine = context.config.attributes["engine"]


def include_name(name: str | None, type_: str, _parents: Any) -> bool:
    """Monthly partitions of the operations log are managed by maintenance, not the models."""
    return not (type_ == "table" and name is not None and name.startswith("ai_operations_log_"))


with engine.connect() as connection:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        include_schemas=True,
        include_name=include_name,
        # SQLite cannot ALTER most things in place; batch mode copies the table instead.
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()
