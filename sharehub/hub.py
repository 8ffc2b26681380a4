"""The parts one pipeline step works with (hub DB engine, lake, settings) and the run errors."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from catalog.db.engine import engine_for
from sharehub.settings import Settings, get_settings

if TYPE_CHECKING:
    import sqlalchemy as sa

    from lake import Lake


class SyncError(RuntimeError):
    """A run step failed; the message says which dataset, run and why."""


class QualityBlocked(SyncError):
    """The quality policy stopped the run before publishing (retrying would not change the data)."""

    retryable = False


@dataclass
class Hub:
    """The parts one pipeline step works with."""

    settings: Settings
    engine: sa.Engine
    _lake: Lake | None = None

    @property
    def lake(self) -> Lake:
        if self._lake is None:
            from lake import open_lake

            self._lake = open_lake(
                self.settings.hub_db_url, self.settings.warehouse, s3=self.settings.s3_options()
            )
        return self._lake


def hub(settings: Settings | None = None) -> Hub:
    """The hub for these settings (default: the process settings)."""
    s = settings or get_settings()
    return Hub(s, engine_for(s.hub_db_url, pool_size=s.db_pool_size, max_overflow=s.db_max_overflow))
