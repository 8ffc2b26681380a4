"""catalog.api.routers."""
