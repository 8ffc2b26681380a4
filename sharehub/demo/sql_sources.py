"""The market regulator's sample database on a real server: PostgreSQL or MariaDB/MySQL.

:func:`sharehub.demo.generate` writes the department's ``business_licence`` table to a
SQLite file (the embedded default). :func:`load_licences` copies it, typed, into another
database so the same dataset syncs from the servers a department really runs
(``SHAREHUB_CONNECTIONS__SCJ_DB=postgresql+psycopg://…`` or ``mysql+pymysql://…``).
"""

from __future__ import annotations

import sqlalchemy as sa

TABLE = "business_licence"


def licence_table(metadata: sa.MetaData) -> sa.Table:
    """The department's table as it is declared (no primary key: the source does not enforce one)."""
    return sa.Table(
        TABLE,
        metadata,
        sa.Column("uscc", sa.String(18)),
        sa.Column("ent_name", sa.String(200)),
        sa.Column("ent_type", sa.String(60)),
        sa.Column("legal_rep", sa.String(60)),
        sa.Column("reg_capital", sa.Numeric(18, 2)),
        sa.Column("est_date", sa.Date),
        sa.Column("valid_until", sa.Date),
        sa.Column("reg_authority", sa.String(100)),
        sa.Column("address", sa.String(300)),
        sa.Column("business_scope", sa.Text),
        sa.Column("status", sa.String(10)),
        sa.Column("updated_at", sa.DateTime),
        sa.Index("ix_business_licence_updated_at", "updated_at"),
        sa.Index("ix_business_licence_uscc", "uscc"),
    )


def load_licences(source_url: str, target_url: str, *, chunk: int = 5000) -> int:
    """Replace the target's ``business_licence`` with the source's rows; returns the row count."""
    src_engine = sa.create_engine(source_url)
    dst_engine = sa.create_engine(target_url)
    try:
        src = licence_table(sa.MetaData())
        dst = licence_table(sa.MetaData())
        dst.drop(dst_engine, checkfirst=True)
        dst.create(dst_engine)
        n = 0
        with src_engine.connect() as s_conn, dst_engine.begin() as d_conn:
            result = s_conn.execution_options(yield_per=chunk).execute(sa.select(src))
            for part in result.mappings().partitions(chunk):
                d_conn.execute(dst.insert(), [dict(r) for r in part])
                n += len(part)
        return n
    finally:
        src_engine.dispose()
        dst_engine.dispose()
