"""Audit retention (日志留存): the oldest records, once past their retention, leave the hub DB for
an archive file without breaking the chain.

A record's retention is the longest ``audit_retention_days`` of the grade policy among the
datasets it concerns (``dataset_code`` and the keys of ``datasets``). A dataset's grade is the
highest it ever had (its current row and every published version): a record written while a
dataset was core stays core's time even after the grade was lowered. A code the directory does
not know counts as the longest retention of any grade; a record about no dataset has the
general grade's. The figure is a minimum: nothing is archived before it.

:func:`archive` moves the **prefix** of the chain (by seq, after the newest archive) whose
records are all older than ``before`` *and* past their retention. It

1. walks the prefix, recomputing every hash (a damaged chain is not archived: run verify);
2. writes it to ``DIR/hub-audit-<first>-<last>-<sha256[:12]>.jsonl.gz`` (a header line, then one line per
   record with every column), through a temporary file that is fsynced, renamed and read back
   (the whole chain rechecked from the file, its SHA-256 taken);
3. in ONE transaction inserts the ``hub_audit_archives`` row, deletes the records and their
   ``hub_audit_datasets`` rows, and appends an ``audit.archive`` record to the chain that
   vouches for every archive row (their SHA-256 in ``query``), so that an edited or removed
   archive row is found by verify.

A crash before the commit leaves the DB as it was and a file no archive row names: a rerun
writes the same file again (replacing it) or a longer one; :func:`verify_file` calls such a
file a stray. Two archive runs at once: the second finds the newest archive moved and stops.

The file (what an outside auditor reads): gzip of UTF-8 lines, each a JSON object. The first is
the header ``{"format": "sharehub-audit-archive/1", "first_seq", "last_seq", "prev_hash",
"last_hash", "records", "index_rows", "cutoff", "created_at"}``; then one record per line,
in seq order, with every column of ``hub_audit`` (``at`` as ``YYYY-MM-DDTHH:MM:SS.ffffffZ``,
``fields`` and ``datasets`` as JSON, ``seq``, ``prev_hash``, ``hash``). Each record's hash is
recomputed as ``catalog/audit/chain.py`` says; the first record's ``prev_hash`` is the header's.
"""

from __future__ import annotations

import datetime as dt
import gzip
import hashlib
import json
import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from catalog.audit.chain import _FIELD_NAMES, GENESIS, HEAD_ID, AuditRecord, normalise, record_hash, record_of
from catalog.audit.writer import _append_locked
from catalog.clock import as_utc, iso_utc, utc_now
from catalog.db import tables
from catalog.directory.grades import GradePolicy
from catalog.directory.model import Grade

FORMAT = "sharehub-audit-archive/1"
ANCHOR_ACTION = "audit.archive"
#: records per archive run unless told otherwise: bounds the file and the deleting transaction
MAX_RECORDS = 1_000_000
_BATCH = 5_000
_PG_LOCK_KEY = 0x5E_A4_C1_17  # pg_advisory_xact_lock: one archive run at a time


class ArchiveError(Exception):
    """The archive run was refused or stopped; the hub DB is as it was."""


class ArchiveTooSoon(ArchiveError):
    """``before`` is younger than the shortest retention: nothing may be archived up to it."""


# ---- retention -----------------------------------------------------------------------------


_GRADE_VALUES = frozenset(g.value for g in Grade)


class Retention:
    """How long each record must stay, from the grade policy and the directory's grades."""

    def __init__(self, conn: sa.Connection, policy: GradePolicy) -> None:
        self.policy = policy
        days = {g: policy[g].audit_retention_days for g in Grade}
        self.longest = max(days.values())
        self.shortest = min(days.values())
        self.general = days[Grade.GENERAL]
        self.by_code: dict[str, tuple[int, str]] = {}
        ds, versions = tables.datasets, tables.dataset_versions
        grades: dict[str, set[str]] = {}
        for code, grade in conn.execute(sa.select(ds.c.code, ds.c.grade)):
            grades.setdefault(str(code), set()).add(str(grade))
        for code, spec in conn.execute(sa.select(versions.c.code, versions.c.spec)):
            grade = spec.get("grade") if isinstance(spec, dict) else None
            grades.setdefault(str(code), set()).add(str(grade or Grade.GENERAL.value))
        for code, seen in grades.items():
            known = [Grade(g) for g in seen if g in _GRADE_VALUES]
            if len(known) < len(seen) or not known:
                self.by_code[code] = (self.longest, "a grade the policy does not know")
                continue
            top = max(known, key=lambda g: days[g])
            self.by_code[code] = (days[top], f"grade {top.value}")

    def of(self, dataset_code: str | None, datasets: dict[str, int] | None) -> tuple[int, str]:
        """Days a record is kept, and why (the dataset and grade that decide it)."""
        codes = sorted({*([dataset_code] if dataset_code else []), *(datasets or {})})
        if not codes:
            return self.general, "it concerns no dataset (general grade)"
        best = (0, "")
        for code in codes:
            days, why = self.by_code.get(code, (self.longest, "unknown to the directory (longest retention)"))
            if days > best[0]:
                best = (days, f"dataset {code}, {why}")
        return best


