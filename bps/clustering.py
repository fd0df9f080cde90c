"""Clustering: grouping the quanta of a graph into jobs (`ClusteredQuantumGraph`), and dispatch.

A `ClusteredQuantumGraph` is columnar: for each quantum (in the graph's global order, see
`graph.quantum_graph.QuantumGraph.quantum_offsets`) the cluster it is in; for each cluster its
name, label, tags and quanta counts; the cluster dependencies as two index arrays. Algorithms
(entry-point group ``quanta.clustering``) only decide which cluster each quantum goes to and how
clusters are named (`ClusterAssignment`); `ClusteredQuantumGraph.from_assignment` does the rest
and refuses a clustering whose clusters depend on each other in a cycle.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import TYPE_CHECKING

import numpy as np

from bps.errors import ClusteringError
from bps.plugin_registry import entry_point_names, load_by_name
from bps.workflow_arrays import dependency_order, find_cycle, unique_inverse, unique_sorted, uuid_strings
from graph.quantum_graph import QuantumGraph

if TYPE_CHECKING:
    from bps.config import BpsConfig

__all__ = [
    "CLUSTERING_GROUP",
    "Cluster",
    "ClusterAssignment",
    "ClusteredQuantumGraph",
    "cluster_quanta",
    "load_clustering_function",
    "safe_name_part",
]

CLUSTERING_GROUP = "quanta.clustering"

TAG_SEPARATOR = "\x1f"
"""Joins a cluster's tag values in `ClusteredQuantumGraph.tag_text` (as in the generic workflow)."""

_CTRL_BPS_NAMES = {
    "lsst.ctrl.bps.quantum_clustering_funcs.single_quantum_clustering": "single_quantum",
    "lsst.ctrl.bps.quantum_clustering_funcs.dimension_clustering": "dimensions",
    "single_quantum_clustering": "single_quantum",
    "dimension_clustering": "dimensions",
}
_UNSAFE = re.compile(r"[^A-Za-z0-9_.\-]")


def safe_name_part(value: str) -> str:
    """``value`` with every character outside ``[A-Za-z0-9_.-]`` replaced by ``-`` (for job names)."""
    return _UNSAFE.sub("-", value)


@dataclass(frozen=True, slots=True)
class Cluster:
    """One cluster (a view built on demand): what becomes one payload job."""

    name: str
    label: str
    node_ids: tuple[str, ...]
    quanta_counts: Mapping[str, int]
    tags: Mapping[str, str]


@dataclass
class ClusterAssignment:
    """What a clustering algorithm decides; `ClusteredQuantumGraph.from_assignment` builds the rest.

    ``cluster_of[q]`` is the cluster of quantum ``q`` (global order), clusters numbered from 0;
    cluster ``c`` has label ``labels[label_of[c]]``, name ``names[c]`` and tags
    ``zip(tag_keys[label_of[c]], tag_text[c].split(TAG_SEPARATOR))``.
    """

    cluster_of: np.ndarray
    labels: list[str]
    label_of: np.ndarray
    names: list[str]
    tag_keys: list[tuple[str, ...]]
    tag_text: list[str]


