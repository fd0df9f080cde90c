"""The butler of one batch job: reads predicted inputs and writes predicted outputs with no registry connection."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .datasets import DatasetRef
from .datastore import DatastoreRecord
from .errors import ButlerError
from .file_datastore import FileDatastore
from .storage_classes import StorageClassRegistry

__all__ = ["QuantumBackedButler", "QuantumProvenance"]


@dataclass(frozen=True)
class QuantumProvenance:
    """What a job actually did with its predicted datasets (DMS-MWBT-REQ-0095)."""

    available_inputs: frozenset[uuid.UUID]
    """Predicted inputs whose files existed."""
    actual_inputs: frozenset[uuid.UUID]
    """Inputs the job read."""
    outputs: frozenset[uuid.UUID]
    """Predicted outputs the job wrote."""


class QuantumBackedButler:
    """Reads and writes through the datastore only; the refs and their records come from the quantum graph.

    ``inputs`` maps each predicted input ref to its datastore records; ``outputs`` are the refs
    (with UUIDs fixed when the graph was built) the job may write.
    """

    def __init__(
        self,
        datastore: FileDatastore,
        storage_classes: StorageClassRegistry,
        inputs: Mapping[DatasetRef, Sequence[DatastoreRecord]],
        outputs: Iterable[DatasetRef],
    ) -> None:
        self.datastore = datastore
        self.storage_classes = storage_classes
        self._records: dict[uuid.UUID, list[DatastoreRecord]] = {
            ref.id: list(recs) for ref, recs in inputs.items()
        }
        self._inputs = {ref.id: ref for ref in inputs}
        self._outputs = {ref.id: ref for ref in outputs}
        self._read: set[uuid.UUID] = set()
        self._written: set[uuid.UUID] = set()

    def get(
        self,
        ref: DatasetRef,
        *,
        component: str | None = None,
        parameters: Mapping[str, Any] | None = None,
        storage_class: str | None = None,
    ) -> Any:
        """Read a predicted input (or an output this job already wrote)."""
        known = self._inputs.get(ref.id) or (self._outputs.get(ref.id) if ref.id in self._written else None)
        if known is None:
            raise ButlerError(f"{ref} is not an input of this quantum (or an output it has written).")
        component = component or ref.dataset_type.component
        name = known.dataset_type.parent_name
        type_class = known.dataset_type.storage_class_name
        read_class = storage_class or (
            self.storage_classes.component_storage_class(type_class, component) if component else type_class
        )
        if read_class is None:
            raise ButlerError(f"Storage class {type_class} of {name} has no component {component!r}.")
        obj = self.datastore.get(
            known, self._records[ref.id], self.storage_classes[read_class], component, parameters
        )
        self._read.add(ref.id)
        return obj

    def put(self, obj: Any, ref: DatasetRef) -> DatasetRef:
        """Write a predicted output; anything else, or a second write, is refused."""
        predicted = self._outputs.get(ref.id)
        if predicted is None:
            raise ButlerError(f"{ref} is not a predicted output of this quantum.")
        if ref.id in self._written:
            raise ButlerError(f"{ref} was already written by this quantum.")
        records = self.datastore.put(
            obj, predicted, self.storage_classes[predicted.dataset_type.storage_class_name]
        )
        self._records[ref.id] = records
        self._written.add(ref.id)
        return predicted

    def exists(self, ref: DatasetRef) -> bool:
        """Whether a predicted input's (or written output's) files exist."""
        records = self._records.get(ref.id)
        return records is not None and self.datastore.artifacts_exist(records)

    def provenance(self) -> QuantumProvenance:
        """Which inputs were available and read, and which outputs were written."""
        available = frozenset(i for i in self._inputs if self.datastore.artifacts_exist(self._records[i]))
        return QuantumProvenance(available, frozenset(self._read), frozenset(self._written))

    def written_records(self) -> list[DatastoreRecord]:
        """Records of every output written so far."""
        return [record for i in sorted(self._written) for record in self._records[i]]
