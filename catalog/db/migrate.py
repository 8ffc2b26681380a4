"""The hub database's schema version: Alembic migrations, the head check, models-vs-DB comparison.

PostgreSQL (production) gets its tables from the migrations only (``sharehub db upgrade``);
``catalog.db.engine.engine_for`` refuses a database that is not at the head revision. The embedded
SQLite file is created from the models and stamped at head (upgraded in place when behind).

Alembic manages the ``hub_*`` tables of ``catalog.db.tables`` and nothing else in the database:
the serving tables ``srv_*`` (created at runtime by ``catalog.serving.tables``), pyiceberg's SQL
catalog tables (``iceberg_tables``, ``iceberg_namespace_properties``) and anything else that
shares the database (Airflow's tables, say) are never compared, created or dropped. The version
table is ``hub_alembic_version``, so it cannot collide with Airflow's ``alembic_version``.

A new revision, after changing ``catalog/db/tables.py``, against a database at head::

    from alembic import command
    from catalog.db import migrate
    with migrate.connect(url) as conn:
        command.revision(migrate.alembic_config(conn), message="...", autogenerate=True)

then review the generated file under ``catalog/db/migrations/versions/``.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from catalog.db import tables

if TYPE_CHECKING:
    from alembic.config import Config
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory

MIGRATIONS_DIR = Path(__file__).with_name("migrations")
VERSION_TABLE = "hub_alembic_version"
MANAGED_PREFIX = "hub_"
_PG_UPGRADE_LOCK = 0x5348_4442  # pg advisory lock key ("SHDB"): one upgrade at a time per database

_version_table = sa.Table(VERSION_TABLE, sa.MetaData(), sa.Column("version_num", sa.String(32)))


class SchemaNotCurrentError(RuntimeError):
    """The hub database is not at the migrations' head revision (run ``sharehub db upgrade``)."""


def masked_url(url: str) -> str:
    """The URL with its password replaced by ``***`` (safe to print and log)."""
    return sa.make_url(url).render_as_string(hide_password=True)


def include_name(name: str | None, type_: str, parent_names: Any) -> bool:
    """Alembic ``include_name`` hook: only ``hub_*`` tables (minus the version table) are managed."""
    if type_ == "table":
        return name is not None and name.startswith(MANAGED_PREFIX) and name != VERSION_TABLE
    return True


def context_options(metadata: sa.MetaData = tables.metadata) -> dict[str, Any]:
    """The options every migration context of the hub DB uses (env.py, compare, stamp)."""
    return {
        "version_table": VERSION_TABLE,
        "target_metadata": metadata,
        "include_name": include_name,
        "compare_type": True,
        "compare_server_default": _compare_server_default,
    }


def _sqlite_literal(text: str) -> str:
    text = text.strip()
    if text.startswith("(") and text.endswith(")"):
        text = text[1:-1].strip()
    if len(text) >= 2 and text[0] == text[-1] == "'":
        text = text[1:-1]
    return text


def _compare_server_default(
    context: MigrationContext,
    inspected_column: sa.Column[Any],
    metadata_column: sa.Column[Any],
    inspected_default: str | None,
    metadata_default: Any,
    rendered_metadata_default: str | None,
) -> bool | None:
    """Alembic hook: on SQLite compare literals ourselves (Alembic's own sees ``''`` and an empty
    default as different); None = Alembic's comparison for every other case."""
    if context.dialect.name != "sqlite" or inspected_default is None or rendered_metadata_default is None:
        return None
    return _sqlite_literal(inspected_default) != _sqlite_literal(rendered_metadata_default)


def alembic_config(connection: sa.Connection | None = None) -> Config:
    """An Alembic config built in code (no alembic.ini): the packaged scripts, optionally a connection.

    With ``connection``, ``env.py`` runs the migrations on it (inside its transaction)."""
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR).replace("%", "%%"))
    if connection is not None:
        cfg.attributes["connection"] = connection
    return cfg


@lru_cache(maxsize=1)
def _scripts() -> ScriptDirectory:
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config())


def head() -> str:
    """The newest revision of the packaged migrations."""
    rev = _scripts().get_current_head()  # raises when the scripts have several heads
    if rev is None:
        raise RuntimeError(f"no migration scripts under {MIGRATIONS_DIR}")
    return rev


def _known(rev: str) -> bool:
    from alembic.util import CommandError

    try:
        return _scripts().get_revision(rev) is not None
    except CommandError:
        return False


def _sqlite_file(url: str) -> Path | None:
    u = sa.make_url(url)
    if u.get_backend_name() != "sqlite" or not u.database or u.database == ":memory:":
        return None
    return Path(u.database)


@contextmanager
def connect(url: str) -> Iterator[sa.Connection]:
    """A single, unpooled connection to the hub DB (for migration commands), disposed afterwards."""
    path = _sqlite_file(url)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as conn:
            yield conn
    finally:
        engine.dispose()


def _migration_context(conn: sa.Connection, metadata: sa.MetaData = tables.metadata) -> MigrationContext:
    from alembic.runtime.migration import MigrationContext

    return MigrationContext.configure(conn, opts=context_options(metadata))


def _serialise(conn: sa.Connection) -> None:
    """Take the database-wide lock that keeps concurrent upgrades/initialisations apart."""
    dialect = conn.dialect.name
    if dialect == "postgresql":
        conn.execute(sa.select(sa.func.pg_advisory_xact_lock(_PG_UPGRADE_LOCK)))
    elif dialect == "sqlite":
        # the write lock up front: pysqlite would only begin at the first DML, after our reads
        conn.exec_driver_sql("BEGIN IMMEDIATE")


