"""Read-outs of a dataset's runs: the quarantine (correction list) of a run."""

from __future__ import annotations

import json
from typing import Any

from catalog.runs import record as run_store
from sharehub.hub import hub
from sharehub.pipeline import run_filter
from sharehub.settings import Settings


def quarantine_rows(
    code: str, run_id: str | None = None, *, settings: Settings | None = None
) -> list[dict[str, Any]]:
    """The quarantined rows of one run (default: the dataset's latest run), ordered by source and row."""
    from lake import QUARANTINE

    h = hub(settings)
    if run_id is None:
        recent = run_store.recent_runs(h.engine, limit=1, dataset_code=code)
        if not recent:
            return []
        run_id = str(recent[0]["run_id"])
    if not h.lake.table_exists(QUARANTINE, code):
        return []
    table = h.lake.read(QUARANTINE, code, row_filter=run_filter(run_id))
    rows = [
        {
            "source": r["_source"],
            "row": r["_row"],
            "reasons": json.loads(r["reasons"]),
            "record": json.loads(r["record"]),
        }
        for r in table.to_pylist()
    ]
    return sorted(rows, key=lambda r: (str(r["source"]), r["row"] or 0))
