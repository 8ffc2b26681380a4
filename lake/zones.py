"""Lake zones: each zone is one Iceberg namespace."""

from __future__ import annotations

RAW = "raw"
"""Landed source batches, append-only, one snapshot per sync run."""
CURATED = "curated"
"""Published data: upserted on the primary key, one atomic snapshot per sync run."""
QUARANTINE = "quarantine"
"""Rows that broke row rules, with their reasons (the correction list for the department)."""

ZONES: tuple[str, ...] = (RAW, CURATED, QUARANTINE)
