"""Table operations of the lake: ensure, append, upsert, overwrite, read, snapshots."""

from __future__ import annotations

import itertools
import re
import warnings
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TypeVar

import pyarrow as pa
import pyarrow.compute as pc

from lake import properties as props
from lake.errors import LakeError
from lake.retry import with_retry
from lake.schemas import decode_schema, encode_schema, fit_to_table, merge_declared, restore, storage_schema
from lake.zones import CURATED, ZONES

if TYPE_CHECKING:
    from pyiceberg.catalog.sql import SqlCatalog
    from pyiceberg.expressions import BooleanExpression
    from pyiceberg.table import Table

T = TypeVar("T")

_SRC_IDX = "__sharehub_src_idx"
_OLD_IDX = "__sharehub_old_idx"


@dataclass(frozen=True)
class WriteResult:
    """Outcome of a curated write: the snapshot that holds the run's published state and row counts."""

    snapshot_id: int | None
    inserted: int
    updated: int
    deleted: int = 0


@dataclass(frozen=True)
class SnapshotInfo:
    """One Iceberg snapshot of a table."""

    snapshot_id: int
    committed_at: datetime
    operation: str
    run_id: str | None
    parent_id: int | None = None
    summary: dict[str, str] = field(default_factory=dict)


def normalise_code(dataset_code: str) -> str:
    """Dataset code -> Iceberg table name: lower case, anything but [a-z0-9_] becomes ``_``."""
    name = re.sub(r"[^a-z0-9_]+", "_", dataset_code.strip().lower()).strip("_")
    if not name:
        raise LakeError(f"dataset code {dataset_code!r} gives an empty table name")
    return name


