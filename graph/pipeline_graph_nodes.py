"""Nodes and edges of a `PipelineGraph`: configured tasks, dataset types and the connections between them.

`pipeline_graph_checks` builds them from a task's connections, checking each; `PipelineGraph`
connects them; the quantum-graph builder reads them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from butler.datasets import DatasetType
from butler.dimensions import DimensionGroup
from butler.storage_classes import StorageClassRegistry

from .config import PipelineTaskConfig
from .connections import PipelineTaskConnections
from .errors import UnresolvedDatasetTypeError
from .task import PipelineTask

__all__ = [
    "PACKAGES_DATASET_TYPE",
    "DatasetTypeNode",
    "EdgeKind",
    "TaskEdge",
    "TaskNode",
    "can_convert",
]

PACKAGES_DATASET_TYPE = "packages"
"""The pipeline-wide init output recording software versions (storage class "Packages")."""

EdgeKind = Literal["input", "prerequisite_input", "output", "init_input", "init_output"]
"""How a task uses a dataset type."""


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
