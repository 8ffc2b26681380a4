"""What the sync steps do with bad input beyond row rules: reject kinds, file findings, policies.

``extract_land`` stores the connector's rejects in ``hub_run_rejects`` (source, row, field,
value, reason); the rule of a reject that is not a plain cast or read problem (a refused file,
a missing column, a formula without a value) travels in its reason as a ``[rule] `` prefix,
which ``validate`` reads back (:func:`stored_reason`, :func:`reason_of`). ``validate`` then
applies the dataset's policies on them (:func:`blocked_by_missing_columns`) and leaves rows
superseded under ``duplicate_keys: latest_file_wins`` out of the bad count (:func:`bad_count`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from typing import Any

from catalog.directory.model import DatasetSpec, MissingColumnPolicy

MISSING_COLUMN = "missing_column"
FILE = "file"
FORMULA = "formula"
SUPERSEDED = "superseded"
_DEFAULT_RULES = ("cast", "read")
_PREFIX = re.compile(r"^\[([a-z_]+)\] ")


def stored_reason(reject: Any) -> str:
    """A connector reject's reason as stored: ``[rule] reason`` unless the rule is the default."""
    kind = getattr(reject, "kind", None) or ("cast" if reject.field else "read")
    default = "cast" if reject.field else "read"
    return reject.reason if kind == default else f"[{kind}] {reject.reason}"


def reject_record(reject: Any) -> dict[str, Any]:
    """A connector Reject as a ``hub_run_rejects`` row (its run row id filled in later, if it landed)."""
    return {
        "rid": None,
        "source": reject.source,
        "row": reject.row,
        "field": reject.field,
        "value": reject.value,
        "reason": stored_reason(reject),
    }


def reason_of(stored: Mapping[str, Any]) -> dict[str, Any]:
    """The quarantine reason ``{field, rule, message}`` of a stored reject row."""
    field, value, text = stored["field"], stored["value"], str(stored["reason"])
    match = _PREFIX.match(text)
    rule = match.group(1) if match else ("cast" if field else "read")
    message = text[match.end() :] if match else text
    if rule == "cast" and value is not None and field:
        message = f"{field}: {value!r} {message}"
    elif rule == FORMULA and field:
        message = f"{field}: {message}"
    return {"field": field, "rule": rule, "message": message}


def bad_count(quarantine_rows: Iterable[Mapping[str, Any]]) -> int:
    """Quarantine rows that are bad: rows only superseded by a later file's copy are not."""
    n = 0
    for row in quarantine_rows:
        reasons = json.loads(row["reasons"]) if isinstance(row["reasons"], str) else row["reasons"]
        if any(r["rule"] != SUPERSEDED for r in reasons):
            n += 1
    return n


def blocked_by_missing_columns(spec: DatasetSpec, rejects: Iterable[Mapping[str, Any]]) -> str | None:
    """Why the run blocks on declared columns missing from its files, or None."""
    if spec.quality.missing_columns is not MissingColumnPolicy.BLOCK:
        return None
    missing = []
    for rj in rejects:
        if reason_of(rj)["rule"] == MISSING_COLUMN and rj["field"]:
            f = spec.field(rj["field"])
            column = f.source_name or f.name
            missing.append(f"{rj['source']}: declared column {column} (field {f.name}) is missing")
    if not missing:
        return None
    return "; ".join(missing) + " (quality.missing_columns is block)"


def file_findings(unlanded: Iterable[Mapping[str, Any]], limit: int = 100) -> list[dict[str, Any]]:
    """The file-level findings of a run (refused files, missing columns) for its quality record."""
    out = []
    for rj in unlanded:
        for reason in rj["reasons"]:
            if reason["rule"] in (FILE, MISSING_COLUMN):
                out.append({"source": rj["source"], "row": rj["row"], **reason})
    return out[:limit]


def file_notes(files: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """What the run's file list says that the department should hear but that is not an error."""
    out = []
    for f in files:
        if f.get("identical_to"):
            out.append(
                {
                    "source": f["name"],
                    "message": f"{f['name']} has the same bytes as {f['identical_to']} (sha256 "
                    f"{str(f.get('checksum', ''))[:12]}…): the same file dropped under two names, read once",
                }
            )
    return out


def result_missing_columns(spec: DatasetSpec, missing: Iterable[str]) -> list[dict[str, Any]]:
    """Findings (stored reject rows) for declared columns a source's result lacks (a SQL table or
    query; file connectors report their own, per file)."""
    label = spec.source.label
    out = []
    for name in missing:
        f = spec.field(name)
        reason = f"{label}: declared column {f.source_name or f.name} (field {f.name}) is not in the result"
        out.append(
            {
                "rid": None,
                "source": label,
                "row": 0,
                "field": f.name,
                "value": None,
                "reason": f"[{MISSING_COLUMN}] {reason}",
            }
        )
    return out


def source_columns(spec: DatasetSpec) -> dict[str, str]:
    """Declared field -> its column name at the source (file connectors match headers to it)."""
    return {f.name: f.source_name or f.name for f in spec.fields}


def normalisations(spec: DatasetSpec) -> dict[str, list[str]]:
    """Declared field -> its declared normalisations (only fields that have some)."""
    return {f.name: list(f.normalize) for f in spec.fields if f.normalize}


def file_entries(connector: Any) -> list[dict[str, Any]]:
    """The run's file list: name, checksum, rows and how each file was read."""
    return [
        {"name": f.name, "checksum": f.checksum, "rows": f.rows, **getattr(f, "notes", {})}
        for f in getattr(connector, "taken", [])
    ]
