"""Property-based API tests: schemathesis against the app's own OpenAPI schema, in process.

Every operation of ``/openapi.json`` gets generated requests (valid and, where schemathesis
can build them, invalid ones); each response must not be a server error and must conform to
the schema (status code declared, content type, headers, body schema). The hub is the real
``directory/`` published on an embedded SQLite DB; no syncs are run, so lookups find nothing.

Authentication: :func:`auth_headers` is the one place that decides what an authenticated
caller sends. It returns ``{}`` today, so protected operations are checked on their refusal
answers (401/403 ...), which must be declared as well.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from catalog import store
from catalog.api import create_app
from sharehub.demo import DIRECTORY_DIR
from sharehub.settings import Settings

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]
MAX_EXAMPLES = 15  # per operation; the whole file stays well under a minute on 2 cores


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FastAPI]:
    """The API on a fresh embedded hub with the repository's directory published."""
    var = tmp_path_factory.mktemp("schemathesis-hub")
    hub_settings = Settings(var_dir=var)
    engine = store.engine_for(hub_settings.hub_db_url)
    for f in sorted(Path(DIRECTORY_DIR).glob("*.yaml")):
        store.publish_path(engine, f)
    api = create_app(hub_settings)
    yield api
    engine.dispose()


@pytest.fixture(scope="module")
def auth_headers(app: FastAPI) -> dict[str, str]:
    """Headers of an authenticated caller, sent with every generated request.

    TODO(lead): register an app with grants on the published datasets, get a token from
    ``POST /api/v1/token`` and return ``{"Authorization": f"Bearer {token}",
    "X-End-User-Id": ..., "X-Case-Number": ...}`` so the data operations are exercised past
    the authentication gate.
    """
    return {}


@pytest.fixture(scope="module")
def api_schema(app: FastAPI) -> schemathesis.BaseSchema:
    return schemathesis.openapi.from_asgi("/openapi.json", app)


schema = schemathesis.pytest.from_fixture("api_schema")


@pytest.fixture(autouse=True)
def _node_id_for_schemathesis(request: pytest.FixtureRequest) -> None:
    # schemathesis 4.32's fixture-based loader reads and rewrites ``Function._nodeid``, which
    # pytest 9.2 no longer has (node ids became structured); give it one. Remove once fixed.
    if not hasattr(request.node, "_nodeid"):
        request.node._nodeid = request.node.nodeid


@schema.parametrize()
@settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    derandomize=True,  # CI runs are reproducible; widen locally with a profile if wanted
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.filter_too_much,
        HealthCheck.function_scoped_fixture,
    ],
)
def test_api_conforms_to_its_schema(case: schemathesis.Case, auth_headers: dict[str, str]) -> None:
    case.call_and_validate(headers=auth_headers or None, checks=CHECKS)


def test_schema_covers_the_api(api_schema: schemathesis.BaseSchema) -> None:
    """Guard against the parametrised test silently testing nothing."""
    raw = api_schema.raw_schema
    assert raw["openapi"].startswith("3.")
    operations = {(m.upper(), p) for p, ops in raw["paths"].items() for m in ops}
    assert ("GET", "/api/v1/datasets/{code}/records") in operations
    assert len(operations) >= 5
