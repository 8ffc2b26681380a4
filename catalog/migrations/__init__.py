"""Alembic migrations of the hub database (run through ``catalog.dbschema`` / ``sharehub db``)."""
