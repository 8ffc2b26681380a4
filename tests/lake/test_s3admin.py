"""lake.s3admin and ``sharehub lake`` against moto's real S3 server (``s3_endpoint`` fixture).

moto accepts any credentials unless its auth is switched on (``/moto-api/reset-auth``); the
``iam_key`` fixture switches it on with a real IAM access key, so InvalidAccessKeyId and
SignatureDoesNotMatch come from the server. Transient failures come from a small proxy in
front of moto that answers 503 SlowDown, or drops the connection, a set number of times.
"""

from __future__ import annotations

import io
import json
import threading
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import boto3
import httpx
import pytest
import requests
import urllib3.exceptions as u3
from minio.error import S3Error, ServerError
from typer.testing import CliRunner

from lake import LakeError
from lake.s3admin import (
    describe_error,
    endpoint_of,
    ensure_bucket,
    health,
    is_transient_s3,
    minio_client,
    presigned_get,
    put_file_once,
    with_retries,
)


def s3(test):
    """Needs moto's S3 server."""
    return pytest.mark.services(pytest.mark.s3(test))


UNREACHABLE = "http://127.0.0.1:9"  # the discard port: nothing listens, connection refused


def _name() -> str:
    return f"b-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def client(s3_endpoint):
    return minio_client(s3_endpoint.url, s3_endpoint.access_key, s3_endpoint.secret_key, s3_endpoint.region)


@pytest.fixture
def iam_key(s3_endpoint) -> Iterator[tuple[str, str]]:
    """Switch moto's credential checks on, with one IAM user allowed s3:*; restored afterwards."""
    iam = boto3.client(
        "iam",
        endpoint_url=s3_endpoint.url,
        aws_access_key_id=s3_endpoint.access_key,
        aws_secret_access_key=s3_endpoint.secret_key,
        region_name=s3_endpoint.region,
    )
    user = f"u-{uuid.uuid4().hex[:8]}"
    iam.create_user(UserName=user)
    policy = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]}
    iam.put_user_policy(UserName=user, PolicyName="s3", PolicyDocument=json.dumps(policy))
    key = iam.create_access_key(UserName=user)["AccessKey"]
    r = requests.post(f"{s3_endpoint.url}/moto-api/reset-auth", data=b"0", timeout=10)
    previous = r.json()["PREVIOUS_INITIAL_NO_AUTH_ACTION_COUNT"]
    try:
        yield key["AccessKeyId"], key["SecretAccessKey"]
    finally:
        requests.post(f"{s3_endpoint.url}/moto-api/reset-auth", data=str(previous).encode(), timeout=10)


# ---- minio_client --------------------------------------------------------------------------------


def test_client_endpoint_and_scheme() -> None:
    assert endpoint_of(minio_client("http://minio:9000", "a", "b", None)) == "http://minio:9000"
    assert endpoint_of(minio_client("https://s3.example.org/", "a", "b", "eu-1")) == "https://s3.example.org"
    assert endpoint_of(minio_client("minio:9000", "a", "b", None)) == "https://minio:9000"
    assert endpoint_of(minio_client("minio:9000", "a", "b", None, secure=False)) == "http://minio:9000"
    assert endpoint_of(minio_client(None, None, None, None)) == "https://s3.amazonaws.com"
    with pytest.raises(LakeError, match="must not have a path"):
        minio_client("http://minio:9000/bucket", "a", "b", None)
    with pytest.raises(LakeError, match="must look like"):
        minio_client("ftp://minio:9000", "a", "b", None)
    with pytest.raises(LakeError, match="without a secret key"):
        minio_client("http://minio:9000", "a", None, None)


# ---- ensure_bucket -------------------------------------------------------------------------------


@s3
def test_ensure_bucket_creates_with_versioning_and_is_idempotent(client) -> None:
    bucket = _name()
    assert client.bucket_exists(bucket) is False
    assert ensure_bucket(client, bucket) is True
    assert client.get_bucket_versioning(bucket).status == "Enabled"
    assert ensure_bucket(client, bucket) is False
    assert client.get_bucket_versioning(bucket).status == "Enabled"


