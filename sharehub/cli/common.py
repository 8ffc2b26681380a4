"""What every ``sharehub`` command group shares: the consoles, the hub DB engine, JSON output."""

from __future__ import annotations

import getpass
import json
import os
import sys
from typing import Any

import typer
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


def operator() -> str:
    """Who runs a command, as the hub's records name them: ``cli:<login name>``."""
    return "cli:" + (os.environ.get("SUDO_USER") or getpass.getuser())


def fail(exc: Exception) -> typer.Exit:
    """Print why a command failed (a hub error with its code and both messages) and exit 1."""
    from catalog.errors import HubError, error_body

    if isinstance(exc, HubError):
        body = error_body(exc)["error"]
        err.print(
            f"[red]error[/red] {body['code']}: {body['message']} ({body['message_zh']})", highlight=False
        )
    else:
        err.print(f"[red]error[/red] {exc}", highlight=False)
    return typer.Exit(1)
