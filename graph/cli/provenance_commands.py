"""``butler query-provenance REPO GRAPH --dataset-id UUID [--derived]``: what a dataset was made from, or what was made from it.

Reaches the ``butler`` command through the ``quanta.butler_commands`` entry point.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import click

from butler.butler import Butler
from butler.cli.format import render_table
from butler.cli.options import repo_argument

from ..provenance import DatasetOrigin, dataset_origin, derived_datasets
from ..qgraph_io import read_quantum_graph
from .errors import graph_errors

__all__ = ["query_provenance"]


class _UUIDParam(click.ParamType):  # type: ignore[type-arg]
    name = "uuid"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> uuid.UUID:
        if isinstance(value, uuid.UUID):
            return value
        try:
            return uuid.UUID(str(value))
        except ValueError:
            self.fail(f"{value!r} is not a dataset UUID.", param, ctx)


def _data_id_text(data_id: Mapping[str, Any] | None) -> str:
    return ", ".join(f"{key}={value}" for key, value in (data_id or {}).items())


@click.command("query-provenance")
@repo_argument
@click.argument("graph_file", metavar="GRAPH", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--dataset-id", required=True, type=_UUIDParam(), help="UUID of the dataset asked about.")
@click.option(
    "--derived",
    is_flag=True,
    help="List the datasets derived from it (transitively, through the graph's quanta) instead of "
    "what it was made from.",
)
@click.option(
    "--include-metadata",
    is_flag=True,
    help="With --derived, also list the quanta's metadata and log datasets.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the answer as JSON.")
@graph_errors
def query_provenance(
    repo: str, graph_file: Path, dataset_id: uuid.UUID, derived: bool, include_metadata: bool, as_json: bool
) -> None:
    """Show the provenance of one dataset of a quantum graph (LDM-556 1.6).

    By default: the quantum that produced the dataset (task, data ID, node id) and its inputs,
    marked read/unread when the job recorded which inputs it actually read. With --derived: every
    dataset made from it, transitively (e.g. everything derived from one raw), with whether each
    is registered.
    """
    graph = read_quantum_graph(graph_file)
    with Butler(repo) as butler:
        if derived:
            found = derived_datasets(butler, graph, dataset_id, include_metadata=include_metadata)
            if as_json:
                click.echo(json.dumps([d.to_dict() for d in found], indent=2))
                return
            rows = [
                {
                    "generation": d.generation,
                    "dataset_type": d.dataset_type,
                    "data_id": _data_id_text(d.data_id),
                    "registered": "yes" if d.registered else "no",
                    "id": d.dataset_id,
                }
                for d in found
            ]
            click.echo(f"{len(found):,} dataset(s) derived from {dataset_id}:")
            if rows:
                click.echo(render_table(rows, ["generation", "dataset_type", "data_id", "registered", "id"]))
            return
        origin = dataset_origin(butler, graph, dataset_id)
    if as_json:
        click.echo(json.dumps(origin.to_dict(), indent=2))
        return
    _show_origin(origin)


def _show_origin(origin: DatasetOrigin) -> None:
    click.echo(
        f"{origin.dataset_type} {{{_data_id_text(origin.data_id)}}} in {origin.run} (id {origin.dataset_id}; "
        f"{'registered' if origin.registered else 'not registered'})"
    )
    if origin.task is None:
        click.echo("Not produced by this graph (an input of it).")
        return
    if origin.node_id is None:
        click.echo(f"Written once per run by task {origin.task} (an init output).")
    else:
        click.echo(
            f"Produced by {origin.task} {{{_data_id_text(origin.quantum_data_id)}}} (quantum {origin.node_id})."
        )
    if not origin.inputs:
        click.echo("It has no inputs.")
        return
    rows = [
        {
            "kind": i.kind,
            "dataset_type": i.dataset_type,
            "data_id": _data_id_text(i.data_id),
            "run": i.run,
            "read": "?" if i.read is None else ("yes" if i.read else "no"),
            "id": i.dataset_id,
        }
        for i in origin.inputs
    ]
    click.echo(render_table(rows, ["kind", "dataset_type", "data_id", "run", "read", "id"]))
    if not origin.actual_inputs_recorded:
        click.echo("(read = ?: the quantum's metadata does not record which inputs it actually read.)")
