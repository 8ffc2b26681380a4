"""Appending to the access log: one transaction per batch, ``COPY`` on PostgreSQL, and the
async writer the API hands its records to (a call is answered once its record is durable)."""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

import sqlalchemy as sa

from catalog.audit.chain import (
    _FIELD_NAMES,
    _JSON_FIELDS,
    GENESIS,
    HEAD_ID,
    AuditError,
    AuditRecord,
    normalise,
    record_hash,
)
from catalog.db import tables


def _ensure_head(engine: sa.Engine) -> None:
    """Create the head row of an empty log; a concurrent creator winning the race is fine."""
    head, log = tables.audit_head, tables.audit
    # one INSERT … SELECT: on SQLite it starts as a write (so it waits for the lock instead of
    # failing to upgrade a read), and it cannot re-create the head of a log that has records
    genesis = sa.select(
        sa.literal(HEAD_ID, sa.Integer), sa.literal(0, sa.BigInteger), sa.literal(GENESIS, sa.String)
    ).where(~sa.select(head.c.id).exists(), ~sa.select(log.c.seq).exists())
    try:
        with engine.begin() as conn:
            conn.execute(head.insert().from_select(["id", "seq", "hash"], genesis))
            if conn.execute(sa.select(head.c.id)).first() is None:
                raise AuditError("the audit head row is missing while the log has records; run verify")
    except sa.exc.IntegrityError:
        pass


def append(engine: sa.Engine, records: Sequence[AuditRecord]) -> list[int]:
    """Append records as one transaction on the chain; returns their seqs once committed.

    The head row is locked first — ``SELECT … FOR UPDATE`` on PostgreSQL; on SQLite, which has no
    row locks, a no-op UPDATE of the head as the first statement takes the database write lock —
    so concurrent appenders in any number of processes queue on it and each sees the head the
    previous one committed.
    """
    if not records:
        return []
    return _append_normalised(engine, [normalise(r) for r in records])


def append_in(conn: sa.Connection, records: Sequence[AuditRecord]) -> list[int]:
    """Append records inside the caller's transaction, so that they commit (or not) with what it
    records — a delivery's hub record and its audit record are one commit. The head row is
    locked as :func:`append` locks it; call :func:`ensure_head` before the transaction."""
    if not records:
        return []
    head = tables.audit_head
    if conn.dialect.name == "sqlite":
        conn.execute(head.update().where(head.c.id == HEAD_ID).values(seq=head.c.seq))
    row = conn.execute(
        sa.select(head.c.seq, head.c.hash).where(head.c.id == HEAD_ID).with_for_update()
    ).first()
    if row is None:
        raise AuditError("the audit head row is missing: call ensure_head before the transaction")
    return _append_locked(conn, int(row.seq), str(row.hash), [normalise(r) for r in records])


def ensure_head(engine: sa.Engine) -> None:
    """Make sure the audit log has its head row (a no-op once it has)."""
    head = tables.audit_head
    with engine.connect() as conn:
        if conn.execute(sa.select(head.c.id).where(head.c.id == HEAD_ID)).first() is not None:
            return
    _ensure_head(engine)


def _append_normalised(engine: sa.Engine, clean: list[AuditRecord]) -> list[int]:
    head = tables.audit_head
    for _attempt in range(3):
        with engine.begin() as conn:
            if conn.dialect.name == "sqlite":
                conn.execute(head.update().where(head.c.id == HEAD_ID).values(seq=head.c.seq))
            row = conn.execute(
                sa.select(head.c.seq, head.c.hash).where(head.c.id == HEAD_ID).with_for_update()
            ).first()
            if row is not None:
                return _append_locked(conn, int(row.seq), str(row.hash), clean)
        _ensure_head(engine)
    raise AuditError("could not create the audit head row")


def _chain(seq: int, prev: str, clean: list[AuditRecord]) -> tuple[list[dict[str, Any]], int, str]:
    """The rows of ``clean`` after the head (seq, prev): with seq, prev_hash and hash; the new head."""
    rows = []
    for rec in clean:
        seq += 1
        digest = record_hash(prev, seq, rec)
        rows.append(
            {**{n: getattr(rec, n) for n in _FIELD_NAMES}, "seq": seq, "prev_hash": prev, "hash": digest}
        )
        prev = digest
    return rows, seq, prev


