"""Bulk, columnar registry queries for the quantum-graph builder: a materialized data-ID table and lookups joined to it.

`BulkQueries.materialize` runs one data-ID query (dimensions, WHERE expression, dataset-existence
constraints) into a temporary table and hands back a `DataIdRows` object while the connection is
held. Its rows come back as a pyarrow table (never one Python object per data ID), and follow-up
lookups (find-first dataset searches, calibration lookups by validity range, datastore records)
are joined to the temporary table in SQL, one statement per dataset type.
"""

from __future__ import annotations

import contextlib
import logging
import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import sqlalchemy as sa

from .bulk_calibrations import find_calibrations
from .bulk_fetch import (
    RECORD_SCHEMA,
    UUID_TYPE,
    DatasetLookup,
    arrow_type,
    empty_table,
    fetch_table,
    hex_to_uuid_array,
)
from .collections import CollectionManager, CollectionRecord, CollectionType
from .database import Database, chunked
from .dataset_sources import dataset_source, search_path
from .dataset_types import DatasetTypeManager, RegisteredDatasetType
from .dimensions import DimensionGroup
from .errors import InvalidQueryError
from .queries import QueryPlan, Source, ordered_case
from .schema import RegistryTables, key_column

__all__ = ["RECORD_SCHEMA", "BulkQueries", "DataIdRows", "DatasetLookup", "ids_from_hex"]

_LOG = logging.getLogger(__name__)

_RECORD_FIELDS = RECORD_SCHEMA.names[1:]


def ids_from_hex(values: Sequence[str]) -> pa.FixedSizeBinaryArray:
    """UUIDs given as 32 hex digits (dashes allowed) as a binary(16) arrow array, converted in one go."""
    return hex_to_uuid_array(pa.array(values, pa.string()))


def _distinct_datasets(datasets: pa.Table, records: pa.Table) -> pa.Table:
    """``datasets`` without the repeats a dataset with several datastore records brings in the join."""
    if records.num_rows < 2 or pc.count_distinct(records.column("dataset_id")).as_py() == records.num_rows:
        return datasets
    names = datasets.column_names
    return datasets.group_by(names, use_threads=False).aggregate([]).select(names)


class DataIdRows:
    """A data-ID query result held in a temporary table on an open connection (see `BulkQueries.materialize`)."""

    def __init__(
        self,
        owner: BulkQueries,
        conn: sa.Connection,
        dimensions: DimensionGroup,
        table: sa.Table,
    ) -> None:
        self.owner = owner
        """The queries object that made the rows."""
        self.connection = conn
        """The open connection holding the temporary table."""
        self.dimensions = dimensions
        """Dimensions of the rows (columns: ``dimensions.data_id_keys``)."""
        self._table = table
        self._arrow: pa.Table | None = None

    def table(self) -> pa.Table:
        """The rows as a pyarrow table: one column per required then implied dimension (int64 or string)."""
        if self._arrow is None:
            keys = self.dimensions.data_id_keys
            statement = sa.select(*(self._table.c[k] for k in keys))
            universe = self.dimensions.universe
            schema = pa.schema([(k, arrow_type(universe, k)) for k in keys])
            self._arrow = fetch_table(self.connection, statement, schema, table=self._table.name)
        return self._arrow

    def __len__(self) -> int:
        return int(self.table().num_rows)

    def distinct(self, keys: Sequence[str]) -> sa.Subquery:
        """A subquery of the distinct values of ``keys`` in the rows."""
        return sa.select(*(self._table.c[k] for k in keys)).distinct().subquery("wanted")

    def check_keys(self, name: str, keys: Iterable[str]) -> None:
        """Refuse to look ``name`` up by dimensions the rows do not have."""
        missing = [k for k in keys if k not in self.dimensions.names]
        if missing:
            raise InvalidQueryError(
                f"Cannot look {name} up against data IDs of {self.dimensions}: they lack {', '.join(missing)}."
            )

    def find_datasets(
        self,
        dataset_type: str,
        collections: Sequence[str],
        *,
        find_first: bool = True,
        with_records: bool = True,
    ) -> DatasetLookup:
        """Datasets of ``dataset_type`` in ``collections`` whose data IDs appear in the rows.

        With ``find_first`` each data ID gives the dataset of the first collection holding one (RUN
        and TAGGED collections; CALIBRATION collections need `find_calibrations`).
        """
        registered = self.owner.types.get_registered(dataset_type)
        keys = registered.dataset_type.dimensions.required
        self.check_keys(dataset_type, keys)
        search = [
            c
            for c in self.owner.search_path(collections)
            if c.type in (CollectionType.RUN, CollectionType.TAGGED)
        ]
        source = self.owner.dataset_source(registered, search, with_calibrations=False)
        if source is None:
            return self.owner.empty_lookup(keys)
        wanted = self.distinct(keys) if keys else None
        condition = (
            sa.and_(sa.true(), *(source.c[k] == wanted.c[k] for k in keys)) if wanted is not None else None
        )
        rank_partition = [source.c[k] for k in keys]
        return self.owner.run_lookup(
            self.connection,
            source,
            wanted,
            condition,
            search=search,
            key_columns=[(k, source.c[k]) for k in keys],
            partition=rank_partition,
            order=[ordered_case(source.c.collection_id, [c.id for c in search])],
            find_first=find_first and len(search) > 1,
            with_records=with_records,
        )

    def find_calibrations(
        self,
        dataset_type: str,
        collections: Sequence[str],
        temporal: str,
        *,
        with_records: bool = True,
    ) -> DatasetLookup:
        """The calibration dataset valid at each ``temporal`` element's timespan (e.g. ``exposure``).

        Searches CALIBRATION collections by validity range (RUN and TAGGED ones match any time), the
        first collection with a valid dataset winning. The result has one row per (dataset data ID,
        temporal element) pair found, keyed by the dataset type's required dimensions plus the
        temporal element's key columns.
        """
        return find_calibrations(self, dataset_type, collections, temporal, with_records)


