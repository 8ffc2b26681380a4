"""catalog.directory."""
