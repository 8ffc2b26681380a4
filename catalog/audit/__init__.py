"""The access log (访问日志): one hash-chained record per API call, allowed or refused.

``chain`` defines a record and its hash, ``writer`` appends, ``verify`` checks the chain and
``queries`` reads it; ``archive`` moves records past their retention to archive files
(:func:`catalog.audit.archive.archive`). The
names below are the package's public surface.
"""

from catalog.audit.archive import ArchiveError, archived_through, verify_file
from catalog.audit.chain import (
    ACTOR_KINDS,
    DECISIONS,
    GENESIS,
    AuditError,
    AuditRecord,
    hash_input,
    normalise,
    record_hash,
)
from catalog.audit.queries import daily_totals, head, query
from catalog.audit.verify import VerifyReport, verify
from catalog.audit.writer import AuditWriter, append, dataset_index

__all__ = [
    "ACTOR_KINDS",
    "DECISIONS",
    "GENESIS",
    "ArchiveError",
    "AuditError",
    "AuditRecord",
    "AuditWriter",
    "VerifyReport",
    "append",
    "archived_through",
    "daily_totals",
    "dataset_index",
    "hash_input",
    "head",
    "normalise",
    "query",
    "record_hash",
    "verify",
    "verify_file",
]