@s3
def test_ensure_bucket_turns_versioning_on_for_an_existing_bucket(s3_endpoint, client) -> None:
    bucket = s3_endpoint.new_bucket()
    assert client.get_bucket_versioning(bucket).status is None
    assert ensure_bucket(client, bucket) is False
    assert client.get_bucket_versioning(bucket).status == "Enabled"


@s3
def test_ensure_bucket_without_versioning(client) -> None:
    bucket = _name()
    assert ensure_bucket(client, bucket, versioning=False) is True
    assert client.bucket_exists(bucket)
    assert client.get_bucket_versioning(bucket).status is None


@s3
def test_ensure_bucket_wrong_credentials(s3_endpoint, iam_key) -> None:
    access_key, _ = iam_key
    bad = minio_client(s3_endpoint.url, access_key, "not-the-secret", None)
    with pytest.raises(LakeError) as err:
        ensure_bucket(bad, _name())
    assert str(err.value).startswith("cannot set up bucket '")
    assert f"at {s3_endpoint.url}: SignatureDoesNotMatch" in str(err.value)
    assert "not-the-secret" not in str(err.value)


def test_ensure_bucket_unreachable() -> None:
    with pytest.raises(LakeError, match=r"cannot connect to http://127.0.0.1:9: .*Connection refused"):
        ensure_bucket(minio_client(UNREACHABLE, "a", "b", None), "bucket-x")


# ---- health --------------------------------------------------------------------------------------


@s3
def test_health_ok(s3_endpoint, client) -> None:
    bucket = _name()
    ensure_bucket(client, bucket)
    h = health(client, bucket)
    assert {k: v for k, v in h.items() if k != "latency_ms"} == {
        "ok": True,
        "endpoint": s3_endpoint.url,
        "bucket": bucket,
        "versioning": "Enabled",
        "error": None,
    }
    assert isinstance(h["latency_ms"], float) and h["latency_ms"] >= 0


@s3
def test_health_reports_versioning_off(s3_endpoint, client) -> None:
    h = health(client, s3_endpoint.new_bucket())
    assert h["ok"] is True and h["versioning"] == "Off"


@s3
def test_health_missing_bucket(client) -> None:
    h = health(client, "no-such-bucket-here")
    assert h["ok"] is False and h["versioning"] is None
    assert h["error"] == "NoSuchBucket: The specified bucket does not exist (bucket 'no-such-bucket-here')"


def test_health_unreachable_endpoint() -> None:
    h = health(minio_client(UNREACHABLE, "a", "secret-b", None), "bucket-x")
    assert h["ok"] is False and h["endpoint"] == UNREACHABLE
    assert h["error"].startswith("cannot connect to http://127.0.0.1:9: ")
    assert "Connection refused" in h["error"]


@s3
def test_health_credentials(s3_endpoint, client, iam_key) -> None:
    access_key, secret_key = iam_key
    bucket = _name()
    good = minio_client(s3_endpoint.url, access_key, secret_key, None)
    ensure_bucket(good, bucket)
    assert health(good, bucket)["ok"] is True

    unknown = health(minio_client(s3_endpoint.url, "AKIAWRONGWRONGWRONG", "wrong-secret", None), bucket)
    assert unknown["ok"] is False
    assert unknown["error"].startswith("InvalidAccessKeyId: ")

    mismatch = health(minio_client(s3_endpoint.url, access_key, "wrong-secret", None), bucket)
    assert mismatch["ok"] is False
    assert mismatch["error"].startswith("SignatureDoesNotMatch: ")
    for h in (unknown, mismatch):
        assert "wrong-secret" not in json.dumps(h) and secret_key not in json.dumps(h)

    # the default test keys are not IAM keys: rejected once checks are on
    assert health(client, bucket)["error"].startswith("InvalidAccessKeyId: ")


# ---- presigned_get -------------------------------------------------------------------------------


@s3
def test_presigned_url_downloads_the_object(client) -> None:
    bucket = _name()
    ensure_bucket(client, bucket)
    body = "营业执照 data\n".encode()
    client.put_object(bucket, "warehouse/curated/x.parquet", io.BytesIO(body), len(body))
    url = presigned_get(client, bucket, "warehouse/curated/x.parquet", expires_s=120)
    assert "X-Amz-Expires=120" in url and "X-Amz-Signature=" in url
    r = httpx.get(url, timeout=10)
    assert r.status_code == 200 and r.content == body


