"""Runs and faults (docs/reliability.md), items 6 and 7: storage and source failures in the middle of a run.

* the S3 endpoint (moto's real server) stops while the raw rows are being written: the run
  fails cleanly, no partial snapshot is visible, and the retry after the endpoint is back
  publishes exactly;
* the source connection (MariaDB, streamed) is cut mid-stream: the watermark does not move
  past rows that were never read, and the retry reads them;
* late rows behind the watermark, inside the lookback, are taken by the next run;
* the lake's retry policy: a timeout is transient whatever its text, and a commit whose answer
  was lost is not made twice;
* a hub DB (SQLite) locked by another writer for several seconds at publish: the run waits and
  publishes instead of failing after pyiceberg's 5 s.
"""

from __future__ import annotations

import datetime as dt
import socket
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
import sqlalchemy as sa

from catalog.runs import record as runs
from sharehub import pipeline
from sharehub.pipeline import faults
from tests.sharehub.pipeline.fault_hub import CODE, T0, check_published, make_hub

# ---- S3 stops mid-write -----------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.s3
@pytest.mark.slow
def test_s3_endpoint_stopped_mid_write_fails_cleanly_and_the_retry_publishes(tmp_path: Path) -> None:
    import boto3
    from moto.server import ThreadedMotoServer

    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    url = f"http://127.0.0.1:{port}"
    s3 = {"endpoint": url, "bucket": "lake", "access_key": "testing", "secret_key": "testing"}
    boto3.client(
        "s3",
        endpoint_url=url,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        region_name="us-east-1",
    ).create_bucket(Bucket="lake")
    try:
        hub = make_hub(tmp_path, s3=s3)
        hub.sync()
        check_published(hub)
        h = pipeline.hub(hub.settings)
        before = h.lake.current_snapshot_id("curated", CODE)
        hub.touch(range(1, 401), at=T0 + dt.timedelta(days=1))
        with faults.injected("extract.after_first_batch", server.stop), pytest.raises(Exception) as err:
            hub.sync("s3-dies")
        run = runs.get_run(hub.engine, "s3-dies")
        assert run["status"] == "failed" and run["stage"] == "extract_land", run
        assert "NETWORK_CONNECTION" in run["error"] and "NETWORK_CONNECTION" in str(err.value)
        # the endpoint comes back: nothing of the failed write is visible
        server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
        server.start()
        h = pipeline.hub(hub.settings)
        assert h.lake.snapshot_for_run("raw", CODE, "s3-dies") is None
        assert h.lake.current_snapshot_id("curated", CODE) == before
        check_published_before = hub.source_rows()
        assert len(check_published_before) > 0
        hub.resume("s3-dies")
        check_published(hub, run_id="s3-dies")
    finally:
        server.stop()


# ---- the source connection is cut mid-stream --------------------------------------------------


@pytest.mark.services
def test_source_cut_mid_stream_leaves_the_watermark_and_the_retry_reads_everything(
    tmp_path: Path, mariadb_url: str
) -> None:
    src = sa.create_engine(mariadb_url)
    with src.begin() as conn:
        conn.execute(
            sa.text(
                "CREATE TABLE people (pid INT PRIMARY KEY, name VARCHAR(50), city VARCHAR(50), "
                "amount INT, updated_at DATETIME)"
            )
        )
        conn.execute(
            sa.text("INSERT INTO people VALUES (:p, :n, :c, :a, :u)"),
            [
                {
                    "p": i,
                    "n": f"人员{i}",
                    "c": f"城市{i % 11}",
                    "a": i * 10,
                    "u": T0 + dt.timedelta(minutes=i),
                }
                for i in range(1, 1001)
            ],
        )
    hub = make_hub(tmp_path)
    hub.settings = hub.settings.model_copy(update={"connections": {"flt_src": mariadb_url}})
    first = hub.sync()
    watermark = runs.get_watermark(hub.engine, CODE)
    with src.begin() as conn:
        conn.execute(
            sa.text("UPDATE people SET amount = amount + 1, updated_at = :u"),
            {"u": T0 + dt.timedelta(days=1)},
        )
    db = sa.make_url(mariadb_url).database

    def cut() -> None:
        with src.connect() as conn:
            ids = (
                conn.execute(
                    sa.text(
                        "SELECT id FROM information_schema.processlist "
                        "WHERE db = :db AND id <> CONNECTION_ID()"
                    ),
                    {"db": db},
                )
                .scalars()
                .all()
            )
            for pid in ids:
                conn.execute(sa.text(f"KILL {int(pid)}"))

    with (
        faults.injected("extract.after_first_batch", cut),
        pytest.raises(Exception, match=r"extract_land|Lost"),
    ):
        hub.sync("cut")
    assert runs.get_run(hub.engine, "cut")["status"] == "failed"
    assert runs.get_watermark(hub.engine, CODE) == watermark  # nothing read is taken as read
    hub.resume("cut")
    run = runs.get_run(hub.engine, "cut")
    assert run["status"] == "success" and run["rows_read"] == 1000
    with src.connect() as conn:
        amounts = dict(conn.execute(sa.text("SELECT pid, amount FROM people")).all())
    h = pipeline.hub(hub.settings)
    curated = {r["pid"]: r["amount"] for r in h.lake.read("curated", CODE).to_pylist()}
    assert curated == amounts and first["run_id"] != "cut"
    src.dispose()


