"""Alembic environment: the engine comes from the caller (see facesocial.store.migrate)."""

from __future__ import annotations

from typing import Any

from alembic import context
from sqlalchemy import Engine

from facesocial.store.tables import Base

engine: Engine = context.config.attributes["engine"]


def include_name(name: str | None, type_: str, _parents: Any) -> bool:
    """Partitions are managed by maintenance, not the models: the operations log's months
    (``ai_operations_log_*``) and the attention metrics' days (``attention_metrics_y*``, ``_default``)."""
    return not (type_ == "table" and name is not None and is_partition_name(name))


def is_partition_name(name: str) -> bool:
    return (
        name.startswith(("ai_operations_log_", "attention_metrics_y")) or name == "attention_metrics_default"
    )


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