class Lake:
    """The zones (Iceberg namespaces) and their tables. Get one with :func:`lake.open_lake`."""

    def __init__(self, catalog: SqlCatalog) -> None:
        self.catalog = catalog

    # -- naming / lookup ---------------------------------------------------------------------------
    def table_name(self, zone: str, dataset_code: str) -> str:
        """The table identifier, e.g. ``curated.scj_yyzz_001`` for ``SCJ-YYZZ.001``."""
        if zone not in ZONES:
            raise LakeError(f"unknown zone {zone!r} (zones: {', '.join(ZONES)})")
        return f"{zone}.{normalise_code(dataset_code)}"

    def table_exists(self, zone: str, dataset_code: str) -> bool:
        return bool(self.catalog.table_exists(self.table_name(zone, dataset_code)))

    def load_table(self, zone: str, dataset_code: str) -> Table:
        """The pyiceberg table (for callers that need more than this API)."""
        from pyiceberg.exceptions import NoSuchTableError

        ident = self.table_name(zone, dataset_code)
        try:
            return self.catalog.load_table(ident)
        except NoSuchTableError as exc:
            raise LakeError(f"unknown table {ident} (dataset {dataset_code!r})") from exc

    def close(self) -> None:
        """Release the catalog's DB connections."""
        self.catalog.engine.dispose()

    def __enter__(self) -> Lake:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- schema ---------------------------------------------------------------------------------------
    def ensure_table(
        self,
        zone: str,
        dataset_code: str,
        schema: pa.Schema,
        *,
        key: list[str] | None = None,
        properties: dict[str, str] | None = None,
    ) -> None:
        """Create the table, or evolve it (union by name) when the declared fields changed.

        ``key`` becomes the Iceberg identifier fields (required columns). Added columns are added;
        columns no longer declared stay (Iceberg keeps them; they read back as null for new rows).
        Incompatible changes (e.g. string -> int) raise :class:`LakeError`.
        """
        from pyiceberg.exceptions import CommitFailedException, TableAlreadyExistsError
        from pyiceberg.table import TableProperties

        key = list(key or [])
        ident = self.table_name(zone, dataset_code)
        stored = storage_schema(schema, key)
        table_props = {
            TableProperties.WRITE_TARGET_FILE_SIZE_BYTES: str(props.DEFAULT_TARGET_FILE_SIZE_BYTES),
            **(properties or {}),
            props.DECLARED_SCHEMA: encode_schema(schema),
            props.KEY_FIELDS: ",".join(key),
            props.DATASET_CODE: dataset_code,
        }
        if not self.catalog.table_exists(ident):
            try:
                with self.catalog.create_table_transaction(ident, stored, properties=table_props) as tx:
                    if key:
                        with tx.update_schema() as update:
                            update.set_identifier_fields(*key)
                return
            except (TableAlreadyExistsError, CommitFailedException):
                # a concurrent process created it ("Table already exists"): evolve below if needed
                if not self.catalog.table_exists(ident):
                    raise
            except ValueError as exc:
                raise LakeError(f"cannot create {ident}: {exc}") from exc
        self._evolve(ident, schema, key, table_props)

    def _evolve(self, ident: str, schema: pa.Schema, key: list[str], table_props: dict[str, str]) -> None:
        table = self.catalog.load_table(ident)
        current = table.metadata.properties
        old_declared = _declared(table)
        declared = merge_declared(old_declared, schema)
        new_props = {**table_props, props.DECLARED_SCHEMA: encode_schema(declared)}
        schema_changed = old_declared is None or not declared.equals(old_declared)
        key_changed = current.get(props.KEY_FIELDS, "") != ",".join(key)
        props_changed = any(current.get(k) != v for k, v in new_props.items())
        if not (schema_changed or key_changed or props_changed):
            return
        try:
            with table.transaction() as tx:
                if schema_changed or key_changed:
                    with tx.update_schema() as update:
                        update.union_by_name(storage_schema(declared, key))
                        if key_changed and key:
                            update.set_identifier_fields(*key)
                tx.set_properties(new_props)
        except LakeError:
            raise
        except Exception as exc:
            raise LakeError(f"schema conflict for {ident}: {exc}") from exc

    # -- writes ---------------------------------------------------------------------------------------
    def append(
        self,
        zone: str,
        dataset_code: str,
        data: pa.Table | Iterable[pa.RecordBatch],
        *,
        run_id: str,
    ) -> int | None:
        """Append rows in one commit tagged with ``run_id``; returns the new snapshot id.

        Record batches are streamed into files of about ``write.target-file-size-bytes``
        (in-memory bytes), one file written while the next fills (see ``_stream_files``). A one-shot
        iterator cannot be replayed, so only a ``pa.Table`` or a list of batches is retried on a
        transient storage error.
        """
        snapshot_props = {props.RUN_ID: run_id}

        def attempt(source: pa.Table | Iterable[pa.RecordBatch]) -> int | None:
            table = self.load_table(zone, dataset_code)
            target = table.schema().as_arrow()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                tx = table.transaction()
                if isinstance(source, pa.Table):
                    tx.append(fit_to_table(source, target), snapshot_properties=snapshot_props)
                else:
                    with tx.update_snapshot(snapshot_properties=snapshot_props).fast_append() as appender:
                        batches = (fit_to_table(b, target) for b in source)
                        for f in _stream_files(tx, table.io, appender.commit_uuid, batches):
                            appender.append_data_file(f)
                committed = tx.commit_transaction()
            snap = committed.current_snapshot()
            return snap.snapshot_id if snap else None

        replayable = isinstance(data, (pa.Table, list, tuple))
        what = f"append to {self.table_name(zone, dataset_code)}"
        if replayable:
            landed = self._landed_probe(zone, dataset_code, run_id, lambda s: s.snapshot_id)
            return self._guard(what, lambda: with_retry(lambda: attempt(data), what=what, landed=landed))
        return self._guard(what, lambda: attempt(data))

    def _landed_probe(
        self, zone: str, dataset_code: str, run_id: str, result: Callable[[SnapshotInfo], T]
    ) -> Callable[[], T | None]:
        """For :func:`with_retry`: a snapshot of ``run_id`` that appeared after this point (the
        commit of a try whose answer was lost), as ``result`` of it; None while there is none."""
        before = {s.snapshot_id for s in self.snapshots(zone, dataset_code) if s.run_id == run_id}

        def probe() -> T | None:
            snaps = self.snapshots(zone, dataset_code)
            new = [s for s in snaps if s.run_id == run_id and s.snapshot_id not in before]
            return result(new[-1]) if new else None

        return probe

    def delete_where(
        self, zone: str, dataset_code: str, row_filter: BooleanExpression, *, run_id: str
    ) -> int:
        """Delete the rows matching ``row_filter`` in one commit tagged with ``run_id``; rows deleted.

        A retried step uses this to take back what its earlier try wrote (its raw rows, its
        quarantine rows) before writing again. Nothing matching: no commit, 0."""
        table = self.load_table(zone, dataset_code)
        if table.current_snapshot() is None:
            return 0
        before = table.scan(row_filter=row_filter).count()
        if not before:
            return 0
        what = f"delete from {self.table_name(zone, dataset_code)}"

        def attempt() -> int:
            t = self.load_table(zone, dataset_code)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                t.delete(delete_filter=row_filter, snapshot_properties={props.RUN_ID: run_id})
            return int(before)

        return self._guard(what, lambda: with_retry(attempt, what=what))

    def upsert(self, dataset_code: str, data: pa.Table, *, key: list[str], run_id: str) -> WriteResult:
        """Upsert into the curated zone on ``key``: insert new keys, replace changed rows, one commit.

        Rows whose non-key values are unchanged are neither rewritten nor counted. Every run
        commits exactly one snapshot tagged with ``run_id`` (an empty append when nothing
        changed), so each run's published state has a snapshot id.
        """
        what = f"upsert into {self.table_name(CURATED, dataset_code)}"
        landed = self._landed_probe(CURATED, dataset_code, run_id, _result_of)
        return self._guard(
            what,
            lambda: with_retry(
                lambda: self._upsert_once(dataset_code, data, key, run_id), what=what, landed=landed
            ),
        )

    def _upsert_once(self, dataset_code: str, data: pa.Table, key: list[str], run_id: str) -> WriteResult:
        from pyiceberg.expressions import AlwaysTrue
        from pyiceberg.io.pyarrow import ArrowScan, _dataframe_to_data_files

        if not key:
            raise LakeError("upsert needs a key")
        table = self.load_table(CURATED, dataset_code)
        target = table.schema().as_arrow()
        missing = [k for k in key if k not in target.names]
        if missing:
            raise LakeError(f"key column(s) {missing} are not in {table.name()}")
        src = fit_to_table(data, target)
        for k in key:
            if src.column(k).null_count:
                raise LakeError(f"key column '{k}' has {src.column(k).null_count} null value(s)")
        if src.num_rows and _has_duplicates(src, key):
            raise LakeError(f"duplicate keys {key} in the data for {table.name()}")
        non_key = [n for n in target.names if n not in key]
        src_keys = src.select(key).append_column(_SRC_IDX, pa.array(range(src.num_rows), pa.int64()))

        # 1. read only the data files whose key ranges may hold incoming keys
        matched_src: list[pa.Array] = []
        changed_src: list[pa.Array] = []
        rewrites: list[tuple[Any, pa.Table]] = []  # (old data file, rows to keep)
        if src.num_rows and table.current_snapshot() is not None:
            scan_schema = table.schema()
            for task in table.scan(row_filter=_key_range_filter(src, key)).plan_files():
                old = ArrowScan(table.metadata, table.io, scan_schema, AlwaysTrue()).to_table([task])
                old = old.cast(target) if old.schema != target else old
                old_keys = old.select(key).append_column(_OLD_IDX, pa.array(range(old.num_rows), pa.int64()))
                pairs = src_keys.join(old_keys, keys=key, join_type="inner")
                if pairs.num_rows == 0:
                    continue
                s_idx, o_idx = pairs.column(_SRC_IDX), pairs.column(_OLD_IDX)
                changed = _rows_differ(src.take(s_idx), old.take(o_idx), non_key)
                matched_src.append(s_idx.combine_chunks())
                if pc.any(changed).as_py():
                    changed_src.append(pc.filter(s_idx, changed).combine_chunks())
                    gone = pc.filter(o_idx, changed)
                    keep_mask = pc.invert(pc.is_in(pa.array(range(old.num_rows), pa.int64()), value_set=gone))
                    rewrites.append((task.file, old.filter(keep_mask)))

        matched = _concat_idx(matched_src)
        changed_idx = _concat_idx(changed_src)
        unchanged = pc.filter(matched, pc.invert(pc.is_in(matched, value_set=changed_idx)))
        all_idx = pa.array(range(src.num_rows), pa.int64())
        to_write = src.filter(pc.invert(pc.is_in(all_idx, value_set=unchanged)))
        updated = len(changed_idx)
        inserted = to_write.num_rows - updated

        # 2. one snapshot: drop rewritten files, add their kept rows and the new/changed rows
        snapshot_props = {props.RUN_ID: run_id}
        tx = table.transaction()
        update = tx.update_snapshot(snapshot_properties=snapshot_props)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if rewrites:
                with update.overwrite() as producer:
                    producer.delete_by_predicate(_key_range_filter(src, key))
                    counter = itertools.count(0)
                    for old_file, keep in rewrites:
                        producer.delete_data_file(old_file)
                        if keep.num_rows:
                            for f in _dataframe_to_data_files(
                                tx.table_metadata, keep, table.io, producer.commit_uuid, counter
                            ):
                                producer.append_data_file(f)
                    if to_write.num_rows:
                        for f in _dataframe_to_data_files(
                            tx.table_metadata, to_write, table.io, producer.commit_uuid, counter
                        ):
                            producer.append_data_file(f)
            else:
                with update.fast_append() as appender:
                    if to_write.num_rows:
                        for f in _dataframe_to_data_files(
                            tx.table_metadata, to_write, table.io, appender.commit_uuid
                        ):
                            appender.append_data_file(f)
            committed = tx.commit_transaction()
        snap = committed.current_snapshot()
        return WriteResult(snap.snapshot_id if snap else None, inserted=inserted, updated=updated)

    def overwrite(
        self, dataset_code: str, data: pa.Table | Iterable[pa.RecordBatch], *, run_id: str
    ) -> WriteResult:
        """Replace the whole curated table with ``data`` (full resync) in one commit.

        ``data`` may be a one-shot stream of record batches: it is written in files of at most
        ``write.target-file-size-bytes`` (bounded memory) and, not being replayable, is not
        retried on a transient storage error (a ``pa.Table`` is)."""
        what = f"overwrite of {self.table_name(CURATED, dataset_code)}"
        rows = [0]

        def counted(batches: Iterable[pa.RecordBatch], target: pa.Schema) -> Iterator[pa.RecordBatch]:
            for b in batches:
                b = fit_to_table(b, target)
                rows[0] += b.num_rows
                yield b

        def attempt(source: pa.Table | Iterable[pa.RecordBatch]) -> WriteResult:
            from pyiceberg.expressions import AlwaysTrue

            table = self.load_table(CURATED, dataset_code)
            target = table.schema().as_arrow()
            before = table.current_snapshot()
            deleted = int(before.summary["total-records"] or 0) if before and before.summary else 0
            snapshot_props = {props.RUN_ID: run_id}
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                tx = table.transaction()
                if isinstance(source, pa.Table):
                    payload = fit_to_table(source, target)
                    rows[0] = payload.num_rows
                    tx.overwrite(payload, snapshot_properties=snapshot_props)
                else:
                    with tx.update_snapshot(snapshot_properties=snapshot_props).overwrite() as producer:
                        if before is not None:
                            # every live data file goes; the predicate alone only shapes the summary
                            producer.delete_by_predicate(AlwaysTrue())
                            for task in table.scan().plan_files():
                                producer.delete_data_file(task.file)
                        for f in _stream_files(tx, table.io, producer.commit_uuid, counted(source, target)):
                            producer.append_data_file(f)
                committed = tx.commit_transaction()
            snap = committed.current_snapshot()
            return WriteResult(
                snap.snapshot_id if snap else None, inserted=rows[0], updated=0, deleted=deleted
            )

        if isinstance(data, pa.Table):
            landed = self._landed_probe(CURATED, dataset_code, run_id, _result_of)
            return self._guard(what, lambda: with_retry(lambda: attempt(data), what=what, landed=landed))
        return self._guard(what, lambda: attempt(data))

    def _guard(self, what: str, fn: Callable[[], T]) -> T:
        """Turn pyiceberg's errors into LakeError with the operation named."""
        from pyiceberg.exceptions import CommitFailedException

        try:
            return fn()
        except LakeError:
            raise
        except CommitFailedException as exc:
            raise LakeError(f"{what}: concurrent commit, gave up after retries: {exc}") from exc
        except ValueError as exc:  # pyiceberg's schema mismatch tables land here
            raise LakeError(f"{what}: schema conflict: {exc}") from exc

    # -- reads ----------------------------------------------------------------------------------------
    def read(
        self,
        zone: str,
        dataset_code: str,
        *,
        snapshot_id: int | None = None,
        row_filter: str | BooleanExpression | None = None,
        columns: list[str] | None = None,
    ) -> pa.Table:
        """Read the table (at ``snapshot_id`` for time travel) with the declared Arrow types."""
        table = self.load_table(zone, dataset_code)
        scan = self._scan(table, snapshot_id, row_filter, columns)
        return restore(scan.to_arrow(), _declared(table))

    def read_as_now(self, zone: str, dataset_code: str, *, snapshot_id: int, columns: list[str]) -> pa.Table:
        """The rows of snapshot ``snapshot_id`` seen through the table's *current* schema, as
        Iceberg's schema evolution defines them: a column added after that snapshot reads as
        null (``read`` uses the snapshot's own schema and refuses a column it lacks)."""
        from pyiceberg.io.pyarrow import ArrowScan

        table = self.load_table(zone, dataset_code)
        scan = self._scan(table, snapshot_id, None, None)
        try:
            projected = table.schema().select(*columns)
        except ValueError as exc:
            raise LakeError(f"bad read of {table.name()}: {exc}") from exc
        reader = ArrowScan(table.metadata, table.io, projected, scan.row_filter, scan.case_sensitive)
        return restore(reader.to_table(scan.plan_files()), _declared(table)).select(columns)

    def read_batches(
        self,
        zone: str,
        dataset_code: str,
        *,
        snapshot_id: int | None = None,
        row_filter: str | BooleanExpression | None = None,
        columns: list[str] | None = None,
    ) -> Iterator[pa.RecordBatch]:
        """Stream the table (at ``snapshot_id``) as record batches with the declared Arrow types.

        Memory stays bounded by one data file's rows (``write.target-file-size-bytes`` of Arrow),
        whatever the table's size."""
        from pyiceberg.io.pyarrow import ArrowScan

        table = self.load_table(zone, dataset_code)
        declared = _declared(table)
        scan = self._scan(table, snapshot_id, row_filter, columns)
        projected = scan.projection()
        # one data file at a time: pyiceberg's batch reader maps every file of the scan over its
        # thread pool and keeps each file's batches, so a big scan is read into memory whole
        for task in scan.plan_files():
            reader = ArrowScan(table.metadata, table.io, projected, scan.row_filter, scan.case_sensitive)
            for batch in reader.to_record_batches([task]):
                yield restore(batch, declared)

    def _scan(
        self,
        table: Table,
        snapshot_id: int | None,
        row_filter: str | BooleanExpression | None,
        columns: list[str] | None,
    ) -> Any:
        from pyiceberg.expressions import AlwaysTrue

        if snapshot_id is not None and table.metadata.snapshot_by_id(snapshot_id) is None:
            raise LakeError(f"snapshot {snapshot_id} does not exist in {table.name()}")
        try:
            return table.scan(
                row_filter=row_filter if row_filter else AlwaysTrue(),
                selected_fields=tuple(columns) if columns else ("*",),
                snapshot_id=snapshot_id,
            )
        except ValueError as exc:
            raise LakeError(f"bad read of {table.name()}: {exc}") from exc

    # -- snapshots ------------------------------------------------------------------------------------
    def current_snapshot_id(self, zone: str, dataset_code: str) -> int | None:
        snap = self.load_table(zone, dataset_code).current_snapshot()
        return snap.snapshot_id if snap else None

    def snapshots(self, zone: str, dataset_code: str) -> list[SnapshotInfo]:
        """All snapshots, oldest first."""
        table = self.load_table(zone, dataset_code)
        result = []
        for snap in sorted(table.metadata.snapshots, key=lambda s: (s.sequence_number or 0, s.timestamp_ms)):
            summary: dict[str, str] = {}
            operation = ""
            if snap.summary is not None:
                operation = snap.summary.operation.value
                summary = {k: str(v) for k, v in snap.summary.additional_properties.items()}
            result.append(
                SnapshotInfo(
                    snapshot_id=snap.snapshot_id,
                    committed_at=datetime.fromtimestamp(snap.timestamp_ms / 1000, tz=UTC),
                    operation=operation,
                    run_id=summary.get(props.RUN_ID),
                    parent_id=snap.parent_snapshot_id,
                    summary=summary,
                )
            )
        return result

    def snapshot_for_run(self, zone: str, dataset_code: str, run_id: str) -> int | None:
        """The last snapshot committed by ``run_id`` (its published state), or None."""
        ids = [s.snapshot_id for s in self.snapshots(zone, dataset_code) if s.run_id == run_id]
        return ids[-1] if ids else None


