"""Bulk sharing over the Delta Sharing protocol (issue 15): recipient profiles, the tables an app
may read in bulk, table versions from the curated Iceberg snapshots, and the per-grant files."""
