"""What every ``sharehub`` command group shares: the consoles, the hub DB engine, JSON output."""

from __future__ import annotations

import json
import sys
from typing import Any

from rich.console import Console

from catalog.db.engine import engine_for
from sharehub.settings import get_settings

console = Console(width=None if sys.stdout.isatty() else 160)  # logs and CI pipes: no 80-column squeeze
err = Console(stderr=True)


def engine() -> Any:
    """The hub DB engine, pooled as the settings say (the same engine the pipeline uses)."""

    s = get_settings()
    return engine_for(s.hub_db_url, pool_size=s.db_pool_size, max_overflow=s.db_max_overflow)


def dump(data: Any) -> None:
    """``--json`` output: UTF-8 text, dates and decimals as strings."""
    sys.stdout.write(json.dumps(data, ensure_ascii=False, indent=2, default=str) + "\n")
