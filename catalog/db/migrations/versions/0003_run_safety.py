"""Run safety (runs that publish exactly, or fail loudly): run locks with leases, the serving
table's snapshot, each run's starting snapshot and step attempts.

* ``hub_dataset_locks``: one run of a dataset at a time; a lease and a heartbeat find runs
  that died (catalog/runs/lease.py).
* ``hub_serving_state``: the curated snapshot each serving table reflects; a run that finds
  serving behind curated reloads it first. Empty after the upgrade: the first run of each
  dataset reloads its serving table once.
* ``hub_sync_runs.base_snapshot_id`` (publish is fenced on it) and ``attempts``.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-04
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Add the tables and columns above."""
    op.create_table(
        "hub_dataset_locks",
        sa.Column("dataset_code", sa.String(length=64), nullable=False),
        sa.Column("run_id", sa.String(length=250), nullable=False),
        sa.Column("step", sa.String(length=16), nullable=False),
        sa.Column("holder", sa.String(length=200), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("acquired_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("lease_until", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("dataset_code"),
    )
    op.create_table(
        "hub_serving_state",
        sa.Column("dataset_code", sa.String(length=64), nullable=False),
        sa.Column("snapshot_id", sa.BigInteger(), nullable=True),
        sa.Column("run_id", sa.String(length=250), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("dataset_code"),
    )
    with op.batch_alter_table("hub_sync_runs") as batch:
        batch.add_column(sa.Column("base_snapshot_id", sa.BigInteger(), nullable=True))
        batch.add_column(sa.Column("attempts", sa.JSON(), nullable=True))


def downgrade() -> None:
    """Drop them."""
    with op.batch_alter_table("hub_sync_runs") as batch:
        batch.drop_column("attempts")
        batch.drop_column("base_snapshot_id")
    op.drop_table("hub_serving_state")
    op.drop_table("hub_dataset_locks")
