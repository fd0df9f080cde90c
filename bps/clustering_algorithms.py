"""The clustering algorithms of the ``quanta.clustering`` entry points: single-quantum and dimensions.

Both work on the quantum graph's columns (data-id columns as numpy arrays, quantum edges as index
arrays); neither builds a Python object per quantum beyond the job name and tag strings.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from bps.clustering import TAG_SEPARATOR, ClusterAssignment, ClusteredQuantumGraph, safe_name_part
from bps.errors import ClusteringError
from bps.workflow_arrays import unique_inverse, unique_sorted
from graph.quantum_graph import QuantumGraph

if TYPE_CHECKING:
    from bps.config import BpsConfig
    from bps.config_models import ClusterSpec

__all__ = ["dimension_clustering", "single_quantum_clustering"]


def single_quantum_clustering(qgraph: QuantumGraph, config: BpsConfig) -> ClusteredQuantumGraph:
    """One cluster per quantum, labelled with its task label and named ``<label>_<data-id values>``."""
    builder = _AssignmentBuilder(qgraph)
    for label in qgraph.task_labels():
        builder.add_single_quanta(label)
    return ClusteredQuantumGraph.from_assignment(qgraph, builder.finish())


def dimension_clustering(qgraph: QuantumGraph, config: BpsConfig) -> ClusteredQuantumGraph:
    """Clusters of the ``cluster:`` definitions; tasks in no definition get single-quantum clusters.

    Quanta of a definition's ``pipetasks`` with equal values of its ``dimensions`` form one cluster
    (``equalDimensions: visit:exposure`` takes a task's exposure as its visit). With
    ``findDependencyMethod`` only the sink (or source) tasks' quanta are grouped by dimensions and
    the other quanta join the cluster of the quanta they feed (or are fed by). Clusters larger
    than ``partitionMaxSize``, or fewer than ``partitionMaxClusters`` in all, are split along
    independent pieces (no dependency between two pieces of a cluster).
    """
    specs: dict[str, ClusterSpec] = dict(config.clusters)
    builder = _AssignmentBuilder(qgraph)
    labels = qgraph.task_labels()
    owner: dict[str, str] = {}
    for spec in specs.values():
        for task in spec.pipetasks:
            if task not in labels:
                raise ClusteringError(
                    f"cluster.{spec.name}.pipetasks: task {task!r} is not in the quantum graph "
                    f"(tasks: {', '.join(labels)})."
                )
            if task in owner:
                raise ClusteringError(
                    f"Task {task!r} is in two cluster definitions: cluster.{owner[task]} and cluster.{spec.name}."
                )
            owner[task] = spec.name
    for spec in specs.values():
        if spec.name in labels and spec.pipetasks != (spec.name,):
            raise ClusteringError(
                f"cluster.{spec.name}: the cluster label is also a task label; rename the cluster "
                "(its jobs and the task's would share a label)."
            )
        builder.add_dimension_clusters(spec)
    for label in labels:
        if label not in owner:
            builder.add_single_quanta(label)
    return ClusteredQuantumGraph.from_assignment(qgraph, builder.finish())


class _AssignmentBuilder:
    """Collects clusters label by label into a `ClusterAssignment`."""

    def __init__(self, qgraph: QuantumGraph) -> None:
        self.qgraph = qgraph
        self.offsets = qgraph.quantum_offsets()
        self.cluster_of = np.full(qgraph.quantum_count(), -1, dtype=np.int64)
        self.labels: list[str] = []
        self.tag_keys: list[tuple[str, ...]] = []
        self.label_of: list[np.ndarray] = []
        self.names: list[str] = []
        self.tag_text: list[str] = []
        self._edges: tuple[np.ndarray, np.ndarray] | None = None

    def quantum_edges(self) -> tuple[np.ndarray, np.ndarray]:
        if self._edges is None:
            self._edges = self.qgraph.quantum_edges()
        return self._edges

    def add_single_quanta(self, label: str) -> None:
        start, stop = self.offsets[label]
        keys = self.qgraph.task_dimensions[label]
        columns = self.qgraph.data_id_columns(label, keys)
        first = len(self.names)
        self.cluster_of[start:stop] = np.arange(first, first + stop - start)
        self._add_label(label, keys, columns, stop - start)

    def add_dimension_clusters(self, spec: ClusterSpec) -> None:
        members, task_of_row = self._definition_members(spec)
        anchor_tasks = list(range(len(spec.pipetasks)))
        if spec.find_dependency_method is not None:
            anchor_tasks = self._anchor_tasks(spec, members, task_of_row)
        anchors = np.isin(task_of_row, anchor_tasks)
        values = self._definition_values(spec, [spec.pipetasks[i] for i in anchor_tasks])
        group, representative = _group_rows(values, int(anchors.sum()))
        anchor_rows = np.flatnonzero(anchors)
        group_of = np.full(len(members), -1, dtype=np.int64)
        group_of[anchor_rows] = group
        if spec.find_dependency_method is not None:
            self._propagate(
                spec, members, group_of, [self._group_name(spec, values, r) for r in representative]
            )
        keys = spec.dimensions
        columns = {key: column[representative] for key, column in zip(keys, values, strict=True)}
        if spec.partition_max_size or spec.partition_max_clusters:
            group_of, piece, source = self._partition(spec, members, group_of)
            columns = {key: column[source] for key, column in columns.items()}
            columns["partition"] = piece
            keys = (*keys, "partition")
        first = len(self.names)
        self.cluster_of[members] = first + group_of
        self._add_label(spec.name, keys, columns, int(group_of.max(initial=-1)) + 1)

    def _task_at(self, quantum: int) -> str:
        return next(label for label, (start, stop) in self.offsets.items() if start <= quantum < stop)

    # -- helpers ------------------------------------------------------------------------------------

    def _add_label(self, label: str, keys: Sequence[str], columns: dict[str, np.ndarray], count: int) -> None:
        text = {key: _strings(column) for key, column in columns.items()}
        name_keys = [k for k in keys if columns[k].dtype != object or len(set(text[k])) > 1] or list(keys)
        safe = [_safe(text[k]) if columns[k].dtype == object else text[k] for k in name_keys]
        prefix = [safe_name_part(label)] * count
        self.names.extend(map("_".join, zip(prefix, *safe, strict=True)) if safe else prefix)
        self.tag_text.extend(
            map(TAG_SEPARATOR.join, zip(*(text[k] for k in keys), strict=True)) if keys else [""] * count
        )
        self.label_of.append(np.full(count, len(self.labels), dtype=np.int32))
        self.labels.append(label)
        self.tag_keys.append(tuple(keys))

    def _definition_members(self, spec: ClusterSpec) -> tuple[np.ndarray, np.ndarray]:
        """Global indexes of the definition's quanta, task after task, and each one's task (index in pipetasks)."""
        ranges = [self.offsets[task] for task in spec.pipetasks]
        members = [np.arange(start, stop, dtype=np.int64) for start, stop in ranges]
        tasks = [np.full(stop - start, i, dtype=np.int64) for i, (start, stop) in enumerate(ranges)]
        if not members:
            return np.empty(0, np.int64), np.empty(0, np.int64)
        return np.concatenate(members), np.concatenate(tasks)

    def _definition_values(self, spec: ClusterSpec, tasks: Sequence[str]) -> list[np.ndarray]:
        """Per dimension of the definition, the values of the quanta of ``tasks`` (one after another)."""
        per_dimension: list[list[np.ndarray]] = [[] for _ in spec.dimensions]
        for task in tasks:
            if self.qgraph.quantum_count(task) == 0:
                continue  # nothing to group (and with no edges every task looks like a sink)
            available = self.qgraph.data_id_columns(task)
            for index, dimension in enumerate(spec.dimensions):
                column = available.get(dimension)
                if column is None:
                    for a, b in spec.equal_dimensions:
                        other = b if dimension == a else a if dimension == b else None
                        if other is not None and other in available:
                            column = available[other]
                            break
                if column is None:
                    raise ClusteringError(
                        f"cluster.{spec.name}: task {task!r} has no dimension {dimension!r} (its dimensions: "
                        f"{', '.join(available)}); add it to equalDimensions or remove the task."
                    )
                per_dimension[index].append(column)
        return [_concatenate(parts) for parts in per_dimension]

    def _definition_edges(self, members: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Quantum edges between two quanta of the definition, as row numbers into ``members``."""
        upstream, downstream = self.quantum_edges()
        row = np.full(len(self.cluster_of), -1, dtype=np.int64)
        row[members] = np.arange(len(members))
        inside = (row[upstream] >= 0) & (row[downstream] >= 0)
        return row[upstream[inside]], row[downstream[inside]]

    def _anchor_tasks(self, spec: ClusterSpec, members: np.ndarray, task_of_row: np.ndarray) -> list[int]:
        """Indexes (in pipetasks) of the sink (or source) tasks of the definition."""
        up, down = self._definition_edges(members)
        linked = task_of_row[up] != task_of_row[down]
        side = task_of_row[up][linked] if spec.find_dependency_method == "sink" else task_of_row[down][linked]
        excluded = set(unique_sorted(side).tolist())
        return [i for i in range(len(spec.pipetasks)) if i not in excluded]

    def _propagate(
        self, spec: ClusterSpec, members: np.ndarray, group_of: np.ndarray, names: list[str]
    ) -> None:
        """Give every non-anchor row the group of the rows it feeds (sink) or is fed by (source)."""
        up, down = self._definition_edges(members)
        source, target = (down, up) if spec.find_dependency_method == "sink" else (up, down)
        while True:
            known = group_of[source] >= 0
            width = int(group_of.max(initial=0)) + 1
            keys = unique_sorted(target[known] * width + group_of[source[known]])
            if len(keys) == 0:
                break
            pairs = np.stack(np.divmod(keys, width), axis=1)
            targets, _, first, _ = unique_inverse(pairs[:, 0])
            if (
                len(targets) < len(pairs)
                or ((group_of[pairs[:, 0]] >= 0) & (group_of[pairs[:, 0]] != pairs[:, 1])).any()
            ):
                self._conflict(spec, members, group_of, pairs, names)
            new = group_of[targets] < 0
            if not new.any():
                break
            group_of[targets[new]] = pairs[first[new], 1]
        missing = np.flatnonzero(group_of < 0)
        if len(missing):
            task = self._task_at(int(members[missing[0]]))
            raise ClusteringError(
                f"cluster.{spec.name} (findDependencyMethod: {spec.find_dependency_method}): {len(missing)} "
                f"quanta (e.g. of task {task!r}) are not connected to any "
                f"{spec.find_dependency_method} task quantum of the cluster."
            )

    def _conflict(
        self,
        spec: ClusterSpec,
        members: np.ndarray,
        group_of: np.ndarray,
        pairs: np.ndarray,
        names: list[str],
    ) -> None:
        rows, _, _, counts = unique_inverse(pairs[:, 0])
        several = rows[counts > 1]
        row = int(several[0]) if len(several) else int(pairs[group_of[pairs[:, 0]] != pairs[:, 1]][0, 0])
        found = sorted(
            {*pairs[pairs[:, 0] == row, 1].tolist(), *([group_of[row]] if group_of[row] >= 0 else [])}
        )
        task = self._task_at(int(members[row]))
        raise ClusteringError(
            f"cluster.{spec.name} (findDependencyMethod: {spec.find_dependency_method}): a quantum of task "
            f"{task!r} would be in clusters {', '.join(names[g] for g in found[:3])}; a quantum can be in "
            f"one cluster only."
        )

    def _group_name(self, spec: ClusterSpec, values: list[np.ndarray], row: int) -> str:
        return "_".join([spec.name, *(str(column[row]) for column in values)])

    def _partition(
        self, spec: ClusterSpec, members: np.ndarray, group_of: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Split groups along their connected pieces; (new group per row, piece per new group, old group per new group)."""
        groups = int(group_of.max(initial=-1)) + 1
        sizes = np.bincount(group_of, minlength=groups)
        pieces = np.ones(groups, dtype=np.int64)
        if spec.partition_max_size:
            pieces = np.maximum(pieces, -(-sizes // spec.partition_max_size))
        if spec.partition_max_clusters:
            pieces = np.maximum(pieces, max(1, spec.partition_max_clusters // max(groups, 1)))
        pieces = np.minimum(pieces, np.maximum(sizes, 1))
        component = _components(len(members), *self._definition_edges(members))
        representatives, component_of, _, component_size = unique_inverse(component)
        component_group = group_of[representatives]
        order = np.lexsort((representatives, component_group))
        sorted_sizes = component_size[order]
        sorted_groups = component_group[order]
        before = np.cumsum(sorted_sizes) - sorted_sizes
        group_start = np.zeros(groups, dtype=np.int64)
        if groups > 1:
            np.cumsum(sizes[:-1], out=group_start[1:])
        within = before - group_start[sorted_groups]
        target = sizes[sorted_groups] / pieces[sorted_groups]
        piece_sorted = np.minimum((within // target).astype(np.int64), pieces[sorted_groups] - 1)
        piece_of_component = np.empty_like(piece_sorted)
        piece_of_component[order] = piece_sorted
        piece_of_row = piece_of_component[component_of.reshape(-1)]
        key = group_of * int(pieces.max(initial=1)) + piece_of_row
        distinct, new_group, _, _ = unique_inverse(key)
        return (
            new_group.reshape(-1),
            distinct % int(pieces.max(initial=1)),
            distinct // int(pieces.max(initial=1)),
        )

    def finish(self) -> ClusterAssignment:
        return ClusterAssignment(
            cluster_of=self.cluster_of,
            labels=self.labels,
            label_of=np.concatenate(self.label_of) if self.label_of else np.empty(0, np.int32),
            names=self.names,
            tag_keys=self.tag_keys,
            tag_text=self.tag_text,
        )


def _concatenate(parts: list[np.ndarray]) -> np.ndarray:
    if any(part.dtype == object for part in parts):
        return np.concatenate([part.astype(object) for part in parts])
    return np.concatenate(parts) if parts else np.empty(0, np.int64)


def _group_rows(columns: list[np.ndarray], rows: int) -> tuple[np.ndarray, np.ndarray]:
    """Group id of each of ``rows`` rows by equal values in every column, and the first row of each group."""
    combined = np.zeros(rows, dtype=np.int64)
    for column in columns:
        _, codes, _, _ = unique_inverse(column)
        _, combined, _, _ = unique_inverse(combined * (int(codes.max(initial=0)) + 1) + codes)
    _, group, first, _ = unique_inverse(combined)
    return group, first


def _components(count: int, up: np.ndarray, down: np.ndarray) -> np.ndarray:
    """Connected components (the smallest row of each) by min-label propagation."""
    component = np.arange(count, dtype=np.int64)
    while len(up):
        low = np.minimum(component[up], component[down])
        before = component.copy()
        np.minimum.at(component, up, low)
        np.minimum.at(component, down, low)
        component = component[component]
        if np.array_equal(component, before):
            break
    return component


def _strings(column: np.ndarray) -> list[str]:
    if column.dtype == object:
        return [str(value) for value in column.tolist()]
    return column.astype(str).tolist()  # type: ignore[no-any-return]


def _safe(values: list[str]) -> list[str]:
    mapping = {value: safe_name_part(value) for value in set(values)}
    return [mapping[value] for value in values]
