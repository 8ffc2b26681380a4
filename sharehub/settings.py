"""One typed settings object for the whole hub.

Resolution order (dlt's habit): environment variables (``SHAREHUB_`` prefix, ``__`` for
nesting) win, then the git-ignored secrets file (``sharehub.secrets.toml`` or
``$SHAREHUB_SECRETS_FILE``), then the config file (``sharehub.toml`` or
``$SHAREHUB_CONFIG_FILE``), then the embedded defaults under ``./var/``.

Embedded defaults: hub DB = SQLite file ``var/hub.db``; lake warehouse = ``var/lake``;
Airflow home = ``var/airflow``. Setting ``SHAREHUB_S3__ENDPOINT`` and ``SHAREHUB_S3__BUCKET``
moves the lake to S3/MinIO; setting ``SHAREHUB_DATABASE_URL`` moves the hub DB.
"""

from __future__ import annotations

import datetime as dt
import os
import re
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field, SecretStr, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from catalog.access.purpose import DEFAULT_CASE_NUMBER_PATTERN, DEFAULT_END_USER_PATTERN


class S3Settings(BaseModel):
    """Where the lake lives when it is on S3 / MinIO."""

    endpoint: str | None = None  # e.g. http://minio:9000; None = AWS default endpoint
    bucket: str | None = None
    prefix: str = "warehouse"
    access_key: SecretStr | None = None
    secret_key: SecretStr | None = None
    region: str = "us-east-1"

    @property
    def enabled(self) -> bool:
        return bool(self.bucket)