def test_presign_expiry_bounds() -> None:
    client = minio_client(UNREACHABLE, "a", "b", None)  # signing is local: no request is made
    with pytest.raises(ValueError, match="between 1 and 604800"):
        presigned_get(client, "b-any", "k", expires_s=0)
    with pytest.raises(ValueError, match="between 1 and 604800"):
        presigned_get(client, "b-any", "k", expires_s=7 * 86_400 + 1)


# ---- put_file_once -------------------------------------------------------------------------------


@s3
def test_put_file_once_uploads_then_keeps_the_object(client, tmp_path: Path) -> None:
    bucket = _name()
    ensure_bucket(client, bucket)
    path = tmp_path / "f.parquet"
    path.write_bytes(b"first")
    assert put_file_once(client, bucket, "w/_sharing/f.parquet", path) == (5, True)
    path.write_bytes(b"second, longer")  # a key that names its content is not written again
    assert put_file_once(client, bucket, "w/_sharing/f.parquet", path) == (5, False)
    assert client.get_object(bucket, "w/_sharing/f.parquet").data == b"first"
    versions = list(client.list_objects(bucket, prefix="w/_sharing/", include_version=True))
    assert len(versions) == 1
    with pytest.raises(LakeError, match=r"cannot put s3://b-no-such-bucket-x/k at .*NoSuchBucket"):
        put_file_once(client, "b-no-such-bucket-x", "k", path)


# ---- retries -------------------------------------------------------------------------------------


_NOT_FORWARDED = ("host", "content-length")
_NOT_RETURNED = ("content-length", "transfer-encoding", "connection", "server", "date")


