"""Tables of the hub database (SQLAlchemy Core).

The hub DB holds the data directory (departments, datasets and their version history,
certificate types), the record of sync runs (counts, snapshot ids, quality results,
watermarks, the file ledger), issued certificates, and — in tables created per dataset by
``catalog.serving.tables`` — the serving store. SQLite is the embedded default, PostgreSQL the
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
    # the step running or next (extract_land|validate|publish), "done" after success; a failed
    # run keeps the step that failed, so that its retry knows where to resume
    sa.Column("stage", sa.String(16), nullable=False),
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
    # the curated snapshot the run started from: publish is refused when it is no longer current
    sa.Column("base_snapshot_id", sa.BigInteger),
    sa.Column("attempts", sa.JSON),  # step -> times started (a retried step replaces its output)
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

quarantine_rows = sa.Table(
    "hub_quarantine_rows",  # the correction list (整改清单): each run's quarantined rows
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("run_id", sa.String(250), nullable=False, index=True),
    sa.Column("dataset_code", sa.String(64), nullable=False, index=True),
    sa.Column("source", sa.String(500)),  # the department's file (or table) the row came from
    sa.Column("row", sa.BigInteger),  # the row as the department sees it in that file
    # canonical JSON text of the row's key values (catalog.values.key_text); None without a usable key
    sa.Column("record_key", sa.String(500), index=True),
    sa.Column("reasons", sa.JSON, nullable=False),  # [{field, rule, message}]
    sa.Column("record", sa.JSON, nullable=False),  # the row's values as sent
)

watermarks = sa.Table(
    "hub_watermarks",
    metadata,
    sa.Column("dataset_code", sa.String(64), primary_key=True),
    sa.Column("value", sa.JSON),
    sa.Column("run_id", sa.String(250), nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
)

dataset_locks = sa.Table(
    "hub_dataset_locks",  # one run of a dataset at a time, with a lease (catalog.runs.lease)
    metadata,
    sa.Column("dataset_code", sa.String(64), primary_key=True),
    sa.Column("run_id", sa.String(250), nullable=False),
    sa.Column("step", sa.String(16), nullable=False),
    sa.Column("holder", sa.String(200), nullable=False),  # host:pid of the process
    sa.Column("active", sa.Boolean, nullable=False),  # a step is working (and renewing the lease)
    sa.Column("acquired_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("lease_until", sa.DateTime(timezone=True), nullable=False),
)

serving_state = sa.Table(
    "hub_serving_state",  # which curated snapshot each serving table reflects (catalog.serving.tables)
    metadata,
    sa.Column("dataset_code", sa.String(64), primary_key=True),
    sa.Column("snapshot_id", sa.BigInteger),  # None: the curated table had no snapshot yet
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
    # random for certificates issued since 0002 (unguessable); older ones keep 1, 2, 3, …
    sa.Column("serial", sa.BigInteger, nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("face", sa.JSON, nullable=False),
    sa.Column("face_sha256", sa.String(64), nullable=False),
    sa.Column("issued_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("run_id", sa.String(250), nullable=False),
    # Ed25519 signature over the canonical JSON of catalog.certificates.signing.certificate_document(row)
    sa.Column("signature", sa.String(200)),
    sa.Column("signing_kid", sa.String(64)),
    # when the hub made the stored signature: what key withdrawal (--since) is judged against
    sa.Column("signed_at", sa.DateTime(timezone=True)),
    sa.UniqueConstraint("type_code", "record_key", name="uq_cert_type_record"),
)

# ---- access control: parties, applications, grants, keys, audit ------------------------

apps = sa.Table(
    "hub_apps",
    metadata,
    sa.Column("app_id", sa.String(64), primary_key=True),  # the OAuth2 client_id
    sa.Column("name", sa.String(200), nullable=False, unique=True),
    sa.Column("department_code", sa.ForeignKey("hub_departments.code"), nullable=False, index=True),
    sa.Column("description", sa.Text, nullable=False, server_default=""),
    sa.Column("status", sa.String(16), nullable=False),  # active|disabled
    sa.Column("secret_hash", sa.String(128), nullable=False),  # sha256 of a 256-bit random secret
    sa.Column("secret_generation", sa.Integer, nullable=False),  # +1 per rotation; tokens carry it
    sa.Column("secret_rotated_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
)

staff = sa.Table(
    "hub_staff",
    metadata,
    sa.Column("username", sa.String(64), primary_key=True),
    sa.Column("department_code", sa.ForeignKey("hub_departments.code"), index=True),  # None = hub-wide
    sa.Column("roles", sa.JSON, nullable=False),  # subset of publisher|approver|applicant|auditor|admin
    sa.Column("password_hash", sa.String(200), nullable=False),  # argon2id
    sa.Column("status", sa.String(16), nullable=False),  # active|disabled
    sa.Column("password_generation", sa.Integer, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("password_changed_at", sa.DateTime(timezone=True), nullable=False),
    # single sign-on (OIDC): the IdP (issuer URL) and its subject this account is linked to
    sa.Column("sso_issuer", sa.String(500)),
    sa.Column("sso_subject", sa.String(255)),
    sa.UniqueConstraint("sso_issuer", "sso_subject", name="uq_staff_sso_subject"),
)

applications = sa.Table(
    "hub_applications",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("app_id", sa.ForeignKey("hub_apps.app_id"), nullable=False, index=True),
    sa.Column("dataset_code", sa.String(64), nullable=False, index=True),
    sa.Column("department_code", sa.String(32), nullable=False, index=True),  # the owner who decides
    sa.Column("dataset_version", sa.Integer, nullable=False),
    sa.Column("fields", sa.JSON, nullable=False),  # requested fields
    sa.Column("clear_fields", sa.JSON, nullable=False),  # sensitive fields requested unmasked
    sa.Column("purpose", sa.Text, nullable=False),
    sa.Column("legal_basis", sa.Text, nullable=False),
    sa.Column("requested_until", sa.Date),  # how long the app asks to keep access
    sa.Column("status", sa.String(16), nullable=False),  # pending|second_approval|approved|refused|withdrawn
    sa.Column("submitted_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("deadline", sa.Date, nullable=False),  # last working day for the decision
    sa.Column("decided_at", sa.DateTime(timezone=True)),
    sa.Column("decided_by", sa.String(64)),  # staff username, or "auto" for unconditional data
    sa.Column("reason", sa.Text),  # required for a refusal
    sa.Column("grant_id", sa.Integer),
    # 双人审批 (the grade policy): the owner's approval of clear sensitive fields, which waits in
    # status second_approval for the hub's data authority; the grant is made from it
    sa.Column("first_decided_by", sa.String(64)),
    sa.Column("first_decided_at", sa.DateTime(timezone=True)),
    sa.Column("first_decision", sa.JSON),  # fields, clear_fields, valid_until, rate_limit
)

grants = sa.Table(
    "hub_grants",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("app_id", sa.ForeignKey("hub_apps.app_id"), nullable=False),
    sa.Column("dataset_code", sa.String(64), nullable=False),
    sa.Column("application_id", sa.Integer, nullable=False),
    sa.Column("fields", sa.JSON, nullable=False),  # granted fields (all others are dropped)
    sa.Column("clear_fields", sa.JSON, nullable=False),  # sensitive fields shown unmasked
    sa.Column("valid_from", sa.DateTime(timezone=True), nullable=False),
    sa.Column("valid_until", sa.DateTime(timezone=True)),  # None = until revoked
    sa.Column("rate_limit", sa.Integer, nullable=False),  # requests per minute
    sa.Column("status", sa.String(16), nullable=False),  # active|revoked
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("revoked_at", sa.DateTime(timezone=True)),
    sa.Column("revoked_by", sa.String(64)),
    sa.Column("revoke_reason", sa.Text),
    # the grade policy narrowed the grant when the dataset's grade was raised (shorter, slower,
    # clear fields masked until re-approved); the holder reads why in its grants
    sa.Column("narrowed_at", sa.DateTime(timezone=True)),
    sa.Column("narrowed_reason", sa.Text),
    sa.Index("ix_grants_app_dataset", "app_id", "dataset_code"),
    # one active grant per app × dataset, whatever races the application code loses
    sa.Index(
        "uq_grants_one_active",
        "app_id",
        "dataset_code",
        unique=True,
        sqlite_where=sa.text("status = 'active'"),
        postgresql_where=sa.text("status = 'active'"),
    ),
)

signing_keys = sa.Table(
    "hub_signing_keys",
    metadata,
    sa.Column("kid", sa.String(64), primary_key=True),
    sa.Column("purpose", sa.String(16), nullable=False),  # token|certificate
    sa.Column("public_key", sa.String(100), nullable=False),  # raw Ed25519 key, base64url (JWK "x")
    sa.Column("status", sa.String(16), nullable=False),  # active|retired|withdrawn
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("retired_at", sa.DateTime(timezone=True)),
    # a withdrawn (leaked) key: what it signed from withdrawn_since on no longer verifies
    sa.Column("withdrawn_since", sa.DateTime(timezone=True)),
    sa.Column("withdrawn_at", sa.DateTime(timezone=True)),
    sa.Column("withdrawn_by", sa.String(64)),
    sa.Column("withdrawn_reason", sa.Text),
)

certificate_copies = sa.Table(
    "hub_certificate_copies",  # 加注件: an issued copy with the reason for use and an expiry
    metadata,
    sa.Column("copy_id", sa.String(64), primary_key=True),
    sa.Column("identifier", sa.String(200), nullable=False, index=True),
    sa.Column("app_id", sa.String(64), nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("end_user", sa.String(100)),
    sa.Column("case_number", sa.String(100)),
    sa.Column("issued_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("document", sa.JSON, nullable=False),  # the signed copy as handed out
)

audit = sa.Table(
    "hub_audit",
    metadata,
    sa.Column(
        "seq", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True, autoincrement=False
    ),
    sa.Column("at", sa.DateTime(timezone=True), nullable=False, index=True),
    sa.Column("request_id", sa.String(64), nullable=False),
    sa.Column("actor_kind", sa.String(16), nullable=False),  # app|staff|anonymous
    sa.Column("app_id", sa.String(64), index=True),
    sa.Column("staff", sa.String(64)),
    sa.Column("end_user", sa.String(100)),
    sa.Column("case_number", sa.String(100)),
    sa.Column("method", sa.String(8), nullable=False),
    sa.Column("path", sa.String(500), nullable=False),
    sa.Column("action", sa.String(64), nullable=False),
    sa.Column("dataset_code", sa.String(64), index=True),
    sa.Column("datasets", sa.JSON),  # the datasets a multi-dataset call consulted (subject view)
    sa.Column("certificate_id", sa.String(200)),
    sa.Column("subject", sa.String(64)),
    sa.Column("query", sa.String(500)),  # what a lookup asked for besides the subject (JSON text)
    sa.Column("fields", sa.JSON),  # what the disclosure projection released
    sa.Column("decision", sa.String(8), nullable=False),  # allow|deny
    sa.Column("reason", sa.String(64)),  # the stable error code of a refusal
    sa.Column("status", sa.Integer, nullable=False),  # HTTP status
    sa.Column("row_count", sa.Integer, nullable=False),
    sa.Column("prev_hash", sa.String(64), nullable=False),
    sa.Column("hash", sa.String(64), nullable=False),
)

audit_datasets = sa.Table(
    "hub_audit_datasets",  # derived index: which records concern which dataset (a department's view)
    metadata,
    sa.Column("dataset_code", sa.String(64), primary_key=True),
    sa.Column(
        "seq", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True, autoincrement=False
    ),
)

audit_head = sa.Table(
    "hub_audit_head",  # one row: the chain's last seq and hash; locked by each appending batch
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("seq", sa.BigInteger, nullable=False),
    sa.Column("hash", sa.String(64), nullable=False),
)


portal_sessions = sa.Table(
    "hub_portal_sessions",  # signed-in portal sessions (catalog.portal.sessions); the cookie holds the id
    metadata,
    sa.Column("id_hash", sa.String(64), primary_key=True),  # SHA-256 of the cookie's random id
    sa.Column("username", sa.String(64), nullable=False, index=True),
    sa.Column("password_generation", sa.Integer, nullable=False),  # a password change ends it
    sa.Column("csrf_token", sa.String(64), nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("last_seen_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False, index=True),
)

directory_submissions = sa.Table(
    "hub_directory_submissions",  # 目录审核: a department's directory file waiting for review
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("department_code", sa.String(32), nullable=False, index=True),
    sa.Column("content", sa.Text, nullable=False),  # the directory file as submitted (YAML)
    sa.Column("source_name", sa.String(500), nullable=False),  # file name or "portal"
    sa.Column("content_sha256", sa.String(64), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),  # pending|approved|returned|withdrawn
    sa.Column("submitted_by", sa.String(64), nullable=False),  # staff username, or "cli:<user>"
    sa.Column("submitted_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("decided_by", sa.String(64)),
    sa.Column("decided_at", sa.DateTime(timezone=True)),
    sa.Column("reason", sa.Text),  # required when returned
    sa.Column("changes", sa.JSON),  # on approval: what publishing changed (code, version, change)
)

objections = sa.Table(
    "hub_objections",  # 数据异议: a user of the data says a served record or field is wrong
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("dataset_code", sa.String(64), nullable=False, index=True),
    sa.Column("department_code", sa.String(32), nullable=False, index=True),  # the provider who answers
    sa.Column("record_key", sa.String(500), nullable=False),  # JSON text of the record's key values
    sa.Column("field", sa.String(100)),  # None: the whole record
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("evidence", sa.Text),
    sa.Column("raised_by_kind", sa.String(16), nullable=False),  # app|staff
    sa.Column("raised_by", sa.String(64), nullable=False),  # app_id or staff username
    sa.Column("raised_department", sa.String(32)),  # the reporter's department
    sa.Column("raised_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("due_date", sa.Date, nullable=False),  # last working day for the answer
    sa.Column("status", sa.String(16), nullable=False),  # open|corrected|confirmed|rejected
    sa.Column("answer", sa.Text),
    sa.Column("answered_by", sa.String(64)),
    sa.Column("answered_at", sa.DateTime(timezone=True)),
)

access_anomalies = sa.Table(
    "hub_access_anomalies",  # 异常访问: an app reading unlike its own history
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("app_id", sa.String(64), nullable=False, index=True),
    sa.Column("dataset_code", sa.String(64), index=True),  # None: the app's calls over all datasets
    sa.Column("department_code", sa.String(32), index=True),  # the owning department told
    sa.Column("kind", sa.String(32), nullable=False),  # distinct_subjects|off_hours
    sa.Column("detected_at", sa.DateTime(timezone=True), nullable=False, index=True),
    sa.Column("window_start", sa.DateTime(timezone=True), nullable=False),
    sa.Column("window_end", sa.DateTime(timezone=True), nullable=False),
    sa.Column("observed", sa.Float, nullable=False),
    sa.Column("baseline", sa.Float, nullable=False),
    sa.Column("threshold", sa.Float, nullable=False),
    sa.Column("details", sa.JSON, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),  # open|cleared
    sa.Column("throttled_until", sa.DateTime(timezone=True)),
    sa.Column("cleared_by", sa.String(64)),
    sa.Column("cleared_at", sa.DateTime(timezone=True)),
    sa.Column("clear_reason", sa.Text),
)

audit_archives = sa.Table(
    "hub_audit_archives",  # a chain prefix moved out of the hub DB at the end of its retention
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("first_seq", sa.BigInteger, nullable=False),
    sa.Column("last_seq", sa.BigInteger, nullable=False, unique=True),
    sa.Column("prev_hash", sa.String(64), nullable=False),  # the chain hash before first_seq
    sa.Column("last_hash", sa.String(64), nullable=False),  # where the kept chain continues from
    sa.Column("records", sa.Integer, nullable=False),
    sa.Column("cutoff", sa.DateTime(timezone=True), nullable=False),
    sa.Column("archived_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("archived_by", sa.String(64), nullable=False),
    sa.Column("file_name", sa.String(500), nullable=False),
    sa.Column("file_sha256", sa.String(64), nullable=False),
)

sso_logins = sa.Table(
    "hub_sso_logins",  # a staff sign-in through the IdP under way: state, nonce and PKCE verifier
    metadata,
    sa.Column("state_hash", sa.String(64), primary_key=True),  # SHA-256 of the state sent to the IdP
    sa.Column("browser_hash", sa.String(64), nullable=False),  # SHA-256 of the cookie binding the browser
    sa.Column("nonce", sa.String(100), nullable=False),
    sa.Column("code_verifier", sa.String(128), nullable=False),
    sa.Column("next_url", sa.String(500), nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False, index=True),
)

sharing_recipients = sa.Table(
    "hub_sharing_recipients",  # Delta Sharing recipient profiles: a long-lived bearer token of an app
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("app_id", sa.ForeignKey("hub_apps.app_id"), nullable=False, index=True),
    sa.Column("token_sha256", sa.String(64), nullable=False, unique=True),
    sa.Column("label", sa.String(200), nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("created_by", sa.String(64), nullable=False),
    sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("revoked_at", sa.DateTime(timezone=True)),
    sa.Column("revoked_by", sa.String(64)),
)

subscriptions = sa.Table(
    "hub_subscriptions",  # 订阅: a granted dataset delivered into the consumer's own database
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("app_id", sa.ForeignKey("hub_apps.app_id"), nullable=False, index=True),
    sa.Column("dataset_code", sa.String(64), nullable=False, index=True),
    sa.Column("target_ref", sa.String(64), nullable=False),  # a connection ref, never a URL
    sa.Column("target_table", sa.String(64), nullable=False),
    sa.Column("mode", sa.String(16), nullable=False),  # mirror|append
    sa.Column("status", sa.String(16), nullable=False),  # active|ended
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("created_by", sa.String(64), nullable=False),
    sa.Column("last_snapshot_id", sa.BigInteger),
    sa.Column("projection_sha256", sa.String(64)),  # what the grant showed at the last delivery
    sa.Column("delivered_at", sa.DateTime(timezone=True)),
    sa.Column("last_error", sa.Text),
    # the secret of the target's row keys (``_sh_key``, an HMAC of the primary key): a consumer
    # never learns a key that is not a granted field, not even by guessing ID numbers
    sa.Column("key_secret", sa.String(64), nullable=False),
    sa.Column("ended_at", sa.DateTime(timezone=True)),
    sa.Column("ended_by", sa.String(64)),
    sa.Column("ended_reason", sa.Text),
)

subscription_deliveries = sa.Table(
    "hub_subscription_deliveries",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("subscription_id", sa.Integer, nullable=False, index=True),
    sa.Column("from_snapshot", sa.BigInteger),
    sa.Column("to_snapshot", sa.BigInteger),
    sa.Column("inserted", sa.Integer, nullable=False),
    sa.Column("updated", sa.Integer, nullable=False),
    sa.Column("deleted", sa.Integer, nullable=False),
    # running|success|current|failed|stopped|interrupted (a running attempt that never finished)
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("finished_at", sa.DateTime(timezone=True)),
    sa.Column("error", sa.Text),
    sa.Column("run_id", sa.String(250)),  # the Airflow run (or "cli") that made the attempt
)
