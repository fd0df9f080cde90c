"""``butler`` commands that move datasets with their files: ingest, export/import, transfer, retrieve, prune, remove runs."""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import click

from ..butler import Butler
from ..collections import CollectionType
from ..datasets import DatasetRef
from ..datastore import DatasetFileMissingError
from ..errors import CollectionTypeError, DatasetTypeError, OrphanedRecordError
from ..formatter import formatter_class
from ..ingest import TRANSFER_MODES, FileDataset, IngestError
from ..registry import Registry
from ..timing import log_duration
from .format import render_table
from .ingest_table import read_ingest_table
from .options import (
    Progress,
    confirm_option,
    dataset_selection_options,
    parse_key_values,
    progress_option,
    repo_argument,
)
from .selection import select_datasets

__all__ = ["COMMANDS"]

_LOG = logging.getLogger(__name__)


# -- bringing files in ------------------------------------------------------------------------------


def _parse_data_id(_ctx: click.Context, _param: click.Parameter, values: Sequence[str]) -> dict[str, str]:
    return parse_key_values(values, commas=True)


@click.command("ingest-files")
@repo_argument
@click.argument("dataset_type")
@click.argument("run")
@click.argument("table", type=click.Path(exists=True, dir_okay=False, readable=True, path_type=Path))
@click.option(
    "--data-id",
    "data_id",
    multiple=True,
    callback=_parse_data_id,
    metavar="DIMENSION=VALUE[,...]",
    help="Data ID values shared by every file (e.g. instrument=DemoCam); repeatable, or comma-separated.",
)
@click.option(
    "--transfer",
    type=click.Choice(TRANSFER_MODES),
    default="auto",
    show_default=True,
    help="copy/move/hardlink/symlink/relsymlink the files into the datastore, or record them where they "
    "are (direct; the repository never deletes them); auto is direct for files already inside the "
    "datastore root and copy otherwise.",
)
@click.option(
    "--formatter",
    default=None,
    metavar="MODULE.CLASS",
    help="Formatter that reads the files [default: the one configured for the dataset type].",
)
@click.option(
    "--prefix",
    default=None,
    metavar="DIR",
    help="Directory or URI that relative file paths in TABLE are relative to [default: TABLE's directory].",
)
@progress_option
def ingest_files(
    repo: str,
    dataset_type: str,
    run: str,
    table: Path,
    data_id: dict[str, str],
    transfer: str,
    formatter: str | None,
    prefix: str | None,
    progress: bool | None,
) -> None:
    """Ingest files listed in a table as datasets.

    The files listed in TABLE become datasets of DATASET_TYPE in the RUN collection RUN.
    TABLE is CSV, ECSV or Parquet (by its suffix: .csv, .ecsv, .parquet). Its first column is each
    file's path or URI, whatever the column's name; the other columns are named after dimensions of
    DATASET_TYPE and hold the file's data ID values (--data-id gives values shared by all rows).
    RUN is created if absent. All files are ingested, or none.
    """
    show = Progress(progress)
    with Butler(repo) as butler:
        target = butler.registry.get_dataset_type(dataset_type)
        if target.component is not None:
            raise DatasetTypeError(f"Cannot ingest component {dataset_type}; ingest {target.parent_name}.")
        if formatter is not None:
            formatter_class(formatter)  # an unknown formatter is named before anything is read
        rows = read_ingest_table(table, target.dimensions, constants=data_id, prefix=prefix)
        if not rows:
            click.echo(f"{table} lists no files; nothing ingested.")
            return
        datasets = []
        with show.items(rows, "Checking files") as checked:
            for row in checked:
                if not row.uri.exists():
                    where = row.uri.ospath if row.uri.isLocal else str(row.uri)
                    raise IngestError(f"{row.where}: no such file {where}; nothing was ingested.")
                datasets.append(
                    FileDataset(str(row.uri), [DatasetRef.new(target, row.data_id, run)], formatter)
                )
        what = f"Ingested {len(datasets)} file(s) with transfer={transfer}"
        with show.step(f"Ingesting {len(datasets)} file(s)"), log_duration(_LOG, what):
            butler.ingest(*datasets, transfer=transfer)
    click.echo(f"Ingested {len(datasets)} file(s) into {run}.")


# -- between repositories ---------------------------------------------------------------------------


