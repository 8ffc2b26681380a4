"""The tamper-evident access log: one hash-chained record per API call, allowed or refused.

Every record carries ``seq`` (1, 2, 3, … with no gaps), ``prev_hash`` (the ``hash`` of the record
before it, :data:`GENESIS` for seq 1) and its own ``hash``. ``hub_audit_head`` holds one row
(``id`` = 1) with the last seq and hash; every appending transaction locks it first, so appends
from many threads, worker processes and replicas on one database form ONE chain.

Hash of a record (what an outside auditor re-implements)
-------------------------------------------------------
``hash = lowercase hex SHA-256 of  ASCII(prev_hash) || UTF-8(canonical JSON)``

* ``prev_hash``: the 64 lowercase hex characters of the previous record's hash (64 × ``"0"`` for
  seq 1), with nothing in between it and the JSON.
* canonical JSON: one object with these 19 keys, sorted by key (all keys are ASCII):
  ``action, actor_kind, app_id, at, case_number, certificate_id, dataset_code, decision,
  end_user, fields, method, path, reason, request_id, row_count, seq, staff, status, subject``,
  plus ``datasets`` and ``query`` **when they are not null** (added by migration 0002; records
  written before it, where both are null, hash exactly as they always did).
  No whitespace at all (separators ``,`` and ``:``); non-ASCII characters are written as
  themselves (UTF-8), not ``\\u`` escapes; the usual JSON escapes for ``"``, ``\\`` and control
  characters (``\\n``, ``\\r``, ``\\t``, ``\\b``, ``\\f``, else ``\\u00xx`` in lowercase hex).
  Absent values are ``null``. ``seq``, ``status`` and ``row_count`` are JSON integers;
  ``fields`` is ``null`` or an array of strings in stored order, ``datasets`` an object of
  dataset code -> rows returned from it (keys sorted like every object); ``at`` is the UTC
  time as ``YYYY-MM-DDTHH:MM:SS.ffffffZ`` (always six fractional digits, literal ``Z``).
  This is Python's ``json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False)``.

Example: ``sha256(b"000…000" + '{"action":"dataset.query",…,"seq":1,…}'.encode())``.

Before hashing, :func:`append` normalises a record to what the database stores: ``at`` in UTC,
strings cut to their column's length, NUL characters written as ``\\x00`` and unencodable
surrogates as ``\\udxxx`` escapes — so the hash always covers exactly the stored values.

What verify finds: any changed field (the hash no longer matches), a removed record (a gap in
seq) or tail (the head says more), a reordered pair (a record whose content hashes correctly at
another position), a record rewritten together with its hash (the next record's ``prev_hash``
breaks) and rows outside the head. A chain rewritten from some point to the end *and* its head
is only caught against an outside copy of the head: publish ``last_seq``/``last_hash`` from
:class:`VerifyReport` (``sharehub audit verify`` prints them) to somewhere the DB admin cannot
write. ``at`` is not required to increase: replicas' clocks differ a little.

Records past their retention leave the hub DB as a prefix of the chain, into archive files
(:mod:`catalog.audit.archive`); the kept log then starts after the newest archive's ``last_seq``,
its first ``prev_hash`` being that archive's ``last_hash``.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
from dataclasses import dataclass
from typing import Any

from catalog.clock import as_utc, iso_utc
from catalog.db import tables

GENESIS = "0" * 64
HEAD_ID = 1
ACTOR_KINDS = frozenset({"app", "staff", "anonymous"})
DECISIONS = frozenset({"allow", "deny"})


@dataclass
class AuditRecord:
    """One call as the API saw it: who, for what purpose, what was asked, what was decided."""

    at: dt.datetime
    request_id: str
    actor_kind: str  # app|staff|anonymous
    method: str
    path: str
    action: str
    decision: str  # allow|deny
    status: int  # HTTP status sent
    row_count: int = 0
    app_id: str | None = None
    staff: str | None = None
    end_user: str | None = None
    case_number: str | None = None
    dataset_code: str | None = None
    certificate_id: str | None = None
    subject: str | None = None
    fields: list[str] | None = None  # what the disclosure projection released
    reason: str | None = None  # the stable error code of a refusal
    datasets: dict[str, int] | None = None  # a multi-dataset call: dataset consulted -> rows from it
    query: str | None = None  # what a lookup asked for besides the subject (JSON text)


_FIELD_NAMES = tuple(f.name for f in dataclasses.fields(AuditRecord))


def record_of(row: Any) -> AuditRecord:
    """The record a ``hub_audit`` row holds (what its hash covers), read back from the DB."""
    values = {n: getattr(row, n) for n in _FIELD_NAMES}
    values["at"] = as_utc(row.at)
    values["fields"] = None if row.fields is None else list(row.fields)
    values["datasets"] = None if row.datasets is None else dict(row.datasets)
    return AuditRecord(**values)


_JSON_FIELDS = ("fields", "datasets")
_STR_FIELDS = tuple(
    f.name
    for f in dataclasses.fields(AuditRecord)
    if f.name not in {"at", "status", "row_count", *_JSON_FIELDS}
)
#: keys left out of the canonical JSON when null, so that older records keep their hashes
_OPTIONAL_KEYS = ("datasets", "query")


class AuditError(Exception):
    """The audit record could not be made durable; the call must not be answered with data."""


# ---- hashing -------------------------------------------------------------------------------


def hash_input(seq: int, rec: AuditRecord) -> str:
    """The canonical JSON text of a record at position ``seq`` (see the module docstring)."""
    doc: dict[str, Any] = {name: getattr(rec, name) for name in _FIELD_NAMES}
    doc["at"] = iso_utc(rec.at, "micros", what="audit time")
    doc["fields"] = None if rec.fields is None else list(rec.fields)
    doc["datasets"] = None if rec.datasets is None else dict(rec.datasets)
    for name in _OPTIONAL_KEYS:
        if doc[name] is None:
            del doc[name]
    doc["seq"] = seq
    return json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def record_hash(prev_hash: str, seq: int, rec: AuditRecord) -> str:
    """SHA-256 hex over ``prev_hash`` followed by the canonical JSON of ``seq`` and the record."""
    return hashlib.sha256(prev_hash.encode("ascii") + hash_input(seq, rec).encode("utf-8")).hexdigest()


def _clean_text(value: str, limit: int | None) -> str:
    # PostgreSQL text cannot hold NUL, and a lone surrogate cannot be encoded as UTF-8: either
    # would fail the whole batch, so both become visible escapes instead
    text = value.replace("\x00", "\\x00") if "\x00" in value else value
    if not text.isascii():  # ASCII text has no surrogates (the usual case: skip the round trip)
        text = text.encode("utf-8", "backslashreplace").decode("utf-8")
    return text[:limit] if limit is not None else text


def _column_length(name: str) -> int | None:
    return getattr(tables.audit.c[name].type, "length", None)


_LENGTHS = {name: _column_length(name) for name in _STR_FIELDS}


def normalise(rec: AuditRecord) -> AuditRecord:
    """The record as it will be stored (UTC time, cleaned strings); ValueError when malformed."""
    if not isinstance(rec.at, dt.datetime) or rec.at.tzinfo is None:
        raise ValueError("audit record: at must be a timezone-aware datetime")
    if rec.actor_kind not in ACTOR_KINDS:
        raise ValueError(
            f"audit record: actor_kind must be one of {sorted(ACTOR_KINDS)}, not {rec.actor_kind!r}"
        )
    if rec.decision not in DECISIONS:
        raise ValueError(f"audit record: decision must be allow or deny, not {rec.decision!r}")
    for name in ("status", "row_count"):
        value = getattr(rec, name)
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"audit record: {name} must be an int")
    changes: dict[str, Any] = {"at": rec.at.astimezone(dt.UTC)}
    for name in _STR_FIELDS:
        value = getattr(rec, name)
        if value is None:
            if name in {"request_id", "method", "path", "action"}:
                raise ValueError(f"audit record: {name} is required")
            continue
        if not isinstance(value, str):
            raise ValueError(f"audit record: {name} must be a string")
        changes[name] = _clean_text(value, _LENGTHS[name])
    if rec.fields is not None:
        if isinstance(rec.fields, str) or not all(isinstance(f, str) for f in rec.fields):
            raise ValueError("audit record: fields must be a list of strings")
        changes["fields"] = [_clean_text(f, None) for f in rec.fields]
    if rec.datasets is not None:
        counts = rec.datasets
        if not isinstance(counts, dict) or not all(
            isinstance(k, str) and isinstance(v, int) and not isinstance(v, bool) for k, v in counts.items()
        ):
            raise ValueError("audit record: datasets must map dataset codes to row counts")
        changes["datasets"] = {_clean_text(k, 64): v for k, v in rec.datasets.items()}
    return dataclasses.replace(rec, **changes)
