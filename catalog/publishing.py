"""Publishing a department's directory file: its new versions and the serving tables they need.

The one entry point for the CLI, the demo and (later) the portal's review. It spans two
packages: the directory records the versions, the serving store gets a table per dataset.
"""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa

from catalog.directory import store
from catalog.directory.grades import DEFAULT_POLICY, GradePolicy
from catalog.directory.loader import DirectoryFileError, load_directory_file, policy_problems
from catalog.directory.model import DirectoryFile
from catalog.directory.store import PublishChange
from catalog.serving import tables as serving

__all__ = ["PublishChange", "publish", "publish_path"]


def publish(
    engine: sa.Engine, directory: DirectoryFile, *, source_file: str, policy: GradePolicy | None = None
) -> list[PublishChange]:
    """Store a validated directory file (a changed dataset gets a new version, in one
    transaction), then make sure every dataset it declares has its serving table. A file the
    grade policy refuses (a core dataset declared open) raises ``DirectoryFileError``."""
    problems = policy_problems(directory, None, source_file, policy or DEFAULT_POLICY)
    if problems:
        raise DirectoryFileError(problems)
    changes = store.store_directory(engine, directory, source_file=source_file)
    for ds in directory.datasets:
        serving.create_if_missing(engine, ds)
    return changes


def publish_path(engine: sa.Engine, path: Path, *, policy: GradePolicy | None = None) -> list[PublishChange]:
    """Validate and publish one directory file."""
    return publish(engine, load_directory_file(path, policy=policy), source_file=path.name, policy=policy)
