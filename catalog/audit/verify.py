"""Verifying the access log: recompute the chain, find edited, deleted and reordered records."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from catalog.audit.chain import _FIELD_NAMES, GENESIS, HEAD_ID, AuditRecord, record_hash
from catalog.audit.writer import dataset_index
from catalog.clock import as_utc as _as_utc
from catalog.db import tables

# how far back verify looks for the partner of a record that hashes wrong (a reorder), and after
# how many such records it stops looking: a mass edit then costs one hash per row, not 2 × window
_REORDER_WINDOW = 32


_REORDER_SEARCH_LIMIT = 10_000


@dataclass
class VerifyReport:
    """The outcome of :func:`verify`; each problem names the record(s) by seq."""

    ok: bool
    checked: int
    problems: list[str]
    last_seq: int = 0  # the verified tip: keep a copy outside the DB to catch a rewritten tail
    last_hash: str = GENESIS


def _record_of(row: Any) -> AuditRecord:
    values = {n: getattr(row, n) for n in _FIELD_NAMES}
    values["at"] = _as_utc(row.at)
    values["fields"] = None if row.fields is None else list(row.fields)
    values["datasets"] = None if row.datasets is None else dict(row.datasets)
    return AuditRecord(**values)


@dataclass
class _Suspect:
    """A record whose hash does not match its content at its own seq."""

    seq: int
    rec: AuditRecord
    prev_hash: str
    hash: str
    belongs_at: int | None = None  # the seq whose place its content fits
    reported: bool = False


def _belongs(x: _Suspect, y: _Suspect) -> bool:
    """Whether x's content belongs at y's position: its whole row moved, or only its content."""
    return (
        record_hash(x.prev_hash, y.seq, x.rec) == x.hash or record_hash(y.prev_hash, y.seq, x.rec) == y.hash
    )


def _seq_range(first: int, last: int) -> str:
    return f"seq {first}" if first == last else f"seq {first}-{last}"


class _Checker:
    """Walks the log in seq order holding one batch plus a small window of suspects."""

    def __init__(self) -> None:
        self.problems: list[tuple[int, str]] = []
        self.checked = 0
        self.last_seq = 0
        self.last_hash = GENESIS
        self.last_ok = True
        self.window: OrderedDict[int, _Suspect] = OrderedDict()
        self.searched = 0

    def add(self, seq: int, text: str) -> None:
        self.problems.append((seq, text))

    def row(self, row: Any) -> bool:
        """Check one record in order; True when its content hashes right at its position."""
        seq, prev_hash, stored = int(row.seq), str(row.prev_hash), str(row.hash)
        rec = _record_of(row)
        content_ok = record_hash(prev_hash, seq, rec) == stored
        gap = seq != self.last_seq + 1
        if gap:
            missing = _seq_range(self.last_seq + 1, seq - 1)
            if self.last_seq == 0:
                self.add(self.last_seq + 1, f"{missing}: removed (the log starts at seq {seq})")
            else:
                self.add(self.last_seq + 1, f"{missing}: removed (chain jumps from {self.last_seq} to {seq})")
        if not content_ok:
            self.suspect(_Suspect(seq, rec, prev_hash, stored))
        elif not gap and self.last_ok and prev_hash != self.last_hash:
            if seq == 1:
                self.add(seq, "seq 1: prev_hash is not the genesis hash")
            else:
                self.add(
                    seq,
                    f"seq {seq}: prev_hash does not match the hash of seq {seq - 1} "
                    f"(seq {seq - 1} was rewritten with a new hash, or a record was inserted)",
                )
        self.checked += 1
        self.last_seq, self.last_hash, self.last_ok = seq, stored, content_ok
        return content_ok

    def suspect(self, new: _Suspect) -> None:
        if self.searched < _REORDER_SEARCH_LIMIT:
            self.searched += 1
            for old in reversed(self.window.values()):
                if new.belongs_at is None and _belongs(new, old):
                    new.belongs_at = old.seq
                if old.belongs_at is None and _belongs(old, new):
                    old.belongs_at = new.seq
        self.window[new.seq] = new
        while len(self.window) > _REORDER_WINDOW:
            self.settle(self.window.popitem(last=False)[1])

    def settle(self, s: _Suspect) -> None:
        # every partner of s arrived while s was in the window, so its matches are complete
        if s.reported:
            return
        partner = self.window.get(s.belongs_at) if s.belongs_at is not None else None
        if partner is not None and partner.belongs_at == s.seq:
            partner.reported = True
            self.add(s.seq, f"seq {s.seq} and {partner.seq}: reordered (each holds the other's record)")
        elif s.belongs_at is not None:
            self.add(s.seq, f"seq {s.seq}: reordered (holds the record that belongs at seq {s.belongs_at})")
        else:
            self.add(s.seq, f"seq {s.seq}: changed (hash does not match its content)")

    def finish(self) -> None:
        while self.window:
            self.settle(self.window.popitem(last=False)[1])


def _batches(conn: sa.Connection, upto: int | None, batch: int) -> Iterator[list[Any]]:
    """The log in seq order, ``batch`` rows per query (keyset paging: bounded memory)."""
    after = 0
    while True:
        stmt = sa.select(tables.audit).where(tables.audit.c.seq > after)
        if upto is not None:
            stmt = stmt.where(tables.audit.c.seq <= upto)
        rows = list(conn.execute(stmt.order_by(tables.audit.c.seq).limit(batch)).all())
        if rows:
            yield rows
        if len(rows) < batch:
            return
        after = int(rows[-1].seq)


def _check_index(conn: sa.Connection, c: _Checker, rows: list[Any], first: int, last: int) -> None:
    """Compare ``hub_audit_datasets`` with what the intact records among seqs ``first``..``last``
    say (records that are removed, changed or moved are reported by the chain check already).

    The index is derived, not hashed; a row removed from it would hide a call from a
    department's auditor, so verify checks it against the (hashed) records."""
    if not rows:
        return
    intact = {int(r.seq) for r in rows}
    idx = tables.audit_datasets
    expected = {
        (e["dataset_code"], e["seq"])
        for e in dataset_index([{"datasets": r.datasets, "seq": r.seq} for r in rows])
    }
    found = {
        (str(code), int(seq))
        for code, seq in conn.execute(
            sa.select(idx.c.dataset_code, idx.c.seq).where(idx.c.seq >= first, idx.c.seq <= last)
        )
        if int(seq) in intact
    }
    for code, seq in sorted(expected - found, key=lambda e: e[1]):
        c.add(seq, f"seq {seq}: missing from the dataset index under {code} (hidden from its auditors)")
    for code, seq in sorted(found - expected, key=lambda e: e[1]):
        c.add(seq, f"seq {seq}: listed in the dataset index under {code}, which the record does not name")


