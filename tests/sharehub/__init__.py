"""Tests of sharehub."""
