"""Shared fixtures.

* An autouse fixture keeps a developer's own ``SHAREHUB_*`` settings and secrets, and any
  OpenLineage configuration (``OPENLINEAGE_*``, ``AIRFLOW__OPENLINEAGE__*``), out of tests.
* ``pg_url`` / ``mariadb_url``: the real local servers. Tests using them carry the
  ``services`` marker; when a server is missing they skip, unless
  ``SHAREHUB_REQUIRE_SERVICES=1`` (CI), where a missing service is a failure.
* ``hub_pg_url``: ``pg_url`` after the hub DB migrations (what ``sharehub db upgrade`` does).
* ``s3_endpoint``: moto's real S3 server on a free loopback port, for one session.
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

REQUIRE_SERVICES = os.environ.get("SHAREHUB_REQUIRE_SERVICES") == "1"


def service_unavailable(what: str, why: object) -> None:
    """Skip, or fail when CI requires the local services."""
    msg = f"{what} unavailable: {why}"
    if REQUIRE_SERVICES:
        pytest.fail(msg + " (SHAREHUB_REQUIRE_SERVICES=1)")
    pytest.skip(msg)


@pytest.fixture(autouse=True)
def _isolated_settings(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory) -> None:
    for key in list(os.environ):
        if key.startswith("SHAREHUB_") and key != "SHAREHUB_REQUIRE_SERVICES":
            monkeypatch.delenv(key, raising=False)
        # a developer's own lineage collector must not switch OpenLineage on in embedded Airflow runs
        if key.startswith(("OPENLINEAGE_", "AIRFLOW__OPENLINEAGE__")):
            monkeypatch.delenv(key, raising=False)
    # the secrets/config files are looked up relative to the working directory and the var dir
    monkeypatch.setenv("SHAREHUB_SECRETS_FILE", str(tmp_path_factory.getbasetemp() / "no-secrets.toml"))


def _port_open(host: str, port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(1)
        return s.connect_ex((host, port)) == 0


def _fresh_schema_db(base_url: str, kind: str) -> Iterator[str]:
    import sqlalchemy as sa

    name = f"t_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(base_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as c:
            c.execute(sa.text(f"CREATE DATABASE {name}"))
    except Exception as exc:
        admin.dispose()
        service_unavailable(kind, exc)
    url = base_url.rsplit("/", 1)[0] + "/" + name
    try:
        yield url
    finally:
        with admin.connect() as c:
            if kind == "postgresql":
                c.execute(sa.text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
            else:
                c.execute(sa.text(f"DROP DATABASE IF EXISTS {name}"))
        admin.dispose()


@pytest.fixture
def pg_url() -> Iterator[str]:
    """SQLAlchemy URL of a fresh, empty database on the local PostgreSQL (dropped afterwards)."""
    if not _port_open("127.0.0.1", 5432):
        service_unavailable("postgresql", "nothing listens on 127.0.0.1:5432")
    yield from _fresh_schema_db("postgresql+psycopg://postgres@127.0.0.1:5432/postgres", "postgresql")


@pytest.fixture
def hub_pg_url(pg_url: str) -> str:
    """``pg_url`` with the hub tables created by the migrations (``sharehub db upgrade``)."""
    from catalog.db import migrate

    migrate.upgrade(pg_url)
    return pg_url


@pytest.fixture
def mariadb_url() -> Iterator[str]:
    """SQLAlchemy URL of a fresh, empty database on the local MariaDB (dropped afterwards)."""
    if not _port_open("127.0.0.1", 3306):
        service_unavailable("mariadb", "nothing listens on 127.0.0.1:3306")
    yield from _fresh_schema_db("mysql+pymysql://root@127.0.0.1:3306/test?charset=utf8mb4", "mariadb")


@dataclass(frozen=True)
class S3Endpoint:
    url: str
    access_key: str = "testing"
    secret_key: str = "testing"
    region: str = "us-east-1"

    def new_bucket(self) -> str:
        import boto3

        name = f"b-{uuid.uuid4().hex[:12]}"
        boto3.client(
            "s3",
            endpoint_url=self.url,
            aws_access_key_id=self.access_key,
            aws_secret_access_key=self.secret_key,
            region_name=self.region,
        ).create_bucket(Bucket=name)
        return name


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[S3Endpoint]:
    """moto's S3 server, really listening on loopback, for the whole session."""
    from moto.server import ThreadedMotoServer

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield S3Endpoint(url=f"http://127.0.0.1:{port}")
    finally:
        server.stop()
