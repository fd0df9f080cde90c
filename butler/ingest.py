"""Ingesting existing files as datasets: copy, move, link, or use them in place (``direct``)."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from lsst.resources import ResourcePath

from .datasets import DatasetRef
from .datastore import DatastoreError, DatastoreRecord
from .errors import ButlerError
from .formatter import formatter_class

if TYPE_CHECKING:
    from .butler import Butler

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
    for dataset in datasets:
        source = ResourcePath(dataset.path, forceAbsolute=True)
        if not source.exists():
            raise IngestError(f"Cannot ingest {source}: no such file.")
        for ref in dataset.refs:
            planned.append(_plan(butler, dataset, ref, source, transfer))
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
    butler: Butler, dataset: FileDataset, ref: DatasetRef, source: ResourcePath, transfer: str
) -> tuple[DatasetRef, DatastoreRecord, ResourcePath, ResourcePath | None]:
    """(expanded ref, its record, source, destination or None for in-place) for one dataset."""
    datastore = butler.file_datastore
    dataset_type = butler.registry.get_dataset_type(ref.dataset_type.name)
    data_id = butler.registry.expand_data_id(ref.data_id.required, dimensions=dataset_type.dimensions.names)
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
