"""lake: Iceberg tables on a warehouse (local folder or S3/MinIO) through pyiceberg's SQL catalog.

Plain arguments and Arrow data in, Arrow data out; it knows nothing of the directory,
connectors or quality packages.
"""

from __future__ import annotations

from lake.errors import LakeError
from lake.properties import RUN_ID
from lake.tables import Lake, SnapshotInfo, WriteResult, normalise_code
from lake.warehouse import open_lake
from lake.zones import CURATED, QUARANTINE, RAW, ZONES

__all__ = [
    "CURATED",
    "QUARANTINE",
    "RAW",
    "RUN_ID",
    "ZONES",
    "Lake",
    "LakeError",
    "SnapshotInfo",
    "WriteResult",
    "normalise_code",
    "open_lake",
]
