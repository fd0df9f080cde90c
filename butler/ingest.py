"""Ingesting existing files as datasets: copy, move, link, or use them in place (``direct``)."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from lsst.resources import ResourcePath

from .data_coordinate import DataCoordinate, DataIdValue, DimensionRecord
from .datasets import DatasetRef
from .datastore import DatastoreError, DatastoreRecord
from .dimensions import DimensionElement, DimensionGroup
from .errors import ButlerError
from .formatter import formatter_class

if TYPE_CHECKING:
    from .butler import Butler
    from .registry import Registry

__all__ = ["TRANSFER_MODES", "FileDataset", "IngestError", "ingest_files"]

_LOG = logging.getLogger(__name__)

TRANSFER_MODES = ("auto", "copy", "move", "hardlink", "symlink", "relsymlink", "direct")
"""How `ingest_files` brings files into the datastore.

``direct`` records the file where it is (the repository does not own it and never deletes it);
``auto`` is ``direct`` for a file already inside the datastore root and ``copy`` otherwise.
"""


class IngestError(ButlerError):
    """A file cannot be ingested (missing, unreadable, unknown transfer mode, destination exists)."""


@dataclass(frozen=True)
class FileDataset:
    """A file to ingest and the dataset(s) it holds."""

    path: str
    """Local path or URI of the file."""
    refs: Sequence[DatasetRef]
    """The datasets in the file (usually one)."""
    formatter: str | None = None
    """Import path of the formatter that reads it; default: the one configured for the dataset type."""


def ingest_files(butler: Butler, datasets: Sequence[FileDataset], transfer: str = "auto") -> list[DatasetRef]:
    """Register every dataset of ``datasets`` with its file, all in one transaction.

    Files are transferred first; if registration fails, transferred copies are removed (sources
    of a ``move`` are deleted only after the registry commits), so a failed ingest changes nothing.
    """
    if transfer not in TRANSFER_MODES:
        raise IngestError(f"Unknown transfer mode {transfer!r}; expected one of {', '.join(TRANSFER_MODES)}.")
    planned: list[tuple[DatasetRef, DatastoreRecord, ResourcePath, ResourcePath | None]] = []
    expander = _DataIdExpander(butler.registry)
    expander.prefetch(ref for dataset in datasets for ref in dataset.refs)
    for dataset in datasets:
        source = ResourcePath(dataset.path, forceAbsolute=True)
        if not source.exists():
            raise IngestError(f"Cannot ingest {source}: no such file.")
        for ref in dataset.refs:
            planned.append(_plan(butler, expander, dataset, ref, source, transfer))
    copied: list[ResourcePath] = []
    try:
        for _, _, source, destination in planned:
            if destination is not None and not destination.exists():
                mode = "copy" if transfer in ("move", "auto") else transfer
                destination.transfer_from(source, transfer=mode)
                copied.append(destination)
        with butler.registry.transaction():
            refs = [ref for ref, _, _, _ in planned]
            for run in {ref.run for ref in refs}:
                if not butler.registry.has_collection(run):
                    butler.registry.register_run(run)
            butler.registry.import_datasets(refs)
            butler.registry.insert_datastore_records(record.to_row() for _, record, _, _ in planned)
    except BaseException:
        for uri in copied:
            uri.remove()
        raise
    if transfer == "move":
        for source in {str(s): s for _, _, s, d in planned if d is not None}.values():
            source.remove()
    _LOG.info(
        "Ingested %d dataset(s) from %d file(s) with transfer=%s.", len(planned), len(datasets), transfer
    )
    return [ref for ref, _, _, _ in planned]


def _plan(
    butler: Butler,
    expander: _DataIdExpander,
    dataset: FileDataset,
    ref: DatasetRef,
    source: ResourcePath,
    transfer: str,
) -> tuple[DatasetRef, DatastoreRecord, ResourcePath, ResourcePath | None]:
    """(expanded ref, its record, source, destination or None for in-place) for one dataset."""
    datastore = butler.file_datastore
    dataset_type = butler.registry.get_dataset_type(ref.dataset_type.name)
    data_id = expander.expand(ref.data_id.required, dataset_type.dimensions)
    ref = DatasetRef(dataset_type, data_id, ref.run, ref.id)
    storage_class = butler.storage_classes[dataset_type.storage_class_name]
    formatter = (
        formatter_class(dataset.formatter)()
        if dataset.formatter
        else datastore.formatter_for(dataset_type.name, storage_class)
    )
    inside = datastore.relative_path(source)
    if transfer == "direct" or (transfer == "auto" and inside is not None):
        path = inside if inside is not None else str(source)
        destination = None
    else:
        (predicted,) = datastore.predict_records(ref, storage_class)
        path = predicted.path.removesuffix(formatter.extension) + (
            source.getExtension() or formatter.extension
        )
        destination = datastore.root.join(path)
        if destination.exists():
            raise DatastoreError(f"Cannot ingest {source}: {destination} already exists.")
    try:
        size = source.size()
    except (FileNotFoundError, OSError) as err:
        raise IngestError(f"Cannot read {source}: {err}") from err
    record = DatastoreRecord(
        ref.id, datastore.name, "", path, formatter.name(), storage_class.name, None, size
    )
    if datastore.config.checksum and source.isLocal:
        record = dataclasses.replace(record, checksum=datastore.checksum_of(source))
    return ref, record, source, destination


# -- expanding the data IDs of many files at once ----------------------------------------------------

_QUERY_CHUNK = 500
"""Key values per ``IN (...)`` of a bulk record query."""


class _DataIdExpander:
    """``Registry.expand_data_id`` for the data IDs of many files, with a few queries per dimension element.

    `prefetch` walks the elements of each dimension group as ``expand_data_id`` does, but for every
    data ID of the group at once: one ``query_dimension_records`` per element (per 500 distinct key
    values), the records shared between data IDs. `expand` returns the prefetched result; a data ID
    the bulk walk could not complete (a missing record, an empty implied value) goes through
    ``Registry.expand_data_id`` itself, so results and errors are exactly those of the per-file calls.
    """

    def __init__(self, registry: Registry) -> None:
        self._registry = registry
        self._expanded: dict[DataCoordinate, DataCoordinate] = {}

    def prefetch(self, refs: Iterable[DatasetRef]) -> None:
        """Expand the data IDs of ``refs`` (as their registered dataset types' dimensions) in bulk."""
        registry = self._registry
        universe = registry.universe
        groups: dict[str, DimensionGroup | None] = {}
        by_group: dict[DimensionGroup, dict[DataCoordinate, None]] = {}
        for ref in refs:
            name = ref.dataset_type.name
            if name not in groups:
                try:
                    groups[name] = universe.group(registry.get_dataset_type(name).dimensions.names)
                except ButlerError:
                    groups[name] = None  # `expand` (via `_plan`) raises it again, in file order
            group = groups[name]
            if group is None:
                continue
            try:
                data_id = DataCoordinate.standardize(
                    ref.data_id.required, universe=universe, dimensions=group
                )
            except ButlerError:
                continue
            by_group.setdefault(group, {})[data_id] = None
        for group, data_ids in by_group.items():
            self._expanded.update(_expand_group(registry, group, list(data_ids)))
        _LOG.debug(
            "Expanded %d data ID(s) of %d dimension group(s) in bulk.", len(self._expanded), len(by_group)
        )

    def expand(self, required: Mapping[str, Any], dimensions: DimensionGroup) -> DataCoordinate:
        """What ``registry.expand_data_id(required, dimensions=dimensions.names)`` returns (or raises)."""
        universe = self._registry.universe
        group = universe.group(dimensions.names)
        data_id = DataCoordinate.standardize(required, universe=universe, dimensions=group)
        expanded = self._expanded.get(data_id)
        if expanded is not None:
            return expanded
        return self._registry.expand_data_id(required, dimensions=dimensions.names)


def _expand_group(
    registry: Registry, group: DimensionGroup, data_ids: Sequence[DataCoordinate]
) -> dict[DataCoordinate, DataCoordinate]:
    """Expanded data IDs (standardized -> expanded) of one group, for those the bulk walk completes.

    Mirrors ``DimensionRecordStorage.expand``: elements become ready once their key values are
    known; each ready element's records are fetched for all data IDs together. A data ID is left
    out (expanded one at a time later) where the per-ID walk would go another way: a missing
    dimension record, or an empty key value of an element that implies others.
    """
    universe = group.universe
    values: list[dict[str, Any]] = [dict(data_id.required) for data_id in data_ids]
    records: list[dict[str, DimensionRecord]] = [{} for _ in data_ids]
    irregular: set[int] = set()
    known = set(group.required)
    pending = list(group.elements)
    while pending:
        ready = [name for name in pending if all(c in known for c in universe[name].key_columns)]
        if not ready:
            return {}  # expand_data_id raises for each of them
        for name in ready:
            pending.remove(name)
            element = universe[name]
            keys = {
                i: tuple(v[c] for c in element.key_columns)
                for i, v in enumerate(values)
                if i not in irregular
            }
            found = _fetch_records(registry, element, {key for key in keys.values() if None not in key})
            for i, key in keys.items():
                record = found.get(key) if None not in key else None
                if record is None:
                    if None in key and not element.implies:
                        continue  # the per-ID walk skips it too
                    if not element.is_dimension and None not in key and not element.implies:
                        continue  # a join element without a record (e.g. no region): optional
                    irregular.add(i)
                    continue
                records[i][name] = record
                for implied in element.implies:
                    values[i][implied] = record[implied]
            known.update(element.implies)
    return {
        data_id: DataCoordinate(group, tuple(values[i][k] for k in group.data_id_keys), records[i])
        for i, data_id in enumerate(data_ids)
        if i not in irregular
    }


def _fetch_records(
    registry: Registry, element: DimensionElement, keys: set[tuple[DataIdValue, ...]]
) -> dict[tuple[DataIdValue, ...], DimensionRecord]:
    """Records of ``element`` with the given key values (those that exist), by key values.

    The key column with the most distinct values goes into ``IN (...)`` lists; each combination of
    the other key columns (e.g. one instrument) is a data ID constraint of its own queries.
    """
    columns = element.key_columns
    listed = max(range(len(columns)), key=lambda c: len({key[c] for key in keys}))
    by_rest: dict[tuple[DataIdValue, ...], list[DataIdValue]] = {}
    for key in keys:
        by_rest.setdefault(key[:listed] + key[listed + 1 :], []).append(key[listed])
    rest_columns = columns[:listed] + columns[listed + 1 :]
    found: dict[tuple[DataIdValue, ...], DimensionRecord] = {}
    for rest, values in by_rest.items():
        data_id = dict(zip(rest_columns, rest, strict=True))
        values.sort()
        for start in range(0, len(values), _QUERY_CHUNK):
            for record in registry.query_dimension_records(
                element.name,
                where=f"{columns[listed]} IN (:values)",
                bind={"values": values[start : start + _QUERY_CHUNK]},
                data_id=data_id,
            ):
                found[record.key_values] = record
    return found
