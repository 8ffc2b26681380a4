"""Initial hub tables: the directory, sync runs, certificates, access control and the audit log.

Revision ID: 0001
Revises:
Create Date: 2026-11-22
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Create every table of catalog/db/tables.py as of this revision (tables in dependency order)."""
    op.create_table(
        "hub_departments",
        sa.Column("code", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("credit_code", sa.String(length=18), nullable=True),
        sa.Column("contact", sa.String(length=200), server_default="", nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("code"),
    )
    op.create_table(
        "hub_datasets",
        sa.Column("code", sa.String(length=64), nullable=False),
        sa.Column("department_code", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("share_type", sa.String(length=16), nullable=False),
        sa.Column("open", sa.Boolean(), nullable=False),
        sa.Column("grade", sa.String(length=16), nullable=False),
        sa.Column("schedule", sa.String(length=100), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("spec", sa.JSON(), nullable=False),
        sa.Column("published_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["department_code"], ["hub_departments.code"]),
        sa.PrimaryKeyConstraint("code"),
    )
    op.create_index(
        op.f("ix_hub_datasets_department_code"), "hub_datasets", ["department_code"], unique=False
    )
    op.create_table(
        "hub_dataset_versions",
        sa.Column("code", sa.String(length=64), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("spec", sa.JSON(), nullable=False),
        sa.Column("spec_sha256", sa.String(length=64), nullable=False),
        sa.Column("source_file", sa.String(length=500), nullable=False),
        sa.Column("published_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("code", "version"),
    )
    op.create_table(
        "hub_certificate_types",
        sa.Column("code", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("holder_kind", sa.String(length=16), nullable=False),
        sa.Column("dataset_code", sa.String(length=64), nullable=False),
        sa.Column("department_code", sa.String(length=32), nullable=False),
        sa.Column("validity_years", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(["department_code"], ["hub_departments.code"]),
        sa.PrimaryKeyConstraint("code"),
    )
    op.create_index(
        op.f("ix_hub_certificate_types_dataset_code"), "hub_certificate_types", ["dataset_code"], unique=False
    )
    op.create_table(
        "hub_sync_runs",
        sa.Column("run_id", sa.String(length=250), nullable=False),
        sa.Column("dataset_code", sa.String(length=64), nullable=False),
        sa.Column("dataset_version", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("stage", sa.String(length=16), nullable=False),
        sa.Column("full", sa.Boolean(), nullable=False),
        sa.Column("trigger", sa.String(length=16), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("rows_read", sa.BigInteger(), nullable=True),
        sa.Column("rows_rejected", sa.BigInteger(), nullable=True),
        sa.Column("rows_published", sa.BigInteger(), nullable=True),
        sa.Column("rows_quarantined", sa.BigInteger(), nullable=True),
        sa.Column("pass_rate", sa.Float(), nullable=True),
        sa.Column("raw_snapshot_id", sa.BigInteger(), nullable=True),
        sa.Column("snapshot_id", sa.BigInteger(), nullable=True),
        sa.Column("watermark_before", sa.JSON(), nullable=True),
        sa.Column("watermark_after", sa.JSON(), nullable=True),
        sa.Column("files", sa.JSON(), nullable=True),
        sa.Column("drift", sa.JSON(), nullable=True),
        sa.Column("quality", sa.JSON(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("durations", sa.JSON(), nullable=True),
        sa.PrimaryKeyConstraint("run_id"),
    )
    op.create_index(op.f("ix_hub_sync_runs_dataset_code"), "hub_sync_runs", ["dataset_code"], unique=False)
    op.create_index(op.f("ix_hub_sync_runs_started_at"), "hub_sync_runs", ["started_at"], unique=False)
    op.create_table(
        "hub_run_rejects",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("run_id", sa.String(length=250), nullable=False),
        sa.Column("rid", sa.BigInteger(), nullable=True),
        sa.Column("source", sa.String(length=500), nullable=False),
        sa.Column("row", sa.BigInteger(), nullable=False),
        sa.Column("field", sa.String(length=100), nullable=True),
        sa.Column("value", sa.Text(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(op.f("ix_hub_run_rejects_run_id"), "hub_run_rejects", ["run_id"], unique=False)
    op.create_table(
        "hub_watermarks",
        sa.Column("dataset_code", sa.String(length=64), nullable=False),
        sa.Column("value", sa.JSON(), nullable=True),
        sa.Column("run_id", sa.String(length=250), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("dataset_code"),
    )
    op.create_table(
        "hub_file_ledger",
        sa.Column("dataset_code", sa.String(length=64), nullable=False),
        sa.Column("file_name", sa.String(length=500), nullable=False),
        sa.Column("checksum", sa.String(length=64), nullable=False),
        sa.Column("rows", sa.BigInteger(), nullable=False),
        sa.Column("run_id", sa.String(length=250), nullable=False),
        sa.Column("taken_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("dataset_code", "file_name"),
    )
    op.create_table(
        "hub_certificates",
        sa.Column("identifier", sa.String(length=200), nullable=False),
        sa.Column("type_code", sa.String(length=32), nullable=False),
        sa.Column("dataset_code", sa.String(length=64), nullable=False),
        sa.Column("record_key", sa.String(length=500), nullable=False),
        sa.Column("number", sa.String(length=100), nullable=False),
        sa.Column("holder_id", sa.String(length=32), nullable=False),
        sa.Column("holder_name", sa.String(length=200), nullable=False),
        sa.Column("issuer_code", sa.String(length=32), nullable=False),
        sa.Column("issuer_name", sa.String(length=200), nullable=False),
        sa.Column("valid_from", sa.Date(), nullable=True),
        sa.Column("valid_until", sa.Date(), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("serial", sa.Integer(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("face", sa.JSON(), nullable=False),
        sa.Column("face_sha256", sa.String(length=64), nullable=False),
        sa.Column("issued_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("run_id", sa.String(length=250), nullable=False),
        sa.Column("signature", sa.String(length=200), nullable=True),
        sa.Column("signing_kid", sa.String(length=64), nullable=True),
        sa.PrimaryKeyConstraint("identifier"),
        sa.UniqueConstraint("type_code", "record_key", name="uq_cert_type_record"),
    )
    op.create_index(op.f("ix_hub_certificates_holder_id"), "hub_certificates", ["holder_id"], unique=False)
    op.create_table(
        "hub_apps",
        sa.Column("app_id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("department_code", sa.String(length=32), nullable=False),
        sa.Column("description", sa.Text(), server_default="", nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("secret_hash", sa.String(length=128), nullable=False),
        sa.Column("secret_generation", sa.Integer(), nullable=False),
        sa.Column("secret_rotated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["department_code"], ["hub_departments.code"]),
        sa.PrimaryKeyConstraint("app_id"),
        sa.UniqueConstraint("name"),
    )
    op.create_index(op.f("ix_hub_apps_department_code"), "hub_apps", ["department_code"], unique=False)
    op.create_table(
        "hub_staff",
        sa.Column("username", sa.String(length=64), nullable=False),
        sa.Column("department_code", sa.String(length=32), nullable=True),
        sa.Column("roles", sa.JSON(), nullable=False),
        sa.Column("password_hash", sa.String(length=200), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("password_generation", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("password_changed_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["department_code"], ["hub_departments.code"]),
        sa.PrimaryKeyConstraint("username"),
    )
    op.create_index(op.f("ix_hub_staff_department_code"), "hub_staff", ["department_code"], unique=False)
    op.create_table(
        "hub_applications",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("app_id", sa.String(length=64), nullable=False),
        sa.Column("dataset_code", sa.String(length=64), nullable=False),
        sa.Column("department_code", sa.String(length=32), nullable=False),
        sa.Column("dataset_version", sa.Integer(), nullable=False),
        sa.Column("fields", sa.JSON(), nullable=False),
        sa.Column("clear_fields", sa.JSON(), nullable=False),
        sa.Column("purpose", sa.Text(), nullable=False),
        sa.Column("legal_basis", sa.Text(), nullable=False),
        sa.Column("requested_until", sa.Date(), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("submitted_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("deadline", sa.Date(), nullable=False),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("decided_by", sa.String(length=64), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("grant_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(["app_id"], ["hub_apps.app_id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(op.f("ix_hub_applications_app_id"), "hub_applications", ["app_id"], unique=False)
    op.create_index(
        op.f("ix_hub_applications_dataset_code"), "hub_applications", ["dataset_code"], unique=False
    )
    op.create_index(
        op.f("ix_hub_applications_department_code"), "hub_applications", ["department_code"], unique=False
    )
    op.create_table(
        "hub_grants",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("app_id", sa.String(length=64), nullable=False),
        sa.Column("dataset_code", sa.String(length=64), nullable=False),
        sa.Column("application_id", sa.Integer(), nullable=False),
        sa.Column("fields", sa.JSON(), nullable=False),
        sa.Column("clear_fields", sa.JSON(), nullable=False),
        sa.Column("valid_from", sa.DateTime(timezone=True), nullable=False),
        sa.Column("valid_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("rate_limit", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_by", sa.String(length=64), nullable=True),
        sa.Column("revoke_reason", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(["app_id"], ["hub_apps.app_id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_grants_app_dataset", "hub_grants", ["app_id", "dataset_code"], unique=False)
    op.create_table(
        "hub_signing_keys",
        sa.Column("kid", sa.String(length=64), nullable=False),
        sa.Column("purpose", sa.String(length=16), nullable=False),
        sa.Column("public_key", sa.String(length=100), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("retired_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("kid"),
    )
    op.create_table(
        "hub_certificate_copies",
        sa.Column("copy_id", sa.String(length=64), nullable=False),
        sa.Column("identifier", sa.String(length=200), nullable=False),
        sa.Column("app_id", sa.String(length=64), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("end_user", sa.String(length=100), nullable=True),
        sa.Column("case_number", sa.String(length=100), nullable=True),
        sa.Column("issued_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("document", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("copy_id"),
    )
    op.create_index(
        op.f("ix_hub_certificate_copies_identifier"), "hub_certificate_copies", ["identifier"], unique=False
    )
    op.create_table(
        "hub_audit",
        sa.Column(
            "seq", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=False, nullable=False
        ),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("request_id", sa.String(length=64), nullable=False),
        sa.Column("actor_kind", sa.String(length=16), nullable=False),
        sa.Column("app_id", sa.String(length=64), nullable=True),
        sa.Column("staff", sa.String(length=64), nullable=True),
        sa.Column("end_user", sa.String(length=100), nullable=True),
        sa.Column("case_number", sa.String(length=100), nullable=True),
        sa.Column("method", sa.String(length=8), nullable=False),
        sa.Column("path", sa.String(length=500), nullable=False),
        sa.Column("action", sa.String(length=64), nullable=False),
        sa.Column("dataset_code", sa.String(length=64), nullable=True),
        sa.Column("certificate_id", sa.String(length=200), nullable=True),
        sa.Column("subject", sa.String(length=64), nullable=True),
        sa.Column("fields", sa.JSON(), nullable=True),
        sa.Column("decision", sa.String(length=8), nullable=False),
        sa.Column("reason", sa.String(length=64), nullable=True),
        sa.Column("status", sa.Integer(), nullable=False),
        sa.Column("row_count", sa.Integer(), nullable=False),
        sa.Column("prev_hash", sa.String(length=64), nullable=False),
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("seq"),
    )
    op.create_index(op.f("ix_hub_audit_app_id"), "hub_audit", ["app_id"], unique=False)
    op.create_index(op.f("ix_hub_audit_at"), "hub_audit", ["at"], unique=False)
    op.create_index(op.f("ix_hub_audit_dataset_code"), "hub_audit", ["dataset_code"], unique=False)
    op.create_table(
        "hub_audit_head",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )


def downgrade() -> None:
    """Drop every hub table."""
    op.drop_table("hub_audit_head")
    op.drop_index(op.f("ix_hub_audit_dataset_code"), table_name="hub_audit")
    op.drop_index(op.f("ix_hub_audit_at"), table_name="hub_audit")
    op.drop_index(op.f("ix_hub_audit_app_id"), table_name="hub_audit")
    op.drop_table("hub_audit")
    op.drop_index(op.f("ix_hub_certificate_copies_identifier"), table_name="hub_certificate_copies")
    op.drop_table("hub_certificate_copies")
    op.drop_table("hub_signing_keys")
    op.drop_index("ix_grants_app_dataset", table_name="hub_grants")
    op.drop_table("hub_grants")
    op.drop_index(op.f("ix_hub_applications_department_code"), table_name="hub_applications")
    op.drop_index(op.f("ix_hub_applications_dataset_code"), table_name="hub_applications")
    op.drop_index(op.f("ix_hub_applications_app_id"), table_name="hub_applications")
    op.drop_table("hub_applications")
    op.drop_index(op.f("ix_hub_staff_department_code"), table_name="hub_staff")
    op.drop_table("hub_staff")
    op.drop_index(op.f("ix_hub_apps_department_code"), table_name="hub_apps")
    op.drop_table("hub_apps")
    op.drop_index(op.f("ix_hub_certificates_holder_id"), table_name="hub_certificates")
    op.drop_table("hub_certificates")
    op.drop_table("hub_file_ledger")
    op.drop_table("hub_watermarks")
    op.drop_index(op.f("ix_hub_run_rejects_run_id"), table_name="hub_run_rejects")
    op.drop_table("hub_run_rejects")
    op.drop_index(op.f("ix_hub_sync_runs_started_at"), table_name="hub_sync_runs")
    op.drop_index(op.f("ix_hub_sync_runs_dataset_code"), table_name="hub_sync_runs")
    op.drop_table("hub_sync_runs")
    op.drop_index(op.f("ix_hub_certificate_types_dataset_code"), table_name="hub_certificate_types")
    op.drop_table("hub_certificate_types")
    op.drop_table("hub_dataset_versions")
    op.drop_index(op.f("ix_hub_datasets_department_code"), table_name="hub_datasets")
    op.drop_table("hub_datasets")
    op.drop_table("hub_departments")
