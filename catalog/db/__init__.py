"""catalog.db."""
