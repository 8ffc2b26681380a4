"""The directory's declarations as the plain arguments of the layers below: connector options,
quality rules, lookback windows. The only place that reads a ``DatasetSpec`` for them."""

from __future__ import annotations

import datetime as dt
from typing import Any

from catalog.directory.model import DatasetSpec
from catalog.runs import record as run_store
from sharehub.hub import Hub, SyncError
from sharehub.pipeline import intake


def quality_rules(spec: DatasetSpec, previous_row_count: int | None) -> Any:
    """Translate the directory's field rules into quality's plain rules.

    Every rule a field declares goes to quality as ``(field, kind, params)``; quality's rule
    registry knows the kinds (an unknown kind or bad parameters raise ``ValueError``)."""
    from quality.rules import ColumnRule, DatasetRules

    cols = [ColumnRule(f.name, kind, params) for f in spec.fields for kind, params in f.rules.declared()]
    return DatasetRules(
        key=list(spec.primary_key),
        columns=cols,
        max_volume_change=spec.quality.max_volume_change,
        previous_row_count=previous_row_count,
        duplicate_keys=spec.quality.duplicate_keys.value,
    )


def open_source(h: Hub, spec: DatasetSpec, *, full: bool) -> tuple[Any, Any]:
    """The connector for a dataset's source and the watermark it starts from."""
    from connectors import open_connector

    src = spec.source
    location = h.settings.connection(src.connection)
    if src.kind == "sql":
        watermark = (
            None
            if full or not src.cursor
            else run_store.from_json_value(run_store.get_watermark(h.engine, spec.code))
        )
        lookback = _parse_lookback(src.lookback)
        columns = [f.source_name or f.name for f in spec.fields] if src.table else None
        conn = open_connector(
            "sql",
            url=location,
            table=src.table,
            query=src.query,
            columns=columns,
            cursor=src.cursor,
            watermark=watermark,
            lookback=lookback,
            batch_size=h.settings.batch_size,
        )
        return conn, watermark
    seen = {} if full else run_store.ledger(h.engine, spec.code)
    conn = open_connector(
        "file",
        location=location,
        pattern=src.path,
        format=src.format,
        encoding=src.encoding,
        sheet=src.sheet,
        seen=seen,
        s3=h.settings.s3_options() if location.startswith("s3://") else None,
        batch_size=h.settings.batch_size,
        columns=intake.file_columns(spec),  # bad input: headers matched to the declared fields
    )
    return conn, None


def _parse_lookback(text: str | None) -> dt.timedelta | None:
    if not text:
        return None
    units = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}
    num, unit = text[:-1], text[-1]
    if unit not in units or not num.isdigit():
        raise SyncError(f"lookback {text!r} must look like 30m, 1h or 2d")
    return dt.timedelta(**{units[unit]: int(num)})
