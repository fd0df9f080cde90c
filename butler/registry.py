"""The SQL registry: one facade over dimensions, dataset types, datasets, collections and queries."""

from __future__ import annotations

import contextlib
import logging
import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa
import sqlalchemy as sa

from .bulk_queries import BulkQueries, DataIdRows
from .collections import ChainMode, CollectionManager, CollectionType
from .data_coordinate import DataCoordinate, DimensionRecord
from .database import Database, bulk_insert, chunked
from .dataset_records import DatasetRecordStorage
from .dataset_types import ComponentStorageClasses, DatasetTypeManager
from .datasets import DatasetIdGenerationMode, DatasetRef, DatasetType
from .dimension_records import DimensionRecordStorage
from .dimensions import DimensionUniverse
from .errors import (
    DataIdValueError,
    OrphanedRecordError,
    RepositoryExistsError,
    RepositoryNotFoundError,
    UniverseMismatchError,
)
from .registry_queries import RegistryQueries
from .schema import SCHEMA_VERSION, RegistryTables
from .timespan import Timespan
from .timing import log_duration

__all__ = ["DatastoreRecord", "Registry"]

_LOG = logging.getLogger(__name__)

_RECORD_DEFAULTS: dict[str, Any] = {"component": "", "checksum": None, "file_size": None}
"""Datastore-record columns a row may leave out."""

DatastoreRecord = dict[str, Any]
"""A row of the datastore-record table: dataset_id, datastore_name, component, path, formatter,
storage_class, checksum, file_size."""


