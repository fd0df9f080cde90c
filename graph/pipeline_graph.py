"""The pipeline graph: tasks and dataset types of a `Pipeline`, configured, connected and checked.

`PipelineGraph.from_pipeline` imports every task class, applies the config overrides, checks the
contracts, freezes the configs and builds a bipartite graph (a `networkx.DiGraph` held inside):
dataset type -> task for inputs, task -> dataset type for outputs. Each task also writes
``<label>_config`` (init output), ``<label>_metadata`` and ``<label>_log``; the pipeline as a whole
writes ``packages``. Construction refuses two producers of a dataset type, cycles, produced
prerequisites, incompatible storage classes and inconsistent dimensions, each with a named error.
`PipelineGraph.resolve` turns dataset type nodes into butler `DatasetType` objects, checked against
a registry when one is given. The quantum-graph builder starts from here.
"""

from __future__ import annotations

import difflib
import heapq
import logging
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import TYPE_CHECKING, Literal

import networkx as nx

from butler.datasets import DatasetType
from butler.dimensions import DimensionGroup, DimensionUniverse
from butler.errors import DimensionNameError
from butler.storage_classes import StorageClassRegistry

from .config import PipelineTaskConfig
from .connections import (
    BaseConnection,
    DimensionedConnection,
    InitInput,
    InitOutput,
    Input,
    Output,
    PipelineTaskConnections,
    PrerequisiteInput,
)
from .errors import (
    ConnectionDefinitionError,
    DatasetTypeConflictError,
    DimensionMismatchError,
    DuplicateProducerError,
    GraphError,
    PipelineCycleError,
    PipelineFileError,
    StorageClassMismatchError,
    SubsetError,
    UnresolvedDatasetTypeError,
)
from .pipeline import Pipeline
from .pipeline_file import Step
from .task import PipelineTask

if TYPE_CHECKING:
    from butler.registry import Registry  # only annotations: importing the registry pulls in SQLAlchemy

__all__ = [
    "PACKAGES_DATASET_TYPE",
    "DatasetTypeNode",
    "EdgeKind",
    "PipelineGraph",
    "TaskEdge",
    "TaskNode",
    "can_convert",
]

_LOG = logging.getLogger(__name__)

PACKAGES_DATASET_TYPE = "packages"
"""The pipeline-wide init output recording software versions (storage class "Packages")."""

EdgeKind = Literal["input", "prerequisite_input", "output", "init_input", "init_output"]
"""How a task uses a dataset type."""

_KIND_OF: Sequence[tuple[type[BaseConnection], EdgeKind]] = (
    # Order matters: PrerequisiteInput is an Input subclass.
    (PrerequisiteInput, "prerequisite_input"),
    (Input, "input"),
    (Output, "output"),
    (InitInput, "init_input"),
    (InitOutput, "init_output"),
)


def can_convert(source: str, target: str, storage_classes: StorageClassRegistry) -> bool:
    """Whether a dataset stored as storage class ``source`` can be read as (or written from) ``target``.

    True for the same storage class, two storage classes of the same Python type, or when
    ``target`` declares a converter from ``source``'s Python type.
    """
    if source == target:
        return True
    if source not in storage_classes or target not in storage_classes:
        return False
    source_class, target_class = storage_classes[source], storage_classes[target]
    return (
        source_class.pytype_name == target_class.pytype_name
        or source_class.pytype_name in target_class.converters
    )


@dataclass(frozen=True)
class TaskEdge:
    """One connection of a task to a dataset type (automatic ones: ``_config``, ``_metadata``, ``_log``)."""

    task_label: str
    """Label of the task."""
    connection_name: str
    """Attribute name of the connection in the task's connections class."""
    dataset_type_name: str
    """Name of the (parent) dataset type node."""
    component: str | None
    """Component read (``calexp.wcs`` -> ``wcs``), or None."""
    kind: EdgeKind
    """How the task uses the dataset type."""
    storage_class: str
    """Storage class the task gets or puts."""
    dimensions: tuple[str, ...]
    """Dimensions the connection declares (empty for init datasets)."""
    is_calibration: bool = False
    """The connection declares a calibration dataset type."""
    multiple: bool = False
    """The task takes (or writes) a list of datasets per quantum."""

    @property
    def full_name(self) -> str:
        """Dataset type name including the component (``calexp.wcs``)."""
        return f"{self.dataset_type_name}.{self.component}" if self.component else self.dataset_type_name

    @property
    def qualified_name(self) -> str:
        """``label.connection`` for messages."""
        return f"{self.task_label}.{self.connection_name}"

    @property
    def is_init(self) -> bool:
        """Whether this is an init-input or init-output."""
        return self.kind in ("init_input", "init_output")

    @property
    def is_read(self) -> bool:
        """Whether the task reads the dataset type (input, prerequisite or init-input)."""
        return self.kind in ("input", "prerequisite_input", "init_input")


