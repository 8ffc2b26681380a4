"""The portal's pages, one module per area; each has a ``router`` and registers its messages
and navigation entries when imported."""

from __future__ import annotations

from types import ModuleType

from catalog.portal.pages import (
    applications,
    audit,
    auth,
    corrections,
    dataset,
    directory,
    objections,
    policy,
    publish,
    sharing,
    subscriptions,
    supervision,
)

ALL_PAGES: tuple[ModuleType, ...] = (
    auth,
    directory,
    dataset,
    applications,
    publish,
    corrections,
    objections,
    audit,
    supervision,
    policy,
    sharing,
    subscriptions,
)
