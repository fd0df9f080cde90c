"""The Butler: put Python objects into a data repository and get them back, by dataset type and data ID."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from lsst.resources import ResourcePath

from .chained_datastore import ChainedDatastore, make_datastore
from .collections import CollectionType
from .datasets import DatasetRef, DatasetType
from .datastore import DatasetFileMissingError, Datastore, DatastoreError, DatastoreRecord
from .errors import ButlerError, InvalidQueryError, MissingCollectionError
from .exchange import export_datasets, import_datasets, transfer_datasets
from .file_datastore import FileDatastore
from .ingest import FileDataset, ingest_files
from .registry import Registry
from .repository import CONFIG_NAME, RepositoryConfig
from .storage_classes import StorageClass, StorageClassRegistry
from .verify import VerifyReport, verify_datastore

__all__ = ["Butler", "DatasetNotFoundError"]

_LOG = logging.getLogger(__name__)


class DatasetNotFoundError(ButlerError, LookupError):
    """No dataset matches a dataset type and data ID in the collections searched."""


class Butler:
    """Reads and writes datasets of one repository; pipeline code never sees paths or formats.

    ``collections`` is the default search path for `get`; ``run`` the default RUN collection for
    `put` (created if absent).
    """

    def __init__(
        self, repo: str | Path, *, collections: str | Sequence[str] | None = None, run: str | None = None
    ) -> None:
        config = RepositoryConfig.load(repo)
        if config.datastore is None:
            raise ButlerError(f"Repository {config.root} has no datastore section in its butler.yaml.")
        self.storage_classes = StorageClassRegistry.default()
        self.registry = Registry.open(
            config.db,
            namespace=config.namespace,
            component_storage_classes=self.storage_classes.component_storage_class,
        )
        try:
            self.datastore = make_datastore(
                config.datastore,
                self.storage_classes,
                self.registry.universe,
                str(config.root),
                str(config.root / CONFIG_NAME),
            )
        except BaseException:
            self.registry.close()
            raise
        self.run = run
        if collections is None:
            self.collections: list[str] = [run] if run else []
        else:
            self.collections = [collections] if isinstance(collections, str) else list(collections)
        if run is not None:
            self.registry.register_run(run)

    def close(self) -> None:
        """Release database connections."""
        self.registry.close()

    def __enter__(self) -> Butler:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- finding datasets ------------------------------------------------------------------------

    def find_dataset(
        self,
        dataset_type: str | DatasetType,
        data_id: Mapping[str, Any] | None = None,
        *,
        collections: str | Sequence[str] | None = None,
        **kwargs: Any,
    ) -> DatasetRef | None:
        """The ref of the dataset a `get` would read (first match through the collections), or None."""
        name = dataset_type if isinstance(dataset_type, str) else dataset_type.name
        search = self._search_path(collections)
        constraints = dict(data_id or {}) | kwargs
        refs = self.registry.query_datasets(name, search, data_id=constraints)
        if len(refs) > 1:
            raise InvalidQueryError(
                f"Data ID {constraints} matches {len(refs)} {name} datasets in {search}; give every dimension of "
                f"{self.registry.get_dataset_type(name).dimensions}."
            )
        return refs[0] if refs else None

    def _search_path(self, collections: str | Sequence[str] | None) -> list[str]:
        if collections is None:
            if not self.collections:
                raise InvalidQueryError("No collections to search: pass collections= here or to Butler().")
            return self.collections
        return [collections] if isinstance(collections, str) else list(collections)

    def _resolve(
        self,
        dataset: str | DatasetType | DatasetRef,
        data_id: Mapping[str, Any] | None,
        collections: str | Sequence[str] | None,
        kwargs: Mapping[str, Any],
    ) -> DatasetRef:
        if isinstance(dataset, DatasetRef):
            return dataset
        ref = self.find_dataset(dataset, data_id, collections=collections, **kwargs)
        if ref is None:
            name = dataset if isinstance(dataset, str) else dataset.name
            raise DatasetNotFoundError(
                f"No {name} dataset for data ID {dict(data_id or {}) | dict(kwargs)} in collections "
                f"{self._search_path(collections)}."
            )
        return ref

    @property
    def file_datastore(self) -> FileDatastore:
        """The first file datastore (the datastore itself, or the first file member of a chain).

        Ingest, export, the merge and verification work on files, so they go through this one.
        """
        pending: list[Datastore] = [self.datastore]
        while pending:
            datastore = pending.pop(0)
            if isinstance(datastore, FileDatastore):
                return datastore
            if isinstance(datastore, ChainedDatastore):
                pending[:0] = list(datastore.children)
        raise ButlerError(f"Datastore {self.datastore.name} has no file datastore.")

    def datastore_records(self, ref: DatasetRef) -> list[DatastoreRecord]:
        """The records locating ``ref``'s artifacts, in every member datastore."""
        return self._records_of([ref.id])

    def _records_of(self, dataset_ids: list[uuid.UUID]) -> list[DatastoreRecord]:
        """Records of every member datastore for the given datasets."""
        return [
            DatastoreRecord.from_row(row)
            for name in self.datastore.names
            for row in self.registry.fetch_datastore_records(name, dataset_ids)
        ]

    # -- put and get ---------------------------------------------------------------------------------

    def put(
        self,
        obj: Any,
        dataset: str | DatasetType | DatasetRef,
        data_id: Mapping[str, Any] | None = None,
        *,
        run: str | None = None,
        **kwargs: Any,
    ) -> DatasetRef:
        """Store ``obj`` as a new dataset and return its ref.

        The dataset row, its file(s) and its datastore records are written together: on any error
        (wrong object type, existing dataset, unwritable directory, ...) none of them remain.
        """
        if isinstance(dataset, DatasetRef):
            ref = dataset
        else:
            name = dataset if isinstance(dataset, str) else dataset.name
            dataset_type = self.registry.get_dataset_type(name)
            target_run = run or self.run
            if target_run is None:
                raise MissingCollectionError(
                    f"No RUN collection to put {name} into: pass run= here or to Butler()."
                )
            expanded = self.registry.expand_data_id(
                dict(data_id or {}) | kwargs, dimensions=dataset_type.dimensions
            )
            ref = DatasetRef.new(dataset_type, expanded, target_run)
        if ref.dataset_type.component is not None:
            raise ButlerError(
                f"Cannot put component {ref.dataset_type.name}; put the whole {ref.dataset_type.parent_name}."
            )
        storage_class = self.storage_classes[ref.dataset_type.storage_class_name]
        records: list[DatastoreRecord] = []
        try:
            with self.registry.transaction():
                if not self.registry.has_collection(ref.run):
                    self.registry.register_run(ref.run)
                if not self.registry.import_datasets([ref]):
                    raise ButlerError(f"{ref} is already stored.")
                records = self.datastore.put(obj, ref, storage_class)
                self.registry.insert_datastore_records(r.to_row() for r in records)
        except BaseException:
            self.datastore.remove_artifacts(records)
            raise
        return ref

    def get(
        self,
        dataset: str | DatasetType | DatasetRef,
        data_id: Mapping[str, Any] | None = None,
        *,
        collections: str | Sequence[str] | None = None,
        parameters: Mapping[str, Any] | None = None,
        storage_class: str | None = None,
        **kwargs: Any,
    ) -> Any:
        """Read a dataset: by ref, or by dataset type (``name`` or ``name.component``) and data ID.

        ``parameters`` read part of it (e.g. ``columns``, ``slice``, ``bbox``); ``storage_class``
        converts it to another compatible type. A registered dataset whose file is missing raises
        `DatasetFileMissingError`.
        """
        ref = self._resolve(dataset, data_id, collections, kwargs)
        requested = (
            dataset
            if isinstance(dataset, str)
            else dataset.dataset_type.name
            if isinstance(dataset, DatasetRef)
            else dataset.name
        )
        component = requested.split(".", 1)[1] if "." in requested else ref.dataset_type.component
        parent = self.registry.get_dataset_type(ref.dataset_type.parent_name)
        parent_ref = DatasetRef(parent, ref.data_id, ref.run, ref.id)
        read_type = (
            parent if component is None else self.registry.get_dataset_type(f"{parent.name}.{component}")
        )
        read_class = self.storage_classes[storage_class or read_type.storage_class_name]
        records = self.datastore_records(parent_ref)
        if not records:
            raise DatasetFileMissingError(
                f"{parent_ref} is registered but has no file in datastore {self.datastore.name}."
            )
        return self.datastore.get(parent_ref, records, read_class, component, parameters)

    def exists(
        self,
        dataset: str | DatasetType | DatasetRef,
        data_id: Mapping[str, Any] | None = None,
        *,
        collections: str | Sequence[str] | None = None,
        **kwargs: Any,
    ) -> bool:
        """Whether the dataset is registered and its file(s) exist."""
        try:
            ref = self._resolve(dataset, data_id, collections, kwargs)
        except DatasetNotFoundError:
            return False
        records = self.datastore_records(ref)
        return self.datastore.artifacts_exist(records)

    def get_uris(
        self,
        dataset: str | DatasetType | DatasetRef,
        data_id: Mapping[str, Any] | None = None,
        *,
        collections: str | Sequence[str] | None = None,
        **kwargs: Any,
    ) -> dict[str, ResourcePath]:
        """Component ("" for a single file) -> URI of the dataset's file(s)."""
        return self.datastore.uris(
            self.datastore_records(self._resolve(dataset, data_id, collections, kwargs))
        )

    def get_uri(
        self,
        dataset: str | DatasetType | DatasetRef,
        data_id: Mapping[str, Any] | None = None,
        *,
        collections: str | Sequence[str] | None = None,
        **kwargs: Any,
    ) -> ResourcePath:
        """The URI of a dataset stored as a single file."""
        uris = self.get_uris(dataset, data_id, collections=collections, **kwargs)
        if set(uris) != {""}:
            raise ButlerError(f"The dataset is stored as components {sorted(uris)}; use get_uris.")
        return uris[""]

    # -- bringing files in and out ------------------------------------------------------------------

    def ingest(self, *datasets: FileDataset, transfer: str = "auto") -> list[DatasetRef]:
        """Register existing files as datasets; see `butler.ingest.ingest_files` for transfer modes."""
        return ingest_files(self, datasets, transfer)

    def retrieve_artifacts(
        self,
        refs: Iterable[DatasetRef],
        destination: str | Path,
        *,
        preserve_path: bool = True,
        overwrite: bool = False,
    ) -> list[ResourcePath]:
        """Copy the files of ``refs`` into a local directory; returns the copies' URIs.

        With ``preserve_path`` the datastore's relative paths are kept, otherwise files are flat.
        """
        target = ResourcePath(str(destination), forceDirectory=True)
        copied = []
        for ref in refs:
            for record in self.datastore_records(ref):
                source = self.datastore.uris([record])[record.component]
                relative = self.file_datastore.relative_path(source) if preserve_path else None
                copy = target.join(relative or source.basename())
                if copy.exists() and not overwrite:
                    raise DatastoreError(f"Refusing to overwrite {copy}; it already exists.")
                if not source.exists():
                    raise DatasetFileMissingError(f"The file of {ref} is missing: {source}.")
                copy.transfer_from(source, transfer="copy", overwrite=overwrite)
                copied.append(copy)
        return copied

    def transfer_from(self, source: Butler, refs: Iterable[DatasetRef]) -> list[DatasetRef]:
        """Copy datasets with their files and dimension records from another butler (same UUIDs)."""
        return transfer_datasets(self, source, refs)

    def export(self, directory: str | Path, refs: Iterable[DatasetRef]) -> Path:
        """Write datasets' files and a manifest (records, types, runs) to a directory; returns the manifest."""
        return export_datasets(self, directory, refs)

    def import_(self, directory: str | Path) -> list[DatasetRef]:
        """Bring in an `export` directory; datasets already present are skipped. Returns the new refs."""
        return import_datasets(self, directory)

    # -- removal ------------------------------------------------------------------------------------------

    def prune_datasets(self, refs: Iterable[DatasetRef]) -> None:
        """Delete datasets: their files, their datastore records and their registry rows."""
        refs = list(refs)
        by_id = {ref.id: ref for ref in refs}
        with self.registry.transaction():
            for name in self.datastore.names:
                self.registry.trash_datastore_records(name, list(by_id))
            self.registry.remove_datasets(refs)
        # Files go only once the deletion is committed: a crash now leaves trash that the next
        # empty_trash (or prune) finishes, never a registered dataset without its file. Inside a
        # caller's transaction the commit is still to come, so the files wait in the trash.
        if not self.registry.in_transaction:
            self.empty_trash()

    def empty_trash(self) -> int:
        """Delete the files of pruned datasets, then forget them; returns how many records were emptied."""
        emptied = 0
        for name in self.datastore.names:
            records = [DatastoreRecord.from_row(r) for r in self.registry.trashed_datastore_records(name)]
            if records:
                self.datastore.remove_artifacts(records)
                self.registry.forget_trashed_records(name, sorted({r.dataset_id for r in records}))
                emptied += len(records)
        return emptied

    def remove_runs(self, names: Iterable[str]) -> None:
        """Delete RUN collections with every dataset and file in them."""
        names = list(names)
        for name in names:  # check everything before deleting anything
            if self.registry.get_collection_type(name) is not CollectionType.RUN:
                raise ButlerError(f"{name!r} is not a RUN collection.")
            parents = self.registry.get_collection_parent_chains(name)
            if parents:
                raise ButlerError(
                    f"Cannot remove run {name!r}: chained collection(s) {', '.join(parents)} list it."
                )
        for name in names:
            refs = [
                ref
                for dataset_type in self.registry.query_dataset_types()
                for ref in self.registry.query_datasets(dataset_type, name, find_first=False)
            ]
            self.prune_datasets(refs)
            self.registry.remove_collection(name)

    # -- consistency ---------------------------------------------------------------------------------------

    def verify(self) -> VerifyReport:
        """Compare the file datastore's records with its files (see `butler.verify.verify_datastore`)."""
        return verify_datastore(self.registry, self.file_datastore)

    def all_datastore_records(self) -> list[DatastoreRecord]:
        """Every record of this butler's datastore."""
        return [
            DatastoreRecord.from_row(r)
            for name in self.datastore.names
            for r in self.registry.all_datastore_records(name)
        ]

    def storage_class(self, name: str) -> StorageClass:
        """The storage class called ``name``."""
        return self.storage_classes[name]
