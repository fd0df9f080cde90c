"""``pipetask report REPO GRAPH``: per task, how many quanta succeeded, failed (and why), were blocked, or did not run."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import click

from butler.butler import Butler
from butler.cli.format import render_table

from ..qgraph_io import read_quantum_graph
from ..report import ReportSource, RunReport, failure_rows, report_run, summary_rows

__all__ = ["data_id_text", "report"]

_SHOWN_FAILURES = 20
"""Failed quanta listed in the table output (``--json`` has every one read)."""


@click.command("report")
@click.argument("repo")
@click.argument("graph_file", metavar="GRAPH", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.option(
    "--source",
    type=click.Choice([s.value for s in ReportSource]),
    default=ReportSource.AUTO.value,
    show_default=True,
    help="Where to look for each quantum's metadata and log datasets: the registry (after "
    "'butler transfer-from-graph' or 'pipetask run'), the datastore files at their predicted paths "
    "(before the merge), or auto: the registry, then the files of what is not registered.",
)
@click.option(
    "--max-failures",
    type=click.IntRange(min=0),
    default=100,
    show_default=True,
    help="Per task, read the logs of at most this many failed quanta (the counts are always complete).",
)
def report(repo: str, graph_file: Path, as_json: bool, source: str, max_failures: int) -> None:
    """Report the state of every quantum of a graph after (or during) a run.

    Per task: quanta expected; succeeded (the <label>_metadata dataset exists); failed (the
    <label>_log dataset exists but not the metadata; the exception type and message come from the
    log's last ERROR record); blocked (an upstream quantum failed or was blocked, or an input
    produced upstream was never written); not run.
    """
    graph = read_quantum_graph(graph_file)
    with Butler(repo) as butler:
        result = report_run(butler, graph, source=ReportSource(source), max_failures=max_failures)
    if as_json:
        click.echo(json.dumps(result.to_dict(), indent=2, default=str))
        return
    _show(result)


def data_id_text(data_id: Mapping[str, Any]) -> str:
    """``key=value`` pairs of a data ID, comma-separated."""
    return ", ".join(f"{key}={value}" for key, value in data_id.items())


def _show(result: RunReport) -> None:
    click.echo(f"Run {result.output_run} (states from: {result.source})")
    click.echo(
        render_table(summary_rows(result), ["task", "expected", "succeeded", "failed", "blocked", "not run"])
    )
    rows = failure_rows(result)
    if rows:
        failed = sum(t.failed for t in result.tasks)
        click.echo(f"\nFailed quanta ({failed:,}; the first {min(len(rows), _SHOWN_FAILURES)} shown):")
        shown = [
            {
                **row,
                "data_id": data_id_text(row["data_id"]),
                "message": (row["message"].splitlines() or [""])[0][:200],
            }
            for row in rows[:_SHOWN_FAILURES]
        ]
        click.echo(render_table(shown, ["task", "data_id", "exception", "message"]))
    missing = sum(t.blocked_by_missing_input for t in result.tasks)
    if missing:
        click.echo(
            f"\n{missing:,} blocked quanta lack an input that its (successful) producer did not write."
        )
