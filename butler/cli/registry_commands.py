"""``butler`` commands that change the registry only: dimension records, dataset types, collections, tags, calibrations."""

from __future__ import annotations

import graphlib
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import click

from ..collections import ChainMode, CollectionType
from ..datasets import DatasetType
from ..errors import ButlerError
from ..registry import Registry
from ..repository import open_registry
from ..timespan import Timespan
from .options import dataset_selection_options, repo_argument, split_commas
from .record_files import RecordFileError, read_record_file
from .selection import select_datasets

__all__ = ["COMMANDS"]


# -- dimension records ------------------------------------------------------------------------------


@click.command("insert-dimension-records")
@repo_argument
@click.argument("element")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, readable=True, path_type=Path))
@click.option("--skip-existing", is_flag=True, help="Skip records whose keys exist already (not compared).")
@click.option(
    "--sync", is_flag=True, help="Skip records that exist identically; a conflicting one is an error."
)
def insert_dimension_records(repo: str, element: str, file: Path, skip_existing: bool, sync: bool) -> None:
    """Insert dimension records from a file.

    The records of ELEMENT (e.g. exposure) are read from FILE, YAML or CSV.
    FILE is YAML (.yaml/.yml: a list of mappings of field -> value, or a mapping with a
    `records:` list) or CSV (.csv: a header row of field names, one record per row; an empty
    cell is no value). Timespans are `timespan: {begin: ISO time, end: ISO time}` or the columns
    `timespan_begin` and `timespan_end`; regions are e.g. `region: {polygon: [[ra, dec], ...]}`
    in degrees, or hex-encoded bytes. All records are inserted, or none.
    """
    if skip_existing and sync:
        raise click.UsageError("--skip-existing and --sync cannot be combined.")
    with open_registry(repo) as registry:
        dimension = registry.universe[element]
        records = read_record_file(file, dimension, registry.universe)
        try:
            if sync:
                inserted = sum(registry.sync_dimension_records(dimension.name, records))
            else:
                inserted = registry.insert_dimension_records(
                    dimension.name, records, skip_existing=skip_existing
                )
        except ButlerError as err:
            raise RecordFileError(f"{file}: {err}", err.exit_code) from err
    present = f" ({len(records) - inserted} already present)" if len(records) > inserted else ""
    click.echo(f"Inserted {inserted} {dimension.name} record(s){present}.")


# -- dataset types ----------------------------------------------------------------------------------


@click.command("register-dataset-type")
@repo_argument
@click.argument("name")
@click.argument("storage_class")
@click.argument("dimensions", nargs=-1)
@click.option(
    "--is-calibration", is_flag=True, help="Datasets of this type are calibrations (certified by time)."
)
def register_dataset_type(
    repo: str, name: str, storage_class: str, dimensions: tuple[str, ...], is_calibration: bool
) -> None:
    """Register a dataset type.

    The dataset type is called NAME, with STORAGE_CLASS and DIMENSIONS.
    DIMENSIONS are the dimensions identifying one dataset (e.g. instrument exposure detector;
    none for a dataset that exists once per collection). Registering an identical definition
    again is fine; a different one with the same NAME is an error.
    """
    with open_registry(repo) as registry:
        dataset_type = DatasetType(
            name, dimensions, storage_class, is_calibration=is_calibration, universe=registry.universe
        )
        if registry.register_dataset_type(dataset_type):
            click.echo(f"Registered dataset type {name}.")
        else:
            click.echo(f"Dataset type {name} was already registered with this definition.")


# -- collections ------------------------------------------------------------------------------------


@click.command("collection-chain")
@repo_argument
@click.argument("parent")
@click.argument("children", nargs=-1)
@click.option(
    "--mode",
    type=click.Choice([mode.value for mode in ChainMode]),
    default=ChainMode.REDEFINE.value,
    show_default=True,
    help="redefine: the chain becomes CHILDREN; extend/prepend: add CHILDREN at the end/front; "
    "remove: drop CHILDREN; pop: drop the children at positions CHILDREN (default 0, the first).",
)
@click.option("--doc", default=None, help="Documentation string for PARENT.")
def collection_chain(repo: str, parent: str, children: tuple[str, ...], mode: str, doc: str | None) -> None:
    """Define or change a chained collection.

    Prints the children of PARENT after the change.
    CHILDREN are collection names (or, with --mode pop, positions), separately or comma-separated.
    PARENT is created as a CHAINED collection if it does not exist (except with remove/pop).
    The change is refused if PARENT would end up containing itself.
    """
    chain_mode = ChainMode(mode)
    names = split_commas(children)
    if not names and chain_mode is not ChainMode.POP:
        raise click.UsageError(f"--mode {mode} needs at least one CHILD.")
    with open_registry(repo) as registry, registry.transaction():
        created = False
        if chain_mode in (ChainMode.REDEFINE, ChainMode.EXTEND, ChainMode.PREPEND):
            created = registry.register_collection(parent, CollectionType.CHAINED, doc)
        if doc is not None and not created:
            registry.set_collection_documentation(parent, doc)
        chain = registry.update_collection_chain(parent, names, chain_mode)
    click.echo("[" + ", ".join(chain) + "]")


