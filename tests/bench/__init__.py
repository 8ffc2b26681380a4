"""Quick runs of the benchmarks (make bench), so they do not rot."""
