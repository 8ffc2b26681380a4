"""Directory search: full-text over names, summaries and field labels, with facets and sorts.

The index is built in memory from ``hub_datasets`` (the stored spec JSON, not re-validated: it
was validated when it was published) and rebuilt when the directory changes — a cheap
``count, max(published_at)`` query per search tells. Freshness (last successful sync) and use
(audited calls per dataset: on it, or consulting it in a subject view) change without a
publish, so they are renewed every :data:`STATS_TTL_S` seconds, by one request while the
others use the figures they have. A search over 5,000 datasets is a scan of lower-cased text in
memory: milliseconds (``make bench`` measures the page).

Who sees what: the public (signed out) sees open datasets only; staff see the whole directory.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

from catalog.clock import as_utc
from catalog.db import tables

STATS_TTL_S = 60.0
PAGE_SIZE = 20
FACETS = ("department", "category", "share_type", "open", "grade", "update_cycle")
SORTS = ("name", "fresh", "use")


@dataclass(frozen=True)
class Entry:
    """One dataset as search sees it."""

    code: str
    name: str
    summary: str
    category: str
    department: str
    department_name: str
    share_type: str
    open: bool
    grade: str
    update_cycle: str
    version: int
    published_at: dt.datetime
    labels: tuple[str, ...]
    text: str  # lower-cased haystack

    def facet(self, name: str) -> str:
        if name == "open":
            return "open" if self.open else "closed"
        return str(getattr(self, name))


@dataclass(frozen=True)
class Hit:
    entry: Entry
    last_success: dt.datetime | None
    uses: int


@dataclass(frozen=True)
class Results:
    total: int
    page: int
    pages: int
    hits: list[Hit]
    facets: dict[str, list[tuple[str, int]]]  # facet -> (value, count) in the matched set


@dataclass
class _State:
    stamp: tuple[Any, ...] | None = None
    entries: list[Entry] = field(default_factory=list)
    departments: dict[str, str] = field(default_factory=dict)
    stats_at: float = 0.0
    last_success: dict[str, dt.datetime] = field(default_factory=dict)
    uses: dict[str, int] = field(default_factory=dict)


class DirectoryIndex:
    """The search index of one hub DB (thread-safe; one per process and engine)."""

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine
        self._state = _State()
        self._lock = threading.Lock()
        self._renewing = False

    def _stamp(self, conn: sa.Connection) -> tuple[Any, ...]:
        d = tables.datasets
        row = conn.execute(sa.select(sa.func.count(), sa.func.max(d.c.published_at))).one()
        return (row[0], row[1])

    def refresh(self, *, now: float | None = None) -> _State:
        """The current index, rebuilt when the directory changed. Stale stats are renewed by
        one request while the others go on with the old figures (only the very first build
        waits for them)."""
        now = time.monotonic() if now is None else now
        with self._lock:
            state = self._state
            with self.engine.connect() as conn:
                stamp = self._stamp(conn)
                if stamp != state.stamp:
                    fresh = _State(stamp=stamp)
                    fresh.entries, fresh.departments = _load_entries(conn)
                    fresh.last_success, fresh.uses, fresh.stats_at = (
                        state.last_success,
                        state.uses,
                        state.stats_at,
                    )
                    state = self._state = fresh
                first = state.stats_at == 0.0
                renew = (first or now - state.stats_at > STATS_TTL_S) and not self._renewing
                if first:
                    state.last_success, state.uses, state.stats_at = _last_success(conn), _uses(conn), now
                    renew = False
                elif renew:
                    self._renewing = True
        if renew:
            try:
                with self.engine.connect() as conn:
                    last, uses = _last_success(conn), _uses(conn)
                with self._lock:
                    self._state.last_success, self._state.uses, self._state.stats_at = last, uses, now
            finally:
                self._renewing = False
        return self._state

    def search(
        self,
        *,
        query: str = "",
        filters: dict[str, str] | None = None,
        sort: str = "name",
        page: int = 1,
        public: bool = True,
        page_size: int = PAGE_SIZE,
    ) -> Results:
        """One page of results, the facet counts of everything that matched, the total."""
        state = self.refresh()
        terms = [t for t in query.casefold().split() if t][:10]
        wanted = {k: v for k, v in (filters or {}).items() if k in FACETS and v}
        matched: list[Entry] = []
        facet_counts: dict[str, Counter[str]] = {f: Counter() for f in FACETS}
        for e in state.entries:
            if public and not e.open:
                continue
            if terms and not all(t in e.text for t in terms):
                continue
            # a facet's counts ignore that facet's own filter, so the reader can switch values
            misses = [f for f, v in wanted.items() if e.facet(f) != v]
            if len(misses) > 1:
                continue
            for f in FACETS:
                if not misses or misses == [f]:
                    facet_counts[f][e.facet(f)] += 1
            if not misses:
                matched.append(e)
        matched = _sorted(matched, sort, state)
        pages = max(1, -(-len(matched) // page_size))
        page = min(max(1, page), pages)
        chunk = matched[(page - 1) * page_size : page * page_size]
        hits = [Hit(e, state.last_success.get(e.code), state.uses.get(e.code, 0)) for e in chunk]
        facets = {f: sorted(c.items(), key=lambda kv: (-kv[1], kv[0])) for f, c in facet_counts.items()}
        return Results(total=len(matched), page=page, pages=pages, hits=hits, facets=facets)

    def department_names(self) -> dict[str, str]:
        return dict(self.refresh().departments)


def _sorted(entries: list[Entry], sort: str, state: _State) -> list[Entry]:
    if sort == "fresh":
        epoch = dt.datetime.min.replace(tzinfo=dt.UTC)
        return sorted(entries, key=lambda e: (state.last_success.get(e.code, epoch), e.code), reverse=True)
    if sort == "use":
        return sorted(entries, key=lambda e: (-state.uses.get(e.code, 0), e.code))
    return sorted(entries, key=lambda e: (e.name, e.code))


def _labels(fields: Iterable[dict[str, Any]]) -> tuple[str, ...]:
    return tuple(str(f.get("label", "")) for f in fields)


def _load_entries(conn: sa.Connection) -> tuple[list[Entry], dict[str, str]]:
    depts = {
        r.code: r.name for r in conn.execute(sa.select(tables.departments.c.code, tables.departments.c.name))
    }
    out = []
    d = tables.datasets
    for row in conn.execute(
        sa.select(d.c.code, d.c.department_code, d.c.version, d.c.published_at, d.c.spec)
    ):
        spec: dict[str, Any] = row.spec
        fields: Sequence[dict[str, Any]] = spec.get("fields", [])
        labels = _labels(fields)
        dept_name = depts.get(row.department_code, row.department_code)
        text = " ".join(
            [
                row.code,
                str(spec.get("name", "")),
                str(spec.get("summary", "")),
                str(spec.get("category", "")),
                dept_name,
                *labels,
                *(str(f.get("name", "")) for f in fields),
            ]
        ).casefold()
        out.append(
            Entry(
                code=row.code,
                name=str(spec.get("name", "")),
                summary=str(spec.get("summary", "")),
                category=str(spec.get("category", "")),
                department=row.department_code,
                department_name=dept_name,
                share_type=str(spec.get("share", {}).get("type", "")),
                open=bool(spec.get("open", {}).get("open", False)),
                grade=str(spec.get("grade", "")),
                update_cycle=str(spec.get("update_cycle", "")),
                version=row.version,
                published_at=as_utc(row.published_at),
                labels=labels,
                text=text,
            )
        )
    return out, depts


def _last_success(conn: sa.Connection) -> dict[str, dt.datetime]:
    r = tables.sync_runs
    q = sa.select(r.c.dataset_code, sa.func.max(r.c.finished_at)).where(r.c.status == "success")
    return {code: as_utc(at) for code, at in conn.execute(q.group_by(r.c.dataset_code)) if at is not None}


def _uses(conn: sa.Connection) -> dict[str, int]:
    """Audited calls per dataset: calls on it, and multi-dataset calls that consulted it."""
    log, idx = tables.audit, tables.audit_datasets
    out: dict[str, int] = {}
    q1 = sa.select(log.c.dataset_code, sa.func.count()).where(log.c.dataset_code.is_not(None))
    for code, n in conn.execute(q1.group_by(log.c.dataset_code)):
        out[code] = int(n)
    for code, n in conn.execute(sa.select(idx.c.dataset_code, sa.func.count()).group_by(idx.c.dataset_code)):
        out[code] = out.get(code, 0) + int(n)
    return out


_INDEXES: dict[int, DirectoryIndex] = {}
_INDEXES_LOCK = threading.Lock()


def index_for(engine: sa.Engine) -> DirectoryIndex:
    """The process's index of ``engine``'s directory."""
    with _INDEXES_LOCK:
        idx = _INDEXES.get(id(engine))
        if idx is None or idx.engine is not engine:
            idx = _INDEXES[id(engine)] = DirectoryIndex(engine)
        return idx
