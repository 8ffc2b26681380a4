"""Fixtures of the pipeline tests: a small hub whose one dataset has been published once."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.sharehub.pipeline.fault_hub import FaultHub, check_published, make_hub


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.services)])
def fhub(request: pytest.FixtureRequest, tmp_path: Path) -> FaultHub:
    """A fault hub after its first publish (the state a killed run must leave intact), on the
    embedded SQLite hub DB and on PostgreSQL."""
    url = request.getfixturevalue("hub_pg_url") if request.param == "postgresql" else None
    hub = make_hub(tmp_path, url)
    hub.sync()
    check_published(hub)
    return hub
