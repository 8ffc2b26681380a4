"""Grade controls (issue 14): signing-key withdrawal, staff single sign-on (account links and
sign-ins under way), access anomalies (异常访问) and the audit log's retention archives.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-05
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | Sequence[str] | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Add the columns and tables above; certificates signed before get their last update as
    the time they were signed (signing happens in the same statement as the update)."""
    with op.batch_alter_table("hub_signing_keys") as batch:
        batch.add_column(sa.Column("withdrawn_since", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("withdrawn_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("withdrawn_by", sa.String(length=64), nullable=True))
        batch.add_column(sa.Column("withdrawn_reason", sa.Text(), nullable=True))
    with op.batch_alter_table("hub_certificates") as batch:
        batch.add_column(sa.Column("signed_at", sa.DateTime(timezone=True), nullable=True))
    op.execute("UPDATE hub_certificates SET signed_at = updated_at WHERE signature IS NOT NULL")
    with op.batch_alter_table("hub_staff") as batch:
        batch.add_column(sa.Column("sso_issuer", sa.String(length=500), nullable=True))
        batch.add_column(sa.Column("sso_subject", sa.String(length=255), nullable=True))
        batch.create_unique_constraint("uq_staff_sso_subject", ["sso_issuer", "sso_subject"])
    op.create_table(
        "hub_access_anomalies",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("app_id", sa.String(length=64), nullable=False),
        sa.Column("dataset_code", sa.String(length=64), nullable=True),
        sa.Column("department_code", sa.String(length=32), nullable=True),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("detected_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("window_start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("window_end", sa.DateTime(timezone=True), nullable=False),
        sa.Column("observed", sa.Float(), nullable=False),
        sa.Column("baseline", sa.Float(), nullable=False),
        sa.Column("threshold", sa.Float(), nullable=False),
        sa.Column("details", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("throttled_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("cleared_by", sa.String(length=64), nullable=True),
        sa.Column("cleared_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("clear_reason", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_hub_access_anomalies_app_id", "hub_access_anomalies", ["app_id"])
    op.create_index("ix_hub_access_anomalies_dataset_code", "hub_access_anomalies", ["dataset_code"])
    op.create_index("ix_hub_access_anomalies_department_code", "hub_access_anomalies", ["department_code"])
    op.create_index("ix_hub_access_anomalies_detected_at", "hub_access_anomalies", ["detected_at"])
    op.create_table(
        "hub_audit_archives",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("first_seq", sa.BigInteger(), nullable=False),
        sa.Column("last_seq", sa.BigInteger(), nullable=False),
        sa.Column("prev_hash", sa.String(length=64), nullable=False),
        sa.Column("last_hash", sa.String(length=64), nullable=False),
        sa.Column("records", sa.Integer(), nullable=False),
        sa.Column("cutoff", sa.DateTime(timezone=True), nullable=False),
        sa.Column("archived_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("archived_by", sa.String(length=64), nullable=False),
        sa.Column("file_name", sa.String(length=500), nullable=False),
        sa.Column("file_sha256", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("last_seq"),
    )
    op.create_table(
        "hub_sso_logins",
        sa.Column("state_hash", sa.String(length=64), nullable=False),
        sa.Column("browser_hash", sa.String(length=64), nullable=False),
        sa.Column("nonce", sa.String(length=100), nullable=False),
        sa.Column("code_verifier", sa.String(length=128), nullable=False),
        sa.Column("next_url", sa.String(length=500), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("state_hash"),
    )
    op.create_index("ix_hub_sso_logins_expires_at", "hub_sso_logins", ["expires_at"])


def downgrade() -> None:
    """Drop them."""
    op.drop_table("hub_sso_logins")
    op.drop_table("hub_audit_archives")
    op.drop_table("hub_access_anomalies")
    with op.batch_alter_table("hub_staff") as batch:
        batch.drop_constraint("uq_staff_sso_subject", type_="unique")
        batch.drop_column("sso_subject")
        batch.drop_column("sso_issuer")
    with op.batch_alter_table("hub_certificates") as batch:
        batch.drop_column("signed_at")
    with op.batch_alter_table("hub_signing_keys") as batch:
        batch.drop_column("withdrawn_reason")
        batch.drop_column("withdrawn_by")
        batch.drop_column("withdrawn_at")
        batch.drop_column("withdrawn_since")
