"""connectors: department sources -> Arrow record batches (SQL via SQLAlchemy, files, HTTP).

Light to import: the heavy modules (``connectors.sql``, ``connectors.files``,
``connectors.http``, ``connectors.conform``, ``connectors.drift``) are imported where they are used.
"""

from __future__ import annotations

from connectors.base import Connector, ConnectorError, Reject
from connectors.registry import connector_kinds, open_connector, register_connector

__all__ = ["Connector", "ConnectorError", "Reject", "connector_kinds", "open_connector", "register_connector"]
