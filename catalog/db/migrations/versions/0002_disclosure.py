"""Disclosure: random certificate serials, one active grant per app × dataset,
what an audit record asked for and which datasets it consulted.

* ``hub_certificates.serial`` becomes BIGINT: new certificates get random serials (older ones
  keep theirs, so their identifiers stay valid).
* ``uq_grants_one_active``: a partial unique index on ``hub_grants (app_id, dataset_code)
  WHERE status = 'active'``. Should a database hold two active grants for a pair (a lost race
  before this revision), the older ones are revoked first, as superseded.
* ``hub_audit.datasets`` (JSON) and ``hub_audit.query`` (text) — both null in older records,
  whose hashes therefore do not change (see catalog/audit/chain.py) — and the derived index table
  ``hub_audit_datasets`` (dataset code, seq) of the datasets multi-dataset records consulted
  (older records have none: they name their one dataset in ``dataset_code``).

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-04
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Apply the changes above (data first where an index needs it)."""
    with op.batch_alter_table("hub_certificates") as batch:
        batch.alter_column(
            "serial", existing_type=sa.Integer(), type_=sa.BigInteger(), existing_nullable=False
        )

    # keep the newest active grant of each pair; the older active ones were superseded
    op.execute(
        sa.text(
            "UPDATE hub_grants SET status = 'revoked', revoked_at = created_at, revoked_by = 'migration', "
            "revoke_reason = 'superseded: more than one active grant' "
            "WHERE status = 'active' AND EXISTS (SELECT 1 FROM hub_grants AS newer "
            "WHERE newer.app_id = hub_grants.app_id AND newer.dataset_code = hub_grants.dataset_code "
            "AND newer.status = 'active' AND newer.id > hub_grants.id)"
        )
    )
    op.create_index(
        "uq_grants_one_active",
        "hub_grants",
        ["app_id", "dataset_code"],
        unique=True,
        sqlite_where=sa.text("status = 'active'"),
        postgresql_where=sa.text("status = 'active'"),
    )

    with op.batch_alter_table("hub_audit") as batch:
        batch.add_column(sa.Column("datasets", sa.JSON(), nullable=True))
        batch.add_column(sa.Column("query", sa.String(length=500), nullable=True))
    seq_type = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
    op.create_table(
        "hub_audit_datasets",
        sa.Column("dataset_code", sa.String(length=64), nullable=False),
        sa.Column("seq", seq_type, autoincrement=False, nullable=False),
        sa.PrimaryKeyConstraint("dataset_code", "seq"),
    )


def downgrade() -> None:
    """Undo the schema changes (random serials above 2**31 would not fit: refuse then)."""
    op.drop_table("hub_audit_datasets")
    with op.batch_alter_table("hub_audit") as batch:
        batch.drop_column("query")
        batch.drop_column("datasets")
    op.drop_index("uq_grants_one_active", table_name="hub_grants")
    with op.batch_alter_table("hub_certificates") as batch:
        batch.alter_column(
            "serial", existing_type=sa.BigInteger(), type_=sa.Integer(), existing_nullable=False
        )
