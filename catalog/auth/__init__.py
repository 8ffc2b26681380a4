"""catalog.auth."""
