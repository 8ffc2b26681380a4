"""Alembic environment of the hub DB, configured in code by ``catalog.db.migrate`` (no alembic.ini).

The caller passes an open connection in ``config.attributes["connection"]``; the migrations run
inside its transaction, and the caller commits.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import context

from catalog.db import migrate


def run_migrations_online() -> None:
    """Run the migrations on the connection the caller handed over."""
    connection = context.config.attributes.get("connection")
    if not isinstance(connection, sa.Connection):
        raise RuntimeError("run the hub DB migrations through catalog.db.migrate (sharehub db upgrade)")
    context.configure(
        connection=connection,
        # SQLite cannot ALTER most things: later revisions' op.batch_alter_table recreates tables
        render_as_batch=connection.dialect.name == "sqlite",
        **migrate.context_options(),
    )
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    raise RuntimeError("offline (--sql) migrations are not supported for the hub DB")
run_migrations_online()
