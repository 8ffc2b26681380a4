"""Publishing a department's directory file: its new versions and the serving tables they need.

The one entry point for the CLI, the demo and (later) the portal's review. It spans two
packages: the directory records the versions, the serving store gets a table per dataset.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa

from catalog.access import applications
from catalog.db import tables
from catalog.directory import store
from catalog.directory.grades import DEFAULT_POLICY, GradePolicy
from catalog.directory.loader import DirectoryFileError, load_directory_file, policy_problems
from catalog.directory.model import DirectoryFile, Grade
from catalog.directory.store import PublishChange
from catalog.serving import tables as serving

__all__ = ["PublishChange", "TableClash", "publish", "publish_path", "table_clashes"]


@dataclass(frozen=True)
class TableClash:
    """Two dataset codes that name the same tables (``SCJ-LIC`` and ``scj.lic`` both give
    ``srv_scj_lic`` and ``curated.scj_lic``)."""

    code: str
    other: str
    table: str


def table_clashes(engine: sa.Engine, directory: DirectoryFile) -> list[TableClash]:
    """The file's datasets whose tables would be another dataset's: one already published
    under another code (of any department) or another one in the same file. Published, its
    syncs would write into that dataset's lake and serving tables. The serving name is the
    key: codes with the same Iceberg name always have the same serving name."""
    with engine.connect() as conn:
        taken = {serving.serving_table_name(c): c for (c,) in conn.execute(sa.select(tables.datasets.c.code))}
    out = []
    for ds in directory.datasets:
        name = serving.serving_table_name(ds.code)
        other = taken.setdefault(name, ds.code)
        if other != ds.code:
            out.append(TableClash(ds.code, other, name))
    return out


def publish(
    engine: sa.Engine, directory: DirectoryFile, *, source_file: str, policy: GradePolicy | None = None
) -> list[PublishChange]:
    """Store a validated directory file (a changed dataset gets a new version, in one
    transaction), then make sure every dataset it declares has its serving table. ValueError
    when a dataset belongs to another department or its tables would be another dataset's; a
    file the grade policy refuses (a core dataset declared open) raises ``DirectoryFileError``."""
    problems = policy_problems(directory, None, source_file, policy or DEFAULT_POLICY)
    if problems:
        raise DirectoryFileError(problems)
    clashes = table_clashes(engine, directory)
    if clashes:
        c = clashes[0]
        raise ValueError(
            f"{source_file}: dataset code {c.code} names the same tables as dataset {c.other} "
            f"({c.table}); choose another code"
        )
    before = _grades(engine, [ds.code for ds in directory.datasets])
    changes = store.store_directory(engine, directory, source_file=source_file)
    for ds in directory.datasets:
        serving.create_if_missing(engine, ds)
    rules = policy or DEFAULT_POLICY
    for ds in directory.datasets:
        old = before.get(ds.code)
        if old is not None and GRADE_ORDER.index(ds.grade) > GRADE_ORDER.index(old):
            applications.narrow_for_grade(
                engine,
                ds.code,
                rules[ds.grade],
                reason=f"grade raised from {old.value} to {ds.grade.value} ({source_file})",
            )
    return changes


#: the grades from least to most protected: raising a dataset's grade narrows its grants
GRADE_ORDER = (Grade.GENERAL, Grade.IMPORTANT, Grade.CORE)


def _grades(engine: sa.Engine, codes: list[str]) -> dict[str, Grade]:
    """The published grade of each of these datasets (those published already)."""
    if not codes:
        return {}
    d = tables.datasets
    with engine.connect() as conn:
        rows = conn.execute(sa.select(d.c.code, d.c.grade).where(d.c.code.in_(codes))).all()
    return {r.code: Grade(r.grade) for r in rows}


def publish_path(engine: sa.Engine, path: Path, *, policy: GradePolicy | None = None) -> list[PublishChange]:
    """Validate and publish one directory file."""
    return publish(engine, load_directory_file(path, policy=policy), source_file=path.name, policy=policy)
