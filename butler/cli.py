"""The ``butler`` command: create data repositories, fill their registry, and query it from a shell."""

from __future__ import annotations

import contextlib
import graphlib
import logging
import traceback
from collections.abc import Callable, Mapping, Sequence
from importlib.metadata import EntryPoint, entry_points
from pathlib import Path
from typing import Any, TypeVar

import click
from sqlalchemy.engine import make_url

from .cli_format import (
    OUTPUT_FORMATS,
    RecordFileError,
    dataset_row,
    read_record_file,
    record_columns,
    record_row,
    render,
    sort_key,
)
from .collections import ChainMode, CollectionType
from .datasets import DatasetType
from .errors import ButlerError
from .registry import Registry
from .repository import create_repository, open_registry

__all__ = ["COMMAND_ENTRY_POINTS", "ButlerGroup", "main"]

_LOG = logging.getLogger(__name__)

COMMAND_ENTRY_POINTS = "quanta.butler_commands"
"""Entry-point group through which higher layers add ``butler`` subcommands (click commands)."""

LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
_F = TypeVar("_F", bound=Callable[..., Any])


class ButlerGroup(click.Group):
    """The ``butler`` group: the one place errors become messages; also loads plugin subcommands.

    A `ButlerError` from any subcommand is shown as ``Error: <message>`` and the process exits with
    the error's ``exit_code``; the traceback is printed too only with ``--log-level DEBUG``.
    """

    def invoke(self, ctx: click.Context) -> Any:
        """Run the subcommand; report a `ButlerError` as one line and exit with its code."""
        try:
            return super().invoke(ctx)
        except ButlerError as err:
            _show_traceback(ctx)
            click.echo(f"Error: {err}", err=True)
            ctx.exit(err.exit_code)
        except click.ClickException:
            _show_traceback(ctx)
            raise

    def list_commands(self, ctx: click.Context) -> list[str]:
        """Built-in subcommands plus those registered under `COMMAND_ENTRY_POINTS`."""
        return sorted({*super().list_commands(ctx), *(ep.name for ep in _command_entry_points())})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        """A built-in subcommand, or one loaded from its entry point (None if it cannot be loaded)."""
        command = super().get_command(ctx, cmd_name)
        if command is not None:
            return command
        for entry_point in _command_entry_points():
            if entry_point.name == cmd_name:
                try:
                    loaded = entry_point.load()
                except Exception as err:  # A broken plugin must not break the other commands.
                    _LOG.warning(
                        "Cannot load butler subcommand %r from %s: %s", cmd_name, entry_point.value, err
                    )
                    return None
                if isinstance(loaded, click.Command):
                    return loaded
                _LOG.warning("Entry point %s (%s) is not a click command.", cmd_name, entry_point.value)
        return None


def _command_entry_points() -> list[EntryPoint]:
    return list(entry_points(group=COMMAND_ENTRY_POINTS))


def _show_traceback(ctx: click.Context) -> None:
    if ctx.params.get("log_level") == "DEBUG":
        click.echo(traceback.format_exc(), err=True, nl=False)


def _configure_logging(level: str) -> None:
    logging.basicConfig(format="%(levelname)s %(name)s: %(message)s")  # no-op if already configured
    logging.getLogger().setLevel(level)


@click.group(cls=ButlerGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--log-level",
    type=click.Choice(LOG_LEVELS, case_sensitive=False),
    metavar="[" + "|".join(LOG_LEVELS) + "]",
    default="WARNING",
    show_default=True,
    help="Logging threshold; DEBUG also prints the traceback of an error.",
)
def main(log_level: str) -> None:
    """Create, fill and query quanta data repositories."""
    _configure_logging(log_level)


# -- shared arguments and options ------------------------------------------------------------------


def _split_commas(values: Sequence[str]) -> tuple[str, ...]:
    """Values of a repeatable option, each possibly comma-separated, flattened and stripped."""
    return tuple(part.strip() for value in values for part in value.split(",") if part.strip())


def _parse_bind(_ctx: click.Context, _param: click.Parameter, values: Sequence[str]) -> dict[str, Any]:
    """``NAME=VALUE`` pairs -> mapping; values become int or float when they read as one."""
    bind: dict[str, Any] = {}
    for item in values:
        name, sep, text = item.partition("=")
        if not sep or not name.strip():
            raise click.BadParameter(f"expected NAME=VALUE, got {item!r}.")
        bind[name.strip()] = _bind_value(text)
    return bind


def _bind_value(text: str) -> int | float | str:
    if any(char.isdigit() for char in text):  # so that e.g. "nan" or "inf" stay strings
        with contextlib.suppress(ValueError):
            return int(text)
        with contextlib.suppress(ValueError):
            return float(text)
    return text


def _comma_list(_ctx: click.Context, _param: click.Parameter, values: Sequence[str]) -> tuple[str, ...]:
    return _split_commas(values)


