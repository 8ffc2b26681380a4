"""The hub DB engine: one pooled engine per URL, SQLite tuned for the embedded default."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from catalog.db import migrate


def engine_for(url: str, *, pool_size: int = 5, max_overflow: int = 10) -> sa.Engine:
    """One pooled engine per hub DB URL (and pool sizes), ready to use.

    SQLite (the embedded default) creates the hub tables if missing and stamps the migration
    head. Any other database gets its tables from ``sharehub db upgrade`` only: this raises
    :class:`catalog.db.migrate.SchemaNotCurrentError` unless it is at the head revision.
    ``pool_size`` / ``max_overflow`` size the pool of a server database, per process."""
    return _engine_for(url, pool_size, max_overflow)


@lru_cache(maxsize=8)
def _engine_for(url: str, pool_size: int, max_overflow: int) -> sa.Engine:
    kwargs: dict[str, Any] = {"pool_pre_ping": True}
    sqlite = url.startswith("sqlite")
    if sqlite:
        kwargs["connect_args"] = {"timeout": 60}
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
    else:
        kwargs["pool_size"] = pool_size
        kwargs["max_overflow"] = max_overflow
    engine = sa.create_engine(url, **kwargs)
    if sqlite:

        @sa.event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
            cur = dbapi_conn.cursor()
            _wal(cur)
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.close()

    try:
        if sqlite:
            migrate.ensure_embedded(engine)
        else:
            migrate.require_head(engine)
    except BaseException:
        engine.dispose()
        raise
    return engine


def _wal(cur: Any, deadline_s: float = 60.0) -> None:
    """Switch a SQLite file to WAL. SQLite answers "database is locked" at once, without its
    busy handler, when another connection holds the file while the mode changes (several
    engines opening a new file together): wait and retry, as the busy timeout would."""
    import sqlite3
    import time

    give_up = time.monotonic() + deadline_s
    delay = 0.01
    while True:
        try:
            cur.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > give_up:
                raise
            time.sleep(delay)
            delay = min(delay * 2, 0.5)
