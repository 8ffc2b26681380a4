"""The sync pipeline: one run of one dataset, extract+land -> validate -> publish.

The three steps are the Airflow tasks (see ``sharehub.airflow.factory``) and also what
``sharehub sync CODE`` runs in-process. They pass state through the hub DB (the run record)
and the lake (the raw rows tagged with the run id), so each can run in its own process and be
retried. A failure at any step leaves the last published state (curated snapshot, serving
table, certificates, watermark, file ledger) untouched: those change only in ``publish``.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sharehub.pipeline.extract import extract_land
from sharehub.pipeline.publish import publish
from sharehub.pipeline.validate import validate
from sharehub.settings import Settings


def new_run_id(trigger: str = "cli") -> str:
    """A run id like Airflow's: ``cli__2026-11-22T10:00:00.123456+00:00``."""
    return f"{trigger}__{dt.datetime.now(dt.UTC).isoformat()}"


def sync(
    code: str, *, full: bool = False, settings: Settings | None = None, run_id: str | None = None
) -> dict[str, Any]:
    """Run the three steps in-process (the same code path as the DAG tasks)."""
    rid = run_id or new_run_id("cli")
    out: dict[str, Any] = {"run_id": rid}
    out["extract_land"] = extract_land(code, rid, full=full, trigger="cli", settings=settings)
    out["validate"] = validate(code, rid, settings=settings)
    out["publish"] = publish(code, rid, settings=settings)
    return out
