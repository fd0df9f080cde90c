"""Answering the registry's queries: datasets (find-first through collections), data IDs, dimension records."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import sqlalchemy as sa

from .collections import CollectionManager, CollectionRecord, CollectionType
from .data_coordinate import DataCoordinate, DimensionRecord
from .database import Database
from .dataset_sources import dataset_source, search_path
from .dataset_types import DatasetTypeManager, RegisteredDatasetType
from .datasets import DatasetRef, DatasetType
from .dimension_records import DimensionRecordStorage
from .errors import InvalidQueryError
from .queries import QueryPlan, Source, ordered_case
from .schema import RegistryTables

__all__ = ["RegistryQueries"]


class RegistryQueries:
    """Runs dataset, data ID and dimension-record queries as a few SQL statements each."""

    def __init__(
        self,
        db: Database,
        tables: RegistryTables,
        collections: CollectionManager,
        types: DatasetTypeManager,
        records: DimensionRecordStorage,
    ) -> None:
        self._db = db
        self._tables = tables
        self._collections = collections
        self._types = types
        self._records = records

    def _search_path(self, collections: str | Sequence[str]) -> list[CollectionRecord]:
        return search_path(self._collections, collections)

    def _dataset_source(
        self, registered: RegisteredDatasetType, search: Sequence[CollectionRecord], with_calibrations: bool
    ) -> sa.Subquery | None:
        return dataset_source(registered, search, with_calibrations)

    # -- datasets ----------------------------------------------------------------------------

    def datasets(
        self,
        dataset_type: DatasetType | str,
        collections: str | Sequence[str],
        where: str = "",
        bind: Mapping[str, Any] | None = None,
        data_id: Mapping[str, Any] | None = None,
        find_first: bool = True,
    ) -> list[DatasetRef]:
        """Refs of ``dataset_type`` in ``collections`` (searched in order) matching the constraints.

        With ``find_first``, each data ID yields the dataset from the first collection that has one;
        calibration lookups then need a temporal dimension (``exposure``) in ``data_id`` or ``where``.
        """
        name = dataset_type if isinstance(dataset_type, str) else dataset_type.name
        registered = self._types.get_registered(name)
        result_type = self._types.get(name)
        parent = registered.dataset_type
        search = self._search_path(collections)
        source = self._dataset_source(registered, search, parent.is_calibration)
        if source is None:
            return []
        keys = parent.dimensions.required
        plan = QueryPlan.build(self._tables, parent.dimensions.names, where, bind, data_id)
        plan.add_source(Source(source, {k: source.c[k] for k in keys}))
        has_calibs = parent.is_calibration and any(c.type is CollectionType.CALIBRATION for c in search)
        temporal = self._temporal_dimension(plan, parent) if has_calibs else None
        if temporal is not None:
            plan.needed_elements.add(temporal)
            span = plan.element_source(temporal).selectable
            plan.constraints.append(
                _overlaps(
                    source.c.timespan_begin, source.c.timespan_end, span.c.timespan_begin, span.c.timespan_end
                )
            )
        elif has_calibs and find_first:
            raise InvalidQueryError(
                f"A find-first search for calibration dataset {name!r} through CALIBRATION collection(s) "
                "needs a time: constrain a temporal dimension such as exposure in the data ID or WHERE "
                "expression, or pass find_first=False to list every validity range."
            )
        # On SQLite, read UUIDs as their stored hex text and convert them in bulk below: SQLAlchemy's
        # per-value Uuid processing costs more than the SQL itself for large results.
        hex_ids = self._db.dialect == "sqlite"
        id_column: sa.ColumnElement[Any] = (
            sa.type_coerce(source.c.dataset_id, sa.String()).label("dataset_id")
            if hex_ids
            else source.c.dataset_id
        )
        columns: list[sa.ColumnElement[Any]] = [
            id_column,
            source.c.collection_id,
            *(source.c[k] for k in keys),
        ]
        if find_first and len(search) > 1:
            rank = ordered_case(source.c.collection_id, [c.id for c in search])
            partition = [source.c[k] for k in keys]
            if temporal is not None:
                partition.append(plan.element_source(temporal).selectable.c[temporal])
            number = sa.func.row_number().over(partition_by=partition, order_by=rank).label("search_rank")
            inner = plan.select(*columns, number, distinct=False).subquery("ranked")
            statement = sa.select(*(inner.c[c.name] for c in columns)).where(inner.c.search_rank == 1)
        else:
            statement = plan.select(*columns, distinct=False)
        run_of = self._run_lookup(search, registered)
        dimensions = parent.dimensions
        refs: dict[Any, DatasetRef] = {}
        names = {c.id: c.name for c in search}
        with self._db.transaction() as conn:
            rows = conn.execute(statement).all()
            ids = [_uuid_from_hex(row[0]) for row in rows] if hex_ids else [row[0] for row in rows]
            runs = run_of(conn, ids)
        for dataset_id, row in zip(ids, rows, strict=True):
            if dataset_id not in refs:
                data_id_values = DataCoordinate.from_required_values(dimensions, tuple(row[2:]))
                refs[dataset_id] = DatasetRef(
                    result_type,
                    data_id_values,
                    runs.get(dataset_id) or names[row[1]],
                    dataset_id,
                )
        return list(refs.values())

    def _temporal_dimension(self, plan: QueryPlan, parent: DatasetType) -> str | None:
        universe = self._tables.universe
        for name in ("exposure", "visit", "day_obs"):
            if name in plan.dimensions and name not in parent.dimensions and universe[name].has_timespan:
                return name
        return None

    def _run_lookup(self, search: Sequence[CollectionRecord], registered: RegisteredDatasetType) -> Any:
        """A function giving dataset ID -> run name where the collection row is not the run itself."""
        if all(c.type is CollectionType.RUN for c in search):
            return lambda conn, ids: {}
        dataset = self._tables.dataset

        def lookup(conn: sa.Connection, ids: list[Any]) -> dict[Any, str]:
            found: dict[Any, str] = {}
            for start in range(0, len(ids), 1000):
                chunk = ids[start : start + 1000]
                for row in conn.execute(
                    sa.select(dataset.c.dataset_id, dataset.c.run_id).where(dataset.c.dataset_id.in_(chunk))
                ):
                    found[row.dataset_id] = self._collections.get_by_id(row.run_id).name
            return found

        return lookup

    # -- data IDs and records ----------------------------------------------------------------

    def data_ids(
        self,
        dimensions: Iterable[str],
        datasets: Iterable[str] | str | None = None,
        collections: str | Sequence[str] | None = None,
        where: str = "",
        bind: Mapping[str, Any] | None = None,
        data_id: Mapping[str, Any] | None = None,
    ) -> list[DataCoordinate]:
        """Data IDs (with implied values) of ``dimensions`` that satisfy the constraints.

        ``datasets`` restricts them to data IDs for which each named dataset type has a dataset in
        ``collections``.
        """
        universe = self._tables.universe
        result_group = universe.group(dimensions)
        dataset_names = [datasets] if isinstance(datasets, str) else list(datasets or [])
        registered = [self._types.get_registered(n) for n in dataset_names]
        names = set(result_group.names)
        for entry in registered:
            names.update(entry.dataset_type.dimensions.names)
        plan = QueryPlan.build(self._tables, names, where, bind, data_id)
        if registered:
            if collections is None:
                raise InvalidQueryError("Constraining data IDs by datasets needs collections to search.")
            search = self._search_path(collections)
            for entry in registered:
                source = self._dataset_source(entry, search, with_calibrations=True)
                if source is None:
                    return []
                plan.add_source(
                    Source(source, {k: source.c[k] for k in entry.dataset_type.dimensions.required})
                )
        keys = result_group.data_id_keys
        plan.needed.update(keys)
        statement = plan.select_dimensions(keys)
        with self._db.transaction() as conn:
            rows = conn.execute(statement).all()
        return [DataCoordinate.from_full_values(result_group, tuple(row)) for row in rows]

    def dimension_records(
        self,
        element_name: str,
        where: str = "",
        bind: Mapping[str, Any] | None = None,
        data_id: Mapping[str, Any] | None = None,
    ) -> list[DimensionRecord]:
        """Records of ``element_name`` that satisfy the constraints."""
        element = self._tables.universe[element_name]
        names = [element.name] if element.is_dimension else list(element.required_dimensions)
        plan = QueryPlan.build(self._tables, names, where, bind, data_id)
        plan.needed_elements.add(element.name)
        table = plan.element_source(element.name).selectable
        keys = [table.c[c] for c in element.key_columns]
        statement = plan.select(*table.c, distinct=False).order_by(*keys)
        with self._db.transaction() as conn:
            rows = conn.execute(statement).mappings().all()
        seen: set[tuple[Any, ...]] = set()
        records = []
        for row in rows:
            key = tuple(row[c] for c in element.key_columns)
            if key not in seen:
                seen.add(key)
                records.append(self._records.from_row(element, row))
        return records


_new_object = object.__new__
_set_attribute = object.__setattr__


def _uuid_from_hex(text: str) -> uuid.UUID:
    """`uuid.UUID` from 32 hex digits, skipping ``UUID.__init__``'s parsing (3x faster)."""
    value = _new_object(uuid.UUID)
    _set_attribute(value, "int", int(text, 16))
    _set_attribute(value, "is_safe", uuid.SafeUUID.unknown)
    return value


def _overlaps(
    a_begin: sa.ColumnElement[Any],
    a_end: sa.ColumnElement[Any],
    b_begin: sa.ColumnElement[Any],
    b_end: sa.ColumnElement[Any],
) -> sa.ColumnElement[bool]:
    """SQL for "half-open intervals [a_begin, a_end) and [b_begin, b_end) overlap"; NULL bounds are infinite.

    Empty intervals (begin == end) overlap nothing, as in `Timespan.overlaps`.
    """

    def before(x: sa.ColumnElement[Any], y: sa.ColumnElement[Any]) -> sa.ColumnElement[bool]:
        return sa.or_(x.is_(None), y.is_(None), x < y)

    return sa.and_(
        before(a_begin, b_end), before(b_begin, a_end), before(a_begin, a_end), before(b_begin, b_end)
    )