def verify(engine: sa.Engine, *, batch: int = 10_000) -> VerifyReport:
    """Check the whole chain and the head; every problem names the record it is about.

    Records appended while verify runs are not checked (it checks up to the head it read first).
    """
    if batch < 1:
        raise ValueError("batch must be at least 1")
    head_t, log = tables.audit_head, tables.audit
    c = _Checker()
    with engine.connect() as conn:
        head = conn.execute(sa.select(head_t.c.seq, head_t.c.hash).where(head_t.c.id == HEAD_ID)).first()
        head_seq = None if head is None else int(head.seq)
        first = 1
        for rows in _batches(conn, head_seq, batch):
            intact = [row for row in rows if c.row(row)]
            _check_index(conn, c, intact, first, int(rows[-1].seq))
            first = int(rows[-1].seq) + 1
        c.finish()
        if head is None:
            if c.checked:
                c.add(c.last_seq + 1, f"head row is missing (the log has {c.checked} records)")
        elif head_seq is not None and head_seq > c.last_seq:
            c.add(c.last_seq + 1, f"tail removed: head says last seq {head_seq}, log ends at {c.last_seq}")
        elif head.hash != c.last_hash and c.last_ok:
            c.add(
                c.last_seq, f"seq {c.last_seq}: hash does not match the head (the last record was rewritten)"
            )
        if head is not None:
            # max first, then the head: a concurrent append commits both together, so a row past
            # the head we read afterwards was not written by an append
            top = conn.execute(sa.select(sa.func.max(log.c.seq))).scalar()
            now_head = conn.execute(sa.select(head_t.c.seq).where(head_t.c.id == HEAD_ID)).scalar()
            if top is not None and now_head is not None and int(top) > int(now_head):
                extra = conn.execute(sa.select(sa.func.count()).where(log.c.seq > now_head)).scalar()
                c.add(
                    int(now_head) + 1,
                    f"{extra} record(s) after the head (head says last seq {now_head}, log has seq {top}): "
                    "not appended through the chain",
                )
    problems = [text for _seq, text in sorted(c.problems, key=lambda p: p[0])]
    return VerifyReport(
        ok=not problems, checked=c.checked, problems=problems, last_seq=c.last_seq, last_hash=c.last_hash
    )
