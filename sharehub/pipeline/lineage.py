"""OpenLineage datasets and facets of a sync run, built from what the hub records (pure: no I/O).

A sync run reads the department source and writes three Iceberg tables. Each step says what it
read and wrote (see ``docs/adr/0012-openlineage-sync-lineage.md``):

============  =======================================  ===========================
step          inputs                                   outputs
============  =======================================  ===========================
extract_land  the source                               ``raw.<code>``
validate      ``raw.<code>`` (+ the quality results)   ``quarantine.<code>``
publish       ``raw.<code>``, ``quarantine.<code>``    ``curated.<code>``
sync          the source                               raw, quarantine, curated
============  =======================================  ===========================

``sync`` is the whole run as one job (a sync outside Airflow); under Airflow the DAG run is the
sync run and the three task runs are its children.

Names never carry a secret: a source is named from its connection's host, port and database (a
URL's user, password and query are dropped), never from the DSN; a source kind without a namer
of its own is named from its connection *ref*, which is not a secret. The facets are built from
the directory's :class:`~catalog.directory.model.DatasetSpec` and the run record
(``catalog.runs.record.get_run``), so the same function serves Airflow's OpenLineage provider
(``sharehub.airflow.lineage``) and tests, with no Airflow needed.
"""

from __future__ import annotations

import hashlib
import socket
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar
from urllib.parse import urlsplit

from openlineage.client.event_v2 import InputDataset, OutputDataset
from openlineage.client.facet_v2 import (
    DatasetFacet,
    InputDatasetFacet,
    JobFacet,
    OutputDatasetFacet,
    RunFacet,
    catalog_dataset,
    data_quality_assertions_dataset,
    output_statistics_output_dataset,
    processing_engine_run,
    schema_dataset,
)

from catalog.directory.model import DatasetSpec
from catalog.directory.sources import SourceModel
from sharehub.pipeline.schemas import EXTRA, RID, ROW, RUN_ID, SOURCE

#: the steps whose lineage :func:`step_lineage` knows (``sync`` = the whole run as one job)
STEPS = ("extract_land", "validate", "publish", "sync")
RAW, QUARANTINE, CURATED = "raw", "quarantine", "curated"  # lake.zones, without importing pyiceberg
#: columns a raw row carries besides the declared fields (sharehub.pipeline.schemas.raw_schema)
RAW_META = ((RID, "int64"), (RUN_ID, "string"), (SOURCE, "string"), (ROW, "int64"), (EXTRA, "string"))
QUARANTINE_COLUMNS = (
    (RUN_ID, "string", "the run that found the row bad"),
    (RID, "int64", "the row's id in the run's raw rows (null: the row never landed)"),
    (SOURCE, "string", "file or table the row came from"),
    (ROW, "int64", "row number in that source"),
    ("reasons", "string", "JSON list of {field, rule, message}"),
    ("record", "string", "JSON of the row as received"),
)
PRODUCER = "https://github.com/sharehub/sharehub"


@dataclass(frozen=True)
class DatasetName:
    """An OpenLineage dataset identity: ``namespace`` + ``name``."""

    namespace: str
    name: str


@dataclass
class Lineage:
    """What one step (or the whole run) read and wrote, with its facets; the provider's
    ``OperatorLineage`` takes the same four attributes."""

    inputs: list[InputDataset] = field(default_factory=list)
    outputs: list[OutputDataset] = field(default_factory=list)
    run_facets: dict[str, RunFacet] = field(default_factory=dict)
    job_facets: dict[str, JobFacet] = field(default_factory=dict)


# ---- names ---------------------------------------------------------------------------------
SourceNamer = Callable[[Any, str], DatasetName]
_NAMERS: dict[str, SourceNamer] = {}
N = TypeVar("N", bound=SourceNamer)


def source_namer(kind: str) -> Callable[[N], N]:
    """Register how a source kind is named from its model and its resolved location (one
    function per kind, like the connectors' registry). The function must not put a secret in
    the name: the location may be a DSN with a password."""

    def register(func: N) -> N:
        _NAMERS[kind] = func
        return func

    return register


def source_dataset(source: SourceModel, location: str | None) -> DatasetName:
    """The dataset a source is: by its kind's namer from the resolved ``location``, or, for a kind
    with no namer or a connection that is not configured, ``<kind>://<connection ref>``."""
    namer = _NAMERS.get(source.kind)
    if namer is not None and location:
        return namer(source, location)
    return DatasetName(f"{source.kind}://{source.connection.lower()}", source.label)


_DEFAULT_PORTS = {"postgres": 5432, "mysql": 3306, "mssql": 1433, "oracle": 1521}
_SCHEMES = {"postgresql": "postgres", "mariadb": "mysql"}


