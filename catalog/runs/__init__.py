"""catalog.runs.record."""