def _repo_argument(function: _F) -> _F:
    return click.argument("repo")(function)


def _format_option(function: _F) -> _F:
    return click.option(
        "--format",
        "output_format",
        type=click.Choice(OUTPUT_FORMATS),
        default="table",
        show_default=True,
        help="Output as an aligned table, a JSON list of objects, or CSV.",
    )(function)


def _where_options(function: _F) -> _F:
    function = click.option(
        "--bind",
        multiple=True,
        callback=_parse_bind,
        metavar="NAME=VALUE",
        help="Value of a bind parameter (:NAME) of the WHERE expression; repeatable. Numbers become int/float.",
    )(function)
    return click.option(
        "--where",
        "-d",
        default="",
        help="WHERE expression constraining the results, e.g. \"instrument = 'DemoCam' AND exposure > 10\".",
    )(function)


def _limit_option(function: _F) -> _F:
    return click.option(
        "--limit",
        type=click.IntRange(min=1),
        default=None,
        help="Show at most this many results (after sorting).",
    )(function)


def _collections_option(help_text: str) -> Callable[[_F], _F]:
    return click.option(
        "--collections", multiple=True, callback=_comma_list, metavar="NAME[,NAME...]", help=help_text
    )


def _emit(rows: Sequence[Mapping[str, Any]], columns: Sequence[str], output_format: str, empty: str) -> None:
    """Print rows in the requested format; a table with no rows is replaced by ``empty``."""
    if not rows and output_format == "table":
        click.echo(empty)
    else:
        click.echo(render(rows, columns, output_format))


def _limited(rows: list[dict[str, Any]], limit: int | None, noun: str) -> list[dict[str, Any]]:
    if limit is None or len(rows) <= limit:
        return rows
    click.echo(f"Showing the first {limit} of {len(rows)} {noun}.", err=True)
    return rows[:limit]


# -- repositories -----------------------------------------------------------------------------------


@main.command()
@_repo_argument
@click.option(
    "--db", default=None, help="SQLAlchemy URL of the registry database [default: SQLite file in REPO]."
)
@click.option(
    "--namespace", default=None, help="PostgreSQL schema for the registry tables (created if absent)."
)
def create(repo: str, db: str | None, namespace: str | None) -> None:
    """Create an empty data repository.

    REPO is the directory to create it in (it may exist, but must not hold a repository yet).
    A registry that already exists at REPO or in the database is never overwritten.
    """
    config = create_repository(repo, db=db, namespace=namespace)
    where = make_url(config.db).render_as_string(hide_password=True)
    if config.namespace:
        where += f", namespace {config.namespace}"
    click.echo(f"Created data repository {config.root} (registry: {where}).")


# -- dimension records ------------------------------------------------------------------------------


@main.command("insert-dimension-records")
@_repo_argument
@click.argument("element")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, readable=True, path_type=Path))
@click.option("--skip-existing", is_flag=True, help="Skip records whose keys exist already (not compared).")
@click.option(
    "--sync", is_flag=True, help="Skip records that exist identically; a conflicting one is an error."
)
def insert_dimension_records(repo: str, element: str, file: Path, skip_existing: bool, sync: bool) -> None:
    """Insert dimension records of ELEMENT (e.g. exposure) from FILE.

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


@main.command("register-dataset-type")
@_repo_argument
@click.argument("name")
@click.argument("storage_class")
@click.argument("dimensions", nargs=-1)
@click.option(
    "--is-calibration", is_flag=True, help="Datasets of this type are calibrations (certified by time)."
)
def register_dataset_type(
    repo: str, name: str, storage_class: str, dimensions: tuple[str, ...], is_calibration: bool
) -> None:
    """Register dataset type NAME with STORAGE_CLASS and DIMENSIONS.

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


@main.command("query-dataset-types")
@_repo_argument
@click.argument("globs", nargs=-1)
@click.option("--verbose", "-v", is_flag=True, help="Also show dimensions, storage class and is_calibration.")
@_format_option
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
    _emit(rows, columns, output_format, "No dataset types found.")


# -- collections ------------------------------------------------------------------------------------


@main.command("collection-chain")
@_repo_argument
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
    """Define or change the chained collection PARENT and print its children.

    CHILDREN are collection names (or, with --mode pop, positions), separately or comma-separated.
    PARENT is created as a CHAINED collection if it does not exist (except with remove/pop).
    The change is refused if PARENT would end up containing itself.
    """
    chain_mode = ChainMode(mode)
    names = _split_commas(children)
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


@main.command("remove-collections")
@_repo_argument
@click.argument("collections", nargs=-1, required=True)
@click.option(
    "--purge", is_flag=True, help="Also delete the datasets of RUN collections (needed if they have any)."
)
def remove_collections(repo: str, collections: tuple[str, ...], purge: bool) -> None:
    """Remove COLLECTIONS from the registry, all of them or none.

    A chain is removed before its children; a collection still listed by a chain that is not
    removed too is refused. A RUN holding datasets is refused unless --purge is given.
    """
    with open_registry(repo) as registry, registry.transaction():
        order = _parents_first(registry, _split_commas(collections))
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