@dataclass(frozen=True, eq=False)
class TaskNode:
    """A configured task in the graph."""

    label: str
    """Label of the task in the pipeline."""
    task_class: type[PipelineTask]
    """The PipelineTask subclass."""
    task_class_name: str
    """Import path of the task class."""
    config: PipelineTaskConfig
    """The task's frozen config (defaults, then the pipeline's and command line's overrides)."""
    connections: PipelineTaskConnections
    """Connections resolved for ``config``."""
    dimensions: DimensionGroup
    """Dimensions of the task's quanta (with everything they require or imply)."""
    edges: tuple[TaskEdge, ...]
    """Every connection of the task, automatic ones included."""

    def edges_of(self, *kinds: EdgeKind) -> tuple[TaskEdge, ...]:
        """The edges of the given kinds, in declaration order."""
        return tuple(edge for edge in self.edges if edge.kind in kinds)

    @property
    def inputs(self) -> tuple[TaskEdge, ...]:
        """Regular (per-quantum) inputs."""
        return self.edges_of("input")

    @property
    def prerequisite_inputs(self) -> tuple[TaskEdge, ...]:
        """Prerequisite inputs (looked up in the input collections)."""
        return self.edges_of("prerequisite_input")

    @property
    def outputs(self) -> tuple[TaskEdge, ...]:
        """Per-quantum outputs, ``<label>_metadata`` and ``<label>_log`` included."""
        return self.edges_of("output")

    @property
    def init_inputs(self) -> tuple[TaskEdge, ...]:
        """Init-inputs."""
        return self.edges_of("init_input")

    @property
    def init_outputs(self) -> tuple[TaskEdge, ...]:
        """Init-outputs, ``<label>_config`` included."""
        return self.edges_of("init_output")

    def __repr__(self) -> str:
        return f"TaskNode({self.label!r}, {self.task_class_name}, dimensions={self.dimensions})"


@dataclass(frozen=True)
class DatasetTypeNode:
    """A dataset type in the graph, as the pipeline's connections define it."""

    name: str
    """Name of the (parent) dataset type."""
    storage_class: str | None
    """Storage class (the producer's; else the first whole-dataset consumer's; None if only components are read)."""
    dimensions: DimensionGroup
    """Dimensions."""
    is_calibration: bool
    """Whether it is a calibration (found in CALIBRATION collections by validity range)."""
    is_init: bool
    """Whether it is an init-input/output (no dimensions, one per run)."""
    is_prerequisite: bool
    """Whether every task reading it reads it as a prerequisite input."""
    producer: str | None
    """Label of the task writing it (None for overall inputs and ``packages``)."""
    consumers: tuple[str, ...]
    """Labels of the tasks reading it (whole or a component)."""

    def to_dataset_type(self) -> DatasetType:
        """The butler dataset type; `UnresolvedDatasetTypeError` if the storage class is unknown."""
        if self.storage_class is None:
            raise UnresolvedDatasetTypeError(
                f"Dataset type {self.name!r} is only read as components by {list(self.consumers)}; its storage "
                "class comes from the registry (resolve with a registry)."
            )
        return DatasetType(self.name, self.dimensions, self.storage_class, is_calibration=self.is_calibration)


def _task_key(label: str) -> tuple[str, str]:
    return ("task", label)


def _dataset_key(name: str) -> tuple[str, str]:
    return ("dataset_type", name)


def _edge_kind(connection: BaseConnection) -> EdgeKind:
    for cls, kind in _KIND_OF:
        if isinstance(connection, cls):
            return kind
    raise ConnectionDefinitionError(f"{type(connection).__name__} is not a connection type.")


def _group(universe: DimensionUniverse, names: Iterable[str], where: str) -> DimensionGroup:
    try:
        return universe.group(names)
    except DimensionNameError as err:
        raise DimensionMismatchError(f"{where}: {err.args[0] if err.args else err}") from None


