"""The registry's SQL schema (SQLAlchemy Core): static tables, dimension tables, and per-dimension-group dataset tables."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

from .dimensions import DimensionElement, DimensionGroup, DimensionUniverse, FieldSpec, FieldType

__all__ = ["SCHEMA_VERSION", "DatasetTables", "RegistryTables", "dimension_table_name", "overlap_table_name"]

SCHEMA_VERSION = 1
"""Version of this table layout, stored in every repository."""

_NAME_LENGTH = 128


def _column_type(spec: FieldSpec) -> sa.types.TypeEngine[Any]:
    if spec.type is FieldType.INT:
        return sa.BigInteger()
    if spec.type is FieldType.FLOAT:
        return sa.Float()
    if spec.type is FieldType.BOOL:
        return sa.Boolean()
    return sa.String(spec.length or 256)


def dimension_table_name(element: str) -> str:
    """Name of the table holding records of ``element``."""
    return f"dim_{element}"


def overlap_table_name(a: str, b: str) -> str:
    """Name of the materialized spatial-overlap table between elements ``a`` and ``b``."""
    return f"overlap_{a}_{b}"


def key_column(universe: DimensionUniverse, dimension: str, **kwargs: object) -> sa.Column[object]:
    """A column holding values of ``dimension``'s key, named after the dimension."""
    spec = universe[dimension].key
    assert spec is not None, f"{dimension} is not a dimension"
    return sa.Column(dimension, _column_type(spec), **kwargs)  # type: ignore[arg-type]


def _foreign_key_to(universe: DimensionUniverse, dimension: str) -> sa.ForeignKeyConstraint:
    """A foreign key from same-named columns to the table of ``dimension``."""
    columns = universe[dimension].key_columns
    table = dimension_table_name(dimension)
    return sa.ForeignKeyConstraint(list(columns), [f"{table}.{c}" for c in columns])


@dataclass
class DatasetTables:
    """The tables holding dataset membership in collections for one dimension group."""

    tags: sa.Table
    """(dataset type, collection, dataset ID, data ID) rows for RUN and TAGGED collections."""
    calibs: sa.Table
    """(dataset type, collection, dataset ID, data ID, validity timespan) rows for CALIBRATION collections."""