@click.command("remove-collections")
@repo_argument
@click.argument("collections", nargs=-1, required=True)
@click.option(
    "--purge", is_flag=True, help="Also delete the datasets of RUN collections (needed if they have any)."
)
def remove_collections(repo: str, collections: tuple[str, ...], purge: bool) -> None:
    """Remove collections from the registry.

    All of COLLECTIONS are removed, or none.
    A chain is removed before its children; a collection still listed by a chain that is not
    removed too is refused. A RUN holding datasets is refused unless --purge is given; datasets
    with files are never purged here (use remove-runs, which deletes the files too).
    """
    with open_registry(repo) as registry, registry.transaction():
        order = _parents_first(registry, split_commas(collections))
        for name in order:
            registry.remove_collection(name, purge=purge)
    for name in order:
        click.echo(f"Removed collection {name}.")


def _parents_first(registry: Registry, names: Sequence[str]) -> list[str]:
    """``names`` ordered so that a chain comes before the children it lists among them."""
    wanted = set(names)
    sorter: graphlib.TopologicalSorter[str] = graphlib.TopologicalSorter()
    for name in dict.fromkeys(names):
        sorter.add(name, *(p for p in registry.get_collection_parent_chains(name) if p in wanted))
    return list(sorter.static_order())


# -- tags and calibrations --------------------------------------------------------------------------


@click.command()
@repo_argument
@click.argument("tag")
@dataset_selection_options(find_first=True)
def associate(
    repo: str,
    tag: str,
    collections: tuple[str, ...],
    dataset_types: tuple[str, ...],
    where: str,
    bind: dict[str, Any],
    find_first: bool,
) -> None:
    """Add datasets to a TAGGED collection.

    The datasets a query finds are added to TAG, which is created if absent.
    The query is that of query-datasets: --dataset-type, --collections and --where select the
    datasets. Datasets already in TAG stay; another dataset with the same type and data ID as one
    in TAG is an error, and then nothing is added.
    """
    with open_registry(repo) as registry:
        refs = select_datasets(registry, dataset_types, collections, where, bind, find_first=find_first)
        with registry.transaction():
            created = registry.register_collection(tag, CollectionType.TAGGED)
            registry.associate(tag, refs)
    new = " (new TAGGED collection)" if created else ""
    click.echo(f"Associated {len(refs)} dataset(s) with {tag}{new}.")


def _iso_time(_ctx: click.Context, _param: click.Parameter, value: str | None) -> datetime | None:
    """An ISO-8601 date or time (no zone: UTC)."""
    if value is None:
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f"expected an ISO-8601 date or time, got {value!r}.") from None


@click.command("certify-calibrations")
@repo_argument
@click.argument("input_collection", metavar="INPUT_RUN")
@click.argument("output_collection", metavar="OUTPUT_CALIB")
@click.argument("dataset_type")
@click.option(
    "--begin-date",
    callback=_iso_time,
    default=None,
    metavar="ISO",
    help="Start of the validity range (UTC, inclusive), e.g. 2024-03-01T12:00:00 [default: unbounded].",
)
@click.option(
    "--end-date",
    callback=_iso_time,
    default=None,
    metavar="ISO",
    help="End of the validity range (UTC, exclusive) [default: unbounded].",
)
@click.option(
    "--search-all-inputs",
    is_flag=True,
    help="If INPUT_RUN is a chain, certify the datasets of every collection it holds, not only the "
    "first one found for each data ID.",
)
def certify_calibrations(
    repo: str,
    input_collection: str,
    output_collection: str,
    dataset_type: str,
    begin_date: datetime | None,
    end_date: datetime | None,
    search_all_inputs: bool,
) -> None:
    """Certify calibration datasets for a time range.

    The DATASET_TYPE datasets of INPUT_RUN are certified into the CALIBRATION collection
    OUTPUT_CALIB: they become valid from --begin-date to --end-date (UTC); OUTPUT_CALIB is created if absent.
    DATASET_TYPE must be a calibration dataset type. A data ID that is already valid for an
    overlapping time in OUTPUT_CALIB is an error, and then nothing is certified.
    """
    try:
        timespan = Timespan.from_datetimes(begin_date, end_date)
    except ValueError:
        raise click.BadParameter("the end is before --begin-date.", param_hint="--end-date") from None
    with open_registry(repo) as registry:
        refs = registry.query_datasets(dataset_type, input_collection, find_first=not search_all_inputs)
        if not refs:
            raise ButlerError(f"No {dataset_type} datasets in {input_collection!r}; nothing to certify.")
        with registry.transaction():
            registry.register_collection(output_collection, CollectionType.CALIBRATION)
            registry.certify(output_collection, refs, timespan)
    click.echo(f"Certified {len(refs)} {dataset_type} dataset(s) into {output_collection}, valid {timespan}.")


COMMANDS = (
    insert_dimension_records,
    register_dataset_type,
    collection_chain,
    remove_collections,
    associate,
    certify_calibrations,
)
"""The commands of this module, for the ``butler`` group."""
