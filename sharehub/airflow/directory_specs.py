"""Read the published directory for the DAG factory (kept light: no pyarrow, no pandas)."""

from __future__ import annotations

from catalog.db.engine import engine_for
from sharehub.airflow.dagspec import DagSpec
from sharehub.settings import Settings, get_settings


def load_dag_specs(settings: Settings | None = None) -> list[DagSpec]:
    """One DagSpec per published dataset, read from the hub DB."""
    from catalog.directory import store

    s = settings or get_settings()
    engine = engine_for(s.hub_db_url)
    out = []
    for ds in store.list_datasets(engine):
        spec = ds.spec
        out.append(
            DagSpec(
                code=spec.code,
                name=spec.name,
                department_code=ds.department.code,
                department_name=ds.department.name,
                share_type=spec.share.type.value,
                schedule=spec.schedule,
                summary=spec.summary,
                fields=[(f.name, f.label, f.type) for f in spec.fields],
                curated_table="",  # the factory derives it from the code, as the lake does
                version=ds.version,
                queue=s.airflow_queue(ds.department.code, spec.code),
            )
        )
    return out
