"""``butler query-*`` commands: list dataset types, collections, data IDs, dimension records and datasets."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Sequence
from typing import Any

import click

from ..butler import Butler
from ..collections import CollectionType
from ..datasets import DatasetRef
from ..datastore import DatastoreRecord
from ..registry import Registry
from ..repository import open_registry
from .format import dataset_row, record_columns, record_row, render, sort_key
from .options import (
    collections_option,
    comma_list,
    emit,
    format_option,
    limit_option,
    limited,
    repo_argument,
    where_options,
)
from .selection import select_datasets

__all__ = ["COMMANDS"]


@click.command("query-dataset-types")
@repo_argument
@click.argument("globs", nargs=-1)
@click.option("--verbose", "-v", is_flag=True, help="Also show dimensions, storage class and is_calibration.")
@format_option
def query_dataset_types(repo: str, globs: tuple[str, ...], verbose: bool, output_format: str) -> None:
    """List registered dataset types, sorted by name.

    GLOBS are shell-style name patterns (e.g. 'calexp*'); none lists every dataset type.
    """
    with open_registry(repo) as registry:
        dataset_types = registry.query_dataset_types(list(globs) or "*")
    rows = [
        {
            "name": t.name,
            "dimensions": list(t.dimensions.required),
            "storage_class": t.storage_class_name,
            "is_calibration": t.is_calibration,
        }
        for t in dataset_types
    ]
    columns = ["name", "dimensions", "storage_class", "is_calibration"] if verbose else ["name"]
    emit(rows, columns, output_format, "No dataset types found.")


@click.command("query-collections")
@repo_argument
@click.argument("globs", nargs=-1)
@click.option(
    "--collection-type",
    "collection_types",
    multiple=True,
    type=click.Choice([t.name for t in CollectionType], case_sensitive=False),
    help="Only collections of this type; repeatable.",
)
@click.option(
    "--chains",
    type=click.Choice(["table", "tree", "flatten"]),
    default="table",
    show_default=True,
    help="table: chains with their children in a column; tree: children indented below their chains; "
    "flatten: chains replaced by the collections they search, in order.",
)
@format_option
def query_collections(
    repo: str, globs: tuple[str, ...], collection_types: tuple[str, ...], chains: str, output_format: str
) -> None:
    """List collections and their types.

    GLOBS are shell-style name patterns (e.g. 'u/someone/*'); none lists every collection.
    """
    types = {CollectionType.from_name(t) for t in collection_types} or None
    patterns = list(globs) or "*"
    rows: list[dict[str, Any]]
    with open_registry(repo) as registry:
        if chains == "flatten":
            names = registry.query_collections(
                patterns, types=types, flatten_chains=True, include_chains=False
            )
            rows = [{"name": n, "type": registry.get_collection_type(n).name} for n in names]
            columns = ["name", "type"]
        elif chains == "tree":
            rows = _collection_tree(registry, registry.query_collections(patterns, types=types))
            columns = ["name", "type", "depth"]
            if output_format == "table":
                rows = [{**row, "name": "  " * row["depth"] + row["name"]} for row in rows]
                columns = ["name", "type"]
        else:
            rows = []
            for name in registry.query_collections(patterns, types=types):
                collection_type = registry.get_collection_type(name)
                children = (
                    registry.get_collection_chain(name) if collection_type is CollectionType.CHAINED else ()
                )
                rows.append({"name": name, "type": collection_type.name, "children": list(children)})
            columns = ["name", "type", "children"]
    emit(rows, columns, output_format, "No collections found.")


def _collection_tree(registry: Registry, roots: Sequence[str]) -> list[dict[str, Any]]:
    """Depth-first rows (name, type, depth) of ``roots`` with every chain's children below it."""
    rows: list[dict[str, Any]] = []
    stack = [(name, 0) for name in reversed(roots)]
    while stack:
        name, depth = stack.pop()
        collection_type = registry.get_collection_type(name)
        rows.append({"name": name, "type": collection_type.name, "depth": depth})
        if collection_type is CollectionType.CHAINED:
            stack.extend((child, depth + 1) for child in reversed(registry.get_collection_chain(name)))
    return rows


@click.command("query-data-ids")
@repo_argument
@click.argument("dimensions", nargs=-1)
@click.option(
    "--datasets",
    multiple=True,
    callback=comma_list,
    metavar="NAME[,NAME...]",
    help="Only data IDs for which datasets of these types exist in --collections; repeatable.",
)
@collections_option("Collections searched for --datasets, in order; repeatable.")
@where_options
@limit_option
@format_option
def query_data_ids(
    repo: str,
    dimensions: tuple[str, ...],
    datasets: tuple[str, ...],
    collections: tuple[str, ...],
    where: str,
    bind: dict[str, Any],
    limit: int | None,
    output_format: str,
) -> None:
    """List data IDs.

    Lists the data IDs of DIMENSIONS that satisfy the constraints.
    DIMENSIONS are dimension names (e.g. exposure detector); their required dimensions are added,
    and implied ones (e.g. physical_filter of an exposure) are shown too. Without DIMENSIONS, those
    of the --datasets types are used.
    """
    with open_registry(repo) as registry:
        names = list(dimensions)
        if not names:
            if not datasets:
                raise click.UsageError("Give at least one DIMENSION, or --datasets to take them from.")
            names = [d for n in datasets for d in registry.get_dataset_type(n).dimensions.required]
        data_ids = registry.query_data_ids(
            names,
            datasets=list(datasets) or None,
            collections=list(collections) or None,
            where=where,
            bind=bind,
        )
        columns = list(registry.universe.group(names).data_id_keys)
    rows = sorted((data_id.mapping for data_id in data_ids), key=lambda row: sort_key(row.values()))
    emit(limited(rows, limit, "data IDs"), columns, output_format, "No data IDs found.")


