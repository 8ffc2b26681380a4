"""Tables of the hub database (SQLAlchemy Core).

The hub DB holds the data directory (departments, datasets and their version history,
certificate types), the record of sync runs (counts, snapshot ids, quality results,
watermarks, the file ledger), issued certificates, and — in tables created per dataset by
``catalog.serving`` — the serving store. SQLite is the embedded default, PostgreSQL the
production one; nothing here is dialect-specific.
"""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData()

departments = sa.Table(
    "hub_departments",
    metadata,
    sa.Column("code", sa.String(32), primary_key=True),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("credit_code", sa.String(18)),
    sa.Column("contact", sa.String(200), nullable=False, server_default=""),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
)

datasets = sa.Table(
    "hub_datasets",
    metadata,
    sa.Column("code", sa.String(64), primary_key=True),
    sa.Column("department_code", sa.ForeignKey("hub_departments.code"), nullable=False, index=True),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("share_type", sa.String(16), nullable=False),
    sa.Column("open", sa.Boolean, nullable=False),
    sa.Column("grade", sa.String(16), nullable=False),
    sa.Column("schedule", sa.String(100)),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("spec", sa.JSON, nullable=False),
    sa.Column("published_at", sa.DateTime(timezone=True), nullable=False),
)

dataset_versions = sa.Table(
    "hub_dataset_versions",
    metadata,
    sa.Column("code", sa.String(64), primary_key=True),
    sa.Column("version", sa.Integer, primary_key=True),
    sa.Column("spec", sa.JSON, nullable=False),
    sa.Column("spec_sha256", sa.String(64), nullable=False),
    sa.Column("source_file", sa.String(500), nullable=False),
    sa.Column("published_at", sa.DateTime(timezone=True), nullable=False),
)

certificate_types = sa.Table(
    "hub_certificate_types",
    metadata,
    sa.Column("code", sa.String(32), primary_key=True),
    sa.Column("name", sa.String(100), nullable=False),
    sa.Column("holder_kind", sa.String(16), nullable=False),
    sa.Column("dataset_code", sa.String(64), nullable=False, index=True),
    sa.Column("department_code", sa.ForeignKey("hub_departments.code"), nullable=False),
    sa.Column("validity_years", sa.Integer),
)

sync_runs = sa.Table(
    "hub_sync_runs",
    metadata,
    sa.Column("run_id", sa.String(250), primary_key=True),
    sa.Column("dataset_code", sa.String(64), nullable=False, index=True),
    sa.Column("dataset_version", sa.Integer, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),  # running|landed|validated|success|blocked|failed
    sa.Column("stage", sa.String(16), nullable=False),  # extract_land|validate|publish|done
    sa.Column("full", sa.Boolean, nullable=False),
    sa.Column("trigger", sa.String(16), nullable=False),  # cli|airflow
    sa.Column("started_at", sa.DateTime(timezone=True), nullable=False, index=True),
    sa.Column("finished_at", sa.DateTime(timezone=True)),
    sa.Column("rows_read", sa.BigInteger),
    sa.Column("rows_rejected", sa.BigInteger),  # rows a connector could not read or cast
    sa.Column("rows_published", sa.BigInteger),
    sa.Column("rows_quarantined", sa.BigInteger),
    sa.Column("pass_rate", sa.Float),
    sa.Column("raw_snapshot_id", sa.BigInteger),
    sa.Column("snapshot_id", sa.BigInteger),  # the curated snapshot this run published
    sa.Column("watermark_before", sa.JSON),
    sa.Column("watermark_after", sa.JSON),
    sa.Column("files", sa.JSON),  # files taken by a file source in this run
    sa.Column("drift", sa.JSON),
    sa.Column("quality", sa.JSON),  # the stored validation outcome
    sa.Column("error", sa.Text),
    sa.Column("durations", sa.JSON),  # seconds per stage
)

run_rejects = sa.Table(
    "hub_run_rejects",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("run_id", sa.String(250), nullable=False, index=True),
    sa.Column("rid", sa.BigInteger),  # the row's id in the run, None when the row never landed
    sa.Column("source", sa.String(500), nullable=False),
    sa.Column("row", sa.BigInteger, nullable=False),
    sa.Column("field", sa.String(100)),
    sa.Column("value", sa.Text),
    sa.Column("reason", sa.Text, nullable=False),
)

watermarks = sa.Table(
    "hub_watermarks",
    metadata,
    sa.Column("dataset_code", sa.String(64), primary_key=True),
    sa.Column("value", sa.JSON),
    sa.Column("run_id", sa.String(250), nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
)

file_ledger = sa.Table(
    "hub_file_ledger",
    metadata,
    sa.Column("dataset_code", sa.String(64), primary_key=True),
    sa.Column("file_name", sa.String(500), primary_key=True),
    sa.Column("checksum", sa.String(64), nullable=False),
    sa.Column("rows", sa.BigInteger, nullable=False),
    sa.Column("run_id", sa.String(250), nullable=False),
    sa.Column("taken_at", sa.DateTime(timezone=True), nullable=False),
)

certificates = sa.Table(
    "hub_certificates",
    metadata,
    sa.Column("identifier", sa.String(200), primary_key=True),
    sa.Column("type_code", sa.String(32), nullable=False),
    sa.Column("dataset_code", sa.String(64), nullable=False),
    sa.Column("record_key", sa.String(500), nullable=False),
    sa.Column("number", sa.String(100), nullable=False),
    sa.Column("holder_id", sa.String(32), nullable=False, index=True),
    sa.Column("holder_name", sa.String(200), nullable=False),
    sa.Column("issuer_code", sa.String(32), nullable=False),
    sa.Column("issuer_name", sa.String(200), nullable=False),
    sa.Column("valid_from", sa.Date),
    sa.Column("valid_until", sa.Date),
    sa.Column("status", sa.String(16), nullable=False),  # valid|revoked|expired
    sa.Column("serial", sa.Integer, nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("face", sa.JSON, nullable=False),
    sa.Column("face_sha256", sa.String(64), nullable=False),
    sa.Column("issued_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("run_id", sa.String(250), nullable=False),
    sa.UniqueConstraint("type_code", "record_key", name="uq_cert_type_record"),
)
