"""The hub database: its tables, the engine, and the Alembic migrations that build them."""
