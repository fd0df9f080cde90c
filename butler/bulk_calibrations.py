"""Bulk calibration lookups: the calibration valid at each exposure's (or visit's) time, for millions of rows.

Two small queries fetch the candidate calibrations (with their validity ranges, runs and datastore
records) for the calibration data IDs present in a materialized data-ID table, and the timespans of
the temporal element (exposure, visit, ...) in it. The matching (same data ID, overlapping time,
first collection in the search path, latest validity start) runs on pyarrow/numpy arrays, so its
cost does not depend on the database's join planning.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import sqlalchemy as sa

from .bulk_fetch import RECORD_SCHEMA, UUID_TYPE, DatasetLookup, arrow_type, empty_table, fetch_table
from .errors import InvalidQueryError

if TYPE_CHECKING:
    from .bulk_queries import DataIdRows

__all__ = ["find_calibrations"]

_MIN = np.iinfo(np.int64).min
_MAX = np.iinfo(np.int64).max


def _bounds(table: pa.Table, begin: str, end: str) -> tuple[np.ndarray, np.ndarray]:
    """Begin and end nanoseconds with NULL (unbounded) as the extreme int64 values."""
    return (
        pc.fill_null(table.column(begin), _MIN).to_numpy(),
        pc.fill_null(table.column(end), _MAX).to_numpy(),
    )


def find_calibrations(
    rows: DataIdRows, dataset_type: str, collections: Sequence[str], temporal: str, with_records: bool
) -> DatasetLookup:
    """See `DataIdRows.find_calibrations`."""
    owner = rows.owner
    universe = rows.dimensions.universe
    registered = owner.types.get_registered(dataset_type)
    dims = list(registered.dataset_type.dimensions.required)
    element = universe[temporal]
    if not element.has_timespan:
        raise InvalidQueryError(f"{temporal!r} has no timespan to look calibrations up with.")
    time_keys = list(element.key_columns)
    keys = list(universe.sorted(set(dims) | set(time_keys)))
    rows.check_keys(dataset_type, keys)
    search = owner.search_path(collections)
    source = owner.dataset_source(registered, search, with_calibrations=True)
    if source is None:
        return owner.empty_lookup(keys)
    conn = rows.connection
    # Candidate calibrations for the calibration data IDs in the rows, with runs and records.
    joined: sa.FromClause = source
    if dims:
        wanted = rows.distinct(dims)
        joined = joined.join(wanted, sa.and_(*(source.c[k] == wanted.c[k] for k in dims)))
    dataset = owner.tables.dataset
    joined = joined.join(dataset, dataset.c.dataset_id == source.c.dataset_id)
    selected: list[sa.ColumnElement[Any]] = [
        owner.id_text(source.c.dataset_id),
        source.c.collection_id,
        dataset.c.run_id,
        source.c.timespan_begin,
        source.c.timespan_end,
        *(source.c[k] for k in dims),
    ]
    fields: list[tuple[str, pa.DataType]] = [
        ("dataset_id", UUID_TYPE),
        ("collection_id", pa.int64()),
        ("run", pa.int64()),
        ("c_begin", pa.int64()),
        ("c_end", pa.int64()),
        *((k, arrow_type(universe, k)) for k in dims),
    ]
    record_fields = RECORD_SCHEMA.names[1:]
    if with_records:
        record_table = owner.tables.datastore_record
        joined = joined.outerjoin(record_table, record_table.c.dataset_id == source.c.dataset_id)
        selected += [record_table.c[f] for f in record_fields]
        fields += [(f"record_{f}", RECORD_SCHEMA.field(f).type) for f in record_fields]
    found = fetch_table(conn, sa.select(*selected).select_from(joined), pa.schema(fields))
    records = empty_table(RECORD_SCHEMA)
    if with_records:
        located = found.filter(pc.is_valid(found.column("record_datastore_name")))
        records = pa.Table.from_arrays(
            [located.column("dataset_id"), *(located.column(f"record_{f}") for f in record_fields)],
            schema=RECORD_SCHEMA,
        )
        names = [f for f, _ in fields if not f.startswith("record_")]
        found = found.select(names).group_by(names, use_threads=False).aggregate([]).select(names)
    if found.num_rows == 0:
        return DatasetLookup(owner.empty_lookup(keys).datasets, records)
    # Timespans of the temporal element in the rows.
    distinct_times = rows.distinct(time_keys)
    span_table = owner.tables.dimensions[temporal]
    spans = fetch_table(
        conn,
        sa.select(
            *(distinct_times.c[k] for k in time_keys), span_table.c.timespan_begin, span_table.c.timespan_end
        ).select_from(
            distinct_times.join(
                span_table, sa.and_(*(span_table.c[k] == distinct_times.c[k] for k in time_keys))
            )
        ),
        pa.schema(
            [
                *((k, arrow_type(universe, k)) for k in time_keys),
                ("t_begin", pa.int64()),
                ("t_end", pa.int64()),
            ]
        ),
    )
    # Match: each wanted (calibration data ID, time) row with its overlapping candidates.
    table = rows.table()
    wanted_rows = table.select(keys).group_by(keys, use_threads=False).aggregate([]).select(keys)
    wanted_rows = wanted_rows.join(spans, time_keys, join_type="inner")
    wanted_rows = wanted_rows.append_column("__w", pa.array(np.arange(wanted_rows.num_rows, dtype=np.int64)))
    candidates = found.append_column("__c", pa.array(np.arange(found.num_rows, dtype=np.int64)))
    if dims:
        pairs = wanted_rows.select([*dims, "__w"]).join(
            candidates.select([*dims, "__c"]), dims, join_type="inner"
        )
        w = pairs.column("__w").to_numpy()
        c = pairs.column("__c").to_numpy()
    else:
        w = np.repeat(np.arange(wanted_rows.num_rows), found.num_rows)
        c = np.tile(np.arange(found.num_rows), wanted_rows.num_rows)
    t_begin, t_end = _bounds(wanted_rows, "t_begin", "t_end")
    c_begin, c_end = _bounds(found, "c_begin", "c_end")
    tb, te, cb, ce = t_begin[w], t_end[w], c_begin[c], c_end[c]
    overlap = (cb < te) & (tb < ce) & (cb < ce) & (tb < te)
    w, c = w[overlap], c[overlap]
    # First collection of the search path, then the latest validity start.
    rank_of = {record.id: position for position, record in enumerate(search)}
    collection_ids = found.column("collection_id").to_numpy()
    rank = np.array([rank_of.get(int(i), len(search)) for i in collection_ids], dtype=np.int64)[c]
    order = np.lexsort((-c_begin[c], rank, w))
    w, c = w[order], c[order]
    first = np.ones(len(w), dtype=bool)
    first[1:] = w[1:] != w[:-1]
    w, c = w[first], c[first]
    matched = wanted_rows.take(pa.array(w)).select(keys)
    chosen = found.take(pa.array(c))
    run_ids = chosen.column("run").to_numpy()
    unique_runs, positions = np.unique(run_ids, return_inverse=True)
    run_names = pa.array([owner.collections.get_by_id(int(r)).name for r in unique_runs], pa.string())
    datasets = pa.Table.from_arrays(
        [chosen.column("dataset_id"), run_names.take(pa.array(positions.astype(np.int64))), *matched.columns],
        names=["dataset_id", "run", *keys],
    )
    return DatasetLookup(datasets, records)
