"""What a recipient reads in bulk: the tables its grants open, their versions, and the files.

* **Tables.** An app's active grants on datasets shared by file (``share.mode`` ``file`` or
  ``both``) whose grade allows bulk access (the grade policy's ``bulk_allowed``). Share
  ``sharehub``, one schema per providing department (its code), one table per dataset (its
  code), all lower case as the protocol compares names case-insensitively.
* **Versions.** Table version *n* is the *n*-th snapshot (from 0) of the dataset's curated
  Iceberg table, oldest first: one version per published sync run, as a Delta table gets one
  per commit. A version's timestamp is its snapshot's commit time.
* **Files.** Never the curated data files: for each grant and snapshot the hub writes one
  Parquet file holding only the granted fields, with every masked field masked by the one
  disclosure projection (:meth:`catalog.access.disclosure.Projection.value`, as the API masks it).
  The file's name is a digest of the dataset, snapshot, fields and masks, so two grants that
  see the same thing share it, and a changed grant or a new snapshot makes a new file. Files
  are written atomically (a temporary name, then a rename) into ``<var>/sharing``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from catalog.access import applications, disclosure
from catalog.directory import store
from catalog.directory.grades import GradePolicy
from catalog.errors import HubError

SHARE = "sharehub"
FILE_MODES = ("file", "both")


@dataclass(frozen=True)
class SharedTable:
    """One table a recipient may read."""

    schema: str  # the providing department's code, lower case
    name: str  # the dataset code, lower case
    dataset: store.PublishedDataset
    projection: disclosure.Projection

    @property
    def code(self) -> str:
        return self.dataset.spec.code


def shared_tables(engine: Any, app_id: str, policy: GradePolicy) -> list[SharedTable]:
    """The tables ``app_id`` may read in bulk now, by schema and name."""
    out: dict[tuple[str, str], SharedTable] = {}
    for grant in applications.list_grants(engine, app_id=app_id, active_only=True):
        try:
            d = store.get_dataset(engine, grant.dataset_code)
        except KeyError:
            continue  # withdrawn from the directory
        if d.spec.share.mode not in FILE_MODES or d.spec.share.type.value == "none":
            continue
        if not policy[d.spec.grade].bulk_allowed:
            continue
        key = (d.department.code.lower(), d.spec.code.lower())
        if key in out:
            continue  # list_grants is newest first: the newest active grant counts
        projection = disclosure.for_grant(d.spec, grant.fields, grant.clear_fields, grant_id=grant.id)
        out[key] = SharedTable(key[0], key[1], d, projection)
    return [out[k] for k in sorted(out)]


def find_table(tables: list[SharedTable], share: str, schema: str, table: str) -> SharedTable:
    """The table a path names (case-insensitive), or 404 ``share_not_found`` — the same answer
    whether it does not exist or the recipient may not read it."""
    if share.lower() == SHARE:
        for t in tables:
            if t.schema == schema.lower() and t.name == table.lower():
                return t
    raise HubError("share_not_found", name=f"{share}.{schema}.{table}"[:200])


@dataclass(frozen=True)
class Version:
    number: int
    snapshot_id: int
    committed_at: dt.datetime


def versions(lake: Any, code: str) -> list[Version]:
    """The table's versions, oldest first (empty when nothing was published yet)."""
    if not lake.table_exists("curated", code):
        return []
    return [Version(i, s.snapshot_id, s.committed_at) for i, s in enumerate(lake.snapshots("curated", code))]


def pick(found: list[Version], table: str, *, version: Any = None, timestamp: Any = None) -> Version:
    """The version a query asks for: a number, the last one at or before a timestamp, or the
    newest."""
    if not found:
        raise HubError("version_not_found", table=table, version="any")
    if version is not None:
        if not isinstance(version, int) or isinstance(version, bool) or not 0 <= version < len(found):
            raise HubError("version_not_found", table=table, version=str(version)[:20])
        return found[version]
    if timestamp is not None:
        at = parse_timestamp(timestamp)
        before = [v for v in found if v.committed_at <= at]
        if not before:
            raise HubError("version_not_found", table=table, version=str(timestamp)[:40])
        return before[-1]
    return found[-1]


def first_since(found: list[Version], table: str, timestamp: Any) -> Version:
    """The first version committed at or after ``timestamp`` (a protocol ``startingTimestamp``)."""
    at = parse_timestamp(timestamp)
    later = [v for v in found if v.committed_at >= at]
    if not later:
        raise HubError("version_not_found", table=table, version=str(timestamp)[:40])
    return later[0]


def parse_timestamp(value: Any) -> dt.datetime:
    """A protocol timestamp (ISO 8601, e.g. ``2022-01-01T00:00:00Z``)."""
    try:
        at = dt.datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        raise HubError("bad_timestamp", value=str(value)[:40]) from None
    return at if at.tzinfo else at.replace(tzinfo=dt.UTC)


