"""Prometheus metrics of the API process (``GET /metrics``, see docs/interop.md § Metrics).

* ``sharehub_api_requests_total{route, method, decision, status}``: every HTTP call but
  ``/metrics`` itself, labelled with the **route template** (``/api/v1/datasets/{code}/records``,
  never the raw path: no codes, subjects or ids in labels), ``decision`` as the audit log
  records it (:func:`catalog.api.status.decision_of`) and the status;
* ``sharehub_api_request_duration_seconds{route, method}``: latency histograms;
* ``sharehub_rate_limit_refusals_total{route, reason}``: 429 answers by their error code
  (``rate_limited``, ``anomaly_throttled``, ``login_busy``);
* ``sharehub_audit_batch_records``: the audit writer's group-commit batch sizes;
* ``sharehub_sync_*``: the sync runs, read from the hub DB at scrape time (the runs happen in
  Airflow's processes, not here) by :class:`RunsCollector`.

Several uvicorn workers: with ``PROMETHEUS_MULTIPROC_DIR`` set (``sharehub serve --workers N``
sets it) each worker writes its counters to files there and a scrape of any worker adds them
all up (prometheus-client's multiprocess mode).
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from typing import Any

import sqlalchemy as sa
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4
from prometheus_client.metrics_core import Metric
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from catalog.api.status import decision_of
from catalog.db import tables

CONTENT_TYPE = CONTENT_TYPE_PLAIN_0_0_4
METRICS_PATH = "/metrics"
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"

#: the process's own metrics (in multiprocess mode their values live in the shared files)
REGISTRY = CollectorRegistry(auto_describe=True)

REQUESTS = Counter(
    "sharehub_api_requests",
    "HTTP calls answered, by route template, method, audit decision and status",
    ["route", "method", "decision", "status"],
    registry=REGISTRY,
)
LATENCY = Histogram(
    "sharehub_api_request_duration_seconds",
    "time to answer an HTTP call (until the last body byte is handed over), by route template",
    ["route", "method"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
    registry=REGISTRY,
)
RATE_LIMITED = Counter(
    "sharehub_rate_limit_refusals",
    "calls refused by a rate limit (429), by route template and error code",
    ["route", "reason"],
    registry=REGISTRY,
)
AUDIT_BATCH = Histogram(
    "sharehub_audit_batch_records",
    "audit records appended per group commit (catalog.audit.writer.AuditWriter)",
    buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024),
    registry=REGISTRY,
)

_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
_REASONS = frozenset({"rate_limited", "anomaly_throttled", "login_busy"})


def observe_audit_batch(size: int) -> None:
    """The audit writer's hook: one group commit of ``size`` records."""
    AUDIT_BATCH.observe(size)


def route_label(scope: Scope, status: int) -> str:
    """The route template that answered (bounded: one per declared route), ``unmatched`` for a
    path no route takes, ``other`` for a mount's inner paths (static files)."""
    route = scope.get("route")
    template = getattr(route, "path_format", None)
    if isinstance(template, str):
        return template
    return "unmatched" if status == 404 else "other"


