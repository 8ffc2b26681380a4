"""The access API (``/api/v1``): token, directory, records, subject view, certificates,
applications and grants, audit.

Every request under ``/api/v1`` (except ``/health``) leaves one hash-chained audit record,
written before the response is sent (:mod:`catalog.api.app`).
"""

from __future__ import annotations

from catalog.api.app import create_app

__all__ = ["create_app"]