class ClusteredQuantumGraph:
    """Quanta grouped into clusters, with the dependencies between clusters (columnar inside)."""

    def __init__(
        self,
        *,
        name: str,
        node_ids: np.ndarray,
        task_labels: Sequence[str],
        task_of: np.ndarray,
        assignment: ClusterAssignment,
        members: np.ndarray,
        offsets: np.ndarray,
        counts_sets: list[dict[str, int]],
        counts_index: np.ndarray,
        edges: tuple[np.ndarray, np.ndarray],
    ) -> None:
        self.name = name
        self.node_id_array = node_ids
        """Every quantum's node id (``S16``), in the graph's global order."""
        self.task_labels = list(task_labels)
        self.task_of = task_of
        """Index into `task_labels` of each quantum."""
        self.assignment = assignment
        self.members = members
        """Quantum indexes, cluster after cluster (cluster ``c``: ``members[offsets[c]:offsets[c+1]]``)."""
        self.offsets = offsets
        self.counts_sets = counts_sets
        """The distinct quanta-count mappings; cluster ``c`` has ``counts_sets[counts_index[c]]``."""
        self.counts_index = counts_index
        self._edges = edges

    @classmethod
    def from_assignment(cls, qgraph: QuantumGraph, assignment: ClusterAssignment) -> ClusteredQuantumGraph:
        """Members, quanta counts and cluster edges of ``assignment``; raises `ClusteringError` on a cycle."""
        count = len(assignment.names)
        cluster_of = np.asarray(assignment.cluster_of, dtype=np.int64)
        if len(cluster_of) != qgraph.quantum_count():
            raise ClusteringError(
                f"Clustering placed {len(cluster_of)} quanta; the graph has {qgraph.quantum_count()}."
            )
        if len(cluster_of) and (cluster_of.min() < 0 or cluster_of.max() >= count):
            raise ClusteringError("Clustering left a quantum without a cluster (or named an unknown one).")
        _make_names_unique(assignment.names)
        labels = qgraph.task_labels()
        task_of = np.zeros(len(cluster_of), dtype=np.int32)
        for index, (start, stop) in enumerate(qgraph.quantum_offsets().values()):
            task_of[start:stop] = index
        sizes = np.bincount(cluster_of, minlength=count)
        if count and sizes.min() == 0:
            empty = [assignment.names[i] for i in np.flatnonzero(sizes == 0)[:5].tolist()]
            raise ClusteringError(f"Clustering made clusters without quanta: {', '.join(empty)}.")
        members = np.argsort(cluster_of, kind="stable")
        offsets = np.zeros(count + 1, dtype=np.int64)
        np.cumsum(sizes, out=offsets[1:])
        counts_sets, counts_index = _count_sets(cluster_of, task_of, count, labels)
        upstream, downstream = qgraph.quantum_edges()
        parent, child = cluster_of[upstream], cluster_of[downstream]
        between = parent != child
        keys = unique_sorted(parent[between] * max(count, 1) + child[between])
        edges = (keys // max(count, 1), keys % max(count, 1))
        result = cls(
            name=qgraph.metadata.output_run,
            node_ids=qgraph.topological_order_array(),
            task_labels=labels,
            task_of=task_of,
            assignment=assignment,
            members=members,
            offsets=offsets,
            counts_sets=counts_sets,
            counts_index=counts_index,
            edges=edges,
        )
        result.validate()
        return result

    # -- reading ----------------------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self.assignment.names)

    @property
    def names(self) -> list[str]:
        """Cluster names (unique, filesystem-safe), by cluster index."""
        return self.assignment.names

    def label(self, index: int) -> str:
        """Label of cluster ``index``."""
        return self.assignment.labels[int(self.assignment.label_of[index])]

    def cluster(self, index: int) -> Cluster:
        """A `Cluster` view of cluster ``index``."""
        a = self.assignment
        label_index = int(a.label_of[index])
        keys = a.tag_keys[label_index]
        tags = dict(zip(keys, a.tag_text[index].split(TAG_SEPARATOR), strict=True)) if keys else {}
        return Cluster(
            name=a.names[index],
            label=a.labels[label_index],
            node_ids=tuple(uuid_strings(self.node_ids_of(index))),
            quanta_counts=MappingProxyType(self.counts_sets[int(self.counts_index[index])]),
            tags=MappingProxyType(tags),
        )

    def clusters(self) -> Iterator[Cluster]:
        """Every cluster, by index."""
        for index in range(len(self)):
            yield self.cluster(index)

    def node_ids_of(self, index: int) -> np.ndarray:
        """``S16`` node ids of cluster ``index``'s quanta (in the graph's global order)."""
        ids: np.ndarray = self.node_id_array[self.members[self.offsets[index] : self.offsets[index + 1]]]
        return ids

    def edges(self) -> tuple[np.ndarray, np.ndarray]:
        """(parent, child) cluster indexes of every cluster dependency, each pair once."""
        return self._edges

    def label_counts(self) -> dict[str, int]:
        """Number of clusters per label."""
        per_label = np.bincount(self.assignment.label_of, minlength=len(self.assignment.labels))
        return {
            label: int(n) for label, n in zip(self.assignment.labels, per_label.tolist(), strict=True) if n
        }

    def quanta_counts(self) -> dict[str, int]:
        """Number of quanta per task label."""
        per_task = np.bincount(self.task_of, minlength=len(self.task_labels))
        return {label: int(n) for label, n in zip(self.task_labels, per_task.tolist(), strict=True) if n}

    def validate(self) -> None:
        """Raise `ClusteringError` naming the clusters of a dependency cycle, if there is one."""
        parents, children = self._edges
        _, remaining = dependency_order(len(self), parents, children)
        if len(remaining):
            found = find_cycle(parents, children, remaining)
            cycle = [self.names[i] for i in found]
            labels = sorted({self.label(i) for i in found})
            raise ClusteringError(
                f"The clustering makes a dependency cycle between clusters {' -> '.join([*cycle, cycle[0]])} "
                f"(labels {', '.join(labels)}); change the cluster definitions so no cluster both feeds and "
                f"needs another."
            )

    def __repr__(self) -> str:
        return f"ClusteredQuantumGraph({self.name!r}, {len(self)} clusters, {len(self.node_id_array)} quanta)"


ClusteringFunction = Callable[[QuantumGraph, "BpsConfig"], ClusteredQuantumGraph]


def load_clustering_function(name: str) -> ClusteringFunction:
    """The algorithm registered as ``name`` in ``quanta.clustering``, or a dotted function path.

    ctrl_bps's names (``lsst.ctrl.bps.quantum_clustering_funcs.dimension_clustering``) map to ours.
    """
    short = _CTRL_BPS_NAMES.get(name, name)
    try:
        found = load_by_name(CLUSTERING_GROUP, short)
    except ImportError as err:
        what = f"module {short.rpartition('.')[0]!r}" if "." in short else f"entry point {short!r}"
        raise ClusteringError(f"clusterAlgorithm {name!r}: cannot import {what} ({err}).") from None
    if found is None or not callable(found):
        known = entry_point_names(CLUSTERING_GROUP)
        raise ClusteringError(
            f"clusterAlgorithm {name!r} is not a known clustering algorithm (known: {', '.join(known)}; "
            f"or a dotted path to a function)."
        )
    function: ClusteringFunction = found
    return function


def cluster_quanta(qgraph: QuantumGraph, config: BpsConfig) -> ClusteredQuantumGraph:
    """Cluster ``qgraph`` with the algorithm named by ``clusterAlgorithm`` (default single_quantum)."""
    name = str(config.get("clusterAlgorithm", default="single_quantum"))
    function = load_clustering_function(name)
    result = function(qgraph, config)
    if not isinstance(result, ClusteredQuantumGraph):
        raise ClusteringError(
            f"clusterAlgorithm {name!r} returned {type(result).__name__}, not a ClusteredQuantumGraph."
        )
    return result


def _count_sets(
    cluster_of: np.ndarray, task_of: np.ndarray, count: int, labels: list[str]
) -> tuple[list[dict[str, int]], np.ndarray]:
    """The distinct quanta-count mappings of the clusters and each cluster's one (sparse; exact)."""
    tasks = max(len(labels), 1)
    pairs, _, _, pair_count = unique_inverse(cluster_of * tasks + task_of)
    pair_cluster, pair_task = np.divmod(pairs, tasks)
    # A 64-bit signature per cluster: the wrapping sum of a mix of (task, count) over its pairs.
    mixed = (pair_task.astype(np.uint64) + np.uint64(1)) * np.uint64(0x9E3779B97F4A7C15)
    mixed ^= (pair_count.astype(np.uint64) + np.uint64(7)) * np.uint64(0xC2B2AE3D27D4EB4F)
    mixed *= np.uint64(0x165667B19E3779F9)
    starts = np.searchsorted(pair_cluster, np.arange(count))
    signature = np.add.reduceat(mixed, starts) if len(mixed) else np.zeros(count, np.uint64)
    _, counts_index, representative, _ = unique_inverse(signature)
    sizes = np.diff(np.append(starts, len(pairs)))
    # Exactness: every cluster has the pairs of its group's representative (else a collision).
    rep_start = starts[representative[counts_index]]
    position = np.arange(len(pairs)) - starts[pair_cluster]
    same = (sizes == sizes[representative[counts_index]]).all() and (
        (pair_task == pair_task[rep_start[pair_cluster] + position]).all()
        and (pair_count == pair_count[rep_start[pair_cluster] + position]).all()
    )
    if not same:  # pragma: no cover - a 64-bit signature collision
        keys = [
            tuple(zip(pair_task[s:e].tolist(), pair_count[s:e].tolist(), strict=True))
            for s, e in zip(starts, np.append(starts[1:], len(pairs)), strict=True)
        ]
        found: dict[tuple[tuple[int, int], ...], int] = {}
        counts_index = np.array([found.setdefault(k, len(found)) for k in keys], dtype=np.int64)
        representative = np.array([keys.index(k) for k in found], dtype=np.int64)
    counts_sets = [
        {
            labels[t]: int(n)
            for t, n in zip(
                pair_task[s : s + sizes[c]].tolist(), pair_count[s : s + sizes[c]].tolist(), strict=True
            )
        }
        for c, s in ((int(c), int(starts[c])) for c in representative.tolist())
    ]
    return counts_sets, counts_index.astype(np.int32)


def _make_names_unique(names: list[str]) -> None:
    """Append ``_2``, ``_3``... to repeated names, in place."""
    if len(set(names)) == len(names):
        return
    seen: dict[str, int] = {}
    taken = set(names)
    for index, name in enumerate(names):
        if name not in seen:
            seen[name] = 1
            continue
        number = seen[name]
        while True:
            number += 1
            candidate = f"{name}_{number}"
            if candidate not in taken:
                break
        seen[name] = number
        taken.add(candidate)
        names[index] = candidate