# ---- the schema a recipient sees --------------------------------------------------------------


def _spark_type(t: pa.DataType) -> Any:
    if pa.types.is_string(t) or pa.types.is_large_string(t):
        return "string"
    if pa.types.is_boolean(t):
        return "boolean"
    if pa.types.is_int8(t) or pa.types.is_int16(t) or pa.types.is_int32(t):
        return "integer"
    if pa.types.is_integer(t):
        return "long"
    if pa.types.is_float32(t):
        return "float"
    if pa.types.is_floating(t):
        return "double"
    if pa.types.is_decimal(t):
        return f"decimal({t.precision},{t.scale})"
    if pa.types.is_date(t):
        return "date"
    if pa.types.is_timestamp(t):
        return "timestamp"
    if pa.types.is_binary(t) or pa.types.is_large_binary(t):
        return "binary"
    return "string"


def schema_string(schema: pa.Schema) -> str:
    """The Delta / Spark JSON schema of a file's Arrow schema (PROTOCOL.md "Schema Object")."""
    return json.dumps(
        {
            "type": "struct",
            "fields": [
                {"name": f.name, "type": _spark_type(f.type), "nullable": True, "metadata": {}}
                for f in schema
            ],
        },
        separators=(",", ":"),
    )


# ---- the files ------------------------------------------------------------------------------


@dataclass(frozen=True)
class GrantedFile:
    """One file as a recipient may read it."""

    id: str
    path: Path
    size: int
    rows: int
    schema: pa.Schema


def _digest(parts: list[Any]) -> str:
    return hashlib.sha256(json.dumps(parts, ensure_ascii=False, separators=(",", ":")).encode()).hexdigest()


def projection_parts(p: disclosure.Projection) -> list[Any]:
    """What a projection shows, as digest input: the fields, and the mask of each masked one."""
    return [list(p.fields), sorted(p.masked.items())]


def projection_digest(p: disclosure.Projection) -> str:
    """A digest that changes whenever what the projection shows changes."""
    return _digest(projection_parts(p))


def file_id(table: SharedTable, snapshot_id: int) -> str:
    """The digest naming the file of ``table``'s projection at ``snapshot_id``."""
    p = table.projection
    return _digest([p.code, snapshot_id, *projection_parts(p)])


def _cached(cache: Path, fid: str) -> Path:
    return cache / f"{fid}.parquet"


def _described(fid: str, path: Path) -> GrantedFile:
    meta = pq.read_metadata(path)
    return GrantedFile(fid, path, path.stat().st_size, meta.num_rows, meta.schema.to_arrow_schema())


