"""Tests of catalog.api."""