class Settings(BaseSettings):
    """Settings of one hub instance."""

    model_config = SettingsConfigDict(
        env_prefix="SHAREHUB_",
        env_nested_delimiter="__",
        extra="ignore",
    )

    var_dir: Path = Field(default=Path("var"), description="root of everything the embedded hub writes")
    database_url: str | None = Field(default=None, description="hub DB; default sqlite:///<var>/hub.db")
    lake_dir: Path | None = Field(default=None, description="local warehouse; default <var>/lake")
    s3: S3Settings = S3Settings()
    airflow_home: Path | None = Field(default=None, description="default <var>/airflow")
    connections: dict[str, str] = Field(
        default_factory=dict,
        description="department source connection refs -> SQLAlchemy URL, folder or s3:// prefix",
    )
    db_pool_size: int = Field(default=5, ge=1, description="hub DB connections kept per process")
    db_max_overflow: int = Field(default=10, ge=0, description="extra connections under load, per process")
    airflow_database_url: str | None = Field(
        default=None, description="Airflow metadata DB; default SQLite under the Airflow home"
    )
    airflow_executor: str = Field(default="LocalExecutor", description="LocalExecutor or CeleryExecutor")
    airflow_queues: dict[str, str] = Field(
        default_factory=dict,
        description=(
            "CeleryExecutor queue of a department's (or one dataset's) sync tasks: department code or "
            "dataset code -> queue, e.g. SHAREHUB_AIRFLOW_QUEUES__GAJ=dept_gaj; others use Airflow's "
            "[operators] default_queue"
        ),
    )
    presign_expiry_seconds: int = Field(default=3600, ge=60, le=7 * 86_400)
    # ---- Delta Sharing files (catalog.sharing.links) ------------------------------------------
    sharing_links: Literal["auto", "hub", "presigned"] = Field(
        default="auto",
        description="links to the files a Delta Sharing query hands out: presigned = pre-signed S3 URLs "
        "(the lake must be on S3), hub = links to the hub, re-checked against the grant at download, "
        "auto = presigned on an S3 warehouse, hub on a local one",
    )
    sharing_link_seconds: int = Field(
        default=3600, ge=60, le=86_400, description="how long a handed-out Delta Sharing file link works"
    )
    batch_size: int = Field(default=50_000, ge=100)
    validate_chunk_rows: int = Field(
        default=200_000, ge=1_000, description="rows validated at once (bounds the validate step's memory)"
    )
    # ---- run safety (catalog.runs.lease) -----------------------------------------------------
    run_lease_seconds: float = Field(
        default=60.0, gt=0, description="a working step renews its lock this often x4; silent longer = dead"
    )
    run_step_gap_seconds: float = Field(
        default=3600.0, gt=0, description="time a run's next step has to start before the run is abandoned"
    )
    # ---- OpenLineage (sharehub.pipeline.lineage; the transport is Airflow's [openlineage] section) --
    lineage_lake_namespace: str | None = Field(
        default=None,
        description="OpenLineage namespace of the lake's tables (raw, quarantine, curated); "
        "default: the warehouse URI, e.g. s3://hub-lake/warehouse",
    )
    api_host: str = "127.0.0.1"
    api_port: int = 8000
    # ---- access control --------------------------------------------------------------------
    working_days_deadline: int = Field(default=10, ge=1, description="days a department has to decide")
    holidays: list[dt.date] = Field(
        default_factory=list, description="public holidays skipped by the deadline (法定节假日)"
    )
    extra_workdays: list[dt.date] = Field(
        default_factory=list, description="weekend days that are working days (调休上班日)"
    )
    builtin_holidays: bool = Field(
        default=True,
        description="China's public holidays and 调休 built in (chinesecalendar); the two lists above win",
    )
    objection_answer_working_days: int = Field(
        default=5, ge=1, description="working days a department has to answer a data objection (数据异议)"
    )
    grade_policy: dict[str, dict[str, Any]] = Field(
        default_factory=dict,
        description="overrides of the grade policy per grade (catalog/directory/grades.py), "
        'e.g. {"important": {"max_grant_days": 180}}',
    )
    keys_dir: Path | None = Field(default=None, description="private signing keys; default <var>/keys")
    token_ttl_seconds: int = Field(default=900, ge=30, le=86_400)
    token_audience: str = "sharehub-api"  # noqa: S105 (a JWT aud value)
    token_issuer: str = "sharehub"  # noqa: S105 (a JWT iss value)
    default_rate_limit: int = Field(default=600, ge=1, description="requests per minute per grant")
    redis_url: str | None = Field(default=None, description="shared rate-limit counters; None = per process")
    audit_batch_max: int = Field(default=256, ge=1)
    # ---- the purpose of a call (catalog.access.purpose) -------------------------------------------
    purpose_end_user_pattern: str = Field(
        default=DEFAULT_END_USER_PATTERN, description="regular expression an X-End-User-Id must match"
    )
    purpose_case_number_pattern: str = Field(
        default=DEFAULT_CASE_NUMBER_PATTERN, description="regular expression an X-Case-Number must match"
    )
    # ---- limits of anonymous and expensive calls (per client address, per minute) ----------
    public_verify_rate_limit: int = Field(default=60, ge=1, description="certificate verifications")
    open_download_rate_limit: int = Field(default=10, ge=1, description="open-data downloads")
    login_rate_limit_per_address: int = Field(default=20, ge=1, description="password logins")
    login_rate_limit_per_account: int = Field(
        default=10, ge=1, description="password logins for one account from one address"
    )
    login_concurrency: int = Field(
        default=1, ge=1, description="password hashes (argon2) computed at once per API process"
    )
    # ---- the portal (catalog.portal) ---------------------------------------------------------
    portal_secure_cookies: bool | None = Field(
        default=None,
        description="mark portal cookies Secure; unset: Secure whenever the hub DB is not the embedded "
        "SQLite default (a deployment behind HTTPS); false only for plain-HTTP test set-ups",
    )
    portal_session_idle_minutes: int = Field(
        default=30, ge=1, description="a session ends after this idle time"
    )
    portal_session_max_hours: int = Field(
        default=12, ge=1, description="a session ends this long after sign-in"
    )
    # ---- access anomalies, 异常访问 (catalog.anomalies) ------------------------------------------
    anomaly_window_minutes: int = Field(default=60, ge=5, le=1440, description="the window judged")
    anomaly_history_days: int = Field(
        default=14, ge=1, le=90, description="the app's history it is judged against"
    )
    anomaly_subject_factor: float = Field(
        default=3.0, gt=1, description="flag more distinct subjects than this times the app's peak window"
    )
    anomaly_min_subjects: int = Field(default=100, ge=1, description="... and more than this many")
    anomaly_min_history_windows: int = Field(
        default=24, ge=1, description="windows with calls an app needs in its history before it is judged"
    )
    anomaly_off_hours_min_calls: int = Field(
        default=20, ge=1, description="calls in hours the app does not use that make an off-hours flag"
    )
    anomaly_usual_hour_share: float = Field(
        default=0.01, gt=0, lt=1, description="share of the app's history calls that makes an hour usual"
    )
    anomaly_min_history_calls: int = Field(
        default=200, ge=1, description="history calls needed before off-hours use is judged"
    )
    anomaly_throttle_hours: int = Field(
        default=24, ge=1, description="how long a detection throttles (per the grade policy) unless cleared"
    )
    anomaly_scan_seconds: int = Field(
        default=300, ge=0, description="the API scans this often (0: only `sharehub anomalies scan`)"
    )
    # ---- staff single sign-on through OpenID Connect (catalog.portal.oidc) -------------------
    oidc_issuer: str | None = Field(
        default=None,
        description="the IdP's issuer URL (its /.well-known/openid-configuration is read); unset: "
        "password sign-in only",
    )
    oidc_client_id: str | None = Field(default=None, description="the hub's client id at the IdP")
    oidc_client_secret: SecretStr | None = Field(
        default=None,
        description="the hub's client secret (keep it in the secrets file); unset: a public client",
    )
    oidc_scopes: str = Field(default="openid profile", description="scopes asked for; openid is required")
    oidc_username_claim: str = Field(default="preferred_username", description="claim naming the account")
    oidc_department_claim: str = Field(default="department", description="claim naming the department")
    oidc_roles_claim: str = Field(default="roles", description="claim listing the IdP's roles or groups")
    oidc_role_map: dict[str, list[str]] = Field(
        default_factory=dict,
        description='IdP role -> hub roles, e.g. {"sjj-approver": ["approver"]}; IdP roles not listed give '
        "nothing; empty: the claim's values are hub role names",
    )
    oidc_department_map: dict[str, str] = Field(
        default_factory=dict,
        description='IdP department value -> hub department code ("" for hub-wide); empty: the claim '
        "value is the hub code, and a hub-wide account is never made from claims",
    )
    oidc_create_users: bool = Field(
        default=False, description="make a staff account for an IdP user the hub does not know (else refused)"
    )
    oidc_link_existing: bool = Field(
        default=False,
        description="link an IdP user to the unlinked staff account of the same user name on first "
        "sign-in; only with a user-name claim the IdP guarantees unique and users cannot edit (else "
        "link accounts with `sharehub staff link-sso`)",
    )
    oidc_sync_roles: bool = Field(
        default=True, description="replace the department and roles of a linked account at each sign-in"
    )
    portal_public_url: str | None = Field(
        default=None,
        description="the hub's address as browsers see it (https://hub.example.gov.cn), for the IdP's "
        "redirect URIs; unset: taken from each request",
    )
    oidc_label: str = Field(default="统一身份认证", description="the sign-in button's label")
    oidc_timeout_seconds: float = Field(default=10.0, gt=0, description="calls to the IdP")
    portal_password_login: bool = Field(
        default=True, description="offer password sign-in on the portal (turn off once SSO is the only way)"
    )
    # ---- interoperability: the DCAT-AP export and /metrics (docs/interop.md) ------------------
    dcat_base_url: str | None = Field(
        default=None,
        description="the base of the DCAT export's IRIs and links (https://hub.example.gov.cn); set it "
        "for stable IRIs; unset: portal_public_url, then each request's own address",
    )
    dcat_title: str | None = Field(default=None, description="the catalogue's title (Chinese)")
    dcat_description: str | None = Field(default=None, description="the catalogue's description (Chinese)")
    dcat_publisher: str | None = Field(
        default=None, description="the catalogue's publisher, the hub's operator (Chinese)"
    )
    dcat_license: str | None = Field(
        default=None, description="licence IRI of the open data (dct:license); unset: none stated"
    )
    metrics_token: SecretStr | None = Field(
        default=None,
        description="bearer token /metrics asks for (keep it in the secrets file); unset: /metrics is "
        "open to whoever reaches it (restrict it at the network)",
    )
    # ---- request limits (catalog.api.limits, catalog.api.server) ----------------------------
    api_max_body_bytes: int = Field(default=1_048_576, ge=1024, description="largest request body")
    api_max_query_params: int = Field(default=50, ge=1, description="most query parameters in one call")
    api_body_timeout_seconds: float = Field(default=30.0, gt=0, description="time to send a request body")
    api_max_header_bytes: int = Field(
        default=16_384, ge=1024, description="request line and headers together (sharehub serve)"
    )
    api_header_timeout_seconds: float = Field(
        default=10.0, gt=0, description="time to send the request line and headers (sharehub serve)"
    )
    api_limit_concurrency: int = Field(
        default=1000, ge=1, description="open connections and requests per worker before 503 (sharehub serve)"
    )

    @field_validator("grade_policy")
    @classmethod
    def _grade_policy(cls, v: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
        from catalog.directory.grades import GradePolicy

        GradePolicy(v)  # unknown grades or rules, a default rate above its maximum: refused at start
        return v

    @field_validator("purpose_end_user_pattern", "purpose_case_number_pattern")
    @classmethod
    def _pattern_compiles(cls, v: str) -> str:
        try:
            re.compile(v)
        except re.error as exc:
            raise ValueError(f"not a regular expression: {exc}") from None
        return v

    @model_validator(mode="after")
    def _sharing_links_need_s3(self) -> Settings:
        if self.sharing_links == "presigned" and not self.s3.enabled:
            raise ValueError(
                "sharing_links = presigned needs the lake on S3 (set s3.bucket); use auto or hub "
                "for a local warehouse"
            )
        return self

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        secrets = Path(os.environ.get("SHAREHUB_SECRETS_FILE", "sharehub.secrets.toml"))
        config = Path(os.environ.get("SHAREHUB_CONFIG_FILE", "sharehub.toml"))
        return (
            init_settings,
            env_settings,
            TomlConfigSettingsSource(settings_cls, toml_file=secrets),
            TomlConfigSettingsSource(settings_cls, toml_file=config),
        )

    # ---- derived locations -------------------------------------------------------------
    @property
    def hub_db_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.var_dir / 'hub.db').resolve()}"

    @property
    def warehouse(self) -> str:
        """Iceberg warehouse location: ``s3://bucket/prefix`` or ``file:///abs/path``."""
        if self.s3.enabled:
            return f"s3://{self.s3.bucket}/{self.s3.prefix.strip('/')}"
        return (self.lake_dir or self.var_dir / "lake").resolve().as_uri()

    @property
    def airflow_dir(self) -> Path:
        return (self.airflow_home or self.var_dir / "airflow").resolve()

    @property
    def signing_keys_dir(self) -> Path:
        return (self.keys_dir or self.var_dir / "keys").resolve()

    @property
    def reports_dir(self) -> Path:
        return (self.var_dir / "reports").resolve()

    def s3_options(self) -> dict[str, Any] | None:
        """Plain S3 options for the lake and file connectors, None when the lake is local."""
        if not self.s3.enabled:
            return None
        return {
            "endpoint": self.s3.endpoint,
            "access_key": self.s3.access_key.get_secret_value() if self.s3.access_key else None,
            "secret_key": self.s3.secret_key.get_secret_value() if self.s3.secret_key else None,
            "region": self.s3.region,
        }

    def airflow_queue(self, department_code: str, dataset_code: str) -> str | None:
        """The Celery queue of a dataset's sync tasks (case-insensitive keys): its own entry in
        ``airflow_queues``, else its department's, else None (Airflow's default queue)."""
        queues = {key.lower(): value for key, value in self.airflow_queues.items() if value.strip()}
        for key in (dataset_code, department_code):
            if key and key.lower() in queues:
                return queues[key.lower()].strip()
        return None

    def connection(self, ref: str) -> str:
        """Resolve a source's connection ref (case-insensitive), with a clear error when unknown."""
        for key, value in self.connections.items():
            if key.lower() == ref.lower():
                return value
        raise KeyError(
            f"connection ref {ref!r} is not configured; set SHAREHUB_CONNECTIONS__{ref.upper()} "
            "or add it under [connections] in sharehub.secrets.toml"
        )


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings (cached; call ``get_settings.cache_clear()`` after changing env)."""
    return Settings()
