"""Fixtures shared by the shell's tests: the sample departments' hub, synced end to end."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import pytest

from catalog import publishing
from catalog.db.engine import engine_for
from sharehub import pipeline
from sharehub.settings import get_settings

SAMPLE_CODES = ("SCJ-YYZZ-001", "GAJ-HJRK-001", "RSJ-SBJF-001", "FY-SXBZXR-001", "SGB-BSZN-001")

SyncedDemoHub = Callable[[Path], AbstractContextManager[dict[str, Any]]]


@contextlib.contextmanager
def _synced_demo_hub(base: Path) -> Iterator[dict[str, Any]]:
    """The five sample departments at scale 0.1 under ``base``: generated, their directory files
    published, every dataset synced once (SQLite hub DB, local warehouse). The settings point at
    it while the context is open."""
    from sharehub.demo import DIRECTORY_DIR, generate

    mp = pytest.MonkeyPatch()
    refs = generate(base / "sources", scale=0.1)
    mp.setenv("SHAREHUB_VAR_DIR", str(base / "var"))
    for ref, loc in refs.items():
        mp.setenv(f"SHAREHUB_CONNECTIONS__{ref.upper()}", loc)
    get_settings.cache_clear()
    try:
        settings = get_settings()
        engine = engine_for(settings.hub_db_url)
        for f in sorted(DIRECTORY_DIR.glob("*.yaml")):
            publishing.publish_path(engine, f)
        results = {code: pipeline.sync(code) for code in SAMPLE_CODES}
        yield {"base": base, "refs": refs, "settings": settings, "engine": engine, "results": results}
    finally:
        mp.undo()
        get_settings.cache_clear()


@pytest.fixture(scope="session")
def synced_demo_hub() -> SyncedDemoHub:
    """Build a synced sample hub (see :func:`_synced_demo_hub`); a module fixture opens one per
    module, since the tests of a module change it."""
    return _synced_demo_hub
