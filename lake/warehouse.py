"""Open the lake: pyiceberg's SQL catalog in the hub DB, warehouse on a local folder or S3."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import unquote, urlparse

from lake import properties as props
from lake.errors import LakeError
from lake.zones import ZONES

if TYPE_CHECKING:
    from pyiceberg.catalog.sql import SqlCatalog

    from lake.tables import Lake

logger = logging.getLogger(__name__)

S3_CHECK_CONNECT_TIMEOUT_S = 5.0
S3_CHECK_REQUEST_TIMEOUT_S = 10.0
_DENIED = ("ACCESS_DENIED", "ACCESSDENIED", "INVALIDACCESSKEYID", "SIGNATURE", "403")


def open_lake(
    catalog_uri: str,
    warehouse: str,
    *,
    s3: Mapping[str, str] | None = None,
    name: str = "sharehub",
) -> Lake:
    """Open (and initialise if needed) the lake.

    Args:
        catalog_uri: SQLAlchemy URL of the hub DB holding the Iceberg SQL catalog
            (``sqlite:////abs/path.db`` or ``postgresql+psycopg://...``).
        warehouse: ``file:///abs/dir`` (or an absolute path) or ``s3://bucket/prefix``.
        s3: for an S3 warehouse: ``endpoint``, ``access_key``, ``secret_key``, ``region``.
        name: the catalog name (rows of several catalogs may share one DB).

    Creates the catalog tables and the zone namespaces when missing. For S3, checks first that
    the endpoint answers, the credentials work and the bucket exists (:class:`LakeError` if not).
    """
    from lake.tables import Lake

    catalog_props = catalog_properties(catalog_uri, warehouse, s3=s3)
    if warehouse.startswith("s3://") or warehouse.startswith("s3a://"):
        check_s3_warehouse(warehouse, s3 or {})
    elif catalog_props["warehouse"].startswith("file://"):  # pyiceberg.catalog.WAREHOUSE_LOCATION
        Path(_file_path(catalog_props["warehouse"])).mkdir(parents=True, exist_ok=True)
    catalog = load_sql_catalog(name, catalog_props)
    ensure_namespaces(catalog)
    return Lake(catalog)


#: seconds pyiceberg's own SQLite connection waits for the write lock: the hub's own (60 s), not
#: sqlite3's 5 s default, so that a commit waits for a hub transaction instead of failing
SQLITE_BUSY_TIMEOUT_S = 60


def _with_sqlite_timeout(uri: str) -> str:
    """A SQLite catalog URI with ``timeout`` set (pysqlite passes it to ``sqlite3.connect``)."""
    if not uri.startswith("sqlite") or "timeout=" in uri:
        return uri
    return f"{uri}{'&' if '?' in uri else '?'}timeout={SQLITE_BUSY_TIMEOUT_S}"


def _file_path(uri: str) -> str:
    return unquote(urlparse(uri).path)


def catalog_properties(
    catalog_uri: str, warehouse: str, *, s3: Mapping[str, str] | None = None
) -> dict[str, str]:
    """pyiceberg SqlCatalog properties (catalog + FileIO) for these settings."""
    from pyiceberg.catalog import URI, WAREHOUSE_LOCATION
    from pyiceberg.io import (
        S3_ACCESS_KEY_ID,
        S3_ENDPOINT,
        S3_FORCE_VIRTUAL_ADDRESSING,
        S3_REGION,
        S3_SECRET_ACCESS_KEY,
    )

    if warehouse.startswith("/"):
        warehouse = Path(warehouse).as_uri()
    scheme = urlparse(warehouse).scheme
    if scheme not in ("file", "s3", "s3a"):
        raise LakeError(f"unsupported warehouse {warehouse!r}: use file:///abs/dir or s3://bucket/prefix")
    if scheme == "file" and not _file_path(warehouse).startswith("/"):
        raise LakeError(f"the warehouse folder must be absolute: {warehouse!r}")
    result = {
        URI: _with_sqlite_timeout(catalog_uri),
        WAREHOUSE_LOCATION: warehouse.rstrip("/"),
        # we create the catalog tables ourselves, tolerating a concurrent creator
        props.CATALOG_INIT_TABLES: "false",
        props.CATALOG_POOL_PRE_PING: "true",
    }
    if scheme in ("s3", "s3a"):
        s3 = s3 or {}
        if s3.get("endpoint"):
            result[S3_ENDPOINT] = s3["endpoint"]
            # MinIO and most S3-compatible stores want path-style addressing
            result[S3_FORCE_VIRTUAL_ADDRESSING] = "false"
        if s3.get("access_key"):
            result[S3_ACCESS_KEY_ID] = s3["access_key"]
        if s3.get("secret_key"):
            result[S3_SECRET_ACCESS_KEY] = s3["secret_key"]
        # always set: without a region pyiceberg asks AWS where the bucket lives
        result[S3_REGION] = s3.get("region") or props.DEFAULT_S3_REGION
    return result


def check_s3_warehouse(warehouse: str, s3: Mapping[str, str]) -> None:
    """Raise a clear :class:`LakeError` unless the endpoint answers, the keys work and the bucket exists."""
    from pyarrow import fs

    bucket = urlparse(warehouse).netloc
    endpoint = s3.get("endpoint") or "AWS S3"
    kwargs: dict[str, object] = {
        "region": s3.get("region") or props.DEFAULT_S3_REGION,
        "connect_timeout": S3_CHECK_CONNECT_TIMEOUT_S,
        "request_timeout": S3_CHECK_REQUEST_TIMEOUT_S,
        "retry_strategy": fs.AwsStandardS3RetryStrategy(max_attempts=2),
    }
    if s3.get("endpoint"):
        kwargs["endpoint_override"] = s3["endpoint"]
        kwargs["force_virtual_addressing"] = False
    if s3.get("access_key"):
        kwargs["access_key"] = s3["access_key"]
        kwargs["secret_key"] = s3.get("secret_key", "")
    try:
        info = fs.S3FileSystem(**kwargs).get_file_info(bucket)
    except OSError as exc:
        text = str(exc)
        upper = text.upper()
        if any(m in upper for m in _DENIED):
            raise LakeError(
                f"S3 credentials rejected by {endpoint} (access key {s3.get('access_key', '')!r}): {text}"
            ) from exc
        if "NETWORK_CONNECTION" in upper or "CONNECT" in upper:
            raise LakeError(f"S3 endpoint {endpoint} unreachable: {text}") from exc
        raise LakeError(f"S3 check of bucket {bucket!r} at {endpoint} failed: {text}") from exc
    if info.type == fs.FileType.NotFound:
        raise LakeError(f"bucket '{bucket}' does not exist at {endpoint}")


def load_sql_catalog(name: str, catalog_props: Mapping[str, str]) -> SqlCatalog:
    """Build the SqlCatalog and create its tables, tolerating another process doing the same."""
    from pyiceberg.catalog.sql import SqlCatalog
    from sqlalchemy.exc import DatabaseError

    try:
        catalog = SqlCatalog(name, **catalog_props)
    except DatabaseError as exc:
        raise LakeError(f"cannot open the Iceberg catalog DB {_safe_url(catalog_props)}: {exc}") from exc
    try:
        catalog.create_tables()  # CREATE TABLE ... with checkfirst: a no-op once they exist
    except DatabaseError as exc:
        # Two processes creating the catalog tables at once: the loser sees "already exists"
        # (SQLite) or a unique violation on pg_type (PostgreSQL). Both are harmless.
        text = str(exc).lower()
        if "already exists" not in text and "duplicate key" not in text and "unique" not in text:
            raise LakeError(
                f"cannot create the Iceberg catalog tables in {_safe_url(catalog_props)}: {exc}"
            ) from exc
        logger.debug("catalog tables created concurrently: %s", exc)
    return catalog


def ensure_namespaces(catalog: SqlCatalog) -> None:
    """Create the zone namespaces that are missing.

    Two processes opening a fresh lake at once both see a zone missing and both insert it; the
    loser gets ``NamespaceAlreadyExistsError`` or, from pyiceberg's SQL catalog, the database's
    raw unique-key ``IntegrityError`` on ``iceberg_namespace_properties``. Either means the
    namespace exists now, which is checked before going on.
    """
    from pyiceberg.exceptions import NamespaceAlreadyExistsError
    from sqlalchemy.exc import IntegrityError

    for zone in ZONES:
        try:
            catalog.create_namespace_if_not_exists(zone)
        except (NamespaceAlreadyExistsError, IntegrityError) as exc:  # a concurrent process won
            if not catalog.namespace_exists(zone):
                raise LakeError(f"cannot create the lake zone {zone!r}: {exc}") from exc
            logger.debug("zone %s created concurrently: %s", zone, exc)


def _safe_url(catalog_props: Mapping[str, str]) -> str:
    from sqlalchemy.engine import make_url

    try:
        from pyiceberg.catalog import URI

        return make_url(catalog_props[URI]).render_as_string(hide_password=True)
    except Exception:
        return "<catalog uri>"
