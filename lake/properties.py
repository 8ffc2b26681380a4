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

DEFAULT_TARGET_FILE_SIZE_BYTES = 128 * 1024 * 1024
"""In-memory Arrow bytes per written file: also the memory bound of a streamed append."""

# --- catalog properties pyiceberg reads but names no constant for (the others are imported
# from pyiceberg where they are used, so that importing the lake stays light) ---------------
CATALOG_INIT_TABLES = "init_catalog_tables"
CATALOG_POOL_PRE_PING = "pool_pre_ping"

DEFAULT_S3_REGION = "us-east-1"