class FlakyProxy:
    """An HTTP proxy to moto that fails the first ``failures`` requests: ``slowdown`` answers 503
    with S3's SlowDown error document, ``drop`` closes the connection without an answer."""

    def __init__(self, upstream: str, failures: int, mode: str) -> None:
        self.failures = failures
        self.failed = 0
        self.forwarded = 0
        proxy = self
        upstream_client = httpx.Client(base_url=upstream, timeout=10)

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                if proxy.failed < proxy.failures:
                    proxy.failed += 1
                    if mode == "drop":
                        self.close_connection = True
                        return
                    doc = (
                        b'<?xml version="1.0" encoding="UTF-8"?><Error><Code>SlowDown</Code>'
                        b"<Message>Please reduce your request rate.</Message></Error>"
                    )
                    self.send_response(503)
                    self.send_header("Content-Type", "application/xml")
                    self.send_header("Content-Length", str(len(doc)))
                    self.end_headers()
                    self.wfile.write(doc)
                    return
                proxy.forwarded += 1
                headers = {
                    k: v for k, v in self.headers.items() if k.lower() not in ("host", "content-length")
                }
                resp = upstream_client.request(self.command, self.path, content=body, headers=headers)
                self.send_response(resp.status_code)
                for k, v in resp.headers.items():
                    if k.lower() not in (
                        "content-length",
                        "transfer-encoding",
                        "connection",
                        "server",
                        "date",
                    ):
                        self.send_header(k, v)
                self.send_header("Content-Length", str(len(resp.content)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(resp.content)

            do_GET = do_PUT = do_HEAD = do_POST = do_DELETE = _handle

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        self._upstream = upstream_client

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._upstream.close()


@pytest.fixture
def flaky(s3_endpoint) -> Iterator:
    proxies: list[FlakyProxy] = []

    def make(failures: int, mode: str = "slowdown") -> FlakyProxy:
        proxies.append(FlakyProxy(s3_endpoint.url, failures, mode))
        return proxies[-1]

    yield make
    for p in proxies:
        p.close()


@s3
@pytest.mark.parametrize("mode", ["slowdown", "drop"])
def test_ensure_bucket_rides_out_transient_failures(s3_endpoint, client, flaky, mode) -> None:
    proxy = flaky(2, mode)
    bucket = _name()
    assert ensure_bucket(minio_client(proxy.url, "testing", "testing", None), bucket) is True
    assert proxy.failed == 2 and proxy.forwarded == 3  # get versioning, make bucket, set versioning
    assert client.get_bucket_versioning(bucket).status == "Enabled"


@s3
def test_retries_give_up_after_the_last_attempt(s3_endpoint, flaky) -> None:
    proxy = flaky(10)
    bucket = s3_endpoint.new_bucket()
    via_proxy = minio_client(proxy.url, "testing", "testing", None)
    with pytest.raises(S3Error) as err:
        with_retries(lambda: via_proxy.get_bucket_versioning(bucket), attempts=3, base_delay=0.01)
    assert err.value.code == "SlowDown" and proxy.failed == 3 and proxy.forwarded == 0
    assert describe_error(err.value) == "SlowDown: Please reduce your request rate."


def test_with_retries_retries_server_errors_then_succeeds() -> None:
    calls: list[int] = []

    def fn() -> str:
        calls.append(1)
        if len(calls) <= 2:
            raise ServerError("server failed with HTTP status code 503", 503)
        return "done"

    assert with_retries(fn, base_delay=0.001) == "done"
    assert len(calls) == 3


def test_with_retries_custom_predicate_and_attempts() -> None:
    calls: list[int] = []

    def fn() -> None:
        calls.append(1)
        raise KeyError("x")

    with pytest.raises(KeyError):
        with_retries(fn, attempts=4, base_delay=0.001, retry_on=lambda e: isinstance(e, KeyError))
    assert len(calls) == 4
    with pytest.raises(ValueError, match="attempts"):
        with_retries(fn, attempts=0)


def _counting(fn):
    calls: list[int] = []

    def wrapped():
        calls.append(1)
        return fn()

    return wrapped, calls


@s3
def test_no_retry_for_missing_bucket(client) -> None:
    fn, calls = _counting(lambda: client.get_bucket_versioning("no-such-bucket-here"))
    with pytest.raises(S3Error) as err:
        with_retries(fn, base_delay=0.001)
    assert err.value.code == "NoSuchBucket" and len(calls) == 1
    assert not is_transient_s3(err.value)


@s3
def test_no_retry_for_rejected_credentials(s3_endpoint, iam_key) -> None:
    access_key, _ = iam_key
    bucket = _name()
    for bad in (
        minio_client(s3_endpoint.url, "AKIAWRONGWRONGWRONG", "x", None),
        minio_client(s3_endpoint.url, access_key, "x", None),
    ):
        fn, calls = _counting(lambda c=bad: c.get_bucket_versioning(bucket))
        with pytest.raises(S3Error) as err:
            with_retries(fn, base_delay=0.001)
        assert err.value.code in ("InvalidAccessKeyId", "SignatureDoesNotMatch") and len(calls) == 1
        assert err.value.response.status == 403


def test_connection_refused_is_retried() -> None:
    fn, calls = _counting(lambda: minio_client(UNREACHABLE, "a", "b", None).get_bucket_versioning("bucket-x"))
    with pytest.raises(Exception) as err:
        with_retries(fn, attempts=3, base_delay=0.001)
    assert len(calls) == 3 and is_transient_s3(err.value)
    assert "Connection refused" in describe_error(err.value)


def test_transient_classification() -> None:
    assert is_transient_s3(ServerError("x", 503)) and is_transient_s3(ServerError("x", 500))
    assert not is_transient_s3(ServerError("x", 304))
    assert is_transient_s3(ConnectionResetError("reset by peer"))
    assert is_transient_s3(u3.ProtocolError("x")) and is_transient_s3(u3.ReadTimeoutError(None, "/", "slow"))
    assert not is_transient_s3(u3.SSLError("certificate verify failed"))
    assert is_transient_s3(OSError("AWS Error SLOW_DOWN during PutObject operation: SlowDown"))
    assert not is_transient_s3(OSError("AWS Error ACCESS_DENIED during PutObject operation: 403"))
    assert not is_transient_s3(ValueError("bad argument"))


# ---- sharehub lake -------------------------------------------------------------------------------


@pytest.fixture
def lake_cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, s3_endpoint) -> Iterator:
    from sharehub.settings import get_settings

    monkeypatch.setenv("SHAREHUB_VAR_DIR", str(tmp_path / "var"))

    def use_s3(bucket: str, **over: str) -> None:
        env = {
            "ENDPOINT": s3_endpoint.url,
            "BUCKET": bucket,
            "ACCESS_KEY": s3_endpoint.access_key,
            "SECRET_KEY": s3_endpoint.secret_key,
            **over,
        }
        for k, v in env.items():
            monkeypatch.setenv(f"SHAREHUB_S3__{k}", v)
        get_settings.cache_clear()

    get_settings.cache_clear()
    yield use_s3
    get_settings.cache_clear()


def run(*args: str, code: int = 0):
    from sharehub.cli.lake import app

    res = CliRunner().invoke(app, list(args))
    assert res.exit_code == code, res.output
    return res


@s3
def test_cli_init_creates_the_bucket_with_versioning(lake_cli, client, s3_endpoint) -> None:
    bucket = _name()
    lake_cli(bucket)
    out = run("init").output
    assert f"created bucket '{bucket}' at {s3_endpoint.url}; versioning on" in out
    assert f"warehouse: s3://{bucket}/warehouse" in out
    assert client.get_bucket_versioning(bucket).status == "Enabled"
    assert f"found bucket '{bucket}'" in run("init").output


@s3
def test_cli_init_bad_endpoint(lake_cli) -> None:
    lake_cli(_name(), ENDPOINT=UNREACHABLE, SECRET_KEY="s3cr3t-value")
    out = run("init", code=1).output
    assert "cannot connect to http://127.0.0.1:9" in out and "Connection refused" in out
    assert "s3cr3t-value" not in out


@s3
def test_cli_health(lake_cli, client, s3_endpoint) -> None:
    bucket = _name()
    lake_cli(bucket)
    out = run("health", code=1).output
    assert f"NOT OK: bucket '{bucket}' at {s3_endpoint.url}: NoSuchBucket" in out
    res = run("health", "--json", code=1)
    assert json.loads(res.stdout)["error"].startswith("NoSuchBucket")

    ensure_bucket(client, bucket)
    data = json.loads(run("health", "--json").stdout)
    assert data["ok"] is True and data["versioning"] == "Enabled" and data["bucket"] == bucket
    assert data["warehouse"] == f"s3://{bucket}/warehouse"
    assert f"ok: bucket '{bucket}' at {s3_endpoint.url}" in run("health").output


@s3
def test_cli_health_wrong_credentials(lake_cli, iam_key) -> None:
    access_key, _ = iam_key
    lake_cli(_name(), ACCESS_KEY=access_key, SECRET_KEY="wrong-secret-value")
    res = run("health", "--json", code=1)
    data = json.loads(res.stdout)
    assert data["ok"] is False and data["error"].startswith("SignatureDoesNotMatch")
    assert "wrong-secret-value" not in res.output


@s3
def test_cli_presign(lake_cli, client, monkeypatch) -> None:
    from sharehub.settings import get_settings

    bucket = _name()
    ensure_bucket(client, bucket)
    body = b"PAR1 pretend parquet"
    client.put_object(bucket, "warehouse/raw/a.parquet", io.BytesIO(body), len(body))
    lake_cli(bucket)
    monkeypatch.setenv("SHAREHUB_PRESIGN_EXPIRY_SECONDS", "600")
    get_settings.cache_clear()

    url = run("presign", "warehouse/raw/a.parquet").stdout.strip()
    assert "X-Amz-Expires=600" in url
    assert httpx.get(url, timeout=10).content == body

    url = run("presign", f"s3://{bucket}/warehouse/raw/a.parquet", "--expires", "90").stdout.strip()
    assert "X-Amz-Expires=90" in url
    assert httpx.get(url, timeout=10).content == body

    out = run("presign", "warehouse/raw/missing.parquet", code=1).output
    assert f"no object 'warehouse/raw/missing.parquet' in bucket '{bucket}'" in out
    run("presign", "warehouse/raw/a.parquet", "--expires", "0", code=2)


@s3
def test_cli_local_lake(lake_cli) -> None:
    assert "nothing to do" in run("init").output
    assert "no S3 endpoint to check" in run("health").output
    data = json.loads(run("health", "--json").stdout)
    assert data["ok"] is True and data["warehouse"].startswith("file://")
    assert "need the lake on S3" in run("presign", "k", code=1).output
