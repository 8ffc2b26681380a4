"""Build one Airflow DAG per dataset sync from the data directory (数据目录).

The DAG file in ``dags/`` stays thin: it calls :func:`register` with its ``globals()``.
The scheduler re-parses that file every few seconds, so this module imports only the
Airflow Task SDK and the standard library at top level; the pipeline (pyarrow, pandas,
great_expectations, pyiceberg, sqlalchemy) is imported inside the task callables.

Test seams (environment variables, read at call time):

* ``SHAREHUB_PIPELINE_MODULE`` -- module providing ``extract_land`` / ``validate`` /
  ``publish`` (default ``sharehub.pipeline``).
* ``SHAREHUB_DAGSPECS_LOADER`` -- ``"module:function"`` returning ``list[DagSpec]``, used by
  :func:`register` instead of ``sharehub.airflow.directory_specs.load_dag_specs``.
* ``SHAREHUB_DAG_RETRIES`` -- task retries (default 2); :func:`sharehub.airflow.env.run_dag`
  sets it to 0 so a failing local run reports at once instead of waiting for retries.
* ``SHAREHUB_DAG_RETRY_DELAY`` -- seconds before the first retry (default 60, doubling up to 15
  minutes); the Celery test sets it short so that a lost worker's task is retried at once.
* ``SHAREHUB_DAG_SCHEDULES=manual`` -- every DAG without a schedule: runs only when triggered
  (maintenance windows, or tests that trigger runs and must not race a scheduled one).
"""

from __future__ import annotations

import importlib
import logging
import os
import re
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

from airflow.providers.standard.operators.python import PythonOperator
from airflow.sdk import DAG, Asset, Param, get_parsing_context

from sharehub.airflow.dagspec import DagSpec

log = logging.getLogger("sharehub.dag_factory")

PIPELINE_MODULE_ENV = "SHAREHUB_PIPELINE_MODULE"
DEFAULT_PIPELINE_MODULE = "sharehub.pipeline"
SPECS_LOADER_ENV = "SHAREHUB_DAGSPECS_LOADER"
RETRIES_ENV = "SHAREHUB_DAG_RETRIES"
RETRY_DELAY_ENV = "SHAREHUB_DAG_RETRY_DELAY"

#: Fixed, in the past, so that a new DAG never backfills (``catchup=False`` as well).
START_DATE = datetime(2024, 1, 1, tzinfo=UTC)
DEFAULT_RETRIES = 2
RETRY_DELAY = timedelta(minutes=1)
#: Airflow 3.x: ``retry_exponential_backoff`` is a *multiplier* (0 = off). ``True`` is the
#: legacy Airflow 2 spelling and only means 2.0 after a serialization round trip, so say 2.0.
RETRY_BACKOFF = 2.0
MAX_RETRY_DELAY = timedelta(minutes=15)
TAG = "sharehub"
#: Asset URI scheme of a curated Iceberg table. The ``x-`` prefix is Airflow's reserved form for
#: private schemes: no provider normalizer is looked up (no ProvidersManager start-up while the
#: scheduler parses the DAG file) and no future provider can redefine its semantics.
ASSET_SCHEME = "x-iceberg"
TASK_IDS = ("extract_land", "validate", "publish")

SHARE_TYPE_LABELS = {
    "unconditional": "无条件共享",
    "conditional": "有条件共享",
    "none": "不予共享",
}

SpecLoader = Callable[[], Iterable[DagSpec]]


# ---- names ---------------------------------------------------------------------------------
def curated_table(spec: DagSpec) -> str:
    """The Iceberg identifier of the dataset's curated table (derived from the code if unset)."""
    return spec.curated_table or curated_table_of(spec.code)


def curated_table_of(code: str) -> str:
    """The Iceberg identifier of a dataset code's curated table."""
    # same rule as lake.tables.normalise_code (not imported: lake pulls in pyiceberg/pyarrow)
    return "curated." + re.sub(r"[^a-z0-9_]+", "_", code.strip().lower()).strip("_")


def asset_uri(table: str) -> str:
    """Asset URI of a curated table: ``x-iceberg://sharehub/<namespace>/<table>``."""
    return f"{ASSET_SCHEME}://sharehub/" + "/".join(part for part in table.split(".") if part)


def curated_asset(spec: DagSpec) -> Asset:
    """The Asset that a successful publish updates (downstream DAGs can schedule on it)."""
    return table_asset(curated_table(spec))


