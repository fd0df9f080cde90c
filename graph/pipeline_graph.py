"""The pipeline graph: tasks and dataset types of a `Pipeline`, configured, connected and checked.

`PipelineGraph.from_pipeline` imports every task class, applies the config overrides, checks the
contracts, freezes the configs and builds a bipartite graph (a `networkx.DiGraph` held inside):
dataset type -> task for inputs, task -> dataset type for outputs. Each task also writes
``<label>_config`` (init output), ``<label>_metadata`` and ``<label>_log``; the pipeline as a whole
writes ``packages``. Construction refuses two producers of a dataset type, cycles, produced
prerequisites, incompatible storage classes and inconsistent dimensions, each with a named error.
`PipelineGraph.resolve` turns dataset type nodes into butler `DatasetType` objects, checked against
a registry when one is given. The quantum-graph builder starts from here.

The node and edge classes live in `pipeline_graph_nodes`, the checks run while building in
`pipeline_graph_checks`.
"""

from __future__ import annotations

import heapq
import logging
from collections.abc import Iterable, Iterator, Mapping, Sequence
from types import MappingProxyType
from typing import TYPE_CHECKING

import networkx as nx

from butler.datasets import DatasetType
from butler.dimensions import DimensionGroup, DimensionUniverse
from butler.storage_classes import StorageClassRegistry

from .config import PipelineTaskConfig
from .errors import DatasetTypeConflictError, PipelineCycleError, SubsetError, UnresolvedDatasetTypeError
from .pipeline import Pipeline
from .pipeline_graph_checks import (
    check_read,
    check_single_producer,
    check_steps,
    did_you_mean,
    make_dataset_type_node,
    make_task_node,
    registry_conflicts,
)
from .pipeline_graph_nodes import PACKAGES_DATASET_TYPE, DatasetTypeNode, TaskEdge, TaskNode
from .pipeline_parts import Step

if TYPE_CHECKING:
    from butler.registry import Registry  # only annotations: importing the registry pulls in SQLAlchemy

__all__ = ["PipelineGraph"]

_LOG = logging.getLogger(__name__)


def _task_key(label: str) -> tuple[str, str]:
    return ("task", label)


def _dataset_key(name: str) -> tuple[str, str]:
    return ("dataset_type", name)


