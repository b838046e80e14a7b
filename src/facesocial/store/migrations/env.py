"""Alembic environment: the engine comes from the caller (see facesocial.store.migrate)."""

from __future__ import annotations

from typing import Any

from alembic import context
from sqlalchemy import Engine, text

from facesocial.store.tables import Base

engine: Engine = context.config.attributes["engine"]

# Arbitrary, fixed key of the PostgreSQL advisory lock that serialises concurrent upgrades
# ("MIGRATE"): replicas started at once against one database migrate one after the other.
MIGRATION_LOCK_KEY = 0x4D_4947_5241_5445


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
        if connection.dialect.name == "postgresql":
            # Taken before Alembic reads the current revision (run_migrations), held until this
            # transaction ends (every revision runs in it: PostgreSQL's DDL is transactional),
            # released by the server if the process dies. The second process waits here and
            # then finds the database at head: nothing to do. SQLite: one process per data dir.
            connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK_KEY})
        context.run_migrations()
