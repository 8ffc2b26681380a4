"""A dataset with an ``http`` source through the whole pipeline (extract+land -> validate ->
publish) to curated and serving, on the embedded hub, against a real loopback API.

The pattern is ``fault_hub.make_hub``'s: a Settings object with the connection ref, the
directory published, ``pipeline.sync`` in-process. The API is incremental
(``updated_since``, inclusive) and paged; the bearer token is only in the connection ref.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from catalog import publishing
from catalog.db.engine import engine_for
from catalog.directory import store
from catalog.directory.model import DirectoryFile
from catalog.runs import record as runs
from catalog.serving import tables as serving
from sharehub import pipeline
from sharehub.settings import Settings

CODE = "HTTP-LIC-001"
TOKEN = "e2e-Bearer-T0ken-77"  # must never reach the run record or the logs
DIRECTORY = {
    "department": {"code": "HTTP", "name": "接口测试局"},
    "datasets": [
        {
            "code": CODE,
            "name": "许可证接口数据",
            "share": {"type": "unconditional"},
            "primary_key": ["lic_no"],
            "fields": [
                {"name": "lic_no", "label": "许可证编号"},
                {"name": "holder", "label": "持证人", "rules": {"not_null": True}},
                {"name": "fee", "label": "费用", "type": "integer"},
                {"name": "updated_at", "label": "更新时间", "type": "timestamp"},
            ],
            "source": {
                "kind": "http",
                "connection": "lic_api",
                "path": "v1/licences",
                "records": "data.items",
                "auth": "bearer",
                "pagination": {"style": "page", "size_param": "size", "page_size": 4},
                "cursor": "updatedAt",
                "since_param": "updated_since",
                "lookback": "5m",
                "max_retries": 2,
            },
            "quality": {"policy": "quarantine", "max_bad_ratio": 0.5, "max_volume_change": None},
            "schedule": None,
        }
    ],
}
T0 = dt.datetime(2026, 11, 1, 8, 0, 0)


class LicenceApi:
    """The department's API: records with ``updatedAt``; ``fee`` arrives as a JSON number."""

    def __init__(self, server: HTTPServer) -> None:
        self.records: dict[str, dict[str, Any]] = {}
        self.requests: list[Request] = []
        self.malformed_page: int | None = None
        for i in range(1, 11):
            self.put(
                f"L{i:03d}",
                holder=None if i == 7 else f"持证人{i}",
                fee=i * 100,
                at=T0 + dt.timedelta(minutes=i),
            )
        server.expect_request("/base/v1/licences").respond_with_handler(self.handle)

    def put(self, lic_no: str, *, holder: str | None, fee: int, at: dt.datetime) -> None:
        self.records[lic_no] = {
            "licNo": lic_no,
            "holder": holder,
            "fee": fee,
            "updatedAt": at.isoformat() + "+08:00",
        }

    def handle(self, req: Request) -> Response:
        self.requests.append(req)
        if req.headers.get("Authorization") != f"Bearer {TOKEN}":
            return Response("{}", status=401)
        page, size = int(req.args["page"]), int(req.args["size"])
        if page == self.malformed_page:
            return Response("<html>gateway timeout</html>", content_type="text/html")
        since = req.args.get("updated_since")
        rows = sorted(self.records.values(), key=lambda r: r["updatedAt"])
        if since:
            rows = [
                r
                for r in rows
                if dt.datetime.fromisoformat(r["updatedAt"]) >= dt.datetime.fromisoformat(since)
            ]
        chunk = rows[(page - 1) * size : page * size]
        return Response(
            json.dumps({"data": {"items": chunk}}, ensure_ascii=False), content_type="application/json"
        )

    def good_rows(self) -> dict[str, dict[str, Any]]:
        return {
            k: {
                "lic_no": k,
                "holder": r["holder"],
                "fee": r["fee"],
                "updated_at": dt.datetime.fromisoformat(r["updatedAt"]).replace(tzinfo=None),
            }
            for k, r in self.records.items()
            if r["holder"] is not None
        }