# ---- the plan ------------------------------------------------------------------------------


@dataclass
class ArchivePlan:
    """The prefix an archive run moves (empty when ``records`` is 0) and why it ends there."""

    before: dt.datetime
    now: dt.datetime
    first_seq: int
    last_seq: int
    prev_hash: str
    last_hash: str
    records: int
    stopped_at: int | None  # the first record kept (None: the log ended)
    reason: str
    index_rows: int = 0


@dataclass
class ArchiveResult:
    """What :func:`archive` did."""

    plan: ArchivePlan
    dry_run: bool
    path: Path | None = None
    file_sha256: str | None = None
    archive_id: int | None = None
    anchor_seq: int | None = None


def _newest(conn: sa.Connection) -> Any:
    t = tables.audit_archives
    return conn.execute(sa.select(t).order_by(t.c.last_seq.desc()).limit(1)).first()


def _rows(conn: sa.Connection, after: int, upto: int, batch: int = _BATCH) -> Iterator[Any]:
    log = tables.audit
    while after < upto:
        rows = conn.execute(
            sa.select(log).where(log.c.seq > after, log.c.seq <= upto).order_by(log.c.seq).limit(batch)
        ).all()
        yield from rows
        if len(rows) < batch:
            return
        after = int(rows[-1].seq)


def shortest_before(policy: GradePolicy, now: dt.datetime | None = None) -> dt.datetime:
    """The latest ``before`` allowed: ``now`` less the shortest retention of any grade."""
    return utc_now(now) - dt.timedelta(days=min(policy[g].audit_retention_days for g in Grade))


def plan(
    engine: sa.Engine,
    before: dt.datetime,
    *,
    policy: GradePolicy,
    now: dt.datetime | None = None,
    max_records: int = MAX_RECORDS,
) -> ArchivePlan:
    """The prefix that may be archived now; :class:`ArchiveError` when ``before`` is too young
    or the chain is damaged where the prefix would start."""
    if before.tzinfo is None:
        raise ValueError("before must be timezone-aware")
    if max_records < 1:
        raise ValueError("max_records must be at least 1")
    now = utc_now(now)
    before = before.astimezone(dt.UTC)
    latest = shortest_before(policy, now)
    if before > latest:
        raise ArchiveTooSoon(
            f"--before {before.date().isoformat()} is younger than the shortest audit retention "
            f"({min(policy[g].audit_retention_days for g in Grade)} days): records may leave the hub "
            f"only when older than {latest.date().isoformat()}"
        )
    with engine.connect() as conn:
        retention = Retention(conn, policy)
        newest = _newest(conn)
        head = conn.execute(
            sa.select(tables.audit_head.c.seq).where(tables.audit_head.c.id == HEAD_ID)
        ).scalar()
        base = 0 if newest is None else int(newest.last_seq)
        prev = GENESIS if newest is None else str(newest.last_hash)
        p = ArchivePlan(before, now, base + 1, base, prev, prev, 0, None, "")
        upto = int(head) if head is not None else 0
        for row in _rows(conn, base, upto):
            seq = int(row.seq)
            if seq != p.last_seq + 1:
                raise ArchiveError(
                    f"seq {p.last_seq + 1}: missing (the log jumps to seq {seq}); run `sharehub audit verify`"
                )
            rec = record_of(row)
            if str(row.prev_hash) != p.last_hash or record_hash(p.last_hash, seq, rec) != str(row.hash):
                raise ArchiveError(
                    f"seq {seq}: does not verify; a damaged chain is not archived "
                    "(run `sharehub audit verify`)"
                )
            at = rec.at
            if at >= before:
                p.stopped_at, p.reason = seq, f"seq {seq} ({_when(at)}) is not older than {_when(before)}"
                break
            days, why = retention.of(rec.dataset_code, rec.datasets)
            until = at + dt.timedelta(days=days)
            if until > now:
                p.stopped_at = seq
                p.reason = (
                    f"seq {seq} ({_when(at)}) is under retention until {_when(until)}: "
                    f"{why}, kept {days} days"
                )
                break
            if p.records >= max_records:
                p.stopped_at, p.reason = seq, f"{max_records} records per run (run again for more)"
                break
            p.records += 1
            p.last_seq, p.last_hash = seq, str(row.hash)
            p.index_rows += len(row.datasets or ())
        else:
            p.reason = f"the log ends at seq {upto}" if upto > base else "nothing after the archives"
    return p


