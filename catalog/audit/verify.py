"""Verifying the access log: recompute the chain, find edited, deleted and reordered records.

After an archive run (:mod:`catalog.audit.archive`) the kept log starts where the newest
archive ends: verify checks that the archive rows form one continuous chain from genesis
(each ``prev_hash`` the ``last_hash`` before it), starts from the newest one's ``last_seq`` and
``last_hash``, and compares the rows with the newest ``audit.archive`` record of the chain,
which vouches for all of them (their SHA-256): records deleted without an archive row leave a
gap, an edited archive row no longer matches its voucher. The archived records themselves are
checked in their files (``sharehub audit verify-archive``).
"""

from __future__ import annotations

import json
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from catalog.audit.archive import ANCHOR_ACTION, archive_rows, rows_digest
from catalog.audit.chain import GENESIS, HEAD_ID, AuditRecord, record_hash, record_of
from catalog.audit.writer import dataset_index
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
    archived: int = 0  # records before the kept log, in archive files (checked by verify-archive)
    archives: int = 0


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

    def __init__(self, base_seq: int = 0, base_hash: str = GENESIS) -> None:
        self.problems: list[tuple[int, str]] = []
        self.checked = 0
        self.base_seq = base_seq  # where the kept log starts: after the newest archive
        self.last_seq = base_seq
        self.last_hash = base_hash
        self.voucher: Any = None  # the newest intact audit.archive record
        self.last_ok = True
        self.window: OrderedDict[int, _Suspect] = OrderedDict()
        self.searched = 0

    def add(self, seq: int, text: str) -> None:
        self.problems.append((seq, text))

    def row(self, row: Any) -> bool:
        """Check one record in order; True when its content hashes right at its position."""
        seq, prev_hash, stored = int(row.seq), str(row.prev_hash), str(row.hash)
        rec = record_of(row)
        content_ok = record_hash(prev_hash, seq, rec) == stored
        gap = seq != self.last_seq + 1
        if gap:
            missing = _seq_range(self.last_seq + 1, seq - 1)
            if self.last_seq == 0:
                self.add(self.last_seq + 1, f"{missing}: removed (the log starts at seq {seq})")
            elif self.last_seq == self.base_seq and self.checked == 0:
                self.add(
                    self.last_seq + 1,
                    f"{missing}: removed without an archive (the archives end at seq {self.base_seq}, "
                    f"the log starts at seq {seq})",
                )
            else:
                self.add(self.last_seq + 1, f"{missing}: removed (chain jumps from {self.last_seq} to {seq})")
        if not content_ok:
            self.suspect(_Suspect(seq, rec, prev_hash, stored))
        elif not gap and self.last_ok and prev_hash != self.last_hash:
            if seq == 1:
                self.add(seq, "seq 1: prev_hash is not the genesis hash")
            elif self.checked == 0 and self.base_seq:
                self.add(
                    seq,
                    f"seq {seq}: prev_hash does not match the last_hash of the archive ending at seq "
                    f"{seq - 1} (the archive row was edited, or seq {seq - 1} was rewritten)",
                )
            else:
                self.add(
                    seq,
                    f"seq {seq}: prev_hash does not match the hash of seq {seq - 1} "
                    f"(seq {seq - 1} was rewritten with a new hash, or a record was inserted)",
                )
        if content_ok and row.action == ANCHOR_ACTION:
            self.voucher = row
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


def _batches(conn: sa.Connection, after: int, upto: int | None, batch: int) -> Iterator[list[Any]]:
    """The log after seq ``after`` in order, ``batch`` rows per query (keyset paging: bounded memory)."""
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


def _check_archives(rows: list[Any]) -> list[tuple[int, str]]:
    """The archive rows as one chain from genesis: each starts where the one before ended."""
    problems: list[tuple[int, str]] = []
    last_seq, last_hash = 0, GENESIS
    for r in rows:
        first, last = int(r.first_seq), int(r.last_seq)
        name = f"archive {r.id} (seq {first}-{last})"
        if first != last_seq + 1:
            what = "overlaps the one before" if first <= last_seq else "leaves a gap after the one before"
            problems.append((first, f"{name}: {what} (which ends at seq {last_seq})"))
        if r.prev_hash != last_hash:
            before = (
                "the genesis hash" if last_seq == 0 else f"the last_hash of the archive to seq {last_seq}"
            )
            problems.append((first, f"{name}: prev_hash is not {before}"))
        if last < first or int(r.records) != last - first + 1:
            problems.append((first, f"{name}: says {r.records} records for seq {first}-{last}"))
        last_seq, last_hash = max(last, last_seq), str(r.last_hash)
    return problems


