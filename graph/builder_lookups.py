"""Registry lookups of the quantum-graph builder: existing inputs, calibrations and existing outputs, in bulk.

Each lookup is one SQL statement per dataset type joined to the builder's materialized data-ID
rows (`butler.bulk_queries.DataIdRows`), cached, and returned as a pyarrow table in the graph's
dataset-table layout; datastore records of the datasets found are kept for the graph.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from butler.bulk_queries import RECORD_SCHEMA, DataIdRows, DatasetLookup
from butler.datasets import DatasetType

from .builder_tables import unique_rows
from .quantum_graph import dataset_schema

__all__ = ["InputLookups"]

_LOG = logging.getLogger(__name__)


class InputLookups:
    """Cached bulk lookups against the materialized rows of one graph build.

    Parameters
    ----------
    rows
        The materialized data-ID query (its connection stays open while lookups run).
    table
        ``rows.table()``.
    dataset_types
        Resolved dataset types of the pipeline, by name.
    input_collections, output_run
        Where inputs are searched, and the output run.
    run_exists
        Whether the output run exists (``extend_run``).
    skip_collections
        Existing ``skip_existing_in`` collections.
    registered
        Names of the dataset types registered in the repository (others have no datasets).
    """

    def __init__(
        self,
        rows: DataIdRows,
        table: pa.Table,
        dataset_types: Mapping[str, DatasetType],
        input_collections: Sequence[str],
        output_run: str,
        run_exists: bool,
        skip_collections: Sequence[str],
        registered: set[str],
    ) -> None:
        self.rows = rows
        self.table = table
        self.dataset_types = dataset_types
        self.input_collections = list(input_collections)
        self.output_run = output_run
        self.run_exists = run_exists
        self.skip_collections = list(skip_collections)
        self.registered = registered
        self._cache: dict[tuple[str, ...], pa.Table] = {}
        self._calibrations: dict[tuple[str, str], tuple[pa.Table, pa.Table]] = {}
        self._records: list[pa.Table] = []

    def records(self) -> pa.Table:
        """Datastore records of every dataset found that may be read (`RECORD_SCHEMA`)."""
        return pa.concat_tables(self._records) if self._records else RECORD_SCHEMA.empty_table()

    def _find(self, name: str, collections: Sequence[str], with_records: bool) -> DatasetLookup | None:
        if name not in self.registered:
            return None
        lookup = self.rows.find_datasets(name, collections, with_records=with_records)
        if with_records:
            self._records.append(lookup.records)
        return lookup

    def dataset_table(self, name: str, lookup: pa.Table) -> pa.Table:
        """A lookup result (dataset_id, run, required dimensions) in the graph's dataset-table layout."""
        group = self.dataset_types[name].dimensions
        schema = dataset_schema(group)
        table = lookup.select(["dataset_id", "run", *group.required])
        if group.implied and table.num_rows:
            implied = unique_rows(self.table, group.data_id_keys, sort_keys=())
            table = table.join(implied, list(group.required), join_type="inner")
        table = table.append_column("produced", pa.repeat(pa.scalar(False), table.num_rows))
        if not table.num_rows:
            return schema.empty_table()
        return table.select(schema.names).cast(schema)

    def _cached(
        self, key: tuple[str, ...], name: str, collections: Sequence[str], as_datasets: bool
    ) -> pa.Table:
        table = self._cache.get(key)
        if table is None:
            lookup = self._find(name, collections, with_records=as_datasets)
            if lookup is None:
                table = dataset_schema(self.dataset_types[name].dimensions).empty_table()
            elif as_datasets:
                table = self.dataset_table(name, lookup.datasets)
            else:
                table = lookup.datasets
            self._cache[key] = table
        return table

    def existing(self, name: str) -> pa.Table:
        """Datasets of ``name`` in the input collections (find-first) related to the rows."""
        table = self._cached(("input", name), name, self.input_collections, True)
        _LOG.debug("Found %d existing %s datasets.", table.num_rows, name)
        return table

    def in_skip_collections(self, name: str) -> pa.Table:
        """Datasets of ``name`` in the ``skip_existing_in`` collections (as graph datasets, with records)."""
        return self._cached(("skip", name), name, self.skip_collections, True)

    def in_output_run(self, name: str, with_implied: bool = False) -> pa.Table:
        """Datasets of ``name`` already in the output run (as graph datasets with records if ``with_implied``)."""
        key = ("run", name, str(with_implied))
        return self._cached(key, name, [self.output_run], with_implied)

    def calibrations(self, name: str, temporal: str) -> tuple[pa.Table, pa.Table]:
        """The calibrations of ``name`` valid at each ``temporal`` element's time.

        Returns the lookup (dataset_id, run, the dataset type's required dimensions and the temporal
        element's keys: one row per dataset and time) and the distinct datasets as a graph dataset table.
        """
        cached = self._calibrations.get((name, temporal))
        if cached is None:
            if name in self.registered:
                lookup = self.rows.find_calibrations(name, self.input_collections, temporal)
                self._records.append(lookup.records)
                found = lookup.datasets
            else:
                group = self.dataset_types[name].dimensions
                universe = group.universe
                keys = universe.sorted(set(group.required) | set(universe[temporal].key_columns))
                fields = [pa.field("dataset_id", pa.binary(16)), pa.field("run", pa.string())]
                fields += [dataset_schema(universe.group(keys)).field(k) for k in keys]
                found = pa.schema(fields).empty_table()
            encoded = pc.dictionary_encode(found.column("dataset_id")).combine_chunks()
            _, first = np.unique(encoded.indices.to_numpy(zero_copy_only=False), return_index=True)
            distinct = found.take(pa.array(np.sort(first)))
            cached = (found, self.dataset_table(name, distinct))
            self._calibrations[(name, temporal)] = cached
            _LOG.debug(
                "Found %d %s calibrations for %d %s rows.", cached[1].num_rows, name, found.num_rows, temporal
            )
        return cached