@main.command("query-collections")
@_repo_argument
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
@_format_option
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
    _emit(rows, columns, output_format, "No collections found.")


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


# -- queries ----------------------------------------------------------------------------------------


@main.command("query-data-ids")
@_repo_argument
@click.argument("dimensions", nargs=-1)
@click.option(
    "--datasets",
    multiple=True,
    callback=_comma_list,
    metavar="NAME[,NAME...]",
    help="Only data IDs for which datasets of these types exist in --collections; repeatable.",
)
@_collections_option("Collections searched for --datasets, in order; repeatable.")
@_where_options
@_limit_option
@_format_option
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
    """List the data IDs of DIMENSIONS that satisfy the constraints.

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
    _emit(_limited(rows, limit, "data IDs"), columns, output_format, "No data IDs found.")


@main.command("query-dimension-records")
@_repo_argument
@click.argument("element")
@_where_options
@_limit_option
@_format_option
def query_dimension_records(
    repo: str, element: str, where: str, bind: dict[str, Any], limit: int | None, output_format: str
) -> None:
    """List the records of dimension ELEMENT (e.g. detector) that satisfy the constraints.

    Timespans are shown as ISO-8601 UTC begin/end columns. Regions are left out of tables and
    given as hex-encoded bytes in JSON and CSV (so CSV output can be inserted elsewhere).
    """
    with open_registry(repo) as registry:
        dimension = registry.universe[element]
        records = registry.query_dimension_records(dimension.name, where=where, bind=bind)
    key_count = len(dimension.key_columns)
    rows = sorted((record_row(r) for r in records), key=lambda row: sort_key(list(row.values())[:key_count]))
    columns = record_columns(dimension, with_region=output_format != "table")
    _emit(
        _limited(rows, limit, f"{dimension.name} records"),
        columns,
        output_format,
        f"No {dimension.name} records found.",
    )


@main.command("query-datasets")
@_repo_argument
@click.argument("dataset_types", nargs=-1)
@_collections_option(
    "Collections to search, in order; repeatable. Without it every collection is searched and every "
    "matching dataset listed."
)
@_where_options
@click.option(
    "--find-first/--find-all",
    default=True,
    show_default=True,
    help="--find-first: per data ID, only the dataset in the first collection that has one; "
    "--find-all: every dataset in any of the collections.",
)
@_limit_option
@_format_option
def query_datasets(
    repo: str,
    dataset_types: tuple[str, ...],
    collections: tuple[str, ...],
    where: str,
    bind: dict[str, Any],
    find_first: bool,
    limit: int | None,
    output_format: str,
) -> None:
    """List datasets of DATASET_TYPES in the given collections.

    DATASET_TYPES are names or shell-style patterns; none means every registered dataset type.
    Tables show one block per dataset type: type, run, id, then the data ID.
    """
    with open_registry(repo) as registry:
        search = list(collections)
        if not search:
            search = registry.query_collections("*", include_chains=False)
            find_first = False
        rows: list[dict[str, Any]] = []
        for dataset_type in _matching_dataset_types(registry, dataset_types):
            refs = registry.query_datasets(
                dataset_type.name, search, where=where, bind=bind, find_first=find_first
            )
            rows.extend(sorted((dataset_row(ref) for ref in refs), key=_dataset_sort_key))
        universe = registry.universe
    rows = _limited(rows, limit, "datasets")
    if not rows or output_format != "table":
        keys = universe.sorted({key for row in rows for key in row} - {"type", "run", "id"})
        _emit(rows, ["type", "run", "id", *keys], output_format, "No datasets found.")
        return
    blocks: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        blocks.setdefault(row["type"], []).append(row)
    tables = [render(block, list(block[0]), "table") for block in blocks.values()]
    click.echo("\n\n".join(tables))


def _dataset_sort_key(row: Mapping[str, Any]) -> tuple[tuple[bool, Any], ...]:
    data_id = [value for key, value in row.items() if key not in ("type", "run", "id")]
    return sort_key([*data_id, row["run"], row["id"]])


def _matching_dataset_types(registry: Registry, names: Sequence[str]) -> list[DatasetType]:
    """Dataset types named or matched by glob ``names`` (all of them if none), sorted by name."""
    if not names:
        return registry.query_dataset_types("*")
    found: dict[str, DatasetType] = {}
    for name in names:
        if any(char in name for char in "*?["):
            found.update((t.name, t) for t in registry.query_dataset_types(name))
        else:
            found[name] = registry.get_dataset_type(name)  # raises, with suggestions, if unknown
    return [found[name] for name in sorted(found)]
