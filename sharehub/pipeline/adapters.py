"""The directory's declarations as the plain arguments of the layers below: connector options
(stated by the source's model, from this run's context) and quality rules."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from catalog.directory.model import DatasetSpec
from catalog.runs import record as run_store
from sharehub.hub import Hub
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


@dataclass
class _RunContext:
    """What a source model may ask of this run (``catalog.directory.sources.SourceContext``).

    The watermark is read once, however often the model asks for it."""

    hub: Hub
    code: str
    location: str
    full: bool
    batch_size: int
    columns: dict[str, str]
    _watermark: list[Any] = field(default_factory=list)

    def watermark(self) -> Any:
        if not self._watermark:
            stored = run_store.get_watermark(self.hub.engine, self.code)
            self._watermark.append(run_store.from_json_value(stored))
        return self._watermark[0]

    def file_ledger(self) -> dict[str, Any]:
        return run_store.ledger(self.hub.engine, self.code)

    def s3_options(self) -> dict[str, Any] | None:
        return self.hub.settings.s3_options()


def open_source(h: Hub, spec: DatasetSpec, *, full: bool) -> tuple[Any, Any]:
    """The connector for a dataset's source and the watermark it starts from.

    Any registered source kind: its model states the connector's options."""
    from connectors import open_connector

    src = spec.source
    ctx = _RunContext(
        hub=h,
        code=spec.code,
        location=h.settings.connection(src.connection),
        full=full,
        batch_size=h.settings.batch_size,
        columns=intake.source_columns(spec),
    )
    watermark = src.start_watermark(ctx)
    conn = open_connector(src.kind, **src.connector_options(ctx))
    return conn, watermark
