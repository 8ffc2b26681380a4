"""OpenLineage for the sync tasks: what a step read and wrote, for Airflow's OpenLineage provider.

The provider calls the task operator's ``get_openlineage_facets_on_start/complete/failure``
(:class:`sharehub.airflow.factory.SyncStepOperator`) only when OpenLineage is enabled (a
transport is configured, see ``docs/interop.md``); these call :func:`operator_lineage`, which
reads the dataset's spec and the run record and hands them to the pure builder
:func:`sharehub.pipeline.lineage.step_lineage`. With OpenLineage off nothing here runs.

The provider runs the calls in a forked child of the task process (or a thread): the hub DB is
read through an engine of its own without a pool (a pooled connection must not cross a fork).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from airflow.providers.openlineage.extractors import OperatorLineage

    from sharehub.pipeline.lineage import Lineage


def step_lineage_for(step: str, code: str, run_id: str | None) -> Lineage:
    """The lineage of one step of dataset ``code``'s run ``run_id`` (None: before the run has a
    record, as on START), from the hub DB and the process settings."""
    import sqlalchemy as sa
    from sqlalchemy.pool import NullPool

    from catalog.directory import store
    from catalog.runs import record as runs
    from sharehub.pipeline import lineage
    from sharehub.settings import get_settings

    settings = get_settings()
    engine = sa.create_engine(settings.hub_db_url, poolclass=NullPool)
    try:
        spec = store.get_dataset(engine, code).spec
        run: dict[str, Any] | None = None
        if run_id is not None:
            try:
                run = runs.get_run(engine, run_id)
            except KeyError:  # the step failed before the run was recorded
                run = None
    finally:
        engine.dispose()
    try:
        location: str | None = settings.connection(spec.source.connection)
    except KeyError:
        location = None
    facts = lineage.RunFacts(
        spec=spec,
        run=run,
        source=lineage.source_dataset(spec.source, location),
        lake_namespace=lineage.lake_namespace(settings.warehouse, settings.lineage_lake_namespace),
        warehouse=settings.warehouse,
    )
    return lineage.step_lineage(step, facts)


def operator_lineage(step: str, code: str, run_id: str | None) -> OperatorLineage[Any, Any]:
    """:func:`step_lineage_for` as the provider's ``OperatorLineage``."""
    from airflow.providers.openlineage.extractors import OperatorLineage

    built = step_lineage_for(step, code, run_id)
    return OperatorLineage(
        inputs=list(built.inputs),
        outputs=list(built.outputs),
        run_facets=dict(built.run_facets),
        job_facets=dict(built.job_facets),
    )