class MetricsMiddleware:
    """Counts and times every HTTP call except ``/metrics`` (a plain ASGI middleware, outermost,
    so the audit log's 503 refusals are counted as answered)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] == METRICS_PATH:
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = [500]

        async def send_status(message: Message) -> None:
            if message["type"] == "http.response.start":
                status[0] = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            self._count(scope, status[0], time.perf_counter() - started)

    @staticmethod
    def _count(scope: Scope, status: int, seconds: float) -> None:
        route = route_label(scope, status)
        method = scope["method"] if scope["method"] in _METHODS else "other"
        REQUESTS.labels(route, method, decision_of(status), str(status)).inc()
        LATENCY.labels(route, method).observe(seconds)
        if status == 429:
            call = (scope.get("state") or {}).get("call")
            reason = getattr(call, "reason", None)
            RATE_LIMITED.labels(route, reason if reason in _REASONS else "rate_limited").inc()


class RunsCollector:
    """The sync runs as the hub DB records them, read at each scrape (the runs happen in
    Airflow's workers, so no API process sees them happen). Labels: dataset codes (bounded by
    the directory), statuses, stages and row kinds; never run ids."""

    def __init__(self, engine: sa.Engine, *, per_dataset: bool = True) -> None:
        self.engine = engine
        self.per_dataset = per_dataset

    def describe(self) -> list[Metric]:
        return []  # collected only at scrape time: no description at registration

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily("sharehub_sync_metrics_up", "1 if the sync runs could be read from the hub DB")
        try:
            families = self._families()
        except Exception:  # a scrape must still answer (and say the runs are unknown)
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        yield from families

    def _families(self) -> list[Metric]:
        r = tables.sync_runs
        latest = (
            sa.select(r.c.dataset_code, sa.func.max(r.c.started_at).label("at"))
            .where(r.c.finished_at.is_not(None))
            .group_by(r.c.dataset_code)
            .subquery()
        )
        with self.engine.connect() as conn:
            by_status = conn.execute(sa.select(r.c.status, sa.func.count()).group_by(r.c.status)).all()
            last = conn.execute(
                sa.select(
                    r.c.dataset_code,
                    r.c.status,
                    r.c.durations,
                    r.c.rows_read,
                    r.c.rows_rejected,
                    r.c.rows_quarantined,
                    r.c.rows_published,
                ).join(
                    latest, sa.and_(r.c.dataset_code == latest.c.dataset_code, r.c.started_at == latest.c.at)
                )
            ).all()
            ok = conn.execute(
                sa.select(r.c.dataset_code, sa.func.max(r.c.finished_at))
                .where(r.c.status == "success")
                .group_by(r.c.dataset_code)
            ).all()
        runs = GaugeMetricFamily(
            "sharehub_sync_runs", "sync runs recorded in the hub DB, by status", labels=["status"]
        )
        for status, n in by_status:
            runs.add_metric([str(status)], int(n))
        if not self.per_dataset:
            return [runs]
        duration = GaugeMetricFamily(
            "sharehub_sync_last_run_duration_seconds",
            "seconds per stage of each dataset's latest finished run (stage total: their sum)",
            labels=["dataset", "stage"],
        )
        rows = GaugeMetricFamily(
            "sharehub_sync_last_run_rows",
            "row counts of each dataset's latest finished run",
            labels=["dataset", "kind"],
        )
        state = GaugeMetricFamily(
            "sharehub_sync_last_run_status",
            "1 for the status of each dataset's latest finished run",
            labels=["dataset", "status"],
        )
        for row in last:
            code = str(row.dataset_code)
            stages: dict[str, Any] = row.durations if isinstance(row.durations, dict) else {}
            total = 0.0
            for stage, seconds in sorted(stages.items()):
                if isinstance(seconds, int | float):
                    duration.add_metric([code, str(stage)], float(seconds))
                    total += float(seconds)
            duration.add_metric([code, "total"], total)
            for kind in ("read", "rejected", "quarantined", "published"):
                value = getattr(row, f"rows_{kind}")
                if value is not None:
                    rows.add_metric([code, kind], int(value))
            state.add_metric([code, str(row.status)], 1)
        success = GaugeMetricFamily(
            "sharehub_sync_last_success_timestamp_seconds",
            "when each dataset's latest successful run finished (Unix time)",
            labels=["dataset"],
        )
        for code, at in ok:
            if at is not None:
                success.add_metric([str(code)], _timestamp(at))
        return [runs, duration, rows, state, success]


def _timestamp(at: Any) -> float:
    import datetime as dt

    if isinstance(at, dt.datetime):
        aware = at if at.tzinfo is not None else at.replace(tzinfo=dt.UTC)
        return aware.timestamp()
    return 0.0


def exposition(engine: sa.Engine, *, per_dataset: bool = True) -> bytes:
    """What a scrape answers: this process's metrics (all workers' in multiprocess mode) and the
    sync runs, in the Prometheus text format 0.0.4. ``per_dataset=False`` (an open ``/metrics``,
    no token configured) leaves out the series labelled with dataset codes: the codes of datasets
    the public directory does not list are not for whoever reaches the port."""
    if os.environ.get(MULTIPROC_ENV):
        from prometheus_client import multiprocess

        process = CollectorRegistry()
        multiprocess.MultiProcessCollector(process)  # type: ignore[no-untyped-call]
    else:
        process = REGISTRY
    runs = CollectorRegistry(auto_describe=False)
    runs.register(RunsCollector(engine, per_dataset=per_dataset))
    return generate_latest(process) + generate_latest(runs)