@click.command("query-dimension-records")
@repo_argument
@click.argument("element")
@where_options
@limit_option
@format_option
def query_dimension_records(
    repo: str, element: str, where: str, bind: dict[str, Any], limit: int | None, output_format: str
) -> None:
    """List dimension records.

    Lists the records of dimension ELEMENT (e.g. detector) that satisfy the constraints.
    Timespans are shown as ISO-8601 UTC begin/end columns. Regions are left out of tables and
    given as hex-encoded bytes in JSON and CSV (so CSV output can be inserted elsewhere).
    """
    with open_registry(repo) as registry:
        dimension = registry.universe[element]
        records = registry.query_dimension_records(dimension.name, where=where, bind=bind)
    key_count = len(dimension.key_columns)
    rows = sorted((record_row(r) for r in records), key=lambda row: sort_key(list(row.values())[:key_count]))
    columns = record_columns(dimension, with_region=output_format != "table")
    emit(
        limited(rows, limit, f"{dimension.name} records"),
        columns,
        output_format,
        f"No {dimension.name} records found.",
    )


@click.command("query-datasets")
@repo_argument
@click.argument("dataset_types", nargs=-1)
@collections_option(
    "Collections to search, in order; repeatable. Without it every collection is searched and every "
    "matching dataset listed."
)
@where_options
@click.option(
    "--find-first/--find-all",
    default=True,
    show_default=True,
    help="--find-first: per data ID, only the dataset in the first collection that has one; "
    "--find-all: every dataset in any of the collections.",
)
@click.option(
    "--show-uri",
    is_flag=True,
    help="Add a uri column: where each dataset's file is (one row per component for a dataset stored "
    "as one file per component; empty for a dataset without a file).",
)
@limit_option
@format_option
def query_datasets(
    repo: str,
    dataset_types: tuple[str, ...],
    collections: tuple[str, ...],
    where: str,
    bind: dict[str, Any],
    find_first: bool,
    show_uri: bool,
    limit: int | None,
    output_format: str,
) -> None:
    """List datasets.

    Lists the datasets of DATASET_TYPES in the given collections.
    DATASET_TYPES are names or shell-style patterns; none means every registered dataset type.
    Tables show one block per dataset type: type, run, id, then the data ID (and the uri).
    """
    with contextlib.ExitStack() as stack:
        butler = stack.enter_context(Butler(repo)) if show_uri else None
        registry = butler.registry if butler is not None else stack.enter_context(open_registry(repo))
        refs = select_datasets(registry, dataset_types, collections, where, bind, find_first=find_first)
        rows = _with_uris(butler, refs) if butler is not None else [dataset_row(ref) for ref in refs]
        universe = registry.universe
    rows = limited(rows, limit, "datasets")
    extra = ["uri"] if show_uri else []
    if not rows or output_format != "table":
        keys = universe.sorted({key for row in rows for key in row} - {"type", "run", "id", "uri"})
        emit(rows, ["type", "run", "id", *keys, *extra], output_format, "No datasets found.")
        return
    blocks: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        blocks.setdefault(row["type"].split(".", 1)[0], []).append(row)
    tables = [render(block, list(block[0]), "table") for block in blocks.values()]
    click.echo("\n\n".join(tables))


def _with_uris(butler: Butler, refs: Sequence[DatasetRef]) -> list[dict[str, Any]]:
    """Rows of `dataset_row` with a ``uri``; a dataset stored as components gives a row per component."""
    by_id: dict[uuid.UUID, list[DatastoreRecord]] = {}
    ids = [ref.id for ref in refs]
    for name in butler.datastore.names:  # a chained datastore's records carry its members' names
        for stored in butler.registry.fetch_datastore_records(name, ids):
            record = DatastoreRecord.from_row(stored)
            by_id.setdefault(record.dataset_id, []).append(record)
    rows: list[dict[str, Any]] = []
    for ref in refs:
        uris = butler.datastore.uris(by_id.get(ref.id, []))
        if not uris:
            rows.append(dataset_row(ref) | {"uri": None})
        for component, uri in sorted(uris.items()):
            row = dataset_row(ref) | {"uri": str(uri)}
            if component:
                row["type"] = f"{ref.dataset_type.name}.{component}"
            rows.append(row)
    return rows


COMMANDS = (query_dataset_types, query_collections, query_data_ids, query_dimension_records, query_datasets)
"""The commands of this module, for the ``butler`` group."""
