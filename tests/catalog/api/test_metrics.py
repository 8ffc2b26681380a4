"""``GET /metrics``: exact counter increments by route template, decision and status, no raw
paths, ids or secrets in labels, rate-limit refusals, audit batches, the sync runs read from
the hub DB, the optional bearer token, and /metrics itself neither audited nor counted."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from prometheus_client.parser import text_string_to_metric_families

from catalog.db import tables
from tests.catalog.api_hub import USCC, ApiHub, build_hub

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]
TOKEN = "scrape-me-7f3a"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def scrape(hub: ApiHub, headers: dict[str, str] | None = None) -> Samples:
    r = hub.client.get("/metrics", headers=headers or {})
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/plain; version=0.0.4")
    out: Samples = {}
    for family in text_string_to_metric_families(r.text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def calls(samples: Samples, route: str, method: str, decision: str, status: int) -> float:
    return value(
        samples,
        "sharehub_api_requests_total",
        route=route,
        method=method,
        decision=decision,
        status=str(status),
    )


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> ApiHub:
    return build_hub(tmp_path_factory.mktemp("metrics"), open_download_rate_limit=2)


def test_counts_by_route_template_decision_and_status(hub: ApiHub) -> None:
    app = hub.as_app("企业开办")
    hub.app_token("企业开办")
    before = scrape(hub)
    assert hub.client.get("/api/v1/datasets").status_code == 200
    assert hub.client.get("/api/v1/datasets").status_code == 200
    assert hub.client.get("/api/v1/datasets/SCJ-OPEN").status_code == 200
    assert hub.client.get("/api/v1/datasets/NOPE-404").status_code == 404
    # no grant: refused by the gate
    r = hub.client.get(f"/api/v1/datasets/SCJ-LIC/records?uscc={USCC[0]}", headers=app)
    assert r.status_code == 403
    assert hub.client.get("/api/v1/no/such/path/42").status_code == 404
    after = scrape(hub)

    def delta(route: str, method: str, decision: str, status: int) -> float:
        return calls(after, route, method, decision, status) - calls(before, route, method, decision, status)

    assert delta("/api/v1/datasets", "GET", "allow", 200) == 2
    assert delta("/api/v1/datasets/{code}", "GET", "allow", 200) == 1
    assert delta("/api/v1/datasets/{code}", "GET", "deny", 404) == 1
    assert delta("/api/v1/datasets/{code}/records", "GET", "deny", 403) == 1
    assert delta("unmatched", "GET", "deny", 404) == 1
    count = "sharehub_api_request_duration_seconds_count"
    assert (
        value(after, count, route="/api/v1/datasets", method="GET")
        - value(before, count, route="/api/v1/datasets", method="GET")
        == 2
    )
    # /metrics itself is not counted
    assert not any(dict(labels).get("route") == "/metrics" for _, labels in after)


def test_no_raw_path_id_or_secret_in_labels(hub: ApiHub) -> None:
    # the counters are the process's: other test modules in this worker count their own calls
    before = scrape(hub)
    hub.client.get(f"/api/v1/subjects/{USCC[1]}", headers=hub.as_app("不动产登记"))
    hub.client.get("/api/v1/datasets/SCJ-SECRET")
    samples = scrape(hub)
    values = {v for _, labels in samples for _, v in labels}
    cid, secret = hub.apps["不动产登记"]
    forbidden = ["SCJ-SECRET", "SCJ-OPEN", "NOPE-404", USCC[0], USCC[1], cid, secret, "/no/such/path"]
    for v in values:
        assert not any(f in v for f in forbidden), v
    routes = {
        dict(labels)["route"]
        for (name, labels), n in samples.items()
        if name == "sharehub_api_requests_total" and n > before.get((name, labels), 0.0)
    }
    assert "/api/v1/subjects/{subject_id}" in routes and "/api/v1/datasets/{code}" in routes, routes
    assert all(r.startswith("/") or r in ("unmatched", "other") for r in routes)
    assert all("{" in r or r.count("/") <= 3 or r in ("unmatched", "other") for r in routes), routes


def test_rate_limit_refusals(hub: ApiHub) -> None:
    before = scrape(hub)
    codes = [hub.client.get("/api/v1/datasets/SCJ-OPEN/download").status_code for _ in range(4)]
    assert codes.count(429) >= 1
    after = scrape(hub)
    route = "/api/v1/datasets/{code}/download"
    name = "sharehub_rate_limit_refusals_total"
    assert value(after, name, route=route, reason="rate_limited") - value(
        before, name, route=route, reason="rate_limited"
    ) == codes.count(429)
    assert calls(after, route, "GET", "deny", 429) - calls(before, route, "GET", "deny", 429) == codes.count(
        429
    )


def test_audit_batches_are_observed(hub: ApiHub) -> None:
    before = scrape(hub)
    hub.client.get("/api/v1/datasets")
    hub.client.get("/api/v1/datasets")
    after = scrape(hub)
    got = value(after, "sharehub_audit_batch_records_sum") - value(before, "sharehub_audit_batch_records_sum")
    assert got == 2  # two records, however they were batched
    assert value(after, "sharehub_audit_batch_records_count") > value(
        before, "sharehub_audit_batch_records_count"
    )


def test_metrics_are_not_audited(hub: ApiHub) -> None:
    n = hub.audit_count()
    scrape(hub)
    scrape(hub)
    assert hub.audit_count() == n
    with hub.engine.connect() as conn:
        assert (
            conn.execute(sa.select(tables.audit.c.seq).where(tables.audit.c.path.like("%metrics%"))).first()
            is None
        )


def test_sync_runs_from_the_hub_db(tmp_path: Path) -> None:
    hub = build_hub(tmp_path, metrics_token=TOKEN)
    t0 = dt.datetime(2026, 11, 3, 2, 0, tzinfo=dt.UTC)
    rows: list[dict[str, Any]] = [
        {
            "run_id": "cli__a",
            "status": "success",
            "started_at": t0,
            "finished_at": t0 + dt.timedelta(seconds=30),
            "durations": {"extract_land": 10.0, "validate": 5.5, "publish": 4.5},
            "rows_read": 100,
            "rows_rejected": 1,
            "rows_quarantined": 2,
            "rows_published": 97,
        },
        {
            "run_id": "cli__b",
            "status": "failed",
            "started_at": t0 + dt.timedelta(hours=1),
            "finished_at": t0 + dt.timedelta(hours=1, seconds=3),
            "durations": {"extract_land": 3.0},
            "rows_read": None,
        },
    ]
    with hub.engine.begin() as conn:
        for row in rows:
            conn.execute(
                tables.sync_runs.insert().values(
                    dataset_code="SCJ-LIC", dataset_version=1, stage="done", full=True, trigger="cli", **row
                )
            )
    s = scrape(hub, AUTH)
    assert value(s, "sharehub_sync_metrics_up") == 1
    assert value(s, "sharehub_sync_runs", status="success") == 1
    assert value(s, "sharehub_sync_runs", status="failed") == 1
    # the latest finished run is the failed one
    assert value(s, "sharehub_sync_last_run_duration_seconds", dataset="SCJ-LIC", stage="total") == 3.0
    assert value(s, "sharehub_sync_last_run_status", dataset="SCJ-LIC", status="failed") == 1
    assert (
        value(s, "sharehub_sync_last_success_timestamp_seconds", dataset="SCJ-LIC")
        == (t0 + dt.timedelta(seconds=30)).timestamp()
    )
    with hub.engine.begin() as conn:
        conn.execute(tables.sync_runs.delete().where(tables.sync_runs.c.run_id == "cli__b"))
    s = scrape(hub, AUTH)
    assert value(s, "sharehub_sync_last_run_rows", dataset="SCJ-LIC", kind="published") == 97
    assert value(s, "sharehub_sync_last_run_duration_seconds", dataset="SCJ-LIC", stage="validate") == 5.5
    assert value(s, "sharehub_sync_last_run_duration_seconds", dataset="SCJ-LIC", stage="total") == 20.0
    assert not any("cli__" in v for _, labels in s for _, v in labels)

    # an open /metrics (no token configured) leaves out every series labelled with a dataset
    # code: hidden datasets' codes are not for whoever reaches the port
    open_hub = build_hub(tmp_path / "open")
    with open_hub.engine.begin() as conn:
        for row in rows[:1]:
            conn.execute(
                tables.sync_runs.insert().values(
                    dataset_code="SCJ-LIC", dataset_version=1, stage="done", full=True, trigger="cli", **row
                )
            )
    s = scrape(open_hub)
    assert value(s, "sharehub_sync_runs", status="success") == 1
    assert not [key for key in s if any(name == "dataset" for name, _ in key[1])]
    assert "SCJ-LIC" not in open_hub.client.get("/metrics").text


def test_token_protection(tmp_path: Path) -> None:
    hub = build_hub(tmp_path, metrics_token="scrape-me-7f3a")
    hub.client.get("/api/v1/datasets")
    none = hub.client.get("/metrics")
    assert none.status_code == 401
    assert none.headers["www-authenticate"] == "Bearer"
    wrong = hub.client.get("/metrics", headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 403
    assert wrong.json()["error"]["code"] == "metrics_forbidden"
    for r in (none, wrong):
        assert "sharehub_" not in r.text
    assert scrape(hub, {"Authorization": "Bearer scrape-me-7f3a"})


def test_in_openapi(hub: ApiHub) -> None:
    op = hub.client.get("/openapi.json").json()["paths"]["/metrics"]["get"]
    assert "text/plain; version=0.0.4; charset=utf-8" in op["responses"]["200"]["content"]
    assert {"401", "403", "503"} <= set(op["responses"])
