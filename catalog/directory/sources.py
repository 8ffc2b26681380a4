"""The source kinds a dataset may be pulled from: one typed model per kind, kept in a registry.

A directory file's ``source:`` is validated by the model its ``kind`` names (a discriminated
union built from the registry, see :func:`source_spec_type`), so each kind takes only its own
keys. Each model also states its connector's options (:meth:`SourceModel.connector_options`)
from what the pipeline knows at run time (:class:`SourceContext`); the pipeline opens any
registered kind the same way, ``open_connector(source.kind, **source.connector_options(ctx))``.

Adding a kind: one model here with ``@source_kind`` (its ``kind`` a one-value ``Literal``), and
one connector module with its ``register_connector`` line in ``connectors/registry.py``. The
directory's union is built when :mod:`catalog.directory.model` is imported, so a kind must be
registered by then (here, or in a module this one imports).

This module knows nothing of connectors (``catalog`` never imports them): the options are plain
keyword arguments, named as the connector of the same kind takes them.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from enum import StrEnum
from typing import Annotated, Any, Literal, Protocol, TypeVar, Union, get_args, get_origin

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

#: the key of a ``source:`` mapping that picks its model
DISCRIMINATOR = "kind"


class DriftPolicy(StrEnum):
    """What a run does when the source's columns differ from the declared fields."""

    FAIL = "fail"  # added, missing or retyped columns fail the run
    WARN = "warn"  # report the drift; missing columns become nulls, added ones are kept aside


class SourceContext(Protocol):
    """What the pipeline knows at run time, for a source model to state its connector's options.

    The lookups are methods so that a kind asks only for what it uses (a file source never
    reads the watermark, a SQL source never reads the file ledger)."""

    @property
    def location(self) -> str:
        """The source's connection ref resolved: a database URL, a folder, an ``s3://`` prefix."""
        ...

    @property
    def full(self) -> bool:
        """A full run: read everything, ignoring the watermark and the files already taken."""
        ...

    @property
    def batch_size(self) -> int:
        """Rows per record batch."""
        ...

    @property
    def columns(self) -> Mapping[str, str]:
        """Declared field -> its column name at the source (``source_name`` or the field's name)."""
        ...

    def watermark(self) -> Any:
        """The dataset's stored watermark (None before the first incremental run)."""
        ...

    def file_ledger(self) -> dict[str, Any]:
        """The files already taken: name -> checksum."""
        ...

    def s3_options(self) -> dict[str, Any] | None:
        """Plain S3 options (endpoint, keys, region), None when the hub has no S3 store."""
        ...


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SourceModel(_Strict):
    """Where the hub pulls a dataset from; the base of every registered source kind.

    ``connection`` is a reference, never a secret: it resolves to the URL or folder in the
    settings (``SHAREHUB_CONNECTIONS__<REF>`` or the secrets file).

    A subclass declares ``kind`` as a one-value ``Literal`` and implements
    :meth:`connector_options`; the other methods have defaults that suit a typed source which
    keeps no watermark.
    """

    kind: str
    connection: str
    drift: DriftPolicy = DriftPolicy.WARN

    def connector_options(self, ctx: SourceContext) -> dict[str, Any]:
        """The keyword options of this kind's connector (``open_connector(kind, **options)``)."""
        raise NotImplementedError(f"source kind {self.kind!r} does not state its connector options")

    def start_watermark(self, ctx: SourceContext) -> Any:
        """The watermark this run starts from (None: the run reads everything it is given)."""
        return None

    @property
    def incremental(self) -> bool:
        """The run's new watermark is kept for the next run."""
        return False

    @property
    def typed(self) -> bool:
        """The source's columns carry types, so a changed type is drift (SQL, Parquet)."""
        return True

    @property
    def matches_columns(self) -> bool:
        """The connector matches the declared columns to the source's own names (it is given
        ``columns``) and reports missing ones itself; otherwise the pipeline renames
        ``source_name`` columns and reports the declared columns the result lacks."""
        return False

    @property
    def label(self) -> str:
        """What the correction list calls the source in findings about the whole result."""
        return self.kind


