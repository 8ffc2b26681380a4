"""The demo's exchange (docs/exchange.md): a Delta Sharing recipient profile for 企业开办, and a
subscription of the same app to the court's dishonest-debtor list into a second SQLite database
(its own database, 前置库), delivered once as an Airflow DAG run (in production the scheduler
runs it whenever the list is published)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa

DATASET = "FY-SXBZXR-001"
TARGET_REF = "demo_subscriber"
TARGET_TABLE = "dishonest_debtors"


@dataclass(frozen=True)
class DemoSubscription:
    id: int
    database: Path
    table: str
    delivery: dict[str, Any]


def issue_profile(engine: sa.Engine, settings: Any, app_id: str, base: str) -> Path:
    """A recipient profile for ``app_id`` in ``<var>/demo-recipient.share``."""
    from catalog.sharing import recipients

    token, rec = recipients.issue(engine, app_id, days=7, label="demo", by="demo")
    path = Path(settings.var_dir) / "demo-recipient.share"
    recipients.write_profile(path, f"{base}/api/v1/delta-sharing", token, rec.expires_at)
    return path


def subscribe(engine: sa.Engine, settings: Any, app_id: str, *, in_process: bool) -> DemoSubscription:
    """Subscribe ``app_id`` to the dishonest-debtor list into ``<var>/demo-subscriber.db`` (once: a
    second demo run reuses the subscription) and deliver it now."""
    from catalog.directory.grades import policy_of
    from catalog.sharing import subscriptions

    database = (Path(settings.var_dir) / "demo-subscriber.db").resolve()
    # a connection ref like any other (run_dag hands the settings' connections to the task)
    connections = {**settings.connections, TARGET_REF: f"sqlite:///{database}"}
    settings = settings.model_copy(update={"connections": connections})
    found = [
        s
        for s in subscriptions.list_subscriptions(engine, app_id=app_id)
        if s.status == "active"
        and (s.dataset_code, s.target_ref, s.target_table) == (DATASET, TARGET_REF, TARGET_TABLE)
    ]
    sub = found[0] if found else subscriptions.subscribe(
        engine, app_id, DATASET, target_ref=TARGET_REF, target_table=TARGET_TABLE, mode="mirror",
        by="demo", policy=policy_of(settings),
    )  # fmt: skip
    if in_process:
        from sharehub.pipeline.delivery import deliver

        done = deliver(sub.id, "demo", settings=settings)
    else:
        from sharehub.airflow.env import run_dag

        run = run_dag(f"deliver__{sub.id}__{DATASET}", settings=settings)
        run.check()
        done = subscriptions.history(engine, sub.id)[0]
    return DemoSubscription(sub.id, database, TARGET_TABLE, done)