def _result_of(snapshot: SnapshotInfo) -> WriteResult:
    """The WriteResult of a commit found after the fact (counts from its snapshot summary)."""
    s = snapshot.summary
    return WriteResult(
        snapshot.snapshot_id,
        inserted=int(s.get("added-records", 0) or 0),
        updated=0,
        deleted=int(s.get("deleted-records", 0) or 0),
    )


def _stream_files(tx: Any, io: Any, commit_uuid: Any, batches: Iterable[pa.RecordBatch]) -> Iterator[Any]:
    """Parquet data files for a stream of batches, in memory bounded by two files' worth.

    Batches are gathered until ``write.target-file-size-bytes`` (in-memory bytes); each full bin
    is written by one worker thread while the next bin fills, and the caller's stream waits for
    it before handing over another. (pyiceberg's own streamed write submits every bin to its
    executor as fast as the stream produces them, so a source faster than the disk makes it
    hold the whole stream.)
    """
    from concurrent.futures import Future, ThreadPoolExecutor

    from pyiceberg.io.pyarrow import _dataframe_to_data_files
    from pyiceberg.table import TableProperties

    target = int(
        tx.table_metadata.properties.get(TableProperties.WRITE_TARGET_FILE_SIZE_BYTES)
        or props.DEFAULT_TARGET_FILE_SIZE_BYTES
    )
    counter = itertools.count(0)

    def write(bin_: list[pa.RecordBatch]) -> list[Any]:
        data = pa.Table.from_batches(bin_)
        return list(_dataframe_to_data_files(tx.table_metadata, data, io, commit_uuid, counter))

    pending: Future[list[Any]] | None = None
    bin_: list[pa.RecordBatch] = []
    size = 0
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="lake-writer") as pool:
        for batch in batches:
            if not batch.num_rows:
                continue
            bin_.append(batch)
            size += batch.nbytes
            if size >= target:
                if pending is not None:
                    yield from pending.result()
                pending = pool.submit(write, bin_)
                bin_, size = [], 0
        if pending is not None:
            yield from pending.result()
        if bin_:
            yield from write(bin_)


