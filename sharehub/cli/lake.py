"""``sharehub lake``: set up and check the lake's S3 / MinIO warehouse bucket, pre-sign object URLs."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Annotated, Any, NoReturn
from urllib.parse import urlsplit

import typer

from lake.errors import LakeError
from lake.s3admin import MAX_PRESIGN_EXPIRY_S
from sharehub.cli.common import console, err
from sharehub.cli.common import dump as _dump
from sharehub.settings import Settings, get_settings

if TYPE_CHECKING:
    from minio import Minio

app = typer.Typer(help="the lake's warehouse on S3 / MinIO", no_args_is_help=True)


def _client(settings: Settings) -> Minio:
    from lake.s3admin import minio_client

    opts = settings.s3_options() or {}
    try:
        return minio_client(
            opts.get("endpoint"), opts.get("access_key"), opts.get("secret_key"), opts.get("region")
        )
    except LakeError as exc:
        _fail(str(exc))


def _fail(message: str) -> NoReturn:
    err.print(message, markup=False, highlight=False, soft_wrap=True)
    raise typer.Exit(1)


@app.command("init")
def init_cmd() -> None:
    """Create the warehouse bucket if missing and turn versioning on (nothing to do for a local lake)."""
    from lake.s3admin import endpoint_of, ensure_bucket

    settings = get_settings()
    if not settings.s3.enabled or not settings.s3.bucket:
        console.print(
            f"the lake is a local folder ({settings.warehouse}): no bucket to set up, nothing to do",
            markup=False,
            highlight=False,
        )
        return
    bucket = settings.s3.bucket
    client = _client(settings)
    try:
        created = ensure_bucket(client, bucket, versioning=True)
    except LakeError as exc:
        _fail(str(exc))
    verb = "created" if created else "found"
    console.print(f"{verb} bucket {bucket!r} at {endpoint_of(client)}; versioning on", markup=False)
    console.print(f"warehouse: {settings.warehouse}", markup=False, highlight=False)


@app.command("health")
def health_cmd(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Check that the endpoint answers, the keys work and the bucket exists; exit 1 when not."""
    from lake.s3admin import health

    settings = get_settings()
    if not settings.s3.enabled or not settings.s3.bucket:
        result: dict[str, Any] = {
            "ok": True,
            "endpoint": None,
            "bucket": None,
            "versioning": None,
            "latency_ms": None,
            "error": None,
        }
        note = f"the lake is a local folder ({settings.warehouse}): no S3 endpoint to check"
    else:
        result = health(_client(settings), settings.s3.bucket)
        note = None
    result["warehouse"] = settings.warehouse
    if as_json:
        _dump(result)
    elif note:
        console.print(note, markup=False, highlight=False)
    elif result["ok"]:
        console.print(
            f"ok: bucket {result['bucket']!r} at {result['endpoint']} answered in {result['latency_ms']} ms; "
            f"versioning {result['versioning']}",
            markup=False,
            highlight=False,
        )
        if result["versioning"] != "Enabled":
            console.print("versioning is not on: run `sharehub lake init`", style="yellow", markup=False)
    else:
        console.print(
            f"NOT OK: bucket {result['bucket']!r} at {result['endpoint']}: {result['error']}",
            style="red",
            markup=False,
            highlight=False,
            soft_wrap=True,
        )
    if not result["ok"]:
        raise typer.Exit(1)


@app.command("presign")
def presign_cmd(
    key: Annotated[str, typer.Argument(help="object key in the warehouse bucket, or s3://bucket/key")],
    expires: Annotated[
        int | None,
        typer.Option(
            min=1,
            max=MAX_PRESIGN_EXPIRY_S,
            help="seconds the URL stays valid [default: presign_expiry_seconds]",
        ),
    ] = None,
) -> None:
    """Print a pre-signed GET URL for one object of the lake (checks that the object exists)."""
    from minio.error import S3Error

    from lake.s3admin import describe_error, endpoint_of, presigned_get, with_retries

    settings = get_settings()
    if not settings.s3.enabled or not settings.s3.bucket:
        err.print(
            "pre-signed URLs need the lake on S3: set SHAREHUB_S3__BUCKET (and __ENDPOINT)", markup=False
        )
        raise typer.Exit(1)
    bucket, object_key = _bucket_and_key(key, settings.s3.bucket)
    client = _client(settings)
    try:
        with_retries(lambda: client.stat_object(bucket, object_key), what=f"stat {bucket}/{object_key}")
    except Exception as exc:
        if isinstance(exc, S3Error) and exc.code in ("NoSuchKey", "NoSuchObject"):
            err.print(f"no object {object_key!r} in bucket {bucket!r} at {endpoint_of(client)}", markup=False)
        else:
            err.print(
                f"cannot read {bucket}/{object_key}: {describe_error(exc, endpoint_of(client))}", markup=False
            )
        raise typer.Exit(1) from None
    # plain stdout: the URL is long and must not be wrapped
    sys.stdout.write(
        presigned_get(client, bucket, object_key, expires_s=expires or settings.presign_expiry_seconds) + "\n"
    )


def _bucket_and_key(key: str, default_bucket: str) -> tuple[str, str]:
    if key.startswith(("s3://", "s3a://")):
        parts = urlsplit(key)
        if not parts.netloc or not parts.path.strip("/"):
            raise typer.BadParameter(f"not an s3://bucket/key URI: {key!r}", param_hint="KEY")
        return parts.netloc, parts.path.lstrip("/")
    if not key.strip("/"):
        raise typer.BadParameter("empty object key", param_hint="KEY")
    return default_bucket, key.lstrip("/")