_KINDS: dict[str, type[SourceModel]] = {}
S = TypeVar("S", bound=type[SourceModel])


def _kind_of(cls: type[SourceModel]) -> str:
    annotation = cls.model_fields[DISCRIMINATOR].annotation
    values = get_args(annotation) if get_origin(annotation) is Literal else ()
    if len(values) != 1 or not isinstance(values[0], str):
        raise TypeError(f"{cls.__name__}.{DISCRIMINATOR} must be a Literal of one string, not {annotation!r}")
    return values[0]


def source_kind(cls: S) -> S:
    """Class decorator: register a source model under the value of its ``kind`` Literal."""
    kind = _kind_of(cls)
    if kind in _KINDS and _KINDS[kind] is not cls:
        raise ValueError(f"source kind {kind!r} is already registered ({_KINDS[kind].__name__})")
    _KINDS[kind] = cls
    return cls


def unregister_source_kind(kind: str) -> None:
    """Remove a kind (for tests that register a kind of their own)."""
    _KINDS.pop(kind, None)


def source_kinds() -> list[str]:
    """The registered source kinds, sorted."""
    return sorted(_KINDS)


def source_model(kind: str) -> type[SourceModel]:
    """The model registered for ``kind``; KeyError names the known kinds."""
    try:
        return _KINDS[kind]
    except KeyError:
        raise KeyError(f"unknown source kind {kind!r}; known kinds: {', '.join(source_kinds())}") from None


def source_spec_type() -> Any:
    """The registered models as one union discriminated by ``kind`` (what ``source:`` validates
    against). Built from the registry as it is at the call."""
    models = tuple(_KINDS[k] for k in source_kinds())
    if len(models) == 1:
        return models[0]
    return Annotated[Union[models], Field(discriminator=DISCRIMINATOR)]  # noqa: UP007 - a runtime tuple


def parse_lookback(text: str | None) -> dt.timedelta | None:
    """``30m``/``1h``/``2d``/``45s`` as a timedelta; ValueError for anything else."""
    if not text:
        return None
    units = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}
    num, unit = text[:-1], text[-1]
    if unit not in units or not num.isdigit():
        raise ValueError(f"lookback {text!r} must look like 30m, 1h or 2d")
    return dt.timedelta(**{units[unit]: int(num)})


@source_kind
class SqlSource(SourceModel):
    """A table or a query of a department database (any SQLAlchemy URL; PostgreSQL via COPY)."""

    kind: Literal["sql"]
    table: str | None = None
    query: str | None = None
    cursor: str | None = None  # incremental cursor column (source name)
    lookback: str | None = None  # re-read window behind the watermark for late rows, e.g. "1h"

    @field_validator("lookback")
    @classmethod
    def _lookback_parses(cls, v: str | None) -> str | None:
        parse_lookback(v)
        return v

    @model_validator(mode="after")
    def _table_or_query(self) -> SqlSource:
        if not (self.table or self.query):
            raise ValueError("a sql source needs a table or a query")
        if self.table and self.query:
            raise ValueError("a sql source takes a table or a query, not both")
        return self

    @property
    def lookback_window(self) -> dt.timedelta | None:
        """The lookback as a timedelta (None: no re-read window)."""
        return parse_lookback(self.lookback)

    def start_watermark(self, ctx: SourceContext) -> Any:
        return None if ctx.full or not self.cursor else ctx.watermark()

    def connector_options(self, ctx: SourceContext) -> dict[str, Any]:
        return {
            "url": ctx.location,
            "table": self.table,
            "query": self.query,
            # with a table only the declared columns are selected; a query selects its own
            "columns": list(ctx.columns.values()) if self.table else None,
            "cursor": self.cursor,
            "watermark": self.start_watermark(ctx),
            "lookback": self.lookback_window,
            "batch_size": ctx.batch_size,
        }

    @property
    def incremental(self) -> bool:
        return bool(self.cursor)

    @property
    def label(self) -> str:
        return self.table or "query"


