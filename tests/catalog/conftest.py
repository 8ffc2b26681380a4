"""Fixtures of the catalog tests: the sample licence hub (``api_hub.py``) as a fixture."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.catalog.api_hub import ApiHub, build_hub

ApiHubFactory = Callable[..., ApiHub]


@pytest.fixture
def make_api_hub(tmp_path: Path) -> ApiHubFactory:
    """Build the sample licence hub in this test's folder: ``make_api_hub(**settings_overrides)``
    (``database_url=`` puts it on PostgreSQL)."""

    def make(**overrides: Any) -> ApiHub:
        return build_hub(tmp_path, **overrides)

    return make


@pytest.fixture
def api_hub(make_api_hub: ApiHubFactory) -> ApiHub:
    """The sample licence hub with the default settings, on the embedded SQLite hub DB."""
    return make_api_hub()
