"""Tests of sharehub.backup."""