@source_namer("sql")
def _sql_dataset(source: Any, location: str) -> DatasetName:
    """``postgres://host:port`` + ``db.schema.table``, ``mysql://host:port`` + ``db.table``
    (OpenLineage's naming), ``sqlite://<host>`` + ``<file>.table``; user, password and query dropped."""
    from sqlalchemy.engine import make_url

    url = make_url(location)
    backend = url.get_backend_name()
    scheme = _SCHEMES.get(backend, backend)
    relation = source.table or "query_" + hashlib.sha256(source.query.encode()).hexdigest()[:12]
    if scheme == "sqlite":
        path = (url.database or ":memory:").removeprefix("file:")
        return DatasetName(f"sqlite://{socket.gethostname()}", f"{path}.{relation}")
    host = url.host or "localhost"
    port = url.port or _DEFAULT_PORTS.get(scheme)
    namespace = f"{scheme}://{host}:{port}" if port else f"{scheme}://{host}"
    database = url.database or ""
    if scheme == "postgres" and source.table and "." not in source.table:
        relation = f"public.{relation}"
    return DatasetName(namespace, f"{database}.{relation}" if database else relation)


@source_namer("file")
def _file_dataset(source: Any, location: str) -> DatasetName:
    """``s3://bucket`` + ``prefix/glob``, or ``file`` + ``/folder/glob`` (OpenLineage's naming)."""
    pattern = source.path.lstrip("/")
    if "://" in location:
        parts = urlsplit(location)
        host = parts.hostname or ""  # never the user:password@ or ?query of the location
        prefix = parts.path.strip("/")
        return DatasetName(f"{parts.scheme}://{host}", f"{prefix}/{pattern}" if prefix else pattern)
    return DatasetName("file", f"{location.rstrip('/')}/{pattern}")


def lake_dataset(namespace: str, zone: str, code: str) -> DatasetName:
    """A lake table: the lake's namespace + the Iceberg identifier (``curated.scj_yyzz_001``)."""
    from lake.tables import normalise_code

    return DatasetName(namespace, f"{zone}.{normalise_code(code)}")


def lake_namespace(warehouse: str, override: str | None = None) -> str:
    """The lake's namespace: the setting ``lineage_lake_namespace``, else the warehouse URI
    (``s3://bucket/prefix`` or ``file:///…/lake``) without any user, password or query."""
    if override:
        return override
    parts = urlsplit(warehouse)
    return f"{parts.scheme}://{parts.hostname or ''}{parts.path}".rstrip("/")


# ---- facets --------------------------------------------------------------------------------
def declared_columns(spec: DatasetSpec) -> list[tuple[str, str, str]]:
    """(name, type, label) of the declared fields, in order."""
    return [(f.name, f.type, f.label) for f in spec.fields]


def schema_facet(columns: list[tuple[str, str, str]]) -> schema_dataset.SchemaDatasetFacet:
    return schema_dataset.SchemaDatasetFacet(
        fields=[
            schema_dataset.SchemaDatasetFacetFields(name=n, type=t, description=d or None, ordinal_position=i)
            for i, (n, t, d) in enumerate(columns, start=1)
        ]
    )


def assertions(quality: Mapping[str, Any] | None) -> list[data_quality_assertions_dataset.Assertion]:
    """One assertion per GX expectation and dataset check of a stored validation outcome
    (``ValidationOutcome.to_json()``, the run record's ``quality``)."""
    if not quality:
        return []
    out = []
    for exp in quality.get("expectations") or []:
        out.append(
            data_quality_assertions_dataset.Assertion(
                assertion=str(exp.get("rule") or exp.get("expectation_type")),
                success=bool(exp.get("success")),
                column=exp.get("column"),
                severity="error",
                name=str(exp.get("expectation_type")),
                actual=str(exp.get("unexpected_count", 0)),
                expected="0",
                params={"unexpected_count": exp.get("unexpected_count", 0)},
            )
        )
    for name, check in sorted((quality.get("dataset_checks") or {}).items()):
        out.append(
            data_quality_assertions_dataset.Assertion(
                assertion=name,
                success=bool(check.get("success", True)),
                severity="error",
                name=name,
                actual=None if check.get("row_count") is None else str(check["row_count"]),
                params={k: v for k, v in check.items() if isinstance(v, int | float | str | bool)},
            )
        )
    return out


def _rows(value: Any) -> output_statistics_output_dataset.OutputStatisticsOutputDatasetFacet | None:
    return (
        None
        if value is None
        else output_statistics_output_dataset.OutputStatisticsOutputDatasetFacet(rowCount=int(value))
    )