def _write(out: pa.Table, path: Path) -> None:
    """Write ``out`` to ``path`` atomically (a temporary name in the same folder, then a rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.{secrets.token_hex(4)}.tmp")
    try:
        pq.write_table(out, tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def project(projection: disclosure.Projection, raw: pa.Table) -> pa.Table:
    """The granted fields of ``raw`` (curated rows), each masked field masked by the one
    disclosure projection, value by value, as the API masks it."""
    columns = []
    for name in projection.fields:
        col = raw.column(name)
        if name in projection.masked:
            col = pa.array([projection.value(name, v) for v in col.to_pylist()], pa.string())
        columns.append(col)
    return pa.table(columns, names=list(projection.fields))


def granted_file(lake: Any, cache: Path, table: SharedTable, snapshot_id: int) -> GrantedFile:
    """The granted, masked file of ``table`` at ``snapshot_id``: from the cache, or written now."""
    fid = file_id(table, snapshot_id)
    path = _cached(cache, fid)
    if not path.is_file():
        p = table.projection
        data = lake.read_as_now("curated", p.code, snapshot_id=snapshot_id, columns=list(p.fields))
        _write(project(p, data), path)
    return _described(fid, path)


# ---- the change data feed --------------------------------------------------------------------

CHANGE_TYPE = "_change_type"


def change_id(table: SharedTable, before: int | None, after: int) -> str:
    """The digest naming the change file of ``table``'s projection from snapshot ``before`` (None:
    the empty table) to ``after``."""
    p = table.projection
    return _digest(["cdf", p.code, before, after, *projection_parts(p)])


@dataclass(frozen=True)
class Diff:
    """What a recipient sees change from one snapshot to another: projected images (granted
    fields, masked) and, beside each, the raw primary key (for the hub's own use: it never
    leaves unless the key is a granted field)."""

    inserted: pa.Table
    deleted: pa.Table
    preimages: pa.Table
    postimages: pa.Table
    inserted_keys: pa.Table
    deleted_keys: pa.Table
    updated_keys: pa.Table

    @property
    def counts(self) -> dict[str, int]:
        return {
            "inserted": self.inserted.num_rows,
            "updated": self.postimages.num_rows,
            "deleted": self.deleted.num_rows,
        }

    def change_table(self) -> pa.Table:
        """The change feed's rows: each image with its ``_change_type`` (an update gives two,
        the pre-image just before its post-image)."""
        n = self.preimages.num_rows
        updates = pa.concat_tables([self.preimages, self.postimages])
        if n:
            order = pa.array([i // 2 + (n if i % 2 else 0) for i in range(2 * n)], pa.int64())
            updates = updates.take(order)
        parts = [
            (self.inserted, ["insert"] * self.inserted.num_rows),
            (self.deleted, ["delete"] * self.deleted.num_rows),
            (updates, ["update_preimage", "update_postimage"] * n),
        ]
        return pa.concat_tables(
            [t.append_column(CHANGE_TYPE, pa.array(kinds, pa.string())) for t, kinds in parts]
        )


def diff(lake: Any, table: SharedTable, before: int | None, after: int) -> Diff:
    """The changes from snapshot ``before`` (None: the empty table) to ``after`` by primary key.

    Vectorised: the two snapshots are joined on the key in Arrow and compared column by column
    on their raw values; only the rows found different are masked, and an update whose masked
    images are equal (a change a mask hides, or none to the granted fields) is no change."""
    p = table.projection
    key = list(table.dataset.spec.primary_key)
    columns = list(dict.fromkeys([*key, *p.fields]))
    new = lake.read_as_now("curated", p.code, snapshot_id=after, columns=columns)
    if before is None:
        old = new.schema.empty_table()
    else:  # through today's schema: a column added since reads as null
        old = lake.read_as_now("curated", p.code, snapshot_id=before, columns=columns).cast(new.schema)
    ks = [f"k{i}" for i in range(len(key))]
    fs = list(p.fields)

    def side(raw: pa.Table, tag: str) -> pa.Table:
        cols = {k: raw.column(name) for k, name in zip(ks, key, strict=True)}
        cols |= {f"{tag}{j}": raw.column(name) for j, name in enumerate(fs)}
        cols[f"{tag}_row"] = pa.array(range(raw.num_rows), pa.int64())
        return pa.table(cols)

    joined = side(new, "n").join(side(old, "o"), keys=ks, join_type="full outer")
    n_row, o_row = joined.column("n_row"), joined.column("o_row")
    inserted = pc.filter(n_row, pc.is_null(o_row))
    deleted = pc.filter(o_row, pc.is_null(n_row))
    both = pc.and_(pc.is_valid(n_row), pc.is_valid(o_row))
    differs = pa.array([False] * joined.num_rows, pa.bool_())
    for j in range(len(fs)):
        differs = pc.or_(differs, _differs(joined.column(f"n{j}"), joined.column(f"o{j}")))
    candidates = pc.filter(joined.select(["n_row", "o_row"]), pc.and_(both, differs))
    post = project(p, new.take(candidates.column("n_row")))
    pre = project(p, old.take(candidates.column("o_row")))
    if any(name in p.masked for name in fs) and candidates.num_rows:
        seen = [a != b for a, b in zip(pre.to_pylist(), post.to_pylist(), strict=True)]
        keep = pa.array(seen, pa.bool_())
        candidates, pre, post = candidates.filter(keep), pre.filter(keep), post.filter(keep)
    return Diff(
        inserted=project(p, new.take(inserted)),
        deleted=project(p, old.take(deleted)),
        preimages=pre,
        postimages=post,
        inserted_keys=new.select(key).take(inserted),
        deleted_keys=old.select(key).take(deleted),
        updated_keys=new.select(key).take(candidates.column("n_row")),
    )


def _differs(a: Any, b: Any) -> Any:
    """Per row: whether two columns' values differ (a null differs from a value, not from a
    null)."""
    try:
        ne = pc.fill_null(pc.not_equal(a, b), False)
    except (pa.ArrowNotImplementedError, pa.ArrowInvalid, pa.ArrowTypeError):
        return pa.array([x != y for x, y in zip(a.to_pylist(), b.to_pylist(), strict=True)], pa.bool_())
    return pc.or_(ne, pc.xor(pc.is_null(a), pc.is_null(b)))


def change_file(lake: Any, cache: Path, table: SharedTable, before: int | None, after: int) -> GrantedFile:
    """The changes a recipient sees from snapshot ``before`` to ``after``: inserts, deletes and
    updates (pre- and post-image) of the granted, masked projection — a change only to fields it
    was not granted is no change to it. From the cache, or written now."""
    fid = change_id(table, before, after)
    path = _cached(cache, fid)
    if not path.is_file():
        _write(diff(lake, table, before, after).change_table(), path)
    return _described(fid, path)