def _when(t: dt.datetime) -> str:
    return t.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


# ---- the file ------------------------------------------------------------------------------


def file_name(first_seq: int, last_seq: int, sha256: str) -> str:
    """The name of the archive of seqs ``first_seq``..``last_seq`` whose file hashes to ``sha256``:
    a rerun writing the same content writes the same name (and replaces a stray of it), one
    writing other content (another cutoff or time) a new name, never a committed archive's."""
    return f"hub-audit-{first_seq:012d}-{last_seq:012d}-{sha256[:12]}.jsonl.gz"


def _line(doc: dict[str, Any]) -> bytes:
    return (json.dumps(doc, sort_keys=True, ensure_ascii=False, separators=(",", ":")) + "\n").encode()


def _record_doc(row: Any) -> dict[str, Any]:
    doc = {c.name: getattr(row, c.name) for c in tables.audit.columns}
    doc["at"] = iso_utc(as_utc(row.at), "micros", what="audit time")
    doc["fields"] = None if row.fields is None else list(row.fields)
    doc["datasets"] = None if row.datasets is None else dict(row.datasets)
    return doc


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # some platforms cannot open a folder: the rename is as durable as it gets
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_file(engine: sa.Engine, p: ArchivePlan, dest: Path) -> Path:
    dest.mkdir(parents=True, exist_ok=True)
    tmp = dest / f".hub-audit-{p.first_seq:012d}-{p.last_seq:012d}.{uuid.uuid4().hex}.tmp"
    header = {
        "format": FORMAT,
        "first_seq": p.first_seq,
        "last_seq": p.last_seq,
        "prev_hash": p.prev_hash,
        "last_hash": p.last_hash,
        "records": p.records,
        "index_rows": p.index_rows,
        "cutoff": iso_utc(p.before, "micros"),
        "created_at": iso_utc(p.now, "micros"),
    }
    try:
        with open(tmp, "xb") as raw:
            with gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) as gz:
                gz.write(_line(header))
                prev, seq = p.prev_hash, p.first_seq - 1
                with engine.connect() as conn:
                    for row in _rows(conn, p.first_seq - 1, p.last_seq):
                        if int(row.seq) != seq + 1 or str(row.prev_hash) != prev:
                            raise ArchiveError(f"seq {seq + 1}: changed while being archived; nothing done")
                        gz.write(_line(_record_doc(row)))
                        seq, prev = int(row.seq), str(row.hash)
                if (seq, prev) != (p.last_seq, p.last_hash):
                    raise ArchiveError(f"seq {seq + 1}..{p.last_seq}: changed while being archived")
            raw.flush()
            os.fsync(raw.fileno())
        final = dest / file_name(p.first_seq, p.last_seq, _sha256(tmp))
        os.replace(tmp, final)  # a stray by this name has these very bytes: replacing it is safe
        _fsync_dir(dest)
    finally:
        tmp.unlink(missing_ok=True)
    return final


# ---- reading a file back -------------------------------------------------------------------


