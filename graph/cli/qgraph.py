"""``pipetask qgraph``: build the quantum graph of a pipeline over a data query, report it, save and draw it.

The pipeline options (``-p``, ``-c``, ``-C``) are those of ``pipetask build``. The graph is built
by `graph.builder.QuantumGraphBuilder` and written by `graph.qgraph_io.write_quantum_graph`.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import click
import yaml

from butler.atomic_files import write_text_atomically
from butler.butler import Butler
from butler.collections import CollectionType

from ..builder import QuantumGraphBuilder, default_output_run
from ..pipeline_drawing import to_dot, to_mermaid, to_svg
from ..pipeline_graph import PipelineGraph
from ..qgraph_drawing import MAX_DRAWN_QUANTA, quantum_graph_to_networkx
from ..qgraph_io import write_quantum_graph
from ..quantum_graph import QuantumGraph
from .build import PipelineCommand, load_pipeline, pipeline_options

__all__ = ["qgraph", "summary_text"]

_LOG = logging.getLogger(__name__)


def _split(values: Sequence[str]) -> list[str]:
    """Repeated and comma-separated collection names, in order, without duplicates."""
    names = [name.strip() for value in values for name in value.split(",") if name.strip()]
    return list(dict.fromkeys(names))


def _parse_bind(values: Sequence[str]) -> dict[str, Any]:
    bind: dict[str, Any] = {}
    for value in values:
        name, equals, text = value.partition("=")
        if not equals or not name.strip():
            raise click.BadParameter(f"{value!r} is not NAME=VALUE.", param_hint="--bind")
        try:
            bind[name.strip()] = yaml.safe_load(text)
        except yaml.YAMLError as err:
            raise click.BadParameter(
                f"value of {name!r} is not valid YAML: {err}", param_hint="--bind"
            ) from err
    return bind


def summary_text(graph: QuantumGraph) -> str:
    """Per-task quantum counts, pruned counts and the reasons for pruning, as printed by ``pipetask qgraph``."""
    pruned = graph.pruned_summary()
    labels = graph.task_labels()
    width = max([len("task"), *(len(label) for label in labels)])
    lines = [f"{'task':<{width}}  {'quanta':>8}  {'pruned':>8}"]
    for label in labels:
        not_made = sum(pruned.get(label, {}).values())
        lines.append(f"{label:<{width}}  {graph.quantum_count(label):>8}  {not_made:>8}")
    total = sum(sum(reasons.values()) for reasons in pruned.values())
    lines.append(f"{'total':<{width}}  {graph.quantum_count():>8}  {total:>8}")
    for label, reasons in pruned.items():
        for reason, count in sorted(reasons.items(), key=lambda item: -item[1]):
            lines.append(f"  {label}: {count} not made: {reason}")
    return "\n".join(lines)


def _output_run(registry: Any, output: str | None, output_run: str | None, extend_run: bool) -> str:
    if output_run:
        return output_run
    if output is None:
        raise click.UsageError("Give -o/--output (a CHAINED collection) or --output-run.")
    chained = registry.has_collection(output) and (
        registry.get_collection_type(output) is CollectionType.CHAINED
    )
    if extend_run and chained:
        children = registry.get_collection_chain(output)
        if children:
            return str(children[0])
    return default_output_run(output)


@click.command(cls=PipelineCommand, short_help="Build, report, save and draw a quantum graph.")
@click.option("-b", "--butler-config", "repo", required=True, metavar="REPO", help="Data repository.")
@pipeline_options
@click.option(
    "-i",
    "--input",
    "inputs",
    multiple=True,
    metavar="COLLECTION[,...]",
    help="Input collections, searched in order; repeatable or comma-separated. Defaults to the -o chain.",
)
@click.option("-o", "--output", metavar="CHAIN", help="CHAINED collection of the output run and the inputs.")
@click.option(
    "--output-run", metavar="RUN", help="RUN collection for the outputs (default: OUTPUT/<UTC timestamp>)."
)
@click.option(
    "-d", "--data-query", "where", default="", metavar="WHERE", help="Data query (WHERE expression)."
)
@click.option(
    "--bind", multiple=True, metavar="NAME=VALUE", help="Value (YAML) of an identifier in the query."
)
@click.option("--save-qgraph", type=click.Path(dir_okay=False), help="Write the graph to this .qg file.")
@click.option(
    "--skip-existing-in",
    multiple=True,
    metavar="COLLECTION[,...]",
    help="Leave out quanta whose outputs all exist in these collections; repeatable or comma-separated.",
)
@click.option("--skip-existing", is_flag=True, help="Same as --skip-existing-in with the output run.")
@click.option(
    "--clobber-outputs", is_flag=True, help="Allow outputs that exist in the output run (replaced)."
)
@click.option("--extend-run", is_flag=True, help="Add to an existing output run (the -o chain's first run).")
@click.option("--qgraph-dot", type=click.Path(dir_okay=False), help="Draw the graph as Graphviz DOT here.")
@click.option("--qgraph-mermaid", type=click.Path(dir_okay=False), help="Draw the graph as Mermaid here.")
@click.option("--qgraph-svg", type=click.Path(dir_okay=False), help="Draw the graph as standalone SVG here.")
@click.pass_context
def qgraph(
    ctx: click.Context,
    repo: str,
    pipeline: str,
    config_overrides: tuple[str, ...],
    config_files: tuple[str, ...],
    inputs: tuple[str, ...],
    output: str | None,
    output_run: str | None,
    where: str,
    bind: tuple[str, ...],
    save_qgraph: str | None,
    skip_existing_in: tuple[str, ...],
    skip_existing: bool,
    clobber_outputs: bool,
    extend_run: bool,
    qgraph_dot: str | None,
    qgraph_mermaid: str | None,
    qgraph_svg: str | None,
) -> None:
    """Build the quantum graph of PIPELINE over the data selected by -d in the -i collections.

    Prints the quanta of every task and, for quanta not made, why (a missing input, outputs that
    already exist). Nothing is written to the repository.
    """
    loaded = load_pipeline(ctx, pipeline, config_overrides, config_files)
    pipeline_graph = PipelineGraph.from_pipeline(loaded)
    bind_values = _parse_bind(bind)
    with Butler(repo) as butler:
        registry = butler.registry
        run = _output_run(registry, output, output_run, extend_run)
        input_collections = _split(inputs)
        if not input_collections:
            if output is None or not registry.has_collection(output):
                raise click.UsageError(
                    "Give input collections with -i (no existing -o chain to read them from)."
                )
            input_collections = [output]
        skip = _split(skip_existing_in)
        if skip_existing and run not in skip:
            skip.append(run)
        builder = QuantumGraphBuilder(
            pipeline_graph,
            butler,
            input_collections,
            run,
            where,
            bind_values,
            skip_existing_in=skip,
            clobber_outputs=clobber_outputs,
            extend_run=extend_run,
            output=output,
            pipeline_yaml=yaml.safe_dump(loaded.expand_overrides().to_primitives(), sort_keys=False),
        )
        graph = builder.build()
    if save_qgraph:
        write_quantum_graph(graph, save_qgraph)
    click.echo(f"Quantum graph for output run {run}: {graph.quantum_count()} quanta.")
    click.echo(summary_text(graph))
    if save_qgraph:
        click.echo(f"Saved to {save_qgraph}.")
    _draw(graph, qgraph_dot, qgraph_mermaid, qgraph_svg)


def _draw(graph: QuantumGraph, dot: str | None, mermaid: str | None, svg: str | None) -> None:
    if not (dot or mermaid or svg):
        return
    if graph.quantum_count() > MAX_DRAWN_QUANTA:
        click.echo(
            f"Not drawing the graph: it has {graph.quantum_count()} quanta and pictures are made for at most "
            f"{MAX_DRAWN_QUANTA}; narrow the data query (-d) or the pipeline (#labels) to draw it.",
            err=True,
        )
        return
    drawing = quantum_graph_to_networkx(graph)
    if dot:
        write_text(dot, to_dot(drawing, show_storage_classes=False))
    if mermaid:
        write_text(mermaid, to_mermaid(drawing, show_storage_classes=False, markdown=True))
    if svg:
        write_text(svg, to_svg(drawing, show_storage_classes=False))


def write_text(path: str, text: str) -> None:
    """Write a picture atomically (temporary file in the same directory, then rename)."""
    try:
        write_text_atomically(path, text)
    except OSError as err:
        raise click.FileError(path, hint=str(err)) from err
