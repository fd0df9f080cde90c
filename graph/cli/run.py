"""``pipetask run``: execute a quantum graph locally against a data repository, with N processes.

The graph is read from ``-g FILE`` or built from ``-p PIPELINE -i INPUTS -o OUTPUT -d WHERE`` as
``pipetask qgraph`` does. `graph.execute.execute_graph` does the work; this module parses options,
shows progress, and prints the per-task summary. The exit code is 0 only if every quantum
succeeded (or found no work, or was skipped as already done); 1 if one failed, was blocked or not
run; 3 if a failure lies outside the tasks (a missing input file).
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import click
import yaml

from butler.butler import Butler
from butler.collections import CollectionType

from ..builder import QuantumGraphBuilder, default_output_run
from ..execute import ExecutionOptions, Progress, execute_graph
from ..execute_report import ExecutionReport
from ..pipeline_graph import PipelineGraph
from ..qgraph_io import read_quantum_graph, write_quantum_graph
from ..quantum_graph import QuantumGraph
from .build import PipelineCommand, load_pipeline

__all__ = ["run"]

_LOG = logging.getLogger(__name__)

_MAX_FAILURES_SHOWN = 20


def _split(values: Sequence[str]) -> list[str]:
    return [part.strip() for value in values for part in value.split(",") if part.strip()]


@click.command(cls=PipelineCommand, short_help="Run a quantum graph locally with N processes.")
@click.option("-b", "--butler-config", "repo", required=True, metavar="REPO", help="Data repository.")
@click.option(
    "-g", "--qgraph", "qgraph", metavar="FILE", help="Run this .qg file (made by 'pipetask qgraph')."
)
@click.option(
    "-p", "--pipeline", "pipeline", metavar="PIPELINE[#LABELS]", help="Build the graph from this pipeline."
)
@click.option(
    "-c",
    "--config",
    "config_overrides",
    multiple=True,
    metavar="LABEL:FIELD=VALUE",
    help="With -p: set a config field.",
)
@click.option(
    "-C",
    "--config-file",
    "config_files",
    multiple=True,
    metavar="LABEL:FILE.py",
    help="With -p: config override file.",
)
@click.option(
    "-i",
    "--input",
    "inputs",
    multiple=True,
    metavar="COLLECTION",
    help="With -p: input collections (repeatable or comma-separated).",
)
@click.option(
    "-o",
    "--output",
    "output",
    metavar="COLLECTION",
    help="With -p: CHAINED output collection (output run + inputs).",
)
@click.option(
    "--output-run",
    "output_run",
    metavar="RUN",
    help="With -p: RUN collection for outputs (default <output>/<timestamp>).",
)
@click.option(
    "-d", "--data-query", "where", default="", metavar="WHERE", help="With -p: data query expression."
)
@click.option("--save-qgraph", "save_qgraph", metavar="FILE", help="With -p: also save the built graph here.")
@click.option(
    "-j", "--processes", type=click.IntRange(min=1), default=1, show_default=True, help="Worker processes."
)
@click.option(
    "--fail-fast", is_flag=True, help="Stop starting quanta at the first failure (default: keep going)."
)
@click.option(
    "--timeout",
    type=click.FloatRange(min=0, min_open=True),
    metavar="SECONDS",
    help="Kill a quantum running longer than this (it is reported failed).",
)
@click.option(
    "--skip-existing", is_flag=True, help="Skip quanta whose outputs are in the output run already."
)
@click.option(
    "--clobber-outputs",
    is_flag=True,
    help="Replace partial outputs (e.g. of failed quanta) already in the output run.",
)
@click.option("--extend-run", is_flag=True, help="Add to an existing output run.")
@click.option("--register-dataset-types", is_flag=True, help="Register dataset types the repository lacks.")
@click.option(
    "--clobber-config", is_flag=True, help="Replace stored configs that differ from the current ones."
)
@click.option("--clobber-versions", is_flag=True, help="Replace a stored package list that differs.")
@click.option(
    "--progress/--no-progress", default=None, help="Show a progress bar (default: when stderr is a terminal)."
)
@click.pass_context
def run(
    ctx: click.Context,
    repo: str,
    qgraph: str | None,
    pipeline: str | None,
    config_overrides: tuple[str, ...],
    config_files: tuple[str, ...],
    inputs: tuple[str, ...],
    output: str | None,
    output_run: str | None,
    where: str,
    save_qgraph: str | None,
    processes: int,
    fail_fast: bool,
    timeout: float | None,
    skip_existing: bool,
    clobber_outputs: bool,
    extend_run: bool,
    register_dataset_types: bool,
    clobber_config: bool,
    clobber_versions: bool,
    progress: bool | None,
) -> None:
    """Run the quanta of a graph in dependency order, registering their outputs in REPO.

    Failures do not stop independent quanta unless --fail-fast; quanta downstream of a failure are
    reported as blocked. The output collection (-o) is created or updated only if every quantum
    succeeded.
    """
    if (qgraph is None) == (pipeline is None):
        raise click.UsageError("Give exactly one of -g/--qgraph FILE and -p/--pipeline PIPELINE.")
    if qgraph is not None:
        used = [
            flag
            for flag, value in (
                ("-c", config_overrides),
                ("-C", config_files),
                ("-i", inputs),
                ("-o", output),
                ("--output-run", output_run),
                ("-d", where),
                ("--save-qgraph", save_qgraph),
            )
            if value
        ]
        if used:
            raise click.UsageError(f"{', '.join(used)} only apply with -p; a graph file fixes them.")
        graph = read_quantum_graph(qgraph)
        graph_path: str | None = qgraph
    else:
        assert pipeline is not None
        graph = _build(
            ctx,
            repo,
            pipeline,
            config_overrides,
            config_files,
            _split(inputs),
            output,
            output_run,
            where,
            skip_existing=skip_existing,
            clobber_outputs=clobber_outputs,
            extend_run=extend_run,
        )
        graph_path = None
        if save_qgraph:
            write_quantum_graph(graph, save_qgraph)
            graph_path = save_qgraph
    options = ExecutionOptions(
        processes=processes,
        fail_fast=fail_fast,
        timeout=timeout,
        skip_existing=skip_existing,
        clobber_outputs=clobber_outputs,
        extend_run=extend_run,
        register_dataset_types=register_dataset_types,
        clobber_config=clobber_config,
        clobber_versions=clobber_versions,
        log_level=logging.getLogger().getEffectiveLevel(),
    )
    show = sys.stderr.isatty() if progress is None else progress
    with _progress_bar(graph.quantum_count(), show) as advance:
        report = execute_graph(repo, graph, options, graph_path=graph_path, progress=advance)
    _print(report, graph)
    ctx.exit(report.exit_code)


def _build(
    ctx: click.Context,
    repo: str,
    pipeline: str,
    config_overrides: Sequence[str],
    config_files: Sequence[str],
    inputs: list[str],
    output: str | None,
    output_run: str | None,
    where: str,
    *,
    skip_existing: bool,
    clobber_outputs: bool,
    extend_run: bool,
) -> QuantumGraph:
    """Build the graph as ``pipetask qgraph`` does (same defaults for the output run and inputs)."""
    loaded = load_pipeline(ctx, pipeline, config_overrides, config_files)
    pipeline_graph = PipelineGraph.from_pipeline(loaded)
    with Butler(repo) as butler:
        registry = butler.registry
        chain = (
            registry.get_collection_chain(output)
            if output is not None
            and registry.has_collection(output)
            and registry.get_collection_type(output) is CollectionType.CHAINED
            else ()
        )
        if output_run is None:
            if output is None:
                raise click.UsageError("-p needs -o/--output (a CHAINED collection) or --output-run.")
            output_run = str(chain[0]) if extend_run and chain else default_output_run(output)
        if not inputs:
            if not chain:
                raise click.UsageError(
                    "Give input collections with -i (no existing -o chain to read them from)."
                )
            inputs = [str(output)]
        return QuantumGraphBuilder(
            pipeline_graph,
            butler,
            inputs,
            output_run,
            where,
            skip_existing_in=[output_run] if skip_existing else [],
            clobber_outputs=clobber_outputs,
            extend_run=extend_run,
            output=output,
            pipeline_yaml=yaml.safe_dump(loaded.expand_overrides().to_primitives(), sort_keys=False),
        ).build()


@contextmanager
def _progress_bar(total: int, show: bool) -> Iterator[Progress]:
    if not show:
        yield lambda n: None
        return
    with click.progressbar(length=total, label="Running quanta", file=sys.stderr, show_pos=True) as bar:
        yield bar.update


def _print(report: ExecutionReport, graph: QuantumGraph) -> None:
    click.echo(report.format_summary())
    for failure in report.failures[:_MAX_FAILURES_SHOWN]:
        click.echo(f"FAILED {failure.describe()}", err=True)
    if len(report.failures) > _MAX_FAILURES_SHOWN:
        click.echo(f"... and {len(report.failures) - _MAX_FAILURES_SHOWN} more failures.", err=True)
    run = graph.metadata.output_run
    if report.succeeded:
        where = f" (output collection {graph.metadata.output})" if graph.metadata.output else ""
        click.echo(
            f"All {report.total()} quanta succeeded in {report.wall_time:.1f} s; outputs in {run}{where}."
        )
    else:
        click.echo(
            f"Not every quantum succeeded ({report.wall_time:.1f} s); outputs so far are in {run}. Fix the "
            "cause and re-run with --extend-run --skip-existing --clobber-outputs.",
            err=True,
        )
