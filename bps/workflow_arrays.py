"""Array helpers of the generic workflow: UUID strings <-> ``S16`` arrays, dependency order, cycles."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from bps.errors import WorkflowError

__all__ = ["dependency_order", "find_cycle", "unique_inverse", "unique_sorted", "uuid_bytes", "uuid_strings"]


def uuid_strings(ids: np.ndarray) -> list[str]:
    """Canonical UUID strings of an ``S16`` array (no `uuid.UUID` object per id)."""
    text = np.ascontiguousarray(ids, dtype="S16").tobytes().hex()
    return [
        f"{text[i : i + 8]}-{text[i + 8 : i + 12]}-{text[i + 12 : i + 16]}-{text[i + 16 : i + 20]}-{text[i + 20 : i + 32]}"
        for i in range(0, len(text), 32)
    ]


def uuid_bytes(strings: Sequence[str]) -> np.ndarray:
    """An ``S16`` array of UUID strings (canonical or 32 hex digits)."""
    if not strings:
        return np.empty(0, dtype="S16")
    try:
        raw = bytes.fromhex("".join(strings).replace("-", ""))
    except ValueError as err:
        raise WorkflowError(f"Invalid node id among {list(strings)[:3]}...: {err}.") from None
    if len(raw) != 16 * len(strings):
        raise WorkflowError(f"Node ids must be UUIDs; got {list(strings)[:3]}...")
    return np.frombuffer(raw, dtype="S16").copy()


def dependency_order(count: int, parents: np.ndarray, children: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Kahn's algorithm one level at a time with numpy over ``count`` nodes and edges ``parents[i] -> children[i]``.

    Returns (nodes in dependency order, lowest index first within a level; nodes left over because
    they are on or behind a cycle).
    """
    parents = np.asarray(parents, dtype=np.int64)
    children = np.asarray(children, dtype=np.int64)
    indegree = np.bincount(children, minlength=count).astype(np.int64)
    by_parent = np.argsort(parents, kind="stable")
    offsets = np.searchsorted(parents[by_parent], np.arange(count + 1))
    targets = children[by_parent]
    frontier = np.flatnonzero(indegree == 0)
    done: list[np.ndarray] = []
    while len(frontier):
        done.append(frontier)
        starts = offsets[frontier]
        sizes = offsets[frontier + 1] - starts
        total = int(sizes.sum())
        if not total:
            break
        positions = np.repeat(starts - np.cumsum(sizes) + sizes, sizes) + np.arange(total)
        reached, _, _, hits = unique_inverse(targets[positions])
        indegree[reached] -= hits
        frontier = reached[indegree[reached] == 0]
    order = np.concatenate(done) if done else np.empty(0, dtype=np.int64)
    if len(order) == count:
        return order, np.empty(0, dtype=np.int64)
    left = np.ones(count, dtype=bool)
    left[order] = False
    return order, np.flatnonzero(left)


def find_cycle(parents: np.ndarray, children: np.ndarray, among: np.ndarray) -> list[int]:
    """One dependency cycle (node indexes) through the nodes ``among`` (left over by `dependency_order`)."""
    import networkx as nx  # only on the error path

    inside = np.zeros(int(max(parents.max(initial=0), children.max(initial=0))) + 1, dtype=bool)
    inside[among] = True
    keep = inside[parents] & inside[children]
    graph = nx.DiGraph()
    graph.add_edges_from(zip(parents[keep].tolist(), children[keep].tolist(), strict=True))
    try:
        return [int(a) for a, _ in nx.find_cycle(graph)]
    except nx.NetworkXNoCycle:  # pragma: no cover - left-over nodes always hold a cycle
        return [int(i) for i in among[:10].tolist()]


def unique_sorted(values: np.ndarray) -> np.ndarray:
    """Sorted distinct values (sort-based; numpy 2's `numpy.unique` hashes and is much slower here)."""
    return unique_inverse(values)[0]


def unique_inverse(values: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(sorted distinct values, index of each value in them, first position of each, count of each)."""
    values = np.asarray(values)
    order = np.argsort(values, kind="stable")
    ordered = values[order]
    starts = np.empty(len(ordered), dtype=np.bool_)
    if len(ordered):
        starts[0] = True
        np.not_equal(ordered[1:], ordered[:-1], out=starts[1:])
    group = np.cumsum(starts) - 1
    inverse = np.empty(len(values), dtype=np.int64)
    inverse[order] = group
    first_positions = np.flatnonzero(starts)
    counts = np.diff(np.append(first_positions, len(ordered)))
    return ordered[starts], inverse, order[first_positions], counts
