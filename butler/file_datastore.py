"""A datastore of files under one root URI (local POSIX path or S3), written atomically, never clobbered.

A local root given as a plain path is handled with `pathlib` alone; ``lsst.resources`` (whose import
costs every batch job ~60 ms) is imported only for URIs, remote roots, and the `FileDatastore.root`
and `FileDatastore.uris` API.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import os
import tempfile
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .datasets import DatasetRef
from .datastore import (
    DatasetChecksumError,
    DatasetFileMissingError,
    Datastore,
    DatastoreError,
    DatastoreRecord,
)
from .datastore_cache import DatastoreCache
from .datastore_config import FileDatastoreConfig
from .dimensions import DimensionUniverse
from .file_templates import FileTemplates
from .formatter import Formatter, FormatterError, formatter_class
from .storage_classes import StorageClass, StorageClassError, StorageClassRegistry

if TYPE_CHECKING:
    from lsst.resources import ResourcePath

__all__ = ["FileDatastore"]

_LOG = logging.getLogger(__name__)

_NOT_PLAIN = ("://", "%", "#", "?")
"""What makes `lsst.resources` read a path differently from a file name: a scheme, %-escapes, a fragment
or a query. Paths without them are joined and normalized with `os.path`, as `ResourcePath` would."""


def _is_plain(path: str) -> bool:
    return not any(marker in path for marker in _NOT_PLAIN)


def _resource_path(*args: Any, **kwargs: Any) -> ResourcePath:
    from lsst.resources import ResourcePath

    return ResourcePath(*args, **kwargs)


def _show(location: Path | ResourcePath) -> str:
    """A location as a URI for messages (``file:///...`` for local paths, as `ResourcePath` prints them)."""
    return location.as_uri() if isinstance(location, Path) else str(location)


class FileDatastore(Datastore):
    """Stores each dataset as a file (or one file per component) below ``config.root``.

    Writes go to a temporary name and are renamed (local) or uploaded whole (S3) into place, so
    a failed write leaves nothing; an existing file is never overwritten. Remote files are read
    through a bounded local cache.
    """

    def __init__(
        self, config: FileDatastoreConfig, storage_classes: StorageClassRegistry, universe: DimensionUniverse
    ) -> None:
        self.config = config
        self.name = config.name
        self._root: ResourcePath | None = None
        self._local_root: Path | None
        if _is_plain(config.root):
            self._local_root = Path(os.path.abspath(os.path.expanduser(config.root)))
        else:
            self._root = _resource_path(config.root, forceDirectory=True)
            self._local_root = Path(self._root.ospath) if self._root.isLocal else None
        if self._local_root is not None and not self._local_root.is_dir():
            raise DatastoreError(f"Datastore root {self._local_root} does not exist or is not a directory.")
        self._storage_classes = storage_classes
        self._templates = FileTemplates(config.templates, universe)
        self._validated: set[str] = set()
        self._formatters: dict[tuple[str, str], Formatter] = {}
        self._cache = None if self._local_root is not None else DatastoreCache(config.cache)

    @property
    def root(self) -> ResourcePath:
        """The root directory's URI."""
        if self._root is None:
            self._root = _resource_path(str(self._local_root), forceDirectory=True)
        return self._root

    # -- configuration lookups -----------------------------------------------------------------

    def accepts(self, ref: DatasetRef, storage_class: StorageClass) -> bool:
        """Whether the constraints let this datastore store ``ref``."""
        return self.config.constraints.allows(ref.dataset_type.parent_name, storage_class.name)

    def formatter_for(self, dataset_type_name: str, storage_class: StorageClass) -> Formatter:
        """The configured formatter for a dataset type (by its name first, then its storage class)."""
        spec = self.config.formatters.get(dataset_type_name) or self.config.formatters.get(storage_class.name)
        if spec is None:
            raise FormatterError(
                f"No formatter configured for dataset type {dataset_type_name!r} or storage class "
                f"{storage_class.name!r} in datastore {self.name}."
            )
        key = (dataset_type_name, storage_class.name)
        formatter = self._formatters.get(key)
        if formatter is None:
            # Formatters hold only their write options, so one instance serves every dataset.
            formatter = formatter_class(spec.formatter)(spec.write_options)
            self._formatters[key] = formatter
        return formatter

    # -- writing -----------------------------------------------------------------------------------

    def put(self, obj: Any, ref: DatasetRef, storage_class: StorageClass) -> list[DatastoreRecord]:
        """Write ``obj`` (checked against ``storage_class``) for ``ref``; all artifacts or none."""
        obj = storage_class.coerce(obj)
        name = ref.dataset_type.parent_name
        if name not in self._validated:
            self._templates.template_for(ref.dataset_type).validate(ref.dataset_type)
            self._validated.add(name)
        plan = self._artifact_plan(ref, storage_class)
        if len(plan) == 1:
            values = [obj]
        else:
            assert storage_class.delegate is not None
            parts = storage_class.delegate.disassemble(obj)
            values = [parts[piece_ref.dataset_type.component or ""] for piece_ref, _ in plan]
        records: list[DatastoreRecord] = []
        try:
            for (piece_ref, piece_class), value in zip(plan, values, strict=True):
                records.append(self._write_artifact(value, piece_ref, piece_class))
        except BaseException:
            self.remove_artifacts(records)
            raise
        return records

    def predict_records(self, ref: DatasetRef, storage_class: StorageClass) -> list[DatastoreRecord]:
        """The records `put` would return for ``ref`` (paths from templates; no checksum or size).

        Lets a merge find and register files that jobs wrote without a registry.
        """
        records = []
        for piece_ref, piece_class in self._artifact_plan(ref, storage_class):
            formatter = self.formatter_for(piece_ref.dataset_type.parent_name, piece_class)
            records.append(
                DatastoreRecord(
                    piece_ref.id,
                    self.name,
                    piece_ref.dataset_type.component or "",
                    self._relative_path(piece_ref, formatter),
                    formatter.name(),
                    piece_class.name,
                )
            )
        return records

    def _artifact_plan(
        self, ref: DatasetRef, storage_class: StorageClass
    ) -> list[tuple[DatasetRef, StorageClass]]:
        """The (ref, storage class) of each artifact: the dataset itself, or each component if disassembled."""
        if storage_class.name in self.config.disassemble and storage_class.delegate is not None:
            return [
                (self._component_ref(ref, component, storage_class), self._storage_classes[sc_name])
                for component, sc_name in storage_class.components.items()
            ]
        return [(ref, storage_class)]

    def _relative_path(self, ref: DatasetRef, formatter: Formatter) -> str:
        # Templates may use implied values (band, day_obs); a path must not depend on whether the
        # caller expanded the data ID, so writers and the merge's predictions must both expand.
        if not ref.data_id.has_full_values:
            raise DatastoreError(
                f"{ref} has no implied data ID values; expand its data ID with the registry first."
            )
        return self._templates.template_for(ref.dataset_type).format(ref) + formatter.extension

    def with_file_sizes(self, records: Sequence[DatastoreRecord]) -> list[DatastoreRecord] | None:
        """The records with sizes (and checksums when configured) of their files, or None if one is missing."""
        completed = []
        for record in records:
            path: Path | None
            try:
                if self._local_root is not None and "://" not in record.path:
                    # A plain stat: building a ResourcePath per file dominates merges of millions.
                    path = self._local_root / record.path
                    size = path.stat().st_size
                else:
                    uri = self._uri(record)
                    size = uri.size()
                    path = Path(uri.ospath) if uri.isLocal else None
            except FileNotFoundError:
                return None
            checksum = _checksum(path) if self.config.checksum and path is not None else None
            completed.append(dataclasses.replace(record, file_size=size, checksum=checksum))
        return completed

    def _component_ref(self, ref: DatasetRef, component: str, storage_class: StorageClass) -> DatasetRef:
        component_type = ref.dataset_type.make_component(component, storage_class.components[component])
        return DatasetRef(component_type, ref.data_id, ref.run, ref.id)

    def _write_artifact(self, obj: Any, ref: DatasetRef, storage_class: StorageClass) -> DatastoreRecord:
        formatter = self.formatter_for(ref.dataset_type.parent_name, storage_class)
        relative = self._relative_path(ref, formatter)
        target = self._local_path(relative)
        location: Path | ResourcePath = target if target is not None else self.root.join(relative)
        if location.exists():
            raise DatastoreError(
                f"Refusing to overwrite {_show(location)} while writing {ref}: a file is already there "
                "(remove it, or the dataset it belongs to, first)."
            )
        try:
            checksum, size = self._write_via_temporary(obj, formatter, location)
        except (OSError, StorageClassError, FormatterError) as err:
            if isinstance(err, OSError):
                raise DatastoreError(f"Cannot write {ref} to {_show(location)}: {err}") from err
            raise
        return DatastoreRecord(
            dataset_id=ref.id,
            datastore_name=self.name,
            component=ref.dataset_type.component or "",
            path=relative,
            formatter=formatter.name(),
            storage_class=storage_class.name,
            checksum=checksum,
            file_size=size,
        )

    def _write_via_temporary(
        self, obj: Any, formatter: Formatter, target: Path | ResourcePath
    ) -> tuple[str | None, int]:
        """Write to a temporary file, then move it into place; return (checksum, size)."""
        if isinstance(target, Path):
            local: Path | None = target
        else:
            local = Path(target.ospath) if target.isLocal else None
        if local is not None:
            local.parent.mkdir(parents=True, exist_ok=True)
            temporary = local.parent / f".{local.name}.{uuid.uuid4().hex}.tmp"
        else:
            handle, name = tempfile.mkstemp(suffix=formatter.extension)
            os.close(handle)
            os.unlink(name)
            temporary = Path(name)
        try:
            formatter.write(obj, temporary)
            checksum = _checksum(temporary) if self.config.checksum else None
            size = temporary.stat().st_size
            if local is not None:
                os.replace(temporary, local)
            elif not isinstance(target, Path):
                target.transfer_from(_resource_path(temporary), transfer="copy")
        finally:
            temporary.unlink(missing_ok=True)
        return checksum, size

    # -- reading --------------------------------------------------------------------------------------

    def get(
        self,
        ref: DatasetRef,
        records: Sequence[DatastoreRecord],
        storage_class: StorageClass,
        component: str | None = None,
        parameters: Mapping[str, Any] | None = None,
    ) -> Any:
        """Read ``ref`` (or a component) as ``storage_class``, applying read ``parameters``."""
        parameters = dict(parameters or {})
        storage_class.check_parameters(parameters)
        by_component = {r.component: r for r in records}
        if "" in by_component:
            return self._read_whole_file(ref, by_component[""], storage_class, component, parameters)
        if not by_component:
            raise DatasetFileMissingError(f"Datastore {self.name} holds no artifact for {ref}.")
        if component is not None:
            return self._read_artifact(ref, by_component[component], storage_class, None, parameters)
        parent_class = self._storage_classes[ref.dataset_type.storage_class_name]
        delegate = parent_class.delegate
        if delegate is None:
            raise DatastoreError(
                f"{ref} is stored as components but {parent_class.name} cannot assemble them."
            )
        parts = {
            name: self._read_artifact(ref, record, self._storage_classes[record.storage_class], None, {})
            for name, record in by_component.items()
        }
        whole = delegate.assemble(parts)
        return storage_class.coerce(delegate.apply_parameters(whole, parameters) if parameters else whole)

    def _read_whole_file(
        self,
        ref: DatasetRef,
        record: DatastoreRecord,
        storage_class: StorageClass,
        component: str | None,
        parameters: dict[str, Any],
    ) -> Any:
        stored = self._storage_classes[record.storage_class]
        if component is None:
            return self._read_artifact(ref, record, storage_class, None, parameters)
        formatter = formatter_class(record.formatter)()
        if component in formatter.component_names:
            return self._read_artifact(ref, record, storage_class, component, parameters)
        if stored.delegate is None:
            raise StorageClassError(
                f"Storage class {stored.name} of {ref.dataset_type.name} has no components."
            )
        whole = self._read_artifact(ref, record, stored, None, {})
        return storage_class.coerce(stored.delegate.get_component(whole, component))

    def _read_artifact(
        self,
        ref: DatasetRef,
        record: DatastoreRecord,
        storage_class: StorageClass,
        component: str | None,
        parameters: dict[str, Any],
    ) -> Any:
        formatter = formatter_class(record.formatter)()
        native = {k: v for k, v in parameters.items() if k in formatter.parameter_names}
        local = self._local_file(ref, record)
        obj = formatter.read(local, storage_class, component, native)
        rest = {k: v for k, v in parameters.items() if k not in native}
        if rest:
            if storage_class.delegate is None:
                raise StorageClassError(
                    f"{formatter.name()} cannot apply read parameters {sorted(rest)} to {ref.dataset_type.name}."
                )
            obj = storage_class.delegate.apply_parameters(obj, rest)
        return storage_class.coerce(obj)

    def _local_file(self, ref: DatasetRef, record: DatastoreRecord) -> Path:
        location = self._location(record)
        try:
            if isinstance(location, Path):
                path = location
            elif self._cache is not None and not location.isLocal:
                key = f"{record.dataset_id.hex}_{record.component or 'all'}{location.getExtension()}"
                path = self._cache.local_copy(location, key)
            else:
                path = Path(location.ospath)
            if not path.is_file():
                raise FileNotFoundError(path)
        except FileNotFoundError as err:
            raise DatasetFileMissingError(
                f"The file of {ref} is missing: {_show(location)} (registered in datastore {self.name})."
            ) from err
        if record.checksum is not None and _checksum(path) != record.checksum:
            raise DatasetChecksumError(
                f"The file of {ref} at {_show(location)} has changed since it was written (checksum mismatch)."
            )
        return path

    # -- locations -----------------------------------------------------------------------------------

    def _local_path(self, path: str) -> Path | None:
        """Where a record's ``path`` is, for a local root and a plain relative (or absolute) path; else None.

        Joined and normalized as `ResourcePath` joins them, without importing `lsst.resources`.
        """
        if self._local_root is None or not _is_plain(path):
            return None
        return Path(os.path.normpath(os.path.join(self._local_root, path)))

    def _location(self, record: DatastoreRecord) -> Path | ResourcePath:
        """The local path of a record's file when `_local_path` knows it, else its URI."""
        local = self._local_path(record.path)
        return local if local is not None else self._uri(record)

    def _inside_root(self, location: Path | ResourcePath) -> bool:
        if isinstance(location, Path):
            return self._local_root is not None and str(location).startswith(
                os.path.join(str(self._local_root), "")
            )
        return location.relative_to(self.root) is not None

    def _uri(self, record: DatastoreRecord) -> ResourcePath:
        return _resource_path(record.path, root=self.root, forceAbsolute=True)

    def uris(self, records: Sequence[DatastoreRecord]) -> dict[str, ResourcePath]:
        """Component ("" for a single file) -> URI."""
        return {r.component: self._uri(r) for r in records}

    def artifacts_exist(self, records: Sequence[DatastoreRecord]) -> bool:
        """Whether every file exists."""
        return bool(records) and all(self._exists(r) for r in records)

    def _exists(self, record: DatastoreRecord) -> bool:
        return self._location(record).exists()

    def remove_artifacts(self, records: Sequence[DatastoreRecord]) -> None:
        """Delete files (only those inside the root; ``direct`` ingests belong to their owner)."""
        for record in records:
            location = self._location(record)
            if not self._inside_root(location):
                continue
            try:
                if isinstance(location, Path):
                    location.unlink()
                else:
                    location.remove()
            except FileNotFoundError:
                continue
            except OSError as err:
                raise DatastoreError(f"Cannot remove {_show(location)}: {err}") from err

    def checksum_of(self, uri: ResourcePath) -> str:
        """The checksum recorded for a local file, ``blake2b:<hex>``."""
        return _checksum(Path(uri.ospath))

    def relative_path(self, uri: ResourcePath) -> str | None:
        """``uri`` relative to the root, or None if it lies outside."""
        return uri.relative_to(self.root)


def _checksum(path: Path) -> str:
    digest = hashlib.blake2b(digest_size=32)
    with open(path, "rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return f"blake2b:{digest.hexdigest()}"