@click.command()
@repo_argument
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
@dataset_selection_options(find_first=False)
@progress_option
def export(
    repo: str,
    directory: Path,
    collections: tuple[str, ...],
    dataset_types: tuple[str, ...],
    where: str,
    bind: dict[str, Any],
    find_first: bool,
    progress: bool | None,
) -> None:
    """Export datasets and their files to a directory.

    The datasets the query finds go to DIRECTORY (new, or empty), which receives a copy of each file and an export.yaml manifest with the datasets' types,
    runs and dimension records; `butler import` brings it into another repository.
    """
    with Butler(repo) as butler:
        refs = select_datasets(
            butler.registry, dataset_types, collections, where, bind, find_first=find_first
        )
        what = f"Exported {len(refs)} dataset(s)"
        with Progress(progress).items(refs, "Exporting") as items, log_duration(_LOG, what):
            manifest = butler.export(directory, items)
    click.echo(f"Exported {len(refs)} dataset(s) to {directory} (manifest: {manifest.name}).")


@click.command("import")
@repo_argument
@click.argument("directory", type=click.Path(exists=True, file_okay=False, path_type=Path))
@progress_option
def import_(repo: str, directory: Path, progress: bool | None) -> None:
    """Import datasets written by `butler export`.

    The datasets of DIRECTORY are brought into REPO.
    Dimension records, dataset types and runs are created as needed and the files copied into the
    datastore. Datasets already in REPO (same UUID) are skipped, so importing twice is harmless.
    """
    timed = log_duration(_LOG, f"Imported {directory}")
    with Butler(repo) as butler, Progress(progress).step("Importing"), timed:
        refs = butler.import_(directory)
    click.echo(f"Imported {len(refs)} new dataset(s) from {directory}.")


@click.command("transfer-datasets")
@click.argument("source")
@click.argument("dest")
@dataset_selection_options(find_first=False)
@progress_option
def transfer_datasets(
    source: str,
    dest: str,
    collections: tuple[str, ...],
    dataset_types: tuple[str, ...],
    where: str,
    bind: dict[str, Any],
    find_first: bool,
    progress: bool | None,
) -> None:
    """Copy datasets to another repository.

    The datasets the query finds in repository SOURCE are copied into repository DEST.
    Datasets keep their UUIDs and runs; dimension records, dataset types and runs they need are
    created in DEST. Datasets DEST already has are skipped.
    """
    with Butler(source) as source_butler, Butler(dest) as dest_butler:
        refs = select_datasets(
            source_butler.registry, dataset_types, collections, where, bind, find_first=find_first
        )
        what = f"Transferred {len(refs)} dataset(s)"
        with Progress(progress).items(refs, "Transferring") as items, log_duration(_LOG, what):
            moved = dest_butler.transfer_from(source_butler, items)
    present = f" ({len(refs) - len(moved)} already present)" if len(refs) > len(moved) else ""
    click.echo(f"Transferred {len(moved)} dataset(s) from {source} to {dest}{present}.")


# -- files out --------------------------------------------------------------------------------------


@click.command("retrieve-artifacts")
@repo_argument
@click.argument("destination")
@dataset_selection_options(find_first=False)
@click.option(
    "--preserve-path/--no-preserve-path",
    default=True,
    show_default=True,
    help="Keep each file's path relative to the datastore root below DESTINATION; otherwise put every "
    "file directly in DESTINATION.",
)
@click.option(
    "--clobber/--no-clobber",
    default=False,
    show_default=True,
    help="Overwrite files that already exist in DESTINATION (otherwise they are an error).",
)
@progress_option
def retrieve_artifacts(
    repo: str,
    destination: str,
    collections: tuple[str, ...],
    dataset_types: tuple[str, ...],
    where: str,
    bind: dict[str, Any],
    find_first: bool,
    preserve_path: bool,
    clobber: bool,
    progress: bool | None,
) -> None:
    """Copy the files of datasets to a local directory.

    The files of the datasets the query finds are copied into DESTINATION.
    Prints each file copied, then how many. The repository is not changed.
    """
    with Butler(repo) as butler:
        refs = select_datasets(
            butler.registry, dataset_types, collections, where, bind, find_first=find_first
        )
        what = f"Retrieved the files of {len(refs)} dataset(s)"
        with Progress(progress).items(refs, "Retrieving") as items, log_duration(_LOG, what):
            try:
                copies = butler.retrieve_artifacts(
                    items, destination, preserve_path=preserve_path, overwrite=clobber
                )
            except FileNotFoundError as err:  # Butler.retrieve_artifacts does not wrap a missing file yet
                raise DatasetFileMissingError(f"Cannot retrieve a dataset's file: {err}") from err
    for copy in copies:
        click.echo(copy.ospath if copy.isLocal else str(copy))
    click.echo(f"Retrieved {len(copies)} file(s) of {len(refs)} dataset(s) into {destination}.")


# -- removing ---------------------------------------------------------------------------------------


