"""Columnar building blocks of the quantum-graph builder: projections, joins and id arrays over pyarrow tables.

The builder never makes one Python object per quantum: data IDs stay in pyarrow columns, quanta
and datasets are matched with hash joins on dimension columns, and ids are numpy ``S16`` arrays.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence

import numpy as np
import pyarrow as pa

from .quantum_graph import UUID_TYPE, ids_to_array

__all__ = [
    "Q_COLUMN",
    "D_COLUMN",
    "constant_strings",
    "data_id_json_strings",
    "ids_column",
    "random_ids",
    "relate",
    "unique_rows",
    "with_index",
]

Q_COLUMN = "__q"
"""Name of the quantum-index column added for joins."""
D_COLUMN = "__d"
"""Name of the dataset-row-index column added for joins."""


def random_ids(count: int) -> np.ndarray:
    """``count`` random version-4 UUIDs as a numpy ``S16`` array (one `os.urandom` call)."""
    if count == 0:
        return np.empty(0, dtype="S16")
    raw = np.frombuffer(os.urandom(16 * count), dtype=np.uint8).reshape(count, 16).copy()
    raw[:, 6] = (raw[:, 6] & 0x0F) | 0x40
    raw[:, 8] = (raw[:, 8] & 0x3F) | 0x80
    return raw.view("S16").reshape(count)


def unique_rows(table: pa.Table, keys: Sequence[str], sort_keys: Sequence[str] | None = None) -> pa.Table:
    """The distinct rows of ``table``'s ``keys`` columns (in that order), sorted by ``sort_keys``."""
    keys = list(keys)
    if not keys:
        return pa.table({"__one": [0] * min(1, table.num_rows)}).select([])
    unique = table.select(keys).group_by(keys, use_threads=False).aggregate([]).select(keys)
    order = list(sort_keys) if sort_keys is not None else keys
    if order and unique.num_rows > 1:
        unique = unique.sort_by([(k, "ascending") for k in order])
    return unique


def with_index(table: pa.Table, name: str) -> pa.Table:
    """``table`` plus an int64 column ``name`` numbering its rows."""
    return table.append_column(name, pa.array(np.arange(table.num_rows, dtype=np.int64)))


def relate(
    quanta: pa.Table,
    quantum_keys: Sequence[str],
    target: pa.Table,
    join_keys: Sequence[str],
    rows: pa.Table,
) -> tuple[np.ndarray, np.ndarray]:
    """Pairs (quantum index, target row index) whose data IDs are related.

    ``quanta`` has the task's data ID columns and `Q_COLUMN`; ``target`` has ``join_keys`` and
    `D_COLUMN`. When the task's data ID columns include every join key the two are joined directly;
    otherwise through the distinct projection of ``rows`` (the materialized data-ID query) onto
    ``quantum_keys`` plus ``join_keys``, which holds relationships such as visit <-> exposure or
    visit/detector <-> patch overlaps.
    """
    join_keys = list(join_keys)
    if not join_keys:
        q = quanta.column(Q_COLUMN).to_numpy()
        d = target.column(D_COLUMN).to_numpy()
        return np.repeat(q, len(d)), np.tile(d, len(q))
    if set(join_keys) <= set(quanta.column_names):
        joined = quanta.select([*join_keys, Q_COLUMN]).join(
            target.select([*join_keys, D_COLUMN]), join_keys, join_type="inner", use_threads=True
        )
    else:
        both = list(dict.fromkeys([*quantum_keys, *join_keys]))
        relation = unique_rows(rows, both, sort_keys=())
        with_quanta = relation.join(
            quanta.select([*quantum_keys, Q_COLUMN]), list(quantum_keys), join_type="inner"
        ).select([*join_keys, Q_COLUMN])
        del relation
        joined = with_quanta.join(target.select([*join_keys, D_COLUMN]), join_keys, join_type="inner").select(
            [Q_COLUMN, D_COLUMN]
        )
    if joined.num_rows == 0:
        return np.empty(0, np.int64), np.empty(0, np.int64)
    q_index = joined.column(Q_COLUMN).to_numpy()
    d_index = joined.column(D_COLUMN).to_numpy()
    order = np.lexsort((d_index, q_index))
    return q_index[order], d_index[order]


def constant_strings(value: str, count: int) -> pa.Array:
    """A string array of ``count`` copies of ``value``."""
    return pa.repeat(pa.scalar(value, pa.string()), count)


def ids_column(ids: np.ndarray) -> pa.Array:
    """An ``S16`` numpy array as a binary(16) arrow array."""
    if len(ids) == 0:
        return pa.array([], UUID_TYPE)
    return ids_to_array(ids)


def data_id_json_strings(table: pa.Table) -> list[str]:
    """One JSON object text per row of a data ID table (for the ``pruned`` table)."""
    return [json.dumps(row) for row in table.to_pylist()]