@source_kind
class FileSource(SourceModel):
    """Files dropped in a folder or under an S3 prefix (CSV, xlsx, JSON lines, Parquet).

    Incremental by file: a file already taken with the same name and checksum is skipped."""

    kind: Literal["file"]
    # file glob under the connection's folder/prefix, e.g. "residents_*.csv"; files are read in name order
    path: Annotated[str, Field(min_length=1)]
    format: Literal["csv", "xlsx", "jsonl", "parquet"]
    # CSV/jsonl; None = detect from evidence (BOM, UTF-8, UTF-16, GB18030, Big5); an ambiguous file is refused
    encoding: str | None = None
    sheet: str | None = None  # xlsx only; None = the first visible sheet that holds the declared header

    def connector_options(self, ctx: SourceContext) -> dict[str, Any]:
        return {
            "location": ctx.location,
            "pattern": self.path,
            "format": self.format,
            "encoding": self.encoding,
            "sheet": self.sheet,
            "seen": {} if ctx.full else ctx.file_ledger(),
            "s3": ctx.s3_options() if ctx.location.startswith("s3://") else None,
            "batch_size": ctx.batch_size,
            # bad input: the connector matches headers to the declared fields (NFKC, title rows)
            "columns": dict(ctx.columns),
        }

    @property
    def typed(self) -> bool:
        return self.format == "parquet"

    @property
    def matches_columns(self) -> bool:
        return True


_PAGINATION_KEYS: dict[str, set[str]] = {
    "none": set(),
    "page": {"page_param", "first_page", "size_param", "page_size"},
    "offset": {"offset_param", "limit_param", "page_size"},
    "cursor": {"cursor_param", "cursor_path", "size_param", "page_size"},
    "next_link": {"next_path"},
}


class HttpPagination(_Strict):
    """How an ``http`` source asks for the next page (``page``/``offset`` stop at an empty page,
    ``cursor``/``next_link`` when no next cursor or link is named).

    Each style takes only its own keys: ``page``: ``page_param``, ``first_page``,
    ``size_param``, ``page_size``; ``offset``: ``offset_param``, ``limit_param``, ``page_size``
    (required); ``cursor``: ``cursor_param``, ``cursor_path`` (required), ``size_param``,
    ``page_size``; ``next_link``: ``next_path`` (none: the ``Link`` header).
    """

    style: Literal["none", "page", "offset", "cursor", "next_link"] = "none"
    page_param: str | None = None
    first_page: int | None = None
    size_param: str | None = None
    page_size: Annotated[int, Field(ge=1)] | None = None
    offset_param: str | None = None
    limit_param: str | None = None
    cursor_param: str | None = None
    cursor_path: str | None = None
    next_path: str | None = None

    @model_validator(mode="after")
    def _own_keys(self) -> HttpPagination:
        given = self.model_fields_set - {"style"}
        foreign = sorted(given - _PAGINATION_KEYS[self.style])
        if foreign:
            raise ValueError(f"pagination style {self.style} does not take {', '.join(foreign)}")
        if self.style == "offset" and not self.page_size:
            raise ValueError("offset pagination needs page_size")
        if self.style == "cursor" and not self.cursor_path:
            raise ValueError("cursor pagination needs cursor_path")
        return self


