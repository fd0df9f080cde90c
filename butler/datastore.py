"""The datastore interface: where datasets' artifacts live, and the records that locate them."""

from __future__ import annotations

import uuid
from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from .datasets import DatasetRef
from .errors import ButlerError
from .storage_classes import StorageClass

if TYPE_CHECKING:
    from lsst.resources import ResourcePath  # imported when used: batch jobs on local files never need it

__all__ = [
    "DatasetChecksumError",
    "DatasetFileMissingError",
    "Datastore",
    "DatastoreError",
    "DatastoreRecord",
    "DatastoreRecordStore",
    "InMemoryRecordStore",
]


class DatastoreError(ButlerError):
    """A datastore cannot store, find or read an artifact."""


class DatasetFileMissingError(DatastoreError, FileNotFoundError):
    """A dataset is registered but its file is gone (DMS-MWBT-REQ-0054)."""


class DatasetChecksumError(DatastoreError):
    """A file's checksum differs from the one recorded when it was written."""


@dataclass(frozen=True, slots=True)
class DatastoreRecord:
    """Where one dataset (or one component of a disassembled composite) is stored."""

    dataset_id: uuid.UUID
    """The dataset's UUID."""
    datastore_name: str
    """Which datastore owns the artifact."""
    component: str
    """Component name for a disassembled composite, empty for the whole dataset."""
    path: str
    """Location relative to the datastore root, or an absolute URI (ingest with ``direct``)."""
    formatter: str
    """Import path of the formatter that wrote it (so later config changes never break reading)."""
    storage_class: str
    """Storage class the artifact was written as."""
    checksum: str | None = None
    """``blake2b:<hex>`` of the file when checksums are on."""
    file_size: int | None = None
    """Size in bytes."""

    def to_row(self) -> dict[str, Any]:
        """The registry row."""
        return {name: getattr(self, name) for name in self.__slots__}

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> DatastoreRecord:
        """Inverse of `to_row` (extra columns are ignored)."""
        return cls(**{name: row[name] for name in cls.__slots__})


class DatastoreRecordStore(Protocol):
    """Where datastore records are kept: the registry for a full Butler, memory for a job's butler."""

    def insert_datastore_records(self, records: Iterable[dict[str, Any]]) -> None:
        """Store rows (see `DatastoreRecord.to_row`)."""

    def fetch_datastore_records(
        self, datastore_name: str, dataset_ids: Iterable[uuid.UUID]
    ) -> list[dict[str, Any]]:
        """Rows of ``datastore_name`` for the given datasets."""

    def delete_datastore_records(self, datastore_name: str, dataset_ids: Iterable[uuid.UUID]) -> None:
        """Forget rows of ``datastore_name`` for the given datasets."""


class InMemoryRecordStore:
    """A `DatastoreRecordStore` held in a dict (for graph-backed butlers and tests)."""

    def __init__(self, records: Iterable[DatastoreRecord] = ()) -> None:
        self._rows: dict[tuple[str, uuid.UUID], list[dict[str, Any]]] = {}
        self.insert_datastore_records(r.to_row() for r in records)

    def insert_datastore_records(self, records: Iterable[dict[str, Any]]) -> None:
        """Store rows."""
        for row in records:
            self._rows.setdefault((row["datastore_name"], row["dataset_id"]), []).append(dict(row))

    def fetch_datastore_records(
        self, datastore_name: str, dataset_ids: Iterable[uuid.UUID]
    ) -> list[dict[str, Any]]:
        """Rows for the given datasets."""
        return [row for i in dataset_ids for row in self._rows.get((datastore_name, i), [])]

    def delete_datastore_records(self, datastore_name: str, dataset_ids: Iterable[uuid.UUID]) -> None:
        """Forget rows for the given datasets."""
        for dataset_id in dataset_ids:
            self._rows.pop((datastore_name, dataset_id), None)

    def all_records(self) -> list[DatastoreRecord]:
        """Every record held."""
        return [DatastoreRecord.from_row(row) for rows in self._rows.values() for row in rows]


class Datastore(ABC):
    """Stores and retrieves datasets' artifacts; knows nothing of collections or queries.

    `put` returns the records of what it wrote without storing them, so the caller can store them
    in the same transaction as the dataset rows (and remove the artifacts if that fails).
    """

    name: str
    """Unique name, stored in every record this datastore writes."""

    @property
    def names(self) -> tuple[str, ...]:
        """Every name this datastore writes into records: its own (a chain's: its members')."""
        return (self.name,)

    @abstractmethod
    def accepts(self, ref: DatasetRef, storage_class: StorageClass) -> bool:
        """Whether this datastore is configured to store datasets like ``ref``."""

    @abstractmethod
    def put(self, obj: Any, ref: DatasetRef, storage_class: StorageClass) -> list[DatastoreRecord]:
        """Write ``obj`` for ``ref``; all or nothing. Refuses to overwrite an existing artifact."""

    @abstractmethod
    def get(
        self,
        ref: DatasetRef,
        records: Sequence[DatastoreRecord],
        storage_class: StorageClass,
        component: str | None = None,
        parameters: Mapping[str, Any] | None = None,
    ) -> Any:
        """Read a dataset (or a component) as ``storage_class``'s type from its records."""

    @abstractmethod
    def artifacts_exist(self, records: Sequence[DatastoreRecord]) -> bool:
        """Whether every artifact the records name exists."""

    @abstractmethod
    def uris(self, records: Sequence[DatastoreRecord]) -> dict[str, ResourcePath]:
        """Component ("" for the whole dataset) -> URI of its artifact."""

    @abstractmethod
    def remove_artifacts(self, records: Sequence[DatastoreRecord]) -> None:
        """Delete the artifacts the records name (missing ones are ignored)."""
