"""Reading the access log: filtered, paged queries for apps, auditors and supervisors."""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection
from typing import Any

import sqlalchemy as sa

from catalog.clock import as_utc as _as_utc
from catalog.db import tables


def query(
    engine: sa.Engine,
    *,
    app_id: str | None = None,
    dataset_codes: Collection[str] | None = None,
    since: dt.datetime | None = None,
    until: dt.datetime | None = None,
    after_seq: int | None = None,
    limit: int = 100,
    decision: str | None = None,
) -> list[dict[str, Any]]:
    """Records in ascending seq (page on with ``after_seq`` = the last seq seen).

    ``since`` is inclusive, ``until`` exclusive. ``dataset_codes`` limits to records that
    concern those datasets (a department's view: calls on one of them, and subject views and
    certificate lists that consulted one); an empty collection matches nothing.
    """
    if limit < 1:
        raise ValueError("limit must be at least 1")
    log = tables.audit
    stmt = sa.select(log)
    if app_id is not None:
        stmt = stmt.where(log.c.app_id == app_id)
    if dataset_codes is not None:
        codes = sorted(set(dataset_codes))
        if not codes:
            return []
        idx = tables.audit_datasets
        stmt = stmt.where(
            sa.or_(
                log.c.dataset_code.in_(codes),
                log.c.seq.in_(sa.select(idx.c.seq).where(idx.c.dataset_code.in_(codes))),
            )
        )
    # SQLite compares stored text: bind the instant in UTC, as it was stored
    if since is not None:
        stmt = stmt.where(log.c.at >= _as_utc(since))
    if until is not None:
        stmt = stmt.where(log.c.at < _as_utc(until))
    if after_seq is not None:
        stmt = stmt.where(log.c.seq > after_seq)
    if decision is not None:
        stmt = stmt.where(log.c.decision == decision)
    with engine.connect() as conn:
        rows = conn.execute(stmt.order_by(log.c.seq).limit(limit)).all()
    out = []
    for row in rows:
        d = dict(row._mapping)
        d["at"] = _as_utc(row.at)
        out.append(d)
    return out