class PipelineGraph:
    """Tasks and dataset types of a pipeline, with configs frozen and consistency checked.

    Build with `from_pipeline`. Tasks are kept in a deterministic topological order (declaration
    order where the data flow allows).
    """

    def __init__(
        self,
        task_nodes: Iterable[TaskNode],
        *,
        universe: DimensionUniverse,
        storage_classes: StorageClassRegistry,
        steps: Sequence[tuple[Step, tuple[str, ...]]] = (),
        description: str = "",
        instrument: str | None = None,
    ) -> None:
        self._universe = universe
        self._storage_classes = storage_classes
        self.description = description
        """What the pipeline does."""
        self.instrument = instrument
        """Instrument import path or registered name declared by the pipeline."""
        self._graph: nx.DiGraph = nx.DiGraph()
        nodes = list(task_nodes)
        for node in nodes:
            self._graph.add_node(_task_key(node.label), node=node)
        self._graph.add_node(_dataset_key(PACKAGES_DATASET_TYPE))
        for node in nodes:
            for edge in node.edges:
                key = _dataset_key(edge.dataset_type_name)
                if key not in self._graph:
                    self._graph.add_node(key)
                if edge.is_read:
                    # One graph edge per (dataset type, task); a task may read a parent and its components.
                    task_key = _task_key(node.label)
                    if self._graph.has_edge(key, task_key):
                        self._graph.edges[key, task_key]["edges"].append(edge)
                    else:
                        self._graph.add_edge(key, task_key, edges=[edge])
                else:
                    producers = [self._graph.edges[p, key]["edges"][0] for p in self._graph.predecessors(key)]
                    check_single_producer(edge, producers)
                    self._graph.add_edge(_task_key(node.label), key, edges=[edge])
        order = self._topological_order()
        self._tasks: dict[str, TaskNode] = {}
        self._dataset_types: dict[str, DatasetTypeNode] = {}
        for key in order:
            if key[0] == "task":
                self._tasks[key[1]] = self._graph.nodes[key]["node"]
        for key in order:
            if key[0] == "dataset_type":
                produced, read = self._edges_at(key)
                dataset_node = make_dataset_type_node(
                    key[1], produced, read, self._universe, self._storage_classes
                )
                self._graph.nodes[key]["node"] = dataset_node
                self._dataset_types[key[1]] = dataset_node
        self._steps = tuple(steps)
        check_steps(self._steps, self._tasks.values(), self._dataset_types, self._universe)

    # -- construction -----------------------------------------------------------------------------

    @classmethod
    def from_pipeline(
        cls,
        pipeline: Pipeline,
        *,
        universe: DimensionUniverse | None = None,
        storage_classes: StorageClassRegistry | None = None,
    ) -> PipelineGraph:
        """Import the tasks, build and check their configs and contracts, and connect them.

        Raises
        ------
        TaskImportError, ConfigError, ContractError
            From loading classes, applying overrides and checking contracts.
        DuplicateProducerError, PipelineCycleError, DatasetTypeConflictError, StorageClassMismatchError, DimensionMismatchError
            When the tasks do not fit together.
        """
        universe = universe or DimensionUniverse.default()
        storage_classes = storage_classes or StorageClassRegistry.default()
        pipeline.validate()
        classes = {label: pipeline.task_class(label) for label in pipeline.labels}
        configs = {label: pipeline.make_config(label) for label in pipeline.labels}
        pipeline.check_contracts(configs)
        task_nodes = []
        for label in pipeline.labels:
            config = configs[label]
            config.freeze()
            task_nodes.append(
                make_task_node(
                    label,
                    classes[label],
                    pipeline.tasks[label].task_class,
                    config,
                    universe,
                    storage_classes,
                )
            )
        steps = [(step, pipeline.subsets[step.label].labels) for step in pipeline.steps]
        graph = cls(
            task_nodes,
            universe=universe,
            storage_classes=storage_classes,
            steps=steps,
            description=pipeline.description,
            instrument=pipeline.instrument,
        )
        _LOG.debug(
            "Built pipeline graph of %d tasks and %d dataset types.",
            len(graph.tasks),
            len(graph.dataset_types),
        )
        return graph

    def _topological_order(self) -> list[tuple[str, str]]:
        """Kahn's algorithm, preferring insertion order; `PipelineCycleError` showing one cycle."""
        rank = {key: index for index, key in enumerate(self._graph.nodes)}
        remaining = {key: degree for key, degree in self._graph.in_degree()}
        ready = [rank[key] for key, degree in remaining.items() if degree == 0]
        heapq.heapify(ready)
        keys = list(self._graph.nodes)
        order = []
        while ready:
            key = keys[heapq.heappop(ready)]
            order.append(key)
            for successor in self._graph.successors(key):
                remaining[successor] -= 1
                if remaining[successor] == 0:
                    heapq.heappush(ready, rank[successor])
        if len(order) < len(keys):
            ordered = set(order)
            unordered = self._graph.subgraph([key for key in keys if key not in ordered])
            cycle = nx.find_cycle(unordered)
            names = [source[1] for source, _ in cycle] + [cycle[0][0][1]]
            raise PipelineCycleError(f"The pipeline has a cycle: {' -> '.join(names)}.")
        return order

    def check_read(
        self,
        edge: TaskEdge,
        storage_class: str | None,
        relation: str = "stored as",
        source: TaskEdge | None = None,
    ) -> None:
        """Check ``edge`` can read a dataset stored as ``storage_class`` (its component, if it reads one).

        `StorageClassMismatchError` if it cannot; ``relation`` and ``source`` say in the message where
        the storage class comes from (see `pipeline_graph_checks.check_read`).
        """
        check_read(edge, storage_class, self._storage_classes, relation, source)

    # -- accessors --------------------------------------------------------------------------------

    @property
    def universe(self) -> DimensionUniverse:
        """Dimension universe the graph was checked against."""
        return self._universe

    @property
    def tasks(self) -> Mapping[str, TaskNode]:
        """Task nodes by label, in topological order."""
        return MappingProxyType(self._tasks)

    @property
    def dataset_types(self) -> Mapping[str, DatasetTypeNode]:
        """Dataset type nodes by name, in topological order."""
        return MappingProxyType(self._dataset_types)

    @property
    def configs(self) -> Mapping[str, PipelineTaskConfig]:
        """Frozen task configs by label."""
        return MappingProxyType({label: node.config for label, node in self._tasks.items()})

    def task_dimensions(self, label: str) -> DimensionGroup:
        """Dimensions of task ``label``'s quanta."""
        return self._task(label).dimensions

    def producer_of(self, dataset_type: str) -> str | None:
        """Label of the task writing ``dataset_type`` (a component name gives its parent's producer)."""
        return self._dataset_type(dataset_type).producer

    def consumers_of(self, dataset_type: str) -> tuple[str, ...]:
        """Labels of the tasks reading ``dataset_type`` (or any of its components)."""
        return self._dataset_type(dataset_type).consumers

    def edges_of(self, dataset_type: str) -> list[TaskEdge]:
        """Every connection to ``dataset_type``: the producer's first, then the readers'."""
        produced, read = self._edges_at(_dataset_key(self._dataset_type(dataset_type).name))
        return produced + read

    def _edges_at(self, key: tuple[str, str]) -> tuple[list[TaskEdge], list[TaskEdge]]:
        """Edges writing and reading the dataset type node ``key``."""
        produced = [
            edge for p in self._graph.predecessors(key) for edge in self._graph.edges[p, key]["edges"]
        ]
        read = [edge for c in self._graph.successors(key) for edge in self._graph.edges[key, c]["edges"]]
        return produced, read

    def overall_inputs(self) -> dict[str, DatasetTypeNode]:
        """Dataset types read but not produced by the pipeline (prerequisites and init-inputs included)."""
        return {
            name: node
            for name, node in self._dataset_types.items()
            if node.producer is None and node.consumers
        }

    def init_inputs(self, label: str) -> tuple[TaskEdge, ...]:
        """Init-inputs of task ``label``."""
        return self._task(label).init_inputs

    def init_outputs(self, label: str) -> tuple[TaskEdge, ...]:
        """Init-outputs of task ``label`` (``<label>_config`` included)."""
        return self._task(label).init_outputs

    def upstream_tasks(self, label: str) -> list[str]:
        """Labels of the tasks whose outputs ``label`` reads directly."""
        node = self._task(label)
        producers = (
            self._dataset_types[edge.dataset_type_name].producer for edge in node.edges if edge.is_read
        )
        return list(dict.fromkeys(p for p in producers if p is not None))

    @property
    def steps(self) -> tuple[tuple[Step, tuple[str, ...]], ...]:
        """Steps in order, each with its task labels (in topological order)."""
        return tuple(
            (step, tuple(label for label in self._tasks if label in set(labels)))
            for step, labels in self._steps
        )

    def subset(self, labels: Iterable[str]) -> PipelineGraph:
        """A graph of only ``labels`` (their configs and nodes reused); `SubsetError` for an unknown label."""
        keep = set()
        for label in labels:
            self._task(label)
            keep.add(label)
        steps = [
            (step, tuple(label for label in step_labels if label in keep))
            for step, step_labels in self._steps
        ]
        return PipelineGraph(
            (node for label, node in self._tasks.items() if label in keep),
            universe=self._universe,
            storage_classes=self._storage_classes,
            steps=[(step, step_labels) for step, step_labels in steps if step_labels],
            description=self.description,
            instrument=self.instrument,
        )

    def _task(self, label: str) -> TaskNode:
        try:
            return self._tasks[label]
        except KeyError:
            raise SubsetError(
                f"Unknown task label {label!r} (pipeline has: {', '.join(self._tasks) or 'none'})"
                f"{did_you_mean(label, self._tasks)}"
            ) from None

    def _dataset_type(self, name: str) -> DatasetTypeNode:
        parent = name.split(".", 1)[0]
        try:
            return self._dataset_types[parent]
        except KeyError:
            raise UnresolvedDatasetTypeError(
                f"Dataset type {parent!r} is not in the pipeline{did_you_mean(parent, self._dataset_types)}"
            ) from None

    def __repr__(self) -> str:
        return f"PipelineGraph(tasks={list(self._tasks)})"

    # -- dataset types ----------------------------------------------------------------------------

    def resolve(self, registry: Registry | None = None) -> dict[str, DatasetType]:
        """Butler dataset types of every node, by name, checked against ``registry`` if given.

        Without a registry the definitions come from the connections (dimensions from the graph's
        universe). With a registry, registered definitions win and must agree with the pipeline
        (same dimensions and calibration flag, convertible storage classes), else
        `DatasetTypeConflictError`; dataset types the pipeline reads but neither produces nor finds
        registered raise `UnresolvedDatasetTypeError` listing them.
        """
        if registry is None:
            return {name: node.to_dataset_type() for name, node in self._dataset_types.items()}
        universe = registry.universe
        registered = {dt.name: dt for dt in registry.query_dataset_types(list(self._dataset_types))}
        resolved: dict[str, DatasetType] = {}
        missing: list[str] = []
        conflicts: list[str] = []
        for name, node in self._dataset_types.items():
            existing = registered.get(name)
            if existing is None:
                if node.producer is None and node.consumers:
                    missing.append(name)
                    continue
                ours = node.to_dataset_type()
                resolved[name] = DatasetType(
                    name,
                    universe.group(ours.dimensions.names),
                    ours.storage_class_name,
                    is_calibration=ours.is_calibration,
                )
                continue
            produced, read = self._edges_at(_dataset_key(name))
            conflicts.extend(registry_conflicts(node, existing, produced, read, self._storage_classes))
            resolved[name] = existing
        if conflicts:
            raise DatasetTypeConflictError(
                "The pipeline disagrees with the registry about dataset type(s):\n  " + "\n  ".join(conflicts)
            )
        if missing:
            raise UnresolvedDatasetTypeError(
                "The pipeline reads dataset type(s) that no task produces and the registry does not have: "
                + ", ".join(missing)
                + "."
            )
        return resolved

    def register_dataset_types(self, registry: Registry) -> list[str]:
        """Register every dataset type the pipeline produces (and ``packages``); names newly registered.

        Checks the whole pipeline against the registry first (`resolve`).
        """
        resolved = self.resolve(registry)
        added = []
        for name, node in self._dataset_types.items():
            produced = node.producer is not None or name == PACKAGES_DATASET_TYPE
            if produced and registry.register_dataset_type(resolved[name]):
                added.append(name)
        if added:
            _LOG.info("Registered %d dataset type(s): %s.", len(added), ", ".join(added))
        return added

    # -- export -----------------------------------------------------------------------------------

    def to_networkx(self, *, include_automatic: bool = True) -> nx.DiGraph:
        """A new bipartite `networkx.DiGraph` for drawing (`graph.pipeline_drawing`) or analysis.

        Node keys are ``"task:<label>"`` and ``"dataset_type:<name>"``. Task nodes have attributes
        ``kind="task"``, ``label``, ``task_class``, ``dimensions``; dataset type nodes ``kind=
        "dataset_type"``, ``label``, ``storage_class``, ``dimensions``, ``is_calibration``, ``is_init``,
        ``is_prerequisite``; edges ``connection`` (connection names, comma-separated when a task reads
        a dataset type and its components), ``prerequisite``, ``init``, ``components``. Without
        ``include_automatic`` the ``_config``/``_metadata``/``_log`` and ``packages`` nodes are left out.
        """
        graph = nx.DiGraph()
        for label, task in self._tasks.items():
            graph.add_node(
                f"task:{label}",
                kind="task",
                label=label,
                task_class=task.task_class_name,
                dimensions=task.dimensions.required,
            )
        skip: set[str] = set()
        if not include_automatic:
            skip.add(PACKAGES_DATASET_TYPE)
            for label in self._tasks:
                skip.update((f"{label}_config", f"{label}_metadata", f"{label}_log"))
        for name, node in self._dataset_types.items():
            if name in skip:
                continue
            graph.add_node(
                f"dataset_type:{name}",
                kind="dataset_type",
                label=name,
                storage_class=node.storage_class or "",
                dimensions=node.dimensions.required,
                is_calibration=node.is_calibration,
                is_init=node.is_init,
                is_prerequisite=node.is_prerequisite,
            )
        for source, target, data in self._graph.edges(data=True):
            edges: list[TaskEdge] = data["edges"]
            source_name = f"{source[0]}:{source[1]}"
            target_name = f"{target[0]}:{target[1]}"
            if source_name not in graph or target_name not in graph:
                continue
            graph.add_edge(
                source_name,
                target_name,
                connection=", ".join(edge.connection_name for edge in edges),
                prerequisite=all(edge.kind == "prerequisite_input" for edge in edges),
                init=all(edge.is_init for edge in edges),
                components=tuple(edge.component for edge in edges if edge.component),
            )
        return graph

    def iter_edges(self) -> Iterator[TaskEdge]:
        """Every task edge, tasks in topological order."""
        for node in self._tasks.values():
            yield from node.edges