def table_asset(table: str) -> Asset:
    """The Asset of a curated table, by its Iceberg identifier."""
    return Asset(uri=asset_uri(table), name=f"sharehub.{table}", group="sharehub")


def _cell(value: object) -> str:
    return str(value).replace("|", "\\|").replace("\n", " ")


def doc_md(spec: DagSpec) -> str:
    """Markdown shown on the DAG page, built from the directory entry."""
    share = SHARE_TYPE_LABELS.get(spec.share_type, spec.share_type)
    lines = [
        f"### {_cell(spec.name)}",
        "",
        "| 项 | 值 |",
        "|---|---|",
        f"| 信息资源代码 | `{_cell(spec.code)}` |",
        f"| 部门 | {_cell(spec.department_name)} (`{_cell(spec.department_code)}`) |",
        f"| 共享类型 | {_cell(share)} (`{_cell(spec.share_type)}`) |",
        f"| 调度 | `{_cell(spec.schedule)}` |" if spec.schedule else "| 调度 | 手动 (manual) |",
        *([f"| 队列 (Celery queue) | `{_cell(spec.queue)}` |"] if spec.queue else []),
        f"| curated 表 | `{_cell(curated_table(spec))}` |",
        f"| 目录版本 | {spec.version} |",
        "",
    ]
    if spec.summary:
        lines += [_cell(spec.summary), ""]
    lines += ["#### 信息项", ""]
    if spec.fields:
        lines += ["| 字段 | 名称 | 类型 |", "|---|---|---|"]
        lines += [f"| `{_cell(n)}` | {_cell(label)} | {_cell(t)} |" for n, label, t in spec.fields]
    else:
        lines.append("(未登记信息项)")
    lines += ["", "Generated by `sharehub.airflow.factory` from the data directory; do not edit in Airflow."]
    return "\n".join(lines)


# ---- task callables (run in the worker; import the pipeline lazily) ------------------------
def _pipeline() -> Any:
    name = os.environ.get(PIPELINE_MODULE_ENV) or DEFAULT_PIPELINE_MODULE
    if name == DEFAULT_PIPELINE_MODULE:
        from sharehub import pipeline  # type: ignore[attr-defined,unused-ignore]

        return pipeline
    return importlib.import_module(name)


def _call(step: str, code: str, run_id: str, **kwargs: Any) -> dict[str, Any]:
    """Run one pipeline step; an error with ``retryable = False`` fails without retries."""
    func = getattr(_pipeline(), step)
    try:
        result: dict[str, Any] = func(code, run_id, **kwargs)
    except Exception as exc:
        if getattr(exc, "retryable", True) is False:
            from airflow.sdk.exceptions import AirflowFailException

            raise AirflowFailException(f"{step} {code} [{run_id}]: {exc}") from exc
        raise
    return result


def _extract_land(code: str, run_id: str | None = None, params: dict[str, Any] | None = None) -> Any:
    full = bool((params or {}).get("full", False))
    return _call("extract_land", code, str(run_id), full=full)


def _validate(code: str, run_id: str | None = None) -> Any:
    return _call("validate", code, str(run_id))


def _publish(code: str, run_id: str | None = None) -> Any:
    return _call("publish", code, str(run_id))


STEP_CALLABLES: dict[str, Callable[..., Any]] = {
    "extract_land": _extract_land,
    "validate": _validate,
    "publish": _publish,
}


class SyncStepOperator(PythonOperator):
    """One step of a dataset sync (its task callable above) that tells OpenLineage what it read
    and wrote: the provider calls the ``get_openlineage_facets_on_*`` methods, only when
    OpenLineage is enabled (see ``docs/adr/0012-openlineage-sync-lineage.md``)."""

    def __init__(self, *, sync_step: str, dataset_code: str, **kwargs: Any) -> None:
        super().__init__(
            python_callable=STEP_CALLABLES[sync_step], op_kwargs={"code": dataset_code}, **kwargs
        )
        self.sync_step = sync_step
        self.dataset_code = dataset_code

    def get_openlineage_facets_on_start(self) -> Any:
        from sharehub.airflow.lineage import operator_lineage

        return operator_lineage(self.sync_step, self.dataset_code, None)

    def get_openlineage_facets_on_complete(self, task_instance: Any) -> Any:
        from sharehub.airflow.lineage import operator_lineage

        return operator_lineage(self.sync_step, self.dataset_code, str(task_instance.run_id))

    def get_openlineage_facets_on_failure(self, task_instance: Any) -> Any:
        from sharehub.airflow.lineage import operator_lineage

        return operator_lineage(self.sync_step, self.dataset_code, str(task_instance.run_id))


