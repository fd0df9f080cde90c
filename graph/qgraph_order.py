"""Dependency order of quanta computed from edge tables alone (columnar Kahn, level by level).

Used by ``pipetask show-qgraph --node-ids`` on the stored edges of a ``.qg`` file: no `QuantumGraph`
and no Python object per quantum; one numpy pass per level of the graph (its depth, not its size).
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from .arrow_arrays import contiguous, int_array, to_numpy, unique
from .errors import QuantumGraphError
from .quantum_graph import EdgeKind, ids_to_array

__all__ = ["dependency_order", "index_of"]

_READ_KINDS = (int(EdgeKind.INPUT), int(EdgeKind.PREREQUISITE))
_WRITE_KINDS = (int(EdgeKind.OUTPUT), int(EdgeKind.METADATA), int(EdgeKind.LOG))


def index_of(keys: pa.Array | pa.ChunkedArray, values: pa.Array) -> np.ndarray:
    """Position of each key in ``values`` (first occurrence), -1 where absent: one hash lookup.

    Much faster than `numpy.searchsorted` on ``S16`` arrays for millions of 16-byte ids.
    """
    if len(values) == 0 or len(keys) == 0:
        return np.full(len(keys), -1, dtype=np.int64)
    import pyarrow.compute as pc  # ~35 ms to import: only writers and whole-graph readers get here

    found = contiguous(pc.index_in(keys, value_set=values))
    validity, data = found.buffers()
    positions = np.frombuffer(data, dtype=np.int32, count=len(found), offset=found.offset * 4).astype(
        np.int64
    )
    if found.null_count:
        bits = np.unpackbits(np.frombuffer(validity, dtype=np.uint8), bitorder="little")
        positions[~bits[found.offset : found.offset + len(found)].astype(bool)] = -1
    return positions


def _int8_numpy(column: pa.ChunkedArray) -> np.ndarray:
    """An int8 column as numpy, from its buffer (``to_numpy`` would make pyarrow import pandas)."""
    try:
        return to_numpy(column)
    except ValueError as err:
        raise QuantumGraphError(f"The edge kind column is unusable: {err}") from None


def dependency_order(node_ids: np.ndarray, edges: pa.Table) -> np.ndarray:
    """``node_ids`` (``S16``) reordered so each quantum comes after every quantum producing its inputs.

    Parameters
    ----------
    node_ids
        Every node id of the graph; ties keep this order (quanta of one level stay in input order).
    edges
        At least the ``node_id``, ``dataset_id`` and ``kind`` columns of the graph's edges.

    Raises
    ------
    QuantumGraphError
        If the edges form a cycle, or name a quantum not in ``node_ids``.
    """
    count = len(node_ids)
    if count == 0:
        return node_ids
    nodes = ids_to_array(node_ids)
    edge_index = index_of(edges.column("node_id"), nodes)  # index of each edge's quantum in node_ids
    if (edge_index < 0).any():
        raise QuantumGraphError("An edge names a quantum that is not in the graph.")
    kinds = _int8_numpy(edges.column("kind"))

    # (producer, consumer) pairs: a read edge whose dataset some quantum writes.
    writes = np.flatnonzero(np.isin(kinds, _WRITE_KINDS))
    reads = np.flatnonzero(np.isin(kinds, _READ_KINDS))
    dataset_ids = edges.column("dataset_id")
    produced = dataset_ids.take(int_array(writes))
    read_datasets = dataset_ids.take(int_array(reads))
    producer_rows = index_of(read_datasets, contiguous(produced))
    internal = producer_rows >= 0
    sources = edge_index[writes][producer_rows[internal]]
    targets = edge_index[reads][internal]

    # Kahn's algorithm, a whole level (every quantum whose producers are all placed) at a time.
    indegree = np.bincount(targets, minlength=count)
    by_source = np.argsort(sources, kind="stable")
    sources, targets = sources[by_source], targets[by_source]
    starts = np.searchsorted(sources, np.arange(count), side="left")
    stops = np.searchsorted(sources, np.arange(count), side="right")
    levels = []
    frontier = np.flatnonzero(indegree == 0)
    placed = 0
    while len(frontier):
        levels.append(frontier)
        placed += len(frontier)
        lengths = stops[frontier] - starts[frontier]
        total = int(lengths.sum())
        if total == 0:
            break
        edge_rows = np.repeat(starts[frontier] - np.cumsum(lengths) + lengths, lengths) + np.arange(total)
        hit = unique(targets[edge_rows])
        hits = np.bincount(np.searchsorted(hit, targets[edge_rows]), minlength=len(hit))
        indegree[hit] -= hits
        frontier = hit[indegree[hit] == 0]
    if placed != count:
        raise QuantumGraphError(
            f"The quanta form a cycle: {count - placed} of {count} quanta depend on each other."
        )
    result: np.ndarray = node_ids[np.concatenate(levels)]
    return result
