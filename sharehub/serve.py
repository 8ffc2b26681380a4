"""The API process, configured from the hub's settings: uvicorn's entry points.

``sharehub serve`` runs ``uvicorn sharehub.serve:create_app --factory --http
sharehub.serve:HttpProtocol``; the same two names serve a compose file or another process
manager. ``catalog.api`` itself takes its settings as an argument and never reads them.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from catalog.api.server import HttpProtocol as _HubHttpProtocol
from catalog.api.server import ServerLimits
from sharehub.settings import get_settings

if TYPE_CHECKING:
    from fastapi import FastAPI


def create_app() -> FastAPI:
    """The access API and the portal for the process settings (environment, secrets file, config file)."""
    from catalog.portal.app import create_app as build

    return build(get_settings())


def prepare_metrics_dir(var_dir: Path, workers: int) -> Path | None:
    """Prometheus's multiprocess mode for several workers: each worker writes its metrics to
    files in ``PROMETHEUS_MULTIPROC_DIR`` (``<var>/prometheus`` unless set) and a scrape of any
    worker adds them all up. The folder is emptied first (files of an earlier server would be
    counted again). One worker: nothing to do (None)."""
    if workers <= 1:
        return None
    folder = Path(os.environ.get("PROMETHEUS_MULTIPROC_DIR") or var_dir / "prometheus")
    folder.mkdir(parents=True, exist_ok=True)
    for stale in folder.glob("*.db"):
        stale.unlink()
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(folder)
    return folder


class HttpProtocol(_HubHttpProtocol):  # type: ignore[misc,valid-type]
    """The hub's HTTP protocol with the header limits of the process settings."""

    @classmethod
    def load_limits(cls) -> ServerLimits:
        return ServerLimits.from_settings(get_settings())
