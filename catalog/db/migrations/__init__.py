"""Alembic migrations of the hub database (run through ``catalog.db.migrate`` / ``sharehub db``)."""
