"""Tests of sharehub.airflow."""
