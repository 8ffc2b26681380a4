"""How a recipient fetches a file that a Delta Sharing ``query`` or ``changes`` hands out.

Two kinds of link, chosen by the setting ``sharing_links``:

* **hub** — a link to the hub's own ``/api/v1/delta-sharing/files/<sealed>`` (made by the API).
  The hub re-checks the app's grant at every download, so a revoked or changed grant stops the
  links already handed out.
* **presigned** — on an S3 warehouse, the granted file is put into the lake bucket under
  ``<prefix>/_sharing/<file id>.parquet`` and the link is a pre-signed S3 GET URL, as the
  protocol's reference server answers. The object store serves it; nothing can check the grant
  at download, so such a link works until it expires (at most ``sharing_link_seconds``) even if
  the grant is revoked meanwhile. The audit record of the query is the record of what was handed
  out.

``auto`` (the default) is ``presigned`` on an S3 warehouse and ``hub`` on a local one;
``presigned`` on a local warehouse is refused (``sharing_links_unavailable``).

Only the granted, masked files (:mod:`catalog.sharing.files`) ever go under ``_sharing/``: a
URL names one such object, never a curated data file.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from catalog.errors import HubError

if TYPE_CHECKING:
    from minio import Minio

    from catalog.sharing.files import GrantedFile

logger = logging.getLogger(__name__)

LinkKind = Literal["hub", "presigned"]
MODES = ("auto", "hub", "presigned")
#: the default lifetime of a handed-out link (``sharing_link_seconds``)
DEFAULT_SECONDS = 3600
#: the folder under the warehouse prefix that holds the shared files
FOLDER = "_sharing"


def link_kind(settings: Any) -> LinkKind:
    """The kind of link the hub's settings ask for (``sharing_links``, with ``s3.enabled``)."""
    mode = getattr(settings, "sharing_links", "auto")
    on_s3 = bool(getattr(getattr(settings, "s3", None), "enabled", False))
    if mode == "hub":
        return "hub"
    if mode == "presigned":
        if not on_s3:
            raise HubError("sharing_links_unavailable")
        return "presigned"
    if mode == "auto":
        return "presigned" if on_s3 else "hub"
    raise ValueError(f"sharing_links must be one of {', '.join(MODES)}, not {mode!r}")


def link_seconds(settings: Any) -> int:
    """How long a handed-out link works (``sharing_link_seconds``)."""
    return int(getattr(settings, "sharing_link_seconds", DEFAULT_SECONDS))


@dataclass(frozen=True)
class Presigned:
    """A pre-signed URL handed out for one file."""

    url: str
    expires_ms: int  # the protocol's expirationTimestamp
    size: int  # the object's size in bytes, as the store serves it
    key: str


@dataclass(frozen=True)
class S3Files:
    """The shared files in the lake bucket, handed out by pre-signed URL."""

    client: Minio
    bucket: str
    prefix: str  # ``<warehouse prefix>/_sharing``

    @classmethod
    def from_settings(cls, settings: Any) -> S3Files:
        """For the hub's S3 warehouse (``settings.s3`` and ``settings.s3_options()``)."""
        from lake.s3admin import minio_client

        opts = settings.s3_options() or {}
        client = minio_client(
            opts.get("endpoint"), opts.get("access_key"), opts.get("secret_key"), opts.get("region")
        )
        base = str(settings.s3.prefix).strip("/")
        return cls(client, str(settings.s3.bucket), f"{base}/{FOLDER}" if base else FOLDER)

    def key(self, file_id: str) -> str:
        """The object key of a file (its id is a digest of what it holds)."""
        return f"{self.prefix}/{file_id}.parquet"

    def hand_out(self, f: GrantedFile, seconds: int) -> Presigned:
        """Put ``f`` into the bucket unless an object of its name is there already (the name is a
        digest of the dataset, snapshot and projection, so that object holds the same rows), then
        sign a GET URL for it valid ``seconds``. An object store that fails (after the lake's
        retries) is ``sharing_store_unavailable``: nothing is handed out."""
        from lake.errors import LakeError
        from lake.s3admin import presigned_get, put_file_once

        key = self.key(f.id)
        try:
            size, uploaded = put_file_once(self.client, self.bucket, key, f.path)
        except LakeError as exc:
            logger.error("sharing file not put into the object store: %s", exc)
            raise HubError("sharing_store_unavailable") from exc
        if uploaded:
            logger.info("sharing file %s put into s3://%s/%s (%d bytes)", f.id, self.bucket, key, size)
        # the expiry is counted from the signing time, which the URL carries (X-Amz-Date)
        signed_at = int(time.time())
        url = presigned_get(self.client, self.bucket, key, expires_s=seconds)
        return Presigned(url, (signed_at + seconds) * 1000, size, key)