@pytest.fixture
def http_hub(tmp_path: Path, httpserver: HTTPServer) -> tuple[Settings, LicenceApi]:
    api = LicenceApi(httpserver)
    # the API's camelCase keys are the fields' source names
    spec = json.loads(json.dumps(DIRECTORY))
    spec["datasets"][0]["fields"][0]["source_name"] = "licNo"
    spec["datasets"][0]["fields"][3]["source_name"] = "updatedAt"
    settings = Settings(
        var_dir=tmp_path / "var",
        connections={"lic_api": f"http://:{TOKEN}@{httpserver.host}:{httpserver.port}/base"},
        batch_size=100,
    )
    publishing.publish(
        engine_for(settings.hub_db_url), DirectoryFile.model_validate(spec), source_file="http.yaml"
    )
    return settings, api


def _curated(settings: Settings) -> dict[str, dict[str, Any]]:
    h = pipeline.hub(settings)
    rows = h.lake.read("curated", CODE).to_pylist()
    return {r["lic_no"]: {k: r[k] for k in ("lic_no", "holder", "fee", "updated_at")} for r in rows}


def test_an_http_source_syncs_to_curated_incrementally_and_a_bad_page_publishes_nothing(
    http_hub: tuple[Settings, LicenceApi], caplog: pytest.LogCaptureFixture
) -> None:
    settings, api = http_hub
    engine = engine_for(settings.hub_db_url)

    # run 1: everything; the row without a holder is quarantined
    out = pipeline.sync(CODE, settings=settings)
    run = runs.get_run(engine, out["run_id"])
    assert run["status"] == "success", run["error"]
    assert (run["rows_read"], run["rows_quarantined"], run["rows_published"]) == (10, 1, 9)
    assert _curated(settings) == api.good_rows()
    assert runs.get_watermark(engine, CODE) == "2026-11-01T08:10:00+08:00"
    assert all("updated_since" not in r.args for r in api.requests)
    spec = store.get_dataset(engine, CODE).spec
    assert serving.count(engine, spec) == 9

    # run 2: a changed row and a new one; the API is asked from watermark - 5 min (closed start)
    api.requests.clear()
    api.put("L003", holder="持证人3", fee=333, at=T0 + dt.timedelta(minutes=20))
    api.put("L011", holder="持证人11", fee=1100, at=T0 + dt.timedelta(minutes=21))
    out = pipeline.sync(CODE, settings=settings)
    run = runs.get_run(engine, out["run_id"])
    assert run["status"] == "success", run["error"]
    assert {r.args["updated_since"] for r in api.requests} == {"2026-11-01T08:05:00+08:00"}
    assert run["rows_read"] == 8  # L005 (08:05, the start itself) .. L010, L003, L011
    assert _curated(settings) == api.good_rows()
    assert runs.get_watermark(engine, CODE) == "2026-11-01T08:21:00+08:00"
    snapshot = pipeline.hub(settings).lake.current_snapshot_id("curated", CODE)

    # run 3: page 2 is not JSON -> the run fails, nothing is published, the watermark stays
    api.put("L012", holder="持证人12", fee=1200, at=T0 + dt.timedelta(minutes=30))
    api.malformed_page = 2
    with pytest.raises(Exception, match=r"\(page 2\): the body is not JSON") as exc:
        pipeline.sync(CODE, settings=settings, run_id="cli__bad-page")
    run = runs.get_run(engine, "cli__bad-page")
    assert run["status"] == "failed" and "page 2" in run["error"]
    assert pipeline.hub(settings).lake.current_snapshot_id("curated", CODE) == snapshot
    assert "L012" not in _curated(settings)
    assert runs.get_watermark(engine, CODE) == "2026-11-01T08:21:00+08:00"
    assert TOKEN not in str(exc.value) and TOKEN not in run["error"]
    hub_logs = [r.getMessage() for r in caplog.records if not r.name.startswith("werkzeug")]
    assert not [m for m in hub_logs if TOKEN in m]
    with engine.connect() as conn:
        stored = json.dumps(
            [
                list(r)
                for t in ("hub_sync_runs", "hub_run_rejects")
                for r in conn.execute(sa.text(f"SELECT * FROM {t}"))
            ],
            default=str,
        )
    assert TOKEN not in stored
