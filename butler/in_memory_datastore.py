"""A datastore that keeps datasets as Python objects in this process (tests, caches, chain members)."""

from __future__ import annotations

import copy
import logging
import uuid
from collections.abc import Mapping, Sequence
from types import EllipsisType
from typing import Any
from urllib.parse import quote

import numpy as np
import pydantic
from lsst.resources import ResourcePath

from .datasets import DatasetRef
from .datastore import DatasetFileMissingError, Datastore, DatastoreError, DatastoreRecord
from .datastore_config import Constraints
from .storage_classes import StorageClass, StorageClassError, StorageClassRegistry

__all__ = ["InMemoryDatastore", "InMemoryDatastoreConfig"]

_LOG = logging.getLogger(__name__)

# What `copy.deepcopy` may raise for an object it cannot copy (through ``__reduce__`` or ``__deepcopy__``).
_COPY_ERRORS = (TypeError, ValueError, AttributeError, RecursionError, copy.Error)

_ACCEPT_ALL = Constraints()


class InMemoryDatastoreConfig(pydantic.BaseModel):
    """Configuration of an `InMemoryDatastore` (``cls: in_memory`` in a datastore mapping)."""

    model_config = pydantic.ConfigDict(extra="forbid", frozen=True)

    name: str = "InMemoryDatastore"
    """Name recorded with every dataset."""
    constraints: Constraints = Constraints()
    """Which datasets this datastore takes (matters inside a chained datastore)."""


class InMemoryDatastore(Datastore):
    """Keeps a private copy of every dataset in a dict keyed by dataset UUID; lost when the process ends.

    `put` stores a deep copy and `get` returns one, so neither the writer nor a reader can change
    what is stored. Records have path ``memory:<uuid hex>`` and no formatter. Components, read
    parameters and storage-class conversion work as in `FileDatastore`.

    Parameters
    ----------
    name
        Name recorded with every dataset.
    constraints
        Which datasets `accepts` lets in.
    storage_classes
        Storage classes by name (default: the packaged ones).
    """

    def __init__(
        self,
        name: str = "InMemoryDatastore",
        constraints: Constraints = _ACCEPT_ALL,
        storage_classes: StorageClassRegistry | None = None,
    ) -> None:
        self.name = name
        self.constraints = constraints
        self._storage_classes = storage_classes or StorageClassRegistry.default()
        self._objects: dict[uuid.UUID, tuple[str, Any]] = {}

    @classmethod
    def from_config(
        cls, config: InMemoryDatastoreConfig, storage_classes: StorageClassRegistry
    ) -> InMemoryDatastore:
        """Build from a validated configuration."""
        return cls(config.name, config.constraints, storage_classes)

    def accepts(self, ref: DatasetRef, storage_class: StorageClass) -> bool:
        """Whether the constraints let this datastore store ``ref``."""
        return self.constraints.allows(ref.dataset_type.parent_name, storage_class.name)

    def put(self, obj: Any, ref: DatasetRef, storage_class: StorageClass) -> list[DatastoreRecord]:
        """Store a copy of ``obj`` (checked against ``storage_class``); refuses a UUID already held."""
        if ref.id in self._objects:
            raise DatastoreError(
                f"Refusing to overwrite {ref} in datastore {self.name}: a dataset with this ID is already "
                "stored (remove it first)."
            )
        stored = _copy(storage_class.coerce(obj), f"store {ref} in datastore {self.name}")
        self._objects[ref.id] = (storage_class.name, stored)
        _LOG.debug("Stored %s in memory datastore %s.", ref, self.name)
        return [
            DatastoreRecord(
                dataset_id=ref.id,
                datastore_name=self.name,
                component="",
                path=f"memory:{ref.id.hex}",
                formatter="",
                storage_class=storage_class.name,
            )
        ]

    def get(
        self,
        ref: DatasetRef,
        records: Sequence[DatastoreRecord],
        storage_class: StorageClass,
        component: str | None = None,
        parameters: Mapping[str, Any] | None = None,
    ) -> Any:
        """A copy of ``ref`` (or a component) as ``storage_class``, restricted by read ``parameters``."""
        storage_class.check_parameters(parameters)
        parameters = {k: v for k, v in (parameters or {}).items() if v is not None}
        if not records:
            raise DatasetFileMissingError(f"Datastore {self.name} holds no artifact for {ref}.")
        entry = self._objects.get(ref.id)
        if entry is None:
            raise DatasetFileMissingError(
                f"The in-memory copy of {ref} is gone (datastore {self.name} does not outlive its process)."
            )
        stored_class_name, obj = entry
        if component is not None:
            stored_class = self._storage_classes[stored_class_name]
            if stored_class.delegate is None or component not in stored_class.components:
                raise StorageClassError(
                    f"Storage class {stored_class.name} of {ref.dataset_type.name} has no component "
                    f"{component!r}; it has {sorted(stored_class.components) or 'none'}."
                )
            obj = stored_class.delegate.get_component(obj, component)
        obj = storage_class.coerce(obj)
        if parameters:
            obj = storage_class.coerce(_apply_parameters(obj, storage_class, parameters, ref))
        return _copy(obj, f"read {ref} from datastore {self.name}")

    def artifacts_exist(self, records: Sequence[DatastoreRecord]) -> bool:
        """Whether every dataset the records name is held."""
        return bool(records) and all(r.dataset_id in self._objects for r in records)

    def uris(self, records: Sequence[DatastoreRecord]) -> dict[str, ResourcePath]:
        """Component ("" for the whole dataset) -> ``mem://<datastore name>/<uuid>`` (not a readable file)."""
        host = quote(self.name, safe="")
        return {r.component: ResourcePath(f"mem://{host}/{r.dataset_id}") for r in records}

    def remove_artifacts(self, records: Sequence[DatastoreRecord]) -> None:
        """Forget the datasets the records name (missing ones are ignored)."""
        for record in records:
            self._objects.pop(record.dataset_id, None)


