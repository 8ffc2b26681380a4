"""Validate OpenLineage events against the spec's JSON schemas (vendored in tests/data/openlineage).

Every event is checked against ``OpenLineage.json#/$defs/RunEvent``, then every facet in it
(run, job, each dataset's facets, input facets and output facets) against the schema its
``_schemaURL`` names: the spec's facets from the vendored files, the Airflow provider's facets
from the JSON files the provider ships. A facet whose schema is neither fails the check.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator
from referencing import Registry, Resource

SPEC_DIR = Path(__file__).parent / "data" / "openlineage"
EVENT_SCHEMA = "https://openlineage.io/spec/2-0-2/OpenLineage.json"


def _provider_facets() -> dict[str, dict[str, Any]]:
    import airflow.providers.openlineage.facets as facets_pkg

    folder = Path(facets_pkg.__file__).parent
    return {p.name: json.loads(p.read_text(encoding="utf-8")) for p in folder.glob("*.json")}


@cache
def registry() -> Registry:
    resources = []
    for path in [SPEC_DIR / "OpenLineage.json", *sorted((SPEC_DIR / "facets").glob("*.json"))]:
        contents = json.loads(path.read_text(encoding="utf-8"))
        resources.append((contents["$id"], Resource.from_contents(contents)))
    return Registry().with_resources(resources)


def _validate(instance: Any, ref: str, reg: Registry) -> None:
    Draft202012Validator({"$ref": ref}, registry=reg).validate(instance)


def facets_of(event: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    """(where, facet name, facet) of every facet in an event."""
    for where, holder in (("run", event.get("run", {})), ("job", event.get("job", {}))):
        for name, facet in (holder.get("facets") or {}).items():
            yield where, name, facet
    for kind in ("inputs", "outputs"):
        for ds in event.get(kind) or []:
            for key in ("facets", "inputFacets", "outputFacets"):
                for name, facet in (ds.get(key) or {}).items():
                    yield f"{kind}:{ds['namespace']}/{ds['name']}:{key}", name, facet


def validate_event(event: dict[str, Any]) -> None:
    """Raise ``jsonschema.ValidationError`` (or AssertionError for an unknown facet schema)."""
    reg = registry()
    assert event["schemaURL"].startswith(EVENT_SCHEMA), event["schemaURL"]
    _validate(event, EVENT_SCHEMA + "#/$defs/RunEvent", reg)
    provider = _provider_facets()
    for where, name, facet in facets_of(event):
        url = facet["_schemaURL"]
        base, _, fragment = url.partition("#")
        if base.startswith("https://openlineage.io/spec/"):
            assert reg.get(base) is not None, f"{where} {name}: schema {base} is not vendored"
            _validate(facet, url, reg)
        elif base.rsplit("/", 1)[-1] in provider:  # the Airflow provider's own facets
            contents = provider[base.rsplit("/", 1)[-1]]
            with_own = reg.with_resource(base, Resource.from_contents(contents))
            _validate(facet, f"{base}#{fragment}", with_own)
        else:
            raise AssertionError(f"{where} {name}: no schema known for {url}")
