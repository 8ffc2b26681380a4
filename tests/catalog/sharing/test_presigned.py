"""Delta Sharing on an S3 warehouse (moto's real S3 server): ``query`` and ``changes`` hand out
pre-signed S3 URLs of the granted, masked files, put once into ``<prefix>/_sharing/``; the
settings ``sharing_links`` (auto / hub / presigned) and ``sharing_link_seconds``; the audit
record of the links handed out; the official client reading through them.

moto checks no pre-signed signature (with its credential checks on it answers 500 to any
pre-signed request), so the signature is checked here by an independent SigV4 computation
(:func:`signature_ok`): the URL is signed by the hub's key for exactly that object and expiry,
and an altered key or expiry breaks it. What moto does refuse is an unsigned request for the
private object (403).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import io
import json
import time
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, quote, unquote, urlsplit

import boto3
import httpx
import pyarrow.parquet as pq
import pytest
import sqlalchemy as sa
from pydantic import SecretStr, ValidationError

from catalog.access import applications
from catalog.api.routers import sharing as sharing_router
from catalog.db import tables
from catalog.masking import mask
from catalog.sharing import links, recipients
from lake.s3admin import ensure_bucket, minio_client
from sharehub.settings import S3Settings, Settings
from tests.catalog.sharing import client_venv
from tests.catalog.sharing.sharing_hub import CODE, SharingHub, build
from tests.conftest import S3Endpoint

pytestmark = pytest.mark.s3

BASE = "/api/v1/delta-sharing"
TABLE = f"{BASE}/shares/sharehub/schemas/shr/tables/shr-people"
GRANTED = ["pid", "name", "city", "amount"]  # name masked; phone and updated_at not granted
CLEAR_PHONES = [f"1380000{p:04d}" for p in range(1, 51)]
CLEAR_NAMES = [f"张{p}" for p in range(1, 51)]


def _s3(ep: S3Endpoint, bucket: str) -> S3Settings:
    return S3Settings(
        endpoint=ep.url,
        bucket=bucket,
        prefix="warehouse",
        access_key=SecretStr(ep.access_key),
        secret_key=SecretStr(ep.secret_key),
        region=ep.region,
    )


def _s3_hub(tmp: Path, ep: S3Endpoint, **overrides: Any) -> tuple[SharingHub, str]:
    bucket = ep.new_bucket()
    ensure_bucket(_minio(ep), bucket)  # versioning on, as `sharehub lake init` leaves it
    hub = build(tmp, s3=_s3(ep, bucket), **overrides)
    hub.sync()
    return hub, bucket


def _minio(ep: S3Endpoint) -> Any:
    return minio_client(ep.url, ep.access_key, ep.secret_key, ep.region)


def _boto(ep: S3Endpoint) -> Any:
    return boto3.client(
        "s3",
        endpoint_url=ep.url,
        aws_access_key_id=ep.access_key,
        aws_secret_access_key=ep.secret_key,
        region_name=ep.region,
    )


def _keys(ep: S3Endpoint, bucket: str, prefix: str) -> list[str]:
    pages = _boto(ep).get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
    return [o["Key"] for page in pages for o in page.get("Contents", [])]


def _auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _lines(r: Any) -> list[dict[str, Any]]:
    assert r.status_code == 200, r.text
    return [json.loads(line) for line in r.text.splitlines() if line.strip()]


def _audit(hub: SharingHub, action: str) -> list[Any]:
    a = tables.audit
    with hub.engine.connect() as conn:
        return list(conn.execute(sa.select(a).where(a.c.action == action).order_by(a.c.seq)).all())


def signature_ok(url: str, secret_key: str, region: str) -> bool:
    """Whether ``url`` carries a valid SigV4 query signature (AWS "Authenticating Requests:
    Using Query Parameters") by ``secret_key`` for a GET of exactly its path and parameters —
    computed here from the specification, independently of the minio client that signed it."""
    parts = urlsplit(url)
    params = parse_qsl(parts.query, keep_blank_values=True)
    given = dict(params)
    signed = sorted((k, v) for k, v in params if k != "X-Amz-Signature")
    query = "&".join(f"{quote(k, safe='-_.~')}={quote(v, safe='-_.~')}" for k, v in signed)
    canonical = "\n".join(
        [
            "GET",
            quote(unquote(parts.path), safe="/-_.~"),
            query,
            f"host:{parts.netloc}",
            "",
            "host",
            "UNSIGNED-PAYLOAD",
        ]
    )
    stamp = given["X-Amz-Date"]
    scope = f"{stamp[:8]}/{region}/s3/aws4_request"
    to_sign = "\n".join(["AWS4-HMAC-SHA256", stamp, scope, hashlib.sha256(canonical.encode()).hexdigest()])
    key = ("AWS4" + secret_key).encode()
    for part in (stamp[:8], region, "s3", "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    expected = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, given.get("X-Amz-Signature", ""))


def _assert_only_granted(content: bytes, columns: list[str]) -> Any:
    """The downloaded file holds exactly ``columns``, names masked, no phone anywhere."""
    data = pq.read_table(io.BytesIO(content))
    assert data.column_names == columns
    for phone in CLEAR_PHONES:
        assert phone.encode() not in content
    for name in CLEAR_NAMES:
        assert name.encode() not in content
    shown = json.dumps(data.to_pylist(), ensure_ascii=False, default=str)
    assert not any(p in shown for p in CLEAR_PHONES)
    assert not any(f'"{n}"' in shown for n in CLEAR_NAMES)
    assert "phone" not in shown and "updated_at" not in shown
    return data


def test_query_hands_out_a_presigned_url_of_the_granted_file(tmp_path: Path, s3_endpoint: S3Endpoint) -> None:
    hub, bucket = _s3_hub(tmp_path, s3_endpoint)
    hub.grant("统计分析", GRANTED)
    token = hub.token("统计分析")
    before = time.time()
    r = hub.client.post(f"{TABLE}/query", json={}, headers=_auth(token))
    lines = _lines(r)
    (f,) = [x["file"] for x in lines if "file" in x]
    url = f["url"]

    # a pre-signed GET URL of <prefix>/_sharing/<file id>.parquet on the S3 endpoint
    key = f"warehouse/_sharing/{f['id']}.parquet"
    assert url.startswith(f"{s3_endpoint.url}/{bucket}/{key}?")
    assert "X-Amz-Signature=" in url and "X-Amz-Expires=3600" in url and "X-Amz-Credential=" in url
    assert signature_ok(url, s3_endpoint.secret_key, s3_endpoint.region)
    signed_at = dt.datetime.strptime(dict(parse_qsl(urlsplit(url).query))["X-Amz-Date"], "%Y%m%dT%H%M%SZ")
    signed_s = signed_at.replace(tzinfo=dt.UTC).timestamp()
    assert before - 1 <= signed_s <= time.time()
    # expirationTimestamp: when the URL stops working, never later than S3 would stop it
    assert signed_s * 1000 + 3_600_000 - 2000 <= f["expirationTimestamp"] <= (signed_s + 3600) * 1000
    assert _keys(s3_endpoint, bucket, "warehouse/_sharing/") == [key]
    assert f["size"] == _minio(s3_endpoint).stat_object(bucket, key).size

    # downloaded as a recipient would, straight from S3: only the granted fields, masked
    got = httpx.get(url, timeout=30)
    assert got.status_code == 200
    data = _assert_only_granted(got.content, GRANTED)
    rows = {x["pid"]: x for x in data.to_pylist()}
    assert len(rows) == 50 == json.loads(f["stats"])["numRecords"]
    assert rows[7]["name"] == mask("name", "张7") != "张7" and rows[7]["amount"] == 70

    # the curated data files are never named in the answer
    curated = _keys(s3_endpoint, bucket, "warehouse/curated/")
    assert curated and all(k.startswith("warehouse/curated/") for k in curated)
    for k in curated:
        assert k not in r.text and k.rsplit("/", 1)[-1] not in r.text
    assert "/curated/" not in r.text and "/raw/" not in r.text

    # S3 refuses the object without the signature (private object)
    assert httpx.get(url.split("?", 1)[0], timeout=30).status_code == 403
    # the signature covers the key and the expiry: altered, it is no longer valid
    other = url.replace(f["id"], "0" * 64)
    assert not signature_ok(other, s3_endpoint.secret_key, s3_endpoint.region)
    longer = url.replace("X-Amz-Expires=3600", "X-Amz-Expires=86400")
    assert not signature_ok(longer, s3_endpoint.secret_key, s3_endpoint.region)
    assert not signature_ok(url, "not-the-key", s3_endpoint.region)

    # audited: fields, rows, and that a pre-signed link was handed out (and until when)
    (q,) = _audit(hub, "sharing.query")
    assert q.decision == "allow" and q.dataset_code == CODE and q.row_count == 50
    assert q.fields == [f"{CODE}.pid", f"{CODE}.name:masked", f"{CODE}.city", f"{CODE}.amount"]
    record = json.loads(q.query)
    assert record["links"] == "presigned" and record["file"] == f["id"] and record["version"] == 0
    expires = dt.datetime.fromisoformat(record["expires"].replace("Z", "+00:00"))
    assert round(expires.timestamp() * 1000) == f["expirationTimestamp"]
    assert not _audit(hub, "sharing.file")  # the hub never sees the download


def test_a_file_is_put_once_and_reused(tmp_path: Path, s3_endpoint: S3Endpoint) -> None:
    hub, bucket = _s3_hub(tmp_path, s3_endpoint)
    hub.grant("统计分析", ["pid", "city"])
    hub.grant("另一系统", ["pid", "city"])  # sees the same thing: the same file
    first = _lines(hub.client.post(f"{TABLE}/query", json={}, headers=_auth(hub.token("统计分析"))))[-1][
        "file"
    ]
    # the local cache lost (another API replica, a restart): written again, not uploaded again
    for cached in (tmp_path / "var" / "sharing").glob("*.parquet"):
        cached.unlink()
    second = _lines(hub.client.post(f"{TABLE}/query", json={}, headers=_auth(hub.token("另一系统"))))[-1][
        "file"
    ]
    assert first["id"] == second["id"]  # the same projection: the same file and object
    key = f"warehouse/_sharing/{first['id']}.parquet"
    versions = _boto(s3_endpoint).list_object_versions(Bucket=bucket, Prefix="warehouse/_sharing/")
    assert [v["Key"] for v in versions.get("Versions", [])] == [key]  # one upload, one version
    assert httpx.get(second["url"], timeout=30).status_code == 200


def test_the_change_feed_hands_out_presigned_urls(tmp_path: Path, s3_endpoint: S3Endpoint) -> None:
    hub, bucket = _s3_hub(tmp_path, s3_endpoint)
    hub.grant("统计分析", GRANTED)
    hub.change(range(1, 6), at=dt.datetime(2026, 11, 2, 9, 0), version=1)
    hub.sync()
    hub.rephone(range(1, 3), at=dt.datetime(2026, 11, 3, 9, 0))  # only ungranted fields: no change
    hub.sync()
    token = hub.token("统计分析")
    r = hub.client.get(f"{TABLE}/changes", params={"startingVersion": 1}, headers=_auth(token))
    lines = _lines(r)
    cdf = [x["cdf"] for x in lines if "cdf" in x]
    assert [c["version"] for c in cdf] == [1]  # version 2 changed nothing the grant shows
    (c,) = cdf
    assert c["url"].startswith(f"{s3_endpoint.url}/{bucket}/warehouse/_sharing/{c['id']}.parquet?")
    assert signature_ok(c["url"], s3_endpoint.secret_key, s3_endpoint.region)
    got = httpx.get(c["url"], timeout=30)
    assert got.status_code == 200
    data = _assert_only_granted(got.content, [*GRANTED, "_change_type"])
    seen = sorted((x["pid"], x["amount"], x["_change_type"]) for x in data.to_pylist())
    assert seen == sorted(
        [(p, p * 10, "update_preimage") for p in range(1, 6)]
        + [(p, p * 10 + 1, "update_postimage") for p in range(1, 6)]
    )
    assert all(x["name"] == mask("name", f"张{x['pid']}") for x in data.to_pylist())
    for k in _keys(s3_endpoint, bucket, "warehouse/curated/"):
        assert k not in r.text
    (a,) = _audit(hub, "sharing.changes")
    record = json.loads(a.query)
    assert record["links"] == "presigned" and record["versions"] == "1..2" and record["files"] == 1
    assert a.row_count == 10


def test_a_revoked_grant_stops_queries_but_not_a_url_already_handed_out(
    tmp_path: Path, s3_endpoint: S3Endpoint
) -> None:
    """The documented trade-off of pre-signed links (docs/exchange.md): S3 serves them until
    they expire, whatever happened to the grant; ``sharing_links = hub`` where that will not do."""
    hub, _bucket = _s3_hub(tmp_path, s3_endpoint, sharing_link_seconds=120)
    grant_id = hub.grant("统计分析", ["pid", "city"])
    token = hub.token("统计分析")
    f = _lines(hub.client.post(f"{TABLE}/query", json={}, headers=_auth(token)))[-1]["file"]
    assert "X-Amz-Expires=120" in f["url"] and f["expirationTimestamp"] <= (time.time() + 120) * 1000
    applications.revoke(hub.engine, grant_id, by="shr_approver", reason="项目结束")
    r = hub.client.post(f"{TABLE}/query", json={}, headers=_auth(token))
    assert r.status_code == 404 and r.json()["error"]["code"] == "share_not_found"
    assert httpx.get(f["url"], timeout=30).status_code == 200  # until it expires


def test_hub_links_on_s3_when_the_settings_say_so(tmp_path: Path, s3_endpoint: S3Endpoint) -> None:
    hub, bucket = _s3_hub(tmp_path, s3_endpoint, sharing_links="hub")
    grant_id = hub.grant("统计分析", ["pid", "city"])
    token = hub.token("统计分析")
    f = _lines(hub.client.post(f"{TABLE}/query", json={}, headers=_auth(token)))[-1]["file"]
    assert f["url"].startswith(f"http://testserver{BASE}/files/") and "X-Amz" not in f["url"]
    r = hub.client.get(f["url"].split("testserver", 1)[1])
    assert r.status_code == 200 and pq.read_table(io.BytesIO(r.content)).column_names == ["pid", "city"]
    assert _keys(s3_endpoint, bucket, "warehouse/_sharing/") == []  # nothing put into the bucket
    (q,) = _audit(hub, "sharing.query")
    assert json.loads(q.query)["links"] == "hub"
    # and a hub link stops with the grant
    applications.revoke(hub.engine, grant_id, by="shr_approver", reason="项目结束")
    r = hub.client.get(f["url"].split("testserver", 1)[1])
    assert r.status_code == 403 and r.json()["error"]["code"] == "sharing_file_expired"


def test_presigned_needs_an_s3_warehouse(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="sharing_links = presigned needs the lake on S3"):
        Settings(var_dir=tmp_path / "var", sharing_links="presigned")
    with pytest.raises(ValidationError):
        Settings(var_dir=tmp_path / "var", sharing_links="s3")  # type: ignore[arg-type]
    for seconds in (59, 86_401):
        with pytest.raises(ValidationError):
            Settings(var_dir=tmp_path / "var", sharing_link_seconds=seconds)
    assert Settings(var_dir=tmp_path / "var").sharing_links == "auto"

    # a local warehouse keeps hub links under auto; presigned slipped past the check is refused at use
    hub = build(tmp_path)
    hub.sync()
    hub.grant("统计分析", ["pid", "city"])
    token = hub.token("统计分析")
    f = _lines(hub.client.post(f"{TABLE}/query", json={}, headers=_auth(token)))[-1]["file"]
    assert f["url"].startswith(f"http://testserver{BASE}/files/")
    hub.settings.sharing_links = "presigned"  # no validation on assignment
    for r in (
        hub.client.post(f"{TABLE}/query", json={}, headers=_auth(token)),
        hub.client.get(f"{TABLE}/changes", params={"startingVersion": 0}, headers=_auth(token)),
    ):
        assert r.status_code == 503 and r.json()["error"]["code"] == "sharing_links_unavailable"
    assert links.link_kind(Settings(var_dir=tmp_path / "var", sharing_links="hub")) == "hub"


def test_an_object_store_that_fails_hands_out_nothing(tmp_path: Path, s3_endpoint: S3Endpoint) -> None:
    hub, _bucket = _s3_hub(tmp_path, s3_endpoint)
    hub.grant("统计分析", ["pid", "city"])
    api_hub = hub.client.app.state.hub  # type: ignore[attr-defined]
    broken = links.S3Files(_minio(s3_endpoint), "b-no-such-bucket", "warehouse/_sharing")
    sharing_router._opened(api_hub)["s3_files"] = broken
    r = hub.client.post(f"{TABLE}/query", json={}, headers=_auth(hub.token("统计分析")))
    assert r.status_code == 503 and r.json()["error"]["code"] == "sharing_store_unavailable"
    assert "X-Amz" not in r.text
    (q,) = _audit(hub, "sharing.query")
    assert q.decision == "deny" and q.reason == "sharing_store_unavailable" and q.row_count == 0


CLIENT = """
import json, sys
import delta_sharing

profile = sys.argv[1]
url = profile + "#sharehub.shr.shr-people"
out = {}
try:
    now = delta_sharing.load_as_pandas(url)
    out["columns"] = list(now.columns)
    out["rows"] = json.loads(now.to_json(orient="records"))
    changes = delta_sharing.load_table_changes_as_pandas(url, starting_version=1)
    out["changes"] = json.loads(changes.to_json(orient="records"))
except Exception as exc:
    out["load_error"] = f"{type(exc).__name__}: {exc}"[:2000]
print(json.dumps(out, ensure_ascii=False))
"""


@pytest.mark.slow
def test_the_official_client_reads_through_presigned_urls(tmp_path: Path, s3_endpoint: S3Endpoint) -> None:
    reason = client_venv.ensure()
    if reason:
        pytest.skip(reason)
    from tests.browser.conftest import free_port, serve

    hub, _bucket = _s3_hub(tmp_path, s3_endpoint)
    hub.grant("统计分析", GRANTED)
    hub.change(range(1, 6), at=dt.datetime(2026, 11, 2, 9, 0), version=1)
    hub.sync()
    token, rec = recipients.issue(hub.engine, hub.apps["统计分析"][0], days=7, label="分析", by="test")
    for base in serve(hub.client.app, free_port()):
        profile = tmp_path / "profile.share"
        profile.write_text(
            json.dumps(recipients.profile(f"{base}/api/v1/delta-sharing", token, rec.expires_at)),
            encoding="utf-8",
        )
        got = client_venv.run(CLIENT, str(profile))
    assert "error" not in got and "load_error" not in got, got
    assert got["columns"] == GRANTED
    rows = {r["pid"]: r for r in got["rows"]}
    assert len(rows) == 50 and rows[3]["amount"] == 31 and rows[7]["name"] == mask("name", "张7")
    text = json.dumps(got, ensure_ascii=False)
    assert not any(p in text for p in CLEAR_PHONES) and not any(f'"{n}"' in text for n in CLEAR_NAMES)
    assert sorted((c["pid"], c["_change_type"]) for c in got["changes"]) == sorted(
        [(p, "update_preimage") for p in range(1, 6)] + [(p, "update_postimage") for p in range(1, 6)]
    )
    # the client read the files from S3: the hub handed out pre-signed links and served no file
    for action in ("sharing.query", "sharing.changes"):
        assert {json.loads(q.query)["links"] for q in _audit(hub, action)} == {"presigned"}
    assert not _audit(hub, "sharing.file")