@dataclass(frozen=True)
class RunFacts:
    """What the facets need of one run: the dataset's spec, its run record (None before the run
    has one: a START), the source's and the lake's names."""

    spec: DatasetSpec
    run: Mapping[str, Any] | None
    source: DatasetName
    lake_namespace: str
    warehouse: str | None = None

    def lake(self, zone: str) -> DatasetName:
        return lake_dataset(self.lake_namespace, zone, self.spec.code)

    @property
    def quality(self) -> Mapping[str, Any] | None:
        q = (self.run or {}).get("quality")
        return q if isinstance(q, Mapping) else None

    def count(self, key: str) -> Any:
        return (self.run or {}).get(key)


def _table_facets(facts: RunFacts, zone: str) -> dict[str, DatasetFacet]:
    if zone == RAW:
        columns = [*declared_columns(facts.spec), *((n, t, "") for n, t in RAW_META)]
    elif zone == QUARANTINE:
        columns = list(QUARANTINE_COLUMNS)
    else:
        columns = declared_columns(facts.spec)
    facets: dict[str, DatasetFacet] = {"schema": schema_facet(columns)}
    if facts.warehouse:
        facets["catalog"] = catalog_dataset.CatalogDatasetFacet(
            framework="iceberg",
            type="sql",
            name="sharehub",
            # never the catalog's metadata URI: it is the hub DB's URL, which may hold a password
            warehouseUri=lake_namespace(facts.warehouse),
        )
    return facets


def _input(name: DatasetName, facets: Mapping[str, DatasetFacet], **input_facets: Any) -> InputDataset:
    clean: dict[str, InputDatasetFacet] = {k: v for k, v in input_facets.items() if v is not None}
    return InputDataset(namespace=name.namespace, name=name.name, facets=dict(facets), inputFacets=clean)


def _output(name: DatasetName, facets: Mapping[str, DatasetFacet], rows: Any) -> OutputDataset:
    stats = _rows(rows)
    output_facets: dict[str, OutputDatasetFacet] = {} if stats is None else {"outputStatistics": stats}
    return OutputDataset(
        namespace=name.namespace, name=name.name, facets=dict(facets), outputFacets=output_facets
    )


def quarantine_rows(facts: RunFacts) -> Any:
    """Rows the run wrote to quarantine: the validate step records them in its quality summary
    (``quarantine_rows``: bad rows plus rows only superseded); older records: ``rows_quarantined``."""
    q = facts.quality
    if q is not None and q.get("quarantine_rows") is not None:
        return q["quarantine_rows"]
    return facts.count("rows_quarantined")


def step_lineage(step: str, facts: RunFacts, *, engine_version: str | None = None) -> Lineage:
    """The datasets (with schema, row counts, quality assertions) of one step of a sync run.

    Row counts are given only for what the run record says was written: a START (no run yet) or
    a step that failed before writing has none. ``engine_version`` adds a ``processing_engine``
    run facet (``sharehub``); under Airflow the provider gives its own."""
    if step not in STEPS:
        raise ValueError(f"unknown step {step!r} (steps: {', '.join(STEPS)})")
    status = facts.count("status")
    published = status == "success"
    source = _input(facts.source, {"schema": schema_facet(declared_columns(facts.spec))})
    raw_in_facets = _table_facets(facts, RAW)
    checks = assertions(facts.quality)
    dq = (
        data_quality_assertions_dataset.DataQualityAssertionsDatasetFacet(assertions=checks)
        if checks
        else None
    )
    raw_out = _output(
        facts.lake(RAW), raw_in_facets, facts.count("rows_read") if facts.count("raw_snapshot_id") else None
    )
    quarantine = _output(
        facts.lake(QUARANTINE),
        _table_facets(facts, QUARANTINE),
        quarantine_rows(facts) if facts.quality else None,
    )
    curated = _output(
        facts.lake(CURATED),
        _table_facets(facts, CURATED),
        facts.count("rows_published") if published else None,
    )
    out = Lineage()
    if step == "extract_land":
        out.inputs, out.outputs = [source], [raw_out]
    elif step == "validate":
        out.inputs, out.outputs = (
            [_input(facts.lake(RAW), raw_in_facets, dataQualityAssertions=dq)],
            [quarantine],
        )
    elif step == "publish":
        out.inputs = [
            _input(facts.lake(RAW), raw_in_facets),
            _input(facts.lake(QUARANTINE), _table_facets(facts, QUARANTINE)),
        ]
        out.outputs = [curated]
    else:  # the whole run: the checks are about the department's rows as received
        source = _input(
            facts.source, {"schema": schema_facet(declared_columns(facts.spec))}, dataQualityAssertions=dq
        )
        out.inputs, out.outputs = [source], [raw_out, quarantine, curated]
    if engine_version is not None:
        out.run_facets["processing_engine"] = processing_engine_run.ProcessingEngineRunFacet(
            version=engine_version, name="sharehub"
        )
    return out