# ---- DAGs ----------------------------------------------------------------------------------
def _retries() -> int:
    raw = os.environ.get(RETRIES_ENV, "")
    return int(raw) if raw.strip() else DEFAULT_RETRIES


def _retry_delay() -> timedelta:
    raw = os.environ.get(RETRY_DELAY_ENV, "")
    return timedelta(seconds=float(raw)) if raw.strip() else RETRY_DELAY


SCHEDULES_ENV = "SHAREHUB_DAG_SCHEDULES"


def check_schedule(schedule: str | None) -> None:
    """Raise ValueError for a schedule Airflow would reject only later, at serialization."""
    if schedule is None or schedule in ("@once", "@continuous"):
        return
    from airflow.utils.dates import cron_presets
    from croniter import croniter

    if not croniter.is_valid(cron_presets.get(schedule, schedule)):
        raise ValueError(f"invalid schedule {schedule!r}: not a cron expression or Airflow preset")


def build_dag(spec: DagSpec) -> DAG:
    """The sync DAG of one dataset: ``extract_land >> validate >> publish``.

    The Airflow ``run_id`` is the sync run id; the ``full`` param forces a full resync. With
    ``spec.queue`` (``settings.airflow_queues``) every task goes to that CeleryExecutor queue, so
    only workers started with ``airflow celery worker --queues <queue>`` run them.
    """
    check_schedule(spec.schedule)
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
        schedule=None if os.environ.get(SCHEDULES_ENV) == "manual" else spec.schedule,
        start_date=START_DATE,
        catchup=False,
        max_active_runs=1,
        tags=[spec.department_code, f"share:{spec.share_type}", TAG],
        description=f"{spec.department_name}·{spec.name} ({spec.code})"[:200],
        doc_md=doc_md(spec),
        default_args=default_args,
        params={"full": Param(False, type="boolean", description="force a full resync")},
        render_template_as_native_obj=False,
    ) as dag:
        extract = SyncStepOperator(task_id="extract_land", sync_step="extract_land", dataset_code=spec.code)
        check = SyncStepOperator(task_id="validate", sync_step="validate", dataset_code=spec.code)
        publish = SyncStepOperator(
            task_id="publish", sync_step="publish", dataset_code=spec.code, outlets=[curated_asset(spec)]
        )
        extract >> check >> publish
    return dag


def _env_loader() -> SpecLoader | None:
    ref = os.environ.get(SPECS_LOADER_ENV)
    if not ref:
        return None
    module, _, attr = ref.partition(":")
    loader: SpecLoader = getattr(importlib.import_module(module), attr or "load_dag_specs")
    return loader


def register(namespace: dict[str, Any], loader: SpecLoader | None = None) -> int:
    """Build the DAG of every published dataset into ``namespace`` (a DAG file's ``globals()``).

    ``loader`` defaults to ``$SHAREHUB_DAGSPECS_LOADER`` or
    ``sharehub.airflow.directory_specs.load_dag_specs``. When the directory cannot be read (no hub DB
    yet) this logs a warning and registers nothing instead of breaking the DAG file; a spec
    that fails to build is logged and skipped so that the other datasets keep their DAGs.
    Returns the number of DAGs registered.
    """
    try:
        if loader is None:
            loader = _env_loader()
        if loader is None:
            from sharehub.airflow.directory_specs import load_dag_specs

            loader = load_dag_specs
        specs = list(loader())
    except Exception as exc:
        log.warning("sharehub: cannot load the data directory, no sync DAGs registered: %s", exc)
        return 0

    # When a worker runs one task, Airflow tells us which DAG it needs: build only that one.
    wanted = get_parsing_context().dag_id
    count = 0
    for spec in specs:
        if wanted is not None and spec.dag_id != wanted:
            continue
        try:
            namespace[spec.dag_id] = build_dag(spec)
        except Exception:
            log.exception("sharehub: cannot build the sync DAG of %s", spec.code)
            continue
        count += 1
    return count
