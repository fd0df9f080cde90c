"""The ``pipetask`` command: build, inspect and run pipelines and quantum graphs."""

from __future__ import annotations

import click

__all__ = ["main"]


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """Build, inspect and run pipelines and quantum graphs.

    Subcommands (build, qgraph, run, run-qbb, show-qgraph) arrive with the pipeline and
    quantum-graph layers.
    """