class BulkQueries:
    """Columnar bulk queries over the registry tables (the quantum-graph builder's access path)."""

    def __init__(
        self, db: Database, tables: RegistryTables, collections: CollectionManager, types: DatasetTypeManager
    ) -> None:
        self.db = db
        self.tables = tables
        self.collections = collections
        self.types = types

    # -- pieces shared with DataIdRows ----------------------------------------------------------

    def search_path(self, collections: str | Sequence[str]) -> list[CollectionRecord]:
        """Collection records of a search path, chains flattened (`MissingCollectionError` if unknown)."""
        return search_path(self.collections, collections)

    def dataset_source(
        self, registered: RegisteredDatasetType, search: Sequence[CollectionRecord], with_calibrations: bool
    ) -> sa.Subquery | None:
        """(dataset_id, collection_id, data ID columns, timespan) rows of one dataset type in ``search``."""
        return dataset_source(registered, search, with_calibrations)

    def empty_lookup(self, keys: Sequence[str]) -> DatasetLookup:
        """A lookup result with no rows."""
        universe = self.tables.universe
        fields = [("dataset_id", UUID_TYPE), ("run", pa.string())]
        fields += [(k, arrow_type(universe, k)) for k in keys]
        return DatasetLookup(empty_table(pa.schema(fields)), empty_table(RECORD_SCHEMA))

    def id_text(self, column: sa.ColumnElement[Any]) -> sa.ColumnElement[Any]:
        """A UUID column as text (hex digits, with or without dashes)."""
        if self.db.dialect == "sqlite":
            return sa.type_coerce(column, sa.String())
        return sa.cast(column, sa.String())

    def run_lookup(
        self,
        conn: sa.Connection,
        source: sa.Subquery,
        wanted: sa.FromClause | None,
        condition: sa.ColumnElement[bool] | None,
        *,
        search: Sequence[CollectionRecord],
        key_columns: Sequence[tuple[str, sa.ColumnElement[Any]]],
        partition: Sequence[sa.ColumnElement[Any]],
        order: Sequence[sa.ColumnElement[Any]],
        find_first: bool,
        with_records: bool,
    ) -> DatasetLookup:
        """Run one lookup statement (datasets with their records) and return columnar results."""
        universe = self.tables.universe
        from_clause: sa.FromClause = source
        if wanted is not None and condition is not None:
            from_clause = source.join(wanted, condition)
        columns: list[sa.ColumnElement[Any]] = [
            source.c.dataset_id.label("dataset_id"),
            source.c.collection_id.label("collection_id"),
            *(column.label(name) for name, column in key_columns),
        ]
        if find_first:
            number = sa.func.row_number().over(partition_by=list(partition), order_by=list(order))
            inner = (
                sa.select(*columns, number.label("search_rank")).select_from(from_clause).subquery("ranked")
            )
            found = (
                sa.select(*(inner.c[c.name] for c in columns))
                .where(inner.c.search_rank == 1)
                .subquery("found")
            )
        else:
            # Membership rows are unique per (collection, dataset) and ``wanted`` is distinct already.
            found = sa.select(*columns).select_from(from_clause).subquery("found")
        joined: sa.FromClause = found
        if all(c.type is CollectionType.RUN for c in search):
            run_column: sa.ColumnElement[Any] = found.c.collection_id
        else:
            dataset = self.tables.dataset
            joined = joined.join(dataset, dataset.c.dataset_id == found.c.dataset_id)
            run_column = dataset.c.run_id
        selected = [
            self.id_text(found.c.dataset_id),
            run_column,
            *(found.c[name] for name, _ in key_columns),
        ]
        fields = [("dataset_id", UUID_TYPE), ("run", pa.int64())]
        fields += [(name, arrow_type(universe, name)) for name, _ in key_columns]
        if with_records:
            record_table = self.tables.datastore_record
            joined = joined.outerjoin(record_table, record_table.c.dataset_id == found.c.dataset_id)
            selected += [record_table.c[f] for f in _RECORD_FIELDS]
            fields += [(f"record_{f}", RECORD_SCHEMA.field(f).type) for f in _RECORD_FIELDS]
        table = fetch_table(conn, sa.select(*selected).select_from(joined), pa.schema(fields))
        run_ids = table.column("run").to_numpy()
        unique_runs, positions = np.unique(run_ids, return_inverse=True)
        names = pa.array([self.collections.get_by_id(int(r)).name for r in unique_runs], pa.string())
        table = table.set_column(1, "run", names.take(pa.array(positions.astype(np.int64))))
        datasets = table.select(["dataset_id", "run", *(name for name, _ in key_columns)])
        records = empty_table(RECORD_SCHEMA)
        if with_records:
            located = table.filter(pc.is_valid(table.column("record_datastore_name")))
            records = pa.Table.from_arrays(
                [located.column("dataset_id"), *(located.column(f"record_{f}") for f in _RECORD_FIELDS)],
                schema=RECORD_SCHEMA,
            )
            datasets = _distinct_datasets(datasets, records)
        return DatasetLookup(datasets, records)

    def datasets_in_run(
        self,
        registered: RegisteredDatasetType,
        run: CollectionRecord,
        ids: Sequence[uuid.UUID] | None = None,
    ) -> pa.Table:
        """The datasets of one type in RUN ``run``: ``dataset_id`` (binary16), then the required data ID columns.

        With ``ids``, only those among them (looked up 1,000 at a time); otherwise every one, in one
        statement (what a merge uses to skip what is registered already).
        """
        tags = registered.tables.tags
        keys = registered.dataset_type.dimensions.required
        universe = self.tables.universe
        schema = pa.schema([("dataset_id", UUID_TYPE), *((k, arrow_type(universe, k)) for k in keys)])
        statement = sa.select(self.id_text(tags.c.dataset_id), *(tags.c[k] for k in keys)).where(
            tags.c.dataset_type_id == registered.id, tags.c.collection_id == run.id
        )
        with self.db.transaction() as conn:
            if ids is None:
                return fetch_table(conn, statement, schema)
            parts = [
                fetch_table(conn, statement.where(tags.c.dataset_id.in_(self.id_parameters(chunk))), schema)
                for chunk in chunked(ids, 1000)
            ]
        return pa.concat_tables(parts) if parts else empty_table(schema)

    def id_parameters(self, ids: Iterable[uuid.UUID]) -> list[Any]:
        """UUIDs as the database stores them, for statements run by `fetch_table` (which binds as given)."""
        if self.db.dialect == "sqlite":
            return [i.hex for i in ids]  # SQLAlchemy's Uuid type: 32 hex digits without a native UUID type
        return list(ids)

    # -- entry points ----------------------------------------------------------------------------

    def _plan(
        self,
        dimensions: DimensionGroup,
        datasets: Sequence[str],
        collections: Sequence[str],
        where: str,
        bind: Mapping[str, Any] | None,
        data_id: Mapping[str, Any] | None,
    ) -> QueryPlan | None:
        registered = [self.types.get_registered(n) for n in datasets]
        names = set(dimensions.names)
        for entry in registered:
            names.update(entry.dataset_type.dimensions.names)
        plan = QueryPlan.build(self.tables, names, where, bind, data_id)
        if registered:
            search = self.search_path(collections)
            for entry in registered:
                source = self.dataset_source(entry, search, with_calibrations=True)
                if source is None:
                    return None
                plan.add_source(
                    Source(source, {k: source.c[k] for k in entry.dataset_type.dimensions.required})
                )
        plan.needed.update(dimensions.data_id_keys)
        return plan

    @contextlib.contextmanager
    def materialize(
        self,
        dimensions: Iterable[str],
        *,
        datasets: Sequence[str] = (),
        collections: Sequence[str] = (),
        where: str = "",
        bind: Mapping[str, Any] | None = None,
        data_id: Mapping[str, Any] | None = None,
    ) -> Iterator[DataIdRows]:
        """Run a data-ID query into a temporary table and yield it for follow-up lookups.

        The rows are the distinct data IDs (required and implied values) of ``dimensions`` that
        satisfy ``where``/``bind``/``data_id``, for which every dataset type in ``datasets`` has a
        dataset in ``collections``. The connection stays open (in one transaction) until the block ends.
        """
        group = self.tables.universe.group(dimensions)
        with self.db.transaction() as conn:
            if self.db.dialect == "sqlite":
                # SQLite plans joins from table statistics; without them (or with stale ones, after a
                # bulk ingest) it may scan a dataset table once per row of another: minutes instead of
                # seconds. An approximate ANALYZE costs milliseconds.
                conn.exec_driver_sql("PRAGMA analysis_limit=1000")
                conn.exec_driver_sql("ANALYZE")
            plan = self._plan(group, datasets, collections, where, bind, data_id)
            name = f"qg_rows_{uuid.uuid4().hex[:12]}"
            columns = [key_column(self.tables.universe, k, nullable=True) for k in group.data_id_keys]
            table = sa.Table(name, sa.MetaData(), *columns, prefixes=["TEMPORARY"])
            table.create(conn)
            try:
                if plan is not None:
                    statement = plan.select_dimensions(group.data_id_keys)
                    conn.execute(sa.insert(table).from_select(list(group.data_id_keys), statement))
                yield DataIdRows(self, conn, group, table)
            finally:
                table.drop(conn)

    def explain_empty(
        self,
        dimensions: Iterable[str],
        *,
        datasets: Sequence[str] = (),
        collections: Sequence[str] = (),
        where: str = "",
        bind: Mapping[str, Any] | None = None,
        data_id: Mapping[str, Any] | None = None,
    ) -> list[str]:
        """Why a `materialize` with these arguments finds nothing: one message per constraint that alone leaves nothing.

        Runs a handful of ``EXISTS``-style queries (only call it on the failure path).
        """
        group = self.tables.universe.group(dimensions)
        reasons: list[str] = []
        search_names = list(collections)
        with self.db.transaction() as conn:
            for name in datasets:
                if not self._exists(
                    conn, self._plan(self.tables.universe.empty, [name], collections, "", None, None)
                ):
                    reasons.append(f"no {name} datasets in collections {search_names}")
            if reasons:
                return reasons
            if where or data_id:
                where_plan = QueryPlan.build(self.tables, (), where, bind, data_id)
                if where_plan.dimensions.names and not self._exists(conn, where_plan):
                    reasons.append(f"the data query {where!r} matches no dimension records")
                    return reasons
            if not self._exists(conn, self._plan(group, [], collections, where, bind, data_id)):
                constraint = f" matching {where!r}" if where else ""
                reasons.append(
                    f"no data IDs of dimensions {group}{constraint} are related "
                    "(e.g. no visit/detector overlaps a patch, or no visit definitions)"
                )
                return reasons
            for name in datasets:
                plan = self._plan(group, [name], collections, where, bind, data_id)
                if not self._exists(conn, plan):
                    reasons.append(
                        f"no {name} datasets in collections {search_names} have data IDs of {group}"
                        + (f" matching {where!r}" if where else "")
                    )
            if not reasons:
                reasons.append(
                    "each input alone has matching data IDs, but no data ID has all of "
                    f"{', '.join(datasets)} in {search_names}"
                )
        return reasons

    @staticmethod
    def _exists(conn: sa.Connection, plan: QueryPlan | None) -> bool:
        if plan is None:
            return False
        if not plan.dimensions.names and not plan.sources:
            return True
        statement = plan.select(sa.literal(1), distinct=False).limit(1)
        return conn.execute(statement).first() is not None
