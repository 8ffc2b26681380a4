"""catalog.access.gate."""