# ---- late rows inside the lookback --------------------------------------------------------


def test_late_rows_behind_the_watermark_inside_the_lookback_are_taken(tmp_path: Path) -> None:
    hub = make_hub(tmp_path, rows=200)
    hub.sync()
    wm = dt.datetime.fromisoformat(runs.from_json_value(runs.get_watermark(hub.engine, CODE)))
    assert wm == T0 + dt.timedelta(minutes=200)
    late = wm - dt.timedelta(minutes=30)  # inside the 1 h lookback
    too_late = wm - dt.timedelta(hours=2)  # outside it: only a full resync takes it
    hub.execute("INSERT INTO people VALUES (9001, '迟到', '城市1', 1, ?)", late.isoformat(" "))
    hub.execute("INSERT INTO people VALUES (9002, '太迟', '城市1', 2, ?)", too_late.isoformat(" "))
    hub.sync()
    h = pipeline.hub(hub.settings)
    pids = set(h.lake.read("curated", CODE).column("pid").to_pylist())
    assert 9001 in pids and 9002 not in pids
    hub.sync(full=True)
    check_published(hub)


# ---- the lake's retry policy ------------------------------------------------------------------


def test_retry_classification_is_by_type_first() -> None:
    from botocore.exceptions import ClientError, EndpointConnectionError

    from lake.retry import is_transient

    assert is_transient(TimeoutError("read timed out after 400 ms"))  # once "permanent": " 400"
    assert is_transient(ConnectionResetError("403 bytes read, then reset"))
    assert is_transient(EndpointConnectionError(endpoint_url="http://minio:9000"))
    slow = ClientError(
        {"Error": {"Code": "SlowDown"}, "ResponseMetadata": {"HTTPStatusCode": 503}}, "PutObject"
    )
    denied = ClientError(
        {"Error": {"Code": "AccessDenied"}, "ResponseMetadata": {"HTTPStatusCode": 403}}, "PutObject"
    )
    assert is_transient(slow) and not is_transient(denied)
    assert is_transient(OSError("AWS Error NETWORK_CONNECTION during PutObject operation: curl 7"))
    assert not is_transient(OSError("AWS Error ACCESS_DENIED during PutObject operation"))
    assert not is_transient(ValueError("Mismatch in fields"))


def test_a_commit_whose_answer_was_lost_is_not_made_twice(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The catalog commits, then the connection drops before the answer: the retry sees the
    run's new snapshot and returns it instead of appending the rows again."""
    from pyiceberg.table import Transaction

    from lake import RAW, open_lake

    lake = open_lake(f"sqlite:///{tmp_path / 'hub.db'}", str(tmp_path / "wh"))
    schema = pa.schema([pa.field("k", pa.int64()), pa.field("v", pa.string())])
    lake.ensure_table(RAW, "t", schema)
    real = Transaction.commit_transaction
    calls = {"n": 0}

    def commit_then_lose_the_answer(self: Any) -> Any:
        calls["n"] += 1
        table = real(self)
        if calls["n"] == 1:
            raise ConnectionResetError("connection reset by peer after the commit")
        return table

    monkeypatch.setattr(Transaction, "commit_transaction", commit_then_lose_the_answer)
    data = pa.table({"k": [1, 2, 3], "v": ["a", "b", "c"]}, schema=schema)
    snapshot = lake.append(RAW, "t", data, run_id="r1")
    monkeypatch.undo()
    assert calls["n"] == 1  # not committed a second time
    assert lake.read(RAW, "t").num_rows == 3
    assert snapshot == lake.snapshot_for_run(RAW, "t", "r1")
    lake.close()


# ---- a locked SQLite hub DB at publish ----------------------------------------------------------


@pytest.mark.slow
def test_a_briefly_locked_sqlite_hub_db_makes_publish_wait_not_fail(tmp_path: Path) -> None:
    hub = make_hub(tmp_path, rows=200)
    hub.sync()
    hub.touch(range(1, 51), at=T0 + dt.timedelta(days=1))
    rid = "waits-for-lock"
    pipeline.extract_land(CODE, rid, trigger="cli", settings=hub.settings)
    pipeline.validate(CODE, rid, settings=hub.settings)
    db = sqlite3.connect(
        str(Path(hub.settings.hub_db_url.removeprefix("sqlite:///"))),
        isolation_level=None,
        check_same_thread=False,  # made here, used by the locker thread
    )
    held = threading.Event()
    released: list[float] = []

    def hold() -> None:
        db.execute("BEGIN IMMEDIATE")  # another writer holds the write lock for 7 s
        held.set()
        time.sleep(7)
        released.append(time.monotonic())
        db.execute("COMMIT")

    locker = threading.Thread(target=hold)
    locker.start()
    assert held.wait(10), "the locker never took the write lock"
    try:
        out = pipeline.publish(CODE, rid, settings=hub.settings)
        finished = time.monotonic()
    finally:
        locker.join()
        db.close()
    # publish began while the lock was held and finished after it was let go: it waited
    assert released and finished >= released[0]
    assert out["published"] >= 50
    check_published(hub, run_id=rid)
