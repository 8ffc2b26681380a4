"""Tests of catalog.access."""
