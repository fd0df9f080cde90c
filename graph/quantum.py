"""One unit of work: a task label, a data ID, and the refs of the datasets it reads and writes."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field

from butler.data_coordinate import DataCoordinate
from butler.datasets import DatasetRef

__all__ = ["Quantum"]


@dataclass(frozen=True)
class Quantum:
    """What one run of a task processes; refs are keyed by the task's connection attribute names.

    Output refs carry the UUIDs the datasets will be stored under (fixed when the graph is built).
    """

    task_label: str
    """Label of the task in the pipeline."""
    data_id: DataCoordinate
    """Values of the task's dimensions for this quantum."""
    inputs: Mapping[str, list[DatasetRef]]
    """Input and prerequisite-input refs by connection name."""
    outputs: Mapping[str, list[DatasetRef]]
    """Output refs by connection name."""
    metadata_output: DatasetRef | None = None
    """Where the ``<label>_metadata`` dataset goes (written only on success)."""
    log_output: DatasetRef | None = None
    """Where the ``<label>_log`` dataset goes (written on success and on failure)."""
    init_inputs: Mapping[str, DatasetRef] = field(default_factory=dict)
    """InitInput refs by connection name."""
    id: uuid.UUID = field(default_factory=uuid.uuid4)
    """Node ID in the quantum graph."""

    def all_output_refs(self) -> list[DatasetRef]:
        """Every ref this quantum may write, metadata and log included."""
        refs = [ref for group in self.outputs.values() for ref in group]
        refs.extend(ref for ref in (self.metadata_output, self.log_output) if ref is not None)
        return refs

    def all_input_refs(self) -> list[DatasetRef]:
        """Every ref this quantum may read."""
        return [ref for group in self.inputs.values() for ref in group]