@source_kind
class HttpSource(SourceModel):
    """Records of a department's REST API (GET or POST, JSON), paged, optionally incremental.

    The connection ref resolves to the API's base URL with the credentials in its user part
    (``https://:TOKEN@host/base``); the spec names only the auth mode."""

    kind: Literal["http"]
    path: str = ""  # the endpoint under the connection's base URL, e.g. "v1/licences"
    method: Literal["GET", "POST"] = "GET"
    params: dict[str, str | int | float | bool] = Field(default_factory=dict)  # query parameters
    body: dict[str, Any] = Field(default_factory=dict)  # POST: the JSON body
    records: str = ""  # dotted path to the list of records in each page's body ("" = the body)
    auth: Literal["none", "bearer", "api_key", "basic", "oauth2"] = "none"
    api_key_header: str = "X-API-Key"
    api_key_param: str | None = None  # api_key: send the key as this query parameter instead
    token_url: str | None = None  # oauth2: the token endpoint (absolute, or under the base URL)
    scope: str | None = None  # oauth2
    pagination: HttpPagination = HttpPagination()
    cursor: str | None = None  # incremental cursor: the record field (source name)
    since_param: str | None = None  # incremental: the request parameter that takes the start
    lookback: str | None = None
    max_rps: Annotated[float, Field(gt=0)] | None = None
    max_retries: Annotated[int, Field(ge=0, le=20)] = 5
    timeout: Annotated[float, Field(gt=0)] = 30.0
    max_page_mb: Annotated[int, Field(ge=1, le=4096)] = 64  # a larger (or endless) page fails the read

    @field_validator("lookback")
    @classmethod
    def _lookback_parses(cls, v: str | None) -> str | None:
        parse_lookback(v)
        return v

    @field_validator("token_url")
    @classmethod
    def _no_credentials(cls, v: str | None) -> str | None:
        from urllib.parse import urlsplit

        if v and "@" in urlsplit(v).netloc:
            raise ValueError("credentials belong in the connection ref, never in the directory")
        return v

    @model_validator(mode="after")
    def _coherent(self) -> HttpSource:
        if "://" in self.path:
            raise ValueError("path is the endpoint under the connection's base URL, not a URL")
        if bool(self.cursor) != bool(self.since_param):
            raise ValueError("an incremental http source needs both cursor and since_param")
        if self.auth == "oauth2" and not self.token_url:
            raise ValueError("auth oauth2 needs token_url")
        if self.api_key_param and self.auth != "api_key":
            raise ValueError("api_key_param is for auth api_key")
        if self.body and self.method != "POST":
            raise ValueError("body is for method POST")
        return self

    @property
    def lookback_window(self) -> dt.timedelta | None:
        """The lookback as a timedelta (None: no re-read window)."""
        return parse_lookback(self.lookback)

    def start_watermark(self, ctx: SourceContext) -> Any:
        return None if ctx.full or not self.cursor else ctx.watermark()

    def connector_options(self, ctx: SourceContext) -> dict[str, Any]:
        return {
            "url": ctx.location,
            "path": self.path,
            "method": self.method,
            "params": dict(self.params),
            "body": dict(self.body),
            "records": self.records,
            "auth": self.auth,
            "api_key_header": self.api_key_header,
            "api_key_param": self.api_key_param,
            "token_url": self.token_url,
            "scope": self.scope,
            "pagination": self.pagination.model_dump(exclude_none=True),
            "cursor": self.cursor,
            "since_param": self.since_param,
            "watermark": self.start_watermark(ctx),
            "lookback": self.lookback_window,
            "max_rps": self.max_rps,
            "max_retries": self.max_retries,
            "timeout": self.timeout,
            "max_page_bytes": self.max_page_mb << 20,
            "batch_size": ctx.batch_size,
            # JSON keys are matched to the declared fields as file headers are
            "columns": dict(ctx.columns),
        }

    @property
    def incremental(self) -> bool:
        return bool(self.cursor)

    @property
    def typed(self) -> bool:
        return False  # values arrive as JSON text, like JSON lines: a changed type is a cast reject

    @property
    def matches_columns(self) -> bool:
        return True

    @property
    def label(self) -> str:
        return self.path or "/"
