"""The portal (issue 13): portal sessions, directory submissions for review (目录审核), data
objections (数据异议), each run's quarantined rows in the hub DB (the correction list), and
(issue 14) when and why the grade policy narrowed a grant, and the owner's first approval of an
application waiting for the data authority's second one (双人审批).

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-05
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Add the tables above, and the grade policy's narrowing of a grant."""
    with op.batch_alter_table("hub_grants") as batch:
        batch.add_column(sa.Column("narrowed_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("narrowed_reason", sa.Text(), nullable=True))
    with op.batch_alter_table("hub_applications") as batch:
        batch.add_column(sa.Column("first_decided_by", sa.String(length=64), nullable=True))
        batch.add_column(sa.Column("first_decided_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("first_decision", sa.JSON(), nullable=True))
    op.create_table(
        "hub_quarantine_rows",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("run_id", sa.String(length=250), nullable=False),
        sa.Column("dataset_code", sa.String(length=64), nullable=False),
        sa.Column("source", sa.String(length=500), nullable=True),
        sa.Column("row", sa.BigInteger(), nullable=True),
        sa.Column("record_key", sa.String(length=500), nullable=True),
        sa.Column("reasons", sa.JSON(), nullable=False),
        sa.Column("record", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_hub_quarantine_rows_run_id", "hub_quarantine_rows", ["run_id"])
    op.create_index("ix_hub_quarantine_rows_dataset_code", "hub_quarantine_rows", ["dataset_code"])
    op.create_index("ix_hub_quarantine_rows_record_key", "hub_quarantine_rows", ["record_key"])
    op.create_table(
        "hub_portal_sessions",
        sa.Column("id_hash", sa.String(length=64), nullable=False),
        sa.Column("username", sa.String(length=64), nullable=False),
        sa.Column("password_generation", sa.Integer(), nullable=False),
        sa.Column("csrf_token", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id_hash"),
    )
    op.create_index("ix_hub_portal_sessions_username", "hub_portal_sessions", ["username"])
    op.create_index("ix_hub_portal_sessions_expires_at", "hub_portal_sessions", ["expires_at"])
    op.create_table(
        "hub_directory_submissions",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("department_code", sa.String(length=32), nullable=False),
        sa.Column("content", sa.Text(), nullable=False),
        sa.Column("source_name", sa.String(length=500), nullable=False),
        sa.Column("content_sha256", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("submitted_by", sa.String(length=64), nullable=False),
        sa.Column("submitted_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("decided_by", sa.String(length=64), nullable=True),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("changes", sa.JSON(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        "ix_hub_directory_submissions_department_code", "hub_directory_submissions", ["department_code"]
    )
    op.create_table(
        "hub_objections",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("dataset_code", sa.String(length=64), nullable=False),
        sa.Column("department_code", sa.String(length=32), nullable=False),
        sa.Column("record_key", sa.String(length=500), nullable=False),
        sa.Column("field", sa.String(length=100), nullable=True),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("evidence", sa.Text(), nullable=True),
        sa.Column("raised_by_kind", sa.String(length=16), nullable=False),
        sa.Column("raised_by", sa.String(length=64), nullable=False),
        sa.Column("raised_department", sa.String(length=32), nullable=True),
        sa.Column("raised_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("due_date", sa.Date(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("answer", sa.Text(), nullable=True),
        sa.Column("answered_by", sa.String(length=64), nullable=True),
        sa.Column("answered_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_hub_objections_dataset_code", "hub_objections", ["dataset_code"])
    op.create_index("ix_hub_objections_department_code", "hub_objections", ["department_code"])


def downgrade() -> None:
    """Drop them."""
    op.drop_table("hub_objections")
    op.drop_table("hub_directory_submissions")
    op.drop_table("hub_portal_sessions")
    op.drop_table("hub_quarantine_rows")
    with op.batch_alter_table("hub_applications") as batch:
        batch.drop_column("first_decision")
        batch.drop_column("first_decided_at")
        batch.drop_column("first_decided_by")
    with op.batch_alter_table("hub_grants") as batch:
        batch.drop_column("narrowed_reason")
        batch.drop_column("narrowed_at")