class Registry:
    """The database of a data repository: what exists (datasets, dimension records) and where to search.

    Open one with `Registry.create` (new repository) or `Registry.open`; every bulk method runs in
    one transaction, and `transaction` groups several calls into one.
    """

    def __init__(
        self,
        db: Database,
        tables: RegistryTables,
        component_storage_classes: ComponentStorageClasses | None = None,
    ) -> None:
        self._db = db
        self._tables = tables
        self.universe: DimensionUniverse = tables.universe
        self._collections = CollectionManager(db, tables)
        self._types = DatasetTypeManager(db, tables, component_storage_classes)
        self._records = DimensionRecordStorage(db, tables)
        self._datasets = DatasetRecordStorage(db, tables, self._collections, self._types, self._records)
        self._queries = RegistryQueries(db, tables, self._collections, self._types, self._records)
        self._bulk = BulkQueries(db, tables, self._collections, self._types)

    # -- opening -----------------------------------------------------------------------------

    @classmethod
    def create(
        cls, url: str, *, namespace: str | None = None, universe: DimensionUniverse | None = None
    ) -> Registry:
        """Create the schema of a new registry in database ``url``.

        Raises `RepositoryExistsError` if a registry already lives there; nothing is changed then.
        """
        universe = universe or DimensionUniverse.default()
        db = Database(url)
        tables = RegistryTables(universe, sa.MetaData(schema=namespace))
        try:
            with db.transaction() as conn:
                if namespace is not None and db.dialect == "postgresql":
                    conn.execute(sa.schema.CreateSchema(namespace, if_not_exists=True))
                if sa.inspect(conn).has_table(tables.attributes.name, schema=namespace):
                    raise RepositoryExistsError(
                        f"A registry already exists in {_where(db, namespace)}; refusing to overwrite it."
                    )
                tables.metadata.create_all(conn, tables=tables.static_tables)
                conn.execute(
                    sa.insert(tables.attributes),
                    [
                        {"name": "universe_name", "value": universe.name},
                        {"name": "universe_version", "value": str(universe.version)},
                        {"name": "schema_version", "value": str(SCHEMA_VERSION)},
                    ],
                )
        except BaseException:
            db.close()
            raise
        _LOG.info(
            "Created registry in %s with universe %s v%d.",
            _where(db, namespace),
            universe.name,
            universe.version,
        )
        return cls(db, tables)

    @classmethod
    def open(
        cls,
        url: str,
        *,
        namespace: str | None = None,
        universe: DimensionUniverse | None = None,
        component_storage_classes: ComponentStorageClasses | None = None,
    ) -> Registry:
        """Open an existing registry; refuses one made with an incompatible universe or schema."""
        universe = universe or DimensionUniverse.default()
        sqlite_path = sa.engine.make_url(url).database if url.startswith("sqlite") else None
        if sqlite_path and sqlite_path != ":memory:" and not Path(sqlite_path).is_file():
            raise RepositoryNotFoundError(
                f"No registry database file {sqlite_path}; create one with 'butler create'."
            )
        db = Database(url)
        tables = RegistryTables(universe, sa.MetaData(schema=namespace))
        try:
            _check_compatible(db, tables, namespace)
        except BaseException:
            db.close()
            raise
        return cls(db, tables, component_storage_classes)

    def close(self) -> None:
        """Release database connections."""
        self._db.close()

    def __enter__(self) -> Registry:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @property
    def db_url(self) -> str:
        """The database URL (password hidden)."""
        return self._db.engine.url.render_as_string(hide_password=True)

    @property
    def in_transaction(self) -> bool:
        """Whether a `transaction` block is open (what is written now may still be rolled back)."""
        return self._db.in_transaction

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        """Group calls into one transaction: all of them commit, or none do."""
        try:
            with self._db.transaction():
                yield
        except BaseException:
            self._collections.forget_cache()
            self._types.forget_cache()
            raise

    # -- dimensions ---------------------------------------------------------------------------

    def insert_dimension_records(
        self,
        element: str,
        records: Iterable[Mapping[str, Any] | DimensionRecord],
        *,
        skip_existing: bool = False,
    ) -> int:
        """Bulk-insert records of ``element``; returns how many were inserted. See `DimensionRecordStorage.insert`."""
        with self.transaction(), log_duration(_LOG, f"Inserted {element} records"):
            return self._records.insert(element, records, skip_existing=skip_existing)

    def sync_dimension_records(
        self, element: str, records: Iterable[Mapping[str, Any] | DimensionRecord]
    ) -> list[bool]:
        """Insert records idempotently; a conflicting record names the differing fields."""
        with self.transaction():
            return self._records.sync(element, records)

    def expand_data_id(
        self,
        data_id: Mapping[str, Any] | None = None,
        *,
        dimensions: Iterable[str] | None = None,
        **kwargs: Any,
    ) -> DataCoordinate:
        """Standardize a data ID and fill its implied values and records from the registry."""
        group = self.universe.group(dimensions) if dimensions is not None else None
        standardized = DataCoordinate.standardize(data_id, universe=self.universe, dimensions=group, **kwargs)
        expanded = self._records.expand(standardized)
        given = dict(data_id or {}) | kwargs
        for key, value in given.items():
            if key in expanded.dimensions.implied and expanded[key] != value:
                raise DataIdValueError(
                    f"Data ID gives {key}={value!r} but the registry's records say {expanded[key]!r} "
                    f"for {standardized}."
                )
        return expanded

    # -- dataset types --------------------------------------------------------------------------

    def register_dataset_type(self, dataset_type: DatasetType) -> bool:
        """Register a dataset type; False if an identical one exists, `ConflictingDefinitionError` if different."""
        with self.transaction():
            return self._types.register(dataset_type)

    def get_dataset_type(self, name: str) -> DatasetType:
        """The registered dataset type ``name`` (``parent.component`` for a component)."""
        return self._types.get(name)

    def remove_dataset_type(self, name: str) -> None:
        """Delete a dataset type that has no datasets."""
        with self.transaction():
            self._types.remove(name)

    def query_dataset_types(self, pattern: str | Sequence[str] = "*") -> list[DatasetType]:
        """Registered dataset types matching glob pattern(s)."""
        return self._types.query(pattern)

    # -- datasets ----------------------------------------------------------------------------------

    def insert_datasets(
        self,
        dataset_type: DatasetType | str,
        data_ids: Iterable[DataCoordinate | dict[str, Any]],
        run: str,
        id_generation_mode: DatasetIdGenerationMode = DatasetIdGenerationMode.UNIQUE,
    ) -> list[DatasetRef]:
        """Create datasets in RUN ``run`` in one transaction; returns their refs."""
        name = dataset_type if isinstance(dataset_type, str) else dataset_type.name
        with self.transaction(), log_duration(_LOG, f"Inserted {name} datasets into {run!r}"):
            return self._datasets.insert(dataset_type, run, data_ids, id_generation_mode)

    def import_datasets(self, refs: Iterable[DatasetRef]) -> list[DatasetRef]:
        """Store refs under their own UUIDs; already-present identical refs are skipped. Returns new ones."""
        with self.transaction(), log_duration(_LOG, "Imported datasets"):
            return self._datasets.import_refs(refs)

    def datasets_in_run(
        self, dataset_type: DatasetType, run: str, ids: Sequence[uuid.UUID] | None = None
    ) -> pa.Table:
        """The registered datasets of ``dataset_type`` in RUN ``run`` (only those among ``ids`` if given), columnar.

        Columns: ``dataset_id`` (binary16), then the type's required dimensions. The dataset type
        must be registered with this definition and ``run`` must be a RUN collection, as for
        `import_datasets`.
        """
        registered = self._datasets._registered(dataset_type)
        return self._bulk.datasets_in_run(registered, self._datasets._run(run), ids)

    def get_dataset(self, dataset_id: uuid.UUID | str) -> DatasetRef | None:
        """The ref of a dataset by UUID, or None if there is none."""
        return self._datasets.get(dataset_id if isinstance(dataset_id, uuid.UUID) else uuid.UUID(dataset_id))

    def remove_datasets(self, refs: Iterable[DatasetRef]) -> None:
        """Delete datasets from the registry and every collection (their files must be gone already)."""
        with self.transaction():
            self._datasets.remove([ref.id for ref in refs])

    def associate(self, tag: str, refs: Iterable[DatasetRef]) -> None:
        """Add datasets to a TAGGED collection."""
        with self.transaction():
            self._datasets.associate(tag, refs)

    def disassociate(self, tag: str, refs: Iterable[DatasetRef]) -> None:
        """Remove datasets from a TAGGED collection."""
        with self.transaction():
            self._datasets.disassociate(tag, refs)

    def certify(self, collection: str, refs: Iterable[DatasetRef], timespan: Timespan) -> None:
        """Make calibration datasets valid over ``timespan`` in a CALIBRATION collection."""
        with self.transaction():
            self._datasets.certify(collection, refs, timespan)

    def decertify(
        self,
        collection: str,
        dataset_type: DatasetType | str,
        timespan: Timespan,
        *,
        data_ids: Iterable[DataCoordinate] | None = None,
    ) -> int:
        """Remove validity within ``timespan`` (trimming or splitting ranges that cross it)."""
        with self.transaction():
            return self._datasets.decertify(collection, dataset_type, timespan, data_ids)

    # -- collections --------------------------------------------------------------------------------

    def register_collection(
        self, name: str, type: CollectionType = CollectionType.TAGGED, doc: str | None = None
    ) -> bool:
        """Create a collection; False if it exists with the same type."""
        with self.transaction():
            return self._collections.register(name, type, doc)

    def register_run(self, name: str, doc: str | None = None) -> bool:
        """Create a RUN collection; False if it exists."""
        return self.register_collection(name, CollectionType.RUN, doc)

    def has_collection(self, name: str) -> bool:
        """Whether a collection called ``name`` exists."""
        return self._collections.find(name) is not None

    def get_collection_type(self, name: str) -> CollectionType:
        """The type of collection ``name``."""
        return self._collections.get(name).type

    def get_collection_documentation(self, name: str) -> str | None:
        """The documentation string of a collection."""
        return self._collections.get(name).doc

    def set_collection_documentation(self, name: str, doc: str | None) -> None:
        """Replace the documentation string of a collection."""
        with self.transaction():
            self._collections.set_doc(name, doc)

    def get_collection_chain(self, parent: str) -> tuple[str, ...]:
        """Direct children of a CHAINED collection, in order."""
        return self._collections.get_chain(parent)

    def set_collection_chain(self, parent: str, children: Sequence[str], *, flatten: bool = False) -> None:
        """Replace a chain's children (refusing cycles)."""
        with self.transaction():
            self._collections.set_chain(parent, children, flatten)

    def update_collection_chain(
        self, parent: str, children: Sequence[str], mode: ChainMode
    ) -> tuple[str, ...]:
        """Redefine, extend, prepend, remove or pop children of a chain; returns the new children."""
        with self.transaction():
            return self._collections.update_chain(parent, children, mode)

    def get_collection_parent_chains(self, name: str) -> list[str]:
        """CHAINED collections listing ``name`` directly."""
        return self._collections.parents_of(name)

    def query_collections(
        self,
        pattern: str | Sequence[str] = "*",
        *,
        types: Iterable[CollectionType] | None = None,
        flatten_chains: bool = False,
        include_chains: bool = True,
    ) -> list[str]:
        """Collection names matching glob pattern(s), optionally of some types or with chains expanded."""
        return [r.name for r in self._collections.query(pattern, types, flatten_chains, include_chains)]

    def resolve_collections(self, collections: str | Sequence[str]) -> list[str]:
        """A search path with chains expanded into their children, in order."""
        return self._collections.resolve([collections] if isinstance(collections, str) else collections)

    def remove_collection(self, name: str, *, purge: bool = False) -> None:
        """Remove a collection; a RUN holding datasets needs ``purge`` (which deletes its datasets too).

        Datasets with datastore records (files) are never purged here; the Butler removes files first.
        """
        with self.transaction():
            record = self._collections.get(name)
            if record.type is CollectionType.RUN:
                count = self._datasets.count_in_run(record)
                if count and not purge:
                    raise OrphanedRecordError(
                        f"RUN collection {name!r} still holds {count} dataset(s); pass purge=True "
                        "(--purge) to delete them with it."
                    )
                if count:
                    self._datasets.remove(self._datasets.ids_in_run(record))
            self._collections.remove(name)

    # -- datastore records ------------------------------------------------------------------------------

    def insert_datastore_records(self, records: Iterable[DatastoreRecord]) -> None:
        """Store file-location rows owned by a datastore (keyed by dataset UUID).

        Complete rows keyed by `uuid.UUID` go in through `bulk_insert` (COPY on PostgreSQL);
        anything else through SQLAlchemy, which converts or rejects it.
        """
        table = self._tables.datastore_record
        columns = tuple(table.c.keys())
        complete = set(columns)
        rows = [{**_RECORD_DEFAULTS, **r} for r in records]
        with self.transaction(), self._db.transaction() as conn:
            if all(row.keys() == complete and isinstance(row["dataset_id"], uuid.UUID) for row in rows):
                for chunk in chunked(rows):
                    bulk_insert(conn, table, columns, [tuple(row[c] for c in columns) for row in chunk])
                return
            for chunk in chunked(rows):
                conn.execute(sa.insert(table), chunk)

    def fetch_datastore_records(
        self, datastore_name: str, dataset_ids: Iterable[uuid.UUID]
    ) -> list[DatastoreRecord]:
        """Rows of ``datastore_name`` for the given datasets."""
        table = self._tables.datastore_record
        found: list[DatastoreRecord] = []
        with self._db.transaction() as conn:
            for chunk in chunked(list(dataset_ids), 1000):
                rows = conn.execute(
                    sa.select(table).where(
                        table.c.datastore_name == datastore_name, table.c.dataset_id.in_(chunk)
                    )
                ).mappings()
                found.extend(dict(r) for r in rows)
        return found

    def all_datastore_records(self, datastore_name: str) -> list[DatastoreRecord]:
        """Every row of ``datastore_name``."""
        table = self._tables.datastore_record
        with self._db.transaction() as conn:
            rows = conn.execute(sa.select(table).where(table.c.datastore_name == datastore_name)).mappings()
            return [dict(r) for r in rows]

    def trash_datastore_records(self, datastore_name: str, dataset_ids: Iterable[uuid.UUID]) -> None:
        """Move rows of ``datastore_name`` for the given datasets to the trash (see `empty_trash`)."""
        records, trash = self._tables.datastore_record, self._tables.datastore_trash
        with self.transaction(), self._db.transaction() as conn:
            for chunk in chunked(list(dataset_ids), 1000):
                condition = sa.and_(
                    records.c.datastore_name == datastore_name, records.c.dataset_id.in_(chunk)
                )
                conn.execute(
                    sa.insert(trash).from_select(list(records.c.keys()), sa.select(records).where(condition))
                )
                conn.execute(sa.delete(records).where(condition))

    def trashed_datastore_records(self, datastore_name: str) -> list[DatastoreRecord]:
        """Rows of ``datastore_name`` waiting in the trash."""
        table = self._tables.datastore_trash
        with self._db.transaction() as conn:
            rows = conn.execute(sa.select(table).where(table.c.datastore_name == datastore_name)).mappings()
            return [dict(r) for r in rows]

    def forget_trashed_records(self, datastore_name: str, dataset_ids: Iterable[uuid.UUID]) -> None:
        """Drop trash rows once their files are gone."""
        table = self._tables.datastore_trash
        with self.transaction(), self._db.transaction() as conn:
            for chunk in chunked(list(dataset_ids), 1000):
                conn.execute(
                    sa.delete(table).where(
                        table.c.datastore_name == datastore_name, table.c.dataset_id.in_(chunk)
                    )
                )

    def delete_datastore_records(self, datastore_name: str, dataset_ids: Iterable[uuid.UUID]) -> None:
        """Remove rows of ``datastore_name`` for the given datasets."""
        table = self._tables.datastore_record
        with self.transaction(), self._db.transaction() as conn:
            for chunk in chunked(list(dataset_ids), 1000):
                conn.execute(
                    sa.delete(table).where(
                        table.c.datastore_name == datastore_name, table.c.dataset_id.in_(chunk)
                    )
                )

    # -- queries -------------------------------------------------------------------------------------------

    def query_datasets(
        self,
        dataset_type: DatasetType | str,
        collections: str | Sequence[str],
        *,
        where: str = "",
        bind: Mapping[str, Any] | None = None,
        data_id: Mapping[str, Any] | None = None,
        find_first: bool = True,
    ) -> list[DatasetRef]:
        """Datasets of one type in ``collections`` (searched in order) matching ``where``; see `RegistryQueries`."""
        name = dataset_type if isinstance(dataset_type, str) else dataset_type.name
        with log_duration(_LOG, f"Queried {name} datasets", logging.DEBUG):
            return self._queries.datasets(dataset_type, collections, where, bind, data_id, find_first)

    def query_data_ids(
        self,
        dimensions: Iterable[str],
        *,
        datasets: Iterable[str] | str | None = None,
        collections: str | Sequence[str] | None = None,
        where: str = "",
        bind: Mapping[str, Any] | None = None,
        data_id: Mapping[str, Any] | None = None,
    ) -> list[DataCoordinate]:
        """Data IDs of ``dimensions`` satisfying the WHERE expression and dataset existence constraints."""
        return self._queries.data_ids(dimensions, datasets, collections, where, bind, data_id)

    def query_dimension_records(
        self,
        element: str,
        *,
        where: str = "",
        bind: Mapping[str, Any] | None = None,
        data_id: Mapping[str, Any] | None = None,
    ) -> list[DimensionRecord]:
        """Records of a dimension element satisfying the WHERE expression, sorted by key."""
        return self._queries.dimension_records(element, where, bind, data_id)

    def materialize_data_ids(
        self,
        dimensions: Iterable[str],
        *,
        datasets: Sequence[str] = (),
        collections: Sequence[str] = (),
        where: str = "",
        bind: Mapping[str, Any] | None = None,
        data_id: Mapping[str, Any] | None = None,
    ) -> contextlib.AbstractContextManager[DataIdRows]:
        """Run a data-ID query into a temporary table for columnar bulk lookups; see `BulkQueries.materialize`.

        Use as ``with registry.materialize_data_ids(...) as rows:``; ``rows.table()`` is a pyarrow
        table and ``rows.find_datasets`` / ``rows.find_calibrations`` look datasets up against it.
        """
        return self._bulk.materialize(
            dimensions, datasets=datasets, collections=collections, where=where, bind=bind, data_id=data_id
        )

    def explain_empty_data_ids(
        self,
        dimensions: Iterable[str],
        *,
        datasets: Sequence[str] = (),
        collections: Sequence[str] = (),
        where: str = "",
        bind: Mapping[str, Any] | None = None,
        data_id: Mapping[str, Any] | None = None,
    ) -> list[str]:
        """Which constraints of an empty `materialize_data_ids` query leave nothing, one message each."""
        return self._bulk.explain_empty(
            dimensions, datasets=datasets, collections=collections, where=where, bind=bind, data_id=data_id
        )


