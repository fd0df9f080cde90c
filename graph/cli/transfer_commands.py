"""``butler transfer-from-graph`` (alias ``aggregate-graph``): the final job of a run, registering what the batch jobs wrote.

Both names reach the ``butler`` command through the ``quanta.butler_commands`` entry points;
`graph_errors` turns a `GraphError` into a message with its exit code.
"""

from __future__ import annotations

import time
from pathlib import Path

import click

from butler.butler import Butler
from butler.cli.format import render_table
from butler.cli.options import repo_argument
from butler.timing import peak_rss_mb

from ..qgraph_io import read_quantum_graph
from ..transfer import RUN_LEVEL, TransferReport, transfer_from_graph
from .errors import graph_errors

__all__ = ["aggregate_graph", "transfer_from_graph_command"]

_HELP = """Register the outputs of a quantum graph that exist in the repository's datastore.

GRAPH is the .qg file the jobs ran; REPO the repository they wrote into. Every predicted output
(task outputs, <label>_metadata and <label>_log, init outputs, configs, packages) whose file exists
is registered in the graph's output run with its datastore records; outputs registered already
are skipped and outputs without a file (failed or unrun quanta) are counted as missing. Run it
whether or not the workflow succeeded; running it again changes nothing.
"""


def _show(report: TransferReport, graph_file: Path, seconds: float) -> None:
    rows = [
        {
            "task": label or "(run: packages)",
            "registered": counts.registered,
            "already present": counts.already_present,
            "missing": counts.missing,
        }
        for label, counts in [*report.by_task.items(), ("TOTAL", report.total)]
    ]
    click.echo(render_table(rows, ["task", "registered", "already present", "missing"]))
    total = report.total
    click.echo(
        f"Transferred the outputs of {graph_file.name} into {report.output_run}: {total.registered:,} "
        f"registered, {total.already_present:,} already present, {total.missing:,} missing "
        f"({seconds:.1f} s, peak memory {peak_rss_mb():.0f} MB)."
    )
    if report.dataset_types_registered:
        click.echo(f"Registered dataset types: {', '.join(report.dataset_types_registered)}.")
    if report.output_chain is not None:
        click.echo(f"{report.output_chain} = {', '.join(report.chain)}")


def _run(graph_file: Path, repo: str, register_dataset_types: bool, update_output_chain: bool) -> None:
    start = time.perf_counter()
    graph = read_quantum_graph(graph_file)
    with Butler(repo) as butler:
        report = transfer_from_graph(
            butler,
            graph,
            register_dataset_types=register_dataset_types,
            update_chain=update_output_chain,
        )
    _show(report, graph_file, time.perf_counter() - start)
    if update_output_chain and graph.metadata.output is None:
        click.echo("The graph names no output chain (--output); no chain updated.", err=True)
    if RUN_LEVEL in report.by_task and report.by_task[RUN_LEVEL].missing:
        click.echo("Note: the run's packages dataset is missing (was pre-exec-init-qbb run?).", err=True)


def _make_command(name: str, help_text: str) -> click.Command:
    @click.command(name, help=help_text)
    @click.argument(
        "graph_file", metavar="GRAPH", type=click.Path(exists=True, dir_okay=False, path_type=Path)
    )
    @repo_argument
    @click.option(
        "--register-dataset-types",
        is_flag=True,
        help="Register output dataset types the repository lacks [default: a missing one is an error].",
    )
    @click.option(
        "--update-output-chain",
        is_flag=True,
        help="Create or update the graph's CHAINED output collection: [output run, inputs...] when new, "
        "the output run prepended when it exists.",
    )
    @graph_errors
    def command(graph_file: Path, repo: str, register_dataset_types: bool, update_output_chain: bool) -> None:
        _run(graph_file, repo, register_dataset_types, update_output_chain)

    return command


transfer_from_graph_command = _make_command("transfer-from-graph", _HELP)
"""``butler transfer-from-graph GRAPH REPO``."""

aggregate_graph = _make_command("aggregate-graph", _HELP + "\nThe same as transfer-from-graph.")
"""``butler aggregate-graph``: an alias of ``transfer-from-graph``."""
