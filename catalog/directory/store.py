"""The directory in the hub DB: publish directory files, keep version history, read it back."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from catalog.clock import utc_now
from catalog.db import tables
from catalog.directory.model import DatasetSpec, DepartmentSpec, DirectoryFile, dump_dataset


@dataclass(frozen=True)
class PublishedDataset:
    """One dataset as the directory holds it now."""

    spec: DatasetSpec
    department: DepartmentSpec
    version: int
    published_at: dt.datetime


@dataclass(frozen=True)
class PublishChange:
    """What publishing one dataset did."""

    code: str
    version: int
    action: str  # created|updated|unchanged


def _sha(doc: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(doc, sort_keys=True, ensure_ascii=False).encode()).hexdigest()


def store_directory(engine: sa.Engine, directory: DirectoryFile, *, source_file: str) -> list[PublishChange]:
    """Store a validated directory file. A changed dataset gets a new version; all in one transaction.

    Publishing is :func:`catalog.publishing.publish`, which also makes the serving tables."""
    now = utc_now()
    dept = directory.department
    changes: list[PublishChange] = []
    with engine.begin() as conn:
        dept_row = {
            "name": dept.name,
            "credit_code": dept.credit_code,
            "contact": dept.contact,
            "updated_at": now,
        }
        exists = conn.execute(
            sa.select(tables.departments.c.code).where(tables.departments.c.code == dept.code)
        )
        if exists.first():
            conn.execute(
                tables.departments.update().where(tables.departments.c.code == dept.code).values(**dept_row)
            )
        else:
            conn.execute(tables.departments.insert().values(code=dept.code, **dept_row))
        for ds in directory.datasets:
            doc = dump_dataset(ds)
            digest = _sha(doc)
            current = conn.execute(
                sa.select(tables.datasets.c.version, tables.datasets.c.department_code).where(
                    tables.datasets.c.code == ds.code
                )
            ).first()
            if current is not None and current.department_code != dept.code:
                raise ValueError(
                    f"{source_file}: dataset {ds.code} belongs to department {current.department_code}, "
                    f"not {dept.code}"
                )
            last_sha = conn.execute(
                sa.select(tables.dataset_versions.c.spec_sha256)
                .where(tables.dataset_versions.c.code == ds.code)
                .order_by(tables.dataset_versions.c.version.desc())
                .limit(1)
            ).scalar()
            if last_sha == digest:
                changes.append(PublishChange(ds.code, current.version if current else 1, "unchanged"))
                continue
            version = (current.version + 1) if current else 1
            row = {
                "department_code": dept.code,
                "name": ds.name,
                "share_type": ds.share.type.value,
                "open": ds.open.open,
                "grade": ds.grade.value,
                "schedule": ds.schedule,
                "version": version,
                "spec": doc,
                "published_at": now,
            }
            if current is None:
                conn.execute(tables.datasets.insert().values(code=ds.code, **row))
            else:
                conn.execute(tables.datasets.update().where(tables.datasets.c.code == ds.code).values(**row))
            conn.execute(
                tables.dataset_versions.insert().values(
                    code=ds.code,
                    version=version,
                    spec=doc,
                    spec_sha256=digest,
                    source_file=source_file,
                    published_at=now,
                )
            )
            changes.append(PublishChange(ds.code, version, "created" if current is None else "updated"))
        for ct in directory.certificate_types:
            ct_row = {
                "name": ct.name,
                "holder_kind": ct.holder_kind.value,
                "dataset_code": ct.dataset,
                "department_code": dept.code,
                "validity_years": ct.validity_years,
            }
            table = tables.certificate_types
            owner = conn.execute(sa.select(table.c.department_code).where(table.c.code == ct.code)).first()
            if owner is not None and owner.department_code != dept.code:
                raise ValueError(
                    f"{source_file}: certificate type {ct.code} belongs to department "
                    f"{owner.department_code}, not {dept.code}"
                )
            if owner is not None:
                conn.execute(table.update().where(table.c.code == ct.code).values(**ct_row))
            else:
                conn.execute(table.insert().values(code=ct.code, **ct_row))
    return changes


def _department(conn: sa.Connection, code: str) -> DepartmentSpec:
    row = conn.execute(sa.select(tables.departments).where(tables.departments.c.code == code)).one()
    return DepartmentSpec(code=row.code, name=row.name, credit_code=row.credit_code, contact=row.contact)


def get_dataset(engine: sa.Engine, code: str) -> PublishedDataset:
    """The current version of a published dataset; KeyError when unknown."""
    with engine.connect() as conn:
        row = conn.execute(sa.select(tables.datasets).where(tables.datasets.c.code == code)).first()
        if row is None:
            raise KeyError(f"dataset {code!r} is not in the directory (publish its department's file first)")
        return PublishedDataset(
            spec=DatasetSpec.model_validate(row.spec),
            department=_department(conn, row.department_code),
            version=row.version,
            published_at=row.published_at,
        )


def list_datasets(engine: sa.Engine) -> list[PublishedDataset]:
    """Every published dataset, ordered by department then code."""
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(tables.datasets).order_by(tables.datasets.c.department_code, tables.datasets.c.code)
        ).all()
        depts: dict[str, DepartmentSpec] = {}
        out = []
        for row in rows:
            if row.department_code not in depts:
                depts[row.department_code] = _department(conn, row.department_code)
            out.append(
                PublishedDataset(
                    spec=DatasetSpec.model_validate(row.spec),
                    department=depts[row.department_code],
                    version=row.version,
                    published_at=row.published_at,
                )
            )
        return out


@dataclass(frozen=True)
class DatasetName:
    """A dataset's code, name and department, read without its spec (lists and filters)."""

    code: str
    name: str
    department_code: str


