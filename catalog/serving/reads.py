"""The reads every data call makes, on one connection: the app's standing, records, certificates.

Two implementations with the same answers:

* :class:`SqlAlchemyReads` — the catalog functions on one SQLAlchemy connection (any database;
  the embedded SQLite hub uses this).
* :class:`PsycopgReads` — on PostgreSQL, the *same statements* (compiled once by SQLAlchemy for
  the PostgreSQL dialect) sent straight through psycopg on a small pool of autocommit
  connections. On this path SQLAlchemy's per-call work (statement cache key, compiled-cache
  lookup, result processing, pool checkout with a pre-ping, BEGIN/ROLLBACK around one SELECT)
  costs several times the query itself (figures in docs/benchmarks.md, "Why the hot paths
  bypass SQLAlchemy"). psycopg prepares a statement on the server after its fifth use on a
  connection. Values come back as the same Python types as through SQLAlchemy
  (a test, ``test_psycopg_reads_match_sqlalchemy``, compares the two on one database).

A pooled connection is not pinged before use. Reads are idempotent, so when a query fails
because a pooled connection turned out to be broken (the server restarted), it is sent once
more on a fresh connection; a failure on a fresh connection is raised. The same happens when
PostgreSQL refuses a statement prepared on that connection because its table was recreated
with other column types (a dataset's declared fields changed).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any, Protocol

import sqlalchemy as sa

from catalog.access import applications
from catalog.access.app_registry import App
from catalog.certificates import verify as certificate_verify
from catalog.certificates.issuing import identifier_is_well_formed
from catalog.directory.model import DatasetSpec
from catalog.serving import tables as serving

__all__ = ["PsycopgPool", "PsycopgReads", "Reads", "SqlAlchemyReads"]


class Reads(Protocol):
    """The reads of one API call."""

    def app_standing(self, app_id: str, dataset_code: str) -> tuple[App | None, applications.AccessState]:
        """:func:`catalog.access.applications.app_standing`."""
        ...

    def lookup_subject(
        self, spec: DatasetSpec, subject: str, *, limit: int, after: Sequence[Any] | None = None
    ) -> list[dict[str, Any]]:
        """:func:`catalog.serving.tables.lookup_subject`."""
        ...

    def lookup_key(self, spec: DatasetSpec, key: dict[str, Any]) -> dict[str, Any] | None:
        """:func:`catalog.serving.tables.lookup_key`."""
        ...

    def certificate(self, identifier: Any) -> tuple[dict[str, Any] | None, str | None]:
        """:func:`catalog.certificates.verify.lookup`."""
        ...


class SqlAlchemyReads:
    """The catalog's own functions on one SQLAlchemy connection."""

    def __init__(self, conn: sa.Connection, engine: sa.Engine) -> None:
        self.conn = conn
        self.engine = engine

    def app_standing(self, app_id: str, dataset_code: str) -> tuple[App | None, applications.AccessState]:
        return applications.app_standing(self.conn, app_id, dataset_code)

    def lookup_subject(
        self, spec: DatasetSpec, subject: str, *, limit: int, after: Sequence[Any] | None = None
    ) -> list[dict[str, Any]]:
        return serving.lookup_subject(self.conn, spec, subject, limit=limit, after=after)

    def lookup_key(self, spec: DatasetSpec, key: dict[str, Any]) -> dict[str, Any] | None:
        return serving.lookup_key(self.conn, spec, key)

    def certificate(self, identifier: Any) -> tuple[dict[str, Any] | None, str | None]:
        return certificate_verify.lookup(self.engine, identifier)


class _Compiled:
    """A statement compiled once for PostgreSQL: its SQL text, fixed parameters, column names."""

    __slots__ = ("checked", "defaults", "names", "sql")

    def __init__(self, stmt: sa.Select[Any], dialect: sa.Dialect) -> None:
        compiled = stmt.compile(dialect=dialect)
        self.sql: str = compiled.string
        self.defaults = {k: v for k, v in compiled.params.items() if v is not None}
        # the result's column names, known up front: psycopg builds ``cursor.description``
        # anew on every call, which costs more than the query's own decoding
        self.names: list[str] = list(stmt.selected_columns.keys())
        self.checked = False


