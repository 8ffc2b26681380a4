"""Tests of sharehub.demo."""
