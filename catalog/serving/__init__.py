"""catalog.serving.tables."""
