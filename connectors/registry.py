"""The registry of connector kinds: kind -> factory, each kind's module imported when first used.

Adding a kind is one module with a class implementing :class:`connectors.base.Connector` and
one :func:`register_connector` line (here for the built-in kinds, or in the module that adds it).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from connectors.base import Connector, ConnectorError

ConnectorFactory = Callable[..., Connector]
_REGISTRY: dict[str, Callable[[], ConnectorFactory]] = {}


def _sql() -> ConnectorFactory:
    from connectors.sql import SqlConnector

    return SqlConnector


def _file() -> ConnectorFactory:
    from connectors.files import FileConnector

    return FileConnector


def _http() -> ConnectorFactory:
    from connectors.http import HttpConnector

    return HttpConnector


_REGISTRY["sql"] = _sql
_REGISTRY["file"] = _file
_REGISTRY["http"] = _http


def register_connector(kind: str, loader: Callable[[], ConnectorFactory]) -> None:
    """Register a connector kind; ``loader`` returns the factory (imported lazily)."""
    _REGISTRY[kind] = loader


def unregister_connector(kind: str) -> None:
    """Remove a kind (for tests that register a kind of their own)."""
    _REGISTRY.pop(kind, None)


def connector_kinds() -> list[str]:
    """The registered connector kinds, sorted."""
    return sorted(_REGISTRY)


def open_connector(kind: str, **options: Any) -> Connector:
    """Build a connector of ``kind`` ("sql", "file", ...) from keyword options.

    Raises ConnectorError for an unknown kind.
    """
    try:
        loader = _REGISTRY[kind]
    except KeyError:
        raise ConnectorError(
            f"unknown connector kind {kind!r}; known kinds: {', '.join(connector_kinds())}"
        ) from None
    return loader()(**options)