@dataclass
class FileCheck:
    """What :func:`verify_file` found in an archive file (and against its DB row)."""

    path: Path
    ok: bool = True
    problems: list[str] = field(default_factory=list)
    header: dict[str, Any] = field(default_factory=dict)
    records: int = 0
    sha256: str = ""
    db: str = "not checked"  # not checked | matches | differs | no row (a stray) | unreachable: …


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _check_file(path: Path) -> FileCheck:
    c = FileCheck(path=path, sha256=_sha256(path))
    try:
        with gzip.open(path, "rb") as f:
            first = f.readline()
            c.header = json.loads(first) if first else {}
            if c.header.get("format") != FORMAT:
                c.problems.append(f"not an audit archive ({FORMAT}): header {first[:80]!r}")
                return c
            seq, prev = int(c.header["first_seq"]) - 1, str(c.header["prev_hash"])
            for n, raw in enumerate(f, start=2):
                doc = json.loads(raw)
                got = int(doc["seq"])
                if got != seq + 1:
                    c.problems.append(f"line {n}: seq {got} where seq {seq + 1} belongs")
                values = {k: doc.get(k) for k in _FIELD_NAMES}
                values["at"] = dt.datetime.strptime(doc["at"], "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=dt.UTC)
                rec = AuditRecord(**values)
                if str(doc["prev_hash"]) != prev:
                    c.problems.append(f"seq {got}: prev_hash does not match the hash before it")
                if record_hash(str(doc["prev_hash"]), got, rec) != doc["hash"]:
                    c.problems.append(f"seq {got}: changed (hash does not match its content)")
                seq, prev = got, str(doc["hash"])
                c.records += 1
    except (OSError, EOFError, ValueError, KeyError, TypeError) as exc:
        c.problems.append(f"unreadable after {c.records} records: {type(exc).__name__}: {exc}")
        return c
    h = c.header
    if c.records != h.get("records"):
        c.problems.append(f"the header says {h.get('records')} records, the file holds {c.records}")
    if (seq, prev) != (h.get("last_seq"), h.get("last_hash")):
        c.problems.append(
            f"the file ends at seq {seq} hash {prev[:12]}…, the header says seq {h.get('last_seq')}"
        )
    return c


def verify_file(path: Path, engine: sa.Engine | None = None) -> FileCheck:
    """Recompute the chain inside an archive file; with ``engine``, compare it with its
    ``hub_audit_archives`` row (SHA-256 of the file, seqs, hashes, record count)."""
    c = _check_file(Path(path))
    if engine is not None and c.header.get("format") == FORMAT:
        try:
            with engine.connect() as conn:
                t = tables.audit_archives
                row = conn.execute(sa.select(t).where(t.c.last_seq == c.header.get("last_seq"))).first()
        except sa.exc.SQLAlchemyError as exc:
            c.db = f"unreachable: {type(exc).__name__}"
        else:
            if row is None:
                c.db = "no row (a stray: not archived, the records are still in the hub DB or elsewhere)"
                c.problems.append(f"no archive row ends at seq {c.header.get('last_seq')}: {c.db}")
            else:
                want = {
                    "file_sha256": c.sha256,
                    "first_seq": c.header.get("first_seq"),
                    "last_seq": c.header.get("last_seq"),
                    "prev_hash": c.header.get("prev_hash"),
                    "last_hash": c.header.get("last_hash"),
                    "records": c.header.get("records"),
                }
                diff = [k for k, v in want.items() if getattr(row, k) != v]
                c.db = "matches" if not diff else "differs"
                for k in diff:
                    c.problems.append(
                        f"archive row {row.id}: {k} is {getattr(row, k)!r}, the file has {want[k]!r}"
                    )
    c.ok = not c.problems
    return c


# ---- the archive rows and their voucher ----------------------------------------------------


def archive_rows(conn: sa.Connection) -> list[Any]:
    t = tables.audit_archives
    return list(conn.execute(sa.select(t).order_by(t.c.first_seq, t.c.last_seq)).all())


def rows_digest(rows: list[Any]) -> str:
    """SHA-256 over the archive rows (what an ``audit.archive`` record vouches for)."""
    docs = [
        {
            "first_seq": int(r.first_seq),
            "last_seq": int(r.last_seq),
            "prev_hash": r.prev_hash,
            "last_hash": r.last_hash,
            "records": int(r.records),
            "cutoff": iso_utc(as_utc(r.cutoff), "micros"),
            "archived_at": iso_utc(as_utc(r.archived_at), "micros"),
            "archived_by": r.archived_by,
            "file_name": r.file_name,
            "file_sha256": r.file_sha256,
        }
        for r in rows
    ]
    text = json.dumps(docs, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def archived_through(engine: sa.Engine) -> tuple[int, dt.datetime, int] | None:
    """The last archived seq, the newest archive's cutoff (every archived record is older) and
    the number of archives; None when nothing was archived (for the readers' notes)."""
    t = tables.audit_archives
    with engine.connect() as conn:
        row = conn.execute(
            sa.select(sa.func.max(t.c.last_seq), sa.func.max(t.c.cutoff), sa.func.count())
        ).first()
    if row is None or row[0] is None:
        return None
    return int(row[0]), as_utc(row[1]), int(row[2])


# ---- the run -------------------------------------------------------------------------------


def archive(
    engine: sa.Engine,
    before: dt.datetime,
    dest: Path,
    *,
    policy: GradePolicy,
    by: str,
    now: dt.datetime | None = None,
    dry_run: bool = False,
    max_records: int = MAX_RECORDS,
) -> ArchiveResult:
    """Move the archivable prefix (see the module docstring) to a file in ``dest``."""
    if not by:
        raise ValueError("by: who archives must be named")
    p = plan(engine, before, policy=policy, now=now, max_records=max_records)
    result = ArchiveResult(plan=p, dry_run=dry_run)
    if dry_run or p.records == 0:
        return result
    path = _write_file(engine, p, Path(dest))
    check = _check_file(path)
    if check.problems or (check.header.get("last_seq"), check.records) != (p.last_seq, p.records):
        path.unlink(missing_ok=True)
        raise ArchiveError(f"the archive file read back wrong, nothing archived: {check.problems[:3]}")
    result.path, result.file_sha256 = path, check.sha256
    result.archive_id, result.anchor_seq = _commit(engine, p, path.name, check.sha256, by)
    return result


def _commit(engine: sa.Engine, p: ArchivePlan, name: str, sha: str, by: str) -> tuple[int, int]:
    """One transaction: the archive row, the deletes and the ``audit.archive`` record."""
    archives, log, idx, head = tables.audit_archives, tables.audit, tables.audit_datasets, tables.audit_head
    with engine.begin() as conn:
        if conn.dialect.name == "sqlite":  # take the write lock first, as the writer does
            conn.execute(head.update().where(head.c.id == HEAD_ID).values(seq=head.c.seq))
        elif conn.dialect.name == "postgresql":
            conn.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_LOCK_KEY})
        newest = _newest(conn)
        if (0 if newest is None else int(newest.last_seq)) != p.first_seq - 1:
            raise ArchiveError("another archive run moved the archives meanwhile; nothing done, run again")
        inserted = conn.execute(
            archives.insert().values(
                first_seq=p.first_seq,
                last_seq=p.last_seq,
                prev_hash=p.prev_hash,
                last_hash=p.last_hash,
                records=p.records,
                cutoff=p.before,
                archived_at=p.now,
                archived_by=by[:64],
                file_name=name,
                file_sha256=sha,
            )
        ).inserted_primary_key
        assert inserted is not None
        archive_id = inserted[0]
        _before_delete(conn)
        conn.execute(idx.delete().where(idx.c.seq >= p.first_seq, idx.c.seq <= p.last_seq))
        gone = conn.execute(log.delete().where(log.c.seq >= p.first_seq, log.c.seq <= p.last_seq))
        if gone.rowcount != p.records:
            raise ArchiveError(
                f"seq {p.first_seq}-{p.last_seq}: {gone.rowcount} records found to delete, "
                f"{p.records} archived; nothing done"
            )
        rows = archive_rows(conn)
        voucher = {
            "first_seq": p.first_seq,
            "last_seq": p.last_seq,
            "records": p.records,
            "file_sha256": sha,
            "archives": len(rows),
            "archives_sha256": rows_digest(rows),
        }
        anchor = normalise(
            AuditRecord(
                at=p.now,
                request_id=uuid.uuid4().hex,
                actor_kind="staff",
                method="CLI",
                path="sharehub audit archive",
                action=ANCHOR_ACTION,
                decision="allow",
                status=200,
                row_count=p.records,
                staff=by,
                query=json.dumps(voucher, sort_keys=True, separators=(",", ":")),
            )
        )
        top = conn.execute(
            sa.select(head.c.seq, head.c.hash).where(head.c.id == HEAD_ID).with_for_update()
        ).one()
        [anchor_seq] = _append_locked(conn, int(top.seq), str(top.hash), [anchor])
    return int(archive_id), anchor_seq


def _before_delete(conn: sa.Connection) -> None:
    """A seam for the tests: a failure here must leave the DB as it was."""


__all__ = [
    "ANCHOR_ACTION",
    "FORMAT",
    "ArchiveError",
    "ArchivePlan",
    "ArchiveResult",
    "ArchiveTooSoon",
    "FileCheck",
    "Retention",
    "archive",
    "archive_rows",
    "archived_through",
    "file_name",
    "plan",
    "rows_digest",
    "shortest_before",
    "verify_file",
]