def _text(group: DimensionGroup) -> str:
    """A dimension group as written in connections: its required dimensions."""
    return "(" + ", ".join(group.required) + ")"


def _suggest(name: str, candidates: Iterable[str]) -> str:
    close = difflib.get_close_matches(name, list(candidates), n=3)
    return f"; did you mean {' or '.join(map(repr, close))}?" if close else ""


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
                    self._check_single_producer(edge)
                    self._graph.add_edge(_task_key(node.label), key, edges=[edge])
        order = self._topological_order()
        self._tasks: dict[str, TaskNode] = {}
        self._dataset_types: dict[str, DatasetTypeNode] = {}
        for key in order:
            if key[0] == "task":
                self._tasks[key[1]] = self._graph.nodes[key]["node"]
        for key in order:
            if key[0] == "dataset_type":
                dataset_node = self._make_dataset_type_node(key[1])
                self._graph.nodes[key]["node"] = dataset_node
                self._dataset_types[key[1]] = dataset_node
        self._steps = tuple(steps)
        self._check_steps()

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
                _make_task_node(
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

    def _check_single_producer(self, edge: TaskEdge) -> None:
        if edge.component is not None:
            raise ConnectionDefinitionError(
                f"Output {edge.qualified_name} writes component {edge.full_name!r}; write the parent dataset type."
            )
        key = _dataset_key(edge.dataset_type_name)
        for producer_key in self._graph.predecessors(key):
            other: TaskEdge = self._graph.edges[producer_key, key]["edges"][0]
            if other.task_label == edge.task_label:
                raise DuplicateProducerError(
                    f"Task {edge.task_label!r} writes dataset type {edge.dataset_type_name!r} twice, as "
                    f"connections {other.connection_name!r} and {edge.connection_name!r}."
                )
            raise DuplicateProducerError(
                f"Dataset type {edge.dataset_type_name!r} is produced by two tasks: {other.qualified_name} and "
                f"{edge.qualified_name}; rename one output in its config's connections section."
            )

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

    def _make_dataset_type_node(self, name: str) -> DatasetTypeNode:
        key = _dataset_key(name)
        if name == PACKAGES_DATASET_TYPE and self._graph.degree(key) == 0:
            return DatasetTypeNode(name, "Packages", self._universe.empty, False, True, False, None, ())
        producer_edges, reader_edges = self._edges_at(key)
        producer = producer_edges[0] if producer_edges else None
        edges: list[TaskEdge] = producer_edges + reader_edges
        if name == PACKAGES_DATASET_TYPE and producer is not None:
            raise DuplicateProducerError(
                f"Dataset type {name!r} is written by the framework, not by a task; rename output "
                f"{producer.qualified_name}."
            )
        # Init or per-quantum, consistently.
        init_edges = [edge for edge in edges if edge.is_init]
        if init_edges and len(init_edges) != len(edges):
            regular = next(edge for edge in edges if not edge.is_init)
            raise DatasetTypeConflictError(
                f"Dataset type {name!r} is an init dataset for {init_edges[0].qualified_name} but a "
                f"per-quantum dataset for {regular.qualified_name}."
            )
        # Prerequisite or regular, consistently, and never produced in the pipeline.
        prerequisites = [edge for edge in reader_edges if edge.kind == "prerequisite_input"]
        if prerequisites and producer is not None:
            raise DatasetTypeConflictError(
                f"Dataset type {name!r} is a prerequisite input of {prerequisites[0].qualified_name} but is "
                f"produced by {producer.qualified_name}; prerequisites must come from the input collections "
                "(make it a regular Input)."
            )
        regular_reads = [edge for edge in reader_edges if edge.kind == "input"]
        if prerequisites and regular_reads:
            raise DatasetTypeConflictError(
                f"Dataset type {name!r} is a prerequisite input of {prerequisites[0].qualified_name} but a "
                f"regular input of {regular_reads[0].qualified_name}; use the same kind of connection."
            )
        # Dimensions agree (components have their parent's dimensions).
        first = edges[0]
        dimensions = _group(self._universe, first.dimensions, f"connection {first.qualified_name}")
        for edge in edges[1:]:
            other = _group(self._universe, edge.dimensions, f"connection {edge.qualified_name}")
            if other != dimensions:
                raise DimensionMismatchError(
                    f"Dataset type {name!r} has dimensions {_text(dimensions)} in connection {first.qualified_name} "
                    f"but {_text(other)} in connection {edge.qualified_name}."
                )
        calibration_edges = [edge for edge in edges if edge.is_calibration]
        if calibration_edges and len(calibration_edges) != len(edges):
            plain = next(edge for edge in edges if not edge.is_calibration)
            raise DatasetTypeConflictError(
                f"Dataset type {name!r} is a calibration in connection {calibration_edges[0].qualified_name} "
                f"but not in connection {plain.qualified_name}."
            )
        storage_class = self._check_storage_classes(name, producer, reader_edges)
        return DatasetTypeNode(
            name=name,
            storage_class=storage_class,
            dimensions=dimensions,
            is_calibration=bool(calibration_edges),
            is_init=bool(init_edges),
            is_prerequisite=bool(prerequisites),
            producer=producer.task_label if producer else None,
            consumers=tuple(dict.fromkeys(edge.task_label for edge in reader_edges)),
        )

    def _check_storage_classes(
        self, name: str, producer: TaskEdge | None, readers: Sequence[TaskEdge]
    ) -> str | None:
        """The node's storage class; `StorageClassMismatchError` for a reader that cannot convert."""
        if producer is not None:
            source_edge: TaskEdge | None = producer
        else:
            source_edge = next((edge for edge in readers if edge.component is None), None)
        storage_class = source_edge.storage_class if source_edge else None
        for edge in readers:
            if edge is source_edge:
                continue
            self.check_read(edge, storage_class, "produced by" if producer else "read by", source_edge)
        return storage_class

    def check_read(
        self,
        edge: TaskEdge,
        storage_class: str | None,
        relation: str = "stored as",
        source: TaskEdge | None = None,
    ) -> None:
        """Check ``edge`` can read a dataset stored as ``storage_class`` (its component, if it reads one)."""
        if storage_class is None:
            return  # only components are read; the registry decides (resolve)
        stored = storage_class
        if edge.component is not None:
            component_class = self._storage_classes.component_storage_class(storage_class, edge.component)
            if component_class is None:
                components = (
                    list(self._storage_classes[storage_class].components)
                    if storage_class in (self._storage_classes)
                    else []
                )
                raise StorageClassMismatchError(
                    f"Connection {edge.qualified_name} reads component {edge.full_name!r}, but storage class "
                    f"{storage_class!r} of {edge.dataset_type_name!r} has no component {edge.component!r}"
                    f" (components: {', '.join(components) or 'none'}){_suggest(edge.component, components)}."
                )
            stored = component_class
        if not can_convert(stored, edge.storage_class, self._storage_classes):
            origin = f" ({relation} {source.qualified_name})" if source is not None else ""
            raise StorageClassMismatchError(
                f"Connection {edge.qualified_name} reads {edge.full_name!r} as storage class "
                f"{edge.storage_class!r}, but it is stored as {stored!r}{origin} and cannot be converted."
            )

    def _check_steps(self) -> None:
        step_of: dict[str, int] = {}
        for index, (step, labels) in enumerate(self._steps):
            for dimension in step.dimensions:
                if dimension not in self._universe:
                    raise DimensionMismatchError(
                        f"Step {step.label!r} is sharded over unknown dimension {dimension!r}"
                        f"{_suggest(dimension, self._universe.dimension_names)}."
                    )
            for label in labels:
                step_of[label] = index
        if not self._steps:
            return
        for node in self._tasks.values():
            for edge in node.edges:
                if not edge.is_read:
                    continue
                producer = self._dataset_types[edge.dataset_type_name].producer
                if producer is not None and step_of.get(producer, -1) > step_of.get(node.label, -1):
                    raise PipelineFileError(
                        f"Step {self._steps[step_of[node.label]][0].label!r}: task {node.label!r} reads "
                        f"{edge.dataset_type_name!r}, which {producer!r} writes in the later step "
                        f"{self._steps[step_of[producer]][0].label!r}; reorder the steps."
                    )

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
                f"{_suggest(label, self._tasks)}"
            ) from None

    def _dataset_type(self, name: str) -> DatasetTypeNode:
        parent = name.split(".", 1)[0]
        try:
            return self._dataset_types[parent]
        except KeyError:
            raise UnresolvedDatasetTypeError(
                f"Dataset type {parent!r} is not in the pipeline{_suggest(parent, self._dataset_types)}"
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
            conflicts.extend(self._registry_conflicts(node, existing))
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

    def _registry_conflicts(self, node: DatasetTypeNode, registered: DatasetType) -> list[str]:
        problems = []
        if tuple(registered.dimensions.names) != tuple(node.dimensions.names):
            problems.append(
                f"{node.name}: dimensions {_text(registered.dimensions)} in the registry, {_text(node.dimensions)} "
                "in the pipeline"
            )
        if registered.is_calibration != node.is_calibration and not node.is_init:
            problems.append(
                f"{node.name}: is_calibration={registered.is_calibration} in the registry, "
                f"{node.is_calibration} in the pipeline"
            )
        stored = registered.storage_class_name
        produced, read = self._edges_at(_dataset_key(node.name))
        for edge in produced:
            if not can_convert(edge.storage_class, stored, self._storage_classes):
                problems.append(
                    f"{node.name}: {edge.qualified_name} writes storage class {edge.storage_class!r}, which cannot "
                    f"be stored as the registered {stored!r}"
                )
        for edge in read:
            try:
                self.check_read(edge, stored, "registered as")
            except StorageClassMismatchError as err:
                problems.append(f"{node.name}: {err}")
        return problems

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


def _make_task_node(
    label: str,
    task_class: type[PipelineTask],
    task_class_name: str,
    config: PipelineTaskConfig,
    universe: DimensionUniverse,
    storage_classes: StorageClassRegistry,
) -> TaskNode:
    """Connections and edges of one task, with the per-connection dimension and storage class checks."""
    connections_class = getattr(type(config), "connections_class", None)
    if connections_class is None or not issubclass(connections_class, PipelineTaskConnections):
        raise ConnectionDefinitionError(
            f"Task {label!r}: config class {type(config).__name__} of {task_class_name} has no connections "
            "class (declare it with PipelineTaskConfig, connections=...)."
        )
    try:
        connections = connections_class(config=config)
    except GraphError:
        raise
    except Exception as err:
        raise ConnectionDefinitionError(
            f"Task {label!r}: constructing {connections_class.__name__} raised {type(err).__name__}: {err}"
        ) from err
    dimensions = _group(universe, connections.dimensions, f"Task {label!r} ({task_class_name}) dimensions")
    edges: list[TaskEdge] = []
    for attr, connection in connections.iter_connections():
        where = f"Task {label!r} connection {attr!r}"
        kind = _edge_kind(connection)
        parent, _, component = connection.name.partition(".")
        if connection.storage_class not in storage_classes:
            raise StorageClassMismatchError(
                f"{where} ({connection.name!r}) uses unknown storage class {connection.storage_class!r}"
                f"{_suggest(connection.storage_class, storage_classes.names())}; known: "
                f"{', '.join(storage_classes.names())}."
            )
        connection_dimensions: tuple[str, ...] = ()
        is_calibration = False
        if isinstance(connection, DimensionedConnection):
            connection_dimensions = connection.dimensions
            is_calibration = connection.is_calibration
            group = _group(universe, connection_dimensions, where)
            if kind == "output" and not group.issubset(dimensions):
                raise DimensionMismatchError(
                    f"{where}: output {connection.name!r} has dimensions {_text(group)}, which are not all among "
                    f"the task's dimensions {_text(dimensions)} (with what they imply: {dimensions})."
                )
            if (
                kind in ("input", "prerequisite_input")
                and not connection.multiple
                and not group.issubset(dimensions)
            ):
                raise DimensionMismatchError(
                    f"{where}: input {connection.name!r} has dimensions {_text(group)}, not all among the task's "
                    f"dimensions {_text(dimensions)} (with what they imply: {dimensions}), so a quantum may "
                    "get many of them; declare it multiple=True."
                )
        edges.append(
            TaskEdge(
                task_label=label,
                connection_name=attr,
                dataset_type_name=parent,
                component=component or None,
                kind=kind,
                storage_class=connection.storage_class,
                dimensions=connection_dimensions,
                is_calibration=is_calibration,
                multiple=connection.multiple,
            )
        )
    task_dimensions = dimensions.required
    edges.extend(
        [
            TaskEdge(label, "_config", f"{label}_config", None, "init_output", "Config", ()),
            TaskEdge(
                label, "_metadata", f"{label}_metadata", None, "output", "TaskMetadata", task_dimensions
            ),
            TaskEdge(label, "_log", f"{label}_log", None, "output", "ButlerLogRecords", task_dimensions),
        ]
    )
    return TaskNode(label, task_class, task_class_name, config, connections, dimensions, tuple(edges))