def dataset_names(
    engine: sa.Engine, department_code: str | None = None, *, limit: int | None = None
) -> list[DatasetName]:
    """Every published dataset's code and name (one department's, or all), by code; at most
    ``limit`` of them."""
    d = tables.datasets
    q = sa.select(d.c.code, d.c.name, d.c.department_code).order_by(d.c.code)
    if department_code is not None:
        q = q.where(d.c.department_code == department_code)
    if limit is not None:
        q = q.limit(limit)
    with engine.connect() as conn:
        return [DatasetName(r.code, r.name, r.department_code) for r in conn.execute(q)]


@dataclass(frozen=True)
class VersionEntry:
    """One version of a dataset with its changes against the previous one."""

    version: int
    published_at: dt.datetime
    source_file: str
    changes: list[str]


def _flatten(doc: Any, prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    if isinstance(doc, dict):
        for k, v in doc.items():
            out.update(_flatten(v, f"{prefix}.{k}" if prefix else str(k)))
    elif isinstance(doc, list) and doc and all(isinstance(x, dict) and "name" in x for x in doc):
        for x in doc:  # fields: keyed by name so a reorder is not a change
            out.update(_flatten(x, f"{prefix}[{x['name']}]"))
    else:
        out[prefix] = doc
    return out


def diff_specs(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """Human-readable changes between two stored dataset specs."""
    a, b = _flatten(old), _flatten(new)
    changes = []
    for key in sorted(a.keys() | b.keys()):
        if key not in a:
            changes.append(f"+ {key}: {json.dumps(b[key], ensure_ascii=False)}")
        elif key not in b:
            changes.append(f"- {key}: {json.dumps(a[key], ensure_ascii=False)}")
        elif a[key] != b[key]:
            changes.append(
                f"~ {key}: {json.dumps(a[key], ensure_ascii=False)} -> "
                f"{json.dumps(b[key], ensure_ascii=False)}"
            )
    return changes


def history(engine: sa.Engine, code: str) -> list[VersionEntry]:
    """All versions of a dataset, oldest first, each with its diff against the one before."""
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(tables.dataset_versions)
            .where(tables.dataset_versions.c.code == code)
            .order_by(tables.dataset_versions.c.version)
        ).all()
    if not rows:
        raise KeyError(f"dataset {code!r} is not in the directory")
    out = []
    previous: dict[str, Any] | None = None
    for row in rows:
        changes = ["created"] if previous is None else diff_specs(previous, row.spec)
        out.append(VersionEntry(row.version, row.published_at, row.source_file, changes))
        previous = row.spec
    return out


def version_spec(engine: sa.Engine, code: str, version: int) -> dict[str, Any] | None:
    """The stored spec of one version of a dataset (None when there is no such version)."""
    v = tables.dataset_versions
    with engine.connect() as conn:
        row = conn.execute(sa.select(v.c.spec).where(v.c.code == code, v.c.version == version)).first()
    return dict(row.spec) if row is not None else None


def certificate_types_for(engine: sa.Engine, dataset_code: str) -> list[dict[str, Any]]:
    """Certificate types issued from a dataset."""
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(tables.certificate_types).where(tables.certificate_types.c.dataset_code == dataset_code)
        ).all()
    return [dict(r._mapping) for r in rows]
