"""The Arrow schemas of a dataset's lake tables: raw (declared fields as text plus row metadata),
quarantine, and the declared (curated) schema."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from catalog.directory.model import DatasetSpec, FieldSpec

if TYPE_CHECKING:
    import pyarrow as pa

    from sharehub.hub import Hub

RID = "_rid"  # the row's id within a run (0..n-1), unique across the run's files
RUN_ID = "_run_id"
SOURCE = "_source"
ROW = "_row"
EXTRA = "_extra"
META = (RID, RUN_ID, SOURCE, ROW, EXTRA)


def arrow_type(f: FieldSpec) -> pa.DataType:
    """The Arrow type of a declared field."""
    import pyarrow as pa

    ps = f.decimal_precision_scale()
    if ps:
        return pa.decimal128(ps[0], ps[1])
    return {
        "string": pa.string(),
        "integer": pa.int64(),
        "float": pa.float64(),
        "boolean": pa.bool_(),
        "date": pa.date32(),
        "timestamp": pa.timestamp("us"),
    }[f.type]


def declared_schema(spec: DatasetSpec) -> pa.Schema:
    """The dataset's fields as an Arrow schema."""
    import pyarrow as pa

    return pa.schema([pa.field(f.name, arrow_type(f)) for f in spec.fields])


def raw_schema(spec: DatasetSpec) -> pa.Schema:
    """Schema of the raw zone: declared fields plus where each row came from."""
    import pyarrow as pa

    meta = [
        pa.field(RID, pa.int64()),
        pa.field(RUN_ID, pa.string()),
        pa.field(SOURCE, pa.string()),
        pa.field(ROW, pa.int64()),
        pa.field(EXTRA, pa.string()),
    ]
    return pa.schema([*declared_schema(spec), *meta])


def quarantine_schema() -> pa.Schema:
    """Schema of the quarantine zone: the correction list sent back to the department."""
    import pyarrow as pa

    return pa.schema(
        [
            pa.field(RUN_ID, pa.string()),
            pa.field(RID, pa.int64()),
            pa.field(SOURCE, pa.string()),
            pa.field(ROW, pa.int64()),
            pa.field("reasons", pa.string()),  # JSON list of {field, rule, message}
            pa.field("record", pa.string()),  # JSON object of the row as received
        ]
    )


def run_filter(run_id: str) -> Any:
    """Iceberg row filter for the rows of one run."""
    from pyiceberg.expressions import EqualTo

    return EqualTo(RUN_ID, run_id)  # type: ignore[call-arg,arg-type]


def run_rows(h: Hub, code: str, run_id: str, zone: str) -> pa.Table:
    """The rows one run wrote to a zone."""
    return h.lake.read(zone, code, row_filter=run_filter(run_id))