def dataset_index(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """The ``hub_audit_datasets`` rows of appended records: the datasets each multi-dataset
    record (subject view, certificate list) consulted. A single-dataset record is found by
    its own indexed ``dataset_code``, so the hot path of record lookups writes no index row."""
    return [
        {"dataset_code": code, "seq": row["seq"]}
        for row in rows
        for code in sorted(row.get("datasets") or ())
    ]


def _append_locked(conn: sa.Connection, seq: int, prev: str, clean: list[AuditRecord]) -> list[int]:
    rows, seq, prev = _chain(seq, prev, clean)
    conn.execute(tables.audit.insert(), rows)
    index = dataset_index(rows)
    if index:
        conn.execute(tables.audit_datasets.insert(), index)
    head = tables.audit_head
    conn.execute(head.update().where(head.c.id == HEAD_ID).values(seq=seq, hash=prev))
    return [r["seq"] for r in rows]


_COPY_COLUMNS = (*_FIELD_NAMES, "seq", "prev_hash", "hash")


class _PgAppender:
    """:func:`append` for the writer thread on PostgreSQL, through its own psycopg connection.

    The same transaction — lock the head row (``SELECT … FOR UPDATE``), insert the batch, move
    the head, commit — without SQLAlchemy's per-statement work and the pool checkout, and the
    rows go in with one ``COPY … FROM STDIN``. Through SQLAlchemy most of a batch's cost is
    fixed per batch, so small batches (the common case under moderate load) would pay it per
    record (figures in docs/benchmarks.md, "Why the hot paths bypass SQLAlchemy"). A connection
    found broken at the first statement (a restarted server) is replaced once; any later failure
    is raised, as the batch may or may not have committed.
    """

    def __init__(self, engine: sa.Engine) -> None:
        self._engine = engine
        self._conninfo = engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
        self._conn: Any = None
        cols = ", ".join(_COPY_COLUMNS)
        self._copy = f"COPY {tables.audit.name} ({cols}) FROM STDIN"
        self._copy_index = f"COPY {tables.audit_datasets.name} (dataset_code, seq) FROM STDIN"
        self._lock_head = f"SELECT seq, hash FROM {tables.audit_head.name} WHERE id = %s FOR UPDATE"
        self._move_head = f"UPDATE {tables.audit_head.name} SET seq = %s, hash = %s WHERE id = %s"

    def append(self, clean: list[AuditRecord]) -> list[int]:
        """Append normalised records; their seqs once committed."""
        import psycopg

        for attempt in (1, 2):
            fresh = self._conn is None
            if fresh:
                self._conn = psycopg.connect(self._conninfo, autocommit=True)
            conn = self._conn
            locked = [False]
            try:
                seqs = self._append_on(conn, clean, locked)
            except psycopg.OperationalError:
                if conn.broken or conn.closed:
                    self._conn = None
                    conn.close()
                    if not fresh and not locked[0] and attempt == 1:
                        continue  # a stale connection: nothing was written, start again
                raise
            return seqs if seqs is not None else _append_normalised(self._engine, clean)
        raise AssertionError("unreachable")

    def _append_on(self, conn: Any, clean: list[AuditRecord], locked: list[bool]) -> list[int] | None:
        from psycopg.types.json import Json

        with conn.transaction():
            head = conn.execute(self._lock_head, (HEAD_ID,)).fetchone()
            locked[0] = True
            if head is None:
                return None  # no head row yet: the general path creates it
            rows, seq, prev = _chain(int(head[0]), str(head[1]), clean)
            index = dataset_index(rows)
            with conn.cursor() as cur, cur.copy(self._copy) as copy:
                for row in rows:
                    for name in _JSON_FIELDS:
                        items = row[name]
                        row[name] = Json(items) if items is not None else None
                    copy.write_row([row[c] for c in _COPY_COLUMNS])
            if index:
                with conn.cursor() as cur, cur.copy(self._copy_index) as copy:
                    for entry in index:
                        copy.write_row([entry["dataset_code"], entry["seq"]])
            conn.execute(self._move_head, (seq, prev, HEAD_ID))
        return [r["seq"] for r in rows]

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


class _Pending:
    __slots__ = ("done", "error", "future", "loop", "rec", "seq")

    def __init__(
        self,
        rec: AuditRecord,
        loop: asyncio.AbstractEventLoop | None = None,
        future: asyncio.Future[None] | None = None,
    ) -> None:
        self.rec = rec
        self.done = threading.Event()
        self.seq: int | None = None
        self.error: AuditError | None = None
        self.loop = loop  # an async waiter's loop and future (write_async), woken by _finish
        self.future = future


def _finish(batch: list[_Pending]) -> None:
    """Wake the batch's waiters: threads by their events, async ones with one call per loop."""
    by_loop: dict[asyncio.AbstractEventLoop, list[asyncio.Future[None]]] = {}
    for p in batch:
        p.done.set()
        if p.loop is not None and p.future is not None:
            by_loop.setdefault(p.loop, []).append(p.future)
    for loop, futures in by_loop.items():
        with contextlib.suppress(RuntimeError):  # a closed loop: nobody is waiting any more
            loop.call_soon_threadsafe(_resolve, futures)


def _resolve(futures: list[asyncio.Future[None]]) -> None:
    for f in futures:
        if not f.done():
            f.set_result(None)


class AuditWriter:
    """Group commit: callers of :meth:`write` in many threads share one transaction per batch.

    One background thread takes everything pending (up to ``batch_max``, waiting ``linger_s`` for
    more once the first arrives), appends it in one :func:`append`, then wakes each caller with its
    seq. ``write`` returns only after the commit. Make one writer per process (after any fork).
    """

    def __init__(
        self,
        engine: sa.Engine,
        *,
        batch_max: int = 256,
        linger_s: float = 0.002,
        on_batch: Callable[[int], None] | None = None,
    ) -> None:
        """Start the writer thread on ``engine``; ``on_batch`` is told the size of each batch
        committed (the API's metrics)."""
        self._on_batch = on_batch
        if batch_max < 1:
            raise ValueError("batch_max must be at least 1")
        self._engine = engine
        self._pg = _PgAppender(engine) if engine.dialect.name == "postgresql" else None
        self._batch_max = batch_max
        self._linger_s = max(linger_s, 0.0)
        self._cond = threading.Condition()
        self._pending: list[_Pending] = []
        self._closing = False
        self._thread = threading.Thread(target=self._run, name="audit-writer", daemon=True)
        self._thread.start()

    def write(self, rec: AuditRecord, timeout: float = 10.0) -> int:
        """Append one record and return its seq once committed; AuditError when that failed."""
        item = _Pending(self._normalised(rec))
        self._enqueue(item)
        item.done.wait(timeout)
        return self._outcome(item, timeout)

    async def write_async(self, rec: AuditRecord, timeout: float = 10.0) -> int:
        """:meth:`write` for an event loop: the caller waits for the commit without a thread.

        The writer thread wakes the waiting task through the loop; the record joins the same
        group commits as those of :meth:`write`."""
        loop = asyncio.get_running_loop()
        woken: asyncio.Future[None] = loop.create_future()
        item = _Pending(self._normalised(rec), loop, woken)
        self._enqueue(item)
        with contextlib.suppress(TimeoutError):  # _outcome tells what a timeout means
            await asyncio.wait_for(asyncio.shield(woken), timeout)
        return self._outcome(item, timeout)

    @staticmethod
    def _normalised(rec: AuditRecord) -> AuditRecord:
        try:
            return normalise(rec)
        except ValueError as exc:
            raise AuditError(str(exc)) from exc

    def _enqueue(self, item: _Pending) -> None:
        with self._cond:
            if self._closing:
                raise AuditError("the audit writer is closed")
            self._pending.append(item)
            if len(self._pending) == 1 or len(self._pending) >= self._batch_max:
                self._cond.notify()

    def _outcome(self, item: _Pending, timeout: float) -> int:
        if not item.done.is_set():
            with self._cond:
                if any(p is item for p in self._pending):
                    self._pending.remove(item)  # never started: it will not be written
                    raise AuditError(f"audit write timed out after {timeout} s (not written)")
            if not item.done.is_set():
                # being committed right now: it may still land, as the record of a refused call
                raise AuditError(f"audit write timed out after {timeout} s")
        if item.error is not None:
            raise item.error
        assert item.seq is not None
        return item.seq

    def close(self) -> None:
        """Write everything pending, then stop the thread. Later writes raise AuditError."""
        with self._cond:
            self._closing = True
            self._cond.notify_all()
        self._thread.join()

    def __enter__(self) -> AuditWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _take(self) -> list[_Pending] | None:
        with self._cond:
            while not self._pending and not self._closing:
                self._cond.wait()
            if not self._pending:
                return None  # closing and drained
            if self._linger_s and not self._closing:
                deadline = time.monotonic() + self._linger_s
                while len(self._pending) < self._batch_max and not self._closing:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        break
                    self._cond.wait(remaining)
            batch = self._pending[: self._batch_max]
            del self._pending[: self._batch_max]
            return batch

    def _run(self) -> None:
        try:
            while (batch := self._take()) is not None:
                self._commit(batch)
        finally:
            if self._pg is not None:
                self._pg.close()

    def _commit(self, batch: list[_Pending]) -> None:
        clean = [p.rec for p in batch]  # normalised by write
        try:
            seqs = self._pg.append(clean) if self._pg is not None else _append_normalised(self._engine, clean)
            for p, seq in zip(batch, seqs, strict=True):
                p.seq = seq
            if self._on_batch is not None:
                with contextlib.suppress(Exception):  # an observer must not fail a committed batch
                    self._on_batch(len(batch))
        except Exception as exc:
            if len(batch) > 1:
                # one bad record must not sink the others: try each alone
                for p in batch:
                    self._commit([p])
                return
            error = AuditError(f"audit append failed: {type(exc).__name__}: {exc}")
            error.__cause__ = exc
            batch[0].error = error
        _finish(batch)