def _copy(obj: Any, action: str) -> Any:
    """A deep copy of ``obj``; `DatastoreError` naming ``action`` if it cannot be copied."""
    try:
        return copy.deepcopy(obj)
    except _COPY_ERRORS as err:
        raise DatastoreError(
            f"Cannot {action}: {type(obj).__qualname__} objects cannot be copied ({err})."
        ) from err


def _apply_parameters(
    obj: Any, storage_class: StorageClass, parameters: Mapping[str, Any], ref: DatasetRef
) -> Any:
    """``obj`` restricted by read parameters: through the delegate, or ``slice``/``columns`` directly."""
    if storage_class.delegate is not None:
        return storage_class.delegate.apply_parameters(obj, parameters)
    rest = dict(parameters)
    key = rest.pop("slice", None)
    if key is not None and isinstance(obj, np.ndarray):
        obj = _slice_array(obj, key, ref)
    elif key is not None:
        rest["slice"] = key
    columns = rest.pop("columns", None)
    if columns is not None and _is_table(obj):
        obj = _select_columns(obj, columns, ref)
    elif columns is not None:
        rest["columns"] = columns
    if rest:
        raise StorageClassError(
            f"Cannot apply read parameters {sorted(rest)} to {ref.dataset_type.name} "
            f"({type(obj).__qualname__}): storage class {storage_class.name} has no delegate."
        )
    return obj


def _slice_array(array: np.ndarray, key: Any, ref: DatasetRef) -> np.ndarray:
    """``array[key]`` for a slice, an integer or a tuple of them (``...`` allowed), as `NpyFormatter` reads."""
    items: tuple[Any, ...] = key if isinstance(key, tuple) else (key,)
    index: list[slice | int | EllipsisType] = []
    for item in items:
        if isinstance(item, slice) or item is Ellipsis:
            index.append(item)
        elif isinstance(item, int | np.integer) and not isinstance(item, bool):
            index.append(int(item))
        else:
            raise DatastoreError(
                f"The slice parameter for {ref.dataset_type.name} must be a slice, an integer or a tuple "
                f"of them, not {key!r}."
            )
    try:
        result: np.ndarray = np.asarray(array[tuple(index)])
    except IndexError as err:
        raise DatastoreError(
            f"Cannot apply slice {key!r} to {ref.dataset_type.name} of shape {array.shape}: {err}"
        ) from err
    return result


def _is_table(obj: Any) -> bool:
    """Whether ``obj`` is a pyarrow Table or pandas DataFrame, without importing either library.

    This module is imported by every butler; pandas and pyarrow would add ~70 MiB and 0.3 s to each.
    """
    return type(obj).__module__.split(".")[0] in ("pyarrow", "pandas") and hasattr(obj, "columns")


def _select_columns(table: Any, columns: Any, ref: DatasetRef) -> Any:
    """Only ``columns`` (a name or a list of names) of a table, as `ParquetFormatter` reads them."""
    if isinstance(columns, str):
        columns = [columns]
    if not (isinstance(columns, list | tuple) and all(isinstance(c, str) for c in columns)):
        raise DatastoreError(
            f"The columns parameter for {ref.dataset_type.name} must be a list of column names, "
            f"not {columns!r}."
        )
    is_arrow = hasattr(table, "column_names")
    available = [str(c) for c in (table.column_names if is_arrow else table.columns)]
    unknown = [c for c in columns if c not in available]
    if unknown:
        raise DatastoreError(
            f"{ref.dataset_type.name} has no column(s) {unknown}; available columns are {available}."
        )
    if is_arrow:
        return table.select(list(columns))
    return table[list(columns)]
