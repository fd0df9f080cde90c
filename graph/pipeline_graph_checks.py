"""Consistency checks of a pipeline graph: each task's connections, each dataset type's writer and readers, steps, registry.

`PipelineGraph` builds its nodes with `make_task_node` and `make_dataset_type_node`, which check
as they go; each problem raises a named `GraphError` subclass whose message names the
connections involved.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping, Sequence

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
    PipelineFileError,
    StorageClassMismatchError,
)
from .pipeline_graph_nodes import (
    PACKAGES_DATASET_TYPE,
    DatasetTypeNode,
    EdgeKind,
    TaskEdge,
    TaskNode,
    can_convert,
)
from .pipeline_parts import Step
from .task import PipelineTask

__all__ = [
    "check_read",
    "check_single_producer",
    "check_steps",
    "did_you_mean",
    "make_dataset_type_node",
    "make_task_node",
    "registry_conflicts",
]

_KIND_OF: Sequence[tuple[type[BaseConnection], EdgeKind]] = (
    # Order matters: PrerequisiteInput is an Input subclass.
    (PrerequisiteInput, "prerequisite_input"),
    (Input, "input"),
    (Output, "output"),
    (InitInput, "init_input"),
    (InitOutput, "init_output"),
)


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


def did_you_mean(name: str, candidates: Iterable[str]) -> str:
    """``; did you mean 'a' or 'b'?`` naming up to three candidates close to ``name``, else an empty string."""
    close = difflib.get_close_matches(name, list(candidates), n=3)
    return f"; did you mean {' or '.join(map(repr, close))}?" if close else ""


# -- tasks -----------------------------------------------------------------------------------------


def make_task_node(
    label: str,
    task_class: type[PipelineTask],
    task_class_name: str,
    config: PipelineTaskConfig,
    universe: DimensionUniverse,
    storage_classes: StorageClassRegistry,
) -> TaskNode:
    """Connections and edges of one task, with the per-connection dimension and storage class checks.

    Besides the declared connections, every task gets ``_config`` (init output), ``_metadata`` and
    ``_log`` (outputs) edges.

    Raises
    ------
    ConnectionDefinitionError
        If the config has no connections class or constructing the connections fails.
    StorageClassMismatchError
        For a connection with an unknown storage class.
    DimensionMismatchError
        For unknown dimensions, an output outside the task's dimensions, or a single (not
        ``multiple``) input outside them.
    """
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
                f"{did_you_mean(connection.storage_class, storage_classes.names())}; known: "
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


def check_single_producer(edge: TaskEdge, producers: Iterable[TaskEdge]) -> None:
    """Refuse output ``edge`` if it writes a component, or a dataset type ``producers`` already write.

    Raises
    ------
    ConnectionDefinitionError
        If ``edge`` writes a component rather than the parent dataset type.
    DuplicateProducerError
        If ``producers`` (edges of the tasks already writing the dataset type) is not empty.
    """
    if edge.component is not None:
        raise ConnectionDefinitionError(
            f"Output {edge.qualified_name} writes component {edge.full_name!r}; write the parent dataset type."
        )
    for other in producers:
        if other.task_label == edge.task_label:
            raise DuplicateProducerError(
                f"Task {edge.task_label!r} writes dataset type {edge.dataset_type_name!r} twice, as "
                f"connections {other.connection_name!r} and {edge.connection_name!r}."
            )
        raise DuplicateProducerError(
            f"Dataset type {edge.dataset_type_name!r} is produced by two tasks: {other.qualified_name} and "
            f"{edge.qualified_name}; rename one output in its config's connections section."
        )


# -- dataset types ---------------------------------------------------------------------------------


def make_dataset_type_node(
    name: str,
    producer_edges: Sequence[TaskEdge],
    reader_edges: Sequence[TaskEdge],
    universe: DimensionUniverse,
    storage_classes: StorageClassRegistry,
) -> DatasetTypeNode:
    """The node of dataset type ``name``, checking that the edges writing and reading it agree.

    ``producer_edges`` holds the edge of the task writing it (if any), ``reader_edges`` those of
    the tasks reading it. `PACKAGES_DATASET_TYPE` without edges is the framework's own node.

    Raises
    ------
    DuplicateProducerError
        If a task writes `PACKAGES_DATASET_TYPE`.
    DatasetTypeConflictError
        If the edges mix init and per-quantum use, prerequisite and regular inputs, calibration and
        non-calibration, or a prerequisite input is produced in the pipeline.
    DimensionMismatchError
        If the edges declare different dimensions.
    StorageClassMismatchError
        If a reader cannot read the storage class the dataset type is stored as.
    """
    if name == PACKAGES_DATASET_TYPE and not producer_edges and not reader_edges:
        return DatasetTypeNode(name, "Packages", universe.empty, False, True, False, None, ())
    producer = producer_edges[0] if producer_edges else None
    edges: list[TaskEdge] = [*producer_edges, *reader_edges]
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
    dimensions = _group(universe, first.dimensions, f"connection {first.qualified_name}")
    for edge in edges[1:]:
        other = _group(universe, edge.dimensions, f"connection {edge.qualified_name}")
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
    storage_class = _dataset_storage_class(producer, reader_edges, storage_classes)
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


def _dataset_storage_class(
    producer: TaskEdge | None, readers: Sequence[TaskEdge], storage_classes: StorageClassRegistry
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
        check_read(
            edge, storage_class, storage_classes, "produced by" if producer else "read by", source_edge
        )
    return storage_class


def check_read(
    edge: TaskEdge,
    storage_class: str | None,
    storage_classes: StorageClassRegistry,
    relation: str = "stored as",
    source: TaskEdge | None = None,
) -> None:
    """Check ``edge`` can read a dataset stored as ``storage_class`` (its component, if it reads one).

    ``relation`` and ``source`` say where the storage class comes from in the message (``produced
    by label.connection``). Nothing is checked when ``storage_class`` is None (only components are
    read; the registry decides).

    Raises
    ------
    StorageClassMismatchError
        If the component does not exist or the storage class cannot be converted to the edge's.
    """
    if storage_class is None:
        return  # only components are read; the registry decides (resolve)
    stored = storage_class
    if edge.component is not None:
        component_class = storage_classes.component_storage_class(storage_class, edge.component)
        if component_class is None:
            components = (
                list(storage_classes[storage_class].components) if storage_class in storage_classes else []
            )
            raise StorageClassMismatchError(
                f"Connection {edge.qualified_name} reads component {edge.full_name!r}, but storage class "
                f"{storage_class!r} of {edge.dataset_type_name!r} has no component {edge.component!r}"
                f" (components: {', '.join(components) or 'none'}){did_you_mean(edge.component, components)}."
            )
        stored = component_class
    if not can_convert(stored, edge.storage_class, storage_classes):
        origin = f" ({relation} {source.qualified_name})" if source is not None else ""
        raise StorageClassMismatchError(
            f"Connection {edge.qualified_name} reads {edge.full_name!r} as storage class "
            f"{edge.storage_class!r}, but it is stored as {stored!r}{origin} and cannot be converted."
        )


# -- steps and registry ----------------------------------------------------------------------------


def check_steps(
    steps: Sequence[tuple[Step, Sequence[str]]],
    tasks: Iterable[TaskNode],
    dataset_types: Mapping[str, DatasetTypeNode],
    universe: DimensionUniverse,
) -> None:
    """Check each step shards over known dimensions and no task reads what a later step writes.

    Raises
    ------
    DimensionMismatchError
        For an unknown sharding dimension.
    PipelineFileError
        If a task reads a dataset type produced in a later step.
    """
    step_of: dict[str, int] = {}
    for index, (step, labels) in enumerate(steps):
        for dimension in step.dimensions:
            if dimension not in universe:
                raise DimensionMismatchError(
                    f"Step {step.label!r} is sharded over unknown dimension {dimension!r}"
                    f"{did_you_mean(dimension, universe.dimension_names)}."
                )
        for label in labels:
            step_of[label] = index
    if not steps:
        return
    for node in tasks:
        for edge in node.edges:
            if not edge.is_read:
                continue
            producer = dataset_types[edge.dataset_type_name].producer
            if producer is not None and step_of.get(producer, -1) > step_of.get(node.label, -1):
                raise PipelineFileError(
                    f"Step {steps[step_of[node.label]][0].label!r}: task {node.label!r} reads "
                    f"{edge.dataset_type_name!r}, which {producer!r} writes in the later step "
                    f"{steps[step_of[producer]][0].label!r}; reorder the steps."
                )


def registry_conflicts(
    node: DatasetTypeNode,
    registered: DatasetType,
    produced: Iterable[TaskEdge],
    read: Iterable[TaskEdge],
    storage_classes: StorageClassRegistry,
) -> list[str]:
    """How the pipeline's ``node`` disagrees with the ``registered`` dataset type, one line per problem.

    ``produced`` and ``read`` are the edges writing and reading the dataset type; they must be able
    to store and read the registered storage class. Empty when they agree.
    """
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
    for edge in produced:
        if not can_convert(edge.storage_class, stored, storage_classes):
            problems.append(
                f"{node.name}: {edge.qualified_name} writes storage class {edge.storage_class!r}, which cannot "
                f"be stored as the registered {stored!r}"
            )
    for edge in read:
        try:
            check_read(edge, stored, storage_classes, "registered as")
        except StorageClassMismatchError as err:
            problems.append(f"{node.name}: {err}")
    return problems
