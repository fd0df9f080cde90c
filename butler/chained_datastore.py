"""A datastore that writes each dataset to every member that accepts it, and builds datastores from config."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

import pydantic

from .datasets import DatasetRef
from .datastore import DatasetFileMissingError, Datastore, DatastoreError, DatastoreRecord
from .datastore_config import DatastoreConfigError, FileDatastoreConfig
from .dimensions import DimensionUniverse
from .file_datastore import FileDatastore
from .storage_classes import StorageClass, StorageClassRegistry

if TYPE_CHECKING:
    from lsst.resources import ResourcePath

__all__ = ["ChainedDatastore", "ChainedDatastoreConfig", "make_datastore"]

_LOG = logging.getLogger(__name__)

_Model = TypeVar("_Model", bound=pydantic.BaseModel)


class ChainedDatastore(Datastore):
    """Writes a dataset to every child that accepts it; reads from the first child that holds it.

    Records keep the name of the child that wrote them, so every method hands each child only its
    own records. `put` is all or nothing across the children.

    Parameters
    ----------
    name
        Name of the chain (records carry the children's names, not this one).
    children
        Member datastores, in the order `get` tries them; their names must be unique.
    """

    def __init__(self, name: str, children: Sequence[Datastore]) -> None:
        if not children:
            raise DatastoreError(f"Chained datastore {name} needs at least one child datastore.")
        names = [n for child in children for n in child.names]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise DatastoreError(
                f"Chained datastore {name} has several children named {', '.join(duplicates)}; "
                "give each a unique name (records say which one holds a dataset)."
            )
        self.name = name
        self._children = tuple(children)

    @property
    def children(self) -> tuple[Datastore, ...]:
        """The member datastores, in the order `get` tries them."""
        return self._children

    @property
    def names(self) -> tuple[str, ...]:
        """The names its children write into records (nested chains contribute their children's)."""
        return tuple(n for child in self._children for n in child.names)

    def _by_child(self, records: Sequence[DatastoreRecord]) -> list[tuple[Datastore, list[DatastoreRecord]]]:
        """Each child with the records it owns (possibly none); `DatastoreError` for a foreign record."""
        owner = {n: i for i, child in enumerate(self._children) for n in child.names}
        split: list[list[DatastoreRecord]] = [[] for _ in self._children]
        for record in records:
            index = owner.get(record.datastore_name)
            if index is None:
                raise DatastoreError(
                    f"A record of dataset {record.dataset_id} names datastore {record.datastore_name!r}, "
                    f"which is not in chain {self.name} (members: {', '.join(self.names)})."
                )
            split[index].append(record)
        return list(zip(self._children, split, strict=True))

    def accepts(self, ref: DatasetRef, storage_class: StorageClass) -> bool:
        """Whether any child accepts ``ref``."""
        return any(child.accepts(ref, storage_class) for child in self._children)

    def put(self, obj: Any, ref: DatasetRef, storage_class: StorageClass) -> list[DatastoreRecord]:
        """Write ``obj`` to every accepting child; if one fails, remove what the others wrote and re-raise."""
        accepting = [child for child in self._children if child.accepts(ref, storage_class)]
        if not accepting:
            raise DatastoreError(
                f"No datastore in chain {self.name} accepts {ref.dataset_type.parent_name}/"
                f"{storage_class.name} (members: {', '.join(self.names)}; check their constraints)."
            )
        written: list[tuple[Datastore, list[DatastoreRecord]]] = []
        try:
            for child in accepting:
                written.append((child, child.put(obj, ref, storage_class)))
        except BaseException:
            for child, records in reversed(written):
                try:
                    child.remove_artifacts(records)
                except Exception:
                    _LOG.exception(
                        "Could not remove what %s wrote for %s after a failed put.", child.name, ref
                    )
            raise
        return [record for _, records in written for record in records]

    def get(
        self,
        ref: DatasetRef,
        records: Sequence[DatastoreRecord],
        storage_class: StorageClass,
        component: str | None = None,
        parameters: Mapping[str, Any] | None = None,
    ) -> Any:
        """Read from the first child (in chain order) that has records for ``ref`` and all their artifacts."""
        tried = []
        for child, own in self._by_child(records):
            if not own:
                continue
            tried.append(child.name)
            if not child.artifacts_exist(own):
                _LOG.debug("%s has records but no artifacts for %s; trying the next one.", child.name, ref)
                continue
            try:
                return child.get(ref, own, storage_class, component, parameters)
            except DatasetFileMissingError:
                _LOG.debug("%s lost the artifacts of %s while reading; trying the next one.", child.name, ref)
        where = f"{', '.join(tried)} have records but not the artifacts" if tried else "no member has records"
        raise DatasetFileMissingError(
            f"No datastore in chain {self.name} holds the artifacts of {ref} ({where})."
        )

    def artifacts_exist(self, records: Sequence[DatastoreRecord]) -> bool:
        """Whether, for every dataset the records name, some child has all its artifacts (what `get` needs)."""
        if not records:
            return False
        by_dataset: dict[uuid.UUID, list[DatastoreRecord]] = {}
        for record in records:
            by_dataset.setdefault(record.dataset_id, []).append(record)
        return all(
            any(own and child.artifacts_exist(own) for child, own in self._by_child(dataset_records))
            for dataset_records in by_dataset.values()
        )

    def uris(self, records: Sequence[DatastoreRecord]) -> dict[str, ResourcePath]:
        """The URIs in the first child holding the artifacts (else the first child with records)."""
        holders = [(child, own) for child, own in self._by_child(records) if own]
        for child, own in holders:
            if child.artifacts_exist(own):
                return child.uris(own)
        return holders[0][0].uris(holders[0][1]) if holders else {}

    def remove_artifacts(self, records: Sequence[DatastoreRecord]) -> None:
        """Delete the artifacts from each child owning records; every child is tried before an error is raised."""
        errors: list[DatastoreError] = []
        for child, own in self._by_child(records):
            if own:
                try:
                    child.remove_artifacts(own)
                except DatastoreError as err:
                    errors.append(err)
        if errors:
            raise errors[0]


class ChainedDatastoreConfig(pydantic.BaseModel):
    """Configuration of a `ChainedDatastore` (``cls: chained`` in a datastore mapping)."""

    model_config = pydantic.ConfigDict(extra="forbid", frozen=True)

    name: str = "ChainedDatastore"
    """Name of the chain."""
    children: list[dict[str, Any]] = pydantic.Field(min_length=1)
    """Datastore mappings of the members, in the order `get` tries them (each may have its own ``cls``)."""


_Builder = Callable[[Mapping[str, Any], StorageClassRegistry, DimensionUniverse, str, str], Datastore]


def make_datastore(
    config: Mapping[str, Any],
    storage_classes: StorageClassRegistry,
    universe: DimensionUniverse,
    root: str,
    source: str,
) -> Datastore:
    """Build the datastore a ``datastore:`` mapping describes.

    ``cls`` says which kind: ``file`` (the default), ``in_memory`` or ``chained`` (whose ``children``
    are mappings built the same way).

    Parameters
    ----------
    config
        The mapping (e.g. the ``datastore:`` section of butler.yaml).
    storage_classes
        Storage classes by name.
    universe
        The repository's dimension universe (for file templates).
    root
        Repository directory, substituted for ``<butlerRoot>`` in file datastore roots.
    source
        Where the mapping came from, for error messages.

    Raises
    ------
    DatastoreConfigError
        For an unknown ``cls``, key or value.
    """
    if not isinstance(config, Mapping):
        raise DatastoreConfigError(
            f"Invalid datastore configuration in {source}: expected a mapping, got {config!r}."
        )
    values = dict(config)
    kind = values.pop("cls", "file")
    builder = _BUILDERS.get(kind) if isinstance(kind, str) else None
    if builder is None:
        raise DatastoreConfigError(
            f"Invalid datastore configuration in {source}: unknown datastore cls {kind!r}; "
            f"expected one of {', '.join(sorted(_BUILDERS))}."
        )
    return builder(values, storage_classes, universe, root, source)


def _validate(model: type[_Model], values: Mapping[str, Any], source: str) -> _Model:
    try:
        return model.model_validate(values)
    except pydantic.ValidationError as err:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in err.errors())
        raise DatastoreConfigError(f"Invalid datastore configuration in {source}: {problems}") from None


def _file(
    values: Mapping[str, Any],
    storage_classes: StorageClassRegistry,
    universe: DimensionUniverse,
    root: str,
    source: str,
) -> Datastore:
    return FileDatastore(FileDatastoreConfig.from_mapping(values, source, root), storage_classes, universe)


def _in_memory(
    values: Mapping[str, Any],
    storage_classes: StorageClassRegistry,
    universe: DimensionUniverse,
    root: str,
    source: str,
) -> Datastore:
    # Imported here: it needs lsst.resources, which batch jobs writing local files do not import.
    from .in_memory_datastore import InMemoryDatastore, InMemoryDatastoreConfig

    return InMemoryDatastore.from_config(_validate(InMemoryDatastoreConfig, values, source), storage_classes)


def _chained(
    values: Mapping[str, Any],
    storage_classes: StorageClassRegistry,
    universe: DimensionUniverse,
    root: str,
    source: str,
) -> Datastore:
    config = _validate(ChainedDatastoreConfig, values, source)
    children = [
        make_datastore(child, storage_classes, universe, root, f"{source} ({config.name} child {i})")
        for i, child in enumerate(config.children)
    ]
    try:
        return ChainedDatastore(config.name, children)
    except DatastoreError as err:
        raise DatastoreConfigError(f"Invalid datastore configuration in {source}: {err}") from err


_BUILDERS: dict[str, _Builder] = {"file": _file, "in_memory": _in_memory, "chained": _chained}