@dataclass
class RegistryTables:
    """Every table of one registry, bound to its own `sqlalchemy.MetaData`."""

    universe: DimensionUniverse
    metadata: sa.MetaData = field(default_factory=sa.MetaData)
    attributes: sa.Table = field(init=False)
    collection: sa.Table = field(init=False)
    collection_chain: sa.Table = field(init=False)
    dataset_type: sa.Table = field(init=False)
    dataset: sa.Table = field(init=False)
    datastore_record: sa.Table = field(init=False)
    datastore_trash: sa.Table = field(init=False)
    dimensions: dict[str, sa.Table] = field(init=False)
    overlaps: dict[tuple[str, str], sa.Table] = field(init=False)
    _dataset_tables: dict[DimensionGroup, DatasetTables] = field(init=False, default_factory=dict)

    def __post_init__(self) -> None:
        md = self.metadata
        self.attributes = sa.Table(
            "butler_attributes",
            md,
            sa.Column("name", sa.String(64), primary_key=True),
            sa.Column("value", sa.String(256), nullable=False),
        )
        self.collection = sa.Table(
            "collection",
            md,
            sa.Column(
                "collection_id",
                sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
                primary_key=True,
                autoincrement=True,
            ),
            sa.Column("name", sa.String(_NAME_LENGTH), nullable=False, unique=True),
            sa.Column("type", sa.SmallInteger(), nullable=False),
            sa.Column("doc", sa.Text(), nullable=True),
        )
        self.collection_chain = sa.Table(
            "collection_chain",
            md,
            sa.Column(
                "parent",
                sa.BigInteger(),
                sa.ForeignKey("collection.collection_id", ondelete="CASCADE"),
                primary_key=True,
            ),
            sa.Column("position", sa.SmallInteger(), primary_key=True),
            sa.Column(
                "child",
                sa.BigInteger(),
                sa.ForeignKey("collection.collection_id"),
                nullable=False,
                index=True,
            ),
        )
        self.dataset_type = sa.Table(
            "dataset_type",
            md,
            sa.Column(
                "dataset_type_id",
                sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
                primary_key=True,
                autoincrement=True,
            ),
            sa.Column("name", sa.String(_NAME_LENGTH), nullable=False, unique=True),
            sa.Column("dimensions", sa.String(512), nullable=False),
            sa.Column("storage_class", sa.String(64), nullable=False),
            sa.Column("is_calibration", sa.Boolean(), nullable=False),
        )
        self.dataset = sa.Table(
            "dataset",
            md,
            sa.Column("dataset_id", sa.Uuid(), primary_key=True),
            sa.Column(
                "dataset_type_id",
                sa.BigInteger(),
                sa.ForeignKey("dataset_type.dataset_type_id"),
                nullable=False,
            ),
            sa.Column("run_id", sa.BigInteger(), sa.ForeignKey("collection.collection_id"), nullable=False),
            sa.Column(
                "ingest_date", sa.BigInteger(), nullable=False, doc="Nanoseconds since the epoch (UTC)."
            ),
            sa.Index("dataset_run_type", "run_id", "dataset_type_id"),
        )
        self.datastore_record = self._make_location_table("datastore_record")
        # Locations of artifacts whose datasets were deleted: emptied (files first, then rows) after
        # the deleting transaction commits, so a crash in between is finished by the next emptying.
        self.datastore_trash = self._make_location_table("datastore_trash")
        self.dimensions = {e.name: self._make_dimension_table(e) for e in self.universe.elements}
        self.overlaps = {pair: self._make_overlap_table(*pair) for pair in self.universe.spatial_joins}

    def _make_location_table(self, name: str) -> sa.Table:
        return sa.Table(
            name,
            self.metadata,
            sa.Column("dataset_id", sa.Uuid(), primary_key=True),
            sa.Column("datastore_name", sa.String(64), primary_key=True),
            sa.Column(
                "component", sa.String(64), primary_key=True, doc="Empty string for the whole dataset."
            ),
            sa.Column("path", sa.String(1024), nullable=False),
            sa.Column("formatter", sa.String(256), nullable=False),
            sa.Column("storage_class", sa.String(64), nullable=False),
            sa.Column("checksum", sa.String(128), nullable=True),
            sa.Column("file_size", sa.BigInteger(), nullable=True),
        )

    def _make_dimension_table(self, element: DimensionElement) -> sa.Table:
        universe = self.universe
        columns: list[sa.Column[object]] = [
            key_column(universe, d, primary_key=True) for d in element.key_columns
        ]
        columns += [key_column(universe, d, nullable=True) for d in element.implies]
        columns += [sa.Column(m.name, _column_type(m), nullable=True) for m in element.metadata]
        if element.has_timespan:
            columns += [
                sa.Column("timespan_begin", sa.BigInteger()),
                sa.Column("timespan_end", sa.BigInteger()),
            ]
        if element.has_region:
            columns.append(sa.Column("region", sa.LargeBinary(), nullable=True))
        constraints = [_foreign_key_to(universe, d) for d in element.requires] + [
            _foreign_key_to(universe, d) for d in element.implies
        ]
        return sa.Table(dimension_table_name(element.name), self.metadata, *columns, *constraints)

    def _make_overlap_table(self, a: str, b: str) -> sa.Table:
        universe = self.universe
        keys = universe.sorted(set(universe[a].key_columns) | set(universe[b].key_columns))
        columns = [key_column(universe, d, primary_key=True) for d in keys]
        return sa.Table(
            overlap_table_name(a, b),
            self.metadata,
            *columns,
            sa.ForeignKeyConstraint(
                list(universe[a].key_columns),
                [f"{dimension_table_name(a)}.{c}" for c in universe[a].key_columns],
                ondelete="CASCADE",
            ),
            sa.ForeignKeyConstraint(
                list(universe[b].key_columns),
                [f"{dimension_table_name(b)}.{c}" for c in universe[b].key_columns],
                ondelete="CASCADE",
            ),
        )

    # -- dataset tables, one pair per dimension group --------------------------------

    def dataset_tables(self, dimensions: DimensionGroup) -> DatasetTables:
        """The tags/calibs tables for datasets with these dimensions (defined, not necessarily created)."""
        tables = self._dataset_tables.get(dimensions)
        if tables is None:
            suffix = hashlib.sha1(",".join(dimensions.required).encode()).hexdigest()[:12]
            tables = DatasetTables(
                tags=self._make_tags_table(f"dataset_tags_{suffix}", dimensions),
                calibs=self._make_calibs_table(f"dataset_calibs_{suffix}", dimensions),
            )
            self._dataset_tables[dimensions] = tables
        return tables

    def _data_id_columns(self, dimensions: DimensionGroup) -> list[sa.Column[object]]:
        return [key_column(self.universe, d, nullable=False) for d in dimensions.required]

    # Dataset tables carry no foreign keys to dimension tables: per-row FK checks dominate bulk
    # inserts, so DatasetRecordStorage checks the distinct data ID values once per insert instead.

    def _membership_columns(self, primary_key: bool) -> list[sa.Column[Any]]:
        """dataset_type_id, collection_id, dataset_id: who is in which collection."""
        return [
            sa.Column(
                "dataset_type_id",
                sa.BigInteger(),
                sa.ForeignKey("dataset_type.dataset_type_id"),
                nullable=False,
            ),
            sa.Column(
                "collection_id",
                sa.BigInteger(),
                sa.ForeignKey("collection.collection_id", ondelete="CASCADE"),
                primary_key=primary_key,
                nullable=False,
            ),
            sa.Column(
                "dataset_id",
                sa.Uuid(),
                sa.ForeignKey("dataset.dataset_id", ondelete="CASCADE"),
                primary_key=primary_key,
                nullable=False,
            ),
        ]

    def _make_tags_table(self, name: str, dimensions: DimensionGroup) -> sa.Table:
        keys = list(dimensions.required)
        return sa.Table(
            name,
            self.metadata,
            *self._membership_columns(primary_key=True),
            *self._data_id_columns(dimensions),
            sa.UniqueConstraint("dataset_type_id", "collection_id", *keys, name=f"{name}_unique_data_id"),
            sa.Index(f"{name}_by_dataset", "dataset_id"),
        )

    def _make_calibs_table(self, name: str, dimensions: DimensionGroup) -> sa.Table:
        keys = list(dimensions.required)
        return sa.Table(
            name,
            self.metadata,
            sa.Column(
                "calib_row_id",
                sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
                primary_key=True,
                autoincrement=True,
            ),
            *self._membership_columns(primary_key=False),
            *self._data_id_columns(dimensions),
            sa.Column("timespan_begin", sa.BigInteger(), nullable=True),
            sa.Column("timespan_end", sa.BigInteger(), nullable=True),
            sa.Index(f"{name}_lookup", "dataset_type_id", "collection_id", *keys),
            sa.Index(f"{name}_by_dataset", "dataset_id"),
        )

    @property
    def static_tables(self) -> list[sa.Table]:
        """Tables every repository has, whatever dataset types it holds."""
        fixed = [
            self.attributes,
            self.collection,
            self.collection_chain,
            self.dataset_type,
            self.dataset,
            self.datastore_record,
            self.datastore_trash,
        ]
        return fixed + list(self.dimensions.values()) + list(self.overlaps.values())