def _declared(table: Table) -> pa.Schema | None:
    text = table.metadata.properties.get(props.DECLARED_SCHEMA)
    return decode_schema(text) if text else None


def _has_duplicates(data: pa.Table, key: Sequence[str]) -> bool:
    counts = data.select(key).group_by(list(key)).aggregate([([], "count_all")])
    return bool(counts.num_rows != data.num_rows)


def _concat_idx(parts: list[pa.Array]) -> pa.Array:
    return pa.concat_arrays(parts) if parts else pa.array([], pa.int64())


def _key_range_filter(src: pa.Table, key: Sequence[str]) -> BooleanExpression:
    """min <= k <= max for each key column: lets pyiceberg skip files by their column stats."""
    from pyiceberg.expressions import AlwaysTrue, And, GreaterThanOrEqual, LessThanOrEqual, Reference

    expr: BooleanExpression = AlwaysTrue()
    for k in key:
        col = src.column(k)
        if not (
            pa.types.is_integer(col.type)
            or pa.types.is_string(col.type)
            or pa.types.is_large_string(col.type)
            or pa.types.is_date(col.type)
        ):
            continue
        bounds = pc.min_max(col)
        lo, hi = bounds["min"].as_py(), bounds["max"].as_py()
        if lo is None or hi is None:
            continue
        expr = And(
            expr,
            And(
                GreaterThanOrEqual(term=Reference(k), value=lo), LessThanOrEqual(term=Reference(k), value=hi)
            ),
        )
    return expr


def _rows_differ(new: pa.Table, old: pa.Table, columns: Sequence[str]) -> pa.Array:
    """Per row: does any of ``columns`` differ (null == null, NaN == NaN)?"""
    differ = pa.array([False] * new.num_rows, pa.bool_())
    for name in columns:
        a, b = new.column(name).combine_chunks(), old.column(name).combine_chunks()
        try:
            same = pc.fill_null(pc.equal(a, b), False)
            both_null = pc.and_(pc.is_null(a), pc.is_null(b))
            same = pc.or_(same, both_null)
            if pa.types.is_floating(a.type):
                same = pc.or_(same, pc.fill_null(pc.and_(pc.is_nan(a), pc.is_nan(b)), False))
        except pa.ArrowNotImplementedError:  # nested types: compare in Python
            same = pa.array([x == y for x, y in zip(a.to_pylist(), b.to_pylist(), strict=True)], pa.bool_())
        differ = pc.or_(differ, pc.invert(same))
    return differ
