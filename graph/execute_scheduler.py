"""Dependency bookkeeping of the local executor: which quanta are ready, and which a failure blocks.

The quantum-to-quantum edges are computed once from the graph's edge table with numpy (a producer's
output dataset id matched against consumers' input ids) into CSR arrays over positions in the
graph's topological order; no Python object per quantum, no recursion.
"""

from __future__ import annotations

import heapq
import uuid

import numpy as np

from .quantum_graph import EdgeKind, QuantumGraph, ids_to_numpy, uuid_from_bytes

__all__ = ["Dependencies", "Scheduler"]

_WRITES = [int(EdgeKind.OUTPUT), int(EdgeKind.METADATA), int(EdgeKind.LOG)]
_READS = [int(EdgeKind.INPUT), int(EdgeKind.PREREQUISITE)]


class Dependencies:
    """Quantum → quantum edges of a graph as CSR arrays over positions in its topological order.

    Attributes
    ----------
    ids
        ``S16`` node ids in topological order; position ``i`` is quantum ``i``.
    label_index
        Index into ``labels`` of each quantum's task.
    labels
        Task labels in pipeline order.
    indegree
        Number of distinct upstream quanta of each quantum.
    offsets, successors
        Downstream quanta of ``i`` are ``successors[offsets[i]:offsets[i + 1]]``.
    """

    def __init__(self, graph: QuantumGraph) -> None:
        self.labels = graph.task_labels()
        self.ids = graph.topological_order_array()
        counts = [graph.quantum_count(label) for label in self.labels]
        self.label_index = np.repeat(np.arange(len(self.labels), dtype=np.int32), counts)
        n = len(self.ids)
        sorter = np.argsort(self.ids, kind="stable")
        sorted_ids = self.ids[sorter]
        kinds = graph.edges.column("kind").to_numpy(zero_copy_only=False)
        nodes = ids_to_numpy(graph.edges.column("node_id"))
        datasets = ids_to_numpy(graph.edges.column("dataset_id"))
        writes = np.isin(kinds, _WRITES)
        reads = np.isin(kinds, _READS)
        produced, producers = datasets[writes], nodes[writes]
        by_dataset = np.argsort(produced, kind="stable")
        produced, producers = produced[by_dataset], producers[by_dataset]
        consumed, consumers = datasets[reads], nodes[reads]
        if len(produced) and len(consumed):
            positions = np.minimum(np.searchsorted(produced, consumed), len(produced) - 1)
            matched = produced[positions] == consumed
            upstream = sorter[np.searchsorted(sorted_ids, producers[positions[matched]])].astype(np.int64)
            downstream = sorter[np.searchsorted(sorted_ids, consumers[matched])].astype(np.int64)
            pairs = np.unique(upstream * max(n, 1) + downstream)
            upstream, downstream = pairs // max(n, 1), pairs % max(n, 1)
        else:
            upstream = downstream = np.empty(0, dtype=np.int64)
        # ``pairs`` is sorted by upstream position, so the successors are already grouped.
        self.successors = downstream.astype(np.int64)
        self.offsets = np.searchsorted(upstream, np.arange(n + 1)).astype(np.int64)
        self.indegree = np.bincount(downstream, minlength=n).astype(np.int64)

    def __len__(self) -> int:
        return len(self.ids)

    def node_id(self, index: int) -> uuid.UUID:
        """The node id of quantum ``index``."""
        return uuid_from_bytes(self.ids[index])

    def label(self, index: int) -> str:
        """The task label of quantum ``index``."""
        return self.labels[int(self.label_index[index])]

    def successors_of(self, index: int) -> np.ndarray:
        """Positions of the quanta reading an output of quantum ``index``."""
        successors: np.ndarray = self.successors[self.offsets[index] : self.offsets[index + 1]]
        return successors


class Scheduler:
    """Hands out ready quanta (upstream first) and propagates completion and failure downstream."""

    PENDING, READY, RUNNING, DONE, FAILED, BLOCKED = range(6)

    def __init__(self, dependencies: Dependencies) -> None:
        self.deps = dependencies
        self.state = np.full(len(dependencies), self.PENDING, dtype=np.int8)
        self.remaining = dependencies.indegree.copy()
        self._ready = [int(i) for i in np.flatnonzero(self.remaining == 0)]
        heapq.heapify(self._ready)
        self.state[self._ready] = self.READY
        self.running = 0
        """Number of quanta handed out and not yet marked done or failed."""

    def has_ready(self) -> bool:
        """Whether a quantum can start now."""
        while self._ready and self.state[self._ready[0]] != self.READY:
            heapq.heappop(self._ready)  # marked done (already run) while waiting
        return bool(self._ready)

    def pop_ready(self) -> int:
        """The earliest (in topological order) ready quantum, now RUNNING (call `has_ready` first)."""
        if not self.has_ready():
            raise IndexError("No quantum is ready.")
        index = heapq.heappop(self._ready)
        self.state[index] = self.RUNNING
        self.running += 1
        return index

    def mark_done(self, index: int) -> None:
        """Quantum ``index`` succeeded (or had nothing to do, or ran before): release its successors."""
        if self.state[index] == self.RUNNING:
            self.running -= 1
        self.state[index] = self.DONE
        for successor in self.deps.successors_of(index).tolist():
            self.remaining[successor] -= 1
            if self.remaining[successor] == 0 and self.state[successor] == self.PENDING:
                self.state[successor] = self.READY
                heapq.heappush(self._ready, successor)

    def mark_failed(self, index: int) -> list[int]:
        """Quantum ``index`` failed: block everything downstream; returns the newly blocked positions."""
        if self.state[index] == self.RUNNING:
            self.running -= 1
        self.state[index] = self.FAILED
        blocked = []
        stack = self.deps.successors_of(index).tolist()
        while stack:
            successor = stack.pop()
            if self.state[successor] in (self.PENDING, self.READY):
                self.state[successor] = self.BLOCKED
                blocked.append(successor)
                stack.extend(self.deps.successors_of(successor).tolist())
        return blocked

    def pending(self) -> np.ndarray:
        """Positions of quanta never started (pending or ready)."""
        return np.flatnonzero((self.state == self.PENDING) | (self.state == self.READY))

    def finished(self) -> bool:
        """Whether nothing is ready or running any more."""
        return not self.has_ready() and self.running == 0