@click.command("prune-datasets")
@repo_argument
@dataset_selection_options(find_first=False)
@confirm_option
@progress_option
def prune_datasets(
    repo: str,
    collections: tuple[str, ...],
    dataset_types: tuple[str, ...],
    where: str,
    bind: dict[str, Any],
    find_first: bool,
    no_confirm: bool,
    progress: bool | None,
) -> None:
    """Delete datasets and their files.

    The datasets the query finds lose their files, datastore records and registry entries.
    Shows how many datasets of each type and run will be deleted and asks for confirmation
    (unless --no-confirm). Datasets leave every collection, TAGGED and CALIBRATION ones included.
    At least one of --collections, --dataset-type and --where is needed.
    """
    if not (collections or dataset_types or where):
        raise click.UsageError(
            "Give --collections, --dataset-type or --where: prune-datasets never selects every dataset "
            "of a repository by default."
        )
    with Butler(repo) as butler:
        refs = select_datasets(
            butler.registry, dataset_types, collections, where, bind, find_first=find_first
        )
        if not refs:
            click.echo("No datasets found; nothing to delete.")
            return
        counts = Counter((ref.dataset_type.name, ref.run) for ref in refs)
        rows = [{"type": name, "run": run, "datasets": n} for (name, run), n in sorted(counts.items())]
        click.echo("These datasets will be deleted with their files:")
        click.echo(render_table(rows, ["type", "run", "datasets"]))
        if not _confirmed(no_confirm, f"Delete {len(refs)} dataset(s)?"):
            return
        with Progress(progress).step("Deleting"), log_duration(_LOG, f"Pruned {len(refs)} dataset(s)"):
            butler.prune_datasets(refs)
    click.echo(f"Deleted {len(refs)} dataset(s).")


@click.command("remove-runs")
@repo_argument
@click.argument("runs", nargs=-1, required=True)
@confirm_option
@progress_option
def remove_runs(repo: str, runs: tuple[str, ...], no_confirm: bool, progress: bool | None) -> None:
    """Delete runs with their datasets and files.

    RUNS are names or shell-style patterns. Shows each run and how many datasets it holds and asks
    for confirmation (unless --no-confirm). A run that a chained collection lists is refused, and
    then nothing is removed: take it out of the chain first (collection-chain --mode remove).
    """
    with Butler(repo) as butler:
        registry = butler.registry
        names = _run_names(registry, runs)
        if not names:
            click.echo("No RUN collections match; nothing to remove.")
            return
        for name in names:
            parents = registry.get_collection_parent_chains(name)
            if parents:
                raise OrphanedRecordError(
                    f"RUN collection {name!r} is listed by chained collection(s) {', '.join(parents)}; "
                    f"remove it from them first (butler collection-chain REPO CHAIN --mode remove {name}). "
                    "Nothing was removed."
                )
        dataset_types = registry.query_dataset_types("*")
        counts = {
            name: sum(len(registry.query_datasets(t, name, find_first=False)) for t in dataset_types)
            for name in names
        }
        click.echo("These RUN collections will be deleted with their datasets and files:")
        click.echo(render_table([{"run": n, "datasets": c} for n, c in counts.items()], ["run", "datasets"]))
        total = sum(counts.values())
        if not _confirmed(no_confirm, f"Delete {len(names)} run(s) and {total} dataset(s)?"):
            return
        what = f"Removed {len(names)} run(s)"
        with Progress(progress).items(names, "Removing runs") as items, log_duration(_LOG, what):
            butler.remove_runs(items)
    click.echo(f"Removed {len(names)} RUN collection(s) and {total} dataset(s).")


def _run_names(registry: Registry, patterns: Sequence[str]) -> list[str]:
    """RUN collections named by ``patterns``; a plain name must be an existing RUN collection."""
    names: dict[str, None] = {}
    for pattern in patterns:
        if any(char in pattern for char in "*?["):
            names.update(dict.fromkeys(registry.query_collections(pattern, types={CollectionType.RUN})))
        else:
            collection_type = registry.get_collection_type(pattern)  # raises if there is none
            if collection_type is not CollectionType.RUN:
                raise CollectionTypeError(
                    f"{pattern!r} is a {collection_type.name} collection, not a RUN; "
                    "remove-runs removes RUN collections only (see remove-collections)."
                )
            names[pattern] = None
    return list(names)


def _confirmed(no_confirm: bool, question: str) -> bool:
    """Whether to go on: yes with --no-confirm, else the user's answer (saying so when it is no)."""
    if no_confirm or click.confirm(question, default=False):
        return True
    click.echo("Aborted; nothing was deleted.")
    return False


COMMANDS = (
    ingest_files,
    export,
    import_,
    transfer_datasets,
    retrieve_artifacts,
    prune_datasets,
    remove_runs,
)
"""The commands of this module, for the ``butler`` group."""
