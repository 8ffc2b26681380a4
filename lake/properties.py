"""Property keys, as named constants (pyiceberg style)."""

from __future__ import annotations

# --- snapshot summary properties ---------------------------------------------------------
RUN_ID = "sharehub.run-id"
"""Snapshot summary property: the sync run that committed the snapshot."""

# --- table properties ------------------------------------------------------------------------
DECLARED_SCHEMA = "sharehub.arrow-schema"
"""Table property: the Arrow schema the pipeline declared (base64 IPC), so reads give it back."""
KEY_FIELDS = "sharehub.key"
"""Table property: comma-separated primary key columns (also Iceberg identifier fields)."""
DATASET_CODE = "sharehub.dataset-code"
"""Table property: the dataset code (信息资源代码) before it was normalised into a table name."""

WRITE_TARGET_FILE_SIZE_BYTES = "write.target-file-size-bytes"
DEFAULT_TARGET_FILE_SIZE_BYTES = 128 * 1024 * 1024
"""In-memory Arrow bytes per written file: also the memory bound of a streamed append."""

# --- catalog / FileIO properties (pyiceberg's own keys) ---------------------------------------
CATALOG_URI = "uri"
CATALOG_WAREHOUSE = "warehouse"
CATALOG_INIT_TABLES = "init_catalog_tables"
CATALOG_POOL_PRE_PING = "pool_pre_ping"
S3_ENDPOINT = "s3.endpoint"
S3_ACCESS_KEY_ID = "s3.access-key-id"
S3_SECRET_ACCESS_KEY = "s3.secret-access-key"  # noqa: S105 - a property name, not a secret
S3_REGION = "s3.region"
S3_FORCE_VIRTUAL_ADDRESSING = "s3.force-virtual-addressing"
S3_CONNECT_TIMEOUT = "s3.connect-timeout"
S3_REQUEST_TIMEOUT = "s3.request-timeout"

DEFAULT_S3_REGION = "us-east-1"
