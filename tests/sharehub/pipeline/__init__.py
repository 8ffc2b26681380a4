"""Tests of sharehub.pipeline."""
