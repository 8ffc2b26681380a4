"""The connector interface: the protocol, rejects and errors (kinds are in :mod:`connectors.registry`)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol, runtime_checkable

if TYPE_CHECKING:
    import pyarrow as pa

SOURCE_COLUMN = "_source"
ROW_COLUMN = "_row"
EXTRA_COLUMN = "_extra"
DEFAULT_BATCH_SIZE = 50_000


class ConnectorError(Exception):
    """A whole-source problem; the message names the file or table, the line and the cause."""


class FileRefused(ConnectorError):
    """A whole file cannot be read; the other files of the drop go on.

    ``row`` is the line or sheet row concerned (0 for the whole file)."""

    def __init__(self, message: str, row: int = 0) -> None:
        super().__init__(message)
        self.row = row


@dataclass(frozen=True)
class Reject:
    """One row (or one value) that could not be read or cast.

    ``source`` is the file or table name, ``row`` the row's number in that source (see the
    ``_row`` column), ``field`` the column concerned (``None`` for a whole-row problem),
    ``value`` the offending text and ``reason`` a message for the department. ``rule`` names
    the kind of problem when it is not the default (``cast`` for a value, ``read`` for a row):
    ``file`` (the whole file refused), ``missing_column``, ``formula``.
    """

    source: str
    row: int
    field: str | None
    value: str | None
    reason: str
    rule: str | None = None

    @property
    def kind(self) -> str:
        """The rule this reject stands for in the correction list."""
        return self.rule or ("cast" if self.field else "read")


@runtime_checkable
class Connector(Protocol):
    """A department source that streams Arrow record batches with ``_source`` and ``_row`` columns."""

    def read_batches(self) -> Iterator[pa.RecordBatch]:
        """Stream the source as record batches (bounded memory)."""
        ...

    @property
    def rejects(self) -> list[Reject]:
        """Rows the connector could not read, filled during iteration."""
        ...