def _check_voucher(c: _Checker, rows: list[Any]) -> None:
    """The archive rows against the newest ``audit.archive`` record, which vouches for them."""
    v = c.voucher
    if v is None:
        if rows:
            c.add(
                int(rows[-1].last_seq),
                f"no audit.archive record in the log vouches for the {len(rows)} archive row(s) "
                "(the rows were made up, or that record was removed)",
            )
        return
    try:
        said = json.loads(v.query)
        vouched_last, count = int(said["last_seq"]), int(said["archives"])
        digest = str(said["archives_sha256"])
    except (TypeError, ValueError, KeyError):
        c.add(int(v.seq), f"seq {v.seq}: an audit.archive record without its voucher")
        return
    newest = int(rows[-1].last_seq) if rows else 0
    covered = [r for r in rows if int(r.last_seq) <= vouched_last]
    if newest != vouched_last:
        c.add(
            int(v.seq),
            f"archive rows end at seq {newest}, the newest audit.archive record (seq {v.seq}) says "
            f"{vouched_last}: an archive row was added or removed outside `sharehub audit archive`",
        )
    elif len(covered) != count or rows_digest(covered) != digest:
        c.add(
            int(v.seq),
            f"the archive rows do not match what the audit.archive record at seq {v.seq} vouches for "
            f"({len(covered)} rows, it says {count}): an archive row was edited, added or removed",
        )


def verify(engine: sa.Engine, *, batch: int = 10_000) -> VerifyReport:
    """Check the archive rows, the kept chain and the head; every problem names its record.

    Records appended while verify runs are not checked (it checks up to the head it read first).
    An archive run committed while verify reads makes it start again (at most twice).
    """
    if batch < 1:
        raise ValueError("batch must be at least 1")
    for _attempt in range(3):
        report, moved = _verify_once(engine, batch)
        if not moved:
            break
    return report


def _archives_state(conn: sa.Connection) -> tuple[int, int]:
    t = tables.audit_archives
    n, top = conn.execute(sa.select(sa.func.count(), sa.func.max(t.c.last_seq))).one()
    return int(n), int(top or 0)


def _verify_once(engine: sa.Engine, batch: int) -> tuple[VerifyReport, bool]:
    head_t, log = tables.audit_head, tables.audit
    with engine.connect() as conn:
        archives = archive_rows(conn)
        base = archives[-1] if archives else None
        c = _Checker(0, GENESIS) if base is None else _Checker(int(base.last_seq), str(base.last_hash))
        c.problems.extend(_check_archives(archives))
        if base is not None:
            stale = conn.execute(sa.select(sa.func.count()).where(log.c.seq <= c.base_seq)).scalar()
            if stale:
                c.add(
                    c.base_seq,
                    f"{stale} record(s) at or before seq {c.base_seq} are still in the log though archived",
                )
            idx = tables.audit_datasets
            stale = conn.execute(sa.select(sa.func.count()).where(idx.c.seq <= c.base_seq)).scalar()
            if stale:
                c.add(
                    c.base_seq,
                    f"{stale} dataset index row(s) at or before seq {c.base_seq} remain though archived",
                )
        head = conn.execute(sa.select(head_t.c.seq, head_t.c.hash).where(head_t.c.id == HEAD_ID)).first()
        head_seq = None if head is None else int(head.seq)
        first = c.base_seq + 1
        for rows in _batches(conn, c.base_seq, head_seq, batch):
            intact = [row for row in rows if c.row(row)]
            _check_index(conn, c, intact, first, int(rows[-1].seq))
            first = int(rows[-1].seq) + 1
        c.finish()
        _check_voucher(c, archives)
        if head is None:
            if c.checked or archives:
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
        moved = _archives_state(conn) != (len(archives), 0 if base is None else int(base.last_seq))
    problems = [text for _seq, text in sorted(c.problems, key=lambda p: p[0])]
    report = VerifyReport(
        ok=not problems,
        checked=c.checked,
        problems=problems,
        last_seq=c.last_seq,
        last_hash=c.last_hash,
        archived=sum(int(r.records) for r in archives),
        archives=len(archives),
    )
    return report, moved
