"""lake on an S3 warehouse, against moto's real S3 server (``s3_endpoint`` fixture)."""

from __future__ import annotations

import pytest
import requests

from lake import CURATED, RAW, LakeError, open_lake
from lake.retry import is_transient
from tests.lake.test_local import PEOPLE, people, scenario_full_cycle

pytestmark = pytest.mark.s3


def _s3(ep, **over) -> dict:
    return {
        "endpoint": ep.url,
        "access_key": ep.access_key,
        "secret_key": ep.secret_key,
        "region": ep.region,
        **over,
    }


def test_full_cycle_on_s3(s3_endpoint, tmp_path) -> None:
    bucket = s3_endpoint.new_bucket()
    with open_lake(f"sqlite:///{tmp_path / 'hub.db'}", f"s3://{bucket}/lake", s3=_s3(s3_endpoint)) as lake:
        scenario_full_cycle(lake)
        location = lake.load_table(CURATED, "ga.hj-001").location()
        assert location.startswith(f"s3://{bucket}/lake/curated")


def test_missing_bucket(s3_endpoint, tmp_path) -> None:
    with pytest.raises(LakeError) as err:
        open_lake(f"sqlite:///{tmp_path / 'hub.db'}", "s3://no-such-bucket/lake", s3=_s3(s3_endpoint))
    assert str(err.value) == f"bucket 'no-such-bucket' does not exist at {s3_endpoint.url}"


@pytest.fixture
def moto_auth(s3_endpoint):
    """Make moto check credentials (it accepts any by default); restored afterwards."""
    r = requests.post(f"{s3_endpoint.url}/moto-api/reset-auth", data=b"0", timeout=10)
    previous = r.json()["PREVIOUS_INITIAL_NO_AUTH_ACTION_COUNT"]
    try:
        yield
    finally:
        requests.post(f"{s3_endpoint.url}/moto-api/reset-auth", data=previous.encode(), timeout=10)


def test_wrong_credentials(s3_endpoint, tmp_path, moto_auth) -> None:
    bucket = "any-bucket"
    with pytest.raises(LakeError) as err:
        open_lake(
            f"sqlite:///{tmp_path / 'hub.db'}",
            f"s3://{bucket}/lake",
            s3=_s3(s3_endpoint, access_key="wrong", secret_key="wrong"),
        )
    assert str(err.value).startswith(f"S3 credentials rejected by {s3_endpoint.url} (access key 'wrong')")


def test_unreachable_endpoint(tmp_path) -> None:
    with pytest.raises(LakeError, match="unreachable"):
        open_lake(
            f"sqlite:///{tmp_path / 'hub.db'}",
            "s3://b/lake",
            s3={"endpoint": "http://127.0.0.1:9", "access_key": "a", "secret_key": "b"},
        )


def test_append_batches_on_s3(s3_endpoint, tmp_path) -> None:
    bucket = s3_endpoint.new_bucket()
    with open_lake(f"sqlite:///{tmp_path / 'hub.db'}", f"s3://{bucket}/w", s3=_s3(s3_endpoint)) as lake:
        lake.ensure_table(RAW, "b", PEOPLE)
        batches = people([(i, f"n{i}", float(i)) for i in range(1000)]).to_batches(max_chunksize=100)
        sid = lake.append(RAW, "b", iter(batches), run_id="r")
        assert lake.snapshot_for_run(RAW, "b", "r") == sid
        assert lake.read(RAW, "b").num_rows == 1000


def test_transient_classification() -> None:
    assert is_transient(OSError("AWS Error NETWORK_CONNECTION during PutObject operation: connection reset"))
    assert is_transient(OSError("AWS Error SLOW_DOWN during PutObject operation: SlowDown"))
    assert is_transient(OSError("When uploading part: HTTP response code 503"))
    assert is_transient(ConnectionResetError("reset by peer"))
    assert not is_transient(OSError("AWS Error ACCESS_DENIED during PutObject operation: 403"))
    assert not is_transient(OSError("NoSuchBucket: The specified bucket does not exist"))
    assert not is_transient(ValueError("Mismatch in fields"))
