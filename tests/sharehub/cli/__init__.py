"""Tests of sharehub.cli."""
