"""Alembic environment: migrates the connection handed over by ``wisp.store.migrate``."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection

from wisp.store.schema import metadata

connection = context.config.attributes.get("connection")
if not isinstance(connection, Connection):
    raise RuntimeError("run Wisp's migrations through SqlStore.migrate(), not the alembic command")

context.configure(
    connection=connection,
    target_metadata=metadata,
    # SQLite cannot ALTER most things in place; batch mode rebuilds the table.
    render_as_batch=connection.dialect.name == "sqlite",
)
# The caller holds a transaction (and the migration lock); this joins it.
with context.begin_transaction():
    context.run_migrations()
