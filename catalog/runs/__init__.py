"""Sync runs: the record of each run (status, counts, snapshots, watermarks) and the per-dataset run lease."""
