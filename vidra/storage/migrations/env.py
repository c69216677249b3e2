"""Alembic environment: vidra passes its own connection (see `vidra.storage.migrate`)."""

from __future__ import annotations

from alembic import context

from vidra.storage.orm import Base

connection = context.config.attributes.get("connection")
if connection is None:  # pragma: no cover - always called through vidra.storage.migrate
    raise RuntimeError("run migrations with `vidra db upgrade`, not the alembic CLI")

context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