class PsycopgPool:
    """Up to ``size`` idle psycopg connections (autocommit) for :class:`PsycopgReads`.

    The API bounds how many calls read at once (``Hub.run_db``) by the same number, so under
    load the pool neither grows nor churns; a connection beyond it is closed when given back.
    """

    def __init__(self, engine: sa.Engine, size: int) -> None:
        if engine.dialect.name != "postgresql":
            raise ValueError("PsycopgPool needs a PostgreSQL engine")
        self.engine = engine
        self.size = size
        self._conninfo = engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
        self._idle: list[Any] = []
        self._lock = threading.Lock()
        self._closed = False
        self._compiled: dict[int, tuple[sa.Select[Any], _Compiled]] = {}
        self._serving: dict[tuple[Any, ...], tuple[_Compiled, list[str]]] = {}

    def connect(self) -> Any:
        import psycopg

        return psycopg.connect(self._conninfo, autocommit=True)

    def take(self) -> tuple[Any, bool]:
        """A connection and whether it is fresh (else it may have gone stale in the pool)."""
        with self._lock:
            if self._idle:
                return self._idle.pop(), False
        return self.connect(), True

    def give(self, conn: Any) -> None:
        """Back to the pool when it is healthy and idle, else closed."""
        from psycopg.pq import TransactionStatus

        healthy = not conn.closed and conn.info.transaction_status == TransactionStatus.IDLE
        with self._lock:
            if healthy and not self._closed and len(self._idle) < self.size:
                self._idle.append(conn)
                return
        conn.close()

    def close(self) -> None:
        """Close the idle connections; later ones are closed when given back."""
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()

    def compiled(self, stmt: sa.Select[Any]) -> _Compiled:
        hit = self._compiled.get(id(stmt))
        if hit is None or hit[0] is not stmt:
            hit = self._compiled[id(stmt)] = (stmt, _Compiled(stmt, self.engine.dialect))
        return hit[1]

    def serving_lookup(self, spec: DatasetSpec, by: str, after: bool) -> tuple[_Compiled, list[str]]:
        """The compiled lookup of ``spec``'s serving table by ``subject`` or ``key`` (see serving)."""
        shape = (
            spec.code,
            tuple((f.name, f.type) for f in spec.fields),
            tuple(spec.primary_key),
            spec.subject.field if spec.subject else None,
            by,
            after,
        )
        hit = self._serving.get(shape)
        if hit is None:
            table = serving.serving_table(spec)
            names = [f.name for f in spec.fields]
            key_cols = [table.c[k] for k in spec.primary_key]
            q = sa.select(*(table.c[n] for n in names))
            if by == "subject":
                assert spec.subject is not None
                q = q.where(table.c[spec.subject.field] == sa.bindparam("subject"))
                if after:
                    q = q.where(
                        sa.tuple_(*key_cols)
                        > sa.tuple_(*(sa.bindparam(f"after_{i}") for i in range(len(key_cols))))
                    )
                q = q.order_by(*key_cols).limit(sa.bindparam("limit"))
            else:
                q = q.where(*(table.c[k] == sa.bindparam(f"key_{k}") for k in spec.primary_key))
            hit = self._serving[shape] = (_Compiled(q, self.engine.dialect), names)
        return hit

    @contextmanager
    def reads(self) -> Iterator[PsycopgReads]:
        """One call's reads; its connection goes back to the pool afterwards."""
        r = PsycopgReads(self)
        try:
            yield r
        finally:
            r.release()


class PsycopgReads:
    """The reads of one call on one pooled psycopg connection (taken on first use)."""

    def __init__(self, pool: PsycopgPool) -> None:
        self.pool = pool
        self._conn: Any = None
        self._fresh = False

    def release(self) -> None:
        if self._conn is not None:
            conn, self._conn = self._conn, None
            self.pool.give(conn)

    def _execute(self, c: _Compiled, params: Mapping[str, Any]) -> Any:
        import psycopg

        args = {**c.defaults, **params}
        if self._conn is None:
            self._conn, self._fresh = self.pool.take()
        try:
            return self._conn.execute(c.sql, args)
        except psycopg.OperationalError:
            if self._fresh or not (self._conn.broken or self._conn.closed):
                raise
        except psycopg.errors.FeatureNotSupported as exc:
            # "cached plan must not change result type": a serving table was recreated with other
            # column types under the same statement, prepared earlier on this connection
            if "cached plan" not in str(exc):
                raise
        self._conn.close()
        self._conn, self._fresh = self.pool.connect(), True
        return self._conn.execute(c.sql, args)

    def _rows(self, c: _Compiled, params: Mapping[str, Any]) -> list[dict[str, Any]]:
        cur = self._execute(c, params)
        if not c.checked:
            described = [d.name for d in cur.description]
            if described != c.names:
                raise RuntimeError(f"unexpected columns {described} for {c.names}")
            c.checked = True
        names = c.names
        return [dict(zip(names, r, strict=True)) for r in cur.fetchall()]

    def _one(self, stmt: sa.Select[Any], params: Mapping[str, Any]) -> dict[str, Any] | None:
        rows = self._rows(self.pool.compiled(stmt), params)
        return rows[0] if rows else None

    def app_standing(self, app_id: str, dataset_code: str) -> tuple[App | None, applications.AccessState]:
        params = {"app_id": app_id, "dataset_code": dataset_code}
        return applications.standing_from(lambda stmt: self._one(stmt, params))

    def lookup_subject(
        self, spec: DatasetSpec, subject: str, *, limit: int, after: Sequence[Any] | None = None
    ) -> list[dict[str, Any]]:
        if spec.subject is None:
            raise ValueError(f"dataset {spec.code} has no subject field")
        c, _names = self.pool.serving_lookup(spec, "subject", after is not None)
        params: dict[str, Any] = {"subject": subject, "limit": limit}
        if after is not None:
            params |= {f"after_{i}": v for i, v in enumerate(after)}
        return self._rows(c, params)

    def lookup_key(self, spec: DatasetSpec, key: dict[str, Any]) -> dict[str, Any] | None:
        missing = [k for k in spec.primary_key if k not in key]
        if missing:
            raise ValueError(f"primary key field(s) missing: {', '.join(missing)}")
        c, _names = self.pool.serving_lookup(spec, "key", False)
        rows = self._rows(c, {f"key_{k}": key[k] for k in spec.primary_key})
        return rows[0] if rows else None

    def certificate(self, identifier: Any) -> tuple[dict[str, Any] | None, str | None]:
        if not isinstance(identifier, str) or not identifier_is_well_formed(identifier):
            return None, None
        row = self._one(certificate_verify.BY_IDENTIFIER, {"identifier": identifier})
        if row is not None:
            return row, None
        # gone: is there a newer version? (rare; the catalog's own two-step lookup)
        return certificate_verify.lookup(self.pool.engine, identifier)
