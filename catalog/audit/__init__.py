"""catalog.audit.chain."""
