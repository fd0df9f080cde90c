"""Dataset types and dataset references: the shared vocabulary for what a dataset is and where it lives."""

from __future__ import annotations

import enum
import json
import os
import re
import uuid
from collections.abc import Iterable
from dataclasses import dataclass

from .data_coordinate import DataCoordinate
from .dimensions import DimensionGroup, DimensionUniverse
from .errors import DatasetTypeError

__all__ = ["DatasetIdGenerationMode", "DatasetRef", "DatasetType", "dataset_id_for", "random_dataset_ids"]

_NAME_PATTERN = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")
_DATASET_NAMESPACE = uuid.UUID("840b31d9-05cd-5161-b2c8-00d32b280d0f")


class DatasetType:
    """A named kind of dataset: its dimensions, storage class, and whether it is a calibration.

    A name with a dot (``calexp.wcs``) is a component of the parent dataset type ``calexp``.
    """

    __slots__ = ("_hash", "dimensions", "is_calibration", "name", "storage_class_name")

    def __init__(
        self,
        name: str,
        dimensions: DimensionGroup | Iterable[str],
        storage_class: str,
        *,
        is_calibration: bool = False,
        universe: DimensionUniverse | None = None,
    ) -> None:
        if not isinstance(name, str) or not _NAME_PATTERN.fullmatch(name):
            raise DatasetTypeError(
                f"Invalid dataset type name {name!r}: expected letters, digits and underscores, "
                "not starting with a digit, with optional '.component' suffixes."
            )
        if not isinstance(storage_class, str) or not storage_class:
            raise DatasetTypeError(
                f"Dataset type {name!r} needs a storage class name, got {storage_class!r}."
            )
        if not isinstance(dimensions, DimensionGroup):
            dimensions = (universe or DimensionUniverse.default()).group(dimensions)
        self.name = name
        self.dimensions = dimensions
        self.storage_class_name = storage_class
        self.is_calibration = bool(is_calibration)
        self._hash = hash((name, dimensions, storage_class, self.is_calibration))

    @property
    def parent_name(self) -> str:
        """Name of the parent (composite) dataset type; the name itself if not a component."""
        return self.name.split(".", 1)[0]

    @property
    def component(self) -> str | None:
        """The component part of the name, or None for a parent dataset type."""
        parts = self.name.split(".", 1)
        return parts[1] if len(parts) == 2 else None

    def make_component(self, component: str, storage_class: str) -> DatasetType:
        """The dataset type of one component of this (parent) dataset type."""
        if self.component is not None:
            raise DatasetTypeError(f"{self.name!r} is already a component dataset type.")
        return DatasetType(
            f"{self.name}.{component}", self.dimensions, storage_class, is_calibration=self.is_calibration
        )

    def differences(self, other: DatasetType) -> list[str]:
        """Human-readable list of how ``other`` differs from this definition (empty if identical)."""
        diffs = []
        if self.dimensions != other.dimensions:
            diffs.append(f"dimensions {self.dimensions} != {other.dimensions}")
        if self.storage_class_name != other.storage_class_name:
            diffs.append(f"storage class {self.storage_class_name!r} != {other.storage_class_name!r}")
        if self.is_calibration != other.is_calibration:
            diffs.append(f"is_calibration {self.is_calibration} != {other.is_calibration}")
        return diffs

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, DatasetType):
            return NotImplemented
        return self.name == other.name and not self.differences(other)

    def __hash__(self) -> int:
        return self._hash

    def __repr__(self) -> str:
        calib = ", is_calibration=True" if self.is_calibration else ""
        return f"DatasetType({self.name!r}, {self.dimensions}, {self.storage_class_name!r}{calib})"


class DatasetIdGenerationMode(enum.Enum):
    """How `Registry.insert_datasets` makes dataset UUIDs."""

    UNIQUE = "unique"
    """A random UUID4 for every dataset."""
    DATAID_TYPE_RUN = "dataid_type_run"
    """A UUID5 from dataset type, data ID and run: the same inputs always give the same ID (idempotent ingest)."""


def random_dataset_ids(count: int) -> list[uuid.UUID]:
    """``count`` random (version 4) UUIDs, drawing the random bytes in one call."""
    data = os.urandom(16 * count)
    return [uuid.UUID(bytes=data[i : i + 16], version=4) for i in range(0, 16 * count, 16)]


def dataset_id_for(
    dataset_type: DatasetType, data_id: DataCoordinate, run: str, mode: DatasetIdGenerationMode
) -> uuid.UUID:
    """The UUID a new dataset gets under ``mode``."""
    if mode is DatasetIdGenerationMode.UNIQUE:
        return uuid.uuid4()
    # JSON keeps the parts unambiguous whatever characters names and values contain.
    key = json.dumps([dataset_type.name, list(data_id.required.items()), run])
    return uuid.uuid5(_DATASET_NAMESPACE, key)


@dataclass(frozen=True, slots=True)
class DatasetRef:
    """A reference to one dataset: its type, data ID, RUN collection and UUID.

    Refs are equal when their UUIDs are; a predicted ref (from a quantum graph) has the UUID
    its dataset will be stored under.
    """

    dataset_type: DatasetType
    """What kind of dataset this is."""
    data_id: DataCoordinate
    """Which one, by dimension values."""
    run: str
    """The RUN collection the dataset belongs to."""
    id: uuid.UUID
    """The dataset's unique ID."""

    @classmethod
    def new(
        cls,
        dataset_type: DatasetType,
        data_id: DataCoordinate,
        run: str,
        mode: DatasetIdGenerationMode = DatasetIdGenerationMode.UNIQUE,
    ) -> DatasetRef:
        """A ref with a freshly generated UUID."""
        return cls(dataset_type, data_id, run, dataset_id_for(dataset_type, data_id, run, mode))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, DatasetRef):
            return NotImplemented
        return self.id == other.id

    def __hash__(self) -> int:
        return hash(self.id)

    def __repr__(self) -> str:
        return f"DatasetRef({self.dataset_type.name!r}, {self.data_id}, run={self.run!r}, id={self.id})"
