"""``butler`` subcommands that fill a repository for an instrument: register it, write its calibrations, ingest raws, define visits, ingest a reference catalog.

They reach the ``butler`` command through the ``quanta.butler_commands`` entry points. The butler
group turns `ButlerError` into a message; `graph_errors` does the same here for `GraphError`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import click
import pyarrow.parquet as pq

from butler import DatasetRef, DatasetType
from butler.butler import Butler
from butler.cli.options import Progress, collections_option, progress_option, repo_argument
from butler.data_coordinate import DataCoordinate
from butler.ingest import TRANSFER_MODES, FileDataset

from ..errors import UnknownInstrumentError
from ..instrument import Instrument, installed_instruments
from ..raw_ingest import INDEX_NAME, IngestReport
from ..raw_ingest import ingest_raws as ingest_raw_files
from ..visits import define_visits as define_instrument_visits
from .errors import graph_errors

__all__ = [
    "define_visits",
    "ingest_raws",
    "ingest_refcat",
    "register_instrument",
    "write_curated_calibrations",
]

F = TypeVar("F", bound=Callable[..., Any])

_SKIPPED_SHOWN = 20
"""How many skipped files ingest-raws lists one by one."""


class InstrumentParam(click.ParamType):  # type: ignore[type-arg]
    """An instrument given by short name (entry point) or dotted class path."""

    name = "instrument"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Instrument:
        """The `Instrument`; an unknown name is a usage error listing the installed instruments."""
        if isinstance(value, Instrument):
            return value
        try:
            return Instrument.from_name(str(value))
        except UnknownInstrumentError as err:
            self.fail(str(err), param, ctx)

    def shell_complete(
        self, ctx: click.Context, param: click.Parameter, incomplete: str
    ) -> list[click.shell_completion.CompletionItem]:
        """Installed instrument names starting with ``incomplete``."""
        return [
            click.shell_completion.CompletionItem(name)
            for name in sorted(installed_instruments())
            if name.startswith(incomplete)
        ]


def _instrument_help(text: str) -> str:
    """A command's help text followed by the installed instruments."""
    names = ", ".join(sorted(installed_instruments())) or "none"
    return (
        f"{text}\n\nINSTRUMENT is the short name of an installed instrument ({names}) or the dotted "
        "path of an Instrument class."
    )


def _instrument_argument(function: F) -> F:
    return click.argument("instrument", type=InstrumentParam())(function)


# -- registration and calibrations ----------------------------------------------------------------


@click.command(
    "register-instrument",
    help=_instrument_help(
        "Register an instrument in a repository: its detectors, physical filters and bands, and the raw "
        "dataset type. Running it again changes nothing."
    ),
)
@repo_argument
@_instrument_argument
@graph_errors
def register_instrument(repo: str, instrument: Instrument) -> None:
    with Butler(repo) as butler:
        new = instrument.register(butler.registry)
    if new:
        click.echo(
            f"Registered instrument {instrument.name}: {len(instrument.detectors)} detector(s), "
            f"{len(instrument.physical_filters)} physical filter(s) ({', '.join(instrument.physical_filters)}), "
            f"{new} new record(s)."
        )
    else:
        click.echo(f"Instrument {instrument.name} is already registered; nothing changed.")


@click.command(
    "write-curated-calibrations",
    help=_instrument_help(
        "Write an instrument's curated calibrations and certify them.\n\n"
        "Each calibration goes into the RUN collection <INSTRUMENT>/calib/curated/<validity start> and is "
        "certified into the CALIBRATION collection (--collection) over its validity range. Also creates "
        "the <INSTRUMENT>/defaults CHAINED collection (raws, calibrations, refcats, skymaps). Calibrations "
        "already written are skipped."
    ),
)
@repo_argument
@_instrument_argument
@click.option(
    "--collection",
    default=None,
    metavar="NAME",
    help="CALIBRATION collection to certify into [default: <INSTRUMENT>/calib].",
)
@graph_errors
def write_curated_calibrations(repo: str, instrument: Instrument, collection: str | None) -> None:
    target = collection or instrument.calibration_collection
    with Butler(repo) as butler:
        refs = instrument.write_curated_calibrations(butler, collection)
        chain = butler.registry.get_collection_chain(instrument.defaults_collection)
    if refs:
        runs = sorted({ref.run for ref in refs})
        types = ", ".join(sorted({ref.dataset_type.name for ref in refs}))
        click.echo(
            f"Wrote {len(refs)} curated calibration(s) of {instrument.name} ({types}) into {', '.join(runs)} "
            f"and certified them in {target}."
        )
    else:
        click.echo(f"The curated calibrations of {instrument.name} are already in {target}; nothing written.")
    click.echo(f"{instrument.defaults_collection} = {', '.join(chain)}")


# -- raws and visits ---------------------------------------------------------------------------------


