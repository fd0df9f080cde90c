"""The framework side of "no I/O in tasks": reads a quantum's inputs and writes its outputs through a butler."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from typing import Any, Protocol

from butler.datasets import DatasetRef

from .connections import BaseConnection, Input, PipelineTaskConnections
from .errors import NoWorkFound, TaskExecutionError

__all__ = ["DeferredDatasetHandle", "LimitedButler", "QuantumContext"]


class LimitedButler(Protocol):
    """What quantum execution needs of a butler: read and write by ref (`Butler` and `QuantumBackedButler` both do)."""

    def get(
        self,
        ref: DatasetRef,
        *,
        parameters: Mapping[str, Any] | None = None,
        storage_class: str | None = None,
    ) -> Any: ...

    def put(self, obj: Any, ref: DatasetRef) -> DatasetRef: ...

    def exists(self, ref: DatasetRef) -> bool: ...


class DeferredDatasetHandle:
    """A dataset a task reads when (and as much as) it wants: ``handle.get(parameters=..., component=...)``."""

    def __init__(
        self,
        butler: LimitedButler,
        ref: DatasetRef,
        storage_class: str | None,
        on_read: Callable[[DatasetRef], None] | None = None,
    ) -> None:
        self.butler = butler
        self.ref = ref
        self.storage_class = storage_class
        self._on_read = on_read

    @property
    def data_id(self) -> Any:
        """The dataset's data ID."""
        return self.ref.data_id

    def get(
        self,
        *,
        component: str | None = None,
        parameters: Mapping[str, Any] | None = None,
        storage_class: str | None = None,
    ) -> Any:
        """Read the dataset, one component of it, or part of it (``parameters``)."""
        ref = self.ref
        if self._on_read is not None:
            self._on_read(ref)
        if component is not None:
            parent = ref.dataset_type
            # The component's storage class is looked up by the butler; only the name matters here.
            ref = DatasetRef(
                parent.make_component(component, parent.storage_class_name), ref.data_id, ref.run, ref.id
            )
            return self.butler.get(ref, parameters=parameters, storage_class=storage_class)
        return self.butler.get(ref, parameters=parameters, storage_class=storage_class or self.storage_class)

    def __repr__(self) -> str:
        return f"DeferredDatasetHandle({self.ref!r})"


class QuantumContext:
    """Reads inputs and writes outputs of one quantum for `PipelineTask.run_quantum`, tracking what was written."""

    def __init__(self, butler: LimitedButler) -> None:
        self.butler = butler
        self.written: list[DatasetRef] = []
        self.read: dict[uuid.UUID, DatasetRef] = {}
        """Inputs actually read (deferred handles count when their ``get`` is called)."""

    def get(self, ref: DatasetRef, connection: BaseConnection | None = None) -> Any:
        """Read one dataset, converted to the connection's storage class if it names another one."""
        self._record_read(ref)
        return self.butler.get(ref, storage_class=_storage_class_override(ref, connection))

    def _record_read(self, ref: DatasetRef) -> None:
        self.read[ref.id] = ref

    def put(self, obj: Any, ref: DatasetRef) -> None:
        """Write one predicted output."""
        self.written.append(self.butler.put(obj, ref))

    def get_inputs(
        self, connections: PipelineTaskConnections, refs: Mapping[str, list[DatasetRef]]
    ) -> dict[str, Any]:
        """Objects (or deferred handles) for every active input connection, by connection name.

        A connection with fewer datasets than its ``minimum`` raises `NoWorkFound`.
        """
        values: dict[str, Any] = {}
        for attr in sorted(connections.inputs | connections.prerequisite_inputs):
            connection = connections.connection(attr)
            group = sorted(refs.get(attr, []), key=_data_id_order)
            minimum = connection.minimum if isinstance(connection, Input) else 1
            if len(group) < minimum:
                raise NoWorkFound(
                    f"Connection {attr!r} ({connection.name}) has {len(group)} dataset(s); at least {minimum} needed."
                )
            loaded = [self._load(ref, connection) for ref in group]
            values[attr] = loaded if connection.multiple else (loaded[0] if loaded else None)
        return values

    def _load(self, ref: DatasetRef, connection: BaseConnection) -> Any:
        if isinstance(connection, Input) and connection.defer_load:
            return DeferredDatasetHandle(
                self.butler, ref, _storage_class_override(ref, connection), self._record_read
            )
        return self.get(ref, connection)

    def put_outputs(
        self,
        connections: PipelineTaskConnections,
        result: Any,
        refs: Mapping[str, list[DatasetRef]],
    ) -> None:
        """Write every active output found in ``result`` (a Struct or mapping) to its predicted ref(s).

        A value of None means "not produced"; a declared output missing from ``result`` is an error.
        A ``multiple`` output is a list in the order of its (data-ID-sorted) refs, or a mapping from
        data ID to object.
        """
        values = result.as_dict() if hasattr(result, "as_dict") else dict(result)
        for attr in sorted(connections.outputs):
            if attr not in values:
                raise TaskExecutionError(
                    f"run() did not return output {attr!r}; it returned {sorted(values)} "
                    "(return None for an output that was not produced)."
                )
            value = values[attr]
            if value is None:
                continue
            group = sorted(refs.get(attr, []), key=_data_id_order)
            for obj, ref in _pair_outputs(attr, connections.connection(attr), value, group):
                self.put(obj, ref)


def _pair_outputs(
    attr: str, connection: BaseConnection, value: Any, refs: list[DatasetRef]
) -> list[tuple[Any, DatasetRef]]:
    if not connection.multiple:
        if len(refs) != 1:
            raise TaskExecutionError(f"Output {attr!r} expects one ref in the quantum, found {len(refs)}.")
        return [(value, refs[0])]
    if isinstance(value, Mapping):
        by_id = {ref.data_id: ref for ref in refs}
        unknown = [key for key in value if key not in by_id]
        if unknown:
            raise TaskExecutionError(
                f"Output {attr!r} got objects for data IDs not in the quantum: {unknown}."
            )
        return [(obj, by_id[key]) for key, obj in value.items()]
    objects = list(value)
    if len(objects) != len(refs):
        raise TaskExecutionError(
            f"Output {attr!r} returned {len(objects)} objects for {len(refs)} predicted datasets."
        )
    return list(zip(objects, refs, strict=True))


def _data_id_order(ref: DatasetRef) -> tuple[Any, ...]:
    return ref.data_id.required_values


def _storage_class_override(ref: DatasetRef, connection: BaseConnection | None) -> str | None:
    if connection is None or ref.dataset_type.component is not None:
        return None
    return (
        None if connection.storage_class == ref.dataset_type.storage_class_name else connection.storage_class
    )
