"""Registering and looking up dataset types (and their per-dimension-group tables)."""

from __future__ import annotations

import fnmatch
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

import sqlalchemy as sa

from .database import Database, inserted_id
from .datasets import DatasetType
from .dimensions import unknown_name_message
from .errors import ConflictingDefinitionError, DatasetTypeError, MissingDatasetTypeError, OrphanedRecordError
from .schema import DatasetTables, RegistryTables

__all__ = ["ComponentStorageClasses", "DatasetTypeManager", "RegisteredDatasetType"]

ComponentStorageClasses = Callable[[str, str], str | None]
"""(parent storage class, component) -> component storage class name, or None if no such component."""


@dataclass(frozen=True, slots=True)
class RegisteredDatasetType:
    """A dataset type with its database key and tables."""

    id: int
    dataset_type: DatasetType
    tables: DatasetTables


class DatasetTypeManager:
    """Stores dataset type definitions; creates each dimension group's dataset tables on first use."""

    def __init__(
        self,
        db: Database,
        tables: RegistryTables,
        component_storage_classes: ComponentStorageClasses | None = None,
    ) -> None:
        self._db = db
        self._tables = tables
        self._component_storage_classes = component_storage_classes
        self._cache: dict[str, RegisteredDatasetType] = {}

    def _refresh(self) -> None:
        table = self._tables.dataset_type
        universe = self._tables.universe
        with self._db.transaction() as conn:
            rows = conn.execute(sa.select(table)).all()
        cache = {}
        for row in rows:
            dims = [d for d in row.dimensions.split(",") if d]
            dataset_type = DatasetType(
                row.name, universe.group(dims), row.storage_class, is_calibration=row.is_calibration
            )
            cache[row.name] = RegisteredDatasetType(
                row.dataset_type_id, dataset_type, self._tables.dataset_tables(dataset_type.dimensions)
            )
        self._cache = cache

    def forget_cache(self) -> None:
        """Drop cached definitions (after a rolled-back transaction)."""
        self._cache.clear()

    def register(self, dataset_type: DatasetType) -> bool:
        """Register a dataset type; False if an identical one exists.

        Raises `ConflictingDefinitionError` naming the differences if one with the same name differs,
        and `DatasetTypeError` for a component (register its parent instead).
        """
        if dataset_type.component is not None:
            raise DatasetTypeError(
                f"Cannot register component dataset type {dataset_type.name!r}; register its parent "
                f"{dataset_type.parent_name!r} and components follow from its storage class."
            )
        if dataset_type.dimensions.universe is not self._tables.universe:
            dataset_type = DatasetType(
                dataset_type.name,
                self._tables.universe.group(dataset_type.dimensions.names),
                dataset_type.storage_class_name,
                is_calibration=dataset_type.is_calibration,
            )
        existing = self.find(dataset_type.name)
        if existing is not None:
            diffs = existing.dataset_type.differences(dataset_type)
            if diffs:
                raise ConflictingDefinitionError(
                    f"Dataset type {dataset_type.name!r} is already registered with a different definition: "
                    + "; ".join(diffs)
                    + " (registry value first)."
                )
            return False
        tables = self._tables.dataset_tables(dataset_type.dimensions)
        with self._db.transaction() as conn:
            tables.tags.create(conn, checkfirst=True)
            tables.calibs.create(conn, checkfirst=True)
            result = conn.execute(
                sa.insert(self._tables.dataset_type).values(
                    name=dataset_type.name,
                    dimensions=",".join(dataset_type.dimensions.required),
                    storage_class=dataset_type.storage_class_name,
                    is_calibration=dataset_type.is_calibration,
                )
            )
            type_id = inserted_id(result)
        self._cache[dataset_type.name] = RegisteredDatasetType(int(type_id), dataset_type, tables)
        return True

    def find(self, name: str) -> RegisteredDatasetType | None:
        """The registered parent dataset type called ``name``, or None."""
        if name not in self._cache:
            self._refresh()
        return self._cache.get(name)

    def get_registered(self, name: str) -> RegisteredDatasetType:
        """The registered dataset type for ``name`` (a component name gives its parent's entry)."""
        parent = name.split(".", 1)[0]
        registered = self.find(parent)
        if registered is None:
            raise MissingDatasetTypeError(unknown_name_message("dataset type", parent, self._cache))
        return registered

    def get(self, name: str) -> DatasetType:
        """The dataset type called ``name``; for ``parent.component`` the component's type."""
        registered = self.get_registered(name)
        parent = registered.dataset_type
        if "." not in name:
            return parent
        component = name.split(".", 1)[1]
        storage_class = (
            self._component_storage_classes(parent.storage_class_name, component)
            if self._component_storage_classes is not None
            else None
        )
        if storage_class is None:
            raise MissingDatasetTypeError(
                f"Dataset type {parent.name!r} (storage class {parent.storage_class_name!r}) "
                f"has no component {component!r}."
            )
        return parent.make_component(component, storage_class)

    def query(self, pattern: str | Sequence[str] = "*") -> list[DatasetType]:
        """Registered (parent) dataset types whose names match glob pattern(s), sorted by name."""
        self._refresh()
        patterns = [pattern] if isinstance(pattern, str) else list(pattern)
        return [
            r.dataset_type
            for name, r in sorted(self._cache.items())
            if any(fnmatch.fnmatchcase(name, p) for p in patterns)
        ]

    def all_registered(self) -> Iterable[RegisteredDatasetType]:
        """Every registered dataset type with its key and tables."""
        self._refresh()
        return list(self._cache.values())

    def remove(self, name: str) -> None:
        """Delete a dataset type that has no datasets; `OrphanedRecordError` otherwise."""
        registered = self.get_registered(name)
        dataset = self._tables.dataset
        with self._db.transaction() as conn:
            count = conn.execute(
                sa.select(sa.func.count()).where(dataset.c.dataset_type_id == registered.id)
            ).scalar_one()
            if count:
                raise OrphanedRecordError(
                    f"Cannot remove dataset type {name!r}: {count} dataset(s) of it exist; remove them first."
                )
            table = self._tables.dataset_type
            conn.execute(sa.delete(table).where(table.c.dataset_type_id == registered.id))
        self._cache.pop(name, None)

    def by_id(self) -> Mapping[int, RegisteredDatasetType]:
        """Registered dataset types keyed by database ID."""
        if not self._cache:
            self._refresh()
        return {r.id: r for r in self._cache.values()}
