"""Alembic environment: the engine comes from the caller (see facesocial.store.migrate)."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Engine

from facesocial.store.tables import Base

engine: Engine = context.config.attributes["engine"]
with engine.connect() as connection:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        include_schemas=True,
        # SQLite cannot ALTER most things in place; batch mode copies the table instead.
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()