@click.command("ingest-raws")
@repo_argument
@click.argument("locations", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option(
    "--transfer",
    type=click.Choice(TRANSFER_MODES),
    default="auto",
    show_default=True,
    help="copy/move/hardlink/symlink/relsymlink the files into the datastore, or record them where they "
    "are (direct); auto is direct for files already inside the datastore root and copy otherwise.",
)
@click.option(
    "--output-run",
    default=None,
    metavar="RUN",
    help="RUN collection to ingest into [default: <INSTRUMENT>/raw/all].",
)
@click.option(
    "--fail-fast",
    is_flag=True,
    help="Stop at the first bad or duplicate file, ingesting nothing [default: report and skip them].",
)
@click.option(
    "--index/--no-index",
    default=True,
    show_default=True,
    help=f"Read and write the {INDEX_NAME} sidecar in each directory (translated headers of unchanged "
    "files are not read again).",
)
@progress_option
@graph_errors
def ingest_raws(
    repo: str,
    locations: tuple[Path, ...],
    transfer: str,
    output_run: str | None,
    fail_fast: bool,
    index: bool,
    progress: bool | None,
) -> None:
    """Ingest raw files as 'raw' datasets.

    LOCATIONS are FITS files or directories (searched recursively for *.fits). The instrument of
    each file comes from its INSTRUME header keyword; the instrument must be registered. Exposure
    and day_obs records are created as needed. Unreadable files, bad headers and files already
    ingested are listed and skipped (unless --fail-fast).
    """
    with Butler(repo) as butler:
        report = ingest_raw_files(
            butler,
            locations,
            transfer=transfer,
            run=output_run,
            fail_fast=fail_fast,
            progress=Progress(progress),
            use_index=index,
        )
    _show_report(report)


def _show_report(report: IngestReport) -> None:
    headers = f"{report.headers_read} header(s) read, {report.headers_from_index} from {INDEX_NAME}"
    if report.ingested:
        click.echo(
            f"Ingested {len(report.ingested)} raw file(s) into {', '.join(report.runs)} "
            f"({report.new_exposures} new exposure(s); {headers})."
        )
    else:
        click.echo(f"Ingested no raw files ({headers}).")
    if report.already_ingested:
        click.echo(f"Skipped {len(report.already_ingested)} file(s) already ingested.")
    problems = report.bad + report.duplicates
    if problems:
        click.echo(f"Skipped {len(problems)} file(s) with problems:")
        for skipped in sorted(problems, key=lambda s: s.path)[:_SKIPPED_SHOWN]:
            click.echo(f"  {skipped.path}: {skipped.reason}")
        if len(problems) > _SKIPPED_SHOWN:
            click.echo(f"  ... and {len(problems) - _SKIPPED_SHOWN} more.")


@click.command(
    "define-visits",
    help=_instrument_help(
        "Define a visit for every science exposure of an instrument that has none yet.\n\n"
        "Each exposure becomes a one-exposure visit with the same id; visit and per-detector sky regions "
        "come from the exposure's pointing and the camera geometry. Running it again defines nothing new."
    ),
)
@repo_argument
@_instrument_argument
@click.option(
    "--where",
    "-d",
    default="",
    help='WHERE expression selecting exposures, e.g. "exposure.day_obs = 20251230".',
)
@collections_option("Only exposures with raws in these collections; repeatable [default: every exposure].")
@graph_errors
def define_visits(repo: str, instrument: Instrument, where: str, collections: tuple[str, ...]) -> None:
    with Butler(repo) as butler:
        visits = define_instrument_visits(
            butler, instrument, collections=collections or None, where=where or None
        )
    if visits:
        shown = ", ".join(str(v) for v in visits[:10]) + (", ..." if len(visits) > 10 else "")
        click.echo(f"Defined {len(visits)} visit(s) of {instrument.name}: {shown}.")
    else:
        click.echo(f"No new visits: every selected science exposure of {instrument.name} already has one.")


# -- reference catalogs ---------------------------------------------------------------------------------


@click.command("ingest-refcat")
@repo_argument
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--dataset-type",
    default="demo_refcat",
    show_default=True,
    help="Dataset type of the catalog (no dimensions).",
)
@click.option("--run", default="refcats", show_default=True, help="RUN collection to ingest into.")
@click.option(
    "--transfer",
    type=click.Choice(TRANSFER_MODES),
    default="copy",
    show_default=True,
    help="How the file enters the datastore (see ingest-raws).",
)
@graph_errors
def ingest_refcat(repo: str, path: Path, dataset_type: str, run: str, transfer: str) -> None:
    """Ingest a reference catalog (a Parquet file) as one dataset with no dimensions.

    The file needs columns ra and dec (degrees) and one <band>_mag column per band. The dataset
    type (storage class ArrowTable) is registered if needed. A RUN that already holds the dataset
    type is left alone.
    """
    columns = _catalog_columns(path)
    with Butler(repo) as butler:
        registry = butler.registry
        target = DatasetType(dataset_type, (), "ArrowTable", universe=registry.universe)
        registry.register_dataset_type(target)
        if registry.has_collection(run) and registry.query_datasets(dataset_type, run):
            click.echo(f"{run} already holds {dataset_type}; nothing ingested.")
            return
        ref = DatasetRef.new(target, DataCoordinate.make_empty(registry.universe), run)
        butler.ingest(FileDataset(str(path), [ref]), transfer=transfer)
    bands = [c.removesuffix("_mag") for c in columns if c.endswith("_mag")]
    click.echo(
        f"Ingested {path.name} as {dataset_type} into {run} ({', '.join(columns)}; bands {', '.join(bands)})."
    )


def _catalog_columns(path: Path) -> Sequence[str]:
    try:
        names: list[str] = list(pq.read_schema(path).names)
    except (OSError, ValueError) as err:
        raise click.BadParameter(f"{path} is not a readable Parquet file: {err}", param_hint="PATH") from None
    missing = [c for c in ("ra", "dec") if c not in names]
    if missing or not any(c.endswith("_mag") for c in names):
        raise click.BadParameter(
            f"{path} has columns {', '.join(names)}; a reference catalog needs ra, dec and at least one "
            "<band>_mag column.",
            param_hint="PATH",
        )
    return names
