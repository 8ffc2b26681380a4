"""One Airflow DAG per active subscription (订阅), delivered when its dataset is published.

Each DAG is scheduled on the Asset of the dataset's curated table — the Asset the sync DAG's
``publish`` task updates (:func:`sharehub.airflow.factory.curated_asset`) — so a new curated
snapshot triggers a delivery of what changed into the consumer's database. It has one task,
``deliver`` (:func:`sharehub.pipeline.delivery.deliver`), retried like the syncs' tasks; a
retry is safe because the delivery resumes from the target's own bookkeeping. A delivery that
cannot succeed by retrying (the grant ended, the subscription ended, the target's connection
ref is not configured) fails at once, and the hub's history says why. The ``full`` param
reloads a mirror whole. ``SHAREHUB_DAG_SCHEDULES=manual`` does not apply: a delivery has no
time schedule, it follows publication (pause its DAG in Airflow to hold deliveries back).

On the CeleryExecutor a delivery runs on the queue of the *subscribing* department
(``SHAREHUB_AIRFLOW_QUEUES__<department>``, :func:`delivery_queue`), not the dataset's: it reads
the curated table from the lake, which every worker reaches, and writes into the consumer's
database, which may sit in that department's network zone where only its own workers reach it —
the reason a department has a queue in the first place. A queue set for the dataset code or its
owning department routes the dataset's *sync*, never the deliveries of it.

Like :mod:`sharehub.airflow.factory`, this module imports only the Task SDK and the standard
library at top level: the scheduler re-parses ``dags/sharehub_subscriptions.py`` often.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from airflow.sdk import DAG, Param, get_parsing_context, task

from sharehub.airflow.factory import (
    MAX_RETRY_DELAY,
    RETRY_BACKOFF,
    START_DATE,
    TAG,
    _cell,
    _retries,
    _retry_delay,
    curated_table_of,
    table_asset,
)

if TYPE_CHECKING:
    from sharehub.settings import Settings

log = logging.getLogger("sharehub.dag_factory")

DAG_ID_PREFIX = "deliver__"
MODE_LABELS = {"mirror": "镜像 (mirror)", "append": "追加变更 (append)"}


@dataclass(frozen=True)
class SubscriptionSpec:
    """One active subscription, as its DAG needs it."""

    id: int
    app_id: str
    app_name: str
    department_code: str  # the subscribing app's department
    dataset_code: str
    target_ref: str
    target_table: str
    mode: str
    queue: str | None = None  # CeleryExecutor queue of its task (:func:`delivery_queue`); None = default

    @property
    def dag_id(self) -> str:
        code = "".join(c if c.isalnum() or c in "_.-" else "_" for c in self.dataset_code)
        return f"{DAG_ID_PREFIX}{self.id}__{code}"


def load_subscription_specs() -> list[SubscriptionSpec]:
    """The active subscriptions, read from the hub DB (SQLAlchemy only: no pyarrow here)."""
    import sqlalchemy as sa

    from catalog.db import tables
    from catalog.db.engine import engine_for
    from sharehub.settings import get_settings

    s, a = tables.subscriptions, tables.apps
    q = (
        sa.select(s, a.c.name.label("app_name"), a.c.department_code)
        .join(a, a.c.app_id == s.c.app_id)
        .where(s.c.status == "active")
        .order_by(s.c.id)
    )
    settings = get_settings()
    with engine_for(settings.hub_db_url).connect() as conn:
        rows = conn.execute(q).all()
    return [
        SubscriptionSpec(
            r.id,
            r.app_id,
            r.app_name,
            r.department_code,
            r.dataset_code,
            r.target_ref,
            r.target_table,
            r.mode,
            queue=delivery_queue(settings, r.department_code),
        )
        for r in rows
    ]


def delivery_queue(settings: Settings, subscriber_department: str | None) -> str | None:
    """The Celery queue of a subscription's deliveries: the subscribing app's department's
    (``airflow_queues[<department>]``), else None (Airflow's default queue). The dataset's own
    entries (its code, its owner's department) are deliberately not consulted: see the module
    docstring."""
    return settings.airflow_queue(subscriber_department or "", "")


def doc_md(spec: SubscriptionSpec) -> str:
    """Markdown shown on the DAG page."""
    return "\n".join(
        [
            f"### 订阅 {spec.id}: {_cell(spec.dataset_code)} → {_cell(spec.app_name)}",
            "",
            "| 项 | 值 |",
            "|---|---|",
            f"| 数据集 | `{_cell(spec.dataset_code)}` (`{curated_table_of(spec.dataset_code)}`) |",
            f"| 订阅应用 | {_cell(spec.app_name)} (`{_cell(spec.app_id)}`, {_cell(spec.department_code)}) |",
            f"| 目标 | `{_cell(spec.target_ref)}`.`{_cell(spec.target_table)}` |",
            f"| 方式 | {MODE_LABELS.get(spec.mode, _cell(spec.mode))} |",
            *([f"| 队列 (Celery queue) | `{_cell(spec.queue)}` |"] if spec.queue else []),
            "",
            "Runs when the dataset's curated table is published; delivers what changed since the last "
            "delivered snapshot. Generated by `sharehub.airflow.subscription_dags`; end the subscription "
            "with `sharehub subscriptions end`, not in Airflow.",
        ]
    )


def _deliver(subscription_id: int, run_id: str | None = None, params: dict[str, Any] | None = None) -> Any:
    from sharehub.pipeline.delivery import deliver

    full = bool((params or {}).get("full", False))
    try:
        return deliver(subscription_id, str(run_id), full=full)
    except Exception as exc:
        if getattr(exc, "retryable", True) is False:
            from airflow.sdk.exceptions import AirflowFailException

            raise AirflowFailException(f"deliver subscription {subscription_id} [{run_id}]: {exc}") from exc
        raise


def build_subscription_dag(spec: SubscriptionSpec) -> DAG:
    """The delivery DAG of one subscription, scheduled on its dataset's curated Asset; its task
    goes to ``spec.queue`` when set (the subscribing department's Celery queue)."""
    default_args: dict[str, Any] = {
        "owner": spec.department_code or "sharehub",
        "retries": _retries(),
        "retry_delay": _retry_delay(),
        "retry_exponential_backoff": RETRY_BACKOFF,
        "max_retry_delay": MAX_RETRY_DELAY,
    }
    if spec.queue:
        default_args["queue"] = spec.queue
    with DAG(
        dag_id=spec.dag_id,
        schedule=[table_asset(curated_table_of(spec.dataset_code))],
        start_date=START_DATE,
        catchup=False,
        max_active_runs=1,
        tags=[spec.department_code, "subscription", TAG],
        description=f"订阅 {spec.id}: {spec.dataset_code} → {spec.app_name} ({spec.mode})"[:200],
        doc_md=doc_md(spec),
        default_args=default_args,
        params={"full": Param(False, type="boolean", description="reload a mirror whole")},
    ) as dag:
        task(task_id="deliver")(_deliver)(subscription_id=spec.id)
    return dag


SpecLoader = Callable[[], Iterable[SubscriptionSpec]]


def register_subscriptions(namespace: dict[str, Any], loader: SpecLoader | None = None) -> int:
    """Build the DAG of every active subscription into ``namespace`` (a DAG file's ``globals()``);
    the number built. An unreadable hub DB registers nothing (a warning), as the syncs' file
    does."""
    try:
        specs = list((loader or load_subscription_specs)())
    except Exception as exc:
        log.warning("sharehub: cannot read the subscriptions, no delivery DAGs registered: %s", exc)
        return 0
    wanted = get_parsing_context().dag_id
    count = 0
    for spec in specs:
        if wanted is not None and spec.dag_id != wanted:
            continue
        try:
            namespace[spec.dag_id] = build_subscription_dag(spec)
        except Exception:
            log.exception("sharehub: cannot build the delivery DAG of subscription %s", spec.id)
            continue
        count += 1
    return count
