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
    end_user: str | None = None,
    case_number: str | None = None,
    before_seq: int | None = None,
    newest_first: bool = False,
) -> list[dict[str, Any]]:
    """Records in ascending seq (page on with ``after_seq`` = the last seq seen), or newest
    first with ``newest_first`` (page on with ``before_seq``).

    ``since`` is inclusive, ``until`` exclusive. ``dataset_codes`` limits to records that
    concern those datasets (a department's view: calls on one of them, and subject views and
    certificate lists that consulted one); an empty collection matches nothing.
    """
    if limit < 1:
        raise ValueError("limit must be at least 1")
    log = tables.audit
    stmt = _filtered(
        sa.select(log),
        app_id=app_id,
        dataset_codes=dataset_codes,
        since=since,
        until=until,
        decision=decision,
        end_user=end_user,
        case_number=case_number,
    )
    if stmt is None:
        return []
    if after_seq is not None:
        stmt = stmt.where(log.c.seq > after_seq)
    if before_seq is not None:
        stmt = stmt.where(log.c.seq < before_seq)
    order = log.c.seq.desc() if newest_first else log.c.seq
    with engine.connect() as conn:
        rows = conn.execute(stmt.order_by(order).limit(limit)).all()
    out = []
    for row in rows:
        d = dict(row._mapping)
        d["at"] = _as_utc(row.at)
        out.append(d)
    return out


def _filtered(
    stmt: sa.Select[Any],
    *,
    app_id: str | None,
    dataset_codes: Collection[str] | None,
    since: dt.datetime | None,
    until: dt.datetime | None,
    decision: str | None,
    end_user: str | None,
    case_number: str | None,
) -> sa.Select[Any] | None:
    """``stmt`` with the filters; None when they can match nothing."""
    log = tables.audit
    if app_id is not None:
        stmt = stmt.where(log.c.app_id == app_id)
    if dataset_codes is not None:
        codes = sorted(set(dataset_codes))
        if not codes:
            return None
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
    if decision is not None:
        stmt = stmt.where(log.c.decision == decision)
    if end_user is not None:
        stmt = stmt.where(log.c.end_user == end_user)
    if case_number is not None:
        stmt = stmt.where(log.c.case_number == case_number)
    return stmt


def daily_totals(
    engine: sa.Engine,
    *,
    since: dt.datetime,
    until: dt.datetime,
    app_id: str | None = None,
    dataset_codes: Collection[str] | None = None,
    decision: str | None = None,
    end_user: str | None = None,
    case_number: str | None = None,
) -> list[tuple[str, str | None, int]]:
    """Calls per day (Beijing time, ``YYYY-MM-DD``) and app, for the same filters as :func:`query`."""
    log = tables.audit
    if engine.dialect.name == "postgresql":
        day: Any = sa.func.to_char(sa.func.timezone("Asia/Shanghai", log.c.at), "YYYY-MM-DD")
    else:  # SQLite keeps UTC text; China has had no daylight saving time since 1991
        day = sa.func.strftime("%Y-%m-%d", log.c.at, "+8 hours")
    stmt = _filtered(
        sa.select(day.label("day"), log.c.app_id, sa.func.count().label("n")),
        app_id=app_id,
        dataset_codes=dataset_codes,
        since=since,
        until=until,
        decision=decision,
        end_user=end_user,
        case_number=case_number,
    )
    if stmt is None:
        return []
    stmt = stmt.group_by(day, log.c.app_id).order_by(day, log.c.app_id)
    with engine.connect() as conn:
        return [(str(r.day), r.app_id, int(r.n)) for r in conn.execute(stmt)]


def head(engine: sa.Engine) -> tuple[int, str] | None:
    """The chain's last sequence number and hash, or None for an empty log."""
    with engine.connect() as conn:
        row = conn.execute(sa.select(tables.audit_head.c.seq, tables.audit_head.c.hash)).first()
    return (int(row.seq), str(row.hash)) if row is not None else None