def upgrade(url: str, revision: str = "head") -> None:
    """Apply the migrations up to ``revision`` in one transaction (a no-op when already there)."""
    from alembic import command

    with connect(url) as conn:
        _serialise(conn)
        command.upgrade(alembic_config(conn), revision)
        conn.commit()


def current(url: str) -> str | None:
    """The database's revision; None when it has none (never upgraded, or a missing SQLite file)."""
    path = _sqlite_file(url)
    if path is not None and not path.exists():
        return None
    with connect(url) as conn:
        return _migration_context(conn).get_current_revision()


def check(url: str, metadata: sa.MetaData = tables.metadata) -> list[str]:
    """The differences between the database and ``metadata`` (the models); empty = in sync.

    Lists a revision other than head first, then each table, column, type, nullability,
    server default, index, unique constraint and foreign key that differs."""
    from alembic.autogenerate import compare_metadata

    with connect(url) as conn:
        ctx = _migration_context(conn, metadata)
        rev = ctx.get_current_revision()
        diffs = compare_metadata(ctx, metadata)
    out: list[str] = []
    if rev != head():
        out.append(f"revision: database at {rev or 'none'}, migrations at {head()}")
    for diff in diffs:
        for one in diff if isinstance(diff, list) else [diff]:
            out.append(describe(one))
    return out


def ensure_embedded(engine: sa.Engine) -> None:
    """SQLite: create missing hub tables from the models and stamp head, or upgrade an older file."""
    with engine.connect() as conn:
        _serialise(conn)
        ctx = _migration_context(conn)
        rev = ctx.get_current_revision()
        if rev is None:
            tables.metadata.create_all(conn)
            ctx.stamp(_scripts(), "head")
        elif rev != head():
            if not _known(rev):
                raise SchemaNotCurrentError(_unknown_message(engine, rev))
            from alembic import command

            command.upgrade(alembic_config(conn), "head")
        conn.commit()


def require_head(engine: sa.Engine) -> None:
    """Raise :class:`SchemaNotCurrentError` unless the database is at head (one query when it is)."""
    try:
        with engine.connect() as conn:
            revs = list(conn.execute(sa.select(_version_table.c.version_num)).scalars())
    except sa.exc.ProgrammingError:
        with engine.connect() as conn:
            if sa.inspect(conn).has_table(VERSION_TABLE):
                raise  # the table is there: some other problem (privileges, say)
        revs = []
    want = head()
    if revs == [want]:
        return
    where = engine.url.render_as_string(hide_password=True)
    if not revs:
        raise SchemaNotCurrentError(
            f"the hub database {where} has no schema revision ({VERSION_TABLE} missing or empty): "
            "run `sharehub db upgrade`"
        )
    unknown = [r for r in revs if not _known(r)]
    if unknown:
        raise SchemaNotCurrentError(_unknown_message(engine, unknown[0]))
    raise SchemaNotCurrentError(
        f"the hub database {where} is at revision {', '.join(revs)}, this code needs {want}: "
        "run `sharehub db upgrade`"
    )


def _unknown_message(engine: sa.Engine, rev: str) -> str:
    return (
        f"the hub database {engine.url.render_as_string(hide_password=True)} is at revision {rev}, "
        f"which these migrations do not know (head {head()}): it was upgraded by a newer sharehub"
    )


# ---- readable differences ---------------------------------------------------------------------


def _type(t: Any) -> str:
    try:
        return str(t)
    except Exception:  # a reflected dialect-only type the generic compiler cannot render
        return type(t).__name__


def _default(d: Any) -> str:
    arg = getattr(d, "arg", d)
    return repr(getattr(arg, "text", arg))


def _cols(cols: Sequence[Any]) -> str:
    return ", ".join(getattr(c, "name", str(c)) for c in cols)


def describe(diff: tuple[Any, ...]) -> str:
    """One Alembic autogenerate difference as a line of text."""
    kind = diff[0]
    verb, _, what = kind.partition("_")
    if what == "table":
        return f"{verb} table {diff[1].name}"
    if what == "column":
        col = diff[3]
        return f"{verb} column {diff[2]}.{col.name} {_type(col.type)}"
    if what == "index":
        ix = diff[1]
        unique = "unique " if ix.unique else ""
        return f"{verb} {unique}index {ix.name} on {ix.table.name} ({_cols(list(ix.expressions))})"
    if what == "constraint":
        c = diff[1]
        return (
            f"{verb} unique constraint {c.name or '(unnamed)'} on {c.table.name} ({_cols(list(c.columns))})"
        )
    if what == "fk":
        fk = diff[1]
        target = fk.elements[0].target_fullname.rsplit(".", 1)[0] if fk.elements else "?"
        return f"{verb} foreign key on {fk.parent.name} ({_cols(list(fk.columns))}) -> {target}"
    if verb == "modify":
        _, _, table, column, _existing, old, new = diff
        if what == "type":
            return f"type of {table}.{column}: database {_type(old)}, models {_type(new)}"
        if what == "nullable":
            return f"nullable of {table}.{column}: database {old}, models {new}"
        if what == "default":
            return f"server default of {table}.{column}: database {_default(old)}, models {_default(new)}"
        return f"{what} of {table}.{column}: database {old!r}, models {new!r}"
    return f"{kind}: {diff[1:]!r}"