def _where(db: Database, namespace: str | None) -> str:
    """The database (password hidden) and namespace, for messages."""
    url = db.engine.url.render_as_string(hide_password=True)
    return f"{url} (namespace {namespace})" if namespace else url


def _check_compatible(db: Database, tables: RegistryTables, namespace: str | None) -> None:
    """Refuse a registry that is missing or was made with another universe or schema version."""
    universe = tables.universe
    with db.transaction() as conn:
        if not sa.inspect(conn).has_table(tables.attributes.name, schema=namespace):
            raise RepositoryNotFoundError(
                f"No registry found in {_where(db, namespace)}; create one with 'butler create'."
            )
        attributes = dict(conn.execute(sa.select(tables.attributes.c.name, tables.attributes.c.value)).all())
    name, version = attributes.get("universe_name", "?"), int(attributes.get("universe_version", -1))
    if not universe.is_compatible_with(name, version):
        raise UniverseMismatchError(
            f"Registry was created with dimension universe {name} v{version}; this software uses "
            f"{universe.name} v{universe.version}, which cannot read it."
        )
    if int(attributes.get("schema_version", -1)) != SCHEMA_VERSION:
        raise UniverseMismatchError(
            f"Registry schema version {attributes.get('schema_version')} is not {SCHEMA_VERSION}, "
            "the version this software reads."
        )
