"""catalog.certificates.issuing."""
